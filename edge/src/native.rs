//! The edge as a native HTTP server on the same route table: in-memory storage, Twilio
//! and webhooks over reqwest, the system clock. For local runs and the demo; production
//! is the Worker (`worker_glue`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use shared::twilio::rest::{basic_auth, check_response, recording_path, CallResource, CreateCall, UpdateCall};
use tokio::net::TcpListener;

use crate::app::{log_line, sse_frame, Edge, LivePage, MAX_BODY_BYTES};
use crate::config::EdgeConfig;
use crate::error::ApiError;
use crate::http::{EdgeRequest, EdgeResponse};
use crate::memory::MemoryStore;
use crate::ports::{Clock, IdSource, Ports, TwilioApi, TwilioError, WebhookSender};

const HTTP_DEADLINE: Duration = Duration::from_secs(10);
/// How often the server looks for calls whose keeper wants waking (a webhook retry due):
/// the Worker's Durable Object alarms, done by one timer over the memory store.
const WAKE_EVERY: Duration = Duration::from_secs(1);
/// A webhook endpoint gets this long to accept the connection, and [`HTTP_DEADLINE`] in all.
const WEBHOOK_CONNECT_DEADLINE: Duration = Duration::from_secs(5);

pub struct HttpTwilio {
    api_base: String,
    account_sid: String,
    authorization: String,
    http: reqwest::Client,
}

impl HttpTwilio {
    pub fn new(config: &EdgeConfig) -> HttpTwilio {
        HttpTwilio {
            api_base: config.twilio_api_base.clone(),
            account_sid: config.twilio_account_sid.clone(),
            authorization: basic_auth(&config.twilio_account_sid, &config.twilio_auth_token),
            http: reqwest::Client::builder().timeout(HTTP_DEADLINE).build().unwrap_or_default(),
        }
    }

    /// POSTs a form to the REST API (`form` given) or DELETEs (`None`): the body of a 2xx,
    /// or Twilio's error ([`check_response`], as every caller of the REST API does).
    async fn request(&self, path: &str, form: Option<String>) -> Result<Bytes, TwilioError> {
        let url = format!("{}{path}", self.api_base);
        let request = match form {
            Some(form) => self.http.post(url).header("Content-Type", "application/x-www-form-urlencoded").body(form),
            None => self.http.delete(url),
        };
        let response = request
            .header("Authorization", &self.authorization)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| TwilioError::Network(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| TwilioError::Network(e.to_string()))?;
        check_response(status, &body).map_err(TwilioError::Api)?;
        Ok(body)
    }
}

impl TwilioApi for HttpTwilio {
    async fn create_call(&self, call: &CreateCall) -> Result<CallResource, TwilioError> {
        let body = self.request(&CreateCall::path(&self.account_sid), Some(call.to_form())).await?;
        serde_json::from_slice(&body).map_err(|e| TwilioError::Network(format!("unreadable Call resource: {e}")))
    }

    async fn update_call(&self, call_sid: &str, update: &UpdateCall) -> Result<(), TwilioError> {
        self.request(&UpdateCall::path(&self.account_sid, call_sid), Some(update.to_form())).await.map(|_| ())
    }

    async fn delete_recording(&self, recording_sid: &str) -> Result<(), TwilioError> {
        self.request(&recording_path(&self.account_sid, recording_sid), None).await.map(|_| ())
    }
}

/// Sends completion webhooks. Redirects are never followed (a 3xx is a refusal), and a
/// name is resolved here and refused if any of its addresses is not public
/// ([`PublicOnly`]), so a `callback_url` whose name points inside cannot reach there.
pub struct HttpWebhooks {
    http: reqwest::Client,
    allow_insecure: bool,
}

impl HttpWebhooks {
    pub fn new(config: &EdgeConfig) -> HttpWebhooks {
        let allow_insecure = config.allow_insecure_callbacks;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(WEBHOOK_CONNECT_DEADLINE)
            .timeout(HTTP_DEADLINE)
            .dns_resolver(Arc::new(PublicOnly { allow_loopback: allow_insecure }))
            .build()
            .unwrap_or_default();
        HttpWebhooks { http, allow_insecure }
    }
}

impl WebhookSender for HttpWebhooks {
    async fn post(&self, url: &str, body: &str, signature: &str) -> Result<u16, String> {
        // IP literals never reach the resolver: the URL's own check covers them.
        shared::callback_url::check(url, self.allow_insecure).map_err(|e| format!("callback_url {e}"))?;
        let response = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .header(shared::webhook::SIGNATURE_HEADER, signature)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    }
}

/// Resolves a webhook's host and refuses it if any answer is not a public address
/// (loopback allowed for local development), checked on the very addresses the
/// connection then uses, so a name cannot pass the check and then rebind.
pub struct PublicOnly {
    pub allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let inside = addresses.iter().map(|a| a.ip()).find(|ip| {
                !(shared::callback_url::is_public(*ip) || (allow_loopback && shared::callback_url::is_loopback(*ip)))
            });
            if let Some(ip) = inside {
                let refusal = format!("{host} resolves to {ip}, which is not a public address");
                return Err(refusal.into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

pub struct RandomIds;

impl IdSource for RandomIds {
    fn call_id(&self) -> String {
        let mut bytes = [0u8; 16];
        if getrandom::getrandom(&mut bytes).is_err() {
            bytes[..16].copy_from_slice(&Utc::now().timestamp_nanos_opt().unwrap_or_default().to_le_bytes().repeat(2));
        }
        format!("call_{}", hex::encode(bytes))
    }
}

pub type NativeEdge = Edge<MemoryStore, HttpTwilio, HttpWebhooks, SystemClock, RandomIds>;

pub fn edge(config: EdgeConfig) -> NativeEdge {
    let twilio = HttpTwilio::new(&config);
    let webhooks = HttpWebhooks::new(&config);
    Edge::new(config, Ports { store: MemoryStore::default(), twilio, webhooks, clock: SystemClock, ids: RandomIds })
}

/// How long a client has to send its request. Without these a client that sends half
/// a request holds its connection (and a task) for as long as it likes.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// For the request line and headers (hyper's `header_read_timeout`).
    pub header_read: Duration,
    /// For the body, once the headers are in.
    pub body_read: Duration,
}

impl Default for ServeLimits {
    fn default() -> ServeLimits {
        ServeLimits { header_read: Duration::from_secs(10), body_read: Duration::from_secs(10) }
    }
}

struct Served {
    edge: Arc<NativeEdge>,
    body_read: Duration,
}

async fn handle(
    State(served): State<Arc<Served>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Read at most the limit (axum's own limit would answer a plain-text 413).
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let too_large = || into_response(ApiError::PayloadTooLarge(MAX_BODY_BYTES).to_response());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let body = match tokio::time::timeout(served.body_read, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return too_large(),
        Err(_) => {
            return (StatusCode::REQUEST_TIMEOUT, [("connection", "close")], "request body not received in time")
                .into_response()
        }
    };
    let response = served.edge.handle(&edge_request(&method, &uri, &headers, body)).await;
    into_response(response)
}

fn edge_request(method: &Method, uri: &Uri, headers: &HeaderMap, body: Bytes) -> EdgeRequest {
    EdgeRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers.iter().filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned()))).collect(),
        body: body.to_vec(),
    }
}

fn into_response(response: EdgeResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut answer = (status, [("content-type", response.content_type)], response.body).into_response();
    if let Some(seconds) = response.retry_after_seconds {
        answer.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
    answer
}

/// How long requests in flight (live event streams among them) get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often a live listener looks for new events in the memory store.
const LIVE_POLL: Duration = Duration::from_millis(100);
/// A comment line this often keeps idle listeners' connections (and proxies) open.
const LIVE_KEEPALIVE: Duration = Duration::from_secs(15);

/// `GET /v1/calls/{id}/events`, streamed: the events so far after `Last-Event-ID`, then
/// each new one as it is applied, until the call is final.
async fn live(
    State(served): State<Arc<Served>>,
    Path(call_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let edge = served.edge.clone();
    let request = edge_request(&Method::GET, &uri, &headers, Bytes::new());
    let first = match edge.live_events(&request, &call_id).await {
        Ok(page) => page,
        Err(error) => return into_response(error.to_response()),
    };
    let state = (Some(first), false);
    let frames = futures_util::stream::unfold(state, move |(page, finished)| {
        let (edge, call_id) = (edge.clone(), call_id.clone());
        async move {
            if finished {
                return None;
            }
            let page = match page {
                Some(page) => page,
                None => return None,
            };
            let next = next_page(&edge, &call_id, &page).await;
            let chunk: String = page.events.iter().map(sse_frame).collect();
            let chunk = if chunk.is_empty() { ": keepalive\n\n".to_owned() } else { chunk };
            Some((Ok::<_, std::convert::Infallible>(chunk), (next, page.done)))
        }
    });
    let mut response = Response::new(axum::body::Body::from_stream(frames));
    let headers = response.headers_mut();
    headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("text/event-stream"));
    headers.insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}

/// The page after `page` once it has something (or a keepalive's wait has passed).
async fn next_page(edge: &NativeEdge, call_id: &str, page: &LivePage) -> Option<LivePage> {
    if page.done {
        return None;
    }
    let waited = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(LIVE_POLL).await;
        let next = edge.live_events_after(call_id, page.last_id()).await.ok()?;
        if !next.events.is_empty() || next.done || waited.elapsed() >= LIVE_KEEPALIVE {
            return Some(next);
        }
    }
}

/// Serves the edge until `shutdown` resolves, waking calls when their keeper asks
/// (webhook retries) and forgetting records past `RECORD_RETENTION_DAYS`.
pub async fn serve(
    listener: TcpListener,
    edge: Arc<NativeEdge>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, edge, ServeLimits::default(), shutdown).await
}

/// [`serve`] with the request deadlines given.
pub async fn serve_with(
    listener: TcpListener,
    edge: Arc<NativeEdge>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let retrier = {
        let edge = edge.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(WAKE_EVERY);
            loop {
                every.tick().await;
                let now = Utc::now();
                for call_id in edge.ports.store.calls_due(now) {
                    if let Err(error) = edge.wake(&call_id).await {
                        log_line(
                            &serde_json::json!({"call_id": call_id, "wake": "failed", "error": error.to_string()}),
                        );
                    }
                }
                edge.forget_expired(now).await;
            }
        })
    };
    let app = Router::new()
        .route("/v1/calls/{call_id}/events", axum::routing::get(live))
        .fallback(handle)
        .with_state(Arc::new(Served { edge, body_read: limits.body_read }));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_read);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let tcp = match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(_) => {
                        // Out of descriptors, say: wait a little rather than spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let connection = connections.watch(http.serve_connection(hyper_util::rt::TokioIo::new(tcp), service));
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    // In-flight requests finish (live event streams get a few seconds); idle connections close.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connections.shutdown()).await;
    retrier.abort();
    Ok(())
}
