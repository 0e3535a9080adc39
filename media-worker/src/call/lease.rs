//! A live call's hold on the live store: the heartbeat that keeps its session
//! registration (and learns when another stream took the call over), and, when the
//! store comes back empty (a restarted Redis), writing back what the call holds.

use shared::call::TranscriptLine;
use shared::events::CallEventKind;
use tracing::{info, warn};

use super::admission::{self, Owner, StreamClaim};
use crate::store::Renewal;
use crate::Services;

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Renewed {
    /// The call is still this stream's (or the store could not say).
    Held,
    /// Another stream took the call over.
    TakenOver,
}

/// Renews the session's registration; writes the call's state back if the store lost it.
pub(super) async fn renew(
    services: &Services,
    call_id: &str,
    owner: &Owner,
    claim: &StreamClaim,
    transcript: &[TranscriptLine],
) -> Renewed {
    let now = admission::unix_ms();
    let ttl = services.config.session_ttl_seconds;
    match services.store.renew_session(call_id, &owner.session, ttl, now).await {
        Ok(Renewal::Held) => Renewed::Held,
        Ok(Renewal::Restored) => {
            warn!("the live store had lost this call (restarted?): writing its state back");
            restore(services, call_id, owner, claim, transcript, now).await;
            Renewed::Held
        }
        Ok(Renewal::TakenOver) => {
            warn!("another stream took over this call");
            Renewed::TakenOver
        }
        Err(error) => {
            warn!(%error, "heartbeat: store unavailable");
            Renewed::Held
        }
    }
}

/// Puts back what a restarted store lost: the stream token's once-only claim, the
/// registration a survivor would need, the call slot, the transcript so far and the
/// events not yet delivered.
async fn restore(
    services: &Services,
    call_id: &str,
    owner: &Owner,
    claim: &StreamClaim,
    transcript: &[TranscriptLine],
    now: u64,
) {
    let (store, config) = (&services.store, &services.config);
    let ttl = u64::try_from(claim.until - chrono::Utc::now().timestamp()).unwrap_or(0);
    if ttl > 0 {
        if let Err(error) = store.claim_stream(&claim.token, &claim.holder, ttl, now).await {
            warn!(%error, "restore: stream claim not written back");
        }
    }
    if let Err(error) = store.register_call(call_id, &owner.registration).await {
        warn!(%error, "restore: call not registered");
    }
    let until = admission::slot_until(config, now);
    if let Err(error) = store.acquire_slot(call_id, config.max_concurrent_calls, now, until).await {
        warn!(%error, "restore: call slot not taken");
    }
    let lines: Vec<String> = transcript
        .iter()
        .filter_map(|line| {
            let kind = CallEventKind::Transcript { speaker: line.speaker, text: line.text.clone(), at_ms: line.at_ms };
            serde_json::to_string(&kind).ok()
        })
        .collect();
    if let Err(error) = store.replace_transcript(call_id, &lines).await {
        warn!(%error, "restore: transcript not written back");
    }
    let restored = services.outbox.restore(store, call_id).await;
    info!(transcript_lines = lines.len(), outbox_events = restored, "live store state restored");
}
