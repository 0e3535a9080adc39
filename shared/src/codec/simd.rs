//! AVX2 mu-law backend. Same arithmetic as the reference, branch-free:
//! - decode: 16 codes widen to 16-bit lanes; the segment's power of two comes from a
//!   byte shuffle and is applied with one multiply.
//! - encode: the segment is counted with seven compares; the variable right shift of
//!   the mantissa is a high-half multiply by a shuffled power of two.
//!
//! Tails shorter than one vector go through the scalar reference.
//!
//! Also [`Avx2::run`]: the PCM16 ⇄ `f32` loops of [`super::pcm`], compiled again for AVX2.
//!
//! Soundness: the AVX2 code may only run on a CPU that has AVX2. Every entry point here
//! is a method of an [`Avx2`] token, which only [`Avx2::detect`] can make, and only after
//! the CPU said yes (rubato's scheme for its SIMD resamplers), so the safe methods cannot
//! be reached otherwise; they also check the lengths the raw loops rely on. This is the
//! crate's one place with `unsafe`.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::mulaw::{decode_scalar, encode_scalar};

/// Proof that this CPU has AVX2: [`Avx2::detect`] is the only way to make one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2 {
    _detected: (),
}

impl Avx2 {
    /// The token, if the CPU has AVX2.
    pub(crate) fn detect() -> Option<Avx2> {
        std::is_x86_feature_detected!("avx2").then_some(Avx2 { _detected: () })
    }

    /// Decodes `mulaw` into `linear`.
    ///
    /// # Panics
    /// If the lengths differ (the public entry points check them first).
    pub(crate) fn decode(self, mulaw: &[u8], linear: &mut [i16]) {
        assert_eq!(mulaw.len(), linear.len(), "mu-law decode: lengths differ");
        // SAFETY: `self` exists only if the CPU has AVX2; the lengths are equal.
        unsafe { decode_avx2(mulaw, linear) }
    }

    /// Encodes `linear` into `mulaw`.
    ///
    /// # Panics
    /// If the lengths differ (the public entry points check them first).
    pub(crate) fn encode(self, linear: &[i16], mulaw: &mut [u8]) {
        assert_eq!(mulaw.len(), linear.len(), "mu-law encode: lengths differ");
        // SAFETY: `self` exists only if the CPU has AVX2; the lengths are equal.
        unsafe { encode_avx2(linear, mulaw) }
    }

    /// Runs `conversion` (one of [`super::pcm`]'s `#[inline(always)]` loops) inlined
    /// into a function compiled for AVX2, so the loop is vectorized for it.
    pub(crate) fn run<I: ?Sized, O: ?Sized>(self, conversion: impl Fn(&I, &mut O), input: &I, output: &mut O) {
        /// # Safety
        /// The CPU must have AVX2.
        #[target_feature(enable = "avx2")]
        unsafe fn inner<I: ?Sized, O: ?Sized>(conversion: impl Fn(&I, &mut O), input: &I, output: &mut O) {
            conversion(input, output)
        }
        // SAFETY: `self` exists only if the CPU has AVX2.
        unsafe { inner(conversion, input, output) }
    }
}

/// # Safety
/// The CPU must have AVX2, and `linear` must be as long as `mulaw`.
#[target_feature(enable = "avx2")]
unsafe fn decode_avx2(mulaw: &[u8], linear: &mut [i16]) {
    const LANES: usize = 16;
    let blocks = mulaw.len() / LANES;
    // 1 << segment for segment 0..=7, repeated in both 128-bit halves for the shuffle.
    let powers = _mm256_setr_epi8(
        1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0, //
        1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0,
    );
    let all_ones_byte = _mm256_set1_epi16(0xFF);
    let mantissa_mask = _mm256_set1_epi16(0x0F);
    let segment_mask = _mm256_set1_epi16(0x07);
    let sign_bit = _mm256_set1_epi16(0x80);
    let bias = _mm256_set1_epi16(0x84);
    // High byte 0x80 makes the shuffle write zero there: the power lands in the low byte.
    let zero_high_byte = _mm256_set1_epi16(0x8000u16 as i16);
    for block in 0..blocks {
        let at = block * LANES;
        // SAFETY: at + 16 <= mulaw.len() because block < mulaw.len() / 16.
        let codes = _mm_loadu_si128(mulaw.as_ptr().add(at).cast());
        let code = _mm256_xor_si256(_mm256_cvtepu8_epi16(codes), all_ones_byte);
        let mantissa = _mm256_slli_epi16(_mm256_and_si256(code, mantissa_mask), 3);
        let segment = _mm256_and_si256(_mm256_srli_epi16(code, 4), segment_mask);
        let power = _mm256_shuffle_epi8(powers, _mm256_or_si256(segment, zero_high_byte));
        let magnitude = _mm256_mullo_epi16(_mm256_add_epi16(mantissa, bias), power);
        let positive = _mm256_sub_epi16(magnitude, bias);
        let negative = _mm256_sub_epi16(bias, magnitude);
        let is_negative = _mm256_cmpeq_epi16(_mm256_and_si256(code, sign_bit), sign_bit);
        let sample = _mm256_blendv_epi8(positive, negative, is_negative);
        // SAFETY: linear has the same length as mulaw, so at + 16 is in bounds.
        _mm256_storeu_si256(linear.as_mut_ptr().add(at).cast(), sample);
    }
    let done = blocks * LANES;
    decode_scalar(&mulaw[done..], &mut linear[done..]);
}

/// # Safety
/// The CPU must have AVX2, and `mulaw` must be as long as `linear`.
#[target_feature(enable = "avx2")]
unsafe fn encode_avx2(linear: &[i16], mulaw: &mut [u8]) {
    const LANES: usize = 32;
    let blocks = linear.len() / LANES;
    for block in 0..blocks {
        let at = block * LANES;
        // SAFETY: at + 32 <= linear.len() because block < linear.len() / 32.
        let low = _mm256_loadu_si256(linear.as_ptr().add(at).cast());
        let high = _mm256_loadu_si256(linear.as_ptr().add(at + 16).cast());
        let codes = _mm256_packus_epi16(encode_16(low), encode_16(high));
        // packus interleaves 128-bit halves; put the four quarters back in order.
        let codes = _mm256_permute4x64_epi64(codes, 0b11_01_10_00);
        // SAFETY: mulaw has the same length as linear, so at + 32 is in bounds.
        _mm256_storeu_si256(mulaw.as_mut_ptr().add(at).cast(), codes);
    }
    let done = blocks * LANES;
    encode_scalar(&linear[done..], &mut mulaw[done..]);
}

/// Sixteen samples to sixteen codes, one code per 16-bit lane.
///
/// # Safety
/// The CPU must have AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn encode_16(samples: __m256i) -> __m256i {
    // 2^(15 - segment) in the high byte of each lane, for the mantissa's shift.
    let shift_multipliers = _mm256_setr_epi8(
        -128, 64, 32, 16, 8, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, //
        -128, 64, 32, 16, 8, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0,
    );
    let fourteen_bit = _mm256_srai_epi16(samples, 2);
    let is_negative = _mm256_cmpgt_epi16(_mm256_setzero_si256(), fourteen_bit);
    // |v| + 33, at most 8192 + 33, clamped to the top of the last segment: the
    // reference's "out of range" answer equals the last segment's loudest code.
    let magnitude = _mm256_add_epi16(_mm256_abs_epi16(fourteen_bit), _mm256_set1_epi16(33));
    let magnitude = _mm256_min_epi16(magnitude, _mm256_set1_epi16(0x1FFF));
    // segment = how many segment ends the magnitude lies above (compares give -1).
    let mut segment = _mm256_setzero_si256();
    for end in [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF] {
        segment = _mm256_sub_epi16(segment, _mm256_cmpgt_epi16(magnitude, _mm256_set1_epi16(end)));
    }
    // Shuffle index: low byte 0x80 (writes zero), high byte the segment.
    let index = _mm256_or_si256(_mm256_slli_epi16(segment, 8), _mm256_set1_epi16(0x0080));
    let multiplier = _mm256_shuffle_epi8(shift_multipliers, index);
    // magnitude * 2^(15 - segment) >> 16 == magnitude >> (segment + 1)
    let mantissa = _mm256_and_si256(_mm256_mulhi_epu16(magnitude, multiplier), _mm256_set1_epi16(0x0F));
    let code = _mm256_or_si256(_mm256_slli_epi16(segment, 4), mantissa);
    let invert = _mm256_blendv_epi8(_mm256_set1_epi16(0xFF), _mm256_set1_epi16(0x7F), is_negative);
    _mm256_xor_si256(code, invert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_checks_the_lengths_the_raw_loops_rely_on() {
        let Some(avx2) = Avx2::detect() else { return };
        let short_output = std::panic::catch_unwind(|| avx2.decode(&[0xFF; 40], &mut [0i16; 39]));
        assert!(short_output.is_err());
        let short_output = std::panic::catch_unwind(|| avx2.encode(&[0i16; 40], &mut [0u8; 32]));
        assert!(short_output.is_err());
        let mut linear = [0i16; 40];
        avx2.decode(&[0xFF; 40], &mut linear);
        assert_eq!(linear, [0i16; 40], "0xFF is mu-law's zero");
    }
}
