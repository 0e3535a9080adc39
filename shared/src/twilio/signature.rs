//! `X-Twilio-Signature` (docs/wire-formats.md): HMAC-SHA1 over the full URL followed by
//! every form parameter, sorted by name, as `name value` with no separators.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

type HmacSha1 = Hmac<Sha1>;

/// The signature Twilio would send for this URL and form.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    // HMAC accepts keys of any length.
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    let mut sorted: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Names sorted byte-wise; values of a repeated name sorted and de-duplicated,
    // as Twilio's reference validator does.
    sorted.sort_unstable();
    sorted.dedup();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

fn matches(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(expected) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    // verify_slice compares in constant time.
    mac(auth_token, url, params).verify_slice(&expected).is_ok()
}

/// Checks a form POST (or a GET, with no params). Accepts the URL as given, with its
/// default port stripped, or with it added: Twilio signs either way.
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    url_variants(url).iter().any(|candidate| matches(auth_token, candidate, params, signature))
}

/// Checks a JSON-body request: the URL carries `bodySHA256`, which must match the body.
pub fn validate_json_body(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Some(claimed) = query_param(url, "bodySHA256") else {
        return false;
    };
    let actual = hex::encode(Sha256::digest(body));
    let body_ok: bool = subtle::ConstantTimeEq::ct_eq(actual.as_bytes(), claimed.as_bytes()).into();
    body_ok && validate(auth_token, url, &[], signature)
}

fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The URL as given, without credentials, with the default port removed and added.
fn url_variants(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_owned()];
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let default_port = match scheme {
        "https" | "wss" => "443",
        "http" | "ws" => "80",
        _ => return vec![url.to_owned()],
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => (host, Some(port)),
        _ => (host_port, None),
    };
    let mut variants = vec![format!("{scheme}://{host_port}{tail}")];
    match port {
        Some(port) if port == default_port => variants.push(format!("{scheme}://{host}{tail}")),
        Some(_) => {}
        None => variants.push(format!("{scheme}://{host}:{default_port}{tail}")),
    }
    if !variants.iter().any(|v| v == url) {
        variants.push(url.to_owned());
    }
    variants
}
