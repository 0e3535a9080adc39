//! In-process implementations of the ports: the store for tests and the native local
//! run, a fixed clock and sequential ids for deterministic tests. Thread-safe, so the
//! native server can share them across tasks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};

use crate::allowance::{self, Admission, Admit, Allowance};
use crate::app::{log_line, Edge};
use crate::idempotency::{self, Claim, Entry, Write};
use crate::keeper::{Change, Keeper, Publication, Reply};
use crate::keys;
use crate::listing::{CallSummary, IndexPage};
use crate::ports::{Arbiters, CallKeepers, Clock, IdSource, Records, StoreError, TwilioApi, WebhookSender};

/// A call past its retention, as [`MemoryStore::expired`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredCall {
    pub call_id: String,
    pub recording_sid: Option<String>,
}

/// A map in memory, with a switch to simulate an outage.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<BTreeMap<String, String>>,
    pub unavailable: AtomicBool,
}

impl MemoryStore {
    fn entries(&self) -> Result<MutexGuard<'_, BTreeMap<String, String>>, StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the store is unavailable".into()));
        }
        // A poisoned lock only means a panic elsewhere mid-update; the map is still whole.
        Ok(self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Every key starting with `prefix` (for tests: what is stored).
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.entries()?.keys().filter(|k| k.starts_with(prefix)).cloned().collect())
    }

    /// What is stored under `key` (for tests).
    pub fn entry(&self, key: &str) -> Option<String> {
        self.entries().ok()?.get(key).cloned()
    }

    /// Simulates an outage (or its end).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }
}

impl Records for MemoryStore {
    async fn record(&self, call_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.entries()?.get(&keys::record(call_id)).cloned())
    }

    /// The cursor is the last key of the page before.
    async fn list_calls(&self, owner: &str, cursor: Option<&str>, limit: u32) -> Result<IndexPage, StoreError> {
        let entries = self.entries()?;
        let prefix = keys::index_prefix(owner);
        let from = cursor.filter(|c| c.starts_with(&prefix)).map_or(prefix.clone(), str::to_owned);
        let mut page = IndexPage::default();
        let mut last = None;
        for (key, text) in entries.range(from..).filter(|(key, _)| Some(key.as_str()) != cursor) {
            if !key.starts_with(&prefix) {
                return Ok(page);
            }
            if page.entries.len() == limit as usize {
                page.cursor = last;
                return Ok(page);
            }
            let summary: CallSummary =
                serde_json::from_str(text).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            page.entries.push(summary);
            last = Some(key.clone());
        }
        Ok(page)
    }
}

impl CallKeepers for MemoryStore {
    async fn change_call(&self, call_id: &str, change: Change, now: DateTime<Utc>) -> Result<Reply, StoreError> {
        let mut entries = self.entries()?;
        let key = keys::keeper(call_id);
        let mut keeper = match entries.get(&key) {
            Some(text) => serde_json::from_str::<Keeper>(text).map_err(|e| StoreError::Unavailable(e.to_string()))?,
            None => Keeper::default(),
        };
        let read_only = matches!(change, Change::Read { .. });
        let reply = keeper.apply(change, now)?;
        if read_only {
            // Listeners poll with reads: nothing changed, nothing to write back.
            return Ok(reply);
        }
        // In memory the read model has no write-rate limit: it follows every change.
        match keeper.publication() {
            Some(Publication::Put { record_key, record, index_key, summary }) => {
                entries.insert(record_key, record);
                entries.insert(
                    index_key,
                    serde_json::to_string(&summary).map_err(|e| StoreError::Unavailable(e.to_string()))?,
                );
            }
            Some(Publication::Remove { record_key, index_key }) => {
                entries.remove(&record_key);
                entries.remove(&index_key);
                entries.remove(&key);
                return Ok(reply);
            }
            None => {}
        }
        keeper.finish_publish(keeper.version);
        keeper.published_at = Some(now);
        if keeper.ledger.is_some() {
            entries.insert(key, serde_json::to_string(&keeper).map_err(|e| StoreError::Unavailable(e.to_string()))?);
        }
        Ok(reply)
    }
}

impl Arbiters for MemoryStore {
    async fn claim_key(&self, key: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        self.update_entry(key, |stored| idempotency::decide(stored, request_hash, now))
    }

    async fn settle_key(&self, key: &str, request_hash: &str, call_id: Option<&str>) -> Result<(), StoreError> {
        self.update_entry(key, |stored| idempotency::settle(stored, request_hash, call_id))
    }

    async fn admit(&self, key: &str, request: &Admit) -> Result<Admission, StoreError> {
        self.update_allowance(key, |state| allowance::admit(state, request))
    }

    async fn release(&self, key: &str, call_id: &str) -> Result<(), StoreError> {
        self.update_allowance(key, |state| allowance::release(state, call_id))
    }

    async fn withdraw(&self, key: &str, request: &Admit) -> Result<(), StoreError> {
        self.update_allowance(key, |state| allowance::withdraw(state, request))
    }
}

impl MemoryStore {
    /// The calls whose keeper wants waking at `now` (a webhook due): what a Worker's
    /// Durable Object alarms do, the native server's timer asks for here.
    pub fn calls_due(&self, now: DateTime<Utc>) -> Vec<String> {
        let Ok(entries) = self.entries() else { return Vec::new() };
        let prefix = keys::keeper("");
        entries
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter_map(|(key, text)| {
                let keeper = serde_json::from_str::<Keeper>(text).ok()?;
                let due = keeper.next_wake().is_some_and(|at| at <= now);
                due.then(|| key.trim_start_matches(&prefix).to_owned())
            })
            .collect()
    }

    /// The calls with nothing left to do whose last change is older than `retention`
    /// (`RECORD_RETENTION_DAYS`), with their recordings: what
    /// [`Edge::forget_expired`] forgets, each recording deleted at Twilio first.
    pub fn expired(&self, now: DateTime<Utc>, retention: Duration) -> Vec<ExpiredCall> {
        let Ok(entries) = self.entries() else { return Vec::new() };
        let prefix = keys::keeper("");
        entries
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter_map(|(_, text)| {
                let keeper = serde_json::from_str::<Keeper>(text).ok()?;
                let record = &keeper.ledger.as_ref()?.record;
                let idle = keeper.next_wake().is_none() && record.updated_at + retention <= now;
                idle.then(|| ExpiredCall {
                    call_id: record.call_id.clone(),
                    recording_sid: record.recording.as_ref().map(|r| r.sid.clone()),
                })
            })
            .collect()
    }

    /// Forgets one call: its keeper, record and list entry. Whether it was there.
    pub fn forget(&self, call_id: &str) -> bool {
        let Ok(mut entries) = self.entries() else { return false };
        let Some(keeper) = entries.get(&keys::keeper(call_id)).and_then(|t| serde_json::from_str::<Keeper>(t).ok())
        else {
            return false;
        };
        if let Some(ledger) = &keeper.ledger {
            entries.remove(&keys::index(&ledger.owner, ledger.record.created_at, call_id));
        }
        entries.remove(&keys::record(call_id));
        entries.remove(&keys::keeper(call_id)).is_some()
    }

    /// Applies one of [`allowance`]'s rules to the allowance at `key` under the lock.
    fn update_allowance<R>(&self, key: &str, rule: impl FnOnce(&mut Allowance) -> R) -> Result<R, StoreError> {
        let mut entries = self.entries()?;
        let mut state = match entries.get(key) {
            Some(text) => {
                serde_json::from_str::<Allowance>(text).map_err(|e| StoreError::Unavailable(e.to_string()))?
            }
            None => Allowance::default(),
        };
        let answer = rule(&mut state);
        entries
            .insert(key.to_owned(), serde_json::to_string(&state).map_err(|e| StoreError::Unavailable(e.to_string()))?);
        Ok(answer)
    }

    /// Applies one of [`idempotency`]'s rules to the entry at `key` under the lock.
    fn update_entry<R>(&self, key: &str, rule: impl FnOnce(Option<&Entry>) -> (R, Write)) -> Result<R, StoreError> {
        let mut entries = self.entries()?;
        let stored = match entries.get(key) {
            Some(text) => {
                Some(serde_json::from_str::<Entry>(text).map_err(|e| StoreError::Unavailable(e.to_string()))?)
            }
            None => None,
        };
        let (answer, write) = rule(stored.as_ref());
        match write {
            Write::Put(entry) => {
                entries.insert(
                    key.to_owned(),
                    serde_json::to_string(&entry).map_err(|e| StoreError::Unavailable(e.to_string()))?,
                );
            }
            Write::Delete => {
                entries.remove(key);
            }
            Write::Keep => {}
        }
        Ok(answer)
    }
}

impl<T: TwilioApi, W: WebhookSender, C: Clock, I: IdSource> Edge<MemoryStore, T, W, C, I> {
    /// Forgets the calls past `RECORD_RETENTION_DAYS` at `now`, as a Worker's keepers do
    /// on their alarms: a recorded call's audio is deleted at Twilio first, and while
    /// Twilio cannot delete it the call stays (the next round tries again). Returns how
    /// many went.
    pub async fn forget_expired(&self, now: DateTime<Utc>) -> usize {
        let mut forgotten = 0;
        for expired in self.ports.store.expired(now, self.config.record_retention()) {
            if let Some(sid) = &expired.recording_sid {
                if let Err(error) = self.delete_recording(sid).await {
                    let call_id = &expired.call_id;
                    log_line(&serde_json::json!({
                        "call_id": call_id, "recording_delete": "failed", "error": error.to_string()
                    }));
                    continue;
                }
            }
            forgotten += usize::from(self.ports.store.forget(&expired.call_id));
        }
        forgotten
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn at(now: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(now))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Time moves only when the test says so: sleeping just lets other tasks run.
    async fn sleep(&self, _duration: std::time::Duration) {
        yield_now().await;
    }
}

/// Lets every other ready task run once before this one goes on.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// `call_0001`, `call_0002`, … for tests.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU32);

impl IdSource for SequentialIds {
    fn call_id(&self) -> String {
        format!("call_{:04}", self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
}
