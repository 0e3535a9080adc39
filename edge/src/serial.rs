//! Read-modify-writes of one stored record run one at a time within this process (or
//! Worker isolate). KV has no compare-and-swap, so two that overlap would each write
//! their own version and one update would be lost: a Twilio status callback and a
//! media-worker event arriving together, a callback arriving while the booking is still
//! saving the dialed call, two bookings counted against one key's limits at once.
//! (`Idempotency-Key`s need more than this and get it: see `idempotency.rs`.)
//!
//! A holder takes a lease on the key; others poll for it on their own timer. Polling,
//! not a waker: in a Worker, one request must never resume another (workerd cancels a
//! request that waits with nothing of its own pending, and I/O resumed from another
//! request's context fails). The lease expires, so a request the runtime abandoned
//! while holding one blocks the record for at most [`LEASE`].
//!
//! Across isolates this does not hold: see docs/reliability.md.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ports::Clock;

/// Longer than any one handler holds a record (a webhook POST included).
pub const LEASE: Duration = Duration::from_secs(15);
/// How often a waiting request looks again.
pub const POLL: Duration = Duration::from_millis(5);

struct Lease {
    token: u64,
    expires_at: DateTime<Utc>,
}

/// The leases of one process, or of one Worker isolate (shared by its requests).
#[derive(Default)]
pub struct Leases {
    held: Mutex<HashMap<String, Lease>>,
    next_token: AtomicU64,
}

impl Leases {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
        // Poisoning only means another thread panicked mid-insert; the map is still sound.
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The lease on `key` if nobody holds a live one at `now`.
    pub fn try_lock(self: &Arc<Self>, key: &str, now: DateTime<Utc>) -> Option<RecordGuard> {
        let mut held = self.held();
        if held.get(key).is_some_and(|lease| lease.expires_at > now) {
            return None;
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let expires_at = now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::MAX);
        held.insert(key.to_owned(), Lease { token, expires_at });
        Some(RecordGuard { leases: self.clone(), key: key.to_owned(), token })
    }

    /// Waits (on `clock`'s timer) until the lease on `key` is free, and takes it.
    pub async fn lock(self: &Arc<Self>, key: &str, clock: &impl Clock) -> RecordGuard {
        loop {
            if let Some(guard) = self.try_lock(key, clock.now()) {
                return guard;
            }
            clock.sleep(POLL).await;
        }
    }
}

/// Held while a record is read, changed and written back; releases on drop.
pub struct RecordGuard {
    leases: Arc<Leases>,
    key: String,
    token: u64,
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        let mut held = self.leases.held();
        // An expired lease may since have gone to someone else: leave theirs alone.
        if held.get(&self.key).is_some_and(|lease| lease.token == self.token) {
            held.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn a_record_has_one_holder_at_a_time() {
        let leases = Arc::new(Leases::default());
        let first = leases.try_lock("call:serial_a", at(0));
        assert!(first.is_some());
        assert!(leases.try_lock("call:serial_a", at(1)).is_none());
        assert!(leases.try_lock("call:serial_b", at(1)).is_some(), "another record is not held up");
        drop(first);
        assert!(leases.try_lock("call:serial_a", at(1)).is_some());
    }

    #[test]
    fn an_abandoned_lease_expires_and_its_late_release_frees_nothing() {
        let leases = Arc::new(Leases::default());
        let abandoned = leases.try_lock("call:serial_c", at(0));
        assert!(abandoned.is_some());
        assert!(leases.try_lock("call:serial_c", at(14)).is_none());
        let next = leases.try_lock("call:serial_c", at(15));
        assert!(next.is_some(), "taken over once the lease ran out");
        drop(abandoned);
        assert!(leases.try_lock("call:serial_c", at(16)).is_none(), "the new holder keeps it");
        drop(next);
        assert!(leases.try_lock("call:serial_c", at(16)).is_some());
    }
}
