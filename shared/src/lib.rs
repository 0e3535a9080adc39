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
//! | [`language`] | the languages a call can be held in: BCP-47 tags, the opening sentence, the worker's farewells, the transcription hint |
//! | [`schedule`] | when calls are placed: calling windows on the restaurant's clock (DST-safe), the reservation's lead, retries after busy / no answer / carrier failure / voicemail |
//! | [`events`] | media worker → edge events, the outcome, the call context |
//! | [`auth`] | stream tokens, internal request signatures, API keys (constant-time) |
//! | [`webhook`] | the completion webhook's signature (`Concierge-Signature`) and each API key's webhook secret |
//! | [`callback_url`] | a `callback_url` that cannot reach inside: scheme, credentials, every spelling of private addresses |
//! | [`destination`] | which numbers may be dialed: allowed countries, premium-rate and special ranges refused |
//! | [`twiml`] | the TwiML we serve, escaped in one place |
//! | [`twilio`] | Media Streams messages, status callbacks, the Calls REST forms, `X-Twilio-Signature` |
//! | [`openai`] | Realtime GA events (unknown ones tolerated) and the agent's session configuration |
//! | [`session`] | one call's conversation as a sans-IO state machine: barge-in, tools, the outcome, every deadline (`session::timer`), what was heard (`session::playback`), every ending and its event ids ([`session::ending`]); the confirmation code read from the conversation and every reported code verified ([`session::confirmation`]) |
//! | [`codec`] | G.711 mu-law (scalar reference + AVX2), PCM16 LE, base64 into reused buffers |
//!
//! # Where to look
//!
//! - **Where a call ends**: [`session::ending`] — the live session's `finish` and the
//!   endings without a live session (a refused stream, an orphaned call), with every
//!   farewell, outcome note and event id.
//! - **Where time is decided**: `session::timer`: one `Timer` per deadline in a table;
//!   the driver asks [`session::CallSession::poll_timeout`] and calls back. Nothing in
//!   this crate reads a clock.
//! - **What the shell may do**: the driver's contract in the [`session`] module docs:
//!   one input, then every output performed in order; it converts audio and opens
//!   sockets, and decides nothing.
//! - **The wire formats and the contract**: docs/api.md, docs/protocol.md,
//!   docs/wire-formats.md in the repository.
//!
//! `unsafe` is denied here; the one exception is `codec::simd`, whose AVX2 code runs
//! only behind a token that CPU feature detection alone can make.
#![deny(unsafe_code)]

pub mod auth;
pub mod booking;
pub mod call;
pub mod callback_url;
pub mod codec;
pub mod destination;
pub mod events;
pub mod language;
pub mod openai;
pub mod schedule;
pub mod session;
pub mod twilio;
pub mod twiml;
pub mod webhook;
