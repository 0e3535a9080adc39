//! HTTP to the edge (signed; see docs/protocol.md "Internal HTTP") and to the Twilio
//! REST API (docs/wire-formats.md "Twilio Calls REST").

use std::time::Duration;

use shared::auth;
use shared::events::CallContext;
use shared::language::Farewell;
use shared::twilio::rest::{self, basic_auth, TwilioApiError, UpdateCall};
use shared::twiml;

const HTTP_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// Worth retrying: the edge is down, slow, or answered 5xx/429.
    #[error("edge unavailable: {0}")]
    Unavailable(String),
    /// Retrying cannot help (the call is unknown, or the event was refused).
    #[error("edge refused: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[derive(Clone)]
pub struct EdgeClient {
    base_url: String,
    secret: String,
    http: reqwest::Client,
}

impl EdgeClient {
    pub fn new(base_url: &str, secret: &str) -> EdgeClient {
        let http = reqwest::Client::builder().timeout(HTTP_DEADLINE).build().unwrap_or_default();
        EdgeClient { base_url: base_url.to_owned(), secret: secret.to_owned(), http }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> Result<Vec<u8>, EdgeError> {
        let signature = auth::sign_request(&self.secret, unix_now(), method.as_str(), path, &body);
        let response = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header(auth::SIGNATURE_HEADER, signature)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| EdgeError::Unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| EdgeError::Unavailable(e.to_string()))?.to_vec();
        match status {
            200..=299 => Ok(bytes),
            408 | 429 | 500..=599 => Err(EdgeError::Unavailable(format!("HTTP {status}"))),
            _ => Err(EdgeError::Refused { status, body: String::from_utf8_lossy(&bytes).into_owned() }),
        }
    }

    pub async fn context(&self, call_id: &str) -> Result<CallContext, EdgeError> {
        let body = self.send(reqwest::Method::GET, &format!("/internal/calls/{call_id}"), Vec::new()).await?;
        serde_json::from_slice(&body)
            .map_err(|e| EdgeError::Refused { status: 200, body: format!("unreadable context: {e}") })
    }

    pub async fn post_event(&self, call_id: &str, event_json: &str) -> Result<(), EdgeError> {
        self.send(reqwest::Method::POST, &format!("/internal/calls/{call_id}/events"), event_json.as_bytes().to_vec())
            .await?;
        Ok(())
    }
}

/// Why a hang-up failed.
#[derive(Debug, thiserror::Error)]
pub enum HangUpError {
    /// Twilio was not reached, or its answer was not read.
    #[error("Twilio unreachable: {0}")]
    Network(#[from] reqwest::Error),
    /// Twilio answered with an error.
    #[error(transparent)]
    Twilio(#[from] TwilioApiError),
}

#[derive(Clone)]
pub struct TwilioRest {
    base_url: String,
    account_sid: String,
    authorization: String,
    http: reqwest::Client,
}

impl TwilioRest {
    pub fn new(base_url: &str, account_sid: &str, auth_token: &str) -> TwilioRest {
        let http = reqwest::Client::builder().timeout(HTTP_DEADLINE).build().unwrap_or_default();
        TwilioRest {
            base_url: base_url.to_owned(),
            account_sid: account_sid.to_owned(),
            authorization: basic_auth(account_sid, auth_token),
            http,
        }
    }

    /// Hangs up, saying `farewell` first if given. A call that has already ended
    /// (404, or 21220 "not in progress") counts as hung up.
    pub async fn hang_up(&self, call_sid: &str, farewell: Option<&Farewell>) -> Result<(), HangUpError> {
        let update = match farewell {
            Some(farewell) => UpdateCall::Twiml(twiml::say_then_hang_up(&farewell.text, &farewell.locale)),
            None => UpdateCall::HangUp,
        };
        let url = format!("{}{}", self.base_url, UpdateCall::path(&self.account_sid, call_sid));
        let response = self
            .http
            .post(url)
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(update.to_form())
            .send()
            .await?;
        let status = response.status().as_u16();
        // A body that cannot be read is an empty one: the status still says how it went.
        let body = response.bytes().await.unwrap_or_default();
        match rest::check_response(status, &body) {
            Ok(_) => Ok(()),
            Err(error) if rest::already_ended(&error) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}
