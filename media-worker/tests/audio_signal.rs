//! The audio path measured as signal: a 1 kHz tone must come out at 1 kHz, at the
//! same level, without clicks at frame edges, in both directions and both modes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use media_worker::audio::{Inbound, Outbound, FRAME_24K, FRAME_8K};
use shared::codec::mulaw;
use shared::openai::config::AudioMode;

fn tone(rate: f32, hz: f32, amplitude: f32, samples: usize) -> Vec<i16> {
    (0..samples).map(|n| (amplitude * (2.0 * std::f32::consts::PI * hz * n as f32 / rate).sin()) as i16).collect()
}

/// Frequency from zero crossings, RMS level, and the largest jump between samples.
fn measure(samples: &[i16], rate: f32) -> (f32, f32, i32) {
    let crossings = samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    let hz = crossings as f32 / 2.0 / (samples.len() as f32 / rate);
    let rms = (samples.iter().map(|&s| f32::from(s).powi(2)).sum::<f32>() / samples.len() as f32).sqrt();
    let jump = samples.windows(2).map(|w| (i32::from(w[1]) - i32::from(w[0])).abs()).max().unwrap_or(0);
    (hz, rms, jump)
}

fn mulaw_b64(samples: &[i16]) -> String {
    let mut codes = vec![0u8; samples.len()];
    mulaw::encode(samples, &mut codes).unwrap();
    STANDARD.encode(codes)
}

fn pcm16_from_b64(text: &str) -> Vec<i16> {
    STANDARD.decode(text).unwrap().chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect()
}

fn mulaw_from_b64(text: &str) -> Vec<i16> {
    let codes = STANDARD.decode(text).unwrap();
    let mut linear = vec![0i16; codes.len()];
    mulaw::decode(&codes, &mut linear).unwrap();
    linear
}

#[test]
fn inbound_tone_arrives_at_24k_with_its_pitch_and_level() {
    let mut inbound = Inbound::new(AudioMode::Pcm24k).unwrap();
    let input = tone(8_000.0, 1_000.0, 12_000.0, 50 * FRAME_8K); // one second
    let mut output = Vec::new();
    for frame in input.chunks(FRAME_8K) {
        let appended = inbound.push(&mulaw_b64(frame)).unwrap().expect("a whole frame gives audio");
        let samples = pcm16_from_b64(appended);
        assert_eq!(samples.len(), FRAME_24K, "20 ms in, 20 ms out");
        output.extend(samples);
    }
    // Skip the resampler's start-up delay, then measure.
    let steady = &output[4 * FRAME_24K..];
    let (hz, rms, jump) = measure(steady, 24_000.0);
    assert!((hz - 1_000.0).abs() < 15.0, "pitch {hz} Hz");
    let expected_rms = 12_000.0 / 2f32.sqrt();
    assert!((rms / expected_rms - 1.0).abs() < 0.05, "level {rms} vs {expected_rms}");
    // A 1 kHz sine at 24 kHz moves at most 2π·1000/24000·12000 ≈ 3142 per sample.
    assert!(jump < 3_600, "a click of {jump} at a frame edge");
}

#[test]
fn inbound_frames_of_odd_sizes_are_regrouped() {
    let mut inbound = Inbound::new(AudioMode::Pcm24k).unwrap();
    let input = tone(8_000.0, 440.0, 8_000.0, 3 * FRAME_8K);
    assert!(inbound.push(&mulaw_b64(&input[..100])).unwrap().is_none(), "less than a frame: nothing yet");
    let out = inbound.push(&mulaw_b64(&input[100..])).unwrap().map(pcm16_from_b64).unwrap();
    assert_eq!(out.len(), 3 * FRAME_24K, "480 samples in are three whole 160-sample frames");
    assert!(inbound.push("not base64!").is_err());
}

#[test]
fn outbound_deltas_of_any_size_become_20ms_frames_of_the_same_tone() {
    let mut outbound = Outbound::new(AudioMode::Pcm24k).unwrap();
    let input = tone(24_000.0, 1_000.0, 12_000.0, 24_000);
    let bytes: Vec<u8> = input.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut frames = Vec::new();
    // Deltas of awkward sizes, including odd byte counts.
    for chunk in bytes.chunks(1_237) {
        outbound.push(&STANDARD.encode(chunk), |frame| frames.push(frame.to_owned())).unwrap();
    }
    outbound.flush(|frame| frames.push(frame.to_owned())).unwrap();
    assert_eq!(frames.len(), 50, "one second is fifty 20 ms frames");
    let samples: Vec<i16> = frames.iter().flat_map(|f| mulaw_from_b64(f)).collect();
    assert!(frames.iter().all(|f| STANDARD.decode(f).unwrap().len() == FRAME_8K));
    let (hz, rms, jump) = measure(&samples[4 * FRAME_8K..], 8_000.0);
    assert!((hz - 1_000.0).abs() < 15.0, "pitch {hz} Hz");
    let expected_rms = 12_000.0 / 2f32.sqrt();
    assert!((rms / expected_rms - 1.0).abs() < 0.06, "level {rms} vs {expected_rms}");
    // At 8 kHz a 1 kHz sine moves up to 2π/8·12000 ≈ 9425 per sample; mu-law adds a little.
    assert!(jump < 10_500, "a click of {jump}");
}

#[test]
fn passthrough_forwards_mulaw_unchanged_both_ways() {
    let mut inbound = Inbound::new(AudioMode::Passthrough).unwrap();
    let payload = mulaw_b64(&tone(8_000.0, 1_000.0, 8_000.0, FRAME_8K));
    assert_eq!(inbound.push(&payload).unwrap(), Some(payload.as_str()));
    let mut outbound = Outbound::new(AudioMode::Passthrough).unwrap();
    let mut sent = Vec::new();
    outbound.push(&payload, |f| sent.push(f.to_owned())).unwrap();
    assert_eq!(sent, vec![payload]);
    assert!(outbound.push("%%%", |_| {}).is_err());
}

/// Amplitude of `hz` in `samples`: a least-squares fit of a sine and a cosine.
fn amplitude_of(samples: &[i16], rate: f64, hz: f64) -> f64 {
    let (mut ss, mut cc, mut sc, mut ys, mut yc) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (n, &y) in samples.iter().enumerate() {
        let (s, c) = (2.0 * std::f64::consts::PI * hz * n as f64 / rate).sin_cos();
        let y = f64::from(y);
        (ss, cc, sc, ys, yc) = (ss + s * s, cc + c * c, sc + s * c, ys + y * s, yc + y * c);
    }
    let det = ss * cc - sc * sc;
    let (a, b) = ((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
    (a * a + b * b).sqrt()
}

/// The telephone band, 300 to 3,400 Hz, every 100 Hz.
fn telephone_band() -> impl Iterator<Item = f64> {
    (3..=34).map(|hundreds| f64::from(hundreds) * 100.0)
}

fn inbound_pcm(samples: &[i16]) -> Vec<i16> {
    let mut inbound = Inbound::new(AudioMode::Pcm24k).unwrap();
    samples
        .chunks(FRAME_8K)
        .flat_map(|frame| pcm16_from_b64(inbound.push(&mulaw_b64(frame)).unwrap().unwrap()))
        .collect()
}

fn outbound_pcm(samples: &[i16]) -> Vec<i16> {
    let mut outbound = Outbound::new(AudioMode::Pcm24k).unwrap();
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = Vec::new();
    for delta in bytes.chunks(2 * FRAME_24K) {
        outbound.push(&STANDARD.encode(delta), |frame| out.extend(mulaw_from_b64(frame))).unwrap();
    }
    out
}

#[test]
fn the_telephone_band_passes_flat_both_ways() {
    for hz in telephone_band() {
        let input = tone(8_000.0, hz as f32, 12_000.0, 25 * FRAME_8K);
        let gain = amplitude_of(&inbound_pcm(&input)[5 * FRAME_24K..], 24_000.0, hz) / 12_000.0;
        let db = 20.0 * gain.log10();
        assert!(db.abs() <= 0.5, "toward OpenAI, {hz} Hz comes out at {db:+.2} dB");

        let input = tone(24_000.0, hz as f32, 12_000.0, 25 * FRAME_24K);
        let gain = amplitude_of(&outbound_pcm(&input)[5 * FRAME_8K..], 8_000.0, hz) / 12_000.0;
        let db = 20.0 * gain.log10();
        assert!(db.abs() <= 0.5, "toward Twilio, {hz} Hz comes out at {db:+.2} dB");
    }
}

/// Where the loudest sample of `output` is, relative to where the click went in, in ms.
fn click_delay_ms(input_at: usize, input_rate: f64, output: &[i16], output_rate: f64) -> f64 {
    let peak = output.iter().enumerate().max_by_key(|(_, s)| s.unsigned_abs()).map_or(0, |(n, _)| n);
    (peak as f64 / output_rate - input_at as f64 / input_rate) * 1000.0
}

#[test]
fn the_resamplers_delay_audio_at_most_3ms_each_way() {
    // A click in the middle of the sixth frame.
    let at_8k = 5 * FRAME_8K + FRAME_8K / 2;
    let mut input = vec![0i16; 12 * FRAME_8K];
    input[at_8k] = 20_000;
    let delay = click_delay_ms(at_8k, 8_000.0, &inbound_pcm(&input), 24_000.0);
    assert!((0.0..=3.0).contains(&delay), "toward OpenAI: {delay:.2} ms");

    let at_24k = 5 * FRAME_24K + FRAME_24K / 2;
    let mut input = vec![0i16; 12 * FRAME_24K];
    input[at_24k] = 20_000;
    let delay = click_delay_ms(at_24k, 24_000.0, &outbound_pcm(&input), 8_000.0);
    assert!((0.0..=3.0).contains(&delay), "toward Twilio: {delay:.2} ms");
}
