//! The Cloudflare Worker entry point: adapts `worker` types to the plain request and
//! ports the route table uses. Kept thin on purpose; everything testable is in `app`.
// Native clippy never sees this module, so its warnings fail the wasm build instead.
#![deny(warnings)]

use chrono::{DateTime, Utc};
use shared::twilio::rest::{basic_auth, CallResource, CreateCall, TwilioApiError, UpdateCall};
use worker::{event, Context, Env, Fetch, Headers, KvStore, Method, Request, RequestInit, Response};

use crate::app::Edge;
use crate::config::EdgeConfig;
use crate::error::ApiError;
use crate::http::{EdgeRequest, EdgeResponse};
use crate::ports::{Clock, IdSource, Ports, Store, StoreError, TwilioApi, TwilioError, WebhookSender};
use crate::serial::Leases;

/// KV binding holding call ledgers and idempotency records.
const CALLS_BINDING: &str = "CALLS";
/// Idempotency records and finished calls are kept for 30 days.
const RECORD_TTL_SECONDS: u64 = 30 * 24 * 3600;

struct KvCalls(KvStore);

impl Store for KvCalls {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.0.get(key).text().await.map_err(|e| StoreError(e.to_string()))
    }

    async fn put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.0
            .put(key, value)
            .map_err(|e| StoreError(e.to_string()))?
            .expiration_ttl(RECORD_TTL_SECONDS)
            .execute()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).await.map_err(|e| StoreError(e.to_string()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let mut request = self.0.list().prefix(prefix.to_owned());
            if let Some(cursor) = cursor.take() {
                request = request.cursor(cursor);
            }
            let page = request.execute().await.map_err(|e| StoreError(e.to_string()))?;
            keys.extend(page.keys.into_iter().map(|k| k.name));
            match page.cursor.filter(|_| !page.list_complete) {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }
}

async fn post_form(url: &str, authorization: &str, form: String) -> worker::Result<(u16, Vec<u8>)> {
    let headers = Headers::new();
    headers.set("Authorization", authorization)?;
    headers.set("Content-Type", "application/x-www-form-urlencoded")?;
    headers.set("Accept", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(form.into()));
    let mut response = Fetch::Request(Request::new_with_init(url, &init)?).send().await?;
    Ok((response.status_code(), response.bytes().await?))
}

struct FetchTwilio {
    api_base: String,
    account_sid: String,
    authorization: String,
}

impl TwilioApi for FetchTwilio {
    async fn create_call(&self, call: &CreateCall) -> Result<CallResource, TwilioError> {
        let url = format!("{}{}", self.api_base, CreateCall::path(&self.account_sid));
        let (status, body) = post_form(&url, &self.authorization, call.to_form())
            .await
            .map_err(|e| TwilioError::Network(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(TwilioError::Api(TwilioApiError::from_response(status, &body)));
        }
        serde_json::from_slice(&body).map_err(|e| TwilioError::Network(format!("unreadable Call resource: {e}")))
    }

    async fn update_call(&self, call_sid: &str, update: &UpdateCall) -> Result<(), TwilioError> {
        let url = format!("{}{}", self.api_base, UpdateCall::path(&self.account_sid, call_sid));
        let (status, body) = post_form(&url, &self.authorization, update.to_form())
            .await
            .map_err(|e| TwilioError::Network(e.to_string()))?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(TwilioError::Api(TwilioApiError::from_response(status, &body)))
        }
    }
}

struct FetchWebhooks;

impl WebhookSender for FetchWebhooks {
    async fn post(&self, url: &str, body: &str, signature: &str) -> Result<u16, String> {
        let send = async {
            let headers = Headers::new();
            headers.set("Content-Type", "application/json")?;
            headers.set(shared::auth::SIGNATURE_HEADER, signature)?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
            let response = Fetch::Request(Request::new_with_init(url, &init)?).send().await?;
            Ok::<u16, worker::Error>(response.status_code())
        };
        send.await.map_err(|e| e.to_string())
    }
}

struct WorkerClock;

impl Clock for WorkerClock {
    fn now(&self) -> DateTime<Utc> {
        let millis = worker::Date::now().as_millis();
        DateTime::from_timestamp_millis(i64::try_from(millis).unwrap_or(i64::MAX)).unwrap_or_default()
    }

    async fn sleep(&self, duration: std::time::Duration) {
        worker::Delay::from(duration).await;
    }
}

struct RandomIds;

impl IdSource for RandomIds {
    fn call_id(&self) -> String {
        let mut bytes = [0u8; 16];
        // crypto.getRandomValues cannot fail in workerd; fall back to time if it ever does.
        if getrandom::getrandom(&mut bytes).is_err() {
            bytes[..8].copy_from_slice(&worker::Date::now().as_millis().to_le_bytes());
        }
        format!("call_{}", hex::encode(bytes))
    }
}

fn config(env: &Env) -> Result<EdgeConfig, ApiError> {
    EdgeConfig::from_lookup(|name| {
        env.secret(name).map(|s| s.to_string()).or_else(|_| env.var(name).map(|v| v.to_string())).ok()
    })
    .map_err(|e| ApiError::Misconfigured(e.to_string()))
}

async fn read_request(mut req: Request) -> worker::Result<EdgeRequest> {
    let url = req.url()?;
    let headers = req.headers().entries().collect();
    Ok(EdgeRequest {
        method: req.method().to_string(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or_default().to_owned(),
        headers,
        body: req.bytes().await.unwrap_or_default(),
    })
}

fn write_response(response: EdgeResponse) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", response.content_type)?;
    if let Some(seconds) = response.retry_after_seconds {
        headers.set("Retry-After", &seconds.to_string())?;
    }
    // 204 must have no body at all, not an empty one.
    let body = if response.body.is_empty() { Response::empty()? } else { Response::from_bytes(response.body)? };
    Ok(body.with_status(response.status).with_headers(headers))
}

/// One lease table for all the requests this isolate serves.
static ISOLATE_LEASES: std::sync::LazyLock<std::sync::Arc<Leases>> = std::sync::LazyLock::new(Default::default);

type WorkerEdge = Edge<KvCalls, FetchTwilio, FetchWebhooks, WorkerClock, RandomIds>;

/// The edge over this Worker's bindings.
fn edge(env: &Env) -> Result<WorkerEdge, ApiError> {
    let config = config(env)?;
    let store = env
        .kv(CALLS_BINDING)
        .map(KvCalls)
        .map_err(|e| ApiError::Misconfigured(format!("KV binding {CALLS_BINDING}: {e}")))?;
    let twilio = FetchTwilio {
        api_base: config.twilio_api_base.clone(),
        account_sid: config.twilio_account_sid.clone(),
        authorization: basic_auth(&config.twilio_account_sid, &config.twilio_auth_token),
    };
    let ports = Ports { store, twilio, webhooks: FetchWebhooks, clock: WorkerClock, ids: RandomIds };
    Ok(Edge::new(config, ports).sharing(ISOLATE_LEASES.clone()))
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let request = read_request(req).await?;
    match edge(&env) {
        Ok(edge) => write_response(edge.handle(&request).await),
        Err(error) => write_response(error.to_response()),
    }
}

/// wrangler.toml's cron trigger: retry the completion webhooks that are due.
#[event(scheduled)]
async fn scheduled(_event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    let retried = match edge(&env) {
        Ok(edge) => edge.retry_webhooks().await,
        Err(error) => Err(error),
    };
    match retried {
        Ok(delivered) => worker::console_log!("webhook retry: {delivered} delivered"),
        Err(error) => worker::console_error!("webhook retry failed: {error}"),
    }
}
