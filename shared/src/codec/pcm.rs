//! PCM16 little-endian, the byte order OpenAI's `audio/pcm` uses on the wire, and
//! PCM16 ⇄ `f32` (±1.0), the resampler's sample format.
//!
//! The float conversions run on every sample of every frame. They are plain loops that
//! the compiler vectorizes; on x86_64 with AVX2 the same loops are compiled for AVX2 and
//! chosen at run time (baseline SSE2 has no vector float-to-int rounding that fits).

use super::{check_lengths, LengthMismatch};

/// One full-scale PCM16 step in `f32` terms.
const SCALE: f32 = 32768.0;
/// Adding 1.5 × 2^23 to an `f32` below 2^22 in magnitude rounds it to the nearest
/// integer (ties to even) in plain arithmetic; `f32::round` is a library call.
const ROUNDING: f32 = 12_582_912.0;

/// PCM16 samples to floats in [-1, 1).
pub fn i16_to_f32(samples: &[i16], values: &mut [f32]) -> Result<(), LengthMismatch> {
    check_lengths(samples.len(), samples.len(), values.len())?;
    fastest(i16_to_f32_loop, samples, values);
    Ok(())
}

/// Floats to PCM16, rounded to nearest (ties to even) and saturated; NaN becomes 0.
pub fn f32_to_i16(values: &[f32], samples: &mut [i16]) -> Result<(), LengthMismatch> {
    check_lengths(values.len(), values.len(), samples.len())?;
    fastest(f32_to_i16_loop, values, samples);
    Ok(())
}

/// PCM16 little-endian bytes straight to floats; an odd byte count is an error.
pub fn le_bytes_to_f32(bytes: &[u8], values: &mut [f32]) -> Result<(), LengthMismatch> {
    if bytes.len() % 2 != 0 {
        return Err(LengthMismatch { input: bytes.len(), needed: bytes.len().div_ceil(2), output: values.len() });
    }
    check_lengths(bytes.len(), bytes.len() / 2, values.len())?;
    fastest(le_bytes_to_f32_loop, bytes, values);
    Ok(())
}

/// Runs a conversion loop compiled for AVX2 when the CPU has it, as built otherwise.
fn fastest<I: ?Sized, O: ?Sized>(conversion: impl Fn(&I, &mut O), input: &I, output: &mut O) {
    #[cfg(target_arch = "x86_64")]
    if let Some(avx2) = super::simd::Avx2::detect() {
        return avx2.run(conversion, input, output);
    }
    conversion(input, output)
}

#[inline(always)]
fn i16_to_f32_loop(samples: &[i16], values: &mut [f32]) {
    for (value, &sample) in values.iter_mut().zip(samples) {
        *value = f32::from(sample) * (1.0 / SCALE);
    }
}

#[inline(always)]
fn f32_to_i16_loop(values: &[f32], samples: &mut [i16]) {
    for (sample, &value) in samples.iter_mut().zip(values) {
        let scaled = (value * SCALE).clamp(-SCALE, SCALE - 1.0);
        // After the add, the rounded integer sits in the low mantissa bits (offset by
        // 0x4B40_0000, whose low 16 bits are zero): reading them is a bit cast, which
        // vectorizes, where float-to-int casts do not. NaN's bits read as 0.
        *sample = (scaled + ROUNDING).to_bits() as i16;
    }
}

#[inline(always)]
fn le_bytes_to_f32_loop(bytes: &[u8], values: &mut [f32]) {
    for (value, pair) in values.iter_mut().zip(bytes.chunks_exact(2)) {
        *value = f32::from(i16::from_le_bytes([pair[0], pair[1]])) * (1.0 / SCALE);
    }
}

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

    /// The reference: what the fast loops must equal for every input.
    fn f32_to_i16_reference(value: f32) -> i16 {
        if value.is_nan() {
            return 0;
        }
        (value * SCALE).round_ties_even().clamp(-SCALE, SCALE - 1.0) as i16
    }

    #[test]
    fn floats_round_to_nearest_even_and_saturate() {
        let step = 1.0 / SCALE;
        let values = [
            0.0,
            -0.0,
            0.5 * step,
            1.5 * step,
            2.5 * step,
            -0.5 * step,
            -1.5 * step,
            0.49 * step,
            0.51 * step,
            1.0,
            -1.0,
            2.0,
            -2.0,
            1e30,
            -1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.999_99,
            -0.999_99,
            0.25,
            -0.3,
        ];
        // Long enough for every vector width, with a tail.
        let values: Vec<f32> = values.iter().copied().cycle().take(values.len() * 5).collect();
        let mut fast = vec![0i16; values.len()];
        f32_to_i16(&values, &mut fast).unwrap();
        let expected: Vec<i16> = values.iter().map(|&v| f32_to_i16_reference(v)).collect();
        assert_eq!(fast, expected);
        assert_eq!(&fast[..5], &[0, 0, 0, 2, 2], "ties go to even");
        assert_eq!(&fast[9..14], &[32767, -32768, 32767, -32768, 32767]);
        assert_eq!(fast[17], 0, "NaN is silence");
    }

    #[test]
    fn every_pcm16_sample_survives_the_float_round_trip() {
        let samples: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        let mut values = vec![0f32; samples.len()];
        i16_to_f32(&samples, &mut values).unwrap();
        assert!(values.iter().all(|v| (-1.0..1.0).contains(v)));
        let mut back = vec![0i16; samples.len()];
        f32_to_i16(&values, &mut back).unwrap();
        assert_eq!(back, samples);
        let mut bytes = vec![0u8; samples.len() * 2];
        samples_to_le_bytes(&samples, &mut bytes).unwrap();
        let mut from_bytes = vec![0f32; samples.len()];
        le_bytes_to_f32(&bytes, &mut from_bytes).unwrap();
        assert_eq!(from_bytes, values);
    }

    #[test]
    fn float_conversions_check_lengths() {
        assert!(f32_to_i16(&[0.0; 3], &mut [0; 2]).is_err());
        assert!(i16_to_f32(&[0; 3], &mut [0.0; 4]).is_err());
        assert!(le_bytes_to_f32(&[0; 3], &mut [0.0; 1]).is_err());
        assert!(le_bytes_to_f32(&[0; 4], &mut [0.0; 1]).is_err());
    }

    #[test]
    fn odd_byte_counts_are_refused() {
        let mut out = [0i16; 2];
        assert!(le_bytes_to_samples(&[1, 2, 3], &mut out).is_err());
    }
}
