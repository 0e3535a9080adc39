//! What must happen once, however often it is asked for and however the asks overlap:
//! a booking under one `Idempotency-Key` dials once ([`decide`], [`settle`]). (A call's
//! stream token is minted once by the call's own writer, `keeper.rs`.) Sans-IO: each rule takes the stored entry
//! and returns the answer and the [`Write`] to make. The store applies it atomically:
//! under its lock in memory, and in the key's own Durable Object in a Worker (one
//! instance per key, one request at a time, strongly consistent storage), so two
//! isolates, or two Cloudflare locations, cannot both go ahead.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How long a claim stays with a request that is dialing. A request the runtime
/// abandons mid-booking holds its key at most this long; then a retry may book.
pub const CLAIM_SECONDS: i64 = 30;

/// What the store keeps per key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Entry {
    /// A request is booking with this key now.
    Claimed { request_hash: String, until: DateTime<Utc> },
    /// The key made this call.
    Bound { request_hash: String, call_id: String },
}

/// The answer to a request that presents a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "claim", rename_all = "snake_case")]
pub enum Claim {
    /// The key is this request's: book, then [`settle`] it.
    Granted,
    /// The key already made this call: answer with it.
    Existing { call_id: String },
    /// Another request with the same body is booking now: ask again shortly.
    InProgress,
    /// The key was used with a different request body.
    Mismatch,
}

/// What a rule does to the stored entry; the store carries it out with the read,
/// atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put(Entry),
    Delete,
    Keep,
}

/// The answer for a request with `request_hash` at `now`, and the write.
pub fn decide(stored: Option<&Entry>, request_hash: &str, now: DateTime<Utc>) -> (Claim, Write) {
    let claim = || {
        Write::Put(Entry::Claimed {
            request_hash: request_hash.to_owned(),
            until: now + chrono::Duration::seconds(CLAIM_SECONDS),
        })
    };
    match stored {
        None => (Claim::Granted, claim()),
        Some(Entry::Bound { request_hash: bound, call_id }) if bound == request_hash => {
            (Claim::Existing { call_id: call_id.clone() }, Write::Keep)
        }
        Some(Entry::Claimed { until, .. }) if *until <= now => (Claim::Granted, claim()),
        Some(Entry::Claimed { request_hash: claimed, .. }) if claimed == request_hash => {
            (Claim::InProgress, Write::Keep)
        }
        Some(_) => (Claim::Mismatch, Write::Keep),
    }
}

/// What the edge asks a key's Durable Object (JSON over the stub's `fetch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum KeyCommand {
    /// Answered with a [`Claim`].
    Claim { request_hash: String, now: DateTime<Utc> },
    /// Answered with `null`.
    Settle { request_hash: String, call_id: Option<String> },
}

/// Binds the key to the call it made (`Some`), or gives an unused claim back (`None`):
/// only a claim of this request body, never a bound key.
pub fn settle(stored: Option<&Entry>, request_hash: &str, call_id: Option<&str>) -> ((), Write) {
    let write = match (call_id, stored) {
        (Some(call_id), _) => {
            Write::Put(Entry::Bound { request_hash: request_hash.to_owned(), call_id: call_id.to_owned() })
        }
        (None, Some(Entry::Claimed { request_hash: claimed, .. })) if claimed == request_hash => Write::Delete,
        (None, _) => Write::Keep,
    };
    ((), write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn the_first_request_gets_the_key_and_an_overlapping_one_waits() {
        let (claim, Write::Put(entry)) = decide(None, "h1", at(0)) else { panic!("a claim is stored") };
        assert_eq!(claim, Claim::Granted);
        assert_eq!(entry, Entry::Claimed { request_hash: "h1".into(), until: at(CLAIM_SECONDS) });
        assert_eq!(decide(Some(&entry), "h1", at(1)), (Claim::InProgress, Write::Keep));
        assert_eq!(decide(Some(&entry), "h2", at(1)), (Claim::Mismatch, Write::Keep));
    }

    #[test]
    fn a_bound_key_answers_with_its_call_for_the_same_body_only() {
        let ((), Write::Put(entry)) = settle(None, "h1", Some("call_1")) else { panic!("binding stores") };
        assert_eq!(decide(Some(&entry), "h1", at(5)), (Claim::Existing { call_id: "call_1".into() }, Write::Keep));
        assert_eq!(decide(Some(&entry), "h2", at(5)), (Claim::Mismatch, Write::Keep));
        // Bound is forever (the store expires it), not for CLAIM_SECONDS.
        assert_eq!(decide(Some(&entry), "h1", at(10_000)).0, Claim::Existing { call_id: "call_1".into() });
    }

    #[test]
    fn an_abandoned_claim_passes_to_the_next_request_once_it_lapses() {
        let (_, Write::Put(entry)) = decide(None, "h1", at(0)) else { panic!("a claim is stored") };
        assert_eq!(decide(Some(&entry), "h1", at(CLAIM_SECONDS - 1)).0, Claim::InProgress);
        let (claim, next) = decide(Some(&entry), "h2", at(CLAIM_SECONDS));
        assert_eq!(claim, Claim::Granted);
        assert_eq!(next, Write::Put(Entry::Claimed { request_hash: "h2".into(), until: at(2 * CLAIM_SECONDS) }));
    }

    #[test]
    fn giving_a_claim_back_frees_the_key_but_never_unbinds_it() {
        let (_, Write::Put(claimed)) = decide(None, "h1", at(0)) else { panic!("a claim is stored") };
        assert_eq!(settle(Some(&claimed), "h1", None), ((), Write::Delete));
        assert_eq!(settle(Some(&claimed), "h2", None), ((), Write::Keep), "another body's claim stays");
        let bound = Entry::Bound { request_hash: "h1".into(), call_id: "call_1".into() };
        assert_eq!(settle(Some(&bound), "h1", None), ((), Write::Keep));
        assert_eq!(settle(None, "h1", None), ((), Write::Keep));
    }

    #[test]
    fn entries_and_claims_survive_their_json_form() {
        let entry = Entry::Claimed { request_hash: "h".into(), until: at(3) };
        let text = serde_json::to_string(&entry).expect("serializable");
        assert_eq!(serde_json::from_str::<Entry>(&text).ok(), Some(entry));
        let claim = Claim::Existing { call_id: "call_9".into() };
        let text = serde_json::to_string(&claim).expect("serializable");
        assert_eq!(text, r#"{"claim":"existing","call_id":"call_9"}"#);
        assert_eq!(serde_json::from_str::<Claim>(&text).ok(), Some(claim));
    }
}
