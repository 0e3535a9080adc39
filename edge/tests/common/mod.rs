//! The in-memory edge the native tests drive, and helpers that send requests as users,
//! Twilio and the media worker would.
#![allow(dead_code)]

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use edge::app::Edge;
use edge::config::EdgeConfig;
use edge::http::{EdgeRequest, EdgeResponse};
use edge::memory::{ManualClock, MemoryStore, SequentialIds};
use edge::ports::{Ports, TwilioApi, TwilioError, WebhookSender};
use serde_json::{json, Value};
use shared::auth;
use shared::twilio::rest::{CallResource, CreateCall, UpdateCall};
use shared::twilio::{form, signature};

pub const BASE: &str = "https://edge.example.com";
pub const AUTH_TOKEN: &str = "twilio-auth-token";
pub const SECRET: &str = "internal-secret";
pub const KEY_A: &str = "Bearer key-alpha";
pub const KEY_B: &str = "Bearer key-beta";
/// Each key's webhook signing secret, configured beside it in `API_KEYS`.
pub const WHSEC_A: &str = "whsec_alpha_0123456789abcdef0123";
pub const WHSEC_B: &str = "whsec_beta_0123456789abcdef01234";

#[derive(Default)]
pub struct FakeTwilio {
    pub created: RefCell<Vec<CreateCall>>,
    pub updates: RefCell<Vec<(String, UpdateCall)>>,
    pub refuse_with: RefCell<Option<TwilioError>>,
    /// Recordings deleted, by sid.
    pub deleted_recordings: RefCell<Vec<String>>,
    /// What the next recording deletions answer instead (then they succeed).
    pub recording_delete_errors: RefCell<Vec<TwilioError>>,
}

impl TwilioApi for FakeTwilio {
    async fn create_call(&self, call: &CreateCall) -> Result<CallResource, TwilioError> {
        if let Some(error) = self.refuse_with.borrow().clone() {
            return Err(error);
        }
        self.created.borrow_mut().push(call.clone());
        let n = self.created.borrow().len();
        Ok(CallResource { sid: format!("CA{n:032}"), status: "queued".into(), account_sid: Some("AC1".into()) })
    }

    async fn update_call(&self, call_sid: &str, update: &UpdateCall) -> Result<(), TwilioError> {
        self.updates.borrow_mut().push((call_sid.to_owned(), update.clone()));
        Ok(())
    }

    async fn delete_recording(&self, recording_sid: &str) -> Result<(), TwilioError> {
        let mut errors = self.recording_delete_errors.borrow_mut();
        if !errors.is_empty() {
            return Err(errors.remove(0));
        }
        self.deleted_recordings.borrow_mut().push(recording_sid.to_owned());
        Ok(())
    }
}

#[derive(Default)]
pub struct Webhooks {
    pub sent: RefCell<Vec<(String, String, String)>>,
    pub answer: RefCell<Vec<u16>>,
    /// The statuses of the deliveries it refused.
    pub refused: RefCell<Vec<u16>>,
}

impl WebhookSender for Webhooks {
    async fn post(&self, url: &str, body: &str, signature: &str) -> Result<u16, String> {
        self.sent.borrow_mut().push((url.into(), body.into(), signature.into()));
        let mut answers = self.answer.borrow_mut();
        let status = if answers.is_empty() { 200 } else { answers.remove(0) };
        if !(200..300).contains(&status) {
            self.refused.borrow_mut().push(status);
        }
        Ok(status)
    }
}

pub type TestEdge = Edge<MemoryStore, FakeTwilio, Webhooks, ManualClock, SequentialIds>;

pub fn start() -> DateTime<Utc> {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

/// The tests' configuration: calls at any hour, once, unless a test is about the
/// calling window or retries (then [`deployment_config`]).
pub fn config() -> EdgeConfig {
    deployment_config(&[("CALLING_WINDOW", "00:00-24:00"), ("RETRY_MAX_ATTEMPTS", "1")])
}

/// The settings a deployment must give, `changes` over them, the defaults for the rest.
pub fn deployment_config(changes: &[(&str, &str)]) -> EdgeConfig {
    let required = [
        ("PUBLIC_BASE_URL", BASE),
        ("MEDIA_WS_URL", "wss://media.example.com/media"),
        ("TWILIO_API_BASE", "http://127.0.0.1:1"),
        ("TWILIO_FROM_NUMBER", "+15005550006"),
        ("TWILIO_ACCOUNT_SID", "AC1"),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
        ("INTERNAL_SECRET", SECRET),
        ("API_KEYS", "key-alpha:whsec_alpha_0123456789abcdef0123,key-beta:whsec_beta_0123456789abcdef01234"),
    ];
    let lookup = |name: &str| changes.iter().chain(&required).find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    EdgeConfig::from_lookup(lookup).expect("a valid configuration")
}

pub fn edge() -> TestEdge {
    Edge::new(
        config(),
        Ports {
            store: MemoryStore::default(),
            twilio: FakeTwilio::default(),
            webhooks: Webhooks::default(),
            clock: ManualClock::at(start()),
            ids: SequentialIds::default(),
        },
    )
}

pub fn booking() -> Value {
    json!({
        "restaurant": {"name": "Chez Panisse", "phone": "+15105485525"},
        "reservation": {"date": "2026-12-05", "time": "19:30", "party_size": 4, "name": "Ada Lovelace", "flexibility_minutes": 30},
        "timezone": "America/Los_Angeles",
        "callback_url": "https://user.example/hooks/concierge?source=test"
    })
}

/// The booking to another restaurant: each number takes one live call at a time.
pub fn booking_to(phone: &str) -> Value {
    let mut body = booking();
    body["restaurant"]["phone"] = json!(phone);
    body
}

/// A distinct geographic number per `n`, for tests that make many calls at once.
pub fn restaurant(n: usize) -> String {
    format!("+1510548{:04}", 5525 + n)
}

pub fn send(edge: &TestEdge, request: EdgeRequest) -> EdgeResponse {
    pollster::block_on(edge.handle(&request))
}

pub fn book(edge: &TestEdge, key: &str, body: &Value) -> EdgeResponse {
    send(edge, EdgeRequest::new("POST", "/v1/calls").header("Authorization", key).body(body.to_string()))
}

pub fn get(edge: &TestEdge, key: &str, id: &str) -> EdgeResponse {
    send(edge, EdgeRequest::new("GET", &format!("/v1/calls/{id}")).header("Authorization", key))
}

/// A request as Twilio sends it: form body, signed over the public URL.
pub fn twilio(path: &str, params: &[(&str, &str)]) -> EdgeRequest {
    let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let signature = signature::compute(AUTH_TOKEN, &format!("{BASE}{path}"), &pairs);
    EdgeRequest::new("POST", path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", &signature)
        .body(form::encode(params.iter().copied()))
}

/// A status callback as Twilio sends it: signed, with the `Timestamp` it was sent at.
pub fn status_callback(id: &str, params: &[(&str, &str)], sent_at: DateTime<Utc>) -> EdgeRequest {
    let timestamp = sent_at.to_rfc2822();
    let mut params = params.to_vec();
    params.push(("Timestamp", &timestamp));
    twilio(&format!("/twilio/status/{id}"), &params)
}

/// Sends a status callback stamped with the edge's current time.
pub fn status(edge: &TestEdge, id: &str, params: &[(&str, &str)]) -> EdgeResponse {
    let now = DateTime::from_timestamp(edge.ports.clock_now_unix(), 0).unwrap_or_default();
    send(edge, status_callback(id, params, now))
}

pub fn internal(edge: &TestEdge, method: &str, path: &str, body: &str) -> EdgeResponse {
    let signature = auth::sign_request(SECRET, edge.ports.clock_now_unix(), method, path, body.as_bytes());
    send(edge, EdgeRequest::new(method, path).header(auth::SIGNATURE_HEADER, &signature).body(body.to_owned()))
}

/// What the Worker's Durable Object alarms do: wakes every call whose keeper asks
/// (a webhook due, an attempt due). Returns how many webhooks were accepted.
pub fn wake_due(edge: &TestEdge) -> usize {
    use edge::ports::Clock;
    let due = edge.ports.store.calls_due(edge.ports.clock.now());
    let accepted_before = accepted_webhooks(edge);
    for id in &due {
        let _ = pollster::block_on(edge.wake(id));
    }
    accepted_webhooks(edge) - accepted_before
}

/// Webhooks the fake endpoint accepted so far (it answers 200 unless told otherwise).
fn accepted_webhooks(edge: &TestEdge) -> usize {
    let sent = edge.ports.webhooks.sent.borrow().len();
    let refusals = edge.ports.webhooks.refused.borrow().len();
    sent - refusals
}

pub trait ListNow {
    fn list_now(&self, prefix: &str) -> Vec<String>;
}

impl ListNow for MemoryStore {
    fn list_now(&self, prefix: &str) -> Vec<String> {
        self.list(prefix).unwrap()
    }
}

pub trait ClockNow {
    fn clock_now_unix(&self) -> i64;
}

impl ClockNow for Ports<MemoryStore, FakeTwilio, Webhooks, ManualClock, SequentialIds> {
    fn clock_now_unix(&self) -> i64 {
        use edge::ports::Clock;
        self.clock.now().timestamp()
    }
}

pub fn error_code(response: &EdgeResponse) -> String {
    response.json_body()["error"]["code"].as_str().unwrap_or_default().to_owned()
}
