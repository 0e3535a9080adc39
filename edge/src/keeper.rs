//! The one writer of a call's record: every change to a call (booking, Twilio's
//! callbacks, the media worker's events, cancel, webhook delivery) is a [`Change`]
//! applied here, one at a time, by whoever holds the call's [`Keeper`]: the call's own
//! Durable Object in a Worker, the memory store's lock natively. Sans-IO: time is
//! passed in, and what the holder must do next (publish the read model, wake up for a
//! webhook retry) is read off the keeper as data.
//!
//! The ledger in `shared` folds each change in as before; the keeper adds what only one
//! writer can promise:
//! - **the seal**: once the ledger is final (the call has ended and its current stream
//!   has reported its end), nothing changes its status, outcome or transcript again. A
//!   late or replayed callback, an event of a stream opened again, a late `failed` is
//!   counted in `late` and answered, never applied;
//! - **the live log**: every status change, transcript line and outcome gets the next
//!   event id, so a listener that reconnects gets exactly what it missed;
//! - **the read model**: the record in KV is published after changes, at most once a
//!   second ([`PUBLISH_INTERVAL`], KV's per-key write rate), the last change always;
//! - **the webhook**: due when the call becomes final, retried with backoff.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared::call::{Applied, CallLedger, CallRecord, CallStatus};
use shared::events::CallEvent;
use shared::twilio::status::{AmdVerdict, RecordingReady, StatusCallback};

use crate::keys;
use crate::listing::CallSummary;

/// KV allows about one write a second per key; the read model is published no faster.
pub const PUBLISH_INTERVAL: Duration = Duration::seconds(1);
/// Attempts before a completion webhook is given up (about 17 hours of backoff in all).
pub const WEBHOOK_MAX_ATTEMPTS: u32 = 12;
/// How long a recorded call's webhook waits for Twilio's recording before going without it.
pub const RECORDING_GRACE: Duration = Duration::seconds(60);
/// A webhook attempt taken but not reported back (its request died) is retried after this.
pub const WEBHOOK_ATTEMPT_LEASE: Duration = Duration::seconds(60);

/// One change to a call, as its writer receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A new booking's record (refused if the call exists).
    Create { ledger: Box<CallLedger> },
    /// Twilio accepted the call.
    Dialed { call_sid: String },
    /// Twilio refused it, or could not be reached. `answered`: the booking request
    /// itself was dialing and answers the failure at once (a 502, no webhook).
    DialFailed {
        code: String,
        message: String,
        #[serde(default)]
        answered: bool,
    },
    /// The alarm came for a scheduled booking: starts its next attempt if it is due
    /// (the reply's `dial` says to place it).
    StartAttempt,
    /// The attempt just started cannot be placed yet (no free slot, Twilio
    /// unreachable): the booking waits until `until`.
    Postpone { until: DateTime<Utc> },
    /// A status callback (or the status part of the TwiML request).
    Status { callback: StatusCallback },
    /// The TwiML request: its status, then whether this call may get its stream token.
    Twiml { callback: Option<StatusCallback> },
    /// A media-worker event.
    Event { event: CallEvent },
    /// Twilio's asynchronous answering-machine verdict.
    Amd { verdict: AmdVerdict },
    /// Twilio finished the call's recording (it comes after the call ends: taken after
    /// the seal too, as it changes nothing the seal protects).
    Recorded { recording: RecordingReady },
    /// Twilio accepted the user's cancel.
    Cancel,
    /// Takes the completion webhook if it is due (for one attempt, leased).
    TakeWebhook,
    /// How that attempt went.
    WebhookResult { accepted: bool, retry_base_seconds: u32 },
    /// Reads the record and the live events after `after`, changing nothing.
    Read { after: u64 },
    /// Erases a final call (`DELETE /v1/calls/{id}`): its record, request and transcript
    /// go at once; the read model drops them when next published.
    Erase,
}

/// What the TwiML request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StreamGrant {
    /// Not a TwiML request.
    #[default]
    NotAsked,
    /// The first request of a live call answered by a person: mint the token.
    Connect,
    /// A machine answered, or the call is over.
    HangUp,
    /// A token was minted already: a repeat is a replay.
    Refuse,
}

/// A completion webhook to send now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookJob {
    pub url: String,
    pub owner: String,
    pub record: CallRecord,
    pub attempt: u32,
}

/// One event of the live stream (`GET /v1/calls/{id}/events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveEvent {
    /// 1, 2, 3, … per call: the SSE `id:`.
    pub id: u64,
    /// `status`, `transcript`, `outcome` or `end` (the final record).
    pub kind: String,
    pub data: Value,
}

/// The writer's answer to one change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    /// The record after the change; `None` when there is no such call.
    pub ledger: Option<CallLedger>,
    /// Whether the record changed.
    pub changed: bool,
    /// The change arrived after the seal and was not applied.
    pub late: bool,
    /// This change ended the call (its status became terminal).
    pub ended_now: bool,
    /// This change made the record final: the completion webhook is due.
    pub final_now: bool,
    #[serde(default)]
    pub grant: StreamGrant,
    /// [`Change::StartAttempt`] started an attempt: place the call now.
    #[serde(default)]
    pub dial: bool,
    /// A machine answered and nothing is decided: hang the call up (no message is left).
    #[serde(default)]
    pub hang_up: bool,
    /// A finished recording this call keeps no reference to (the call was erased, or it
    /// is a past attempt's): delete its audio at Twilio, since nothing else will.
    #[serde(default)]
    pub unkept_recording: Option<String>,
    pub webhook: Option<WebhookJob>,
    /// The live events this answer carries: for [`Change::Read`], those after the asked
    /// id; for any other change, those it added (what the call's listeners are sent).
    #[serde(default)]
    pub events: Vec<LiveEvent>,
}

/// Why a change could not be taken at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Refused {
    #[error("call {0} exists already")]
    Exists(String),
    /// Only a final call may be erased: a live one still changes.
    #[error("the call is still {0}; cancel it or wait until it has ended")]
    NotFinal(String),
}

/// What is left of an erased call until the read model has dropped it: enough to name
/// its published record and its entry in its key's list, nothing about the booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    pub call_id: String,
    pub owner: String,
    pub created_at: DateTime<Utc>,
}

/// What the read model must be brought to.
#[derive(Debug, Clone, PartialEq)]
pub enum Publication {
    /// The record (the ledger, as JSON) and its entry in its key's list.
    Put { record_key: String, record: String, index_key: String, summary: CallSummary },
    /// An erased call: both go.
    Remove { record_key: String, index_key: String },
}

/// Everything the call's one writer keeps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Keeper {
    pub ledger: Option<CallLedger>,
    /// The live log, in order.
    pub log: Vec<LiveEvent>,
    /// Changes that arrived after the seal (logged and counted, not applied).
    pub late: u32,
    /// Changes applied since the call was created; the read model lags while
    /// `published_version` is behind it.
    pub version: u64,
    pub published_version: u64,
    /// The last write (or attempt) of the read model.
    pub published_at: Option<DateTime<Utc>>,
    /// When the completion webhook is next due, if it is.
    pub webhook_due_at: Option<DateTime<Utc>>,
    /// Set once the call is erased; the ledger and live log are gone then.
    #[serde(default)]
    pub erased: Option<Erased>,
}

/// The sid of the finished recording a [`Change::Recorded`] reports.
fn finished_recording(change: &Change) -> Option<String> {
    match change {
        Change::Recorded { recording } if recording.status == "completed" => Some(recording.recording_sid.clone()),
        _ => None,
    }
}

impl Keeper {
    /// Applies one change at `now`.
    pub fn apply(&mut self, change: Change, now: DateTime<Utc>) -> Result<Reply, Refused> {
        let mut reply = Reply::default();
        if self.erased.is_some() {
            // Erased: the call is as gone as one that never existed, and so is the audio of
            // a recording Twilio finishes only now.
            reply.unkept_recording = finished_recording(&change);
            return Ok(reply);
        }
        if let Change::Erase = change {
            return self.erase();
        }
        if let Change::Create { ledger } = change {
            if let Some(existing) = &self.ledger {
                return Err(Refused::Exists(existing.record.call_id.clone()));
            }
            self.ledger = Some(*ledger);
            self.changed(None, now, &mut reply);
            return Ok(self.answer(reply));
        }
        let Some(ledger) = self.ledger.as_mut() else {
            // No such call (any more: an erased call's keeper goes once the read model has
            // dropped it): nothing refers to a recording of it either.
            reply.unkept_recording = finished_recording(&change);
            return Ok(reply);
        };
        let before = ledger.clone();
        let sealed = before.is_final();
        // A booking Twilio refused is answered at once (a 502); no webhook follows it.
        let answered_at_once = matches!(change, Change::DialFailed { answered: true, .. });
        // A callback about an attempt that has ended is late news, like one after the seal.
        let past_attempt = match &change {
            Change::Status { callback } | Change::Twiml { callback: Some(callback) } => {
                before.is_past_call_sid(&callback.call_sid)
            }
            Change::Amd { verdict } => before.is_past_call_sid(&verdict.call_sid),
            Change::Recorded { recording } => before.is_past_call_sid(&recording.call_sid),
            _ => false,
        };
        // The record keeps the current attempt's recording only.
        if past_attempt {
            reply.unkept_recording = finished_recording(&change);
        }
        let applied = match change {
            Change::Create { .. } | Change::Erase => Applied::Unchanged,
            Change::Read { after } => {
                reply.events = self.log.iter().filter(|e| e.id > after).cloned().collect();
                Applied::Unchanged
            }
            Change::TakeWebhook => {
                reply.webhook = self.take_webhook(now);
                Applied::Unchanged
            }
            Change::WebhookResult { accepted, retry_base_seconds } => {
                // Delivery state only: the public record (and its read model) is unchanged.
                self.webhook_result(accepted, retry_base_seconds, now);
                Applied::Unchanged
            }
            Change::Recorded { recording } if !past_attempt && recording.status == "completed" => {
                let call_sid = recording.call_sid.clone();
                let applied = ledger.recorded(&call_sid, recording.into(), now);
                // The webhook waited for the recording (see `changed`): it may go now.
                if applied == Applied::Changed && self.webhook_due_at.is_some_and(|at| at > now) {
                    self.webhook_due_at = Some(now);
                }
                applied
            }
            _ if sealed || past_attempt => {
                self.late += 1;
                reply.late = true;
                Applied::Unchanged
            }
            Change::Dialed { call_sid } => ledger.dialed(&call_sid, now),
            Change::DialFailed { code, message, .. } => ledger.failed(&code, &message, now),
            Change::StartAttempt => {
                let started = ledger.start_attempt(now);
                reply.dial = started == Applied::Changed && ledger.record.status == CallStatus::Queued;
                started
            }
            Change::Postpone { until } => ledger.postpone(until, now),
            Change::Status { callback } => ledger.apply_status_callback(&callback, now),
            Change::Twiml { callback } => {
                let applied = callback.map_or(Applied::Unchanged, |c| ledger.apply_status_callback(&c, now));
                let machine = ledger.record.answered_by.is_some_and(|a| a.is_machine());
                reply.grant = if ledger.stream_token_issued {
                    StreamGrant::Refuse
                } else if machine || ledger.record.status.is_terminal() {
                    StreamGrant::HangUp
                } else {
                    ledger.stream_token_issued = true;
                    StreamGrant::Connect
                };
                if reply.grant == StreamGrant::Connect {
                    Applied::Changed
                } else {
                    applied
                }
            }
            Change::Event { event } => ledger.apply_event(&event, now),
            Change::Amd { verdict } => {
                let applied = ledger.learn_amd(&verdict.call_sid, verdict.answered_by, now);
                // Once: a repeated verdict asks for no second hang-up.
                reply.hang_up = applied == Applied::Changed && ledger.machine_on_the_line();
                applied
            }
            // Not completed (absent, failed): nothing to point at.
            Change::Recorded { .. } => Applied::Unchanged,
            Change::Cancel => ledger.canceled(now),
        };
        // An attempt that ended busy, unanswered, failed or on a machine: the next one is
        // scheduled if the plan allows, and the call is not final.
        let retry_at = if applied == Applied::Changed && !answered_at_once {
            self.ledger.as_ref().and_then(|l| l.retry_at(now))
        } else {
            None
        };
        if let (Some(at), Some(ledger)) = (retry_at, self.ledger.as_mut()) {
            ledger.roll_over(at, now);
        }
        if applied == Applied::Changed {
            self.changed(Some(&before), now, &mut reply);
            if answered_at_once {
                self.webhook_due_at = None;
                reply.final_now = false;
            }
            // The attempt's slot goes back while the booking waits.
            reply.ended_now |= retry_at.is_some();
        }
        Ok(self.answer(reply))
    }

    /// Erases a final call: nothing of the booking stays, and the read model is due to
    /// drop it. No webhook is sent after this, even one still being retried.
    fn erase(&mut self) -> Result<Reply, Refused> {
        let Some(ledger) = &self.ledger else { return Ok(Reply::default()) };
        if !ledger.is_final() {
            return Err(Refused::NotFinal(ledger.record.status.as_str().to_owned()));
        }
        self.erased = Some(Erased {
            call_id: ledger.record.call_id.clone(),
            owner: ledger.owner.clone(),
            created_at: ledger.record.created_at,
        });
        self.ledger = None;
        self.log.clear();
        self.webhook_due_at = None;
        self.version += 1;
        Ok(Reply { changed: true, ..Reply::default() })
    }

    /// What the read model should hold now, if it is behind.
    pub fn publication(&self) -> Option<Publication> {
        if !self.unpublished() {
            return None;
        }
        if let Some(erased) = &self.erased {
            return Some(Publication::Remove {
                record_key: keys::record(&erased.call_id),
                index_key: keys::index(&erased.owner, erased.created_at, &erased.call_id),
            });
        }
        let ledger = self.ledger.as_ref()?;
        let record = &ledger.record;
        Some(Publication::Put {
            record_key: keys::record(&record.call_id),
            record: serde_json::to_string(ledger).ok()?,
            index_key: keys::index(&ledger.owner, record.created_at, &record.call_id),
            summary: CallSummary::of(record),
        })
    }

    fn answer(&self, mut reply: Reply) -> Reply {
        reply.ledger = self.ledger.clone();
        reply
    }

    /// Bookkeeping after a change: the version, the live log, the seal and the webhook.
    fn changed(&mut self, before: Option<&CallLedger>, now: DateTime<Utc>, reply: &mut Reply) {
        let Some(after) = self.ledger.clone() else { return };
        reply.changed = true;
        self.version += 1;
        let was_ended = before.is_some_and(|b| b.record.status.is_terminal());
        reply.ended_now = !was_ended && after.record.status.is_terminal();
        let was_final = before.is_some_and(CallLedger::is_final);
        reply.final_now = !was_final && after.is_final();
        let first_new = self.log.len();
        for (kind, data) in live_changes(before.map(|b| &b.record), &after.record) {
            self.push_live(kind, data);
        }
        if reply.final_now {
            self.push_live("end", serde_json::to_value(&after.record).unwrap_or_default());
            if after.record.request.callback_url.is_some() && !after.callback_delivered {
                // A recorded call that was answered: its recording follows the call's end
                // by seconds; the webhook waits for it, a while at most.
                let awaiting_recording = after.record.request.record
                    && after.record.answered_by.is_some()
                    && after.record.recording.is_none();
                self.webhook_due_at = Some(if awaiting_recording { now + RECORDING_GRACE } else { now });
            }
        }
        reply.events = self.log[first_new..].to_vec();
    }

    fn push_live(&mut self, kind: &str, data: Value) {
        let id = self.log.last().map_or(1, |last| last.id + 1);
        self.log.push(LiveEvent { id, kind: kind.to_owned(), data });
    }

    /// The webhook, if due at `now`; taking it leases the attempt so that a second
    /// wake-up meanwhile does not send it twice.
    fn take_webhook(&mut self, now: DateTime<Utc>) -> Option<WebhookJob> {
        let ledger = self.ledger.as_ref()?;
        let url = ledger.record.request.callback_url.clone()?;
        let due = self.webhook_due_at.is_some_and(|at| at <= now);
        // Only once the final record is published: a user who reads the call after the
        // webhook sees what the webhook said.
        if !due || self.unpublished() || ledger.callback_delivered || ledger.callback_attempts >= WEBHOOK_MAX_ATTEMPTS {
            return None;
        }
        self.webhook_due_at = Some(now + WEBHOOK_ATTEMPT_LEASE);
        Some(WebhookJob {
            url,
            owner: ledger.owner.clone(),
            record: ledger.record.clone(),
            attempt: ledger.callback_attempts + 1,
        })
    }

    fn webhook_result(&mut self, accepted: bool, retry_base_seconds: u32, now: DateTime<Utc>) {
        let Some(ledger) = self.ledger.as_mut() else { return };
        ledger.callback_attempts += 1;
        ledger.callback_delivered |= accepted;
        self.webhook_due_at = if ledger.callback_delivered || ledger.callback_attempts >= WEBHOOK_MAX_ATTEMPTS {
            None
        } else {
            Some(now + webhook_backoff(retry_base_seconds, ledger.callback_attempts))
        };
    }

    /// Whether the read model (KV) is behind the record.
    pub fn unpublished(&self) -> bool {
        self.version > self.published_version
    }

    /// When the read model may next be written: now, or a second after the last write.
    pub fn publish_at(&self) -> Option<DateTime<Utc>> {
        if !self.unpublished() {
            return None;
        }
        Some(self.published_at.map_or(DateTime::<Utc>::MIN_UTC, |at| at + PUBLISH_INTERVAL))
    }

    /// If the read model may be written at `now`: takes the second's one write (so a
    /// write that fails is tried again a second later, and two holders never write in
    /// the same second) and returns the version to write, the record as it is now.
    pub fn start_publish(&mut self, now: DateTime<Utc>) -> Option<u64> {
        if self.publish_at()? > now {
            return None;
        }
        self.published_at = Some(now);
        Some(self.version)
    }

    /// The read model now holds `version`.
    pub fn finish_publish(&mut self, version: u64) {
        self.published_version = self.published_version.max(version);
    }

    /// When the holder must wake this keeper next (publish, webhook, the next
    /// attempt), if ever.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        let attempt = self
            .ledger
            .as_ref()
            .filter(|l| l.record.status == CallStatus::Scheduled)
            .and_then(|l| l.record.scheduled_for);
        [self.publish_at(), self.webhook_due_at, attempt].into_iter().flatten().min()
    }
}

/// What a listener sees change between two versions of the record.
fn live_changes(before: Option<&CallRecord>, after: &CallRecord) -> Vec<(&'static str, Value)> {
    let mut changes = Vec::new();
    // An attempt that has just ended, before the status that follows it (`scheduled`
    // for the next one, or the booking's end); a booking called once has no attempts
    // to tell apart.
    let retried = after.attempts.len() > 1 || after.status == CallStatus::Scheduled;
    for attempt in after.attempts.iter().filter(|a| retried && a.ended_at.is_some()) {
        let was_open =
            before.is_none_or(|b| b.attempts.iter().all(|old| old.number != attempt.number || old.ended_at.is_none()));
        if was_open {
            changes.push(("attempt", serde_json::to_value(attempt).unwrap_or_default()));
        }
    }
    let status_of =
        |record: &CallRecord| (record.status, record.answered_by, record.error.clone(), record.scheduled_for);
    if before.map(status_of) != Some(status_of(after)) {
        changes.push((
            "status",
            json!({"status": after.status, "answered_by": after.answered_by, "error": after.error,
                   "scheduled_for": after.scheduled_for, "attempt": after.attempts.len()}),
        ));
    }
    let old_lines = before.map_or(&[][..], |b| &b.transcript[..]);
    for line in &after.transcript {
        if !old_lines.contains(line) {
            changes.push(("transcript", serde_json::to_value(line).unwrap_or_default()));
        }
    }
    if before.map(|b| &b.outcome) != Some(&after.outcome) && after.outcome.is_some() {
        changes.push(("outcome", serde_json::to_value(&after.outcome).unwrap_or_default()));
    }
    changes
}

/// `base` seconds, doubling per attempt, at most four hours.
pub fn webhook_backoff(base_seconds: u32, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    Duration::seconds(i64::from(base_seconds) << doublings).min(Duration::hours(4))
}

#[cfg(test)]
mod tests {
    use shared::booking::BookingRequest;
    use shared::events::{CallEventKind, EndReason, Outcome, OutcomeResult, Speaker};
    use shared::twilio::status::TwilioCallStatus;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    fn booked() -> Keeper {
        let body = serde_json::json!({
            "restaurant": {"name": "Chez Panisse", "phone": "+15105485525"},
            "reservation": {"date": "2027-01-15", "time": "19:30", "party_size": 4, "name": "Ada"},
            "timezone": "America/Los_Angeles",
            "callback_url": "https://user.example/hook"
        });
        let request = BookingRequest::parse(body.to_string().as_bytes(), at(0)).expect("a valid booking");
        let mut keeper = Keeper::default();
        let ledger = CallLedger::new("call_1".into(), "owner".into(), request, at(0));
        keeper.apply(Change::Create { ledger: Box::new(ledger) }, at(0)).expect("created");
        keeper
    }

    fn status(status: TwilioCallStatus) -> Change {
        let callback = StatusCallback {
            call_sid: "CA1".into(),
            account_sid: "AC1".into(),
            call_status: status,
            sequence_number: None,
            call_duration: None,
            answered_by: None,
            error_code: Some("31005".into()),
            error_message: Some("late".into()),
            sent_at: None,
        };
        Change::Status { callback }
    }

    fn event(stream: &str, n: u32, kind: CallEventKind) -> Change {
        Change::Event { event: CallEvent::of_stream(stream, n, kind) }
    }

    fn started(stream: &str) -> Change {
        event(stream, 0, CallEventKind::StreamStarted { stream_sid: stream.into() })
    }

    fn ended(stream: &str, reason: EndReason) -> Change {
        event(stream, 99, CallEventKind::StreamEnded { reason, stats: Default::default() })
    }

    fn outcome(stream: &str, code: &str, at_ms: u64) -> Change {
        let outcome = Outcome {
            result: OutcomeResult::Confirmed,
            confirmation_number: Some(code.into()),
            confirmed_date: None,
            confirmed_time: None,
            party_size: None,
            notes: None,
            code_verification: None,
            heard_code: None,
        };
        event(stream, 50, CallEventKind::Outcome { outcome, at_ms })
    }

    fn line(stream: &str, n: u32, text: &str) -> Change {
        event(stream, n, CallEventKind::Transcript { speaker: Speaker::Agent, text: text.into(), at_ms: u64::from(n) })
    }

    /// What the holder does when the keeper asks: writes the read model.
    fn publish(keeper: &mut Keeper, now: DateTime<Utc>) {
        if let Some(version) = keeper.start_publish(now) {
            keeper.finish_publish(version);
        }
    }

    /// A call answered, confirmed on stream MZ1, ended and completed: final.
    fn completed() -> Keeper {
        let mut keeper = booked();
        for change in [
            started("MZ1"),
            line("MZ1", 1, "A table for four?"),
            outcome("MZ1", "A73X", 9000),
            ended("MZ1", EndReason::AgentHungUp),
            status(TwilioCallStatus::Completed),
        ] {
            keeper.apply(change, at(5)).expect("applied");
        }
        keeper
    }

    #[test]
    fn a_final_record_is_sealed_against_every_late_change() {
        let mut keeper = completed();
        let sealed = keeper.ledger.clone().expect("a record").record;
        assert_eq!(sealed.status, CallStatus::Completed);
        for late in [
            status(TwilioCallStatus::Failed),
            status(TwilioCallStatus::Canceled),
            started("MZ2"),
            line("MZ2", 1, "Hello again?"),
            outcome("MZ2", "ZZZ9", 99_000),
            ended("MZ2", EndReason::CallerHungUp),
            Change::Twiml { callback: None },
            Change::Cancel,
        ] {
            let reply = keeper.apply(late.clone(), at(60)).expect("answered");
            assert!(reply.late && !reply.changed, "{late:?} was applied");
            assert_eq!(reply.grant, StreamGrant::NotAsked, "no stream token after the seal");
        }
        assert_eq!(keeper.ledger.map(|l| l.record), Some(sealed), "status, outcome, transcript unchanged; no error");
        assert_eq!(keeper.late, 8);
    }

    #[test]
    fn a_superseded_streams_end_does_not_close_the_call_before_the_live_streams_outcome() {
        let mut keeper = booked();
        keeper.apply(started("MZ1"), at(1)).expect("applied");
        keeper.apply(started("MZ2"), at(2)).expect("applied");
        // The old stream's end and Twilio's completion arrive first.
        let reply = keeper.apply(ended("MZ1", EndReason::Superseded), at(3)).expect("applied");
        assert!(!reply.final_now);
        let reply = keeper.apply(status(TwilioCallStatus::Completed), at(4)).expect("applied");
        assert!(reply.ended_now && !reply.final_now, "the live stream has not ended");
        assert!(keeper.apply(Change::TakeWebhook, at(4)).expect("answered").webhook.is_none());
        // The old stream's late outcome is not the call's.
        keeper.apply(outcome("MZ1", "OLD1", 90_000), at(5)).expect("applied");
        // The live stream's outcome (its own clock: a smaller at_ms), then its end.
        keeper.apply(outcome("MZ2", "B22", 4_000), at(6)).expect("applied");
        let reply = keeper.apply(ended("MZ2", EndReason::AgentHungUp), at(7)).expect("applied");
        assert!(reply.final_now);
        assert!(keeper.apply(Change::TakeWebhook, at(7)).expect("answered").webhook.is_none(), "not yet published");
        publish(&mut keeper, at(7));
        let job = keeper.apply(Change::TakeWebhook, at(7)).expect("answered").webhook.expect("due now");
        let code = job.record.outcome.and_then(|o| o.confirmation_number);
        assert_eq!(code.as_deref(), Some("B22"), "the webhook carries the live stream's outcome");
        // Taken once: a second wake-up meanwhile sends nothing.
        assert!(keeper.apply(Change::TakeWebhook, at(7)).expect("answered").webhook.is_none());
    }

    #[test]
    fn the_webhook_is_retried_with_backoff_then_given_up() {
        let mut keeper = completed();
        assert_eq!(keeper.webhook_due_at, Some(at(5)));
        publish(&mut keeper, at(5));
        let mut now = at(5);
        for attempt in 1..=WEBHOOK_MAX_ATTEMPTS {
            let job = keeper.apply(Change::TakeWebhook, now).expect("answered").webhook;
            assert_eq!(job.map(|j| j.attempt), Some(attempt));
            keeper.apply(Change::WebhookResult { accepted: false, retry_base_seconds: 60 }, now).expect("applied");
            let next = keeper.webhook_due_at;
            if attempt < WEBHOOK_MAX_ATTEMPTS {
                assert_eq!(next, Some(now + webhook_backoff(60, attempt)));
                assert!(keeper.apply(Change::TakeWebhook, now).expect("answered").webhook.is_none(), "not due yet");
                now = next.unwrap_or(now);
            }
        }
        assert_eq!(keeper.webhook_due_at, None, "given up");
        assert_eq!(keeper.next_wake(), None, "nothing left to wake for");
    }

    #[test]
    fn the_read_model_is_published_at_most_once_a_second_and_always_catches_up() {
        let mut keeper = booked();
        assert_eq!(keeper.publish_at(), Some(DateTime::<Utc>::MIN_UTC), "a new record: publish at once");
        assert_eq!(keeper.start_publish(at(0)), Some(1));
        keeper.finish_publish(1);
        assert_eq!(keeper.publish_at(), None);
        keeper.apply(status(TwilioCallStatus::Ringing), at(0)).expect("applied");
        assert_eq!(keeper.publish_at(), Some(at(1)), "a second after the last write");
        assert_eq!(keeper.start_publish(at(0)), None, "not twice in a second");
        assert_eq!(keeper.next_wake(), Some(at(1)));
        // A write that failed (its version never finished) is tried again a second later.
        assert_eq!(keeper.start_publish(at(1)), Some(2));
        assert_eq!(keeper.publish_at(), Some(at(2)));
        assert_eq!(keeper.start_publish(at(2)), Some(2));
        keeper.finish_publish(2);
        // Changes that change nothing leave nothing to publish.
        keeper.apply(status(TwilioCallStatus::Ringing), at(3)).expect("applied");
        assert_eq!(keeper.publish_at(), None);
    }

    #[test]
    fn the_live_log_numbers_every_change_a_listener_sees() {
        let keeper = completed();
        let kinds: Vec<(u64, &str)> = keeper.log.iter().map(|e| (e.id, e.kind.as_str())).collect();
        assert_eq!(
            kinds,
            [(1, "status"), (2, "status"), (3, "transcript"), (4, "outcome"), (5, "status"), (6, "end")],
            "queued, in progress, the line, the outcome, completed, the end"
        );
        let mut reader = keeper.clone();
        let missed = reader.apply(Change::Read { after: 3 }, at(9)).expect("answered").events;
        assert_eq!(missed.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5, 6]);
    }

    #[test]
    fn a_token_is_granted_once_and_never_to_a_machine() {
        let mut keeper = booked();
        assert_eq!(
            keeper.apply(Change::Twiml { callback: None }, at(1)).expect("answered").grant,
            StreamGrant::Connect
        );
        assert_eq!(keeper.apply(Change::Twiml { callback: None }, at(2)).expect("answered").grant, StreamGrant::Refuse);
        let mut machine = booked();
        let Change::Status { mut callback } = status(TwilioCallStatus::InProgress) else { return };
        callback.answered_by = Some(shared::twilio::status::AnsweredBy::MachineStart);
        let grant = machine.apply(Change::Twiml { callback: Some(callback) }, at(1)).expect("answered").grant;
        assert_eq!(grant, StreamGrant::HangUp);
    }
}
