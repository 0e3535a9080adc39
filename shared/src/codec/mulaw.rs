//! G.711 mu-law, bit-exact with the ITU-T reference (Sun's `g711.c`, as in CPython's
//! `audioop`): 16-bit linear PCM is reduced to 14 bits, biased by 33 and coded as a
//! sign, a 3-bit segment and a 4-bit mantissa, all bits inverted.
//!
//! [`encode`] and [`decode`] choose a backend once per call from the CPU's features;
//! [`Backend::Scalar`] is the reference every other backend is tested against.

use super::{check_lengths, LengthMismatch};

/// Bias added to the 14-bit magnitude before segment search (0x84 >> 2).
const BIAS_14: i32 = 0x84 >> 2;
/// Bias of the 16-bit decoder.
const BIAS_16: i16 = 0x84;
/// Upper end of each segment, in 14-bit biased magnitude.
const SEGMENT_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];

/// One implementation of the codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Portable, one sample at a time: the reference.
    Scalar,
    /// x86_64 AVX2, 16 or 32 samples per step.
    Avx2,
}

impl Backend {
    /// The fastest backend this CPU runs.
    pub fn best() -> Backend {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            return Backend::Avx2;
        }
        Backend::Scalar
    }

    /// Every backend this CPU runs, the reference first.
    pub fn available() -> Vec<Backend> {
        let mut all = vec![Backend::Scalar];
        if Backend::best() != Backend::Scalar {
            all.push(Backend::best());
        }
        all
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
        }
    }
}

/// Encodes one 16-bit linear sample, following the reference's segment search.
pub fn encode_sample(linear: i16) -> u8 {
    let mut magnitude = i32::from(linear >> 2);
    let mask: u8 = if magnitude < 0 {
        magnitude = -magnitude;
        0x7F
    } else {
        0xFF
    };
    magnitude += BIAS_14;
    match SEGMENT_END.iter().position(|&end| magnitude <= end) {
        // Above the last segment: the loudest code of this sign.
        None => 0x7F ^ mask,
        Some(segment) => {
            // segment < 8 and magnitude <= 0x1FFF, so both fit a byte.
            let mantissa = ((magnitude >> (segment + 1)) & 0x0F) as u8;
            (((segment as u8) << 4) | mantissa) ^ mask
        }
    }
}

/// Decodes one mu-law byte to 16-bit linear PCM.
pub const fn decode_sample(code: u8) -> i16 {
    let code = !code;
    let mut t = (((code & 0x0F) as i16) << 3) + BIAS_16;
    t <<= (code & 0x70) >> 4;
    if code & 0x80 != 0 {
        BIAS_16 - t
    } else {
        t - BIAS_16
    }
}

/// Every mu-law byte decoded, for the scalar decoder.
static DECODE_TABLE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = decode_sample(code as u8);
        code += 1;
    }
    table
};

/// Encodes `linear` into `mulaw` (same length) with the best backend.
pub fn encode(linear: &[i16], mulaw: &mut [u8]) -> Result<(), LengthMismatch> {
    encode_with(Backend::best(), linear, mulaw)
}

/// Decodes `mulaw` into `linear` (same length) with the best backend.
pub fn decode(mulaw: &[u8], linear: &mut [i16]) -> Result<(), LengthMismatch> {
    decode_with(Backend::best(), mulaw, linear)
}

/// Encodes with a chosen backend; a backend this CPU lacks falls back to the reference.
pub fn encode_with(backend: Backend, linear: &[i16], mulaw: &mut [u8]) -> Result<(), LengthMismatch> {
    check_lengths(linear.len(), linear.len(), mulaw.len())?;
    match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => match super::simd::Avx2::detect() {
            Some(avx2) => avx2.encode(linear, mulaw),
            None => encode_scalar(linear, mulaw),
        },
        _ => encode_scalar(linear, mulaw),
    }
    Ok(())
}

/// Decodes with a chosen backend; a backend this CPU lacks falls back to the reference.
pub fn decode_with(backend: Backend, mulaw: &[u8], linear: &mut [i16]) -> Result<(), LengthMismatch> {
    check_lengths(mulaw.len(), mulaw.len(), linear.len())?;
    match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => match super::simd::Avx2::detect() {
            Some(avx2) => avx2.decode(mulaw, linear),
            None => decode_scalar(mulaw, linear),
        },
        _ => decode_scalar(mulaw, linear),
    }
    Ok(())
}

pub(crate) fn encode_scalar(linear: &[i16], mulaw: &mut [u8]) {
    for (out, &sample) in mulaw.iter_mut().zip(linear) {
        *out = encode_sample(sample);
    }
}

pub(crate) fn decode_scalar(mulaw: &[u8], linear: &mut [i16]) {
    for (out, &code) in linear.iter_mut().zip(mulaw) {
        *out = DECODE_TABLE[usize::from(code)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_points_of_the_curve() {
        assert_eq!(encode_sample(0), 0xFF);
        assert_eq!(encode_sample(-1), 0x7E);
        assert_eq!(encode_sample(i16::MAX), 0x80);
        assert_eq!(encode_sample(i16::MIN), 0x00);
        assert_eq!(decode_sample(0xFF), 0);
        assert_eq!(decode_sample(0x7F), 0);
        assert_eq!(decode_sample(0x80), 32124);
        assert_eq!(decode_sample(0x00), -32124);
    }

    #[test]
    fn decoding_then_encoding_returns_every_code_but_negative_zero() {
        for code in 0..=255u8 {
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(encode_sample(decode_sample(code)), expected, "code {code:#04x}");
        }
    }

    #[test]
    fn mismatched_buffers_are_an_error_not_a_panic() {
        let mut out = [0u8; 3];
        let err = encode(&[1, 2], &mut out).unwrap_err();
        assert_eq!(err, LengthMismatch { input: 2, needed: 2, output: 3 });
        let mut out = [0i16; 1];
        assert!(decode(&[1, 2], &mut out).is_err());
    }
}
