//! The media worker binary: configuration from the environment, JSON logs, and a
//! graceful drain on SIGTERM or SIGINT.
//!
//! Calls run on tokio's multi-threaded runtime, one worker thread per CPU the process
//! may use (`TOKIO_WORKER_THREADS` overrides it), so a 2-vCPU machine carries calls on
//! both. Measured against one pinned thread (docs/performance.md, "Both cores"): the
//! same instructions per call-second, and two threads held 400 `passthrough` calls where
//! one missed them. The thread count is logged at start, so a deployment shows what it got.
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
    tracing::info!(worker_threads = tokio::runtime::Handle::current().metrics().num_workers(), "runtime started");
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
