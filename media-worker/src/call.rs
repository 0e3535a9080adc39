//! One phone call: the shell around [`shared::session::CallSession`]. It owns the Twilio
//! and OpenAI sockets, converts audio, and performs what the session decides. Steps:
//!
//! 1. read until Twilio's `start`, check the stream token and claim its one use (refuse
//!    before any OpenAI session exists), take a concurrency slot and the call's session
//!    registration;
//! 2. fetch the call's context from the edge while opening the OpenAI socket;
//! 3. run: frames in from both sides, timers, heartbeats and shutdown, outputs out;
//! 4. release the slot and the registration; the outbox carries the events on.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as TwilioMessage, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use shared::auth;
use shared::events::{CallEvent, CallEventKind, CallStats, EndReason, Outcome, OutcomeResult};
use shared::openai::events::{ClientEvent, ServerEvent};
use shared::session::{CallSession, Input, Output, SessionLimits, SessionParams, TwilioCommand};
use shared::twilio::stream::{StreamCommand, StreamMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as OpenAiMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{info, warn, Instrument};

use crate::audio::{Inbound, Outbound};
use crate::frames::MessageArena;
use crate::gate::Admission;
use crate::metrics::Metrics;
use crate::store::Renewal;
use crate::Services;

/// Frames read before `start` (Twilio sends one, `connected`) before giving up.
const MAX_FRAMES_BEFORE_START: usize = 32;
/// Malformed frames before `start` logged one by one; the rest are counted, and logged
/// as one sum, so junk cannot flood the log.
const JUNK_LINES_LOGGED: usize = 3;
const OPENAI_CONNECT_DEADLINE: Duration = Duration::from_secs(8);
/// A stream token's once-only claim outlives the token by this much, so a worker whose
/// clock runs behind still finds the claim while it would accept the token.
const STREAM_CLAIM_MARGIN_SECONDS: i64 = 60;
/// Restaurant audio kept while OpenAI is (re)connecting: 10 s of 20 ms frames.
const PRE_ROLL_FRAMES: usize = 500;
/// Nothing queues toward a peer beyond its socket's buffers and one write batch
/// ([`SOCKET_WRITE_BATCH_BYTES`]): each message waits for room (back-pressure) at most
/// this long, and a peer that cannot take one in that time is treated as gone. A
/// stalled peer so costs bounded memory, and holds up the call's timers and the other
/// side no longer than this.
pub const SEND_DEADLINE: Duration = Duration::from_secs(2);
/// Each socket's read buffer (the library default is 128 KiB). A larger message takes
/// more reads, so this only sets how much is read at once, and the library zeroes that
/// much before every read: sized to what each side sends, it stops idle memory per call
/// from being mostly empty buffers and keeps the zeroing off the profile. OpenAI's audio
/// deltas are several KiB.
pub const OPENAI_READ_BUFFER_BYTES: usize = 8 * 1024;
/// Twilio's frames are about 350 bytes: this holds several when the worker is behind.
pub const TWILIO_READ_BUFFER_BYTES: usize = 2 * 1024;
/// Messages queue in a socket's write buffer up to this size, and the buffer is flushed
/// once the call has nothing more ready to handle (see [`Call::run`]). The five Twilio
/// frames of a 100 ms reply and its mark leave in one write instead of six: on a busy
/// worker the send path (a syscall each, and the peer's wake-up) is most of the cost.
pub const SOCKET_WRITE_BATCH_BYTES: usize = 4 * 1024;
/// Twilio frames already waiting are handled in one go, at most this many, before the
/// writes are flushed and the other sources get their turn.
const READY_FRAMES_PER_TURN: usize = 8;

type OpenAiSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type TwilioSink = SplitSink<WebSocket, TwilioMessage>;

/// What Twilio's `start` told us.
struct StreamStart {
    call_id: String,
    token: Option<String>,
    stream_sid: String,
    call_sid: String,
}

/// This connection's once-only claim on its call's stream token.
struct StreamClaim {
    /// Names this connection alone: not the `streamSid`, which a replayed `start`
    /// message would carry too.
    holder: String,
    /// When the claim may lapse (Unix seconds).
    until: i64,
}

/// An id no other connection, on this or another instance, before or after a restart,
/// has: the instance, when this process first asked, and a counter.
fn connection_id(instance_id: &str) -> String {
    static EPOCH: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let epoch = EPOCH.get_or_init(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{instance_id}/{epoch}/{n}")
}

fn unix_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default()
}

/// Runs one Media Streams connection to its end. Never panics on input.
pub async fn handle_stream(socket: WebSocket, admission: Admission, services: Arc<Services>) {
    let (mut twilio_tx, mut twilio_rx) = socket.split();
    let deadline = Duration::from_millis(services.config.start_deadline_ms);
    let start = match read_start(&mut twilio_rx, deadline, &services.metrics).await {
        Some(start) => start,
        None => return,
    };
    let span = tracing::info_span!("call", call_id = %start.call_id, stream_sid = %start.stream_sid);
    async move {
        let now_unix = chrono::Utc::now().timestamp();
        let token_expires = match auth::verify_stream_token_until(
            &services.config.internal_secret,
            &start.call_id,
            start.token.as_deref(),
            now_unix,
        ) {
            Ok(expires) => {
                admission.authenticated();
                expires
            }
            Err(error) => {
                Metrics::inc(&services.metrics.streams_refused);
                warn!(%error, "refusing media stream: bad token");
                send_within(&mut twilio_tx, TwilioMessage::Close(None)).await;
                return;
            }
        };
        // A token opens one stream, once: a second socket presenting it (a replay, while
        // the call is live or after it ended) is refused here, before any OpenAI session,
        // and the live stream is left alone.
        let claim = StreamClaim {
            holder: connection_id(&services.config.instance_id),
            until: token_expires + STREAM_CLAIM_MARGIN_SECONDS,
        };
        let ttl = u64::try_from(claim.until - now_unix).unwrap_or(1);
        match services.store.claim_stream(&start.call_id, &claim.holder, ttl, unix_ms()).await {
            Ok(true) => {}
            Ok(false) => {
                Metrics::inc(&services.metrics.streams_refused);
                warn!("refusing media stream: the call's token has already opened a stream");
                send_within(&mut twilio_tx, TwilioMessage::Close(None)).await;
                return;
            }
            // Like every store step, an unreachable store does not stop the call; the
            // session registry below still lets one stream at a time carry it.
            Err(error) => warn!(%error, "store unavailable: stream token not checked for reuse"),
        }
        run_call(start, claim, twilio_tx, twilio_rx, services).await;
    }
    .instrument(span)
    .await;
}

/// Reads until Twilio's `start`. Twilio sends `connected` then `start`: anything more
/// before it is junk, of which a few frames are logged, the rest only counted (then
/// summed up in one line), and past [`MAX_FRAMES_BEFORE_START`] the socket is closed.
async fn read_start(
    twilio_rx: &mut SplitStream<WebSocket>,
    deadline: Duration,
    metrics: &Metrics,
) -> Option<StreamStart> {
    let mut frames = 0usize;
    let mut junk = 0usize;
    let wait = async {
        while let Some(message) = twilio_rx.next().await {
            frames += 1;
            if frames > MAX_FRAMES_BEFORE_START {
                warn!(frames, "closing a media socket: no start after {MAX_FRAMES_BEFORE_START} frames");
                return None;
            }
            let text = match message {
                Ok(TwilioMessage::Text(text)) => text,
                Ok(TwilioMessage::Close(_)) | Err(_) => return None,
                Ok(TwilioMessage::Binary(_)) => {
                    Metrics::inc(&metrics.frames_malformed);
                    junk += 1;
                    if junk <= JUNK_LINES_LOGGED {
                        warn!("skipping a binary frame before start");
                    }
                    continue;
                }
                Ok(_) => continue,
            };
            match StreamMessage::parse(&text) {
                Ok(StreamMessage::Start(start)) => {
                    let params = &start.start.custom_parameters;
                    return Some(StreamStart {
                        call_id: params.get("call_id").cloned().unwrap_or_default(),
                        token: params.get("token").cloned(),
                        stream_sid: start.stream_sid.to_string(),
                        call_sid: start.start.call_sid.to_string(),
                    });
                }
                Ok(_) => {}
                Err(error) => {
                    Metrics::inc(&metrics.frames_malformed);
                    junk += 1;
                    if junk <= JUNK_LINES_LOGGED {
                        warn!(%error, "skipping a malformed frame before start");
                    }
                }
            }
        }
        None
    };
    let start = tokio::time::timeout(deadline, wait).await.ok().flatten();
    if junk > JUNK_LINES_LOGGED {
        warn!(skipped = junk, logged = JUNK_LINES_LOGGED, "malformed frames before start (only the first logged)");
    }
    start
}

async fn connect_openai(services: &Services) -> Option<OpenAiSocket> {
    let attempt = async {
        let mut request = services.config.realtime_url().into_client_request()?;
        let bearer = format!("Bearer {}", services.config.openai_api_key);
        request.headers_mut().insert(
            "Authorization",
            bearer.parse().map_err(|_| tokio_tungstenite::tungstenite::Error::Utf8(String::new()))?,
        );
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(crate::audio::openai_read_buffer_bytes(services.config.agent.audio_mode))
            .write_buffer_size(SOCKET_WRITE_BATCH_BYTES);
        // Nagle off: 20 ms frames must leave now, not wait for the previous one's ACK.
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
        Ok::<_, tokio_tungstenite::tungstenite::Error>(socket)
    };
    match tokio::time::timeout(OPENAI_CONNECT_DEADLINE, attempt).await {
        Ok(Ok(socket)) => Some(socket),
        Ok(Err(error)) => {
            Metrics::inc(&services.metrics.openai_errors);
            warn!(%error, "could not open the OpenAI Realtime socket");
            None
        }
        Err(_) => {
            Metrics::inc(&services.metrics.openai_errors);
            warn!("opening the OpenAI Realtime socket timed out");
            None
        }
    }
}

/// Ends a call that never got an agent: say why, hang up, and record it.
async fn refuse_call(services: &Services, start: &StreamStart, reason: EndReason, farewell: &str, notes: &str) {
    if let Err(error) = services.twilio.hang_up(&start.call_sid, Some(farewell)).await {
        Metrics::inc(&services.metrics.twilio_errors);
        warn!(%error, "could not hang up");
    }
    let outcome = Outcome::without_decision(OutcomeResult::NoDecision, notes);
    let events = [
        CallEventKind::Outcome { outcome, at_ms: 0 },
        CallEventKind::StreamEnded { reason, stats: CallStats::default() },
    ];
    for (n, kind) in events.into_iter().enumerate() {
        services.outbox.submit(&start.call_id, &CallEvent::of_stream(&start.stream_sid, format!("refused-{n}"), kind));
    }
}

struct Call {
    services: Arc<Services>,
    session: CallSession,
    call_id: String,
    call_sid: String,
    stream_sid: String,
    owner: String,
    origin: Instant,
    /// What the store keeps so a survivor can finish the call (see [`crate::outbox::Registration`]).
    registration: String,
    /// When the once-only claim on the call's stream token may lapse (Unix seconds).
    claim: StreamClaim,
    twilio_tx: TwilioSink,
    openai: Option<OpenAiSocket>,
    inbound: Inbound,
    outbound: Outbound,
    pre_roll: VecDeque<String>,
    /// Twilio messages built from one audio delta, reused between deltas.
    outgoing: Vec<bytes::Bytes>,
    /// Memory for the per-frame messages to each side (no allocation per frame).
    twilio_arena: MessageArena,
    openai_arena: MessageArena,
    /// `streamSid` as a JSON string literal, escaped once.
    stream_sid_json: String,
    /// Twilio stalled or went away while we were sending: send nothing more.
    twilio_gone: bool,
    /// Messages written to a socket's buffer since it was last flushed.
    twilio_unflushed: bool,
    openai_unflushed: bool,
    /// Peers found gone while sending, to be handled once the current step is done.
    lost_peers: Vec<Input<'static>>,
    finished: bool,
}

/// When a call's concurrency slot lapses if nobody releases it (a worker that died):
/// the longest a call may run, plus room for the goodbye and hang-up.
fn slot_until(config: &crate::config::MediaConfig, now_ms: u64) -> u64 {
    now_ms + (config.max_call_seconds + 120) * 1000
}

async fn run_call(
    start: StreamStart,
    claim: StreamClaim,
    twilio_tx: TwilioSink,
    mut twilio_rx: SplitStream<WebSocket>,
    services: Arc<Services>,
) {
    let config = &services.config;
    let now = unix_ms();
    match services.store.acquire_slot(&start.call_id, config.max_concurrent_calls, now, slot_until(config, now)).await {
        Ok(true) => {}
        Ok(false) => {
            Metrics::inc(&services.metrics.streams_refused);
            warn!("refusing media stream: every call slot is taken");
            refuse_call(
                &services,
                &start,
                EndReason::AtCapacity,
                "Sorry, we can't take this call right now. Goodbye.",
                "all media workers were busy",
            )
            .await;
            return;
        }
        Err(error) => warn!(%error, "store unavailable: taking the call without a slot check"),
    }
    let owner = format!("{}:{}", config.instance_id, start.stream_sid);
    match services.store.claim_session(&start.call_id, &owner, config.session_ttl_seconds, now).await {
        Ok(Some(previous)) => info!(previous, "this stream takes over the call from an older one"),
        Ok(None) => {}
        Err(error) => warn!(%error, "store unavailable: session not registered"),
    }

    let registration =
        crate::outbox::Registration { stream_sid: start.stream_sid.clone(), call_sid: start.call_sid.clone() };
    let registration = serde_json::to_string(&registration).unwrap_or_default();
    if let Err(error) = services.store.register_call(&start.call_id, &registration).await {
        warn!(%error, "store unavailable: call not registered for recovery");
    }
    let owner = Owner { session: owner, registration };

    // The context and the model's socket in parallel: the first reply comes sooner.
    let (context, openai) = tokio::join!(fetch_context(&services, &start.call_id), connect_openai(&services));
    let Some(context) = context else {
        refuse_call(
            &services,
            &start,
            EndReason::ContextUnavailable,
            "Sorry, we're having technical trouble. Goodbye.",
            "the call's details could not be loaded",
        )
        .await;
        release(&services, &start.call_id, &owner).await;
        return;
    };
    let (inbound, outbound) = match (Inbound::new(config.agent.audio_mode), Outbound::new(config.agent.audio_mode)) {
        (Ok(i), Ok(o)) => (i, o),
        (Err(error), _) | (_, Err(error)) => {
            warn!(%error, "audio pipeline could not be built");
            release(&services, &start.call_id, &owner).await;
            return;
        }
    };
    let params = SessionParams {
        call_id: start.call_id.clone(),
        stream_sid: start.stream_sid.clone(),
        instructions: context.instructions,
        settings: config.agent.clone(),
        limits: SessionLimits::with_max_call_seconds(config.max_call_seconds),
    };
    Metrics::inc(&services.metrics.calls_started);
    services.metrics.active_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    info!(audio_mode = ?config.agent.audio_mode, "call started");
    let connected = openai.is_some();
    let mut call = Call {
        session: CallSession::new(params, 0),
        services: services.clone(),
        call_id: start.call_id.clone(),
        call_sid: start.call_sid.clone(),
        stream_sid: start.stream_sid.clone(),
        owner: owner.session.clone(),
        registration: owner.registration.clone(),
        claim,
        origin: Instant::now(),
        twilio_tx,
        openai,
        inbound,
        outbound,
        pre_roll: VecDeque::with_capacity(64),
        outgoing: Vec::with_capacity(32),
        twilio_arena: MessageArena::default(),
        openai_arena: MessageArena::default(),
        stream_sid_json: serde_json::to_string(&start.stream_sid).unwrap_or_else(|_| "\"\"".into()),
        twilio_gone: false,
        twilio_unflushed: false,
        openai_unflushed: false,
        lost_peers: Vec::new(),
        finished: false,
    };
    call.input(if connected { Input::OpenAiConnected } else { Input::OpenAiLost }).await;
    call.run(&mut twilio_rx).await;
    if !call.twilio_gone {
        // End the WebSocket with a close frame, not a bare reset.
        send_within(&mut call.twilio_tx, TwilioMessage::Close(None)).await;
    }
    services.metrics.active_calls.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    release(&services, &start.call_id, &owner).await;
    info!("call finished");
}

async fn fetch_context(services: &Services, call_id: &str) -> Option<shared::events::CallContext> {
    for attempt in 0..3u32 {
        match services.edge.context(call_id).await {
            Ok(context) => return Some(context),
            Err(error) => {
                Metrics::inc(&services.metrics.edge_errors);
                warn!(%error, attempt, "could not fetch the call's context");
                if matches!(error, crate::clients::EdgeError::Refused { .. }) {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    None
}

/// This stream's claims on the call: its session in the registry and its registration.
struct Owner {
    session: String,
    registration: String,
}

async fn release(services: &Services, call_id: &str, owner: &Owner) {
    if let Err(error) = services.store.unregister_call(call_id, &owner.registration).await {
        warn!(%error, "could not unregister the call");
    }
    if let Err(error) = services.store.release_slot(call_id).await {
        warn!(%error, "could not release the call slot");
    }
    if let Err(error) = services.store.release_session(call_id, &owner.session).await {
        warn!(%error, "could not release the session");
    }
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

impl Call {
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

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
            let deadline = self
                .session
                .poll_timeout()
                .map(|ms| tokio::time::Instant::from_std(self.origin + Duration::from_millis(ms)));
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
                message = next_openai(&mut self.openai) => match message {
                    Some(Ok(OpenAiMessage::Text(text))) => self.openai_text(&text).await,
                    Some(Ok(OpenAiMessage::Close(frame))) => {
                        warn!(?frame, "OpenAI closed the socket");
                        self.openai = None;
                        self.input(Input::OpenAiLost).await;
                    }
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => {
                        Metrics::inc(&self.services.metrics.openai_errors);
                        warn!("the OpenAI socket dropped");
                        self.openai = None;
                        self.input(Input::OpenAiLost).await;
                    }
                },
                () = &mut timer, if timer_at.is_some() => {
                    // Set again next turn, even to the same deadline, if the session still wants it.
                    timer_at = None;
                    let now = self.now();
                    self.session.handle_timeout(now);
                    self.perform(None).await;
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

    /// Writes out the messages queued toward each peer.
    async fn flush_peers(&mut self) {
        if std::mem::take(&mut self.twilio_unflushed) && !self.twilio_gone && !flush_within(&mut self.twilio_tx).await {
            self.twilio_stalled();
        }
        if std::mem::take(&mut self.openai_unflushed) {
            if let Some(openai) = self.openai.as_mut() {
                if !flush_within(openai).await {
                    self.openai_stalled();
                }
            }
        }
    }

    fn twilio_stalled(&mut self) {
        Metrics::inc(&self.services.metrics.twilio_errors);
        warn!("Twilio's socket did not take a message in time: the stream is gone");
        self.twilio_gone = true;
        self.lost_peers.push(Input::TwilioLost);
    }

    fn openai_stalled(&mut self) {
        Metrics::inc(&self.services.metrics.openai_errors);
        warn!("OpenAI's socket did not take a message in time: dropping it");
        // Dropped, not closed: a close would wait on the same full socket.
        self.openai = None;
        self.lost_peers.push(Input::OpenAiLost);
    }

    async fn heartbeat(&mut self) {
        let now = unix_ms();
        let ttl = self.services.config.session_ttl_seconds;
        match self.services.store.renew_session(&self.call_id, &self.owner, ttl, now).await {
            Ok(Renewal::Held) => {}
            Ok(Renewal::Restored) => {
                warn!("the live store had lost this call (restarted?): writing its state back");
                self.restore_store_state(now).await;
            }
            Ok(Renewal::TakenOver) => {
                warn!("another stream took over this call");
                self.input(Input::Superseded).await;
            }
            Err(error) => warn!(%error, "heartbeat: store unavailable"),
        }
    }

    /// Puts back what a restarted store lost: the stream token's once-only claim, the
    /// registration a survivor would need, the call slot, the transcript so far and the
    /// events not yet delivered.
    async fn restore_store_state(&mut self, now: u64) {
        let (store, config) = (&self.services.store, &self.services.config);
        let ttl = u64::try_from(self.claim.until - chrono::Utc::now().timestamp()).unwrap_or(0);
        if ttl > 0 {
            if let Err(error) = store.claim_stream(&self.call_id, &self.claim.holder, ttl, now).await {
                warn!(%error, "restore: stream claim not written back");
            }
        }
        if let Err(error) = store.register_call(&self.call_id, &self.registration).await {
            warn!(%error, "restore: call not registered");
        }
        let until = slot_until(config, now);
        if let Err(error) = store.acquire_slot(&self.call_id, config.max_concurrent_calls, now, until).await {
            warn!(%error, "restore: call slot not taken");
        }
        let lines: Vec<String> = self
            .session
            .transcript()
            .iter()
            .filter_map(|line| {
                let kind =
                    CallEventKind::Transcript { speaker: line.speaker, text: line.text.clone(), at_ms: line.at_ms };
                serde_json::to_string(&kind).ok()
            })
            .collect();
        if let Err(error) = store.replace_transcript(&self.call_id, &lines).await {
            warn!(%error, "restore: transcript not written back");
        }
        let restored = self.services.outbox.restore(store, &self.call_id).await;
        info!(transcript_lines = lines.len(), outbox_events = restored, "live store state restored");
    }

    async fn input(&mut self, input: Input<'_>) {
        let now = self.now();
        self.session.handle_input(input, now);
        self.perform(None).await;
    }

    async fn twilio_text(&mut self, text: &str) {
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
                self.forward_audio(&media.media.payload).await;
                self.services.metrics.observe_frame(started.elapsed());
            } else if self.pre_roll.len() < PRE_ROLL_FRAMES {
                self.pre_roll.push_back(media.media.payload.to_string());
            }
        }
        let now = self.now();
        self.session.handle_input(Input::Twilio(&message), now);
        self.perform(None).await;
    }

    async fn forward_audio(&mut self, payload: &str) {
        match self.inbound.push(payload) {
            Ok(Some(audio)) => {
                let message = self.openai_arena.append(audio);
                let Ok(text) = tokio_tungstenite::tungstenite::Utf8Bytes::try_from(message) else { return };
                self.send_to_openai(text).await;
            }
            Ok(None) => {}
            Err(error) => {
                Metrics::inc(&self.services.metrics.frames_malformed);
                warn!(%error, "skipping undecodable audio");
            }
        }
    }

    async fn openai_text(&mut self, text: &str) {
        let event = match ServerEvent::parse(text) {
            Ok(event) => event,
            Err(error) => {
                Metrics::inc(&self.services.metrics.frames_malformed);
                warn!(%error, "skipping a malformed OpenAI event");
                return;
            }
        };
        let delta = match &event {
            ServerEvent::AudioDelta(delta) => Some(delta.delta.as_ref()),
            ServerEvent::Error { error } => {
                // Most are recoverable with the socket open; the session decides (see
                // `ApiError::ends_session`), here it is only reported.
                Metrics::inc(&self.services.metrics.openai_error_events);
                warn!(kind = %error.kind, code = ?error.code, message = %error.message, "OpenAI reported an error");
                None
            }
            _ => None,
        };
        let now = self.now();
        self.session.handle_input(Input::OpenAi(&event), now);
        self.perform(delta).await;
        if matches!(event, ServerEvent::AudioDone { .. }) {
            // The reply's last partial frame, padded with silence.
            let (sid, outgoing, arena) = (&self.stream_sid_json, &mut self.outgoing, &mut self.twilio_arena);
            let _ = self.outbound.flush(|frame| outgoing.push(arena.media(sid, frame)));
            self.send_outgoing().await;
        }
    }

    async fn send_command(&mut self, command: StreamCommand<'_>) {
        let mut json = Vec::with_capacity(96);
        command.write_json(&mut json);
        let message = self.twilio_arena.copy(&json);
        self.send_to_twilio(message).await;
    }

    /// Sends the media messages built from the last delta, in order.
    async fn send_outgoing(&mut self) {
        let mut outgoing = std::mem::take(&mut self.outgoing);
        for text in outgoing.drain(..) {
            Metrics::inc(&self.services.metrics.frames_out);
            self.send_to_twilio(text).await;
        }
        // Handed back empty, keeping its capacity for the next delta.
        self.outgoing = outgoing;
    }

    async fn send_to_twilio(&mut self, text: bytes::Bytes) {
        // Our own JSON: always UTF-8.
        let Ok(text) = axum::extract::ws::Utf8Bytes::try_from(text) else { return };
        if self.twilio_gone {
            return;
        }
        if feed_within(&mut self.twilio_tx, TwilioMessage::Text(text)).await {
            self.twilio_unflushed = true;
        } else {
            self.twilio_stalled();
        }
    }

    async fn send_to_openai(&mut self, text: tokio_tungstenite::tungstenite::Utf8Bytes) {
        let Some(openai) = self.openai.as_mut() else { return };
        if feed_within(openai, OpenAiMessage::Text(text)).await {
            self.openai_unflushed = true;
        } else {
            self.openai_stalled();
        }
    }

    /// Carries out everything the session asked for. `delta` is the audio of the event
    /// just handled, for [`Output::PlayAgentAudio`].
    async fn perform(&mut self, delta: Option<&str>) {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::PlayAgentAudio => {
                    let Some(delta) = delta else { continue };
                    let started = Instant::now();
                    let (sid, outgoing, arena) = (&self.stream_sid_json, &mut self.outgoing, &mut self.twilio_arena);
                    if let Err(error) = self.outbound.push(delta, |frame| outgoing.push(arena.media(sid, frame))) {
                        Metrics::inc(&self.services.metrics.frames_malformed);
                        warn!(%error, "skipping undecodable agent audio");
                    }
                    self.services.metrics.observe_frame(started.elapsed());
                    self.send_outgoing().await;
                }
                Output::ToTwilio(TwilioCommand::Mark(name)) => {
                    let stream_sid = std::mem::take(&mut self.stream_sid);
                    self.send_command(StreamCommand::mark(&stream_sid, &name)).await;
                    self.stream_sid = stream_sid;
                }
                Output::ToTwilio(TwilioCommand::Clear) => {
                    self.outbound.discard();
                    let stream_sid = std::mem::take(&mut self.stream_sid);
                    self.send_command(StreamCommand::clear(&stream_sid)).await;
                    self.stream_sid = stream_sid;
                }
                Output::ToOpenAi(event) => {
                    let configured = matches!(event, ClientEvent::SessionUpdate { .. });
                    let mut json = Vec::with_capacity(256);
                    event.write_json(&mut json);
                    let text = String::from_utf8(json).unwrap_or_default();
                    self.send_to_openai(text.into()).await;
                    if configured {
                        // Audio that arrived while connecting: the restaurant's greeting.
                        while let Some(payload) = self.pre_roll.pop_front() {
                            self.forward_audio(&payload).await;
                        }
                    }
                }
                Output::Report(event) => {
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
                        tokio::spawn(async move {
                            if let Err(error) = store.append_transcript(&call_id, &line).await {
                                warn!(%error, "transcript not saved to the store");
                            }
                        });
                    }
                    self.services.outbox.submit(&self.call_id, &event);
                }
                Output::ReconnectOpenAi => {
                    info!("reconnecting to OpenAI with the conversation so far");
                    // Twilio's queued audio must not wait out the connect.
                    self.flush_peers().await;
                    self.openai = connect_openai(&self.services).await;
                    let input = if self.openai.is_some() { Input::OpenAiConnected } else { Input::OpenAiLost };
                    let now = self.now();
                    self.session.handle_input(input, now);
                }
                Output::HangUp { farewell } => {
                    let twilio = self.services.twilio.clone();
                    let metrics = self.services.metrics.clone();
                    let call_sid = self.call_sid.clone();
                    tokio::spawn(
                        async move {
                            if let Err(error) = twilio.hang_up(&call_sid, farewell.as_deref()).await {
                                Metrics::inc(&metrics.twilio_errors);
                                warn!(%error, "hang-up through the Twilio API failed");
                            }
                        }
                        .in_current_span(),
                    );
                }
                Output::CloseOpenAi => {
                    if let Some(mut openai) = self.openai.take() {
                        let _ = tokio::time::timeout(SEND_DEADLINE, openai.close(None)).await;
                    }
                }
                Output::Finished => self.finished = true,
            }
        }
    }
}

async fn next_openai(
    openai: &mut Option<OpenAiSocket>,
) -> Option<Result<OpenAiMessage, tokio_tungstenite::tungstenite::Error>> {
    match openai {
        Some(socket) => socket.next().await,
        None => std::future::pending().await,
    }
}
