//! The one error type of the edge's HTTP boundary, mapped to status and the contract's
//! JSON shape in one place.

use serde_json::json;

use crate::http::EdgeResponse;
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
    #[error("{in_flight} calls are in flight for this API key; the limit is {limit}. Try again when one has ended.")]
    TooManyCalls { in_flight: usize, limit: u32 },
    #[error("this API key may book {limit} calls a minute; try again in {retry_after_seconds} s")]
    RateLimited { limit: u32, retry_after_seconds: u32 },
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("Twilio refused the call: {message} (Twilio error {code})")]
    TwilioRefused { code: u32, message: String },
    #[error("Twilio could not be reached: {0}")]
    TwilioUnreachable(String),
    #[error("call storage is unavailable: {0}")]
    Storage(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the service is misconfigured: {0}")]
    Misconfigured(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ApiError::Storage(error.to_string())
    }
}

impl From<TwilioError> for ApiError {
    fn from(error: TwilioError) -> ApiError {
        match error {
            TwilioError::Api(api) => ApiError::TwilioRefused { code: api.code, message: api.message },
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
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::TooManyCalls { .. } | ApiError::RateLimited { .. } => 429,
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
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::TooManyCalls { .. } => "too_many_calls",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TwilioRefused { .. } => "twilio_refused",
            ApiError::TwilioUnreachable(_) => "twilio_unreachable",
            ApiError::Storage(_) => "storage_unavailable",
            ApiError::Misconfigured(_) => "misconfigured",
        }
    }

    pub fn to_response(&self) -> EdgeResponse {
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        match self {
            ApiError::InvalidField { field, .. } => error["field"] = json!(field),
            ApiError::TwilioRefused { code, message } => {
                error["twilio"] = json!({"code": code, "message": message});
            }
            ApiError::RateLimited { retry_after_seconds, .. } => {
                error["retry_after_seconds"] = json!(retry_after_seconds)
            }
            _ => {}
        }
        let mut response = EdgeResponse::json(self.status(), &json!({ "error": error }));
        if let ApiError::RateLimited { retry_after_seconds, .. } = self {
            response.retry_after_seconds = Some(*retry_after_seconds);
        }
        response
    }
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
