//! Every storage key the edge writes, in one place: the read model in KV, and the names
//! of the Durable Objects (natively, the memory store's entries) that decide things.

use chrono::{DateTime, Utc};

/// A call's published record (KV `CALLS`).
pub fn record(call_id: &str) -> String {
    format!("call:{call_id}")
}

/// Where an API key's calls are listed (KV `CALLS`), newest first.
pub fn index_prefix(owner: &str) -> String {
    format!("calls:{owner}:")
}

/// A call's entry in its key's list: KV lists keys in byte order, so the creation time
/// counts down from a fixed far future and the newest call sorts first.
pub fn index(owner: &str, created_at: DateTime<Utc>, call_id: &str) -> String {
    const FAR_FUTURE_MS: i64 = 9_999_999_999_999; // the year 2286
    let countdown = FAR_FUTURE_MS.saturating_sub(created_at.timestamp_millis()).max(0);
    format!("{}{countdown:013}:{call_id}", index_prefix(owner))
}

/// A call's keeper: in a Worker the call's own Durable Object is named by the call id;
/// the memory store keeps it under this key.
pub fn keeper(call_id: &str) -> String {
    format!("keeper:{call_id}")
}

/// An API key's allowance (an arbiter).
pub fn allowance(owner: &str) -> String {
    format!("allowance:{owner}")
}

/// A number's allowance (an arbiter).
pub fn destination(phone: &str) -> String {
    format!("destination:{phone}")
}

/// An `Idempotency-Key` of an API key (an arbiter), by the key's hash.
pub fn idempotency(owner: &str, key_hash: &str) -> String {
    format!("idem:{owner}:{key_hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_calls_sort_first_in_a_keys_list() {
        let older = index("o", DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(), "call_b");
        let newer = index("o", DateTime::from_timestamp(1_800_000_001, 0).unwrap_or_default(), "call_a");
        assert!(newer < older, "{newer} should sort before {older}");
        assert!(newer.starts_with(&index_prefix("o")));
    }
}
