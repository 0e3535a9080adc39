//! One phone call: the thin shell around [`shared::session::CallSession`], which decides
//! everything (see its module doc for the driver's contract). Split by what each part
//! owns:
//!
//! | module | owns |
//! |---|---|
//! | [`admission`] | Twilio's `start`, the stream token and its one use, the call slot, the session registration, the call's context: `Result<Admitted, Refusal>` |
//! | [`twilio`] | the Twilio socket's sending side: agent audio as frames, marks, `clear`, batched writes |
//! | [`lease`] | the call's hold on the live store: heartbeats, takeover, writing state back to a restarted store |
//! | [`openai`] | the OpenAI socket: opening it (again, in the background), restaurant audio, the session's events |
//! | this module | the loop: reads both sockets, fires the session's timer, heartbeats and shutdown; feeds the session; performs its outputs in order |
//!
//! The shell may convert audio, keep the pre-roll while OpenAI is away, write frames,
//! open and close sockets, and report to the store and the outbox. It may not decide
//! how or when a call ends, or what is said: those are outputs it carries out.

pub mod admission;
pub mod lease;
pub mod openai;
pub mod twilio;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as TwilioMessage, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::{FutureExt, SinkExt, StreamExt};
use shared::events::CallEventKind;
use shared::openai::events::ServerEvent;
use shared::session::ending;
use shared::session::{CallSession, Input, Output, SessionLimits, SessionParams, TwilioCommand, PRE_ROLL_FRAMES};
use shared::twilio::stream::StreamMessage;
use tracing::{info, warn, Instrument};

use crate::audio::{Inbound, Outbound};
use crate::metrics::Metrics;
use crate::Services;
use admission::{Admitted, Owner, Refusal, StreamClaim, StreamStart};
use lease::Renewed;
use openai::OpenAiPeer;
pub use openai::OPENAI_READ_BUFFER_BYTES;
use twilio::TwilioPeer;
pub use twilio::TWILIO_READ_BUFFER_BYTES;

/// Nothing queues toward a peer beyond its socket's buffers and one write batch
/// ([`SOCKET_WRITE_BATCH_BYTES`]): each message waits for room (back-pressure) at most
/// this long, and a peer that cannot take one in that time is treated as gone. A
/// stalled peer so costs bounded memory, and holds up the call's timers and the other
/// side no longer than this.
pub const SEND_DEADLINE: Duration = Duration::from_secs(2);
/// Messages queue in a socket's write buffer up to this size, and the buffer is flushed
/// once the call has nothing more ready to handle (see [`Call::run`]). The five Twilio
/// frames of a 100 ms reply and its mark leave in one write instead of six: on a busy
/// worker the send path (a syscall each, and the peer's wake-up) is most of the cost.
pub const SOCKET_WRITE_BATCH_BYTES: usize = 4 * 1024;
/// Twilio frames already waiting are handled in one go, at most this many, before the
/// writes are flushed and the other sources get their turn.
const READY_FRAMES_PER_TURN: usize = 8;

/// The session's clock: tokio's, so a test that pauses time moves the call's timers too.
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Runs one Media Streams connection to its end. Never panics on input.
pub async fn handle_stream(socket: WebSocket, door: crate::gate::Admission, services: Arc<Services>) {
    let (twilio_tx, mut twilio_rx) = socket.split();
    let deadline = Duration::from_millis(services.config.start_deadline_ms);
    let Some(start) = admission::read_start(&mut twilio_rx, deadline, &services.metrics).await else { return };
    let span = tracing::info_span!("call", call_id = %start.call_id, stream_sid = %start.stream_sid);
    async move {
        match admission::admit(&start, door, &services).await {
            Ok(admitted) => run_call(start, admitted, twilio_tx, twilio_rx, services).await,
            Err(Refusal::Closed) => TwilioPeer::refuse(twilio_tx).await,
            Err(Refusal::NoAgent(refusal)) => refuse_call(&services, &start, refusal).await,
        }
    }
    .instrument(span)
    .await;
}

/// Ends a call that never got an agent, as [`ending::refused`] says: the farewell and
/// hang-up, then its events.
async fn refuse_call(services: &Services, start: &StreamStart, refusal: ending::Refusal) {
    let ending = ending::refused(&start.stream_sid, refusal, start.language.as_deref());
    if let Err(error) = services.twilio.hang_up(&start.call_sid, Some(&ending.farewell)).await {
        Metrics::inc(&services.metrics.twilio_errors);
        warn!(%error, "could not hang up");
    }
    for event in &ending.events {
        services.outbox.submit(&start.call_id, event);
    }
}

async fn run_call(
    start: StreamStart,
    admitted: Admitted,
    twilio_tx: futures_util::stream::SplitSink<WebSocket, TwilioMessage>,
    mut twilio_rx: SplitStream<WebSocket>,
    services: Arc<Services>,
) {
    let config = &services.config;
    let Admitted { claim, owner, context, openai } = admitted;
    let (inbound, outbound) = match (Inbound::new(config.agent.audio_mode), Outbound::new(config.agent.audio_mode)) {
        (Ok(i), Ok(o)) => (i, o),
        (Err(error), _) | (_, Err(error)) => {
            warn!(%error, "audio pipeline could not be built");
            admission::release(&services, &start.call_id, &owner).await;
            return;
        }
    };
    let params = SessionParams {
        call_id: start.call_id.clone(),
        stream_sid: start.stream_sid.clone(),
        instructions: context.instructions,
        language: context.request.language.clone(),
        settings: config.agent.clone(),
        limits: SessionLimits::with_max_call_seconds(config.max_call_seconds),
    };
    Metrics::inc(&services.metrics.calls_started);
    services.metrics.active_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    info!(audio_mode = ?config.agent.audio_mode, "call started");
    let connected = openai.is_some();
    let mut call = Call {
        session: CallSession::new(params, clock()),
        services: services.clone(),
        call_id: start.call_id.clone(),
        call_sid: start.call_sid.clone(),
        owner,
        claim,
        twilio: TwilioPeer::new(twilio_tx, &start.stream_sid, outbound),
        openai: OpenAiPeer::new(openai, inbound),
        pre_roll: VecDeque::with_capacity(64),
        lost_peers: Vec::new(),
        finished: false,
    };
    call.input(if connected { Input::OpenAiConnected } else { Input::OpenAiLost }).await;
    call.run(&mut twilio_rx).await;
    let Call { twilio, owner, .. } = call;
    twilio.close().await;
    services.metrics.active_calls.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    admission::release(&services, &start.call_id, &owner).await;
    info!("call finished");
}

/// Sends one message within [`SEND_DEADLINE`]; false if the peer is gone or stalled.
async fn send_within<M, S: futures_util::Sink<M> + Unpin>(sink: &mut S, message: M) -> bool {
    matches!(tokio::time::timeout(SEND_DEADLINE, sink.send(message)).await, Ok(Ok(())))
}

/// Queues one message without flushing, waiting at most [`SEND_DEADLINE`] for room;
/// false if the peer is gone or stalled.
async fn feed_within<M, S: futures_util::Sink<M> + Unpin>(sink: &mut S, message: M) -> bool {
    matches!(tokio::time::timeout(SEND_DEADLINE, sink.feed(message)).await, Ok(Ok(())))
}

/// Writes out what was queued, within [`SEND_DEADLINE`]; false if the peer is gone or stalled.
async fn flush_within<M, S: futures_util::Sink<M> + Unpin>(sink: &mut S) -> bool {
    matches!(tokio::time::timeout(SEND_DEADLINE, sink.flush()).await, Ok(Ok(())))
}

/// What a flush toward a peer did.
#[derive(Debug, Clone, Copy)]
struct Flushed {
    /// The peer took it (or there was nothing to write); false if it stalled or is gone.
    open: bool,
    /// It wrote audio out.
    audio: bool,
}

struct Call {
    services: Arc<Services>,
    session: CallSession,
    call_id: String,
    call_sid: String,
    owner: Owner,
    /// When the once-only claim on the call's stream token may lapse (Unix seconds).
    claim: StreamClaim,
    twilio: TwilioPeer,
    openai: OpenAiPeer,
    /// Restaurant audio (Twilio's base64) kept while OpenAI is away.
    pre_roll: VecDeque<String>,
    /// Peers found gone while sending, to be handled once the current step is done.
    lost_peers: Vec<Input<'static>>,
    finished: bool,
}

impl Call {
    async fn run(&mut self, twilio_rx: &mut SplitStream<WebSocket>) {
        let mut heartbeat =
            tokio::time::interval(Duration::from_millis(self.services.config.session_ttl_seconds * 1000 / 3));
        heartbeat.tick().await;
        let mut shutdown = self.services.shutdown.clone();
        // One timer for the call, moved only when the session's next deadline moves: a
        // new one per turn would enter and leave the runtime's timer wheel per frame.
        let mut timer = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
        let mut timer_at = None;
        while !self.finished {
            self.flush_peers().await;
            if !self.lost_peers.is_empty() {
                for lost in std::mem::take(&mut self.lost_peers) {
                    self.input(lost).await;
                }
                continue;
            }
            let deadline = self.session.poll_timeout().map(tokio::time::Instant::from_std);
            if deadline != timer_at {
                if let Some(at) = deadline {
                    timer.as_mut().reset(at);
                }
                timer_at = deadline;
            }
            tokio::select! {
                message = twilio_rx.next() => {
                    let mut open = self.twilio_message(message).await;
                    // Frames that queued meanwhile (a busy worker) share this turn's writes.
                    for _ in 1..READY_FRAMES_PER_TURN {
                        if !open || self.finished || !self.lost_peers.is_empty() {
                            break;
                        }
                        let Some(message) = twilio_rx.next().now_or_never() else { break };
                        open = self.twilio_message(message).await;
                    }
                }
                event = self.openai.next(&self.services.metrics) => match event {
                    openai::Event::Text(text) => self.openai_text(&text).await,
                    openai::Event::Connected(true) => self.input(Input::OpenAiConnected).await,
                    openai::Event::Connected(false) | openai::Event::Lost => self.input(Input::OpenAiLost).await,
                    openai::Event::Nothing => {}
                },
                () = &mut timer, if timer_at.is_some() => {
                    // Set again next turn, even to the same deadline, if the session still wants it.
                    timer_at = None;
                    self.session.handle_timeout(clock());
                    self.perform().await;
                }
                _ = heartbeat.tick() => self.heartbeat().await,
                changed = shutdown.changed() => {
                    if changed.is_err() || shutdown.borrow().deadline_passed {
                        warn!("drain deadline passed: ending the call");
                        self.input(Input::Shutdown).await;
                    }
                }
            }
        }
    }

    /// Handles one item of Twilio's stream; false once the stream has ended.
    async fn twilio_message(&mut self, message: Option<Result<TwilioMessage, axum::Error>>) -> bool {
        match message {
            Some(Ok(TwilioMessage::Text(text))) => self.twilio_text(&text).await,
            Some(Ok(TwilioMessage::Close(_))) | None | Some(Err(_)) => {
                self.input(Input::TwilioLost).await;
                return false;
            }
            Some(Ok(_)) => {
                // Binary frames violate the protocol (Twilio error 31950): skip them.
                Metrics::inc(&self.services.metrics.frames_malformed);
            }
        }
        true
    }

    async fn twilio_text(&mut self, text: &str) {
        // When the frame was read: a turn's latency counts from here (`shared::session::latency`).
        let read_at = clock();
        let started = Instant::now();
        let message = match StreamMessage::parse(text) {
            Ok(message) => message,
            Err(error) => {
                Metrics::inc(&self.services.metrics.frames_malformed);
                warn!(%error, "skipping a malformed Twilio frame");
                return;
            }
        };
        if let StreamMessage::Media(media) = &message {
            Metrics::inc(&self.services.metrics.frames_in);
            if self.session.accepts_audio() {
                let open = self.openai.forward_audio(&media.media.payload, &self.services.metrics).await;
                self.check_openai(open);
                self.services.metrics.observe_frame(started.elapsed());
            } else if self.pre_roll.len() < PRE_ROLL_FRAMES {
                self.pre_roll.push_back(media.media.payload.to_string());
            }
        }
        self.input_at(Input::Twilio(&message), read_at).await;
    }

    async fn openai_text(&mut self, text: &str) {
        // When the event was read, before parsing it: the worker's time, not the model's.
        let read_at = clock();
        let event = match ServerEvent::parse(text) {
            Ok(event) => event,
            Err(error) => {
                Metrics::inc(&self.services.metrics.frames_malformed);
                warn!(%error, "skipping a malformed OpenAI event");
                return;
            }
        };
        if let ServerEvent::Error { error } = &event {
            // Most are recoverable with the socket open; the session decides (see
            // `OpenAiError::ends_session`), here it is only reported.
            Metrics::inc(&self.services.metrics.openai_error_events);
            warn!(kind = %error.kind, code = ?error.code, message = %error.message, "OpenAI reported an error");
        }
        self.input_at(Input::OpenAi(&event), read_at).await;
    }

    /// One mutation of the session, then every output it has.
    async fn input(&mut self, input: Input<'_>) {
        self.input_at(input, clock()).await;
    }

    /// [`Call::input`] for something that happened at `at` (taken after every earlier
    /// input's time, so the session's clock still never goes backwards).
    async fn input_at(&mut self, input: Input<'_>, at: Instant) {
        self.session.handle_input(input, at);
        self.perform().await;
    }

    /// Writes out the messages queued toward each peer, and tells the session when
    /// audio left (the instants a turn's latency is measured between).
    async fn flush_peers(&mut self) {
        let flushed = self.twilio.flush().await;
        self.check_twilio(flushed.open);
        if flushed.open && flushed.audio {
            self.input(Input::AgentAudioWritten).await;
        }
        let flushed = self.openai.flush().await;
        self.check_openai(flushed.open);
        if flushed.open && flushed.audio {
            self.input(Input::RestaurantAudioWritten).await;
        }
    }

    /// After a send toward Twilio: one that did not get through means the stream is gone.
    fn check_twilio(&mut self, open: bool) {
        if !open {
            Metrics::inc(&self.services.metrics.twilio_errors);
            warn!("Twilio's socket did not take a message in time: the stream is gone");
            self.lost_peers.push(Input::TwilioLost);
        }
    }

    /// After a send toward OpenAI: one that did not get through dropped the socket.
    fn check_openai(&mut self, open: bool) {
        if !open {
            Metrics::inc(&self.services.metrics.openai_errors);
            warn!("OpenAI's socket did not take a message in time: dropping it");
            self.lost_peers.push(Input::OpenAiLost);
        }
    }

    /// Carries out everything the session asked for, in order, until it has nothing more
    /// (the driver's contract: see `shared::session`).
    async fn perform(&mut self) {
        let metrics = self.services.metrics.clone();
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::PlayAgentAudio { base64 } => {
                    let open = self.twilio.play(&base64, &metrics).await;
                    self.check_twilio(open);
                }
                Output::PlayTones { mulaw } => {
                    let open = self.twilio.play_tones(&mulaw, &metrics).await;
                    self.check_twilio(open);
                }
                Output::FlushAgentAudio => {
                    let open = self.twilio.flush_audio(&metrics).await;
                    self.check_twilio(open);
                }
                Output::ToTwilio(TwilioCommand::Mark(name)) => {
                    let open = self.twilio.mark(&name).await;
                    self.check_twilio(open);
                }
                Output::ToTwilio(TwilioCommand::Clear) => {
                    let open = self.twilio.clear().await;
                    self.check_twilio(open);
                }
                Output::ToOpenAi(event) => {
                    let open = self.openai.send_event(&event).await;
                    self.check_openai(open);
                }
                Output::ForwardPreRoll => {
                    while let Some(payload) = self.pre_roll.pop_front() {
                        let open = self.openai.forward_audio(&payload, &metrics).await;
                        self.check_openai(open);
                    }
                }
                Output::Report(event) => self.report(&event),
                Output::ReconnectOpenAi => {
                    info!("reconnecting to OpenAI with the conversation so far");
                    // Opened beside the loop, which reads Twilio meanwhile (see `Call::run`).
                    self.openai.reconnect(self.services.clone());
                }
                Output::HangUp { farewell } => {
                    let twilio = self.services.twilio.clone();
                    let call_sid = self.call_sid.clone();
                    let metrics = metrics.clone();
                    tokio::spawn(
                        async move {
                            if let Err(error) = twilio.hang_up(&call_sid, farewell.as_ref()).await {
                                Metrics::inc(&metrics.twilio_errors);
                                warn!(%error, "hang-up through the Twilio API failed");
                            }
                        }
                        .in_current_span(),
                    );
                }
                Output::CloseOpenAi => self.openai.close().await,
                Output::Finished => self.finished = true,
            }
        }
    }

    /// An event for the edge: counted, kept in the store (transcript lines, for a
    /// survivor), and handed to the outbox.
    fn report(&self, event: &shared::events::CallEvent) {
        if let CallEventKind::StreamEnded { stats, .. } = &event.kind {
            self.services.metrics.observe_call(stats);
            info!(
                estimated_cost_micro_usd = ?stats.estimated_cost_micro_usd,
                responses = stats.usage.responses,
                audio_in_ms = stats.audio_in_ms,
                audio_out_ms = stats.audio_out_ms,
                "stream usage"
            );
        }
        if let CallEventKind::Transcript { .. } = &event.kind {
            let store = self.services.store.clone();
            let call_id = self.call_id.clone();
            let line = serde_json::to_string(&event.kind).unwrap_or_default();
            tokio::spawn(
                async move {
                    if let Err(error) = store.append_transcript(&call_id, &line).await {
                        warn!(%error, "transcript not saved to the store");
                    }
                }
                .in_current_span(),
            );
        }
        self.services.outbox.submit(&self.call_id, event);
    }

    async fn heartbeat(&mut self) {
        let transcript = self.session.transcript();
        if lease::renew(&self.services, &self.call_id, &self.owner, &self.claim, transcript).await == Renewed::TakenOver
        {
            self.input(Input::Superseded).await;
        }
    }
}
