//! PCM16 little-endian, the byte order OpenAI's `audio/pcm` uses on the wire.

use super::{check_lengths, LengthMismatch};

/// Packs samples as little-endian bytes; `bytes` must be twice as long as `samples`.
pub fn samples_to_le_bytes(samples: &[i16], bytes: &mut [u8]) -> Result<(), LengthMismatch> {
    check_lengths(samples.len(), samples.len() * 2, bytes.len())?;
    for (pair, sample) in bytes.chunks_exact_mut(2).zip(samples) {
        pair.copy_from_slice(&sample.to_le_bytes());
    }
    Ok(())
}

/// Unpacks little-endian bytes; an odd trailing byte is an error, not silently dropped.
pub fn le_bytes_to_samples(bytes: &[u8], samples: &mut [i16]) -> Result<(), LengthMismatch> {
    if bytes.len() % 2 != 0 {
        return Err(LengthMismatch { input: bytes.len(), needed: bytes.len().div_ceil(2), output: samples.len() });
    }
    check_lengths(bytes.len(), bytes.len() / 2, samples.len())?;
    for (sample, pair) in samples.iter_mut().zip(bytes.chunks_exact(2)) {
        *sample = i16::from_le_bytes([pair[0], pair[1]]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_little_endian() {
        let samples = [0i16, 1, -1, i16::MAX, i16::MIN, 0x1234];
        let mut bytes = [0u8; 12];
        samples_to_le_bytes(&samples, &mut bytes).unwrap();
        assert_eq!(&bytes[10..], &[0x34, 0x12]);
        assert_eq!(&bytes[2..6], &[1, 0, 0xFF, 0xFF]);
        let mut back = [0i16; 6];
        le_bytes_to_samples(&bytes, &mut back).unwrap();
        assert_eq!(back, samples);
    }

    #[test]
    fn odd_byte_counts_are_refused() {
        let mut out = [0i16; 2];
        assert!(le_bytes_to_samples(&[1, 2, 3], &mut out).is_err());
    }
}
