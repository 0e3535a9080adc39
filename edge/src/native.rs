//! The edge as a native HTTP server on the same route table: in-memory storage, Twilio
//! and webhooks over reqwest, the system clock. For local runs and the demo; production
//! is the Worker (`worker_glue`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use shared::twilio::rest::{basic_auth, CallResource, CreateCall, TwilioApiError, UpdateCall};
use tokio::net::TcpListener;

use crate::app::Edge;
use crate::config::EdgeConfig;
use crate::http::EdgeRequest;
use crate::memory::MemoryStore;
use crate::ports::{Clock, IdSource, Ports, TwilioApi, TwilioError, WebhookSender};

const HTTP_DEADLINE: Duration = Duration::from_secs(10);
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

pub struct HttpWebhooks(reqwest::Client);

impl WebhookSender for HttpWebhooks {
    async fn post(&self, url: &str, body: &str, signature: &str) -> Result<u16, String> {
        let response = self
            .0
            .post(url)
            .header("Content-Type", "application/json")
            .header(shared::auth::SIGNATURE_HEADER, signature)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
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
    let webhooks = HttpWebhooks(reqwest::Client::builder().timeout(HTTP_DEADLINE).build().unwrap_or_default());
    Edge::new(config, Ports { store: MemoryStore::default(), twilio, webhooks, clock: SystemClock, ids: RandomIds })
}

async fn handle(
    State(edge): State<Arc<NativeEdge>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = EdgeRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers.iter().filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned()))).collect(),
        body: body.to_vec(),
    };
    let response = edge.handle(&request).await;
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
