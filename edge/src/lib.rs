//! Concierge's edge: the public booking API, the TwiML and status-callback routes for
//! Twilio, and the internal routes for the media worker. The call record lives in
//! Workers KV; the edge is its only writer.
//!
//! # Module map
//!
//! | module | job |
//! |---|---|
//! | [`app`] | the route table: one async function per route, over [`ports`] |
//! | [`allowance`] | limits decided atomically: an API key's calls in flight and bookings per minute, a number's live call and calls per hour |
//! | [`safeguards`] | what a booking must pass beyond validation: allowed destinations, a callback URL that cannot reach inside, the key's webhook secret |
//! | [`ports`] | the read model (records, lists), the call keepers, the arbiters, the Twilio client, the webhook sender, the clock, id generation |
//! | [`http`] | plain request/response data the handlers see |
//! | [`idempotency`] | `Idempotency-Key` claims: who books, who waits, who gets the earlier call |
//! | [`keeper`] | the one writer of a call: every change, the seal, the live log, publishing, the webhook |
//! | [`keys`] | every storage key: the read model in KV, the names of the Durable Objects |
//! | [`listing`] | `GET /v1/calls`: the query, the summary each call keeps in its key's list, the filters |
//! | [`error`] | the one error type of the HTTP boundary, mapped to status and JSON in one place |
//! | [`config`] | settings from wrangler vars and secrets |
//! | [`memory`] | in-process ports: store, manual clock, sequential ids |
//! | `native` (not wasm32) | the same routes as a native HTTP server, for local runs and the demo |
//! | `worker_glue` (wasm32 only) | the `#[event(fetch)]` entry: KV, `fetch` and `Env` behind the ports |
#![deny(unsafe_code)]

pub mod allowance;
pub mod app;
pub mod config;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod keeper;
pub mod keys;
pub mod listing;
pub mod memory;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod ports;
pub mod safeguards;
#[cfg(target_arch = "wasm32")]
mod worker_glue;
