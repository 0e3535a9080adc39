//! Audio codecs for the phone leg: G.711 mu-law, PCM16 little-endian packing, and
//! base64 into caller-owned buffers so the per-frame path does not allocate.
//!
//! - [`mulaw`]: the scalar ITU-T G.711 reference (the oracle) and the public
//!   `encode`/`decode` entry points, which pick the fastest backend at run time.
//! - `simd` (x86_64 only): the AVX2 backend of `mulaw` (tested bit for bit against the
//!   reference) and of `pcm`'s float conversions (the same loops, compiled for AVX2).
//! - [`pcm`]: PCM16 little-endian bytes ⇄ `i16` samples ⇄ `f32` (the resampler's format).
//! - [`b64`]: SIMD base64 into reused buffers.
//! - [`dtmf`]: key presses as in-band tone pairs (8 kHz mu-law), for phone menus.

pub mod b64;
pub mod dtmf;
pub mod mulaw;
pub mod pcm;
#[cfg(target_arch = "x86_64")]
mod simd;

/// An input/output pair whose lengths do not fit each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("codec buffers do not match: {input} input samples need {needed} output slots, got {output}")]
pub struct LengthMismatch {
    pub input: usize,
    pub needed: usize,
    pub output: usize,
}

pub(crate) fn check_lengths(input: usize, needed: usize, output: usize) -> Result<(), LengthMismatch> {
    if needed == output {
        Ok(())
    } else {
        Err(LengthMismatch { input, needed, output })
    }
}
