//! Read-modify-writes of one stored record run one at a time within this process (or
//! Worker isolate). KV has no compare-and-swap, so two that overlap would each write
//! their own version and one update would be lost: a Twilio status callback and a
//! media-worker event arriving together, a callback arriving while the booking is still
//! saving the dialed call, two bookings with one `Idempotency-Key` both dialing.
//!
//! Across isolates this does not hold: see docs/reliability.md.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use futures_util::lock::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Held while a record is read, changed and written back.
pub type RecordGuard = OwnedMutexGuard<()>;

/// Entries whose lock nobody holds any more are pruned once the map grows past this.
const PRUNE_ABOVE: usize = 256;

static CALL_LOCKS: LazyLock<Mutex<HashMap<String, Weak<AsyncMutex<()>>>>> = LazyLock::new(Default::default);

/// Waits until no other update of the record under `key` is in progress here, and
/// holds others off until the guard is dropped.
pub async fn lock(key: &str) -> RecordGuard {
    let lock = {
        // A poisoned registry only means another thread panicked while inserting;
        // the map itself is still sound.
        let mut locks = CALL_LOCKS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lock) = locks.get(key).and_then(Weak::upgrade) {
            lock
        } else {
            if locks.len() >= PRUNE_ABOVE {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            let lock = Arc::new(AsyncMutex::new(()));
            locks.insert(key.to_owned(), Arc::downgrade(&lock));
            lock
        }
    };
    lock.lock_owned().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_second_update_of_the_same_record_waits_for_the_first() {
        let first = pollster::block_on(lock("call_serial_a"));
        let mut second = pin!(lock("call_serial_a"));
        assert!(poll_once(second.as_mut()).is_pending());
        // Another record is not held up.
        let mut other = pin!(lock("call_serial_b"));
        assert!(poll_once(other.as_mut()).is_ready());
        drop(first);
        assert!(poll_once(second.as_mut()).is_ready());
    }

    #[test]
    fn released_locks_are_pruned() {
        for n in 0..PRUNE_ABOVE * 2 {
            drop(pollster::block_on(lock(&format!("call_prune_{n}"))));
        }
        let size = CALL_LOCKS.lock().map(|locks| locks.len()).unwrap_or(usize::MAX);
        assert!(size <= PRUNE_ABOVE, "{size} entries kept");
    }
}
