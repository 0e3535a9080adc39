//! The Calls REST API (docs/wire-formats.md, "Twilio Calls REST"): the forms we send and the
//! JSON we get back.

use serde::{Deserialize, Serialize};

use super::form;

pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// `POST {base}/2010-04-01/Accounts/{AccountSid}/Calls.json`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateCall {
    pub to: String,
    pub from: String,
    pub url: String,
    pub status_callback: String,
    /// Seconds to let it ring.
    pub timeout_seconds: u32,
    /// Hard cap on the call's length, enforced by Twilio as a backstop.
    pub time_limit_seconds: u32,
    /// Asynchronous answering-machine detection, its verdict POSTed here: the call is
    /// connected at once (the host's greeting reaches the agent) and a machine's verdict
    /// arrives mid-call ([AMD](https://www.twilio.com/docs/voice/answering-machine-detection):
    /// `MachineDetection=Enable` returns as soon as the party is identified, `AsyncAmd`
    /// runs it in the background).
    pub amd_callback: Option<String>,
    /// Digits Twilio plays once the call connects (`SendDigits`): a known extension,
    /// `w` a half-second pause.
    pub send_digits: Option<String>,
    /// Record both sides, one channel each, and POST the finished recording here.
    pub recording_callback: Option<String>,
}

impl CreateCall {
    pub fn path(account_sid: &str) -> String {
        format!("/2010-04-01/Accounts/{account_sid}/Calls.json")
    }

    pub fn to_form(&self) -> String {
        let timeout = self.timeout_seconds.to_string();
        let time_limit = self.time_limit_seconds.to_string();
        let mut pairs = vec![
            ("To", self.to.as_str()),
            ("From", self.from.as_str()),
            ("Url", self.url.as_str()),
            ("Method", "POST"),
            ("StatusCallback", self.status_callback.as_str()),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("Timeout", timeout.as_str()),
            ("TimeLimit", time_limit.as_str()),
        ];
        if let Some(callback) = &self.amd_callback {
            pairs.extend([
                ("MachineDetection", "Enable"),
                ("AsyncAmd", "true"),
                ("AsyncAmdStatusCallback", callback.as_str()),
                ("AsyncAmdStatusCallbackMethod", "POST"),
            ]);
        }
        if let Some(digits) = &self.send_digits {
            pairs.push(("SendDigits", digits.as_str()));
        }
        // https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource
        if let Some(callback) = &self.recording_callback {
            pairs.extend([
                ("Record", "true"),
                ("RecordingChannels", "dual"),
                ("RecordingStatusCallback", callback.as_str()),
                ("RecordingStatusCallbackMethod", "POST"),
                ("RecordingStatusCallbackEvent", "completed"),
            ]);
        }
        form::encode(pairs)
    }
}

/// `POST {base}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateCall {
    /// Hang up a live call.
    HangUp,
    /// Stop a call still queued or ringing.
    Cancel,
    /// Replace the call's TwiML (e.g. say a farewell, then hang up).
    Twiml(String),
}

impl UpdateCall {
    pub fn path(account_sid: &str, call_sid: &str) -> String {
        format!("/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json")
    }

    pub fn to_form(&self) -> String {
        match self {
            UpdateCall::HangUp => form::encode([("Status", "completed")]),
            UpdateCall::Cancel => form::encode([("Status", "canceled")]),
            UpdateCall::Twiml(twiml) => form::encode([("Twiml", twiml.as_str())]),
        }
    }
}

/// `DELETE {base}/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.json`: the
/// recording's audio is deleted, Twilio answers 204 with no body, and 404 once it is gone
/// (https://www.twilio.com/docs/voice/api/recording#delete-a-recording-resource).
pub fn recording_path(account_sid: &str, recording_sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}.json")
}

/// The parts of the Call resource we read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResource {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub account_sid: Option<String>,
}

/// Twilio's error body, legacy or RFC 9457 shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("Twilio error {code}: {message}")]
pub struct TwilioApiError {
    pub code: u32,
    pub message: String,
    #[serde(default)]
    pub more_info: Option<String>,
    #[serde(default)]
    pub status: u16,
}

impl TwilioApiError {
    /// Reads an error response; a body we cannot read still yields an error that
    /// names the HTTP status.
    pub fn from_response(http_status: u16, body: &[u8]) -> TwilioApiError {
        #[derive(Deserialize)]
        struct Problem {
            code: Option<u32>,
            detail: Option<String>,
            title: Option<String>,
        }
        if let Ok(mut error) = serde_json::from_slice::<TwilioApiError>(body) {
            if error.status == 0 {
                error.status = http_status;
            }
            return error;
        }
        if let Ok(problem) = serde_json::from_slice::<Problem>(body) {
            if let Some(code) = problem.code {
                return TwilioApiError {
                    code,
                    message: problem.detail.or(problem.title).unwrap_or_else(|| "no message".into()),
                    more_info: None,
                    status: http_status,
                };
            }
        }
        TwilioApiError {
            code: 0,
            message: format!("Twilio answered HTTP {http_status} with a body that is not a Twilio error"),
            more_info: None,
            status: http_status,
        }
    }
}

/// Reads a Calls API answer: the body of a 2xx, or Twilio's error. Every caller of the
/// REST API (the edge's create and update, the media worker's hang-up) checks here.
pub fn check_response(http_status: u16, body: &[u8]) -> Result<&[u8], TwilioApiError> {
    if (200..300).contains(&http_status) {
        Ok(body)
    } else {
        Err(TwilioApiError::from_response(http_status, body))
    }
}

/// Whether a failed hang-up means the call is already over: 404 (no such call), or
/// 21220 "Call is not in progress". Hanging up is then done.
pub fn already_ended(error: &TwilioApiError) -> bool {
    error.status == 404 || error.code == 21220
}

/// `Authorization: Basic …` for the account.
pub fn basic_auth(account_sid: &str, auth_token: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{auth_token}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_form_has_every_status_event_amd_and_limits() {
        let form = CreateCall {
            to: "+15105485525".into(),
            from: "+15005550006".into(),
            url: "https://edge.example/twilio/twiml/c1".into(),
            status_callback: "https://edge.example/twilio/status/c1".into(),
            timeout_seconds: 30,
            time_limit_seconds: 900,
            amd_callback: Some("https://edge.example/twilio/amd/c1".into()),
            send_digits: Some("ww12#".into()),
            recording_callback: Some("https://edge.example/twilio/recording/c1".into()),
        }
        .to_form();
        let pairs = form::parse(form.as_bytes());
        let events: Vec<_> =
            pairs.iter().filter(|(k, _)| k == "StatusCallbackEvent").map(|(_, v)| v.as_str()).collect();
        assert_eq!(events, ["initiated", "ringing", "answered", "completed"]);
        assert_eq!(form::get(&pairs, "To"), Some("+15105485525"));
        assert_eq!(form::get(&pairs, "Timeout"), Some("30"));
        assert_eq!(form::get(&pairs, "TimeLimit"), Some("900"));
        assert_eq!(form::get(&pairs, "MachineDetection"), Some("Enable"));
        assert_eq!(form::get(&pairs, "AsyncAmd"), Some("true"), "the greeting reaches the agent");
        assert_eq!(form::get(&pairs, "AsyncAmdStatusCallback"), Some("https://edge.example/twilio/amd/c1"));
        assert_eq!(form::get(&pairs, "SendDigits"), Some("ww12#"));
        assert_eq!(form::get(&pairs, "Record"), Some("true"));
        assert_eq!(form::get(&pairs, "RecordingChannels"), Some("dual"));
        assert_eq!(form::get(&pairs, "RecordingStatusCallback"), Some("https://edge.example/twilio/recording/c1"));
        assert_eq!(form::get(&pairs, "Url"), Some("https://edge.example/twilio/twiml/c1"));
    }

    #[test]
    fn a_call_without_extension_or_recording_asks_for_neither() {
        let form = CreateCall {
            to: "+15105485525".into(),
            from: "+15005550006".into(),
            url: "u".into(),
            status_callback: "s".into(),
            timeout_seconds: 30,
            time_limit_seconds: 900,
            amd_callback: None,
            send_digits: None,
            recording_callback: None,
        }
        .to_form();
        let pairs = form::parse(form.as_bytes());
        for absent in ["MachineDetection", "AsyncAmd", "SendDigits", "Record", "RecordingStatusCallback"] {
            assert_eq!(form::get(&pairs, absent), None, "{absent}");
        }
    }

    #[test]
    fn errors_are_read_in_both_shapes_and_never_lost() {
        let legacy = br#"{"code":21211,"message":"Invalid phone number","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#;
        let e = TwilioApiError::from_response(400, legacy);
        assert_eq!((e.code, e.message.as_str(), e.status), (21211, "Invalid phone number", 400));
        let problem = br#"{"type":"x","title":"Bad","status":400,"code":20001,"detail":"Missing To"}"#;
        let e = TwilioApiError::from_response(400, problem);
        assert_eq!((e.code, e.message.as_str()), (20001, "Missing To"));
        let e = TwilioApiError::from_response(503, b"<html>oops</html>");
        assert_eq!((e.code, e.status), (0, 503));
        assert!(e.message.contains("503"));
    }

    #[test]
    fn a_2xx_gives_its_body_and_anything_else_an_error() {
        assert_eq!(check_response(201, b"{}"), Ok(&b"{}"[..]));
        let gone = check_response(404, br#"{"code":20404,"message":"Not found","status":404}"#).unwrap_err();
        assert!(already_ended(&gone));
        let over = check_response(400, br#"{"code":21220,"message":"Call is not in progress","status":400}"#);
        assert!(already_ended(&over.unwrap_err()));
        let refused = check_response(401, br#"{"code":20003,"message":"Authenticate","status":401}"#).unwrap_err();
        assert_eq!(refused.code, 20003);
        assert!(!already_ended(&refused));
    }

    #[test]
    fn basic_auth_is_sid_colon_token() {
        assert_eq!(basic_auth("AC1", "tok"), "Basic QUMxOnRvaw==");
    }
}
