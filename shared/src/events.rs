//! What the media worker tells the edge (`POST /internal/calls/{id}/events`), the call
//! outcome, and the call context it fetches (`GET /internal/calls/{id}`).

use serde::{Deserialize, Serialize};

use crate::booking::BookingRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Agent,
    Restaurant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeResult {
    Confirmed,
    AlternativeOffered,
    Declined,
    Voicemail,
    NoDecision,
}

/// How far the confirmation code is backed by what the host said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeVerification {
    /// The host's own words give the same code.
    Heard,
    /// The agent read the code back and the host confirmed it.
    ReadBackConfirmed,
    /// The host's words give a different code (`heard_code`): to be reviewed by a person.
    Mismatch,
    /// Nothing the host said confirms or contradicts it.
    Unverifiable,
}

/// How the call ended for the booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub result: OutcomeResult,
    pub confirmation_number: Option<String>,
    pub confirmed_date: Option<String>,
    pub confirmed_time: Option<String>,
    pub party_size: Option<u32>,
    pub notes: Option<String>,
    /// Set whenever there is a confirmation number; absent from records made before it.
    #[serde(default)]
    pub code_verification: Option<CodeVerification>,
    /// The code read from the host's words when it differs from `confirmation_number`.
    #[serde(default)]
    pub heard_code: Option<String>,
}

impl Outcome {
    pub fn without_decision(result: OutcomeResult, notes: &str) -> Outcome {
        Outcome {
            result,
            confirmation_number: None,
            confirmed_date: None,
            confirmed_time: None,
            party_size: None,
            notes: Some(notes.to_owned()),
            code_verification: None,
            heard_code: None,
        }
    }
}

/// One event, applied by the edge at most once per `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvent {
    pub id: String,
    /// The media stream that reported it: only the stream a call currently belongs to
    /// can settle or end it. Absent in events from before streams were named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(flatten)]
    pub kind: CallEventKind,
}

impl CallEvent {
    /// An event of `stream_sid`, with the one id scheme every reporter uses:
    /// `{stream_sid}-{label}`, where `label` is unique within the stream.
    pub fn of_stream(stream_sid: &str, label: impl std::fmt::Display, kind: CallEventKind) -> CallEvent {
        CallEvent { id: format!("{stream_sid}-{label}"), stream: Some(stream_sid.to_owned()), kind }
    }

    /// The stream this event belongs to, if known.
    pub fn source_stream(&self) -> Option<&str> {
        match &self.kind {
            CallEventKind::StreamStarted { stream_sid } => Some(stream_sid),
            _ => self.stream.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEventKind {
    StreamStarted {
        stream_sid: String,
    },
    /// One finished utterance; `at_ms` counts from the start of the stream.
    Transcript {
        speaker: Speaker,
        text: String,
        at_ms: u64,
    },
    /// The newest outcome by `at_ms` wins.
    Outcome {
        outcome: Outcome,
        at_ms: u64,
    },
    StreamEnded {
        reason: EndReason,
        #[serde(default)]
        stats: CallStats,
    },
}

/// Why the stream ended, in the media worker's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The agent said goodbye and hung up.
    AgentHungUp,
    /// Twilio sent `stop` or closed the socket: the restaurant hung up or the call ended.
    CallerHungUp,
    /// The maximum call length was reached.
    MaxDuration,
    /// Nobody spoke for too long.
    Silence,
    /// The voice model could not be reached or failed twice.
    ModelUnavailable,
    /// The media worker was shutting down and its drain deadline passed.
    Shutdown,
    /// Another stream for the same call took over.
    Superseded,
    /// Every media worker was at its concurrent-call limit.
    AtCapacity,
    /// The call's context could not be fetched from the edge, so no agent could run.
    ContextUnavailable,
    /// The media worker carrying the call died; another instance finished the record.
    WorkerLost,
}

/// What the media worker measured on one stream: the latencies the caller feels, the
/// tokens and audio the call used, and what that is estimated to have cost. The edge
/// keeps it in the record as `metrics`, summed over the call's streams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallStats {
    /// From the stream's start to the first agent audio sent to Twilio.
    pub first_agent_audio_ms: Option<u64>,
    /// From the restaurant going quiet to the agent's reply starting, per turn.
    pub reply_latencies_ms: Vec<u64>,
    /// The latency a host hears, per turn: from the worker reading the frame where the
    /// model's VAD placed the end of the host's speech to the reply's first audio
    /// written to Twilio (see `session::latency`).
    pub heard_latencies_ms: Vec<u64>,
    /// The worker's share of each of those turns, in microseconds: the end-of-speech
    /// frame's way to OpenAI plus the reply's first audio's way to Twilio.
    pub worker_added_latencies_us: Vec<u64>,
    pub barge_ins: u32,
    /// The Realtime model and the input transcription model the stream used.
    pub model: Option<String>,
    pub transcription_model: Option<String>,
    /// Token usage summed over every `response.done`.
    pub usage: TokenUsage,
    /// Restaurant audio received from Twilio.
    pub audio_in_ms: u64,
    /// Agent audio sent to Twilio.
    pub audio_out_ms: u64,
    /// Restaurant speech the model's VAD committed, which input transcription bills.
    pub transcribed_ms: u64,
    /// Estimated cost in millionths of a US dollar, from the configured prices; absent
    /// when a model's prices are unknown.
    pub estimated_cost_micro_usd: Option<u64>,
}

impl CallStats {
    /// Adds another stream's figures: sums, the earliest first audio, latencies as a
    /// sorted multiset, the greater model name. Commutative and associative, so the
    /// ledger's fold stays order-independent.
    pub fn merge(&mut self, other: &CallStats) {
        self.first_agent_audio_ms = match (self.first_agent_audio_ms, other.first_agent_audio_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.reply_latencies_ms.extend_from_slice(&other.reply_latencies_ms);
        self.reply_latencies_ms.sort_unstable();
        self.heard_latencies_ms.extend_from_slice(&other.heard_latencies_ms);
        self.heard_latencies_ms.sort_unstable();
        self.worker_added_latencies_us.extend_from_slice(&other.worker_added_latencies_us);
        self.worker_added_latencies_us.sort_unstable();
        self.barge_ins = self.barge_ins.saturating_add(other.barge_ins);
        self.model = self.model.take().max(other.model.clone());
        self.transcription_model = self.transcription_model.take().max(other.transcription_model.clone());
        self.usage.add(&other.usage);
        self.audio_in_ms = self.audio_in_ms.saturating_add(other.audio_in_ms);
        self.audio_out_ms = self.audio_out_ms.saturating_add(other.audio_out_ms);
        self.transcribed_ms = self.transcribed_ms.saturating_add(other.transcribed_ms);
        self.estimated_cost_micro_usd = match (self.estimated_cost_micro_usd, other.estimated_cost_micro_usd) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Realtime tokens summed over a stream's responses. Cached tokens are the part of the
/// input tokens served from the cache (billed at the cached price).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenUsage {
    /// `response.done` events that carried usage.
    pub responses: u32,
    pub text_input_tokens: u64,
    pub audio_input_tokens: u64,
    pub cached_text_tokens: u64,
    pub cached_audio_tokens: u64,
    pub text_output_tokens: u64,
    pub audio_output_tokens: u64,
}

impl TokenUsage {
    pub fn add(&mut self, other: &TokenUsage) {
        self.responses = self.responses.saturating_add(other.responses);
        self.text_input_tokens = self.text_input_tokens.saturating_add(other.text_input_tokens);
        self.audio_input_tokens = self.audio_input_tokens.saturating_add(other.audio_input_tokens);
        self.cached_text_tokens = self.cached_text_tokens.saturating_add(other.cached_text_tokens);
        self.cached_audio_tokens = self.cached_audio_tokens.saturating_add(other.cached_audio_tokens);
        self.text_output_tokens = self.text_output_tokens.saturating_add(other.text_output_tokens);
        self.audio_output_tokens = self.audio_output_tokens.saturating_add(other.audio_output_tokens);
    }
}

/// `GET /internal/calls/{id}`: what the media worker needs to run the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    pub call_id: String,
    pub request: BookingRequest,
    pub instructions: String,
}

/// Why the agent's `report_outcome` arguments were refused; sent back to the model
/// as the tool's output so it can correct itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolArgumentsError(pub String);

impl Outcome {
    /// Reads `report_outcome` arguments. The confirmation code keeps only letters and
    /// digits, upper-cased, exactly in the order given.
    pub fn from_tool_arguments(arguments: &str) -> Result<Outcome, ToolArgumentsError> {
        #[derive(Deserialize)]
        struct Arguments {
            result: OutcomeResult,
            confirmation_number: Option<String>,
            confirmed_date: Option<String>,
            confirmed_time: Option<String>,
            party_size: Option<i64>,
            notes: Option<String>,
        }
        let fail = |message: String| ToolArgumentsError(message);
        let args: Arguments =
            serde_json::from_str(arguments).map_err(|e| fail(format!("arguments are not valid: {e}")))?;
        let confirmation_number = args
            .confirmation_number
            .map(|raw| raw.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_uppercase())
            .filter(|code| !code.is_empty());
        if confirmation_number.as_ref().is_some_and(|c| c.len() > 32) {
            return Err(fail("confirmation_number is longer than 32 characters".into()));
        }
        let confirmed_date = args.confirmed_date.filter(|d| !d.trim().is_empty());
        if let Some(date) = &confirmed_date {
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|_| fail(format!("confirmed_date '{date}' must be YYYY-MM-DD")))?;
        }
        let confirmed_time = args.confirmed_time.filter(|t| !t.trim().is_empty());
        if let Some(time) = &confirmed_time {
            chrono::NaiveTime::parse_from_str(time, "%H:%M")
                .map_err(|_| fail(format!("confirmed_time '{time}' must be HH:MM, 24-hour")))?;
        }
        let party_size = match args.party_size {
            None => None,
            Some(n @ 1..=50) => Some(n as u32),
            Some(n) => return Err(fail(format!("party_size {n} must be between 1 and 50"))),
        };
        let notes = args.notes.map(|n| n.chars().take(1000).collect::<String>()).filter(|n| !n.trim().is_empty());
        Ok(Outcome {
            result: args.result,
            confirmation_number,
            confirmed_date,
            confirmed_time,
            party_size,
            notes,
            code_verification: None,
            heard_code: None,
        })
    }
}
