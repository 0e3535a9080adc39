//! OpenAI Realtime API, GA protocol (docs/wire-formats.md, "OpenAI Realtime").
//!
//! - [`events`]: client and server events; unknown server events are kept, never fatal.
//! - [`config`]: the `session.update` we send: formats per audio mode, voice, turn
//!   detection, transcription, the agent's instructions and tools.
//! - [`pricing`]: token and transcription prices, and what a call is estimated to cost.

pub mod config;
pub mod events;
pub mod pricing;

pub const DEFAULT_REALTIME_URL: &str = "wss://api.openai.com/v1/realtime";
/// OpenAI's current voice-agent model (https://developers.openai.com/api/docs/guides/realtime
/// names it for "a low-latency voice agent"); its page advertises better alphanumeric
/// recognition, silence and noise handling than `gpt-realtime-2`, which is what reading
/// back a confirmation code over a phone line needs
/// (https://developers.openai.com/api/docs/models/gpt-realtime-2.1).
pub const DEFAULT_MODEL: &str = "gpt-realtime-2.1";
