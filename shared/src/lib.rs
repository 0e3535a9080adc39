//! Concierge's shared core: everything the edge (a Cloudflare Worker, WASM) and the
//! media worker (tokio) both need, with no IO. Nothing here opens a socket, spawns a
//! task or reads a clock; time comes in as arguments. It builds for
//! `wasm32-unknown-unknown` and is tested natively.
//!
//! # Module map
//!
//! | module | job |
//! |---|---|
//! | [`booking`] | `POST /v1/calls` body: parse, trim, validate; every rejection names its field |
//! | [`call`] | the call record, its status order, and the ledger that folds callbacks and events in, order-independently |
//! | [`schedule`] | when calls are placed: calling windows on the restaurant's clock (DST-safe), the reservation's lead, retries after busy / no answer / carrier failure / voicemail |
//! | [`events`] | media worker → edge events, the outcome, the call context |
//! | [`auth`] | stream tokens, internal request signatures, API keys (constant-time) |
//! | [`webhook`] | the completion webhook's signature (`Concierge-Signature`) and each API key's webhook secret |
//! | [`callback_url`] | a `callback_url` that cannot reach inside: scheme, credentials, every spelling of private addresses |
//! | [`destination`] | which numbers may be dialed: allowed countries, premium-rate and special ranges refused |
//! | [`twiml`] | the TwiML we serve, escaped in one place |
//! | [`twilio`] | Media Streams messages, status callbacks, the Calls REST forms, `X-Twilio-Signature` |
//! | [`openai`] | Realtime GA events (unknown ones tolerated) and the agent's session configuration |
//! | [`session`] | one call's conversation as a sans-IO state machine: barge-in, tools, timers, outcome; the confirmation code read from the conversation and every reported code verified |
//! | [`codec`] | G.711 mu-law (scalar reference + AVX2), PCM16 LE, base64 into reused buffers |
//!
//! # Driving a call session
//!
//! The media worker feeds [`session::CallSession`] with parsed frames and timer ticks and
//! performs what comes out of `poll_output()`; see the [`session`] module docs.
#![deny(unsafe_code)]

pub mod auth;
pub mod booking;
pub mod call;
pub mod callback_url;
pub mod codec;
pub mod destination;
pub mod events;
pub mod openai;
pub mod schedule;
pub mod session;
pub mod twilio;
pub mod twiml;
pub mod webhook;
