//! A `callback_url` that cannot reach inside: the edge POSTs the final record there, so
//! a URL naming a loopback, private, link-local, CGNAT, unique-local or metadata
//! address would let any API key make the edge send requests into its own network
//! (SSRF). Sans-IO: this checks the text in every spelling an HTTP client would
//! accept for such an address; names that *resolve* to one are checked where the
//! request is sent (the native sender resolves and refuses private answers; the
//! Worker's `fetch` cannot reach private networks at all).
//!
//! Refused: any scheme but `https` (plain `http` and loopback only when the deployment
//! allows insecure callbacks, for local development); credentials (`user@`); a
//! percent-encoded, non-ASCII or backslashed authority; IPv4 literals in every form
//! a URL parser accepts (decimal `2130706433`, hex `0x7f000001`, octal `0177.0.0.1`,
//! short `127.1`) and IPv6 literals (`[::1]`, IPv4-mapped `[::ffff:127.0.0.1]`) in a
//! non-public range; single-label names, `localhost`, `*.localhost`, `*.internal`
//! (`metadata.google.internal`), `*.local`, `*.localdomain`, `*.home.arpa`; a trailing
//! dot does not hide any of them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a callback URL is refused; the message is shown to the user after `callback_url`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackUrlError {
    #[error("must be an absolute https:// URL")]
    NotHttps,
    #[error("must be plain ASCII without spaces, control characters or backslashes (percent-encode the path)")]
    BadCharacters,
    #[error("must not carry credentials (user:password@)")]
    Credentials,
    #[error("must name a host")]
    NoHost,
    #[error("has a malformed host or port")]
    MalformedHost,
    #[error("names an address inside a private, loopback, link-local or reserved network")]
    PrivateAddress,
    #[error("names a host that is not a public domain name (localhost, internal or single-label names)")]
    PrivateName,
}

/// The host a checked URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A lowercase domain name without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

/// A callback URL that passed [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl {
    pub https: bool,
    pub host: Host,
    pub port: Option<u16>,
    /// From the first `/`, `?` or `#` after the authority; `/` if none.
    pub path_and_query: String,
}

/// Checks `url`. `allow_insecure` (local development only) also lets through plain
/// `http` and loopback hosts (`127.0.0.0/8`, `[::1]`, `localhost`); never private ranges.
pub fn check(url: &str, allow_insecure: bool) -> Result<CallbackUrl, CallbackUrlError> {
    if !url.bytes().all(|b| b.is_ascii_graphic()) || url.contains('\\') {
        return Err(CallbackUrlError::BadCharacters);
    }
    let (scheme, rest) = url.split_once("://").ok_or(CallbackUrlError::NotHttps)?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" if allow_insecure => false,
        _ => return Err(CallbackUrlError::NotHttps),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(CallbackUrlError::Credentials);
    }
    if authority.contains('%') {
        return Err(CallbackUrlError::MalformedHost);
    }
    let (host_text, port) = split_port(authority)?;
    let host = parse_host(host_text)?;
    let allowed = match &host {
        Host::Ip(ip) => is_public(*ip) || (allow_insecure && is_loopback(*ip)),
        Host::Name(name) => {
            let loopback_name = name == "localhost" || name.ends_with(".localhost");
            if loopback_name && allow_insecure {
                true
            } else if is_private_name(name) {
                return Err(CallbackUrlError::PrivateName);
            } else {
                true
            }
        }
    };
    if !allowed {
        return Err(CallbackUrlError::PrivateAddress);
    }
    let path_and_query = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
    Ok(CallbackUrl { https, host, port, path_and_query })
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), CallbackUrlError> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let close = inner.find(']').ok_or(CallbackUrlError::MalformedHost)?;
        let after = &inner[close + 1..];
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(CallbackUrlError::MalformedHost)?),
        };
        (&authority[..close + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(digits) => {
            let valid = !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit());
            let number = digits.parse::<u16>().ok().filter(|p| valid && *p != 0);
            Some(number.ok_or(CallbackUrlError::MalformedHost)?)
        }
    };
    if host.is_empty() {
        return Err(CallbackUrlError::NoHost);
    }
    Ok((host, port))
}

fn parse_host(text: &str) -> Result<Host, CallbackUrlError> {
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| CallbackUrlError::MalformedHost);
    }
    let lower = text.to_ascii_lowercase();
    // One trailing dot names the same host (`localhost.`); more is malformed.
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err(CallbackUrlError::NoHost);
    }
    let labels: Vec<&str> = name.split('.').collect();
    // As a URL parser does: a host whose last label is a number is an IPv4 address,
    // whatever else it looks like, or nothing.
    if labels.last().is_some_and(|last| is_number_label(last)) {
        return parse_ipv4_loose(name).map(|ip| Host::Ip(IpAddr::V4(ip))).ok_or(CallbackUrlError::MalformedHost);
    }
    let label_ok = |label: &&str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.len() > 253 || !labels.iter().all(label_ok) {
        return Err(CallbackUrlError::MalformedHost);
    }
    Ok(Host::Name(name.to_owned()))
}

/// A label a URL parser reads as a number: decimal digits, or `0x` and hex digits.
fn is_number_label(label: &str) -> bool {
    if let Some(hex) = label.strip_prefix("0x") {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit())
}

/// An IPv4 address in any form `inet_aton` and URL parsers accept: one to four parts,
/// each decimal, octal (leading `0`) or hex (`0x`); the last part fills the remaining bytes.
pub fn parse_ipv4_loose(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        // Digits only: Rust's integer parsing would also take a leading `+`.
        if !part.bytes().all(|b| b.is_ascii_hexdigit() || b == b'x') {
            return None;
        }
        let value = if let Some(hex) = part.strip_prefix("0x") {
            if hex.is_empty() {
                0
            } else {
                u64::from_str_radix(hex, 16).ok()?
            }
        } else if part.len() > 1 && part.starts_with('0') {
            u64::from_str_radix(&part[1..], 8).ok()?
        } else {
            part.parse::<u64>().ok()?
        };
        numbers.push(value);
    }
    let (last, leading) = numbers.split_last()?;
    if leading.iter().any(|n| *n > 255) {
        return None;
    }
    let last_bits = 8 * (5 - numbers.len() as u32);
    if last_bits < 64 && *last >= 1u64 << last_bits {
        return None;
    }
    let mut value: u64 = *last;
    for (i, n) in leading.iter().enumerate() {
        value |= n << (24 - 8 * i as u32);
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn is_private_name(name: &str) -> bool {
    const SUFFIXES: [&str; 6] = [".localhost", ".internal", ".local", ".localdomain", ".home.arpa", ".lan"];
    !name.contains('.') || name == "localhost" || SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

/// True for a loopback address, IPv4-mapped included.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// True for an address on the public Internet: not loopback, private (RFC 1918), CGNAT,
/// link-local (cloud metadata at 169.254.169.254), unique-local, multicast,
/// documentation, benchmarking or reserved; IPv6 forms that carry an IPv4 address
/// (mapped, compatible, NAT64, 6to4, Teredo) count as private rather than be unwrapped.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            let private = v6.is_unspecified()
                || v6.is_loopback()
                || s[0..6] == [0; 6] // IPv4-compatible ::a.b.c.d
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64
                || (s[0] == 0x0100 && s[1..4] == [0; 3]) // discard 100::/64
                || s[0] == 0x2002 // 6to4
                || (s[0] == 0x2001 && s[1] == 0) // Teredo
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] & 0xff00) == 0xff00; // multicast
            !private
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let private = a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2)) // IETF protocol assignments, TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !private
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallbackUrlError::*;

    #[test]
    fn every_spelling_of_an_inside_address_is_refused() {
        let cases: &[(&str, CallbackUrlError)] = &[
            ("http://example.com/hook", NotHttps),
            ("ftp://example.com/hook", NotHttps),
            ("example.com/hook", NotHttps),
            ("https://127.0.0.1/hook", PrivateAddress),
            ("https://127.1/hook", PrivateAddress),
            ("https://2130706433/hook", PrivateAddress),
            ("https://0x7f000001/hook", PrivateAddress),
            ("https://0x7f.0.0.1/hook", PrivateAddress),
            ("https://0177.0.0.1/hook", PrivateAddress),
            ("https://017700000001/hook", PrivateAddress),
            ("https://127.0.0.1./hook", PrivateAddress),
            ("https://0/hook", PrivateAddress),
            ("https://0.0.0.0/hook", PrivateAddress),
            ("https://169.254.169.254/latest/meta-data/", PrivateAddress),
            ("https://2852039166/latest/meta-data/", PrivateAddress),
            ("https://10.0.0.8/hook", PrivateAddress),
            ("https://10.1/hook", PrivateAddress),
            ("https://172.16.0.1/hook", PrivateAddress),
            ("https://172.31.255.255/hook", PrivateAddress),
            ("https://192.168.1.1:8443/hook", PrivateAddress),
            ("https://100.64.0.1/hook", PrivateAddress),
            ("https://100.127.255.254/hook", PrivateAddress),
            ("https://224.0.0.1/hook", PrivateAddress),
            ("https://255.255.255.255/hook", PrivateAddress),
            ("https://[::1]/hook", PrivateAddress),
            ("https://[0:0:0:0:0:0:0:1]:443/hook", PrivateAddress),
            ("https://[::]/hook", PrivateAddress),
            ("https://[::ffff:127.0.0.1]/hook", PrivateAddress),
            ("https://[::ffff:7f00:1]/hook", PrivateAddress),
            ("https://[::ffff:169.254.169.254]/hook", PrivateAddress),
            ("https://[::127.0.0.1]/hook", PrivateAddress),
            ("https://[64:ff9b::a9fe:a9fe]/hook", PrivateAddress),
            ("https://[fd00:ec2::254]/hook", PrivateAddress),
            ("https://[fc00::1]/hook", PrivateAddress),
            ("https://[fe80::1]/hook", PrivateAddress),
            ("https://[fe80::1%25eth0]/hook", MalformedHost),
            ("https://[2002:7f00:1::]/hook", PrivateAddress),
            ("https://localhost/hook", PrivateName),
            ("https://LOCALHOST./hook", PrivateName),
            ("https://api.localhost/hook", PrivateName),
            ("https://metadata.google.internal/computeMetadata/v1/", PrivateName),
            ("https://metadata.google.internal./computeMetadata/v1/", PrivateName),
            ("https://metadata/computeMetadata/v1/", PrivateName),
            ("https://printer.local/hook", PrivateName),
            ("https://router.home.arpa/hook", PrivateName),
            ("https://%6c%6fcalhost/hook", MalformedHost),
            ("https://127.0.0.%31/hook", MalformedHost),
            ("https://user:pass@example.com/hook", Credentials),
            ("https://example.com@127.0.0.1/hook", Credentials),
            ("https://@example.com/hook", Credentials),
            ("https://example.com\\@127.0.0.1/hook", BadCharacters),
            ("https://exa mple.com/hook", BadCharacters),
            ("https://１２７.０.０.１/hook", BadCharacters),
            ("https://example.com/\u{2028}", BadCharacters),
            ("https:///hook", NoHost),
            ("https://:443/hook", NoHost),
            ("https://example.com:0/hook", MalformedHost),
            ("https://example.com:99999/hook", MalformedHost),
            ("https://example.com:80a/hook", MalformedHost),
            ("https://256.0.0.1/hook", MalformedHost),
            ("https://1.2.3.4.5/hook", MalformedHost),
            ("https://0x/hook", PrivateAddress),
            ("https://example..com/hook", MalformedHost),
            ("https://example.com../hook", MalformedHost),
            ("https://-example.com/hook", MalformedHost),
        ];
        for (url, expected) in cases {
            assert_eq!(check(url, false).err().as_ref(), Some(expected), "{url}");
        }
    }

    #[test]
    fn public_hosts_pass_and_keep_their_path() {
        for (url, host, port, path) in [
            ("https://example.com/hooks/concierge?source=x", "example.com", None, "/hooks/concierge?source=x"),
            ("HTTPS://Hooks.Example.COM.:8443", "hooks.example.com", Some(8443), "/"),
            ("https://xn--bcher-kva.example/h#frag", "xn--bcher-kva.example", None, "/h#frag"),
            ("https://10.example.com/h", "10.example.com", None, "/h"),
        ] {
            let checked = check(url, false).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(checked.host, Host::Name(host.into()), "{url}");
            assert_eq!((checked.port, checked.path_and_query.as_str(), checked.https), (port, path, true), "{url}");
        }
        let ip = check("https://93.184.215.14/hook", false).unwrap();
        assert_eq!(ip.host, Host::Ip(IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14))));
        let v6 = check("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook", false).unwrap();
        assert!(matches!(v6.host, Host::Ip(IpAddr::V6(_))));
    }

    #[test]
    fn local_development_allows_http_and_loopback_but_never_private_ranges() {
        for url in ["http://127.0.0.1:8080/hook", "http://localhost:9/h", "http://[::1]:9/h", "http://127.1:9/"] {
            assert!(check(url, true).is_ok(), "{url}");
            assert!(check(url, false).is_err(), "{url}");
        }
        for url in ["http://10.0.0.1/h", "http://169.254.169.254/", "http://[fd00::1]/", "http://user@localhost/"] {
            assert!(check(url, true).is_err(), "{url}");
        }
    }

    #[test]
    fn loose_ipv4_forms_parse_as_url_parsers_read_them() {
        let ip = |a, b, c, d| Some(Ipv4Addr::new(a, b, c, d));
        assert_eq!(parse_ipv4_loose("127.1"), ip(127, 0, 0, 1));
        assert_eq!(parse_ipv4_loose("127.0.1"), ip(127, 0, 0, 1));
        assert_eq!(parse_ipv4_loose("2130706433"), ip(127, 0, 0, 1));
        assert_eq!(parse_ipv4_loose("0x7f000001"), ip(127, 0, 0, 1));
        assert_eq!(parse_ipv4_loose("0300.0250.0.1"), ip(192, 168, 0, 1));
        assert_eq!(parse_ipv4_loose("4294967296"), None);
        assert_eq!(parse_ipv4_loose("127.0.0.256"), None);
        assert_eq!(parse_ipv4_loose("08.0.0.1"), None, "8 is not an octal digit");
        assert_eq!(parse_ipv4_loose("1.+2.3.4"), None);
        assert_eq!(parse_ipv4_loose("0x+7f.0.0.1"), None);
    }
}
