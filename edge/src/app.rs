//! The route table: every edge route (docs/api.md, docs/protocol.md) as a plain async function over
//! [`Ports`]. No Worker types here, so `cargo test` runs all of it.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::auth;
use shared::booking::BookingRequest;
use shared::call::CallLedger;
use shared::events::{CallContext, CallEvent};
use shared::openai::config::{instructions_with, introduction};
use shared::schedule::CallPlan;
use shared::twilio::rest::{already_ended, CreateCall, UpdateCall};
use shared::twilio::status::{AmdVerdict, RecordingReady, StatusCallback};
use shared::twilio::{form, signature};
use shared::twiml;

use crate::allowance::{Admission, Admit, Slot};
use crate::config::EdgeConfig;
use crate::error::ApiError;
use crate::http::{EdgeRequest, EdgeResponse};
use crate::idempotency::Claim;
use crate::keeper::{Change, LiveEvent, Reply, StreamGrant};
use crate::keys;
use crate::listing::ListQuery;
use crate::ports::{Clock, IdSource, Ports, Store, TwilioApi, TwilioError, WebhookSender};
use crate::safeguards;

/// Bodies larger than this are refused before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a due attempt waits when it cannot be placed yet (no free slot, Twilio
/// unreachable) before it is tried again.
const PLACE_AGAIN_AFTER: Duration = Duration::seconds(60);

/// What a call being admitted is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placing {
    /// A booking dialed as it is made.
    BookingNow,
    /// A booking that waits for its time (`call_at`, the window, …): no call yet.
    BookingLater,
    /// A later attempt of a booking: a call, but not a new booking.
    Attempt,
}

/// A booking's calling plan: the deployment's window, lead and retry policy with the
/// booking's own choices over them ([`shared::schedule`]).
pub fn call_plan(config: &EdgeConfig, booking: &BookingRequest) -> Result<CallPlan, ApiError> {
    let retry = booking.retry.clone().unwrap_or_default();
    Ok(CallPlan {
        timezone: booking.timezone.clone(),
        window: booking.calling_window.unwrap_or(config.calling_window),
        max_attempts: retry.max_attempts.unwrap_or(config.retry_max_attempts),
        retry_interval_seconds: retry.interval_minutes.map_or(config.retry_interval_seconds, |m| m * 60),
        deadline: booking.starts_at()? - Duration::minutes(i64::from(config.call_lead_minutes)),
    })
}

/// Store pages one `GET /v1/calls` reads at most while filters leave it short of `limit`.
const LIST_STORE_PAGES: usize = 5;

/// How often a request waits on an `Idempotency-Key` another request is booking with.
const CLAIM_POLL: std::time::Duration = std::time::Duration::from_millis(25);

pub struct Edge<S, T, W, C, I> {
    pub config: EdgeConfig,
    pub ports: Ports<S, T, W, C, I>,
}
/// Time a call's slot outlasts its longest possible call; also how long a booking may
/// take to save its record after taking a slot.
const SLOT_MARGIN: Duration = Duration::minutes(5);

impl<S: Store, T: TwilioApi, W: WebhookSender, C: Clock, I: IdSource> Edge<S, T, W, C, I> {
    pub fn new(config: EdgeConfig, ports: Ports<S, T, W, C, I>) -> Self {
        Edge { config, ports }
    }

    /// Answers one request. Never fails: every error becomes the contract's JSON error.
    /// Each request leaves one JSON log line: route, call, status, duration.
    pub async fn handle(&self, request: &EdgeRequest) -> EdgeResponse {
        let started = self.ports.clock.now();
        let response = match self.route(request).await {
            Ok(response) => response,
            Err(error) => error.to_response(),
        };
        let (route, call_id) = route_of(&request.path);
        log_line(&json!({
            "method": request.method, "route": route, "call_id": call_id, "status": response.status,
            "duration_ms": (self.ports.clock.now() - started).num_milliseconds(),
        }));
        response
    }

    async fn route(&self, request: &EdgeRequest) -> Result<EdgeResponse, ApiError> {
        if request.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
        }
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let method = request.method.as_str();
        match (method, segments.as_slice()) {
            ("GET", ["health"]) => Ok(EdgeResponse::json(200, &json!({"status": "ok"}))),
            ("POST", ["v1", "calls"]) => self.create_call(request).await,
            ("GET", ["v1", "calls"]) => self.list_calls(request).await,
            ("GET", ["v1", "calls", id]) => self.get_call(request, id).await,
            ("DELETE", ["v1", "calls", id]) => self.delete_call(request, id).await,
            ("GET", ["v1", "calls", id, "events"]) => {
                // Without a streaming shell: what there is now, as one SSE body.
                let page = self.live_events(request, id).await?;
                Ok(EdgeResponse::event_stream(page.events.iter().map(sse_frame).collect::<String>()))
            }
            ("POST", ["v1", "calls", id, "cancel"]) => self.cancel_call(request, id).await,
            ("POST", ["twilio", "twiml", id]) => self.twiml(request, id).await,
            ("POST", ["twilio", "status", id]) => self.status_callback(request, id).await,
            ("POST", ["twilio", "amd", id]) => self.amd_callback(request, id).await,
            ("POST", ["twilio", "recording", id]) => self.recording_callback(request, id).await,
            ("GET", ["internal", "calls", id]) => self.call_context(request, id).await,
            ("POST", ["internal", "calls", id, "events"]) => self.call_event(request, id).await,
            (_, ["v1", "calls"] | ["v1", "calls", _] | ["v1", "calls", _, "cancel" | "events"]) => {
                Err(ApiError::MethodNotAllowed)
            }
            (_, ["health"] | ["twilio", _, _] | ["internal", "calls", _] | ["internal", "calls", _, "events"]) => {
                Err(ApiError::MethodNotAllowed)
            }
            _ => Err(ApiError::NoRoute),
        }
    }

    fn owner(&self, request: &EdgeRequest) -> Result<String, ApiError> {
        auth::key_owner(&self.config.api_keys, request.header_value("authorization"))
            .map_err(|_| ApiError::Unauthorized)
    }

    /// The call's record as published for reads (KV: may lag its writer, see
    /// docs/reliability.md); a call not yet published is asked of its writer.
    async fn load(&self, call_id: &str) -> Result<Option<CallLedger>, ApiError> {
        match self.ports.store.record(call_id).await? {
            None => self.current(call_id).await,
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ApiError::Storage(format!("stored call {call_id} is unreadable: {e}"))),
        }
    }

    /// The call's record as its one writer holds it now (strongly consistent).
    pub async fn current(&self, call_id: &str) -> Result<Option<CallLedger>, ApiError> {
        Ok(self.change(call_id, Change::Read { after: u64::MAX }).await?.ledger)
    }

    /// Applies one change through the call's writer.
    async fn change(&self, call_id: &str, change: Change) -> Result<Reply, ApiError> {
        Ok(self.ports.store.change_call(call_id, change, self.ports.clock.now()).await?)
    }

    /// A call the presented key owns, read from its writer; any other key sees the same
    /// 404 as a missing call.
    async fn owned(&self, request: &EdgeRequest, call_id: &str) -> Result<CallLedger, ApiError> {
        let owner = self.owner(request)?;
        match self.current(call_id).await? {
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
            .map(|k| keys::idempotency(&owner, &hex::encode(Sha256::digest(k.as_bytes()))));
        let Some(key) = idempotency_key else { return self.book(owner, booking, now, None).await };
        if let Some(call_id) = self.claim_idempotency_key(&key, &request_hash).await? {
            // Bound only once its record exists at its writer, which answers at once.
            let ledger = self.current(&call_id).await?.ok_or(ApiError::NotFound)?;
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

    /// Books, and dials at once unless the booking's plan says to wait ([`call_plan`]).
    /// `idempotency` is the claimed key and the request's hash, bound to the call
    /// before it is dialed.
    async fn book(
        &self,
        owner: String,
        booking: BookingRequest,
        now: DateTime<Utc>,
        idempotency: Option<(&str, &str)>,
    ) -> Result<EdgeResponse, ApiError> {
        let call_id = self.ports.ids.call_id();
        let plan = call_plan(&self.config, &booking)?;
        let first_at = plan.first_attempt(now, booking.call_at).map_err(|unplaceable| ApiError::InvalidField {
            field: if booking.call_at.is_some() { "call_at" } else { "reservation.time" }.to_owned(),
            message: unplaceable.to_string(),
        })?;
        let dial_now = first_at <= now;
        let admission = if dial_now { Placing::BookingNow } else { Placing::BookingLater };
        self.admit_booking(&owner, &call_id, &booking.restaurant.phone, now, admission).await?;
        let ledger = CallLedger::new(call_id.clone(), owner, booking, now).planned(plan, first_at, now);
        // The record exists at its writer before Twilio can call back about it.
        self.change(&call_id, Change::Create { ledger: Box::new(ledger.clone()) }).await?;
        if let Some((key, request_hash)) = idempotency {
            self.ports.store.settle_key(key, request_hash, Some(&call_id)).await?;
        }
        if !dial_now {
            return Ok(created_body(201, &ledger));
        }
        let ledger = self.dial(ledger, true).await?;
        Ok(created_body(201, &ledger))
    }

    /// Places the call for the booking's current attempt. `answering`: the booking
    /// request itself is dialing, and answers a refusal at once (a 502, the slot given
    /// back, no webhook); an attempt woken by the alarm records the failure instead,
    /// and one that could not reach Twilio waits a minute and tries again.
    async fn dial(&self, ledger: CallLedger, answering: bool) -> Result<CallLedger, ApiError> {
        let call_id = ledger.record.call_id.clone();
        let create = CreateCall {
            to: ledger.record.request.restaurant.phone.clone(),
            from: self.config.twilio_from_number.clone(),
            url: format!("{}/twilio/twiml/{call_id}", self.config.public_base_url),
            status_callback: format!("{}/twilio/status/{call_id}", self.config.public_base_url),
            timeout_seconds: self.config.ring_timeout_seconds,
            time_limit_seconds: self.config.call_time_limit_seconds,
            amd_callback: Some(format!("{}/twilio/amd/{call_id}", self.config.public_base_url)),
            send_digits: ledger.record.request.restaurant.extension.clone(),
            recording_callback: ledger
                .record
                .request
                .record
                .then(|| format!("{}/twilio/recording/{call_id}", self.config.public_base_url)),
        };
        match self.ports.twilio.create_call(&create).await {
            Ok(resource) => {
                let dialed = Change::Dialed { call_sid: resource.sid.clone() };
                match self.change(&call_id, dialed).await {
                    // Canceled while Twilio was placing it: the record is sealed, so
                    // end the call Twilio just started rather than let it ring.
                    Ok(Reply { ledger: Some(ledger), late: true, .. }) => {
                        if let Err(error) = self.ports.twilio.update_call(&resource.sid, &UpdateCall::HangUp).await {
                            log_line(
                                &json!({"call_id": call_id, "note": "could not end a call canceled while dialing", "error": error.to_string()}),
                            );
                        }
                        Ok(ledger)
                    }
                    Ok(Reply { ledger: Some(ledger), .. }) => Ok(ledger),
                    // The call is dialed whatever happened to this write: answer so, and
                    // let Twilio's first callback (which carries the sid) complete the record.
                    _ => {
                        let mut ledger = ledger;
                        ledger.dialed(&resource.sid, self.ports.clock.now());
                        Ok(ledger)
                    }
                }
            }
            Err(TwilioError::Network(detail)) if !answering => {
                let until = self.ports.clock.now() + PLACE_AGAIN_AFTER;
                let reply = self.change(&call_id, Change::Postpone { until }).await?;
                self.release_slot(&ledger).await;
                self.after_change(&call_id, &reply).await;
                Err(ApiError::TwilioUnreachable(detail))
            }
            Err(error) => {
                let (code, message) = crate::error::recorded_failure(&error);
                let reply = self.change(&call_id, Change::DialFailed { code, message, answered: answering }).await?;
                if answering {
                    // The caller hears of the failure now, not by webhook; the slot goes back.
                    self.release_slot(&ledger).await;
                } else {
                    self.after_change(&call_id, &reply).await;
                }
                Err(error.into())
            }
        }
    }

    /// A scheduled booking whose time has come: starts its next attempt, takes a slot
    /// (the key's and the number's, as any call does) and dials. Without a free slot the
    /// booking waits [`PLACE_AGAIN_AFTER`] and is asked again.
    async fn place_due_attempt(&self, call_id: &str) -> Result<(), ApiError> {
        let reply = self.change(call_id, Change::StartAttempt).await?;
        self.after_change(call_id, &reply).await;
        let Some(ledger) = reply.ledger.filter(|_| reply.dial) else { return Ok(()) };
        let now = self.ports.clock.now();
        let phone = ledger.record.request.restaurant.phone.clone();
        if let Err(refused) = self.admit_booking(&ledger.owner, call_id, &phone, now, Placing::Attempt).await {
            let reply = self.change(call_id, Change::Postpone { until: now + PLACE_AGAIN_AFTER }).await?;
            self.after_change(call_id, &reply).await;
            log_line(&json!({"call_id": call_id, "note": "attempt postponed", "reason": refused.to_string()}));
            return Ok(());
        }
        self.dial(ledger, false).await.map(|_| ())
    }

    /// Takes what placing a call needs from the key's allowance and the number's: a
    /// booking is counted in the key's minute (and holds a slot only if it dials now);
    /// a later attempt of it holds a slot but is not counted again. Every call placed
    /// holds the number's one live slot and counts in its hour. A number's refusal
    /// gives the key's admission back.
    async fn admit_booking(
        &self,
        owner: &str,
        call_id: &str,
        phone: &str,
        now: DateTime<Utc>,
        placing: Placing,
    ) -> Result<(), ApiError> {
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
            count: placing != Placing::Attempt,
            hold_slot: placing != Placing::BookingLater,
        };
        let key = keys::allowance(owner);
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
        if placing == Placing::BookingLater {
            return Ok(());
        }
        let destination = keys::destination(phone);
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

    /// `GET /v1/calls/{id}/events`: the call's live events after the listener's
    /// `Last-Event-ID` (or `?after=`), read from the call's writer, for the key that owns
    /// it (another key's call is the same 404 as a missing one). `done` once the call is
    /// final: the page then ends with the `end` event and the stream closes.
    pub async fn live_events(&self, request: &EdgeRequest, call_id: &str) -> Result<LivePage, ApiError> {
        let owner = self.owner(request)?;
        let after = resume_after(request);
        let reply = self.change(call_id, Change::Read { after }).await?;
        match reply.ledger {
            Some(ledger) if ledger.owner == owner => {
                Ok(LivePage { events: reply.events, after, done: ledger.is_final() })
            }
            _ => Err(ApiError::NotFound),
        }
    }

    /// The live events after `after`, for a listener [`Edge::live_events`] admitted.
    pub async fn live_events_after(&self, call_id: &str, after: u64) -> Result<LivePage, ApiError> {
        let reply = self.change(call_id, Change::Read { after }).await?;
        let done = reply.ledger.as_ref().is_none_or(CallLedger::is_final);
        Ok(LivePage { events: reply.events, after, done })
    }

    /// `GET /v1/calls/{id}`: the record as published (KV, the read model; see `load`).
    async fn get_call(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        let owner = self.owner(request)?;
        match self.load(call_id).await? {
            Some(ledger) if ledger.owner == owner => Ok(record_body(200, &ledger)),
            _ => Err(ApiError::NotFound),
        }
    }

    /// `GET /v1/calls`: the key's calls, newest first, from the read model's list. Store
    /// pages are read until `limit` calls pass the filters, the list ends, or
    /// [`LIST_STORE_PAGES`] pages were read (then `has_more` says to go on).
    async fn list_calls(&self, request: &EdgeRequest) -> Result<EdgeResponse, ApiError> {
        let owner = self.owner(request)?;
        let query = ListQuery::parse(&form::parse(request.query.as_bytes()))?;
        let mut data = Vec::new();
        // Cursors are sealed to the key that got them: anything else is refused here,
        // never handed to the store.
        let mut cursor = match &query.cursor {
            None => None,
            Some(sealed) => Some(auth::open_cursor(&self.config.internal_secret, &owner, sealed).ok_or_else(|| {
                ApiError::InvalidField {
                    field: "cursor".into(),
                    message: "cursor is not one this list gave; pass next_cursor exactly as it came".into(),
                }
            })?),
        };
        'pages: for _ in 0..LIST_STORE_PAGES {
            // Never more entries than are still wanted, so the store's cursor is exactly
            // where the next page starts.
            let wanted = query.limit.saturating_sub(data.len() as u32).max(1);
            let page = self.ports.store.list_calls(&owner, cursor.as_deref(), wanted).await?;
            cursor = page.cursor;
            for summary in page.entries {
                if query.past_the_end(&summary) {
                    cursor = None;
                    break 'pages;
                }
                if query.admits(&summary) {
                    data.push(summary);
                }
            }
            if cursor.is_none() || data.len() >= query.limit as usize {
                break;
            }
        }
        let next_cursor = cursor.map(|c| auth::seal_cursor(&self.config.internal_secret, &owner, &c));
        Ok(EdgeResponse::json(
            200,
            &json!({"data": data, "has_more": next_cursor.is_some(), "next_cursor": next_cursor}),
        ))
    }

    /// `DELETE /v1/calls/{id}`: erases a final call's record (request, transcript,
    /// outcome) at its keeper at once, and from the read model when the keeper next
    /// publishes; a live call is a 409. A recorded call's audio is deleted at Twilio
    /// first: if Twilio cannot delete it now, nothing is erased (the record keeps the
    /// recording's sid) and the DELETE can be sent again.
    async fn delete_call(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        let ledger = self.owned(request, call_id).await?;
        let recording = ledger.is_final().then_some(ledger.record.recording.as_ref()).flatten();
        if let Some(recording) = recording {
            self.delete_recording(&recording.sid).await?;
        }
        self.change(call_id, Change::Erase).await?;
        Ok(EdgeResponse::json(
            200,
            &json!({"call_id": call_id, "deleted": true, "recording_deleted": recording.is_some()}),
        ))
    }

    /// Deletes a recording's audio at Twilio; one Twilio no longer has is deleted.
    pub async fn delete_recording(&self, recording_sid: &str) -> Result<(), ApiError> {
        match self.ports.twilio.delete_recording(recording_sid).await {
            Err(TwilioError::Api(error)) if error.status == 404 => Ok(()),
            other => other.map_err(ApiError::from),
        }
    }

    async fn cancel_call(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        let ledger = self.owned(request, call_id).await?;
        if ledger.record.status.is_terminal() {
            return Err(ApiError::Conflict(format!("the call has already ended ({})", ledger.record.status.as_str())));
        }
        if let Some(sid) = ledger.record.twilio_call_sid.clone() {
            // `completed` hangs up an answered call and cancels one still queued or
            // ringing (https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource),
            // so a record that lags Twilio (ringing here, answered there) is still ended.
            match self.ports.twilio.update_call(&sid, &UpdateCall::HangUp).await {
                Ok(()) => {}
                // Twilio no longer has it live: the call ended on its own, and its own
                // status callback says how; the record is not marked canceled.
                Err(TwilioError::Api(api)) if already_ended(&api) => {
                    return Err(ApiError::Conflict(
                        "the call had already ended at Twilio; its record will show how".into(),
                    ))
                }
                Err(error) => return Err(error.into()),
            }
        }
        let reply = self.change(call_id, Change::Cancel).await?;
        self.after_change(call_id, &reply).await;
        let ledger = reply.ledger.ok_or(ApiError::NotFound)?;
        // Twilio's own `canceled` callback (set off by the hang-up) may reach the writer
        // first: the call is canceled either way, which is this request's answer.
        if reply.late && ledger.record.status != shared::call::CallStatus::Canceled {
            return Err(ApiError::Conflict(format!("the call has already ended ({})", ledger.record.status.as_str())));
        }
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
        // The TwiML fetch carries the call's status and, with AMD, who answered; the
        // call's writer decides, once, whether this is the request that gets a token.
        let callback = StatusCallback::from_form(&params).ok();
        let reply = self.change(call_id, Change::Twiml { callback }).await?;
        self.after_change(call_id, &reply).await;
        match reply.grant {
            StreamGrant::Connect => {
                let expires = self.ports.clock.now().timestamp() + self.config.stream_token_seconds;
                let token = auth::issue_stream_token(&self.config.internal_secret, call_id, expires);
                let language = reply.ledger.as_ref().and_then(|ledger| ledger.record.request.language.as_deref());
                Ok(EdgeResponse::xml(twiml::connect_stream(&self.config.media_ws_url, call_id, &token, language)))
            }
            // Twilio asks once per call; a second request, signed or not, is a replay
            // after a fresh stream token, and gets nothing.
            StreamGrant::Refuse => Err(ApiError::Forbidden),
            StreamGrant::HangUp | StreamGrant::NotAsked => Ok(EdgeResponse::xml(twiml::hang_up())),
        }
    }

    async fn status_callback(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        let params = self.verify_twilio(request)?;
        let callback = StatusCallback::from_form(&params).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        // The signature has no time of its own; the signed Timestamp bounds replays.
        if !callback.is_fresh(self.ports.clock.now()) {
            return Err(ApiError::Forbidden);
        }
        // No such call: nothing to update, and a 404 would only make Twilio log errors.
        let reply = self.change(call_id, Change::Status { callback }).await?;
        self.after_change(call_id, &reply).await;
        Ok(EdgeResponse::empty(204))
    }

    /// Twilio's asynchronous AMD verdict. A machine with nothing decided yet is hung up
    /// at once: no message is left, and the call's end makes the outcome `voicemail`
    /// (and the attempt one to try again). `unknown` and `human` leave the call to the agent.
    async fn amd_callback(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        let params = self.verify_twilio(request)?;
        let verdict = AmdVerdict::from_form(&params).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let call_sid = verdict.call_sid.clone();
        let reply = self.change(call_id, Change::Amd { verdict }).await?;
        self.after_change(call_id, &reply).await;
        if reply.hang_up {
            if let Err(error) = self.ports.twilio.update_call(&call_sid, &UpdateCall::HangUp).await {
                log_line(
                    &json!({"call_id": call_id, "note": "could not hang up on a machine", "error": error.to_string()}),
                );
            }
        }
        Ok(EdgeResponse::empty(204))
    }

    /// Twilio's finished recording: its reference goes into the record.
    async fn recording_callback(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        let params = self.verify_twilio(request)?;
        let recording = RecordingReady::from_form(&params).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let reply = self.change(call_id, Change::Recorded { recording }).await?;
        self.after_change(call_id, &reply).await;
        if let Some(sid) = &reply.unkept_recording {
            // Nothing refers to this audio (the call was erased, or it is an earlier
            // attempt's): it goes now, or it would stay at Twilio for good. A failure is
            // Twilio's to see (a 502 in its debugger), not ours to swallow.
            self.delete_recording(sid).await?;
        }
        if reply.changed && !reply.final_now {
            // The webhook may have been waiting for this (see the keeper's RECORDING_GRACE).
            if let Err(error) = self.deliver_webhook(call_id).await {
                log_line(
                    &json!({"call_id": call_id, "note": "webhook attempt not recorded", "error": error.to_string()}),
                );
            }
        }
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
        let ledger = self.current(call_id).await?.ok_or(ApiError::NotFound)?;
        let context = CallContext {
            call_id: call_id.to_owned(),
            instructions: instructions_with(
                &ledger.record.request,
                &introduction(&ledger.record.request, self.config.agent_introduction.as_deref()),
            ),
            request: ledger.record.request,
        };
        Ok(EdgeResponse::json(200, &serde_json::to_value(context).unwrap_or_default()))
    }

    async fn call_event(&self, request: &EdgeRequest, call_id: &str) -> Result<EdgeResponse, ApiError> {
        self.verify_internal(request)?;
        let event: CallEvent =
            serde_json::from_slice(&request.body).map_err(|e| ApiError::BadRequest(format!("invalid event: {e}")))?;
        let id = event.id.clone();
        let reply = self.change(call_id, Change::Event { event }).await?;
        if reply.ledger.is_none() {
            return Err(ApiError::NotFound);
        }
        self.after_change(call_id, &reply).await;
        Ok(EdgeResponse::json(200, &json!({"id": id, "applied": reply.changed})))
    }

    /// What follows a change: the first time the call shows it ended, its slot goes
    /// back to the key's allowance; once final, the completion webhook goes out. A
    /// change after the seal is logged and counted by the writer, never applied.
    async fn after_change(&self, call_id: &str, reply: &Reply) {
        if reply.late {
            log_line(&json!({"call_id": call_id, "note": "change after the record was sealed; not applied"}));
        }
        if let (true, Some(ledger)) = (reply.ended_now, &reply.ledger) {
            self.release_slot(ledger).await;
        }
        if reply.final_now {
            // The writer's alarm (natively, the server's timer) retries it if this fails.
            if let Err(error) = self.deliver_webhook(call_id).await {
                log_line(
                    &json!({"call_id": call_id, "note": "webhook attempt not recorded", "error": error.to_string()}),
                );
            }
        }
    }

    /// Gives an ended call's slot back to its key's allowance and its number's. Best
    /// effort: a slot not given back here is found ended when it is next needed (see
    /// `admit_booking`), so this failing must not fail the update that ended the call.
    async fn release_slot(&self, ledger: &CallLedger) {
        let key = keys::allowance(&ledger.owner);
        let _released = self.ports.store.release(&key, &ledger.record.call_id).await;
        let destination = keys::destination(&ledger.record.request.restaurant.phone);
        let _released = self.ports.store.release(&destination, &ledger.record.call_id).await;
    }

    /// What a call's keeper wakes the edge for, when [`crate::keeper::Keeper::next_wake`]
    /// comes: in a Worker the call's Durable Object alarm (after it has published the
    /// record), natively the server's timer.
    pub async fn wake(&self, call_id: &str) -> Result<(), ApiError> {
        let delivered = self.deliver_webhook(call_id).await;
        self.place_due_attempt(call_id).await?;
        delivered.map(|_| ())
    }

    /// Sends the call's completion webhook if it is due, and tells the call's writer how
    /// it went: accepted, or retried with backoff (the writer's alarm wakes it) until
    /// [`crate::keeper::WEBHOOK_MAX_ATTEMPTS`]. Returns whether one was accepted now.
    pub async fn deliver_webhook(&self, call_id: &str) -> Result<bool, ApiError> {
        let Some(job) = self.change(call_id, Change::TakeWebhook).await?.webhook else { return Ok(false) };
        let now = self.ports.clock.now();
        let body = serde_json::to_string(&job.record).map_err(|e| ApiError::Storage(e.to_string()))?;
        // Signed with the owner's own webhook secret; without one (or with a URL the
        // deployment no longer allows) nothing is sent and the attempt counts as refused.
        let accepted = match safeguards::webhook_signature(&self.config, &job.owner, &job.url, now, &body) {
            Some(signature) => matches!(self.ports.webhooks.post(&job.url, &body, &signature).await, Ok(200..=299)),
            None => false,
        };
        let result = Change::WebhookResult { accepted, retry_base_seconds: self.config.webhook_retry_base_seconds };
        self.change(call_id, result).await?;
        Ok(accepted)
    }
}

/// A request's route as a pattern (ids replaced by `{id}`), and the call it names.
fn route_of(path: &str) -> (String, Option<&str>) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let call_at = match segments.as_slice() {
        ["v1", "calls", _, ..] => Some(2),
        ["twilio", _, _] | ["internal", "calls", _, ..] => Some(2),
        _ => None,
    };
    let route = segments
        .iter()
        .enumerate()
        .map(|(n, s)| if Some(n) == call_at { "{id}" } else { s })
        .collect::<Vec<_>>()
        .join("/");
    (format!("/{route}"), call_at.and_then(|n| segments.get(n).copied()))
}

/// A page of a call's live events.
#[derive(Debug, Clone)]
pub struct LivePage {
    pub events: Vec<LiveEvent>,
    /// The id the page starts after.
    pub after: u64,
    /// The call is final: nothing follows these events.
    pub done: bool,
}

impl LivePage {
    /// The id a listener resumes after once it has this page.
    pub fn last_id(&self) -> u64 {
        self.events.last().map_or(self.after, |e| e.id)
    }
}

/// Where a listener resumes: its `Last-Event-ID` (set by EventSource on reconnect) or
/// `?after=`; from the start otherwise.
fn resume_after(request: &EdgeRequest) -> u64 {
    let from_query = form::parse(request.query.as_bytes()).into_iter().find(|(k, _)| k == "after").map(|(_, v)| v);
    request
        .header_value("last-event-id")
        .map(str::to_owned)
        .or(from_query)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// One live event as a Server-Sent Events frame (`id`, `event`, one `data` line of JSON).
pub fn sse_frame(event: &LiveEvent) -> String {
    format!("id: {}\nevent: {}\ndata: {}\n\n", event.id, event.kind, event.data)
}

/// One JSON line on the edge's log: Workers Logs in a Worker; natively, a `tracing`
/// event (target `edge`) for whatever subscriber the process installs.
pub fn log_line(fields: &serde_json::Value) {
    #[cfg(target_arch = "wasm32")]
    worker::console_log!("{fields}");
    #[cfg(not(target_arch = "wasm32"))]
    tracing::info!(target: "edge", "{fields}");
}

fn created_body(status: u16, ledger: &CallLedger) -> EdgeResponse {
    let record = &ledger.record;
    let id = &record.call_id;
    let mut body = json!({"call_id": id, "status": record.status, "links": {"self": format!("/v1/calls/{id}")}});
    if let Some(at) = record.scheduled_for {
        body["scheduled_for"] = json!(at);
    }
    EdgeResponse::json(status, &body)
}

fn record_body(status: u16, ledger: &CallLedger) -> EdgeResponse {
    EdgeResponse::json(status, &serde_json::to_value(&ledger.record).unwrap_or_default())
}
