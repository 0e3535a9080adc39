//! The one error type of the edge's HTTP boundary, mapped to status and the contract's
//! JSON shape in one place. What only the operator should see (internal URLs such as
//! `TWILIO_API_BASE`, the Twilio account id, storage details) is logged, never answered.

use serde_json::json;

use crate::http::EdgeResponse;
use crate::keeper::Refused;
use crate::ports::{StoreError, TwilioError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{message}")]
    InvalidField { field: String, message: String },
    #[error("missing or unknown API key; send 'Authorization: Bearer <key>'")]
    Unauthorized,
    #[error("request signature is missing, wrong or stale")]
    Forbidden,
    #[error("no call with this id")]
    NotFound,
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    /// Only a final call may be deleted.
    #[error("{0}")]
    NotFinal(String),
    #[error("{in_flight} calls are in flight for this API key; the limit is {limit}. Try again when one has ended.")]
    TooManyCalls { in_flight: usize, limit: u32 },
    #[error("this API key may book {limit} calls a minute; try again in {retry_after_seconds} s")]
    RateLimited { limit: u32, retry_after_seconds: u32 },
    #[error(
        "a call to this number is already in progress; one call at a time per number. Try again when it has ended."
    )]
    DestinationBusy { retry_after_seconds: u32 },
    #[error("this number may receive {limit} calls an hour; try again in {retry_after_seconds} s")]
    DestinationRateLimited { limit: u32, retry_after_seconds: u32 },
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// `message` is Twilio's, with URLs and account ids taken out ([`scrub`]).
    #[error("Twilio refused the call: {message} (Twilio error {code})")]
    TwilioRefused { code: u32, message: String },
    /// The detail (which names `TWILIO_API_BASE`) is logged only.
    #[error("Twilio could not be reached; try again shortly")]
    TwilioUnreachable(String),
    /// The detail is logged only.
    #[error("call storage is unavailable; try again shortly")]
    Storage(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the service is misconfigured: {0}")]
    Misconfigured(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Unavailable(detail) => ApiError::Storage(detail),
            StoreError::Refused(refused @ Refused::NotFinal(_)) => ApiError::NotFinal(refused.to_string()),
            StoreError::Refused(refused @ Refused::Exists(_)) => ApiError::Storage(refused.to_string()),
        }
    }
}

impl From<TwilioError> for ApiError {
    fn from(error: TwilioError) -> ApiError {
        match error {
            TwilioError::Api(api) => ApiError::TwilioRefused { code: api.code, message: scrub(&api.message) },
            TwilioError::Network(message) => ApiError::TwilioUnreachable(message),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::MalformedJson(_) | ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden => 403,
            ApiError::NotFound | ApiError::NoRoute => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Conflict(_) | ApiError::NotFinal(_) => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::TooManyCalls { .. }
            | ApiError::RateLimited { .. }
            | ApiError::DestinationBusy { .. }
            | ApiError::DestinationRateLimited { .. } => 429,
            ApiError::InvalidField { .. } => 422,
            ApiError::TwilioRefused { .. } | ApiError::TwilioUnreachable(_) => 502,
            ApiError::Storage(_) | ApiError::Misconfigured(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::InvalidField { .. } => "invalid_field",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::NoRoute => "no_route",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::NotFinal(_) => "call_not_final",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::TooManyCalls { .. } => "too_many_calls",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::DestinationBusy { .. } => "destination_busy",
            ApiError::DestinationRateLimited { .. } => "destination_rate_limited",
            ApiError::TwilioRefused { .. } => "twilio_refused",
            ApiError::TwilioUnreachable(_) => "twilio_unreachable",
            ApiError::Storage(_) => "storage_unavailable",
            ApiError::Misconfigured(_) => "misconfigured",
        }
    }

    /// What the operator's log gets beyond the answer, if anything.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ApiError::TwilioUnreachable(detail) | ApiError::Storage(detail) | ApiError::Misconfigured(detail) => {
                Some(detail)
            }
            _ => None,
        }
    }

    fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            ApiError::RateLimited { retry_after_seconds, .. }
            | ApiError::DestinationBusy { retry_after_seconds }
            | ApiError::DestinationRateLimited { retry_after_seconds, .. } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    pub fn to_response(&self) -> EdgeResponse {
        if let Some(detail) = self.detail() {
            log_error(&format!("{}: {detail}", self.code()));
        }
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        match self {
            ApiError::InvalidField { field, .. } => error["field"] = json!(field),
            ApiError::TwilioRefused { code, message } => {
                error["twilio"] = json!({"code": code, "message": message});
            }
            _ => {}
        }
        let retry_after_seconds = self.retry_after_seconds();
        if let Some(seconds) = retry_after_seconds {
            error["retry_after_seconds"] = json!(seconds);
        }
        let mut response = EdgeResponse::json(self.status(), &json!({ "error": error }));
        response.retry_after_seconds = retry_after_seconds;
        response
    }
}

/// What a failed dial writes into the call's record (`error.code`, `error.message`):
/// nothing the caller may not see.
pub fn recorded_failure(error: &TwilioError) -> (String, String) {
    match error {
        TwilioError::Api(api) => (format!("twilio_{}", api.code), scrub(&api.message)),
        TwilioError::Network(_) => ("twilio_unreachable".to_owned(), "Twilio could not be reached".to_owned()),
    }
}

/// Twilio's error message without the URLs and account ids it may quote (a 404's
/// message names `/2010-04-01/Accounts/AC…/Calls.json`).
pub fn scrub(message: &str) -> String {
    let words: Vec<&str> = message
        .split(' ')
        .map(|word| {
            let secret = word.contains("://") || word.contains("/Accounts/") || has_account_sid(word);
            if secret {
                "[redacted]"
            } else {
                word
            }
        })
        .collect();
    words.join(" ")
}

/// True if `text` holds `AC` followed by 32 hex digits: a Twilio account id.
fn has_account_sid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(34).any(|w| w.starts_with(b"AC") && w[2..].iter().all(u8::is_ascii_hexdigit))
}

#[cfg(target_arch = "wasm32")]
fn log_error(line: &str) {
    worker::console_error!("{line}");
}

#[cfg(not(target_arch = "wasm32"))]
fn log_error(line: &str) {
    eprintln!("{line}");
}

impl From<shared::booking::BookingError> for ApiError {
    fn from(error: shared::booking::BookingError) -> ApiError {
        match error {
            shared::booking::BookingError::MalformedJson(message) => ApiError::MalformedJson(message),
            shared::booking::BookingError::InvalidField { field, message } => {
                ApiError::InvalidField { field: field.to_owned(), message: format!("{field} {message}") }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_account_ids_are_taken_out_of_twilio_messages() {
        let message =
            "The requested resource /2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls.json was not found";
        assert_eq!(scrub(message), "The requested resource [redacted] was not found");
        let sid =
            "Account AC0123456789abcdef0123456789abcdef is suspended; see https://www.twilio.com/docs/errors/20003";
        assert_eq!(scrub(sid), "Account [redacted] is suspended; see [redacted]");
        assert_eq!(scrub("Invalid 'To' Phone Number"), "Invalid 'To' Phone Number");
    }
}
