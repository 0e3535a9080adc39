//! Our own credentials (docs/protocol.md, docs/api.md): the media stream token, the signature on
//! internal calls and on the completion webhook, and API keys. All comparisons are
//! constant-time; time is passed in as Unix seconds.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far an internal signature's time may be from ours.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;
pub const SIGNATURE_HEADER: &str = "X-Concierge-Signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("credential is missing")]
    Missing,
    #[error("credential is malformed")]
    Malformed,
    #[error("credential does not match")]
    Mismatch,
    #[error("credential has expired")]
    Expired,
    #[error("signature time is too far from now")]
    Stale,
}

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn hmac_matches(secret: &str, message: &str, claimed_hex: &str) -> bool {
    let Ok(claimed) = hex::decode(claimed_hex) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    mac.verify_slice(&claimed).is_ok()
}

/// A list cursor handed to a caller: the store's own cursor (hex) and a MAC binding it
/// to `owner`, so a cursor is only ever what this service gave that key.
/// `{hex(cursor)}.{hex(HMAC-SHA256(secret, "cursor.{owner}.{cursor}"))[..32]}`
pub fn seal_cursor(secret: &str, owner: &str, cursor: &str) -> String {
    let mac = hmac_hex(secret, &format!("cursor.{owner}.{cursor}"));
    format!("{}.{}", hex::encode(cursor), &mac[..32])
}

/// The store's cursor inside a [`seal_cursor`]ed one, if it is genuine and `owner`'s.
pub fn open_cursor(secret: &str, owner: &str, sealed: &str) -> Option<String> {
    let (encoded, claimed) = sealed.split_once('.')?;
    let cursor = String::from_utf8(hex::decode(encoded).ok()?).ok()?;
    let expected = hmac_hex(secret, &format!("cursor.{owner}.{cursor}"));
    // Constant time over the truncated MAC.
    let same = claimed.len() == 32 && bool::from(expected.as_bytes()[..32].ct_eq(claimed.as_bytes()));
    same.then_some(cursor)
}

/// `{expires_unix}.{hex(HMAC-SHA256(secret, "stream.{call_id}.{expires_unix}"))}`
pub fn issue_stream_token(secret: &str, call_id: &str, expires_unix: i64) -> String {
    format!("{expires_unix}.{}", hmac_hex(secret, &format!("stream.{call_id}.{expires_unix}")))
}

/// Accepts a token for `call_id` that has not expired at `now_unix`.
pub fn verify_stream_token(secret: &str, call_id: &str, token: Option<&str>, now_unix: i64) -> Result<(), AuthError> {
    verify_stream_token_until(secret, call_id, token, now_unix).map(|_| ())
}

/// [`verify_stream_token`], returning when the token expires (Unix seconds), so a
/// once-only claim on it can be kept as long as it lives.
pub fn verify_stream_token_until(
    secret: &str,
    call_id: &str,
    token: Option<&str>,
    now_unix: i64,
) -> Result<i64, AuthError> {
    let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
    let (expires, mac) = token.split_once('.').ok_or(AuthError::Malformed)?;
    let expires_unix: i64 = expires.parse().map_err(|_| AuthError::Malformed)?;
    // Check the MAC before the clock, so a forged token never learns about expiry.
    if !hmac_matches(secret, &format!("stream.{call_id}.{expires_unix}"), mac) {
        return Err(AuthError::Mismatch);
    }
    if now_unix > expires_unix {
        return Err(AuthError::Expired);
    }
    Ok(expires_unix)
}

/// `X-Concierge-Signature: t={unix},v1={hex(HMAC-SHA256(secret, "{t}.{METHOD}.{path}.{body}"))}`
pub fn sign_request(secret: &str, unix: i64, method: &str, path: &str, body: &[u8]) -> String {
    format!("t={unix},v1={}", hmac_hex(secret, &signed_text(unix, method, path, body)))
}

fn signed_text(unix: i64, method: &str, path: &str, body: &[u8]) -> String {
    format!("{unix}.{method}.{path}.{}", String::from_utf8_lossy(body))
}

/// Checks an internal request's signature header.
pub fn verify_request(
    secret: &str,
    header: Option<&str>,
    method: &str,
    path: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), AuthError> {
    let header = header.filter(|h| !h.is_empty()).ok_or(AuthError::Missing)?;
    let (unix, signatures) = signature_parts(header);
    let unix = unix.ok_or(AuthError::Malformed)?;
    if signatures.is_empty() {
        return Err(AuthError::Malformed);
    }
    let text = signed_text(unix, method, path, body);
    if !signatures.iter().any(|v| hmac_matches(secret, &text, v)) {
        return Err(AuthError::Mismatch);
    }
    if (now_unix - unix).abs() > SIGNATURE_TOLERANCE_SECONDS {
        return Err(AuthError::Stale);
    }
    Ok(())
}

/// The parts of a `t=<unix>,v1=<hex>[,v1=<hex>…]` signature header (this edge's internal
/// one and the webhooks' share the form): the time, if readable, and every `v1` (several
/// may be sent while a secret is being rotated).
pub fn signature_parts(header: &str) -> (Option<i64>, Vec<&str>) {
    let mut unix = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => unix = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    (unix, signatures)
}

/// Finds which configured key (`API_KEYS`: comma-separated, each maybe followed by
/// `:` and its webhook secret, see [`crate::webhook::key_entries`]) the bearer token
/// is, in time that does not depend on where they differ, and returns its owner id: a
/// hash, so the key itself is never stored next to the calls it made.
pub fn key_owner(configured_keys: &str, authorization: Option<&str>) -> Result<String, AuthError> {
    let presented = authorization
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(AuthError::Missing)?;
    let presented_hash = Sha256::digest(presented.as_bytes());
    let mut found = false;
    for key in crate::webhook::key_entries(configured_keys).map(|entry| entry.key).filter(|k| !k.is_empty()) {
        // Comparing fixed-length hashes hides the keys' lengths too.
        found |= bool::from(Sha256::digest(key.as_bytes()).ct_eq(&presented_hash));
    }
    if found {
        Ok(hex::encode(&presented_hash[..16]))
    } else {
        Err(AuthError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "internal-secret";

    #[test]
    fn stream_token_is_the_contracts_format() {
        let token = issue_stream_token(SECRET, "call_1", 1_800_000_000);
        let (expires, mac) = token.split_once('.').unwrap();
        assert_eq!(expires, "1800000000");
        assert_eq!(mac, hmac_hex(SECRET, "stream.call_1.1800000000"));
        assert_eq!(mac.len(), 64);
    }

    #[test]
    fn stream_tokens_are_checked_for_call_secret_form_and_expiry() {
        let token = issue_stream_token(SECRET, "call_1", 1_000);
        assert_eq!(verify_stream_token(SECRET, "call_1", Some(&token), 999), Ok(()));
        assert_eq!(verify_stream_token(SECRET, "call_1", Some(&token), 1_000), Ok(()));
        assert_eq!(verify_stream_token_until(SECRET, "call_1", Some(&token), 999), Ok(1_000));
        assert_eq!(verify_stream_token(SECRET, "call_1", Some(&token), 1_001), Err(AuthError::Expired));
        assert_eq!(verify_stream_token(SECRET, "call_2", Some(&token), 999), Err(AuthError::Mismatch));
        assert_eq!(verify_stream_token("other", "call_1", Some(&token), 999), Err(AuthError::Mismatch));
        assert_eq!(verify_stream_token(SECRET, "call_1", None, 999), Err(AuthError::Missing));
        assert_eq!(verify_stream_token(SECRET, "call_1", Some("garbage"), 999), Err(AuthError::Malformed));
        let extended = token.replacen("1000.", "9999.", 1);
        assert_eq!(verify_stream_token(SECRET, "call_1", Some(&extended), 999), Err(AuthError::Mismatch));
    }

    #[test]
    fn request_signatures_cover_method_path_body_and_time() {
        let header = sign_request(SECRET, 1_000, "POST", "/internal/calls/c1/events", b"{\"id\":\"e1\"}");
        let ok = |h: &str, m, p, b: &[u8], now| verify_request(SECRET, Some(h), m, p, b, now);
        assert_eq!(ok(&header, "POST", "/internal/calls/c1/events", b"{\"id\":\"e1\"}", 1_200), Ok(()));
        assert_eq!(
            ok(&header, "GET", "/internal/calls/c1/events", b"{\"id\":\"e1\"}", 1_000),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            ok(&header, "POST", "/internal/calls/c2/events", b"{\"id\":\"e1\"}", 1_000),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            ok(&header, "POST", "/internal/calls/c1/events", b"{\"id\":\"e2\"}", 1_000),
            Err(AuthError::Mismatch)
        );
        assert_eq!(ok(&header, "POST", "/internal/calls/c1/events", b"{\"id\":\"e1\"}", 1_301), Err(AuthError::Stale));
        assert_eq!(ok(&header, "POST", "/internal/calls/c1/events", b"{\"id\":\"e1\"}", 699), Err(AuthError::Stale));
        assert_eq!(ok("v1=abc", "POST", "/", b"", 0), Err(AuthError::Malformed));
        assert_eq!(verify_request(SECRET, None, "GET", "/", b"", 0), Err(AuthError::Missing));
    }

    #[test]
    fn api_keys_identify_their_owner_without_revealing_the_key() {
        let keys = "key-alpha, key-beta:whsec_0123456789abcdef01234567";
        let alpha = key_owner(keys, Some("Bearer key-alpha")).unwrap();
        let beta = key_owner(keys, Some("Bearer key-beta")).unwrap();
        assert_ne!(alpha, beta);
        assert!(!alpha.contains("alpha"));
        assert_eq!(alpha, crate::webhook::owner_of("key-alpha"));
        assert_eq!(key_owner(keys, Some("Bearer key-beta:whsec_0123456789abcdef01234567")), Err(AuthError::Mismatch));
        assert_eq!(key_owner(keys, Some("Bearer key-gamma")), Err(AuthError::Mismatch));
        assert_eq!(key_owner(keys, Some("Basic a2V5")), Err(AuthError::Missing));
        assert_eq!(key_owner(keys, None), Err(AuthError::Missing));
        assert_eq!(key_owner("", Some("Bearer ")), Err(AuthError::Missing));
    }
}
