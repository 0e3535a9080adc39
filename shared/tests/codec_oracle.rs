//! The codec against CPython `audioop`'s answers for every input (fixtures from
//! scripts/gen-g711-vectors.py), and every backend against the scalar reference.

use shared::codec::mulaw::{self, Backend};

const ENCODE_ALL: &[u8] = include_bytes!("fixtures/g711/ulaw_encode_all.bin");
const DECODE_ALL: &[u8] = include_bytes!("fixtures/g711/ulaw_decode_all.bin");

fn every_sample() -> Vec<i16> {
    (i16::MIN..=i16::MAX).collect()
}

#[test]
fn every_backend_encodes_every_sample_like_the_itu_reference() {
    let samples = every_sample();
    for backend in Backend::available() {
        let mut codes = vec![0u8; samples.len()];
        mulaw::encode_with(backend, &samples, &mut codes).unwrap();
        let first_difference = codes.iter().zip(ENCODE_ALL).position(|(a, b)| a != b);
        assert_eq!(
            first_difference,
            None,
            "{} differs at sample {:?}",
            backend.name(),
            first_difference.map(|i| samples[i])
        );
    }
}

#[test]
fn every_backend_decodes_every_code_like_the_itu_reference() {
    let expected: Vec<i16> = DECODE_ALL.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect();
    let codes: Vec<u8> = (0..=255).collect();
    for backend in Backend::available() {
        let mut linear = vec![0i16; 256];
        mulaw::decode_with(backend, &codes, &mut linear).unwrap();
        assert_eq!(linear, expected, "{}", backend.name());
    }
}

#[test]
fn backends_agree_on_every_length_and_offset() {
    // Tails and unaligned starts exercise the vector/scalar seams.
    let samples: Vec<i16> = (0..300).map(|i| ((i * 7919) % 65536 - 32768) as i16).collect();
    let codes: Vec<u8> = (0..300).map(|i| (i * 131 % 256) as u8).collect();
    for offset in 0..3 {
        for len in 0..(300 - offset) {
            let input = &samples[offset..offset + len];
            let mut reference = vec![0u8; len];
            let mut fast = vec![0u8; len];
            mulaw::encode_with(Backend::Scalar, input, &mut reference).unwrap();
            mulaw::encode(input, &mut fast).unwrap();
            assert_eq!(fast, reference, "encode offset {offset} len {len}");

            let input = &codes[offset..offset + len];
            let mut reference = vec![0i16; len];
            let mut fast = vec![0i16; len];
            mulaw::decode_with(Backend::Scalar, input, &mut reference).unwrap();
            mulaw::decode(input, &mut fast).unwrap();
            assert_eq!(fast, reference, "decode offset {offset} len {len}");
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

    /// The SIMD base64 agrees with the `base64` crate (a scalar reference) on every
    /// length and content: same text out, same bytes back.
    #[test]
    fn simd_base64_matches_the_scalar_reference(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        use base64::Engine;
        let reference = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let mut text = String::new();
        shared::codec::b64::encode_into(&bytes, &mut text);
        proptest::prop_assert_eq!(&text, &reference);
        let mut back = Vec::new();
        shared::codec::b64::decode_into(&reference, &mut back).unwrap();
        proptest::prop_assert_eq!(back, bytes);
    }

    /// On arbitrary text, whatever both accept decodes to the same bytes.
    #[test]
    fn simd_base64_decodes_like_the_scalar_reference(text in "[A-Za-z0-9+/=]{0,64}") {
        use base64::Engine;
        let reference = base64::engine::general_purpose::STANDARD.decode(&text);
        let mut ours = Vec::new();
        if let (Ok(expected), Ok(())) = (reference, shared::codec::b64::decode_into(&text, &mut ours)) {
            proptest::prop_assert_eq!(ours, expected);
        }
    }
}
