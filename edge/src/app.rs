//! The route table: every edge route of CONTRACT.md as a plain async function over
//! [`Ports`]. No Worker types here, so `cargo test` runs all of it.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::auth;
use shared::booking::BookingRequest;
use shared::call::{CallLedger, CallStatus};
use shared::events::{CallContext, CallEvent};
use shared::openai::config::instructions;
use shared::twilio::rest::{CreateCall, UpdateCall};
use shared::twilio::{form, signature, status::StatusCallback};
use shared::twiml;

use crate::allowance::{Admission, Admit, Slot};
use crate::config::EdgeConfig;
use crate::error::ApiError;
use crate::http::{EdgeRequest, EdgeResponse};
use crate::idempotency::Claim;
use crate::ports::{Clock, IdSource, Ports, Store, TwilioApi, TwilioError, WebhookSender};
use crate::safeguards;
use crate::serial::Leases;

/// Bodies larger than this are refused before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How often a request waits on an `Idempotency-Key` another request is booking with.
const CLAIM_POLL: std::time::Duration = std::time::Duration::from_millis(25);

pub struct Edge<S, T, W, C, I> {
    pub config: EdgeConfig,
    pub ports: Ports<S, T, W, C, I>,
    /// Serializes updates of one record; shared by every request of a Worker isolate.
    pub leases: Arc<Leases>,
}

/// A completion webhook not yet accepted, and when to try it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingWebhook {
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
}

/// Attempts before a webhook is given up (about 17 hours of backoff in all).
pub const WEBHOOK_MAX_ATTEMPTS: u32 = 12;
const PENDING_WEBHOOK_PREFIX: &str = "webhook:";
/// Per API key: its calls in flight and bookings this minute ([`crate::allowance`]).
const ALLOWANCE_PREFIX: &str = "allowance:";
/// Time a call's slot outlasts its longest possible call; also how long a booking may
/// take to save its record after taking a slot.
const SLOT_MARGIN: Duration = Duration::minutes(5);

fn call_key(call_id: &str) -> String {
    format!("call:{call_id}")
}

/// `base` seconds, doubling per attempt, at most four hours.
fn webhook_backoff(base_seconds: u32, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    Duration::seconds(i64::from(base_seconds) << doublings).min(Duration::hours(4))
}

impl<S: Store, T: TwilioApi, W: WebhookSender, C: Clock, I: IdSource> Edge<S, T, W, C, I> {
    pub fn new(config: EdgeConfig, ports: Ports<S, T, W, C, I>) -> Self {
        Edge { config, ports, leases: Arc::default() }
    }

    /// This edge, serializing its updates together with every other holder of `leases`.
    pub fn sharing(self, leases: Arc<Leases>) -> Self {
        Edge { leases, ..self }
    }

    /// Answers one request. Never fails: every error becomes the contract's JSON error.
    pub async fn handle(&self, request: &EdgeRequest) -> EdgeResponse {
        match self.route(request).await {
            Ok(response) => response,
            Err(error) => error.to_response(),
        }
    }

    async fn route(&self, request: &EdgeRequest) -> Result<EdgeResponse, ApiError> {
        if request.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
        }
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let method = request.method.as_str();
        match (method, segments.as_slice()) {
            ("POST", ["v1", "calls"]) => self.create_call(request).await,
            ("GET", ["v1", "calls", id]) => self.get_call(request, id).await,
            ("POST", ["v1", "calls", id, "cancel"]) => self.cancel_call(request, id).await,
            ("POST", ["twilio", "twiml", id]) => self.twiml(request, id).await,
            ("POST", ["twilio", "status", id]) => self.status_callback(request, id).await,
            ("GET", ["internal", "calls", id]) => self.call_context(request, id).await,
            ("POST", ["internal", "calls", id, "events"]) => self.call_event(request, id).await,
            (_, ["v1", "calls"] | ["v1", "calls", _] | ["v1", "calls", _, "cancel"]) => Err(ApiError::MethodNotAllowed),
            (_, ["twilio", _, _] | ["internal", "calls", _] | ["internal", "calls", _, "events"]) => {
                Err(ApiError::MethodNotAllowed)
            }
            _ => Err(ApiError::NoRoute),
        }
    }

    fn owner(&self, request: &EdgeRequest) -> Result<String, ApiError> {
        auth::key_owner(&self.config.api_keys, request.header_value("authorization"))
            .map_err(|_| ApiError::Unauthorized)
    }

    async fn load(&self, call_id: &str) -> Result<Option<CallLedger>, ApiError> {
        match self.ports.store.get(&call_key(call_id)).await? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ApiError::Storage(format!("stored call {call_id} is unreadable: {e}"))),
        }
    }

    async fn save(&self, ledger: &CallLedger) -> Result<(), ApiError> {
        let text = serde_json::to_string(ledger).map_err(|e| ApiError::Storage(e.to_string()))?;
        Ok(self.ports.store.put(&call_key(&ledger.record.call_id), &text).await?)
    }

    /// A call the presented key owns; any other key sees the same 404 as a missing call.
    async fn owned(&self, request: &EdgeRequest, call_id: &str) -> Result<CallLedger, ApiError> {
        let owner = self.owner(request)?;
        match self.load(call_id).await? {
            Some(ledger) if ledger.owner == owner => Ok(ledger),
            _ => Err(ApiError::NotFound),
        }
    }

    async fn create_call(&self, request: &EdgeRequest) -> Result<EdgeResponse, ApiError> {
        let owner = self.owner(request)?;
        let now = self.ports.clock.now();
        let booking = BookingRequest::parse(&request.body, now)?;
        safeguards::vet_booking(&self.config, &owner, &booking)?;
        let request_hash = hex::encode(Sha256::digest(serde_json::to_vec(&booking).unwrap_or_default()));

        let idempotency_key = request
            .header_value("idempotency-key")
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| format!("idem:{owner}:{}", hex::encode(Sha256::digest(k.as_bytes()))));
        let Some(key) = idempotency_key else { return self.book(owner, booking, now, None).await };
        if let Some(call_id) = self.claim_idempotency_key(&key, &request_hash).await? {
            let ledger = self.load(&call_id).await?.ok_or_else(|| {
                // Bound in the key's Durable Object, not yet visible in this location's KV.
                ApiError::Conflict("the call this Idempotency-Key made is still being saved; retry shortly".into())
            })?;
            return Ok(created_body(200, &ledger));
        }
        let booked = self.book(owner, booking, now, Some((&key, &request_hash))).await;
        if booked.is_err() {
            // Refused before dialing (limits, storage): the key is free for a retry; a
            // key already bound to a call stays bound. The refusal is the answer: if
            // giving the key back fails too, the claim lapses after CLAIM_SECONDS.
            let _given_back = self.ports.store.settle_key(&key, &request_hash, None).await;
        }
        booked
    }

    /// The call an `Idempotency-Key` already made, or `None` once this request holds
    /// the key. A request with the same key and body that is booking right now is
    /// waited for, so overlapping retries all answer with the one call it makes.
    async fn claim_idempotency_key(&self, key: &str, request_hash: &str) -> Result<Option<String>, ApiError> {
        loop {
            match self.ports.store.claim_key(key, request_hash, self.ports.clock.now()).await? {
                Claim::Granted => return Ok(None),
                Claim::Existing { call_id } => return Ok(Some(call_id)),
                Claim::InProgress => self.ports.clock.sleep(CLAIM_POLL).await,
                Claim::Mismatch => {
                    return Err(ApiError::Conflict(
                        "this Idempotency-Key was already used with a different request body".into(),
                    ))
                }
            }
        }
    }

    /// Books and dials. `idempotency` is the claimed key and the request's hash, bound
    /// to the call before it is dialed.
    async fn book(
        &self,
        owner: String,
        booking: BookingRequest,
        now: DateTime<Utc>,
        idempotency: Option<(&str, &str)>,
    ) -> Result<EdgeResponse, ApiError> {
        let call_id = self.ports.ids.call_id();
        self.admit_booking(&owner, &call_id, &booking.restaurant.phone, now).await?;
        // Twilio's first callbacks can arrive before the dialed call is saved.
        let _call_guard = self.leases.lock(&call_key(&call_id), &self.ports.clock).await;
        let mut ledger = CallLedger::new(call_id.clone(), owner, booking, now);
        self.save(&ledger).await?;
        if let Some((key, request_hash)) = idempotency {
            self.ports.store.settle_key(key, request_hash, Some(&call_id)).await?;
        }

        let create = CreateCall {
            to: ledger.record.request.restaurant.phone.clone(),
            from: self.config.twilio_from_number.clone(),
            url: format!("{}/twilio/twiml/{call_id}", self.config.public_base_url),
            status_callback: format!("{}/twilio/status/{call_id}", self.config.public_base_url),
            timeout_seconds: self.config.ring_timeout_seconds,
            time_limit_seconds: self.config.call_time_limit_seconds,
            machine_detection: true,
        };
        match self.ports.twilio.create_call(&create).await {
            Ok(resource) => {
                ledger.dialed(&resource.sid, self.ports.clock.now());
                self.save(&ledger).await?;
                Ok(created_body(201, &ledger))
            }
            Err(error) => {
                let (code, message) = crate::error::recorded_failure(&error);
                ledger.failed(&code, &message, self.ports.clock.now());
                self.save(&ledger).await?;
                // The caller hears of the failure now, not by webhook; the slot goes back.
                self.release_slot(&ledger).await;
                Err(error.into())
            }
        }
    }

    /// Takes one of the key's in-flight slots and counts the booking in this minute,
    /// then the number's one live slot and its count this hour, or refuses with the
    /// limit it would break. A number's refusal gives the key's admission back.
    async fn admit_booking(&self, owner: &str, call_id: &str, phone: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
        let config = &self.config;
        let longest_call = i64::from(config.ring_timeout_seconds) + i64::from(config.call_time_limit_seconds);
        let request = Admit {
            call_id: call_id.to_owned(),
            ended: Vec::new(),
            max_in_flight: config.max_calls_in_flight,
            per_window: config.bookings_per_minute,
            window_seconds: 60,
            now,
            slot_until: now + Duration::seconds(longest_call) + SLOT_MARGIN,
        };
        let key = format!("{ALLOWANCE_PREFIX}{owner}");
        self.admit_to(&key, request.clone(), |admission| match admission {
            Admission::RateLimited { retry_after_seconds } => {
                ApiError::RateLimited { limit: config.bookings_per_minute, retry_after_seconds: *retry_after_seconds }
            }
            Admission::TooManyCalls { in_flight } => {
                ApiError::TooManyCalls { in_flight: in_flight.len(), limit: config.max_calls_in_flight }
            }
            Admission::Admitted => ApiError::TooManyCalls { in_flight: 0, limit: config.max_calls_in_flight },
        })
        .await?;
        let destination = safeguards::destination_key(phone);
        let admitted = self
            .admit_to(&destination, safeguards::destination_admit(config, &request), |admission| {
                safeguards::destination_refusal(config, admission)
            })
            .await;
        if admitted.is_err() {
            // Nothing dialed: the key's slot and its place in the minute go back (best
            // effort; a slot not given back lapses like any other).
            let _withdrawn = self.ports.store.withdraw(&key, &request).await;
        }
        admitted
    }

    /// Asks the allowance at `key`. Refused for want of a slot, it reads the records of
    /// the calls holding them and asks once more with those that ended.
    async fn admit_to(
        &self,
        key: &str,
        mut request: Admit,
        refusal: impl Fn(&Admission) -> ApiError,
    ) -> Result<(), ApiError> {
        loop {
            match self.ports.store.admit(key, &request).await? {
                Admission::Admitted => return Ok(()),
                refused @ Admission::RateLimited { .. } => return Err(refusal(&refused)),
                Admission::TooManyCalls { in_flight } => {
                    let ended = if request.ended.is_empty() {
                        self.ended_calls(&in_flight, request.now).await?
                    } else {
                        Vec::new()
                    };
                    if ended.is_empty() {
                        return Err(refusal(&Admission::TooManyCalls { in_flight }));
                    }
                    request.ended = ended;
                }
            }
        }
    }

    /// Of the calls holding slots, those that have ended: their record says so, or a
    /// slot old enough to have its record has none.
    async fn ended_calls(&self, in_flight: &[Slot], now: DateTime<Utc>) -> Result<Vec<String>, ApiError> {
        let mut ended = Vec::new();
        for slot in in_flight {
            let live = match self.load(&slot.call_id).await? {
                Some(ledger) => !ledger.record.status.is_terminal(),
                None => now - slot.since < SLOT_MARGIN,
            };
            if !live {
                ended.push(slot.call_id.clone());
            }
        }
        Ok(ended)
    }

    async fn get_call(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        let ledger = self.owned(request, call_id).await?;
        Ok(record_body(200, &ledger))
    }

    async fn cancel_call(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        let _guard = self.leases.lock(&call_key(call_id), &self.ports.clock).await;
        let mut ledger = self.owned(request, call_id).await?;
        if ledger.record.status.is_terminal() {
            return Err(ApiError::Conflict(format!("the call has already ended ({})", ledger.record.status.as_str())));
        }
        if let Some(sid) = ledger.record.twilio_call_sid.clone() {
            let update =
                if ledger.record.status == CallStatus::InProgress { UpdateCall::HangUp } else { UpdateCall::Cancel };
            match self.ports.twilio.update_call(&sid, &update).await {
                // 404 or "not in progress": the call is already gone, which is what we want.
                Ok(()) => {}
                Err(TwilioError::Api(api)) if api.status == 404 || api.code == 21220 => {}
                Err(error) => return Err(error.into()),
            }
        }
        ledger.canceled(self.ports.clock.now());
        self.save(&ledger).await?;
        self.after_update(false, &mut ledger).await?;
        Ok(record_body(200, &ledger))
    }

    /// Checks `X-Twilio-Signature` against the public URL Twilio called.
    fn verify_twilio(&self, request: &EdgeRequest) -> Result<Vec<(String, String)>, ApiError> {
        let params = form::parse(&request.body);
        let url = format!("{}{}", self.config.public_base_url, request.path_and_query());
        let signature = request.header_value("x-twilio-signature").ok_or(ApiError::Forbidden)?;
        if signature::validate(&self.config.twilio_auth_token, &url, &params, signature) {
            Ok(params)
        } else {
            Err(ApiError::Forbidden)
        }
    }

    async fn twiml(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        let params = self.verify_twilio(request)?;
        let _guard = self.leases.lock(&call_key(call_id), &self.ports.clock).await;
        let Some(mut ledger) = self.load(call_id).await? else {
            return Ok(EdgeResponse::xml(twiml::hang_up()));
        };
        let now = self.ports.clock.now();
        // The TwiML fetch carries the call's status and, with AMD, who answered.
        if let Ok(callback) = StatusCallback::from_form(&params) {
            ledger.apply_status_callback(&callback, now);
        }
        if ledger.stream_token_issued {
            // Twilio asks once per call; a second request, signed or not, is a replay
            // after a fresh stream token, and gets nothing.
            return Err(ApiError::Forbidden);
        }
        let machine = ledger.record.answered_by.is_some_and(|a| a.is_machine());
        let response = if machine || ledger.record.status.is_terminal() {
            twiml::hang_up()
        } else {
            // The ledger's flag can lag in another isolate or location (KV); the key
            // cannot: only one request ever mints this call's stream token.
            if !self.ports.store.spend_key(&format!("twiml:{call_id}"), now).await? {
                return Err(ApiError::Forbidden);
            }
            let token = auth::issue_stream_token(
                &self.config.internal_secret,
                call_id,
                now.timestamp() + self.config.stream_token_seconds,
            );
            ledger.stream_token_issued = true;
            twiml::connect_stream(&self.config.media_ws_url, call_id, &token)
        };
        self.save(&ledger).await?;
        Ok(EdgeResponse::xml(response))
    }

    async fn status_callback(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        let params = self.verify_twilio(request)?;
        let callback = StatusCallback::from_form(&params).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        // The signature has no time of its own; the signed Timestamp bounds replays.
        if !callback.is_fresh(self.ports.clock.now()) {
            return Err(ApiError::Forbidden);
        }
        let _guard = self.leases.lock(&call_key(call_id), &self.ports.clock).await;
        let Some(mut ledger) = self.load(call_id).await? else {
            // Nothing to update; answering 404 would only make Twilio log errors.
            return Ok(EdgeResponse::empty(204));
        };
        let was_ended = ledger.record.status.is_terminal();
        ledger.apply_status_callback(&callback, self.ports.clock.now());
        self.save(&ledger).await?;
        self.after_update(was_ended, &mut ledger).await?;
        Ok(EdgeResponse::empty(204))
    }

    fn verify_internal(&self, request: &EdgeRequest) -> Result<(), ApiError> {
        auth::verify_request(
            &self.config.internal_secret,
            request.header_value(auth::SIGNATURE_HEADER),
            &request.method,
            &request.path_and_query(),
            &request.body,
            self.ports.clock.now().timestamp(),
        )
        .map_err(|_| ApiError::Forbidden)
    }

    async fn call_context(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        self.verify_internal(request)?;
        let ledger = self.load(call_id).await?.ok_or(ApiError::NotFound)?;
        let context = CallContext {
            call_id: call_id.to_owned(),
            instructions: instructions(&ledger.record.request),
            request: ledger.record.request,
        };
        Ok(EdgeResponse::json(200, &serde_json::to_value(context).unwrap_or_default()))
    }

    async fn call_event(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        self.verify_internal(request)?;
        let event: CallEvent =
            serde_json::from_slice(&request.body).map_err(|e| ApiError::BadRequest(format!("invalid event: {e}")))?;
        let _guard = self.leases.lock(&call_key(call_id), &self.ports.clock).await;
        let mut ledger = self.load(call_id).await?.ok_or(ApiError::NotFound)?;
        let was_ended = ledger.record.status.is_terminal();
        let applied = ledger.apply_event(&event, self.ports.clock.now());
        self.save(&ledger).await?;
        self.after_update(was_ended, &mut ledger).await?;
        Ok(EdgeResponse::json(200, &json!({"id": event.id, "applied": applied == shared::call::Applied::Changed})))
    }

    /// What follows a saved update: the first time the record shows the call ended
    /// (it `was_ended` not before), its slot goes back to the key's allowance; once
    /// final, the completion webhook goes out.
    async fn after_update(&self, was_ended: bool, ledger: &mut CallLedger) -> Result<(), ApiError> {
        if !was_ended && ledger.record.status.is_terminal() {
            self.release_slot(ledger).await;
        }
        self.deliver_if_final(ledger).await
    }

    /// Gives an ended call's slot back to its key's allowance and its number's. Best
    /// effort: a slot not given back here is found ended when it is next needed (see
    /// `admit_booking`), so this failing must not fail the update that ended the call.
    async fn release_slot(&self, ledger: &CallLedger) {
        let key = format!("{ALLOWANCE_PREFIX}{}", ledger.owner);
        let _released = self.ports.store.release(&key, &ledger.record.call_id).await;
        let destination = safeguards::destination_key(&ledger.record.request.restaurant.phone);
        let _released = self.ports.store.release(&destination, &ledger.record.call_id).await;
    }

    /// Sends the completion webhook once the call is final, until the user's endpoint
    /// accepts it. A refusal leaves a pending entry that [`Edge::retry_webhooks`] picks
    /// up with backoff; after [`WEBHOOK_MAX_ATTEMPTS`] it is given up.
    async fn deliver_if_final(&self, ledger: &mut CallLedger) -> Result<(), ApiError> {
        let Some(url) = ledger.record.request.callback_url.clone() else { return Ok(()) };
        if !ledger.is_final() || ledger.callback_delivered || ledger.callback_attempts >= WEBHOOK_MAX_ATTEMPTS {
            return Ok(());
        }
        let now = self.ports.clock.now();
        let body = serde_json::to_string(&ledger.record).map_err(|e| ApiError::Storage(e.to_string()))?;
        // Signed with the owner's own webhook secret; without one (or with a URL the
        // deployment no longer allows) nothing is sent and the attempt counts as refused.
        let accepted = match safeguards::webhook_signature(&self.config, &ledger.owner, &url, now, &body) {
            Some(signature) => matches!(self.ports.webhooks.post(&url, &body, &signature).await, Ok(200..=299)),
            None => false,
        };
        ledger.callback_attempts += 1;
        ledger.callback_delivered = accepted;
        self.save(ledger).await?;
        let pending_key = format!("{PENDING_WEBHOOK_PREFIX}{}", ledger.record.call_id);
        if accepted || ledger.callback_attempts >= WEBHOOK_MAX_ATTEMPTS {
            self.ports.store.delete(&pending_key).await?;
        } else {
            let pending = PendingWebhook {
                attempts: ledger.callback_attempts,
                next_attempt_at: now
                    + webhook_backoff(self.config.webhook_retry_base_seconds, ledger.callback_attempts),
            };
            let text = serde_json::to_string(&pending).map_err(|e| ApiError::Storage(e.to_string()))?;
            self.ports.store.put(&pending_key, &text).await?;
        }
        Ok(())
    }

    /// Retries every completion webhook that is due (run by the Worker's cron trigger).
    /// Returns how many were delivered.
    pub async fn retry_webhooks(&self) -> Result<usize, ApiError> {
        let now = self.ports.clock.now();
        let mut delivered = 0;
        for key in self.ports.store.list(PENDING_WEBHOOK_PREFIX).await? {
            let Some(call_id) = key.strip_prefix(PENDING_WEBHOOK_PREFIX) else { continue };
            let due = match self.ports.store.get(&key).await? {
                Some(text) => serde_json::from_str::<PendingWebhook>(&text).map_or(true, |p| p.next_attempt_at <= now),
                None => false,
            };
            if !due {
                continue;
            }
            let _guard = self.leases.lock(&call_key(call_id), &self.ports.clock).await;
            match self.load(call_id).await? {
                Some(mut ledger) => {
                    self.deliver_if_final(&mut ledger).await?;
                    delivered += usize::from(ledger.callback_delivered);
                }
                None => self.ports.store.delete(&key).await?,
            }
        }
        Ok(delivered)
    }
}

fn created_body(status: u16, ledger: &CallLedger) -> EdgeResponse {
    let id = &ledger.record.call_id;
    EdgeResponse::json(
        status,
        &json!({"call_id": id, "status": ledger.record.status, "links": {"self": format!("/v1/calls/{id}")}}),
    )
}

fn record_body(status: u16, ledger: &CallLedger) -> EdgeResponse {
    EdgeResponse::json(status, &serde_json::to_value(&ledger.record).unwrap_or_default())
}
