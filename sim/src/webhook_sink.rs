//! A user's webhook endpoint: records every POST (path, `Concierge-Signature` header,
//! body) and can refuse the first few, to exercise retries. [`Delivery::verify`] checks
//! a delivery the way the README tells users to.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub path_and_query: String,
    pub signature: Option<String>,
    pub body: String,
    /// What the sink answered.
    pub status: u16,
}

impl Delivery {
    /// Checks the delivery's `Concierge-Signature` with the key's webhook secret, as a
    /// user's endpoint would: the HMAC of `t.body`, `t` within 300 s of `now_unix`.
    pub fn verify(&self, webhook_secret: &str, now_unix: i64) -> Result<(), shared::webhook::WebhookSignatureError> {
        shared::webhook::verify(webhook_secret, self.signature.as_deref(), self.body.as_bytes(), now_unix)
    }
}

struct Sink {
    deliveries: watch::Sender<Vec<Delivery>>,
    /// Deliveries still to refuse with a 503.
    refuse: AtomicUsize,
}

pub struct WebhookSink {
    pub base_url: String,
    sink: Arc<Sink>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(
    State(sink): State<Arc<Sink>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let signature = headers.get(shared::webhook::SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let path_and_query = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let refused = sink.refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let status = if refused { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::NO_CONTENT };
    sink.deliveries.send_modify(|d| d.push(Delivery { path_and_query, signature, body, status: status.as_u16() }));
    status
}

impl WebhookSink {
    pub async fn start() -> anyhow::Result<WebhookSink> {
        let sink = Arc::new(Sink { deliveries: watch::channel(Vec::new()).0, refuse: AtomicUsize::new(0) });
        let app = Router::new().fallback(record).with_state(sink.clone());
        let (address, server) = crate::serve_on_loopback(app).await?;
        let base_url = format!("http://{address}");
        Ok(WebhookSink { base_url, sink, server })
    }

    /// Answers the next `count` deliveries with 503, as a flaky endpoint would.
    pub fn refuse_next(&self, count: usize) {
        self.sink.refuse.store(count, Ordering::SeqCst);
    }

    pub fn watch(&self) -> watch::Receiver<Vec<Delivery>> {
        self.sink.deliveries.subscribe()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.sink.deliveries.borrow().clone()
    }
}
