//! What a booking must pass before anything is dialed or stored, beyond its own
//! validation ([`shared::booking`]): the number is one this deployment calls
//! ([`shared::destination`]), the callback URL cannot reach inside
//! ([`shared::callback_url`], with the deployment's `ALLOW_INSECURE_CALLBACKS`), and
//! the key has a webhook secret to sign its callbacks with ([`shared::webhook`]).
//! Also the per-destination allowance: one live call per number and
//! `CALLS_PER_DESTINATION_PER_HOUR`, across all keys ([`crate::allowance`]).

use chrono::{DateTime, Utc};
use shared::booking::BookingRequest;

use crate::allowance::{Admission, Admit};
use crate::config::EdgeConfig;
use crate::error::ApiError;

const HOUR_SECONDS: u32 = 3600;
/// A busy number's `Retry-After`: calls last minutes, so asking again in one is fair.
const BUSY_RETRY_SECONDS: u32 = 60;

/// Refuses a booking this deployment must not carry out, naming the field at fault.
pub fn vet_booking(config: &EdgeConfig, owner: &str, booking: &BookingRequest) -> Result<(), ApiError> {
    config.destinations.check(&booking.restaurant.phone).map_err(|e| ApiError::InvalidField {
        field: "restaurant.phone".into(),
        message: format!("restaurant.phone {e}"),
    })?;
    if let Some(url) = &booking.callback_url {
        let invalid = |message: String| ApiError::InvalidField { field: "callback_url".into(), message };
        let checked = shared::callback_url::check(url, config.allow_insecure_callbacks)
            .map_err(|e| invalid(format!("callback_url {e}")))?;
        // The edge's own routes are no callback: a webhook must never land on them. A
        // deployed Worker's fetch ignores custom ports (Cloudflare's known issues), so
        // the host alone decides; locally, another port is another service.
        let own = shared::callback_url::check(&config.public_base_url, true).ok();
        let port = |url: &shared::callback_url::CallbackUrl| url.port.unwrap_or(if url.https { 443 } else { 80 });
        let is_own = own.is_some_and(|own| {
            own.host == checked.host && (!config.allow_insecure_callbacks || port(&own) == port(&checked))
        });
        if is_own {
            return Err(invalid("callback_url must not point at this service itself".into()));
        }
        if shared::webhook::secret_for_owner(&config.api_keys, owner).is_none() {
            return Err(invalid(
                "callback_url cannot be used with this API key: it has no webhook signing secret configured".into(),
            ));
        }
    }
    Ok(())
}

/// The `Concierge-Signature` for a webhook of `owner`'s call to `url`, or `None` when
/// it must not be sent: the URL no longer passes the deployment's rules, or the key
/// (or its webhook secret) is gone from `API_KEYS`.
pub fn webhook_signature(
    config: &EdgeConfig,
    owner: &str,
    url: &str,
    now: DateTime<Utc>,
    body: &str,
) -> Option<String> {
    shared::callback_url::check(url, config.allow_insecure_callbacks).ok()?;
    let secret = shared::webhook::secret_for_owner(&config.api_keys, owner)?;
    Some(shared::webhook::sign(secret, now.timestamp(), body.as_bytes()))
}

/// A booking's request to its number's allowance: one live call, so many an hour.
pub fn destination_admit(config: &EdgeConfig, key_request: &Admit) -> Admit {
    Admit {
        ended: Vec::new(),
        max_in_flight: 1,
        per_window: config.calls_per_destination_per_hour,
        window_seconds: HOUR_SECONDS,
        ..key_request.clone()
    }
}

/// The answer to a booking its number's allowance refused.
pub fn destination_refusal(config: &EdgeConfig, admission: &Admission) -> ApiError {
    match admission {
        Admission::RateLimited { retry_after_seconds } => ApiError::DestinationRateLimited {
            limit: config.calls_per_destination_per_hour,
            retry_after_seconds: *retry_after_seconds,
        },
        Admission::TooManyCalls { .. } | Admission::Admitted => {
            ApiError::DestinationBusy { retry_after_seconds: BUSY_RETRY_SECONDS }
        }
    }
}
