//! The audio path between Twilio (mu-law, 8 kHz, base64 in JSON) and OpenAI (the
//! session's format), in 20 ms frames. Every buffer is made up front and reused, and
//! the resamplers keep their state across frames, so frame edges do not click.
//!
//! - `pcm24k`: mu-law → PCM16 → 8→24 kHz (rubato) → PCM16 LE → base64, and back.
//! - `passthrough`: Twilio's base64 mu-law goes to OpenAI as `audio/pcmu` unchanged,
//!   and OpenAI's `audio/pcmu` deltas go to Twilio unchanged.

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};
use shared::codec::{b64, mulaw, pcm, LengthMismatch};
use shared::openai::config::AudioMode;

/// Samples in one 20 ms frame at 8 kHz (Twilio) and 24 kHz (OpenAI).
pub const FRAME_8K: usize = 160;
pub const FRAME_24K: usize = 480;

/// How much of OpenAI's socket to read at once in `mode`. The WebSocket library zeroes
/// that much before every read, including the reads that find nothing (the call loop
/// polls the socket on every wake-up): with 8 KiB that zeroing was a quarter of the
/// worker's instructions in `passthrough`, whose deltas (100 ms of mu-law, about
/// 1.2 KiB of JSON) fit in 2 KiB. `pcm24k` deltas are six times larger and keep the
/// full buffer ([`crate::call::OPENAI_READ_BUFFER_BYTES`]),
/// so each still arrives in one read; a larger message only takes more reads. The
/// zeroing is a known, open limitation of the library's `FrameCodec::read_in`
/// (<https://github.com/snapview/tungstenite-rs/issues/547>).
pub fn openai_read_buffer_bytes(mode: AudioMode) -> usize {
    match mode {
        AudioMode::Passthrough => 2 * 1024,
        AudioMode::Pcm24k => crate::call::OPENAI_READ_BUFFER_BYTES,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error(transparent)]
    Base64(#[from] b64::InvalidBase64),
    #[error("resampler: {0}")]
    Resample(String),
    /// Buffers sized for each other that did not fit: a bug, reported rather than a panic.
    #[error(transparent)]
    Buffers(#[from] LengthMismatch),
}

/// Each 20 ms frame is resampled as this many blocks. rubato's FFT resampler delays
/// audio by half a block, and its filter is one block long: 5 ms blocks (40 samples at
/// 8 kHz) delay 2.5 ms each way. With a Hann window that short filter still passes
/// 300–3,400 Hz within -0.26/+0.05 dB; rubato's default window (Blackman-Harris²) would
/// cut 3.4 kHz by 45 dB at this length, and one 20 ms block (rubato 0.16's
/// `FftFixedInOut`) delayed 10 ms. Measured with `examples/resampler_survey.rs`
/// (docs/performance.md); see <https://docs.rs/rubato/5.1.0/rubato/struct.Fft.html#method.new_custom>.
const BLOCKS_PER_FRAME: usize = 4;

/// One channel's resampler with its output buffer: a whole 20 ms frame in, a whole
/// 20 ms frame out (the frame is a whole number of blocks, so nothing is held back).
struct FrameResampler {
    resampler: Fft<f32>,
    out: Vec<f32>,
}

impl FrameResampler {
    fn new(rate_in: usize, rate_out: usize, chunk_in: usize) -> Result<FrameResampler, AudioError> {
        let resampler =
            Fft::new_custom(rate_in, rate_out, chunk_in, BLOCKS_PER_FRAME, 1, WindowFunction::Hann, FixedSync::Input)
                .map_err(|e| AudioError::Resample(e.to_string()))?;
        let out = vec![0.0; resampler.output_frames_max()];
        Ok(FrameResampler { resampler, out })
    }

    /// Resamples one frame; returns the samples written.
    fn process(&mut self, frame: &[f32]) -> Result<&[f32], AudioError> {
        let resample = |e: &dyn std::fmt::Display| AudioError::Resample(e.to_string());
        let input = SequentialSlice::new(frame, 1, frame.len()).map_err(|e| resample(&e))?;
        let frames_out = self.out.len();
        let mut output = SequentialSlice::new_mut(&mut self.out, 1, frames_out).map_err(|e| resample(&e))?;
        let (_, written) = self.resampler.process_into_buffer(&input, &mut output, None).map_err(|e| resample(&e))?;
        Ok(&self.out[..written])
    }

    /// Its algorithmic delay in output samples.
    #[cfg(test)]
    fn delay(&self) -> usize {
        self.resampler.output_delay()
    }
}

/// Twilio → OpenAI.
pub struct Inbound {
    mode: AudioMode,
    resampler: FrameResampler,
    mulaw: Vec<u8>,
    linear: Vec<i16>,
    /// One 8 kHz frame being filled, as the resampler wants it.
    frame: Vec<f32>,
    filled: usize,
    /// One resampled frame as PCM16.
    pcm: Vec<i16>,
    /// PCM16 LE at 24 kHz for the frames completed by this push.
    bytes: Vec<u8>,
    encoded: String,
}

impl Inbound {
    pub fn new(mode: AudioMode) -> Result<Inbound, AudioError> {
        let resampler = FrameResampler::new(8_000, 24_000, FRAME_8K)?;
        Ok(Inbound {
            mode,
            pcm: vec![0; resampler.out.len()],
            resampler,
            mulaw: Vec::with_capacity(4 * FRAME_8K),
            linear: vec![0; 4 * FRAME_8K],
            frame: vec![0.0; FRAME_8K],
            filled: 0,
            bytes: Vec::with_capacity(8 * FRAME_24K),
            encoded: String::with_capacity(16 * FRAME_24K),
        })
    }

    /// Takes one Twilio media payload; returns base64 audio for one
    /// `input_audio_buffer.append`, or `None` while less than a frame is buffered.
    pub fn push(&mut self, payload_b64: &str) -> Result<Option<&str>, AudioError> {
        if self.mode == AudioMode::Passthrough {
            // Validated, so a corrupt payload is reported rather than sent on; copied
            // into the reused buffer (a few hundred bytes, no allocation).
            b64::decode_into(payload_b64, &mut self.mulaw)?;
            self.encoded.clear();
            self.encoded.push_str(payload_b64);
            return Ok(Some(&self.encoded));
        }
        b64::decode_into(payload_b64, &mut self.mulaw)?;
        if self.linear.len() < self.mulaw.len() {
            self.linear.resize(self.mulaw.len(), 0);
        }
        let linear = &mut self.linear[..self.mulaw.len()];
        mulaw::decode(&self.mulaw, linear)?;
        self.bytes.clear();
        let mut rest: &[i16] = linear;
        while !rest.is_empty() {
            // Fill the frame in bulk (a loop the compiler vectorizes), then resample it.
            let take = (FRAME_8K - self.filled).min(rest.len());
            pcm::i16_to_f32(&rest[..take], &mut self.frame[self.filled..self.filled + take])?;
            self.filled += take;
            rest = &rest[take..];
            if self.filled == FRAME_8K {
                self.filled = 0;
                let resampled = self.resampler.process(&self.frame)?;
                let written = resampled.len();
                let samples = &mut self.pcm[..written];
                pcm::f32_to_i16(resampled, samples)?;
                let start = self.bytes.len();
                self.bytes.resize(start + written * 2, 0);
                pcm::samples_to_le_bytes(samples, &mut self.bytes[start..])?;
            }
        }
        if self.bytes.is_empty() {
            return Ok(None);
        }
        b64::encode_into(&self.bytes, &mut self.encoded);
        Ok(Some(&self.encoded))
    }
}

/// OpenAI → Twilio: deltas of any size become 20 ms mu-law frames.
pub struct Outbound {
    mode: AudioMode,
    resampler: FrameResampler,
    decoded: Vec<u8>,
    /// A PCM16 byte left over from a delta of odd length.
    odd_byte: Option<u8>,
    frame: Vec<f32>,
    filled: usize,
    linear: [i16; FRAME_8K],
    mulaw: [u8; FRAME_8K],
    encoded: String,
}

impl Outbound {
    pub fn new(mode: AudioMode) -> Result<Outbound, AudioError> {
        let resampler = FrameResampler::new(24_000, 8_000, FRAME_24K)?;
        Ok(Outbound {
            mode,
            resampler,
            decoded: Vec::with_capacity(16 * FRAME_24K),
            odd_byte: None,
            frame: vec![0.0; FRAME_24K],
            filled: 0,
            linear: [0; FRAME_8K],
            mulaw: [0xFF; FRAME_8K],
            encoded: String::with_capacity(2 * FRAME_8K),
        })
    }

    /// Converts one audio delta, calling `emit` with each finished frame's base64 mu-law.
    pub fn push(&mut self, delta_b64: &str, mut emit: impl FnMut(&str)) -> Result<(), AudioError> {
        if self.mode == AudioMode::Passthrough {
            b64::decode_into(delta_b64, &mut self.decoded)?;
            emit(delta_b64);
            return Ok(());
        }
        b64::decode_into(delta_b64, &mut self.decoded)?;
        // Moved out (not copied) so frames can be finished while reading it.
        let decoded = std::mem::take(&mut self.decoded);
        let result = self.push_bytes(&decoded, &mut emit);
        self.decoded = decoded;
        result
    }

    fn push_bytes(&mut self, mut bytes: &[u8], emit: &mut impl FnMut(&str)) -> Result<(), AudioError> {
        if let (Some(low), Some((&high, rest))) = (self.odd_byte, bytes.split_first()) {
            self.odd_byte = None;
            self.push_sample(i16::from_le_bytes([low, high]), emit)?;
            bytes = rest;
        }
        let remainder = if bytes.len() % 2 == 1 { bytes.last().copied() } else { None };
        let mut pairs = &bytes[..bytes.len() - usize::from(remainder.is_some())];
        while !pairs.is_empty() {
            // Fill the frame in bulk, then resample and encode it.
            let take = (FRAME_24K - self.filled).min(pairs.len() / 2);
            pcm::le_bytes_to_f32(&pairs[..take * 2], &mut self.frame[self.filled..self.filled + take])?;
            self.filled += take;
            pairs = &pairs[take * 2..];
            if self.filled == FRAME_24K {
                self.filled = 0;
                self.finish_frame(emit)?;
            }
        }
        self.odd_byte = remainder;
        Ok(())
    }

    fn push_sample(&mut self, sample: i16, emit: &mut impl FnMut(&str)) -> Result<(), AudioError> {
        self.frame[self.filled] = f32::from(sample) / 32768.0;
        self.filled += 1;
        if self.filled == FRAME_24K {
            self.filled = 0;
            self.finish_frame(emit)?;
        }
        Ok(())
    }

    /// Pads the last partial frame with silence and sends it (end of a reply).
    pub fn flush(&mut self, mut emit: impl FnMut(&str)) -> Result<(), AudioError> {
        if self.mode == AudioMode::Passthrough || self.filled == 0 {
            return Ok(());
        }
        self.frame[self.filled..].fill(0.0);
        self.filled = 0;
        self.finish_frame(&mut emit)
    }

    /// Drops a partial frame (after barge-in, the rest of that reply is never played).
    pub fn discard(&mut self) {
        self.filled = 0;
        self.odd_byte = None;
    }

    fn finish_frame(&mut self, emit: &mut impl FnMut(&str)) -> Result<(), AudioError> {
        let resampled = self.resampler.process(&self.frame)?;
        let written = resampled.len().min(FRAME_8K);
        pcm::f32_to_i16(&resampled[..written], &mut self.linear[..written])?;
        mulaw::encode(&self.linear[..written], &mut self.mulaw[..written])?;
        b64::encode_into(&self.mulaw[..written], &mut self.encoded);
        emit(&self.encoded);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_resampler_delays_2_5_ms_and_keeps_frames_whole() {
        let inbound = Inbound::new(AudioMode::Pcm24k).unwrap();
        // Half a 5 ms block, in output samples: 60 at 24 kHz, 20 at 8 kHz.
        assert_eq!(inbound.resampler.delay(), 60);
        let outbound = Outbound::new(AudioMode::Pcm24k).unwrap();
        assert_eq!(outbound.resampler.delay(), 20);
        let mut up = FrameResampler::new(8_000, 24_000, FRAME_8K).unwrap();
        let mut down = FrameResampler::new(24_000, 8_000, FRAME_24K).unwrap();
        for _ in 0..3 {
            assert_eq!(up.process(&[0.25; FRAME_8K]).unwrap().len(), FRAME_24K);
            assert_eq!(down.process(&[0.25; FRAME_24K]).unwrap().len(), FRAME_8K);
        }
    }

    #[test]
    fn a_100ms_delta_arrives_in_one_read_in_either_mode() {
        for (mode, audio_bytes) in [(AudioMode::Passthrough, 800), (AudioMode::Pcm24k, 4_800)] {
            let mut delta = String::new();
            b64::encode_into(&vec![0u8; audio_bytes], &mut delta);
            let message = format!(
                r#"{{"type":"response.output_audio.delta","event_id":"event_1234567","response_id":"resp_1234567890","item_id":"item_1234567890","output_index":0,"content_index":0,"delta":"{delta}"}}"#
            );
            // The WebSocket frame's header is at most 14 bytes.
            assert!(message.len() + 14 <= openai_read_buffer_bytes(mode), "{mode:?}: {} bytes", message.len());
        }
        assert!(openai_read_buffer_bytes(AudioMode::Passthrough) < openai_read_buffer_bytes(AudioMode::Pcm24k));
    }
}
