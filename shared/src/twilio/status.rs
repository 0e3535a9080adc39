//! The call status callback Twilio POSTs to `/twilio/status/{call_id}`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::form::{self, FormPairs};

/// How far a status callback's `Timestamp` may be from our clock. Twilio's signature
/// carries no time, but it covers the `Timestamp` field, so this bounds how long a
/// captured callback can be replayed; Twilio's own retries arrive well within it.
pub const REPLAY_WINDOW_SECONDS: i64 = 15 * 60;

/// `CallStatus` as Twilio spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TwilioCallStatus {
    Queued,
    Initiated,
    Ringing,
    /// `answered` events report `in-progress`; `answered` is accepted too.
    InProgress,
    Answered,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl TwilioCallStatus {
    pub fn parse(text: &str) -> Option<TwilioCallStatus> {
        Some(match text {
            "queued" => TwilioCallStatus::Queued,
            "initiated" => TwilioCallStatus::Initiated,
            "ringing" => TwilioCallStatus::Ringing,
            "in-progress" => TwilioCallStatus::InProgress,
            "answered" => TwilioCallStatus::Answered,
            "completed" => TwilioCallStatus::Completed,
            "busy" => TwilioCallStatus::Busy,
            "no-answer" => TwilioCallStatus::NoAnswer,
            "failed" => TwilioCallStatus::Failed,
            "canceled" => TwilioCallStatus::Canceled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TwilioCallStatus::Queued => "queued",
            TwilioCallStatus::Initiated => "initiated",
            TwilioCallStatus::Ringing => "ringing",
            TwilioCallStatus::InProgress => "in-progress",
            TwilioCallStatus::Answered => "answered",
            TwilioCallStatus::Completed => "completed",
            TwilioCallStatus::Busy => "busy",
            TwilioCallStatus::NoAnswer => "no-answer",
            TwilioCallStatus::Failed => "failed",
            TwilioCallStatus::Canceled => "canceled",
        }
    }
}

/// Answering-machine detection's verdict (`AnsweredBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    Human,
    MachineStart,
    MachineEndBeep,
    MachineEndSilence,
    MachineEndOther,
    Fax,
    Unknown,
}

impl AnsweredBy {
    pub fn parse(text: &str) -> Option<AnsweredBy> {
        Some(match text {
            "human" => AnsweredBy::Human,
            "machine_start" => AnsweredBy::MachineStart,
            "machine_end_beep" => AnsweredBy::MachineEndBeep,
            "machine_end_silence" => AnsweredBy::MachineEndSilence,
            "machine_end_other" => AnsweredBy::MachineEndOther,
            "fax" => AnsweredBy::Fax,
            "unknown" => AnsweredBy::Unknown,
            _ => return None,
        })
    }

    /// Voicemail or fax: nobody to talk to. `unknown` is not a machine: AMD is unsure
    /// and a real host may be on the line, so the agent takes the call.
    pub fn is_machine(self) -> bool {
        matches!(
            self,
            AnsweredBy::MachineStart
                | AnsweredBy::MachineEndBeep
                | AnsweredBy::MachineEndSilence
                | AnsweredBy::MachineEndOther
                | AnsweredBy::Fax
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCallback {
    pub call_sid: String,
    pub account_sid: String,
    pub call_status: TwilioCallStatus,
    pub sequence_number: Option<u32>,
    pub call_duration: Option<u32>,
    pub answered_by: Option<AnsweredBy>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// `Timestamp` (RFC 2822): when Twilio sent it; `None` if absent or unreadable.
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusCallbackError {
    #[error("status callback is missing {0}")]
    Missing(&'static str),
    #[error("status callback has an unknown CallStatus '{0}'")]
    UnknownStatus(String),
    #[error("AMD callback has an unknown AnsweredBy '{0}'")]
    UnknownAnsweredBy(String),
    #[error("recording callback has a malformed RecordingSid")]
    MalformedRecordingSid,
}

impl StatusCallback {
    /// Reads the fields we use; unknown `AnsweredBy` values and unparsable numbers are
    /// dropped rather than refusing the whole callback (the status still matters).
    pub fn from_form(pairs: &FormPairs) -> Result<StatusCallback, StatusCallbackError> {
        let field = |name| form::get(pairs, name).filter(|v| !v.is_empty());
        let call_status = field("CallStatus").ok_or(StatusCallbackError::Missing("CallStatus"))?;
        Ok(StatusCallback {
            call_sid: field("CallSid").ok_or(StatusCallbackError::Missing("CallSid"))?.to_owned(),
            account_sid: field("AccountSid").unwrap_or_default().to_owned(),
            call_status: TwilioCallStatus::parse(call_status)
                .ok_or_else(|| StatusCallbackError::UnknownStatus(call_status.to_owned()))?,
            sequence_number: field("SequenceNumber").and_then(|v| v.parse().ok()),
            call_duration: field("CallDuration").and_then(|v| v.parse().ok()),
            answered_by: field("AnsweredBy").and_then(AnsweredBy::parse),
            error_code: field("ErrorCode").map(str::to_owned),
            error_message: field("ErrorMessage").map(str::to_owned),
            sent_at: field("Timestamp")
                .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
                .map(|t| t.with_timezone(&Utc)),
        })
    }

    /// Whether it was sent within [`REPLAY_WINDOW_SECONDS`] of `now`. One without a
    /// readable `Timestamp` is not fresh: every status callback Twilio sends has one.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        self.sent_at.is_some_and(|sent| (now - sent).num_seconds().abs() <= REPLAY_WINDOW_SECONDS)
    }
}

/// The asynchronous AMD verdict (`AsyncAmdStatusCallback`): who or what answered,
/// posted mid-call ([AMD webhook parameters](https://www.twilio.com/docs/voice/answering-machine-detection#webhook-parameters)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmdVerdict {
    pub call_sid: String,
    pub answered_by: AnsweredBy,
    /// How long detection took (`MachineDetectionDuration`, milliseconds).
    pub detection_ms: Option<u32>,
}

impl AmdVerdict {
    pub fn from_form(pairs: &FormPairs) -> Result<AmdVerdict, StatusCallbackError> {
        let field = |name| form::get(pairs, name).filter(|v| !v.is_empty());
        let answered_by = field("AnsweredBy").ok_or(StatusCallbackError::Missing("AnsweredBy"))?;
        Ok(AmdVerdict {
            call_sid: field("CallSid").ok_or(StatusCallbackError::Missing("CallSid"))?.to_owned(),
            answered_by: AnsweredBy::parse(answered_by)
                .ok_or_else(|| StatusCallbackError::UnknownAnsweredBy(answered_by.to_owned()))?,
            detection_ms: field("MachineDetectionDuration").and_then(|v| v.parse().ok()),
        })
    }
}

/// A finished recording (`RecordingStatusCallback`, event `completed`)
/// ([parameters](https://www.twilio.com/docs/voice/api/recording#recordingstatuscallback)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingReady {
    pub call_sid: String,
    pub recording_sid: String,
    /// Where the recording is fetched, with the account's credentials (append `.mp3` or `.wav`).
    pub url: String,
    pub duration_seconds: Option<u32>,
    pub channels: Option<u32>,
    /// `completed`, `absent` (nothing was recorded) or `failed`.
    pub status: String,
}

/// `RE` and 32 hex digits, as Twilio names recordings: the sid goes into a REST path
/// when the recording is deleted, so nothing else is kept.
pub fn is_recording_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("RE") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl RecordingReady {
    pub fn from_form(pairs: &FormPairs) -> Result<RecordingReady, StatusCallbackError> {
        let field = |name| form::get(pairs, name).filter(|v| !v.is_empty());
        Ok(RecordingReady {
            call_sid: field("CallSid").ok_or(StatusCallbackError::Missing("CallSid"))?.to_owned(),
            recording_sid: field("RecordingSid")
                .ok_or(StatusCallbackError::Missing("RecordingSid"))
                .and_then(|sid| is_recording_sid(sid).then_some(sid).ok_or(StatusCallbackError::MalformedRecordingSid))?
                .to_owned(),
            url: field("RecordingUrl").unwrap_or_default().to_owned(),
            duration_seconds: field("RecordingDuration").and_then(|v| v.parse().ok()),
            channels: field("RecordingChannels").and_then(|v| v.parse().ok()),
            status: field("RecordingStatus").unwrap_or("completed").to_owned(),
        })
    }
}
