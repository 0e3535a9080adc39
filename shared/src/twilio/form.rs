//! Form bodies as ordered `(name, value)` pairs: repeated names are legal (Twilio's
//! `StatusCallbackEvent`) and signatures are computed over every pair.

pub type FormPairs = Vec<(String, String)>;

/// Parses a form body. Never fails: invalid percent-escapes are kept literally.
pub fn parse(body: &[u8]) -> FormPairs {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Encodes pairs in the given order.
pub fn encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// The first value of `name`.
pub fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_and_repeats() {
        let body =
            encode([("To", "+15105485525"), ("StatusCallbackEvent", "initiated"), ("StatusCallbackEvent", "ringing")]);
        assert_eq!(body, "To=%2B15105485525&StatusCallbackEvent=initiated&StatusCallbackEvent=ringing");
        let pairs = parse(body.as_bytes());
        assert_eq!(pairs.len(), 3);
        assert_eq!(get(&pairs, "To"), Some("+15105485525"));
        assert_eq!(parse(b"a=%ZZ&b").len(), 2);
    }
}
