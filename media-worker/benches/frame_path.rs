//! One 20 ms frame each way through the whole media path, as the worker runs it:
//! Twilio JSON in → parse → base64 → mu-law → resample → PCM16 → base64 → OpenAI JSON,
//! and OpenAI JSON in → … → Twilio JSON, for `pcm24k` and `passthrough`.
//! `scripts/bench` runs this next to CPython's audioop doing the same codec and
//! resampling work, so the ratio is visible.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use media_worker::audio::{Inbound, Outbound, FRAME_24K, FRAME_8K};
use media_worker::frames::MessageArena;
use shared::codec::mulaw;
use shared::openai::config::AudioMode;
use shared::openai::events::ServerEvent;
use shared::twilio::stream::StreamMessage;

fn tone(rate: f32, samples: usize) -> Vec<i16> {
    (0..samples).map(|n| (9_000.0 * (2.0 * std::f32::consts::PI * 440.0 * n as f32 / rate).sin()) as i16).collect()
}

fn twilio_frame() -> String {
    let mut codes = [0u8; FRAME_8K];
    mulaw::encode(&tone(8_000.0, FRAME_8K), &mut codes).unwrap();
    // In Twilio's own key order (docs/wire-formats.md).
    format!(
        r#"{{"event":"media","sequenceNumber":"42","media":{{"track":"inbound","chunk":"41","timestamp":"820","payload":"{}"}},"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}}"#,
        STANDARD.encode(codes)
    )
}

fn openai_delta(mode: AudioMode) -> String {
    let audio: Vec<u8> = match mode {
        AudioMode::Pcm24k => tone(24_000.0, FRAME_24K).iter().flat_map(|s| s.to_le_bytes()).collect(),
        AudioMode::Passthrough => {
            let mut codes = vec![0u8; FRAME_8K];
            mulaw::encode(&tone(8_000.0, FRAME_8K), &mut codes).unwrap();
            codes
        }
    };
    // In OpenAI's own key order (`type` first), which the parser's one-pass route reads.
    format!(
        r#"{{"type":"response.output_audio.delta","event_id":"event_9","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"{}"}}"#,
        STANDARD.encode(audio)
    )
}

fn frame_path(c: &mut Criterion) {
    for (mode, name) in [(AudioMode::Pcm24k, "pcm24k"), (AudioMode::Passthrough, "passthrough")] {
        let twilio_in = twilio_frame();
        let openai_in = openai_delta(mode);
        let stream_sid_json = "\"MZ18ad3ab5a668481ce02b83e7395059f0\"";
        let mut inbound = Inbound::new(mode).unwrap();
        let mut outbound = Outbound::new(mode).unwrap();
        let (mut to_openai, mut to_twilio) = (MessageArena::default(), MessageArena::default());
        let mut sent = 0usize;
        let mut group = c.benchmark_group(format!("frame_{name}"));
        group.bench_function("twilio_to_openai", |b| {
            b.iter(|| {
                let Ok(StreamMessage::Media(media)) = StreamMessage::parse(std::hint::black_box(&twilio_in)) else {
                    unreachable!()
                };
                if let Ok(Some(audio)) = inbound.push(&media.media.payload) {
                    sent += to_openai.append(audio).len();
                }
            })
        });
        group.bench_function("openai_to_twilio", |b| {
            b.iter(|| {
                let Ok(ServerEvent::AudioDelta(delta)) = ServerEvent::parse(std::hint::black_box(&openai_in)) else {
                    unreachable!()
                };
                let _ = outbound.push(&delta.delta, |frame| sent += to_twilio.media(stream_sid_json, frame).len());
            })
        });
        group.bench_function("both_ways", |b| {
            b.iter(|| {
                let Ok(StreamMessage::Media(media)) = StreamMessage::parse(std::hint::black_box(&twilio_in)) else {
                    unreachable!()
                };
                if let Ok(Some(audio)) = inbound.push(&media.media.payload) {
                    sent += to_openai.append(audio).len();
                }
                let Ok(ServerEvent::AudioDelta(delta)) = ServerEvent::parse(std::hint::black_box(&openai_in)) else {
                    unreachable!()
                };
                let _ = outbound.push(&delta.delta, |frame| sent += to_twilio.media(stream_sid_json, frame).len());
            })
        });
        group.finish();
        assert!(sent > 0);
    }
}

criterion_group!(benches, frame_path);
criterion_main!(benches);
