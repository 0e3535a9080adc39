//! OpenAI Realtime API, GA protocol (PROTOCOLS.md §4).
//!
//! - [`events`]: client and server events; unknown server events are kept, never fatal.
//! - [`config`]: the `session.update` we send: formats per audio mode, voice, turn
//!   detection, transcription, the agent's instructions and tools.

pub mod config;
pub mod events;

pub const DEFAULT_REALTIME_URL: &str = "wss://api.openai.com/v1/realtime";
pub const DEFAULT_MODEL: &str = "gpt-realtime";
