//! The media worker binary: configuration from the environment, JSON logs, and a
//! graceful drain on SIGTERM or SIGINT.
#![deny(unsafe_code)]

use anyhow::Context;
use media_worker::config::MediaConfig;
use media_worker::server;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    // One TLS provider for both reqwest and the OpenAI WebSocket.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = MediaConfig::from_lookup(|name| std::env::var(name).ok())?;
    let store = server::open_store(&config).await.context("opening the live store")?;
    let listener =
        TcpListener::bind(("0.0.0.0", config.port)).await.with_context(|| format!("binding port {}", config.port))?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
    };
    server::run(listener, config, store, shutdown).await
}
