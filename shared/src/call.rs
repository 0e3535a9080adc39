//! The call record (what `GET /v1/calls/{id}` returns) and the ledger the edge stores,
//! which folds Twilio status callbacks and media-worker events into it.
//!
//! Every fold is order-independent: status only moves forward (a fixed rank, with a
//! fixed precedence between terminal states), facts are set once and kept, transcript
//! lines are de-duplicated by event id and kept in time order, the newest outcome
//! (by its time in the call) wins, and each ended stream's metrics are summed in. So duplicated and reordered deliveries end in the
//! same record, which `tests/call_ledger_properties.rs` checks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::booking::BookingRequest;
use crate::events::{CallEvent, CallEventKind, CallStats, Outcome, OutcomeResult, Speaker};
use crate::schedule::{AttemptEnd, CallPlan};
use crate::twilio::status::{AnsweredBy, StatusCallback, TwilioCallStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Queued,
    /// Waiting for its time: the booking's `call_at`, the calling window's opening, or
    /// the next attempt after a busy line, no answer or a machine ([`crate::schedule`]).
    Scheduled,
    Dialing,
    Ringing,
    InProgress,
    Completed,
    NoAnswer,
    Busy,
    Failed,
    Canceled,
}

impl CallStatus {
    pub const ALL: [CallStatus; 10] = [
        CallStatus::Queued,
        CallStatus::Scheduled,
        CallStatus::Dialing,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::NoAnswer,
        CallStatus::Busy,
        CallStatus::Failed,
        CallStatus::Canceled,
    ];

    pub fn is_terminal(self) -> bool {
        self.rank() >= 4
    }

    /// Position in the lifecycle; terminal states share the top and are ordered among
    /// themselves by how much they tell (an explicit cancel beats what Twilio reports).
    fn rank(self) -> u8 {
        match self {
            CallStatus::Queued | CallStatus::Scheduled => 0,
            CallStatus::Dialing => 1,
            CallStatus::Ringing => 2,
            CallStatus::InProgress => 3,
            CallStatus::Failed => 4,
            CallStatus::NoAnswer => 5,
            CallStatus::Busy => 6,
            CallStatus::Completed => 7,
            CallStatus::Canceled => 8,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Scheduled => "scheduled",
            CallStatus::Dialing => "dialing",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in_progress",
            CallStatus::Completed => "completed",
            CallStatus::NoAnswer => "no_answer",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    /// Whether moving from `self` to `next` goes forward.
    pub fn may_become(self, next: CallStatus) -> bool {
        next.rank() > self.rank()
    }
}

impl From<TwilioCallStatus> for CallStatus {
    fn from(status: TwilioCallStatus) -> CallStatus {
        match status {
            TwilioCallStatus::Queued | TwilioCallStatus::Initiated => CallStatus::Dialing,
            TwilioCallStatus::Ringing => CallStatus::Ringing,
            TwilioCallStatus::InProgress | TwilioCallStatus::Answered => CallStatus::InProgress,
            TwilioCallStatus::Completed => CallStatus::Completed,
            TwilioCallStatus::Busy => CallStatus::Busy,
            TwilioCallStatus::NoAnswer => CallStatus::NoAnswer,
            TwilioCallStatus::Failed => CallStatus::Failed,
            TwilioCallStatus::Canceled => CallStatus::Canceled,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    pub speaker: Speaker,
    pub text: String,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    pub code: String,
    pub message: String,
}

/// The public view of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: String,
    pub status: CallStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub request: BookingRequest,
    pub twilio_call_sid: Option<String>,
    pub answered_by: Option<AnsweredBy>,
    pub duration_seconds: Option<u32>,
    pub outcome: Option<Outcome>,
    pub transcript: Vec<TranscriptLine>,
    pub error: Option<CallError>,
    /// What the media worker measured (latencies, tokens, audio, estimated cost),
    /// summed over the call's streams; absent until a stream has ended.
    #[serde(default)]
    pub metrics: Option<CallStats>,
    /// When the next call goes out, while the status is `scheduled`.
    #[serde(default)]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Every call placed for this booking, oldest first; the last is the current one
    /// (its fields mirror the record's own while it runs).
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// The call's recording, when the booking asked for one and Twilio has finished it.
    #[serde(default)]
    pub recording: Option<Recording>,
}

impl From<crate::twilio::status::RecordingReady> for Recording {
    fn from(ready: crate::twilio::status::RecordingReady) -> Recording {
        Recording {
            sid: ready.recording_sid,
            url: ready.url,
            duration_seconds: ready.duration_seconds,
            channels: ready.channels,
        }
    }
}

/// Where a call's recording is (at Twilio, fetched with the account's credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub sid: String,
    pub url: String,
    pub duration_seconds: Option<u32>,
    /// 2: the restaurant and the agent each on their own channel.
    pub channels: Option<u32>,
}

/// One call placed for a booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1, 2, 3, …
    pub number: u32,
    pub started_at: DateTime<Utc>,
    /// When its status became terminal.
    pub ended_at: Option<DateTime<Utc>>,
    pub status: CallStatus,
    pub twilio_call_sid: Option<String>,
    pub answered_by: Option<AnsweredBy>,
    pub duration_seconds: Option<u32>,
    pub error: Option<CallError>,
}

impl Attempt {
    fn new(number: u32, now: DateTime<Utc>) -> Attempt {
        Attempt {
            number,
            started_at: now,
            ended_at: None,
            status: CallStatus::Queued,
            twilio_call_sid: None,
            answered_by: None,
            duration_seconds: None,
            error: None,
        }
    }
}

/// Where the media stream stands, as the media worker reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StreamPhase {
    #[default]
    NotStarted,
    Started,
    Ended,
}

/// What the edge stores per call: the record plus the bookkeeping that keeps folds
/// idempotent. Never returned to users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLedger {
    pub record: CallRecord,
    /// Hash of the API key that created the call (see `auth::key_owner`).
    pub owner: String,
    /// Event ids already applied, so a redelivery changes nothing.
    #[serde(default)]
    pub applied_event_ids: Vec<String>,
    /// `at_ms` of the outcome now in the record, so only a newer one replaces it.
    #[serde(default)]
    pub outcome_at_ms: Option<u64>,
    /// Where the call's current stream stands.
    #[serde(default)]
    pub stream: StreamPhase,
    /// The stream the call currently belongs to: the last one started. Only it can
    /// settle the outcome or end the call; a superseded stream's end closes nothing.
    #[serde(default)]
    pub current_stream: Option<String>,
    /// Streams that have reported their end (a start arriving after its own end is stale).
    #[serde(default)]
    pub ended_streams: Vec<String>,
    /// The stream whose outcome is in the record: a new current stream's outcome
    /// replaces it whatever its `at_ms` (each stream counts from its own start).
    #[serde(default)]
    pub outcome_stream: Option<String>,
    /// Whether the completion webhook has been accepted by the user's endpoint.
    #[serde(default)]
    pub callback_delivered: bool,
    /// How many times the completion webhook has been tried.
    #[serde(default)]
    pub callback_attempts: u32,
    /// Whether TwiML with a stream token has been served. Twilio fetches it once per
    /// call; a second fetch is a replay and gets no token.
    #[serde(default)]
    pub stream_token_issued: bool,
    /// When and how often to call ([`crate::schedule`]); none for a booking called
    /// once, at once.
    #[serde(default)]
    pub plan: Option<CallPlan>,
    /// No attempt is running: the booking waits for its first or next call (or ended
    /// while it waited); the record's per-call fields belong to no attempt.
    #[serde(default)]
    pub between_attempts: bool,
}

/// What a fold did, so handlers can log it and tests can assert it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The record changed.
    Changed,
    /// Nothing new: a duplicate, or stale information.
    Unchanged,
}

impl CallLedger {
    pub fn new(call_id: String, owner: String, request: BookingRequest, now: DateTime<Utc>) -> CallLedger {
        CallLedger {
            record: CallRecord {
                call_id,
                status: CallStatus::Queued,
                created_at: now,
                updated_at: now,
                request,
                twilio_call_sid: None,
                answered_by: None,
                duration_seconds: None,
                outcome: None,
                transcript: Vec::new(),
                error: None,
                metrics: None,
                scheduled_for: None,
                attempts: vec![Attempt::new(1, now)],
                recording: None,
            },
            owner,
            applied_event_ids: Vec::new(),
            outcome_at_ms: None,
            stream: StreamPhase::NotStarted,
            current_stream: None,
            ended_streams: Vec::new(),
            outcome_stream: None,
            callback_delivered: false,
            callback_attempts: 0,
            stream_token_issued: false,
            plan: None,
            between_attempts: false,
        }
    }

    /// A booking called by `plan`, first at `first_at`: at once if that is `now`,
    /// otherwise `scheduled` until then.
    pub fn planned(mut self, plan: CallPlan, first_at: DateTime<Utc>, now: DateTime<Utc>) -> CallLedger {
        self.plan = Some(plan);
        if first_at > now {
            self.record.status = CallStatus::Scheduled;
            self.record.scheduled_for = Some(first_at);
            self.record.attempts.clear();
            self.between_attempts = true;
        }
        self
    }

    /// How the current attempt ended, for deciding whether to call again.
    pub fn attempt_end(&self) -> AttemptEnd {
        let record = &self.record;
        let voicemail = record.outcome.as_ref().is_some_and(|o| o.result == OutcomeResult::Voicemail);
        match record.status {
            CallStatus::Busy => AttemptEnd::Busy,
            CallStatus::NoAnswer => AttemptEnd::NoAnswer,
            // Failed on the network (Twilio had the call), not refused when placing it.
            CallStatus::Failed if record.twilio_call_sid.is_some() => AttemptEnd::CarrierFailed,
            CallStatus::Completed if voicemail => AttemptEnd::Voicemail,
            _ => AttemptEnd::Settled,
        }
    }

    /// When to call again, if the current attempt is over and the plan says to.
    pub fn retry_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let plan = self.plan.as_ref()?;
        if !self.is_final() || self.record.status == CallStatus::Scheduled {
            return None;
        }
        plan.next_attempt(self.record.attempts.len() as u32, self.attempt_end(), now).ok()
    }

    /// Closes the current attempt (kept in `attempts`) and waits for the next at `at`:
    /// the record's per-call fields start over; the transcript and metrics stay.
    pub fn roll_over(&mut self, at: DateTime<Utc>, now: DateTime<Utc>) -> Applied {
        self.sync_attempt();
        self.between_attempts = true;
        let record = &mut self.record;
        record.status = CallStatus::Scheduled;
        record.scheduled_for = Some(at);
        record.twilio_call_sid = None;
        record.answered_by = None;
        record.duration_seconds = None;
        record.outcome = None;
        record.error = None;
        self.outcome_at_ms = None;
        self.outcome_stream = None;
        self.stream = StreamPhase::NotStarted;
        self.current_stream = None;
        self.stream_token_issued = false;
        self.touch(now)
    }

    /// Starts the next attempt if one is due at `now`: `queued`, to be dialed.
    pub fn start_attempt(&mut self, now: DateTime<Utc>) -> Applied {
        let due = self.record.scheduled_for.is_some_and(|at| at <= now);
        if self.record.status != CallStatus::Scheduled || !due {
            return Applied::Unchanged;
        }
        if let Some(deadline) = self.plan.as_ref().map(|p| p.deadline).filter(|deadline| now > *deadline) {
            // Postponed past the last moment to call (no free slot, Twilio away): the
            // booking ends here rather than ring as the guests sit down.
            self.record.error = Some(CallError {
                code: "not_placed_in_time".to_owned(),
                message: format!("no call could be placed before {deadline}, the last moment before the reservation"),
            });
            return self.advance(CallStatus::Failed, now);
        }
        self.record.status = CallStatus::Queued;
        self.record.scheduled_for = None;
        self.between_attempts = false;
        let number = self.record.attempts.len() as u32 + 1;
        self.record.attempts.push(Attempt::new(number, now));
        self.touch(now)
    }

    /// An attempt just started could not be dialed yet (no free slot, Twilio
    /// unreachable): it is taken back and the booking waits until `until`.
    pub fn postpone(&mut self, until: DateTime<Utc>, now: DateTime<Utc>) -> Applied {
        if self.record.status != CallStatus::Queued || self.record.twilio_call_sid.is_some() {
            return Applied::Unchanged;
        }
        self.record.attempts.pop();
        self.between_attempts = true;
        self.record.status = CallStatus::Scheduled;
        self.record.scheduled_for = Some(until);
        self.touch(now)
    }

    /// Whether `call_sid` is a finished attempt's: its callbacks are late news.
    pub fn is_past_call_sid(&self, call_sid: &str) -> bool {
        let current = (!self.between_attempts).then(|| self.record.attempts.last()).flatten();
        self.record
            .attempts
            .iter()
            .filter(|a| Some(a.number) != current.map(|c| c.number))
            .any(|a| a.twilio_call_sid.as_deref() == Some(call_sid))
    }

    /// The current attempt mirrors the record's per-call fields.
    fn sync_attempt(&mut self) {
        if self.between_attempts {
            return;
        }
        let record = &mut self.record;
        let Some(attempt) = record.attempts.last_mut() else { return };
        attempt.status = record.status;
        attempt.twilio_call_sid.clone_from(&record.twilio_call_sid);
        attempt.answered_by = record.answered_by;
        attempt.duration_seconds = record.duration_seconds;
        attempt.error.clone_from(&record.error);
        if record.status.is_terminal() && attempt.ended_at.is_none() {
            attempt.ended_at = Some(record.updated_at);
        }
    }

    /// Moves the status forward; a backwards or sideways move is ignored.
    pub fn advance(&mut self, next: CallStatus, now: DateTime<Utc>) -> Applied {
        if !self.record.status.may_become(next) {
            return Applied::Unchanged;
        }
        self.record.status = next;
        if next.is_terminal() {
            // Ended (canceled while it waited, say): no call is coming.
            self.record.scheduled_for = None;
        }
        // An error explains a failure only: a call that ended otherwise (a late or
        // reordered `failed` callback notwithstanding) carries none.
        if next.is_terminal() && next != CallStatus::Failed {
            self.record.error = None;
        }
        self.settle_voicemail();
        self.touch(now)
    }

    /// Twilio accepted the call: it is being dialed.
    pub fn dialed(&mut self, call_sid: &str, now: DateTime<Utc>) -> Applied {
        let sid_learned = self.learn_sid(call_sid);
        let moved = self.advance(CallStatus::Dialing, now);
        if sid_learned || moved == Applied::Changed {
            self.touch(now)
        } else {
            Applied::Unchanged
        }
    }

    /// The call could not be placed or went wrong.
    pub fn failed(&mut self, code: &str, message: &str, now: DateTime<Utc>) -> Applied {
        if self.record.error.is_none() {
            self.record.error = Some(CallError { code: code.to_owned(), message: message.to_owned() });
        }
        self.advance(CallStatus::Failed, now);
        self.touch(now)
    }

    /// Folds one Twilio status callback in.
    pub fn apply_status_callback(&mut self, callback: &StatusCallback, now: DateTime<Utc>) -> Applied {
        let mut changed = self.learn_sid(&callback.call_sid);
        if let (None, Some(answered_by)) = (self.record.answered_by, callback.answered_by) {
            self.record.answered_by = Some(answered_by);
            changed = true;
        }
        if let (None, Some(seconds)) = (self.record.duration_seconds, callback.call_duration) {
            self.record.duration_seconds = Some(seconds);
            changed = true;
        }
        let status = CallStatus::from(callback.call_status);
        if status == CallStatus::Failed && self.record.error.is_none() && self.record.status.may_become(status) {
            let code = callback.error_code.clone().unwrap_or_else(|| "call_failed".to_owned());
            let message = callback
                .error_message
                .clone()
                .unwrap_or_else(|| "the phone network could not complete the call".to_owned());
            self.record.error = Some(CallError { code, message });
            changed = true;
        }
        let moved = self.advance(status, now) == Applied::Changed;
        changed |= self.settle_voicemail();
        if changed || moved {
            self.touch(now)
        } else {
            Applied::Unchanged
        }
    }

    /// The asynchronous AMD verdict for the current call: who answered. Returns whether
    /// it changed the record.
    pub fn learn_amd(&mut self, call_sid: &str, answered_by: AnsweredBy, now: DateTime<Utc>) -> Applied {
        let other_call = self.record.twilio_call_sid.as_deref().is_some_and(|sid| sid != call_sid);
        if other_call || self.record.answered_by.is_some() {
            return Applied::Unchanged;
        }
        self.learn_sid(call_sid);
        self.record.answered_by = Some(answered_by);
        self.settle_voicemail();
        self.touch(now)
    }

    /// A machine answered, the call is live and nothing is decided: it is to be hung
    /// up, leaving no message.
    pub fn machine_on_the_line(&self) -> bool {
        let machine = self.record.answered_by.is_some_and(AnsweredBy::is_machine);
        let undecided = self.record.outcome.as_ref().is_none_or(|o| o.result == OutcomeResult::NoDecision);
        machine && undecided && !self.record.status.is_terminal()
    }

    /// Twilio's finished recording of the current call (one of its sid; a later report
    /// of the same recording replaces the earlier).
    pub fn recorded(&mut self, call_sid: &str, recording: Recording, now: DateTime<Utc>) -> Applied {
        let other_call = self.record.twilio_call_sid.as_deref().is_some_and(|sid| sid != call_sid);
        if other_call || self.record.recording.as_ref() == Some(&recording) {
            return Applied::Unchanged;
        }
        self.record.recording = Some(recording);
        self.touch(now)
    }

    /// Folds one media-worker event in, once per event id.
    pub fn apply_event(&mut self, event: &CallEvent, now: DateTime<Utc>) -> Applied {
        if self.applied_event_ids.iter().any(|id| id == &event.id) {
            return Applied::Unchanged;
        }
        self.applied_event_ids.push(event.id.clone());
        let stream = event.source_stream();
        // Events of unnamed streams (older reporters) count as the current stream's.
        let from_current =
            stream.is_none() || self.current_stream.is_none() || stream == self.current_stream.as_deref();
        match &event.kind {
            CallEventKind::StreamStarted { stream_sid } => {
                // A start arriving after its own end (or, for unnamed events, after an
                // end while no stream was known) is stale.
                let unnamed_end_first = self.current_stream.is_none() && self.stream == StreamPhase::Ended;
                let stale = self.ended_streams.contains(stream_sid) || unnamed_end_first;
                if stale && self.current_stream.is_none() {
                    self.current_stream = Some(stream_sid.clone());
                }
                if !stale && self.current_stream.as_deref() != Some(stream_sid) {
                    // A newer stream takes the call over.
                    self.current_stream = Some(stream_sid.clone());
                    self.stream = StreamPhase::Started;
                }
                self.advance(CallStatus::InProgress, now);
            }
            CallEventKind::Transcript { speaker, text, at_ms } => {
                let line = TranscriptLine { speaker: *speaker, text: text.clone(), at_ms: *at_ms };
                // Sorted by time, then content, so arrival order does not matter.
                let key = |l: &TranscriptLine| (l.at_ms, l.speaker as u8, l.text.clone());
                let at = self.record.transcript.partition_point(|l| key(l) <= key(&line));
                self.record.transcript.insert(at, line);
            }
            CallEventKind::Outcome { .. } if !from_current => return Applied::Unchanged,
            CallEventKind::Outcome { outcome, at_ms } => {
                let newer = match self.outcome_at_ms {
                    None => true,
                    Some(_) if stream.is_some() && self.outcome_stream.as_deref() != stream => true,
                    // Ties resolved by content so the fold stays order-independent.
                    Some(current) => {
                        (*at_ms, serde_json::to_string(outcome).ok())
                            > (current, serde_json::to_string(&self.record.outcome).ok())
                    }
                };
                if newer {
                    self.record.outcome = Some(outcome.clone());
                    self.outcome_at_ms = Some(*at_ms);
                    self.outcome_stream = stream.map(str::to_owned);
                }
            }
            CallEventKind::StreamEnded { stats, .. } => {
                if let Some(stream) = stream {
                    self.ended_streams.push(stream.to_owned());
                }
                if from_current {
                    self.stream = StreamPhase::Ended;
                }
                // Each stream's figures once (the event id guards it), in any order.
                self.record.metrics.get_or_insert_with(CallStats::default).merge(stats);
            }
        }
        self.settle_voicemail();
        self.touch(now)
    }

    /// The user asked to stop the call.
    pub fn canceled(&mut self, now: DateTime<Utc>) -> Applied {
        self.advance(CallStatus::Canceled, now)
    }

    /// Nothing more will be learned: the status is terminal and the stream, if one
    /// started, has ended. The completion webhook fires then.
    pub fn is_final(&self) -> bool {
        self.record.status.is_terminal() && self.stream != StreamPhase::Started
    }

    fn learn_sid(&mut self, call_sid: &str) -> bool {
        if self.record.twilio_call_sid.is_none() && !call_sid.is_empty() {
            self.record.twilio_call_sid = Some(call_sid.to_owned());
            true
        } else {
            false
        }
    }

    /// A machine answered and the call is over with nothing decided by the agent (no
    /// outcome, or `no_decision`): the outcome is "voicemail" (no message is ever left
    /// for a booking).
    fn settle_voicemail(&mut self) -> bool {
        let machine = self.record.answered_by.is_some_and(AnsweredBy::is_machine);
        let undecided = self.record.outcome.as_ref().is_none_or(|o| o.result == OutcomeResult::NoDecision);
        if machine && self.record.status.is_terminal() && undecided {
            self.record.outcome = Some(Outcome::without_decision(
                OutcomeResult::Voicemail,
                "an answering machine picked up; no message was left",
            ));
            true
        } else {
            false
        }
    }

    fn touch(&mut self, now: DateTime<Utc>) -> Applied {
        if now > self.record.updated_at {
            self.record.updated_at = now;
        }
        self.sync_attempt();
        Applied::Changed
    }
}
