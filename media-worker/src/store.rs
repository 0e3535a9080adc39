//! Live state shared by every media-worker instance: the once-only stream claims (a
//! call's stream token opens one stream), the session registry (one live stream per
//! call, with heartbeats), the concurrent-call slots, the transcript so far,
//! and the outbox of events the edge has not yet accepted.
//!
//! [`LiveStore::Redis`] is the deployment; [`LiveStore::Embedded`] is the same behaviour
//! in-process, for local runs without `REDIS_URL`. Every Redis call has a deadline: a
//! slow or absent Redis never stalls a call (callers log the error and go on).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

const PREFIX: &str = "concierge";
const OP_DEADLINE: Duration = Duration::from_millis(750);
/// Transcripts and outboxes outlive any call by far; they expire on their own.
const KEEP_SECONDS: i64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum LiveStoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

pub enum LiveStore {
    Redis(RedisStore),
    // Boxed: the embedded state is much larger than a Redis handle.
    Embedded(Box<EmbeddedStore>),
}

pub struct RedisStore {
    connection: ConnectionManager,
}

#[derive(Default)]
pub struct EmbeddedStore {
    state: Mutex<EmbeddedState>,
}

#[derive(Default)]
struct EmbeddedState {
    /// call id → (the connection that used its token, claim expires at ms)
    streams: HashMap<String, (String, u64)>,
    /// call id → (owner, expires at ms)
    sessions: HashMap<String, (String, u64)>,
    /// call id → slot expires at ms
    slots: HashMap<String, u64>,
    transcripts: HashMap<String, Vec<String>>,
    /// call id → registration JSON
    calls: BTreeMap<String, String>,
    outbox: BTreeMap<String, BTreeMap<String, String>>,
}

fn key(kind: &str, call_id: &str) -> String {
    format!("{PREFIX}:{kind}:{call_id}")
}

async fn bounded<T>(operation: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, LiveStoreError> {
    match tokio::time::timeout(OP_DEADLINE, operation).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(LiveStoreError::Timeout(OP_DEADLINE)),
    }
}

const ACQUIRE_SLOT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
  return 1
end
return 0";

/// 1: the call's stream is `ARGV[1]`'s (claimed now, or already by this same
/// connection, as when writing back a restarted store's state). 0: another has it.
const CLAIM_STREAM: &str = r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  return 1
end
return 0";

/// 1: still ours, extended. 2: gone (Redis restarted, or the key expired while Redis
/// was out of reach), so claimed again. 0: another stream holds it.
const REFRESH_IF_OWNER: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 2
end
return 0";

const UNREGISTER_IF_SAME: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0";

/// Leaves a tombstone for the rest of the TTL rather than deleting: an older stream
/// that was taken over must see "someone else", not "lost", at its next heartbeat.
const RELEASE_IF_OWNER: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0";

/// The session value of a call whose stream has ended (see [`RELEASE_IF_OWNER`]).
const RELEASED: &str = "released";

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The session is still this stream's; extended.
    Held,
    /// The store had lost it (restarted, or it expired while out of reach): claimed
    /// again, and the rest of the call's state must be written back.
    Restored,
    /// Another stream for the same call holds it now.
    TakenOver,
}

impl LiveStore {
    pub async fn redis(url: &str) -> Result<LiveStore, LiveStoreError> {
        let client = redis::Client::open(url)?;
        let connection = bounded(client.get_connection_manager()).await?;
        Ok(LiveStore::Redis(RedisStore { connection }))
    }

    pub fn memory() -> LiveStore {
        LiveStore::Embedded(Box::default())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            LiveStore::Redis(_) => "redis",
            LiveStore::Embedded(_) => "embedded",
        }
    }

    /// Claims the stream of `token` (a call's stream token, see `call.rs`) for `holder`
    /// (one connection), for `ttl_seconds` (as long as the token lives): true if
    /// `holder` has it, false if another connection used the token first. One atomic step in Redis, so two workers cannot
    /// both win.
    pub async fn claim_stream(
        &self,
        token: &str,
        holder: &str,
        ttl_seconds: u64,
        now_ms: u64,
    ) -> Result<bool, LiveStoreError> {
        let ttl_seconds = ttl_seconds.max(1);
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let script = Script::new(CLAIM_STREAM);
                let claimed: i32 =
                    bounded(script.key(key("stream", token)).arg(holder).arg(ttl_seconds).invoke_async(&mut c)).await?;
                Ok(claimed == 1)
            }
            LiveStore::Embedded(m) => {
                let mut state = m.lock();
                state.streams.retain(|_, (_, expires)| *expires > now_ms);
                match state.streams.get(token) {
                    Some((current, _)) => Ok(current == holder),
                    None => {
                        let expires = now_ms + ttl_seconds * 1000;
                        state.streams.insert(token.to_owned(), (holder.to_owned(), expires));
                        Ok(true)
                    }
                }
            }
        }
    }

    /// Registers `owner` as the live session of `call_id`; returns the previous owner
    /// if another stream held it (the newer stream takes over).
    pub async fn claim_session(
        &self,
        call_id: &str,
        owner: &str,
        ttl_seconds: u64,
        now_ms: u64,
    ) -> Result<Option<String>, LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let previous: Option<String> = bounded(
                    redis::cmd("SET")
                        .arg(key("session", call_id))
                        .arg(owner)
                        .arg("EX")
                        .arg(ttl_seconds)
                        .arg("GET")
                        .query_async(&mut c),
                )
                .await?;
                Ok(previous.filter(|p| p != owner))
            }
            LiveStore::Embedded(m) => {
                let mut state = m.lock();
                let previous =
                    state.sessions.insert(call_id.to_owned(), (owner.to_owned(), now_ms + ttl_seconds * 1000));
                Ok(previous.filter(|(p, expires)| p != owner && *expires > now_ms).map(|(p, _)| p))
            }
        }
    }

    /// Heartbeat: extends the session if `owner` still holds it, claims it again if the
    /// store has lost it, or reports that another stream took over.
    pub async fn renew_session(
        &self,
        call_id: &str,
        owner: &str,
        ttl_seconds: u64,
        now_ms: u64,
    ) -> Result<Renewal, LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let script = Script::new(REFRESH_IF_OWNER);
                let held: i32 =
                    bounded(script.key(key("session", call_id)).arg(owner).arg(ttl_seconds).invoke_async(&mut c))
                        .await?;
                Ok(match held {
                    1 => Renewal::Held,
                    2 => Renewal::Restored,
                    _ => Renewal::TakenOver,
                })
            }
            LiveStore::Embedded(m) => {
                let mut state = m.lock();
                let expires = now_ms + ttl_seconds * 1000;
                match state.sessions.get_mut(call_id) {
                    Some((holder, until)) if holder == owner => {
                        *until = expires;
                        Ok(Renewal::Held)
                    }
                    Some((_, until)) if *until > now_ms => Ok(Renewal::TakenOver),
                    _ => {
                        state.sessions.insert(call_id.to_owned(), (owner.to_owned(), expires));
                        Ok(Renewal::Restored)
                    }
                }
            }
        }
    }

    /// Replaces the stored transcript with `lines` (after the store lost it).
    pub async fn replace_transcript(&self, call_id: &str, lines: &[String]) -> Result<(), LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let list = key("transcript", call_id);
                let mut pipe = redis::pipe();
                pipe.atomic().del(&list);
                if !lines.is_empty() {
                    pipe.rpush(&list, lines).expire(&list, KEEP_SECONDS);
                }
                let _: () = bounded(pipe.query_async(&mut c)).await?;
                Ok(())
            }
            LiveStore::Embedded(m) => {
                m.lock().transcripts.insert(call_id.to_owned(), lines.to_vec());
                Ok(())
            }
        }
    }

    pub async fn release_session(&self, call_id: &str, owner: &str) -> Result<(), LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let script = Script::new(RELEASE_IF_OWNER);
                let _: i32 =
                    bounded(script.key(key("session", call_id)).arg(owner).arg(RELEASED).invoke_async(&mut c)).await?;
                Ok(())
            }
            LiveStore::Embedded(m) => {
                let mut state = m.lock();
                if let Some((holder, _)) = state.sessions.get_mut(call_id).filter(|(holder, _)| holder == owner) {
                    *holder = RELEASED.to_owned();
                }
                Ok(())
            }
        }
    }

    /// Whether any instance holds a live session for the call.
    pub async fn session_alive(&self, call_id: &str, now_ms: u64) -> Result<bool, LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let holder: Option<String> = bounded(c.get(key("session", call_id))).await?;
                Ok(holder.is_some_and(|holder| holder != RELEASED))
            }
            LiveStore::Embedded(m) => Ok(m
                .lock()
                .sessions
                .get(call_id)
                .is_some_and(|(holder, expires)| holder != RELEASED && *expires > now_ms)),
        }
    }

    /// Takes (or renews) one of `max` call slots across all instances, until `expires_ms`.
    pub async fn acquire_slot(
        &self,
        call_id: &str,
        max: u32,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<bool, LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let script = Script::new(ACQUIRE_SLOT);
                let granted: i32 = bounded(
                    script
                        .key(format!("{PREFIX}:slots"))
                        .arg(now_ms)
                        .arg(max)
                        .arg(call_id)
                        .arg(expires_ms)
                        .invoke_async(&mut c),
                )
                .await?;
                Ok(granted == 1)
            }
            LiveStore::Embedded(m) => {
                let mut state = m.lock();
                state.slots.retain(|_, expires| *expires > now_ms);
                if state.slots.contains_key(call_id) || state.slots.len() < max as usize {
                    state.slots.insert(call_id.to_owned(), expires_ms);
                    Ok(true)
                } else {
                    Ok(false)
                }
            }
        }
    }

    pub async fn release_slot(&self, call_id: &str) -> Result<(), LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let _: i64 = bounded(c.zrem(format!("{PREFIX}:slots"), call_id)).await?;
                Ok(())
            }
            LiveStore::Embedded(m) => {
                m.lock().slots.remove(call_id);
                Ok(())
            }
        }
    }

    pub async fn append_transcript(&self, call_id: &str, line_json: &str) -> Result<(), LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let list = key("transcript", call_id);
                let _: () =
                    bounded(redis::pipe().rpush(&list, line_json).expire(&list, KEEP_SECONDS).query_async(&mut c))
                        .await?;
                Ok(())
            }
            LiveStore::Embedded(m) => {
                m.lock().transcripts.entry(call_id.to_owned()).or_default().push(line_json.to_owned());
                Ok(())
            }
        }
    }

    pub async fn transcript(&self, call_id: &str) -> Result<Vec<String>, LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                Ok(bounded(c.lrange(key("transcript", call_id), 0, -1)).await?)
            }
            LiveStore::Embedded(m) => Ok(m.lock().transcripts.get(call_id).cloned().unwrap_or_default()),
        }
    }

    /// Records that this call is being carried, so a survivor can finish it if the
    /// carrier dies. `registration` is JSON the sweeper understands.
    pub async fn register_call(&self, call_id: &str, registration: &str) -> Result<(), LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let _: i64 = bounded(c.hset(format!("{PREFIX}:calls"), call_id, registration)).await?;
                Ok(())
            }
            LiveStore::Embedded(m) => {
                m.lock().calls.insert(call_id.to_owned(), registration.to_owned());
                Ok(())
            }
        }
    }

    /// The call ended (or was finished by a survivor). Only removes `registration`
    /// itself: a newer stream's registration for the same call stays.
    pub async fn unregister_call(&self, call_id: &str, registration: &str) -> Result<(), LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let script = Script::new(UNREGISTER_IF_SAME);
                let _: i32 =
                    bounded(script.key(format!("{PREFIX}:calls")).arg(call_id).arg(registration).invoke_async(&mut c))
                        .await?;
                Ok(())
            }
            LiveStore::Embedded(m) => {
                let mut state = m.lock();
                if state.calls.get(call_id).is_some_and(|r| r == registration) {
                    state.calls.remove(call_id);
                }
                Ok(())
            }
        }
    }

    /// Every registered call: (call id, registration JSON).
    pub async fn registered_calls(&self) -> Result<Vec<(String, String)>, LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                Ok(bounded(c.hgetall(format!("{PREFIX}:calls"))).await?)
            }
            LiveStore::Embedded(m) => Ok(m.lock().calls.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        }
    }

    /// Keeps an event until the edge has accepted it.
    pub async fn outbox_put(&self, call_id: &str, event_id: &str, event_json: &str) -> Result<(), LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let hash = key("outbox", call_id);
                let _: () = bounded(
                    redis::pipe()
                        .hset(&hash, event_id, event_json)
                        .expire(&hash, KEEP_SECONDS)
                        .sadd(format!("{PREFIX}:outbox-calls"), call_id)
                        .query_async(&mut c),
                )
                .await?;
                Ok(())
            }
            LiveStore::Embedded(m) => {
                m.lock()
                    .outbox
                    .entry(call_id.to_owned())
                    .or_default()
                    .insert(event_id.to_owned(), event_json.to_owned());
                Ok(())
            }
        }
    }

    /// One stored event, if the store has it.
    pub async fn outbox_get(&self, call_id: &str, event_id: &str) -> Result<Option<String>, LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                Ok(bounded(c.hget(key("outbox", call_id), event_id)).await?)
            }
            LiveStore::Embedded(m) => Ok(m.lock().outbox.get(call_id).and_then(|events| events.get(event_id)).cloned()),
        }
    }

    /// The edge accepted the event.
    pub async fn outbox_remove(&self, call_id: &str, event_id: &str) -> Result<(), LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let hash = key("outbox", call_id);
                let (_, left): (i64, i64) =
                    bounded(redis::pipe().hdel(&hash, event_id).hlen(&hash).query_async(&mut c)).await?;
                if left == 0 {
                    let _: i64 = bounded(c.srem(format!("{PREFIX}:outbox-calls"), call_id)).await?;
                }
                Ok(())
            }
            LiveStore::Embedded(m) => {
                let mut state = m.lock();
                if let Some(events) = state.outbox.get_mut(call_id) {
                    events.remove(event_id);
                    if events.is_empty() {
                        state.outbox.remove(call_id);
                    }
                }
                Ok(())
            }
        }
    }

    /// Calls with undelivered events, and those events (id → JSON).
    pub async fn outbox_pending(&self) -> Result<Vec<(String, Vec<(String, String)>)>, LiveStoreError> {
        match self {
            LiveStore::Redis(r) => {
                let mut c = r.connection.clone();
                let calls: Vec<String> = bounded(c.smembers(format!("{PREFIX}:outbox-calls"))).await?;
                let mut pending = Vec::new();
                for call_id in calls {
                    let events: Vec<(String, String)> = bounded(c.hgetall(key("outbox", &call_id))).await?;
                    pending.push((call_id, events));
                }
                Ok(pending)
            }
            LiveStore::Embedded(m) => Ok(m
                .lock()
                .outbox
                .iter()
                .map(|(call, events)| (call.clone(), events.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
                .collect()),
        }
    }
}

impl EmbeddedStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, EmbeddedState> {
        // A poisoned lock only means another task panicked mid-update; the maps stay usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_embedded_store_gives_a_calls_stream_to_one_connection_until_the_claim_lapses() {
        let store = LiveStore::memory();
        assert!(store.claim_stream("call_1", "worker-a/1/0", 10, 0).await.unwrap());
        assert!(store.claim_stream("call_1", "worker-a/1/0", 10, 1_000).await.unwrap(), "the holder again");
        assert!(!store.claim_stream("call_1", "worker-b/1/0", 10, 9_999).await.unwrap(), "anyone else: no");
        assert!(store.claim_stream("call_2", "worker-b/1/0", 10, 9_999).await.unwrap(), "per call");
        assert!(store.claim_stream("call_1", "worker-b/1/0", 10, 10_000).await.unwrap(), "lapsed with its token");
    }

    #[tokio::test]
    async fn a_taken_over_stream_finds_the_tombstone_and_steps_aside() {
        let store = LiveStore::memory();
        store.claim_session("call_1", "old", 15, 0).await.unwrap();
        assert_eq!(store.claim_session("call_1", "new", 15, 1).await.unwrap().as_deref(), Some("old"));
        store.release_session("call_1", "new").await.unwrap();
        assert_eq!(store.renew_session("call_1", "old", 15, 2).await.unwrap(), Renewal::TakenOver);
        assert!(!store.session_alive("call_1", 2).await.unwrap());
    }
}
