//! A fake of Twilio's Calls REST API (docs/wire-formats.md): Basic auth, the create and update
//! forms checked as Twilio checks them, the Call resource JSON, deleting a recorded call's
//! Recording (204, then 404), and errors in Twilio's legacy shape. It records every call so
//! tests can assert what was asked.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use shared::twilio::form;
use shared::twilio::rest::basic_auth;
use tokio::sync::watch;

/// One call as the fake knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCall {
    pub sid: String,
    /// The create form, every pair in order (repeated names kept).
    pub form: Vec<(String, String)>,
    pub status: String,
    /// Update forms received for this call.
    pub updates: Vec<Vec<(String, String)>>,
}

impl FakeCall {
    pub fn param(&self, name: &str) -> Option<&str> {
        form::get(&self.form, name)
    }

    pub fn params(&self, name: &str) -> Vec<&str> {
        self.form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub calls: Vec<FakeCall>,
    /// Requests refused, as (HTTP status, Twilio code).
    pub refusals: Vec<(u16, u32)>,
    /// Recordings deleted, by sid.
    pub deleted_recordings: Vec<String>,
}

struct Shared {
    account_sid: String,
    authorization: String,
    /// Numbers Twilio refuses to call, with the error to answer.
    refused_numbers: Mutex<BTreeMap<String, (u32, String)>>,
    ledger: watch::Sender<Ledger>,
}

/// A running fake. Dropping it stops the server.
pub struct FakeTwilioRest {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTwilioRest {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeTwilioRest {
    pub async fn start(account_sid: &str, auth_token: &str) -> anyhow::Result<FakeTwilioRest> {
        let shared = Arc::new(Shared {
            account_sid: account_sid.to_owned(),
            authorization: basic_auth(account_sid, auth_token),
            refused_numbers: Mutex::new(BTreeMap::new()),
            ledger: watch::channel(Ledger::default()).0,
        });
        let app = Router::new()
            .route("/2010-04-01/Accounts/{account}/Calls.json", post(create_call))
            .route("/2010-04-01/Accounts/{account}/Calls/{call}", post(update_call))
            .route("/2010-04-01/Accounts/{account}/Recordings/{recording}", delete(delete_recording))
            .with_state(shared.clone());
        let (address, server) = crate::serve_on_loopback(app).await?;
        let base_url = format!("http://{address}");
        Ok(FakeTwilioRest {
            base_url,
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            shared,
            server,
        })
    }

    /// Makes Twilio refuse calls to `number` with this error (e.g. 21211, "Invalid 'To' Phone Number").
    pub fn refuse(&self, number: &str, code: u32, message: &str) {
        if let Ok(mut refused) = self.shared.refused_numbers.lock() {
            refused.insert(number.to_owned(), (code, message.to_owned()));
        }
    }

    /// Adds a live call as if it had been created earlier (by the edge), so updates to
    /// it are recorded.
    pub fn register_call(&self, sid: &str, to: &str) {
        self.shared.ledger.send_modify(|ledger| {
            ledger.calls.push(FakeCall {
                sid: sid.to_owned(),
                form: vec![("To".into(), to.into())],
                status: "in-progress".into(),
                updates: Vec::new(),
            })
        });
    }

    pub fn ledger(&self) -> Ledger {
        self.shared.ledger.borrow().clone()
    }

    /// Watch the ledger to wait for calls and updates.
    pub fn watch(&self) -> watch::Receiver<Ledger> {
        self.shared.ledger.subscribe()
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

/// A request refused before it reaches a handler's logic.
struct Refusal {
    status: StatusCode,
    code: u32,
    message: &'static str,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        twilio_error(self.status, self.code, self.message)
    }
}

fn authorize(shared: &Shared, headers: &HeaderMap, account: &str) -> Result<(), Refusal> {
    let presented = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let refusal = if presented != shared.authorization {
        Refusal { status: StatusCode::UNAUTHORIZED, code: 20003, message: "Authenticate" }
    } else if account != shared.account_sid {
        Refusal { status: StatusCode::NOT_FOUND, code: 20404, message: "The requested resource was not found" }
    } else {
        return Ok(());
    };
    shared.ledger.send_modify(|l| l.refusals.push((refusal.status.as_u16(), refusal.code)));
    Err(refusal)
}

fn call_json(account: &str, call: &FakeCall) -> Value {
    json!({
        "sid": call.sid, "account_sid": account, "parent_call_sid": null,
        "date_created": "Tue, 24 Nov 2026 12:00:00 +0000", "date_updated": "Tue, 24 Nov 2026 12:00:00 +0000",
        "to": call.param("To"), "from": call.param("From"), "status": call.status,
        "start_time": null, "end_time": null, "duration": null, "price": null, "price_unit": "USD",
        "direction": "outbound-api", "answered_by": null, "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{}.json", call.sid),
    })
}

/// Checks a create form the way Twilio does, answering its error codes.
fn check_create(pairs: &[(String, String)]) -> Result<(), (u32, String)> {
    let get = |name| form::get(pairs, name).filter(|v| !v.is_empty());
    let to = get("To").ok_or((21201, "No 'To' number is specified".to_owned()))?;
    if !shared::booking::is_e164(to) {
        return Err((21211, format!("Invalid 'To' Phone Number: {to}")));
    }
    let from = get("From").ok_or((21603, "A 'From' phone number is required".to_owned()))?;
    if !shared::booking::is_e164(from) {
        return Err((21212, format!("Invalid 'From' Phone Number: {from}")));
    }
    let sources = ["Url", "Twiml", "ApplicationSid"].iter().filter(|n| get(n).is_some()).count();
    if sources == 0 {
        return Err((21205, "Url parameter is required".into()));
    }
    for event in pairs.iter().filter(|(k, _)| k == "StatusCallbackEvent") {
        if !["initiated", "ringing", "answered", "completed"].contains(&event.1.as_str()) {
            return Err((21626, format!("Invalid StatusCallbackEvent: {}", event.1)));
        }
    }
    if let Some(timeout) = get("Timeout") {
        match timeout.parse::<u32>() {
            Ok(1..=600) => {}
            _ => return Err((21216, format!("Timeout must be between 1 and 600, got {timeout}"))),
        }
    }
    if let Some(amd) = get("MachineDetection") {
        if !["Enable", "DetectMessageEnd"].contains(&amd) {
            return Err((21627, format!("Invalid MachineDetection: {amd}")));
        }
    }
    Ok(())
}

async fn create_call(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(refusal) = authorize(&shared, &headers, &account) {
        return refusal.into_response();
    }
    let pairs = form::parse(body.as_bytes());
    if let Err((code, message)) = check_create(&pairs) {
        shared.ledger.send_modify(|l| l.refusals.push((400, code)));
        return twilio_error(StatusCode::BAD_REQUEST, code, &message);
    }
    let to = form::get(&pairs, "To").unwrap_or_default().to_owned();
    let refused = shared.refused_numbers.lock().ok().and_then(|r| r.get(&to).cloned());
    if let Some((code, message)) = refused {
        shared.ledger.send_modify(|l| l.refusals.push((400, code)));
        return twilio_error(StatusCode::BAD_REQUEST, code, &message);
    }
    let mut created = None;
    shared.ledger.send_modify(|ledger| {
        let sid = format!("CA{:032x}", ledger.calls.len() + 1);
        let call = FakeCall { sid, form: pairs.clone(), status: "queued".into(), updates: Vec::new() };
        created = Some(call.clone());
        ledger.calls.push(call);
    });
    match created {
        Some(call) => (StatusCode::CREATED, Json(call_json(&account, &call))).into_response(),
        None => twilio_error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "Internal Server Error"),
    }
}

async fn update_call(
    State(shared): State<Arc<Shared>>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(refusal) = authorize(&shared, &headers, &account) {
        return refusal.into_response();
    }
    let Some(sid) = call.strip_suffix(".json") else {
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    };
    let pairs = form::parse(body.as_bytes());
    let status = form::get(&pairs, "Status").map(str::to_owned);
    if let Some(status) = &status {
        if status != "completed" && status != "canceled" {
            return twilio_error(StatusCode::BAD_REQUEST, 21218, &format!("Invalid Status: {status}"));
        }
    }
    let mut updated = None;
    shared.ledger.send_modify(|ledger| {
        if let Some(call) = ledger.calls.iter_mut().find(|c| c.sid == sid) {
            call.updates.push(pairs.clone());
            if let Some(status) = &status {
                call.status = status.clone();
            }
            updated = Some(call.clone());
        }
    });
    match updated {
        Some(call) => (StatusCode::OK, Json(call_json(&account, &call))).into_response(),
        None => twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found"),
    }
}

/// `DELETE …/Recordings/{RecordingSid}.json`: a recorded call's recording (the fake
/// carrier names it `RE` + the call sid's digits) is deleted once: 204 with no body, then
/// 404 as for any recording Twilio does not have
/// (https://www.twilio.com/docs/voice/api/recording#delete-a-recording-resource).
async fn delete_recording(
    State(shared): State<Arc<Shared>>,
    Path((account, recording)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = authorize(&shared, &headers, &account) {
        return refusal.into_response();
    }
    let digits = recording.strip_suffix(".json").and_then(|sid| sid.strip_prefix("RE"));
    let mut deleted = false;
    shared.ledger.send_modify(|ledger| {
        let Some(digits) = digits else { return };
        let sid = format!("RE{digits}");
        let recorded = ledger.calls.iter().any(|c| c.sid.get(2..) == Some(digits) && c.param("Record") == Some("true"));
        if recorded && !ledger.deleted_recordings.contains(&sid) {
            ledger.deleted_recordings.push(sid);
            deleted = true;
        }
    });
    if deleted {
        StatusCode::NO_CONTENT.into_response()
    } else {
        twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found")
    }
}
