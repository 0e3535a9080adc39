//! Concierge's media worker: terminates Twilio Media Streams, bridges audio to the
//! OpenAI Realtime API through the shared call session, keeps live state in Redis (or
//! an embedded store), and reports every lifecycle event to the edge through an outbox.
//!
//! # Module map
//!
//! | module | job |
//! |---|---|
//! | [`server`] | HTTP: `/health`, `/metrics`, the `/media` WebSocket; drain on shutdown |
//! | [`gate`] | the door: a deadline and a cap for connections without a valid token yet |
//! | [`call`] | one call: the thin shell around `shared::session::CallSession` — [`call::admission`] (who gets a call: `Result<Admitted, Refusal>`), [`call::twilio`] and [`call::openai`] (the two peers), [`call::lease`] (the hold on the live store), and the loop |
//! | [`audio`] | 20 ms frames: mu-law ⇄ PCM16 with rubato 8 ⇄ 24 kHz, or passthrough |
//! | [`frames`] | the per-frame Twilio and OpenAI messages, written directly |
//! | [`store`] | live state: session registry, call slots, transcript, outbox (Redis or embedded) |
//! | [`outbox`] | delivers events to the edge exactly once by id, retried; sweeps orphans |
//! | [`clients`] | signed HTTP to the edge; the Twilio REST hang-up |
//! | [`metrics`] | Prometheus counters, gauges and the frame-time histogram |
//! | [`config`] | settings from the environment |
//!
//! # Where to look
//!
//! - **Where a call ends**: not here. `shared::session` decides every ending, and
//!   `shared::session::ending` the ones without a live session (a refused stream in
//!   [`call`], an orphan in [`outbox::sweep`]); this crate carries them out (a hang-up
//!   through [`clients::TwilioRest`], the events through the [`outbox`]).
//! - **Where time is decided**: in the session; the loop in [`call`] only sleeps until
//!   `poll_timeout()` and reads the clock it passes in.
//! - **What the shell may do**: convert audio, keep the pre-roll, write frames, open and
//!   close sockets, report to the store and the outbox (see [`call`]).
//! - **The protocol with the edge**: docs/protocol.md.
#![deny(unsafe_code)]

pub mod audio;
pub mod call;
pub mod clients;
pub mod config;
pub mod frames;
pub mod gate;
pub mod metrics;
pub mod outbox;
pub mod server;
pub mod store;

use std::sync::Arc;

use tokio::sync::watch;

use crate::clients::{EdgeClient, TwilioRest};
use crate::config::MediaConfig;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::store::LiveStore;

/// Where shutdown stands: draining stops new calls; past the deadline live calls end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shutdown {
    pub draining: bool,
    pub deadline_passed: bool,
}

/// Everything a call needs, shared by all calls of this process.
pub struct Services {
    pub config: MediaConfig,
    pub store: Arc<LiveStore>,
    pub edge: EdgeClient,
    pub twilio: TwilioRest,
    pub outbox: Outbox,
    pub metrics: Arc<Metrics>,
    pub shutdown: watch::Receiver<Shutdown>,
}
