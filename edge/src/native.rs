//! The edge as a native HTTP server on the same route table: in-memory storage, Twilio
//! and webhooks over reqwest, the system clock. For local runs and the demo; production
//! is the Worker (`worker_glue`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use shared::twilio::rest::{basic_auth, CallResource, CreateCall, TwilioApiError, UpdateCall};
use tokio::net::TcpListener;

use crate::app::{Edge, MAX_BODY_BYTES};
use crate::config::EdgeConfig;
use crate::error::ApiError;
use crate::http::{EdgeRequest, EdgeResponse};
use crate::memory::MemoryStore;
use crate::ports::{Clock, IdSource, Ports, TwilioApi, TwilioError, WebhookSender};

const HTTP_DEADLINE: Duration = Duration::from_secs(10);
/// A webhook endpoint gets this long to accept the connection, and [`HTTP_DEADLINE`] in all.
const WEBHOOK_CONNECT_DEADLINE: Duration = Duration::from_secs(5);
const WEBHOOK_RETRY_EVERY: Duration = Duration::from_secs(60);

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

    async fn post(&self, path: &str, form: String) -> Result<(u16, Bytes), TwilioError> {
        let response = self
            .http
            .post(format!("{}{path}", self.api_base))
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| TwilioError::Network(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| TwilioError::Network(e.to_string()))?;
        Ok((status, body))
    }
}

impl TwilioApi for HttpTwilio {
    async fn create_call(&self, call: &CreateCall) -> Result<CallResource, TwilioError> {
        let (status, body) = self.post(&CreateCall::path(&self.account_sid), call.to_form()).await?;
        if !(200..300).contains(&status) {
            return Err(TwilioError::Api(TwilioApiError::from_response(status, &body)));
        }
        serde_json::from_slice(&body).map_err(|e| TwilioError::Network(format!("unreadable Call resource: {e}")))
    }

    async fn update_call(&self, call_sid: &str, update: &UpdateCall) -> Result<(), TwilioError> {
        let (status, body) = self.post(&UpdateCall::path(&self.account_sid, call_sid), update.to_form()).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(TwilioError::Api(TwilioApiError::from_response(status, &body)))
        }
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

async fn handle(
    State(edge): State<Arc<NativeEdge>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Read at most the limit (axum's own limit would answer a plain-text 413).
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let too_large = || respond(ApiError::PayloadTooLarge(MAX_BODY_BYTES).to_response());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return too_large(),
    };
    let request = EdgeRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers.iter().filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned()))).collect(),
        body: body.to_vec(),
    };
    respond(edge.handle(&request).await)
}

fn respond(response: EdgeResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut answer = (status, [("content-type", response.content_type)], response.body).into_response();
    if let Some(seconds) = response.retry_after_seconds {
        answer.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
    answer
}

/// Serves the edge until `shutdown` resolves, retrying refused webhooks every minute
/// (the Worker's cron trigger).
pub async fn serve(
    listener: TcpListener,
    edge: Arc<NativeEdge>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let retrier = {
        let edge = edge.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(WEBHOOK_RETRY_EVERY);
            loop {
                every.tick().await;
                let _ = edge.retry_webhooks().await;
            }
        })
    };
    let app = Router::new().fallback(handle).with_state(edge);
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    retrier.abort();
    served
}
