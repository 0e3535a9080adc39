//! Who gets a call: everything between Twilio's socket opening and the session
//! starting, as one `admit` that answers `Result<Admitted, Refusal>`. In order:
//!
//! 1. read until Twilio's `start` (`read_start`);
//! 2. check the stream token, then claim its one use (a replay is refused here, before
//!    any OpenAI session, and the live stream is left alone);
//! 3. take a call slot and the call's session registration, and register the call so a
//!    survivor can finish it;
//! 4. fetch the call's context from the edge while opening the OpenAI socket.
//!
//! What each refusal means for the call is decided in `shared::session::ending`; the
//! loop in `super` carries it out. `release` gives back what an admitted call holds.

use std::time::Duration;

use axum::extract::ws::{Message as TwilioMessage, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use shared::auth;
use shared::events::CallContext;
use shared::session::ending;
use shared::twilio::stream::StreamMessage;
use tracing::{info, warn};

use super::openai::{self, OpenAiSocket};
use crate::gate;
use crate::metrics::Metrics;
use crate::Services;

/// Frames read before `start` (Twilio sends one, `connected`) before giving up.
const MAX_FRAMES_BEFORE_START: usize = 32;
/// Malformed frames before `start` logged one by one; the rest are counted, and logged
/// as one sum, so junk cannot flood the log.
const JUNK_LINES_LOGGED: usize = 3;
/// A stream token's once-only claim outlives the token by this much, so a worker whose
/// clock runs behind still finds the claim while it would accept the token.
const STREAM_CLAIM_MARGIN_SECONDS: i64 = 60;

/// What Twilio's `start` told us.
pub(super) struct StreamStart {
    pub call_id: String,
    pub token: Option<String>,
    pub stream_sid: String,
    pub call_sid: String,
    /// The booking's language tag, for the farewells said without a session.
    pub language: Option<String>,
}

/// This connection's once-only claim on its call's stream token.
pub(super) struct StreamClaim {
    /// What is claimed: the call's token (each attempt at a call gets its own token, so
    /// a retried call opens its stream once again).
    pub token: String,
    /// Names this connection alone: not the `streamSid`, which a replayed `start`
    /// message would carry too.
    pub holder: String,
    /// When the claim may lapse (Unix seconds).
    pub until: i64,
}

/// This stream's claims on the call: its session in the registry and its registration.
pub(super) struct Owner {
    pub session: String,
    /// What the store keeps so a survivor can finish the call (see
    /// [`crate::outbox::Registration`]).
    pub registration: String,
}

/// A stream that may carry its call.
pub(super) struct Admitted {
    pub claim: StreamClaim,
    pub owner: Owner,
    pub context: CallContext,
    /// The model's socket, if it opened.
    pub openai: Option<OpenAiSocket>,
}

/// Why a stream does not carry its call.
#[derive(Debug)]
pub(super) enum Refusal {
    /// Not this call's stream (a bad or replayed token): close the socket, say nothing.
    Closed,
    /// The call's own stream, but no agent can take it: end the call as
    /// [`ending::refused`] says.
    NoAgent(ending::Refusal),
}

/// Decides whether the stream that sent `start` carries its call.
pub(super) async fn admit(
    start: &StreamStart,
    door: gate::Admission,
    services: &Services,
) -> Result<Admitted, Refusal> {
    let now_unix = chrono::Utc::now().timestamp();
    let config = &services.config;
    let token_expires = match auth::verify_stream_token_until(
        &config.internal_secret,
        &start.call_id,
        start.token.as_deref(),
        now_unix,
    ) {
        Ok(expires) => {
            door.authenticated();
            expires
        }
        Err(error) => {
            Metrics::inc(&services.metrics.streams_refused);
            warn!(%error, "refusing media stream: bad token");
            return Err(Refusal::Closed);
        }
    };
    let claim = StreamClaim {
        // A call's tokens differ by their expiry: one per TwiML request, one per attempt.
        token: format!("{}:{token_expires}", start.call_id),
        holder: connection_id(&config.instance_id),
        until: token_expires + STREAM_CLAIM_MARGIN_SECONDS,
    };
    let ttl = u64::try_from(claim.until - now_unix).unwrap_or(1);
    match services.store.claim_stream(&claim.token, &claim.holder, ttl, unix_ms()).await {
        Ok(true) => {}
        Ok(false) => {
            Metrics::inc(&services.metrics.streams_refused);
            warn!("refusing media stream: the call's token has already opened a stream");
            return Err(Refusal::Closed);
        }
        // Like every store step, an unreachable store does not stop the call; the
        // session registry below still lets one stream at a time carry it.
        Err(error) => warn!(%error, "store unavailable: stream token not checked for reuse"),
    }

    let now = unix_ms();
    match services.store.acquire_slot(&start.call_id, config.max_concurrent_calls, now, slot_until(config, now)).await {
        Ok(true) => {}
        Ok(false) => {
            Metrics::inc(&services.metrics.streams_refused);
            warn!("refusing media stream: every call slot is taken");
            return Err(Refusal::NoAgent(ending::Refusal::AtCapacity));
        }
        Err(error) => warn!(%error, "store unavailable: taking the call without a slot check"),
    }
    let session = format!("{}:{}", config.instance_id, start.stream_sid);
    match services.store.claim_session(&start.call_id, &session, config.session_ttl_seconds, now).await {
        Ok(Some(previous)) => info!(previous, "this stream takes over the call from an older one"),
        Ok(None) => {}
        Err(error) => warn!(%error, "store unavailable: session not registered"),
    }
    let registration = crate::outbox::Registration {
        stream_sid: start.stream_sid.clone(),
        call_sid: start.call_sid.clone(),
        language: start.language.clone(),
    };
    let registration = serde_json::to_string(&registration).unwrap_or_default();
    if let Err(error) = services.store.register_call(&start.call_id, &registration).await {
        warn!(%error, "store unavailable: call not registered for recovery");
    }
    let owner = Owner { session, registration };

    // The context and the model's socket in parallel: the first reply comes sooner.
    let (context, openai) = tokio::join!(fetch_context(services, &start.call_id), openai::connect(services));
    match context {
        Some(context) => Ok(Admitted { claim, owner, context, openai }),
        None => {
            release(services, &start.call_id, &owner).await;
            Err(Refusal::NoAgent(ending::Refusal::ContextUnavailable))
        }
    }
}

/// Gives back what an admitted call holds: its registration, its slot, its session.
pub(super) async fn release(services: &Services, call_id: &str, owner: &Owner) {
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

/// When a call's concurrency slot lapses if nobody releases it (a worker that died):
/// the longest a call may run, plus room for the goodbye and hang-up.
pub(super) fn slot_until(config: &crate::config::MediaConfig, now_ms: u64) -> u64 {
    now_ms + (config.max_call_seconds + 120) * 1000
}

pub(super) fn unix_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default()
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

/// Reads until Twilio's `start`. Twilio sends `connected` then `start`: anything more
/// before it is junk, of which a few frames are logged, the rest only counted (then
/// summed up in one line), and past [`MAX_FRAMES_BEFORE_START`] the socket is closed.
pub(super) async fn read_start(
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
                        language: params.get("language").cloned(),
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

async fn fetch_context(services: &Services, call_id: &str) -> Option<CallContext> {
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
