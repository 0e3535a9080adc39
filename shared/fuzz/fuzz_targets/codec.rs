#![no_main]
//! Arbitrary bytes through every codec backend; the backends must agree.
use libfuzzer_sys::fuzz_target;
use shared::codec::{b64, mulaw, pcm};

fuzz_target!(|data: &[u8]| {
    let mut linear = vec![0i16; data.len()];
    let mut reference = vec![0i16; data.len()];
    let _ = mulaw::decode(data, &mut linear);
    let _ = mulaw::decode_with(mulaw::Backend::Scalar, data, &mut reference);
    assert_eq!(linear, reference);

    let samples: Vec<i16> = data.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect();
    let mut codes = vec![0u8; samples.len()];
    let mut codes_reference = vec![0u8; samples.len()];
    let _ = mulaw::encode(&samples, &mut codes);
    let _ = mulaw::encode_with(mulaw::Backend::Scalar, &samples, &mut codes_reference);
    assert_eq!(codes, codes_reference);

    let mut unpacked = vec![0i16; data.len() / 2];
    let _ = pcm::le_bytes_to_samples(data, &mut unpacked);
    let mut out = Vec::new();
    let _ = b64::decode_into(&String::from_utf8_lossy(data), &mut out);
});
