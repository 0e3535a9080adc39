//! The completion webhook's signature, and each tenant's signing secret.
//!
//! Every API key has its own webhook secret, configured beside it (`API_KEYS` entries
//! `key:whsec_…`), so a user verifies webhooks with a secret that signs nothing else.
//! The header and the signed text differ from the internal requests' on purpose
//! ([`crate::auth`]): a delivered webhook sent back to an internal route fails that
//! route's check by its form alone, whatever the secrets.
//!
//! `Concierge-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//!
//! To verify: split the header at `,` and `=`, compute the HMAC of `t`, a `.` and the
//! raw body bytes with your secret, compare in constant time with any `v1`, and refuse a
//! `t` more than [`TOLERANCE_SECONDS`] from your clock.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const SIGNATURE_HEADER: &str = "Concierge-Signature";
/// How far a webhook's `t` may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 300;
/// Webhook secrets shorter than this are refused at start-up.
pub const SECRET_MIN_CHARS: usize = 24;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSignatureError {
    #[error("signature header is missing")]
    Missing,
    #[error("signature header is malformed")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
    #[error("signature time is outside the tolerance")]
    Stale,
}

fn mac(secret: &str, unix: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Concierge-Signature` value for `body` sent at `unix`.
pub fn sign(secret: &str, unix: i64, body: &[u8]) -> String {
    format!("t={unix},v1={}", hex::encode(mac(secret, unix, body).finalize().into_bytes()))
}

/// Checks a `Concierge-Signature` value the way a receiver should.
pub fn verify(secret: &str, header: Option<&str>, body: &[u8], now_unix: i64) -> Result<(), WebhookSignatureError> {
    let header = header.filter(|h| !h.is_empty()).ok_or(WebhookSignatureError::Missing)?;
    let (unix, signatures) = crate::auth::signature_parts(header);
    let unix = unix.ok_or(WebhookSignatureError::Malformed)?;
    let matches = signatures
        .iter()
        .filter_map(|v| hex::decode(v).ok())
        .any(|claimed| mac(secret, unix, body).verify_slice(&claimed).is_ok());
    if !matches {
        return Err(if signatures.is_empty() {
            WebhookSignatureError::Malformed
        } else {
            WebhookSignatureError::Mismatch
        });
    }
    if (now_unix - unix).abs() > TOLERANCE_SECONDS {
        return Err(WebhookSignatureError::Stale);
    }
    Ok(())
}

/// One `API_KEYS` entry: the key, and its webhook secret if one is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyEntry<'a> {
    pub key: &'a str,
    pub webhook_secret: Option<&'a str>,
}

/// The entries of `API_KEYS`: comma-separated `key` or `key:whsec`. A key therefore
/// holds no `,` or `:`.
pub fn key_entries(api_keys: &str) -> impl Iterator<Item = KeyEntry<'_>> {
    api_keys.split(',').map(str::trim).filter(|e| !e.is_empty()).map(|entry| match entry.split_once(':') {
        Some((key, secret)) => KeyEntry { key: key.trim(), webhook_secret: Some(secret.trim()) },
        None => KeyEntry { key: entry, webhook_secret: None },
    })
}

/// Why `API_KEYS` cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyEntriesError {
    #[error("an entry has a webhook secret but no key")]
    SecretWithoutKey,
    #[error("a webhook secret is shorter than {SECRET_MIN_CHARS} characters")]
    ShortSecret,
    #[error("no API key is configured")]
    NoKey,
}

/// Checks `API_KEYS`: at least one key, and every webhook secret long enough.
pub fn check_key_entries(api_keys: &str) -> Result<(), KeyEntriesError> {
    let mut any = false;
    for entry in key_entries(api_keys) {
        any = true;
        if entry.key.is_empty() {
            return Err(KeyEntriesError::SecretWithoutKey);
        }
        if let Some(secret) = entry.webhook_secret {
            if secret.chars().count() < SECRET_MIN_CHARS {
                return Err(KeyEntriesError::ShortSecret);
            }
        }
    }
    if any {
        Ok(())
    } else {
        Err(KeyEntriesError::NoKey)
    }
}

/// The owner id of a key, as stored with its calls: a hash prefix, never the key.
pub fn owner_of(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..16])
}

/// The webhook secret of the key whose owner id is `owner`, if one is configured.
pub fn secret_for_owner<'a>(api_keys: &'a str, owner: &str) -> Option<&'a str> {
    key_entries(api_keys).find(|entry| owner_of(entry.key) == owner).and_then(|entry| entry.webhook_secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_0123456789abcdef01234567";

    #[test]
    fn the_signature_is_the_documented_hmac_of_time_dot_body() {
        let header = sign(SECRET, 1_800_000_000, b"{\"a\":1}");
        let expected = {
            let mut mac = <HmacSha256 as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(b"1800000000.{\"a\":1}");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(header, format!("t=1800000000,v1={expected}"));
    }

    #[test]
    fn verification_checks_secret_body_form_and_time() {
        let body = b"{\"call_id\":\"c1\"}";
        let header = sign(SECRET, 1_000, body);
        assert_eq!(verify(SECRET, Some(&header), body, 1_300), Ok(()));
        assert_eq!(verify(SECRET, Some(&header), body, 700), Ok(()));
        assert_eq!(verify(SECRET, Some(&header), body, 1_301), Err(WebhookSignatureError::Stale));
        assert_eq!(verify("whsec_other", Some(&header), body, 1_000), Err(WebhookSignatureError::Mismatch));
        assert_eq!(verify(SECRET, Some(&header), b"{}", 1_000), Err(WebhookSignatureError::Mismatch));
        assert_eq!(verify(SECRET, None, body, 1_000), Err(WebhookSignatureError::Missing));
        assert_eq!(verify(SECRET, Some("v1=00"), body, 1_000), Err(WebhookSignatureError::Malformed));
        assert_eq!(verify(SECRET, Some("t=1000"), body, 1_000), Err(WebhookSignatureError::Malformed));
        let rotated = format!("t=1000,v1=00,{}", header.split_once(',').unwrap().1);
        assert_eq!(verify(SECRET, Some(&rotated), body, 1_000), Ok(()), "any v1 may match");
    }

    #[test]
    fn the_internal_request_signature_is_not_a_webhook_signature_nor_the_reverse() {
        let body = b"{\"id\":\"e1\"}";
        let internal = crate::auth::sign_request(SECRET, 1_000, "POST", "/internal/calls/c1/events", body);
        assert_eq!(verify(SECRET, Some(&internal), body, 1_000), Err(WebhookSignatureError::Mismatch));
        let webhook = sign(SECRET, 1_000, body);
        let path = "/internal/calls/c1/events";
        assert!(crate::auth::verify_request(SECRET, Some(&webhook), "POST", path, body, 1_000).is_err());
        assert_ne!(SIGNATURE_HEADER.to_ascii_lowercase(), crate::auth::SIGNATURE_HEADER.to_ascii_lowercase());
    }

    #[test]
    fn key_entries_carry_their_webhook_secrets() {
        let keys = format!("key-alpha:{SECRET}, key-beta ,key-gamma : {SECRET}x");
        let entries: Vec<KeyEntry> = key_entries(&keys).collect();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0], KeyEntry { key: "key-alpha", webhook_secret: Some(SECRET) });
        assert_eq!(entries[1], KeyEntry { key: "key-beta", webhook_secret: None });
        assert_eq!(secret_for_owner(&keys, &owner_of("key-alpha")), Some(SECRET));
        assert_eq!(secret_for_owner(&keys, &owner_of("key-beta")), None);
        assert_eq!(secret_for_owner(&keys, &owner_of("key-delta")), None);
        assert!(check_key_entries(&keys).is_ok());
        assert_eq!(check_key_entries("key:short"), Err(KeyEntriesError::ShortSecret));
        assert!(KeyEntriesError::ShortSecret.to_string().contains("shorter"));
        assert!(check_key_entries(&format!(":{SECRET}")).is_err());
        assert!(check_key_entries(" , ").is_err());
    }
}
