//! Delivers call events to the edge exactly once by event id: each event is kept in the
//! live store until the edge accepts it, retried with backoff while the edge is down,
//! and, if this instance dies, delivered by whichever instance sweeps the outbox next.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::call::TranscriptLine;
use shared::events::{CallEvent, CallEventKind};
use shared::session::ending;
use tokio::sync::mpsc;

use crate::clients::{EdgeClient, EdgeError, TwilioRest};
use crate::metrics::Metrics;
use crate::store::LiveStore;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How the outbox holds an event until the edge accepts it.
enum Held {
    /// The event's JSON, in memory.
    Text(String),
    /// Only in the live store: read back when its turn comes.
    Spilled,
}

/// Events submitted and not yet delivered (call id → event id → event), with the bytes
/// of JSON held in memory. The JSON lives here once; the queues carry only ids.
#[derive(Default)]
struct Pending {
    events: HashMap<String, BTreeMap<String, Held>>,
    bytes: usize,
}

type Shared = Arc<Mutex<Pending>>;

fn lock(pending: &Shared) -> std::sync::MutexGuard<'_, Pending> {
    // Poisoning only means another thread panicked mid-update; the map is still sound.
    pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the outbox has of one event.
enum Lookup {
    Text(String),
    Spilled,
    /// Delivered already (a repeated submission of the same id).
    Gone,
}

impl Pending {
    fn lookup(&self, call_id: &str, event_id: &str) -> Lookup {
        match self.events.get(call_id).and_then(|events| events.get(event_id)) {
            Some(Held::Text(json)) => Lookup::Text(json.clone()),
            Some(Held::Spilled) => Lookup::Spilled,
            None => Lookup::Gone,
        }
    }

    /// Drops the in-memory copy of an event the store holds; returns whether it did.
    fn spill(&mut self, call_id: &str, event_id: &str) -> bool {
        let Some(held) = self.events.get_mut(call_id).and_then(|events| events.get_mut(event_id)) else {
            return false;
        };
        match std::mem::replace(held, Held::Spilled) {
            Held::Text(json) => {
                self.bytes = self.bytes.saturating_sub(json.len());
                true
            }
            Held::Spilled => false,
        }
    }

    fn remove(&mut self, call_id: &str, event_id: &str) {
        if let Some(events) = self.events.get_mut(call_id) {
            if let Some(Held::Text(json)) = events.remove(event_id) {
                self.bytes = self.bytes.saturating_sub(json.len());
            }
            if events.is_empty() {
                self.events.remove(call_id);
            }
        }
    }
}

/// Hands events to the delivery task; never blocks the audio path.
///
/// Memory policy: while the edge is away, events queue. Their JSON stays in memory up to
/// `memory_limit` bytes; past it, each event the store has accepted is kept there only
/// (its id stays in memory, some 60 bytes) and read back when its turn comes. An event
/// the store could not take (Redis down too) stays in memory whatever the limit: it has
/// no other copy, and losing it would be worse.
#[derive(Clone)]
pub struct Outbox {
    sender: mpsc::UnboundedSender<(String, String)>,
    pending: Shared,
    metrics: Arc<Metrics>,
}

impl Outbox {
    /// Starts the outbox: a persister that writes each event to the store at once, and
    /// a deliverer that works through them in order. Persisting never waits behind a
    /// delivery stuck on a down edge, so a crash loses nothing that was submitted.
    /// The returned task ends when every `Outbox` is dropped and all is delivered.
    pub fn start(
        store: Arc<LiveStore>,
        edge: EdgeClient,
        metrics: Arc<Metrics>,
        memory_limit: usize,
    ) -> (Outbox, tokio::task::JoinHandle<()>) {
        let (sender, mut submitted) = mpsc::unbounded_channel::<(String, String)>();
        let pending = Shared::default();
        let (persisted_tx, mut persisted) = mpsc::unbounded_channel::<(String, String)>();
        let persister = {
            let (store, metrics, pending) = (store.clone(), metrics.clone(), pending.clone());
            tokio::spawn(async move {
                while let Some((call_id, event_id)) = submitted.recv().await {
                    Metrics::inc(&metrics.outbox_depth);
                    let json = lock(&pending).lookup(&call_id, &event_id);
                    if let Lookup::Text(json) = json {
                        match store.outbox_put(&call_id, &event_id, &json).await {
                            Ok(()) => {
                                let mut pending = lock(&pending);
                                if pending.bytes > memory_limit && pending.spill(&call_id, &event_id) {
                                    Metrics::inc(&metrics.outbox_spilled);
                                }
                                metrics.outbox_memory_bytes.store(pending.bytes as u64, Ordering::Relaxed);
                            }
                            // Redis down: the event is still delivered from memory.
                            Err(error) => tracing::warn!(call_id, event_id, %error, "outbox: could not persist event"),
                        }
                    }
                    let _ = persisted_tx.send((call_id, event_id));
                }
            })
        };
        let (delivering, outbox_metrics) = (pending.clone(), metrics.clone());
        let task = tokio::spawn(async move {
            while let Some((call_id, event_id)) = persisted.recv().await {
                let lookup = lock(&delivering).lookup(&call_id, &event_id);
                let json = match lookup {
                    Lookup::Text(json) => Some(json),
                    Lookup::Spilled => {
                        let json = read_back(&store, &call_id, &event_id).await;
                        if json.is_none() {
                            tracing::error!(call_id, event_id, "outbox: a spilled event is gone from the store");
                        }
                        json
                    }
                    Lookup::Gone => None,
                };
                if let Some(json) = json {
                    deliver_one(&store, &edge, &metrics, &call_id, &event_id, &json).await;
                }
                metrics.outbox_depth.fetch_sub(1, Ordering::Relaxed);
                let mut pending = lock(&delivering);
                pending.remove(&call_id, &event_id);
                metrics.outbox_memory_bytes.store(pending.bytes as u64, Ordering::Relaxed);
            }
            let _ = persister.await;
        });
        (Outbox { sender, pending, metrics: outbox_metrics }, task)
    }

    /// Writes the call's undelivered events back to `store` (which lost them, having
    /// restarted); returns how many. Spilled events had no other copy and are gone.
    pub async fn restore(&self, store: &LiveStore, call_id: &str) -> usize {
        let (events, spilled): (Vec<(String, String)>, usize) = {
            let pending = lock(&self.pending);
            let held = pending.events.get(call_id);
            let texts = held.into_iter().flatten().filter_map(|(id, held)| match held {
                Held::Text(json) => Some((id.clone(), json.clone())),
                Held::Spilled => None,
            });
            let texts: Vec<(String, String)> = texts.collect();
            let spilled = held.map_or(0, |events| events.len()) - texts.len();
            (texts, spilled)
        };
        if spilled > 0 {
            tracing::error!(call_id, spilled, "outbox: events kept only in the store were lost with it");
        }
        for (event_id, json) in &events {
            if let Err(error) = store.outbox_put(call_id, event_id, json).await {
                tracing::warn!(call_id, event_id, %error, "outbox: could not restore event");
            }
        }
        events.len()
    }

    /// Queues an event for the edge; it is stored in the outbox before any attempt.
    pub fn submit(&self, call_id: &str, event: &CallEvent) {
        match serde_json::to_string(event) {
            Ok(json) => {
                {
                    let mut pending = lock(&self.pending);
                    pending.bytes += json.len();
                    let events = pending.events.entry(call_id.to_owned()).or_default();
                    if let Some(Held::Text(old)) = events.insert(event.id.clone(), Held::Text(json)) {
                        pending.bytes -= old.len();
                    }
                    self.metrics.outbox_memory_bytes.store(pending.bytes as u64, Ordering::Relaxed);
                }
                // The receiver lives as long as any Outbox: this only fails during teardown.
                let _ = self.sender.send((call_id.to_owned(), event.id.clone()));
            }
            Err(error) => tracing::error!(call_id, %error, "event could not be serialized"),
        }
    }
}

/// Reads a spilled event back from the store, waiting out a store that is briefly away.
/// `None` when the store answers that it does not have it.
async fn read_back(store: &LiveStore, call_id: &str, event_id: &str) -> Option<String> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match store.outbox_get(call_id, event_id).await {
            Ok(json) => return json,
            Err(error) => {
                tracing::warn!(call_id, event_id, %error, "outbox: store unavailable to read a spilled event; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Tries until the edge accepts or refuses for good; then clears the stored copy.
pub async fn deliver_one(
    store: &LiveStore,
    edge: &EdgeClient,
    metrics: &Metrics,
    call_id: &str,
    event_id: &str,
    json: &str,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match edge.post_event(call_id, json).await {
            Ok(()) => break,
            Err(EdgeError::Refused { status, body }) => {
                tracing::error!(call_id, event_id, status, body, "edge refused event; dropping it");
                break;
            }
            Err(error) => {
                Metrics::inc(&metrics.edge_errors);
                tracing::warn!(call_id, event_id, %error, retry_in_ms = backoff.as_millis() as u64, "edge unavailable; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    if let Err(error) = store.outbox_remove(call_id, event_id).await {
        // The edge applies each id once, so a later redelivery is harmless.
        tracing::warn!(call_id, event_id, %error, "outbox: could not clear delivered event");
    }
}

/// What the store keeps about a call in flight, for a survivor to finish it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    pub stream_sid: String,
    pub call_sid: String,
    /// The booking's language tag from the stream's parameters: the survivor's farewell
    /// is spoken in it. (Registrations written before it existed have none.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Cleans up after instances that died mid-call: delivers the events they left in the
/// outbox, then, for each call they were carrying, hangs up the abandoned phone call
/// and reports an outcome read from the stored transcript and `stream_ended`
/// (`worker_lost`). Returns how many events were delivered.
pub async fn sweep(store: &LiveStore, edge: &EdgeClient, twilio: &TwilioRest, metrics: &Metrics, now_ms: u64) -> usize {
    let delivered = deliver_orphaned_events(store, edge, metrics, now_ms).await;
    let registered = match store.registered_calls().await {
        Ok(calls) => calls,
        Err(error) => {
            tracing::warn!(%error, "sweep: store unavailable");
            return delivered;
        }
    };
    let mut finished = 0;
    for (call_id, registration) in registered {
        if store.session_alive(&call_id, now_ms).await.unwrap_or(true) {
            continue;
        }
        let registration_json = registration;
        let Ok(registration) = serde_json::from_str::<Registration>(&registration_json) else {
            let _ = store.unregister_call(&call_id, &registration_json).await;
            continue;
        };
        tracing::warn!(call_id, stream_sid = %registration.stream_sid, "sweep: finishing a call whose worker died");
        let transcript: Vec<TranscriptLine> = store
            .transcript(&call_id)
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|json| match serde_json::from_str::<CallEventKind>(json) {
                Ok(CallEventKind::Transcript { speaker, text, at_ms }) => Some(TranscriptLine { speaker, text, at_ms }),
                _ => None,
            })
            .collect();
        let ending = ending::orphaned(&registration.stream_sid, &transcript, registration.language.as_deref());
        if let Err(error) = twilio.hang_up(&registration.call_sid, Some(&ending.farewell)).await {
            Metrics::inc(&metrics.twilio_errors);
            tracing::warn!(call_id, %error, "sweep: could not hang up the abandoned call");
        }
        for event in ending.events {
            if let Ok(json) = serde_json::to_string(&event) {
                deliver_one(store, edge, metrics, &call_id, &event.id, &json).await;
            }
        }
        let _ = store.unregister_call(&call_id, &registration_json).await;
        finished += 1;
    }
    delivered + finished
}

/// Delivers events whose call has no live session anywhere (its instance died).
async fn deliver_orphaned_events(store: &LiveStore, edge: &EdgeClient, metrics: &Metrics, now_ms: u64) -> usize {
    let pending = match store.outbox_pending().await {
        Ok(pending) => pending,
        Err(error) => {
            tracing::warn!(%error, "outbox sweep: store unavailable");
            return 0;
        }
    };
    let mut delivered = 0;
    for (call_id, events) in pending {
        if store.session_alive(&call_id, now_ms).await.unwrap_or(true) {
            continue; // its own instance is delivering them
        }
        for (event_id, json) in events {
            tracing::info!(call_id, event_id, "outbox sweep: delivering an orphaned event");
            deliver_one(store, edge, metrics, &call_id, &event_id, &json).await;
            delivered += 1;
        }
    }
    delivered
}
