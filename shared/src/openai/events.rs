//! Realtime events as they travel on the socket. Server events borrow from the frame's
//! text; `response.output_audio.delta` is parsed without allocating.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::Session;
use crate::events::TokenUsage;

/// What we send to OpenAI. The fake server deserializes these with the same types
/// and rejects anything else, so a wrong event fails the tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ClientEvent<'a> {
    #[serde(rename = "session.update")]
    SessionUpdate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
        session: Box<Session>,
    },
    #[serde(rename = "input_audio_buffer.append")]
    InputAudioBufferAppend {
        #[serde(borrow)]
        audio: Cow<'a, str>,
    },
    #[serde(rename = "input_audio_buffer.commit")]
    InputAudioBufferCommit {},
    #[serde(rename = "input_audio_buffer.clear")]
    InputAudioBufferClear {},
    #[serde(rename = "conversation.item.create")]
    ConversationItemCreate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_item_id: Option<String>,
        item: Item,
    },
    #[serde(rename = "conversation.item.truncate")]
    ConversationItemTruncate { item_id: String, content_index: u32, audio_end_ms: u64 },
    #[serde(rename = "response.create")]
    ResponseCreate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<ResponseOverrides>,
    },
    #[serde(rename = "response.cancel")]
    ResponseCancel {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_id: Option<String>,
    },
}

impl ClientEvent<'_> {
    /// Replaces `out` with the JSON text, reusing its capacity.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.clear();
        // Serializing these types into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ClientEvent::SessionUpdate { .. } => "session.update",
            ClientEvent::InputAudioBufferAppend { .. } => "input_audio_buffer.append",
            ClientEvent::InputAudioBufferCommit {} => "input_audio_buffer.commit",
            ClientEvent::InputAudioBufferClear {} => "input_audio_buffer.clear",
            ClientEvent::ConversationItemCreate { .. } => "conversation.item.create",
            ClientEvent::ConversationItemTruncate { .. } => "conversation.item.truncate",
            ClientEvent::ResponseCreate { .. } => "response.create",
            ClientEvent::ResponseCancel { .. } => "response.cancel",
        }
    }
}

/// Per-response overrides for `response.create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<String>,
}

/// A conversation item we create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Item {
    Message { role: Role, content: Vec<Content> },
    FunctionCallOutput { call_id: String, output: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Content {
    InputText { text: String },
    OutputText { text: String },
}

impl Item {
    pub fn text(role: Role, text: impl Into<String>) -> Item {
        let text = text.into();
        let content = match role {
            Role::Assistant => Content::OutputText { text },
            Role::User | Role::System => Content::InputText { text },
        };
        Item::Message { role, content: vec![content] }
    }
}

/// What OpenAI sends. Unknown types land in [`ServerEvent::Unknown`]: the API grows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerEvent<'a> {
    #[serde(rename = "session.created")]
    SessionCreated { session: Value },
    #[serde(rename = "session.updated")]
    SessionUpdated { session: Value },
    #[serde(rename = "error")]
    Error { error: OpenAiError },
    #[serde(rename = "input_audio_buffer.speech_started")]
    SpeechStarted {
        audio_start_ms: u64,
        #[serde(default)]
        item_id: String,
    },
    #[serde(rename = "input_audio_buffer.speech_stopped")]
    SpeechStopped {
        audio_end_ms: u64,
        #[serde(default)]
        item_id: String,
    },
    #[serde(rename = "input_audio_buffer.committed")]
    Committed {
        item_id: String,
        #[serde(default)]
        previous_item_id: Option<String>,
    },
    #[serde(rename = "input_audio_buffer.timeout_triggered")]
    IdleTimeout {},
    #[serde(rename = "conversation.item.input_audio_transcription.completed")]
    InputTranscriptCompleted { item_id: String, transcript: String },
    #[serde(rename = "conversation.item.input_audio_transcription.failed")]
    InputTranscriptFailed {
        item_id: String,
        #[serde(default)]
        error: Option<Value>,
    },
    #[serde(rename = "conversation.item.truncated")]
    ItemTruncated { item_id: String, audio_end_ms: u64 },
    #[serde(rename = "response.created")]
    ResponseCreated { response: Response },
    #[serde(rename = "response.done")]
    ResponseDone { response: Response },
    #[serde(rename = "response.output_audio.delta")]
    AudioDelta(#[serde(borrow)] AudioDelta<'a>),
    #[serde(rename = "response.output_audio.done")]
    AudioDone { response_id: String, item_id: String },
    #[serde(rename = "response.output_audio_transcript.delta")]
    AudioTranscriptDelta { response_id: String, item_id: String, delta: String },
    #[serde(rename = "response.output_audio_transcript.done")]
    AudioTranscriptDone { response_id: String, item_id: String, transcript: String },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        #[serde(default)]
        response_id: String,
        #[serde(default)]
        item_id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
    #[serde(rename = "rate_limits.updated")]
    RateLimitsUpdated { rate_limits: Vec<RateLimit> },
    /// Any event we do not act on, including ones added after this was written.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioDelta<'a> {
    pub response_id: Cow<'a, str>,
    #[serde(borrow)]
    pub item_id: Cow<'a, str>,
    #[serde(default)]
    pub output_index: u32,
    #[serde(default)]
    pub content_index: u32,
    /// Base64 audio in the session's output format.
    #[serde(borrow)]
    pub delta: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenAiError {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub event_id: Option<String>,
}

impl OpenAiError {
    /// Whether this error ends the session. OpenAI documents error events as mostly
    /// recoverable, the session staying open ("Most errors are recoverable and the
    /// session will stay open", <https://developers.openai.com/api/reference/resources/realtime/server-events>):
    /// a `server_error` or a rejected client event is logged and the call goes on. A
    /// session that is really gone shows as its socket closing, which the shell reports
    /// as [`crate::session::Input::OpenAiLost`]. The exception is `session_expired`: the
    /// session hit its maximum duration and cannot take another event, so it counts as
    /// lost now rather than when the close arrives.
    pub fn ends_session(&self) -> bool {
        self.code.as_deref() == Some("session_expired")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub status_details: Option<Value>,
    #[serde(default)]
    pub output: Vec<Value>,
    /// Present on `response.done`: what the response is billed for.
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// `response.usage` on `response.done`: the response's input (the whole conversation
/// so far, partly cached) and output tokens, split by modality. Cached tokens are a
/// subset of the input tokens. Shape per the GA reference (`RealtimeResponseUsage`) and
/// https://developers.openai.com/api/docs/guides/realtime-costs; every field may be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub total_tokens: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub input_token_details: InputTokenDetails,
    pub output_token_details: OutputTokenDetails,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InputTokenDetails {
    pub cached_tokens: u64,
    pub text_tokens: u64,
    pub audio_tokens: u64,
    pub image_tokens: u64,
    pub cached_tokens_details: Option<CachedTokenDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CachedTokenDetails {
    pub text_tokens: u64,
    pub audio_tokens: u64,
    pub image_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputTokenDetails {
    pub text_tokens: u64,
    pub audio_tokens: u64,
}

impl Usage {
    /// This response's tokens as one term of a call's sum. Without the cached split,
    /// cached tokens are counted as text first (the cheaper reading is never assumed
    /// for audio the response did not report as cached).
    pub fn tokens(&self) -> TokenUsage {
        let input = &self.input_token_details;
        let (cached_text, cached_audio) = match &input.cached_tokens_details {
            Some(cached) => (cached.text_tokens.min(input.text_tokens), cached.audio_tokens.min(input.audio_tokens)),
            None => {
                let text = input.cached_tokens.min(input.text_tokens);
                (text, (input.cached_tokens - text).min(input.audio_tokens))
            }
        };
        TokenUsage {
            responses: 1,
            text_input_tokens: input.text_tokens,
            audio_input_tokens: input.audio_tokens,
            cached_text_tokens: cached_text,
            cached_audio_tokens: cached_audio,
            text_output_tokens: self.output_token_details.text_tokens,
            audio_output_tokens: self.output_token_details.audio_tokens,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    pub name: String,
    pub limit: f64,
    pub remaining: f64,
    pub reset_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid Realtime server event: {0}")]
pub struct ServerEventParseError(#[from] serde_json::Error);

impl<'a> ServerEvent<'a> {
    /// Parses one text frame; audio deltas skip serde's tag buffering.
    pub fn parse(text: &'a str) -> Result<ServerEvent<'a>, ServerEventParseError> {
        // OpenAI writes `type` first: then one pass reads the delta (the struct
        // ignores the tag). Anything else takes the general route below.
        if text.starts_with(r#"{"type":"response.output_audio.delta","#) {
            return Ok(ServerEvent::AudioDelta(serde_json::from_str(text)?));
        }
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(borrow, rename = "type")]
            kind: Option<Cow<'a, str>>,
        }
        let tag: Tag<'a> = serde_json::from_str(text)?;
        if tag.kind.as_deref() == Some("response.output_audio.delta") {
            return Ok(ServerEvent::AudioDelta(serde_json::from_str(text)?));
        }
        Ok(serde_json::from_str(text)?)
    }
}
