//! The HTTP side: `/health`, `/metrics` and the `/media` WebSocket, plus the outbox
//! sweeper. [`run`] takes its listener and shutdown signal, so tests control both.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::clients::{EdgeClient, TwilioRest};
use crate::config::MediaConfig;
use crate::gate::{Door, GateLimits, GatedListener};
use crate::metrics::Metrics;
use crate::outbox::{self, Outbox};
use crate::store::LiveStore;
use crate::{call, Services, Shutdown};

/// Largest Media Streams frame accepted (a 20 ms media message is about 300 bytes).
const MAX_FRAME_BYTES: usize = 64 * 1024;

struct AppState {
    services: Arc<Services>,
    calls: std::sync::Mutex<JoinSet<()>>,
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let active = state.services.metrics.active_calls.load(Ordering::Relaxed);
    if state.services.shutdown.borrow().draining {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "draining", "active_calls": active})))
            .into_response();
    }
    let store = state.services.store.kind();
    (StatusCode::OK, Json(json!({"status": "ok", "active_calls": active, "store": store}))).into_response()
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    ([("content-type", "text/plain; version=0.0.4")], state.services.metrics.render()).into_response()
}

async fn media(
    State(state): State<Arc<AppState>>,
    ConnectInfo(door): ConnectInfo<Door>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if state.services.shutdown.borrow().draining {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    let services = state.services.clone();
    let app = state.clone();
    let upgrade = upgrade
        .max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .read_buffer_size(call::TWILIO_READ_BUFFER_BYTES)
        .write_buffer_size(call::SOCKET_WRITE_BATCH_BYTES);
    upgrade.on_upgrade(move |socket| async move {
        let task = call::handle_stream(socket, door.admission, services);
        match app.calls.lock() {
            Ok(mut calls) => {
                // Finished calls stay in the set until joined: reap them, so a worker
                // that runs for months does not keep one entry per call it ever took.
                while calls.try_join_next().is_some() {}
                calls.spawn(task);
            }
            Err(_) => warn!("call registry poisoned; call not started"),
        }
    })
}

/// The store the configuration asks for: Redis with `REDIS_URL`, else embedded.
pub async fn open_store(config: &MediaConfig) -> anyhow::Result<LiveStore> {
    Ok(match &config.redis_url {
        Some(url) => LiveStore::redis(url).await?,
        None => LiveStore::memory(),
    })
}

/// Serves until `shutdown` resolves, then drains: no new calls, live calls run on for
/// `drain_seconds`, then are ended; finally the outbox is flushed.
pub async fn run(
    listener: TcpListener,
    config: MediaConfig,
    store: LiveStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let store = Arc::new(store);
    let edge = EdgeClient::new(&config.edge_base_url, &config.internal_secret);
    let twilio = TwilioRest::new(&config.twilio_api_base, &config.twilio_account_sid, &config.twilio_auth_token);
    let (outbox, delivery) = Outbox::start(store.clone(), edge.clone(), metrics.clone(), config.outbox_memory_bytes);
    let (shutdown_tx, shutdown_rx) = watch::channel(Shutdown::default());
    let drain = Duration::from_secs(config.drain_seconds);
    let services = Arc::new(Services {
        config,
        store: store.clone(),
        edge: edge.clone(),
        twilio,
        outbox,
        metrics: metrics.clone(),
        shutdown: shutdown_rx,
    });
    let state = Arc::new(AppState { services: services.clone(), calls: std::sync::Mutex::new(JoinSet::new()) });

    let sweeper = {
        let (store, edge, twilio, metrics) = (store.clone(), edge.clone(), services.twilio.clone(), metrics.clone());
        let sweep_every = Duration::from_secs(services.config.outbox_sweep_seconds);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(sweep_every);
            loop {
                every.tick().await;
                let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default();
                outbox::sweep(&store, &edge, &twilio, &metrics, now).await;
            }
        })
    };

    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/media", get(media))
        .with_state(state.clone());
    info!(address = %listener.local_addr()?, store = store.kind(), "media worker listening");
    let drain_signal = shutdown_tx.clone();
    let limits = GateLimits {
        deadline: Duration::from_millis(services.config.start_deadline_ms),
        max_unauthenticated: services.config.max_unauthenticated_connections,
    };
    let listener = GatedListener::new(listener, limits, metrics.clone());
    let app = app.into_make_service_with_connect_info::<Door>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        info!("shutting down: draining live calls");
        drain_signal.send_modify(|s| s.draining = true);
    });
    // Graceful shutdown waits for open connections, which include live calls' sockets.
    let deadline = {
        let shutdown_tx = shutdown_tx.clone();
        let mut watcher = shutdown_tx.subscribe();
        tokio::spawn(async move {
            while !watcher.borrow_and_update().draining {
                if watcher.changed().await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(drain).await;
            shutdown_tx.send_modify(|s| s.deadline_passed = true);
        })
    };
    server.await?;
    let calls = std::mem::take(&mut *state.calls.lock().map_err(|_| anyhow::anyhow!("call registry poisoned"))?);
    calls.join_all().await;
    deadline.abort();
    sweeper.abort();
    // Every call has ended: let the outbox deliver what is queued, within reason.
    drop(state);
    drop(services);
    if tokio::time::timeout(Duration::from_secs(5), delivery).await.is_err() {
        warn!("outbox not empty at exit; the events stay in the store for another instance");
    }
    Ok(())
}
