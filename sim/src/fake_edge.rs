//! A stand-in for the edge's internal routes, for testing the media worker alone:
//! `GET /internal/calls/{id}` and `POST /internal/calls/{id}/events`, both checking the
//! internal signature. It can be taken down (503) and brought back, to test the outbox.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use shared::auth;
use shared::booking::BookingRequest;
use shared::events::{CallContext, CallEvent};
use tokio::sync::watch;

#[derive(Debug, Clone, Default)]
pub struct EdgeLog {
    /// Every event accepted, in arrival order, repeats included.
    pub received: Vec<CallEvent>,
    pub refused_signatures: usize,
    pub context_requests: usize,
    /// Requests answered 503 while down.
    pub turned_away: usize,
}

impl EdgeLog {
    /// Events with distinct ids, as the real edge would apply them.
    pub fn applied(&self) -> Vec<CallEvent> {
        let mut seen = std::collections::BTreeSet::new();
        self.received.iter().filter(|e| seen.insert(e.id.clone())).cloned().collect()
    }
}

struct Shared {
    secret: String,
    calls: Mutex<BTreeMap<String, BookingRequest>>,
    down: AtomicBool,
    log: watch::Sender<EdgeLog>,
}

pub struct FakeEdge {
    pub base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEdge {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn verified(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = headers.get(auth::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let ok = auth::verify_request(&shared.secret, header, method.as_str(), path, body, chrono::Utc::now().timestamp())
        .is_ok();
    if !ok {
        shared.log.send_modify(|l| l.refused_signatures += 1);
    }
    ok
}

async fn context(
    State(shared): State<Arc<Shared>>,
    Path(call_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if shared.down.load(Ordering::SeqCst) {
        shared.log.send_modify(|l| l.turned_away += 1);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if !verified(&shared, &Method::GET, uri.path(), &headers, b"") {
        return StatusCode::FORBIDDEN.into_response();
    }
    shared.log.send_modify(|l| l.context_requests += 1);
    let request = shared.calls.lock().ok().and_then(|c| c.get(&call_id).cloned());
    match request {
        Some(request) => {
            let instructions = shared::openai::config::instructions(&request);
            Json(CallContext { call_id, request, instructions }).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn events(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if shared.down.load(Ordering::SeqCst) {
        shared.log.send_modify(|l| l.turned_away += 1);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if !verified(&shared, &Method::POST, uri.path(), &headers, &body) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match serde_json::from_slice::<CallEvent>(&body) {
        Ok(event) => {
            shared.log.send_modify(|l| l.received.push(event));
            StatusCode::OK.into_response()
        }
        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    }
}

impl FakeEdge {
    pub async fn start(secret: &str) -> anyhow::Result<FakeEdge> {
        let shared = Arc::new(Shared {
            secret: secret.to_owned(),
            calls: Mutex::new(BTreeMap::new()),
            down: AtomicBool::new(false),
            log: watch::channel(EdgeLog::default()).0,
        });
        let app = Router::new()
            .route("/internal/calls/{call_id}", get(context))
            .route("/internal/calls/{call_id}/events", post(events))
            .with_state(shared.clone());
        let (address, server) = crate::serve_on_loopback(app).await?;
        let base_url = format!("http://{address}");
        Ok(FakeEdge { base_url, shared, server })
    }

    pub fn add_call(&self, call_id: &str, request: BookingRequest) {
        if let Ok(mut calls) = self.shared.calls.lock() {
            calls.insert(call_id.to_owned(), request);
        }
    }

    /// While down, every request is answered 503.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    pub fn log(&self) -> EdgeLog {
        self.shared.log.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<EdgeLog> {
        self.shared.log.subscribe()
    }
}
