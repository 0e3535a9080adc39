//! Standard base64 (RFC 4648 with padding), as both Twilio and OpenAI use for audio,
//! written into buffers the caller keeps between frames. SIMD (AVX2, SSE4.1, NEON,
//! WASM simd128) is chosen at run time by `base64-simd`; a 20 ms PCM16 frame at 24 kHz
//! is 1,280 characters each way, so this is a measurable share of the frame path.

use base64_simd::STANDARD;

/// Malformed base64 from a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid base64 audio: {0}")]
pub struct InvalidBase64(String);

/// Replaces `out` with the decoded bytes, reusing its capacity.
pub fn decode_into(text: &str, out: &mut Vec<u8>) -> Result<(), InvalidBase64> {
    out.clear();
    STANDARD.decode_append(text, out).map_err(|e| InvalidBase64(e.to_string()))
}

/// Replaces `out` with the encoding of `bytes`, reusing its capacity.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    out.clear();
    STANDARD.encode_append(bytes, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_reuses_the_buffers() {
        let mut text = String::with_capacity(64);
        let mut bytes = Vec::with_capacity(64);
        encode_into(&[0xFF, 0x7F, 0x00], &mut text);
        assert_eq!(text, "/38A");
        let capacity = text.capacity();
        encode_into(&[1], &mut text);
        assert_eq!(text, "AQ==");
        assert_eq!(text.capacity(), capacity);
        decode_into("/38A", &mut bytes).unwrap();
        assert_eq!(bytes, [0xFF, 0x7F, 0x00]);
        assert!(decode_into("not base64!", &mut bytes).is_err());
        for bad in ["A", "AB", "ABC", "A===", "AB=A", "####", "AQ==AQ==", "\u{e9}AAA"] {
            assert!(decode_into(bad, &mut bytes).is_err(), "{bad:?}");
        }
        assert_eq!(bytes, [] as [u8; 0], "a failed decode leaves nothing half-written");
    }
}
