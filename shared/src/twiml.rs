//! TwiML documents the edge serves. Every interpolated value goes through [`escape`].

/// XML-escapes text for both element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The answered call: connect its audio to the media worker. The booking's `language`
/// tag rides along as a stream parameter, so a worker that must refuse the stream (or a
/// survivor finishing it) says its farewell in the call's language without the booking.
pub fn connect_stream(media_ws_url: &str, call_id: &str, token: &str, language: Option<&str>) -> String {
    let language =
        language.map(|tag| format!("<Parameter name=\"language\" value=\"{}\"/>", escape(tag))).unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"{}\"><Parameter name=\"call_id\" value=\"{}\"/><Parameter name=\"token\" value=\"{}\"/>{language}</Stream></Connect></Response>",
        escape(media_ws_url),
        escape(call_id),
        escape(token)
    )
}

/// Hang up at once (a machine answered, or the call was canceled before it connected).
pub fn hang_up() -> String {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Hangup/></Response>".to_owned()
}

/// Say something in `locale` (e.g. `es-ES`), then hang up (used when the voice model
/// is unavailable).
pub fn say_then_hang_up(text: &str, locale: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say language=\"{}\">{}</Say><Hangup/></Response>",
        escape(locale),
        escape(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_twiml_matches_the_golden_file() {
        let twiml = connect_stream("wss://media.example.com/media", "call_01", "1800000000.abcdef", None);
        assert_eq!(twiml, include_str!("../tests/fixtures/twiml/connect_stream.xml").trim_end());
    }

    #[test]
    fn values_are_escaped() {
        let twiml = connect_stream("wss://m.example/media?a=1&b=\"2\"", "<call>", "t'1", None);
        assert!(twiml.contains("url=\"wss://m.example/media?a=1&amp;b=&quot;2&quot;\""));
        assert!(twiml.contains("value=\"&lt;call&gt;\""));
        assert!(twiml.contains("value=\"t&apos;1\""));
        assert_eq!(escape("a\u{0}b\u{1b}c"), "abc");
        assert!(say_then_hang_up("Fish & chips", "en-GB").contains("<Say language=\"en-GB\">Fish &amp; chips</Say>"));
    }

    #[test]
    fn a_bookings_language_is_a_stream_parameter() {
        let twiml = connect_stream("wss://m.example/media", "call_01", "t", Some("es-MX"));
        assert!(
            twiml.contains(
                "<Parameter name=\"token\" value=\"t\"/><Parameter name=\"language\" value=\"es-MX\"/></Stream>"
            ),
            "{twiml}"
        );
        let english = connect_stream("wss://m.example/media", "call_01", "t", None);
        assert!(!english.contains("language"), "{english}");
    }
}
