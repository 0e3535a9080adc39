//! The edge's settings (wrangler vars and secrets), read through a lookup function so
//! the Worker's `Env` and tests supply them the same way.

use shared::destination::{Destinations, DEFAULT_ALLOWED};
use shared::schedule::{CallingWindow, MAX_ATTEMPTS};
use shared::twilio::rest::DEFAULT_API_BASE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// The public origin Twilio calls, e.g. `https://concierge.example.com`; signatures
    /// are checked against it, not against the URL the request arrived on.
    pub public_base_url: String,
    pub media_ws_url: String,
    pub twilio_api_base: String,
    pub twilio_from_number: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    pub internal_secret: String,
    /// Comma-separated `key` or `key:webhook_secret` ([`shared::webhook::key_entries`]).
    /// A key without a webhook secret may book, but not with a `callback_url`.
    pub api_keys: String,
    /// Ring time before Twilio gives up (`Timeout`).
    pub ring_timeout_seconds: u32,
    /// Twilio's hard cap on the call (`TimeLimit`); the media worker ends calls earlier.
    pub call_time_limit_seconds: u32,
    /// How long a stream token stays valid after the TwiML is served.
    pub stream_token_seconds: i64,
    /// First wait before retrying a refused completion webhook; doubles per attempt.
    pub webhook_retry_base_seconds: u32,
    /// Calls one API key may have in flight at once; more is a 429.
    pub max_calls_in_flight: u32,
    /// Bookings one API key may make per calendar minute; more is a 429.
    pub bookings_per_minute: u32,
    /// Numbers that may be dialed (`ALLOWED_DESTINATIONS`, default `+1`).
    pub destinations: Destinations,
    /// Calls one number may receive per calendar hour, across all keys; more is a 429.
    pub calls_per_destination_per_hour: u32,
    /// Local development only: plain-http and loopback callback URLs are accepted.
    pub allow_insecure_callbacks: bool,
    /// Calls go out only inside this window on the restaurant's clock
    /// (`CALLING_WINDOW`, e.g. `10:00-21:30`); a booking may narrow or move it.
    pub calling_window: CallingWindow,
    /// No call starts later than this many minutes before the reservation.
    pub call_lead_minutes: u32,
    /// Calls per booking in all, after busy / no answer / carrier failure / voicemail,
    /// unless the booking says otherwise.
    pub retry_max_attempts: u32,
    /// Seconds from one attempt's end to the next, unless the booking says otherwise.
    pub retry_interval_seconds: u32,
    /// The agent's opening sentence (`AGENT_INTRODUCTION`), `{guest}` and `{restaurant}`
    /// filled in; by default it says it is an AI assistant calling for the guest.
    pub agent_introduction: Option<String>,
    /// Days a call's record (request, transcript, outcome) is kept after its last
    /// change, wherever it lives: the read model, the call's keeper, the key's list.
    pub record_retention_days: u32,
}

/// `name` as a whole number, `default` when unset or empty.
fn whole_number(lookup: &impl Fn(&str) -> Option<String>, name: &str, default: u32) -> Result<u32, ConfigError> {
    match lookup(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError(format!("{name} must be a whole number, not '{v}'"))),
    }
}

/// `RECORD_RETENTION_DAYS` alone (default 30, 1 to 365): what a Durable Object's own
/// bookkeeping needs, without reading and checking every other setting.
pub fn record_retention_days(lookup: &impl Fn(&str) -> Option<String>) -> Result<u32, ConfigError> {
    let days = whole_number(lookup, "RECORD_RETENTION_DAYS", 30)?;
    if !(1..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(ConfigError(format!("RECORD_RETENTION_DAYS must be from 1 to {MAX_RETENTION_DAYS}")));
    }
    Ok(days)
}

impl EdgeConfig {
    /// [`EdgeConfig::record_retention_days`] as a duration.
    pub fn record_retention(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.record_retention_days))
    }
}

/// When restaurants take calls about bookings: late morning to late evening.
pub const DEFAULT_CALLING_WINDOW: &str = "10:00-21:30";

/// A year: beyond that a record is an archive, which this is not.
const MAX_RETENTION_DAYS: u32 = 365;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("edge configuration: {0}")]
pub struct ConfigError(pub String);

impl EdgeConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<EdgeConfig, ConfigError> {
        let required = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError(format!("{name} is not set")))
        };
        let number = |name: &str, default: u32| whole_number(&lookup, name, default);
        let config = EdgeConfig {
            public_base_url: required("PUBLIC_BASE_URL")?.trim_end_matches('/').to_owned(),
            media_ws_url: required("MEDIA_WS_URL")?,
            twilio_api_base: lookup("TWILIO_API_BASE")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_API_BASE.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            twilio_from_number: required("TWILIO_FROM_NUMBER")?,
            twilio_account_sid: required("TWILIO_ACCOUNT_SID")?,
            twilio_auth_token: required("TWILIO_AUTH_TOKEN")?,
            internal_secret: required("INTERNAL_SECRET")?,
            api_keys: required("API_KEYS")?,
            ring_timeout_seconds: number("RING_TIMEOUT_SECONDS", 30)?,
            call_time_limit_seconds: number("CALL_TIME_LIMIT_SECONDS", 900)?,
            stream_token_seconds: i64::from(number("STREAM_TOKEN_SECONDS", 300)?),
            webhook_retry_base_seconds: number("WEBHOOK_RETRY_BASE_SECONDS", 60)?,
            max_calls_in_flight: number("MAX_CALLS_IN_FLIGHT", 20)?,
            bookings_per_minute: number("BOOKINGS_PER_MINUTE", 30)?,
            destinations: Destinations::parse(
                &lookup("ALLOWED_DESTINATIONS").filter(|v| !v.trim().is_empty()).unwrap_or(DEFAULT_ALLOWED.to_owned()),
            )
            .map_err(|e| ConfigError(format!("ALLOWED_DESTINATIONS: {e}")))?,
            calls_per_destination_per_hour: number("CALLS_PER_DESTINATION_PER_HOUR", 4)?,
            record_retention_days: record_retention_days(&lookup)?,
            agent_introduction: lookup("AGENT_INTRODUCTION").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()),
            calling_window: CallingWindow::parse(
                lookup("CALLING_WINDOW").filter(|v| !v.trim().is_empty()).as_deref().unwrap_or(DEFAULT_CALLING_WINDOW),
            )
            .map_err(|e| ConfigError(format!("CALLING_WINDOW: {e}")))?,
            call_lead_minutes: number("CALL_LEAD_MINUTES", 30)?,
            retry_max_attempts: number("RETRY_MAX_ATTEMPTS", 3)?,
            retry_interval_seconds: number("RETRY_INTERVAL_SECONDS", 600)?,
            allow_insecure_callbacks: match lookup("ALLOW_INSECURE_CALLBACKS").as_deref().map(str::trim) {
                None | Some("" | "0" | "false") => false,
                Some("1" | "true") => true,
                Some(other) => {
                    return Err(ConfigError(format!("ALLOW_INSECURE_CALLBACKS must be 1 or 0, not '{other}'")))
                }
            },
        };
        if !(1..=MAX_ATTEMPTS).contains(&config.retry_max_attempts) {
            return Err(ConfigError(format!("RETRY_MAX_ATTEMPTS must be from 1 to {MAX_ATTEMPTS}")));
        }
        if config.retry_interval_seconds == 0 {
            return Err(ConfigError("RETRY_INTERVAL_SECONDS must be at least 1".into()));
        }
        shared::webhook::check_key_entries(&config.api_keys).map_err(|e| ConfigError(format!("API_KEYS: {e}")))?;
        if !config.media_ws_url.starts_with("wss://") && !config.media_ws_url.starts_with("ws://") {
            return Err(ConfigError("MEDIA_WS_URL must be a ws:// or wss:// URL".into()));
        }
        if !shared::booking::is_e164(&config.twilio_from_number) {
            return Err(ConfigError("TWILIO_FROM_NUMBER must be an E.164 number".into()));
        }
        Ok(config)
    }
}
