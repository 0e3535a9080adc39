//! One call-second of the frame path (50 Twilio frames in, 50 frames of agent audio
//! out, parsed, converted and written as the worker does it), repeated, in one
//! function, so `valgrind --tool=callgrind --toggle-collect='*call_seconds*'` counts
//! the instructions a call-second costs without the set-up. Instruction counts repeat
//! exactly on a shared machine, where timings do not.
//! `frame_cost pcm24k|passthrough [seconds]`; docs/performance.md has the figures.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use media_worker::audio::{Inbound, Outbound, FRAME_24K, FRAME_8K};
use media_worker::frames::MessageArena;
use shared::codec::mulaw;
use shared::openai::config::AudioMode;
use shared::openai::events::ServerEvent;
use shared::twilio::stream::StreamMessage;

fn tone(rate: f32, samples: usize) -> Vec<i16> {
    (0..samples).map(|n| (9_000.0 * (2.0 * std::f32::consts::PI * 440.0 * n as f32 / rate).sin()) as i16).collect()
}

fn mulaw_frame() -> Vec<u8> {
    let mut codes = vec![0u8; FRAME_8K];
    mulaw::encode(&tone(8_000.0, FRAME_8K), &mut codes).expect("sizes match");
    codes
}

#[inline(never)]
fn call_seconds(mode: AudioMode, seconds: usize, twilio_in: &str, openai_in: &str) -> usize {
    let mut inbound = Inbound::new(mode).expect("resampler");
    let mut outbound = Outbound::new(mode).expect("resampler");
    let (mut to_openai, mut to_twilio) = (MessageArena::default(), MessageArena::default());
    let stream_sid_json = "\"MZ18ad3ab5a668481ce02b83e7395059f0\"";
    let mut sent = 0;
    for _ in 0..seconds * 50 {
        if let Ok(StreamMessage::Media(media)) = StreamMessage::parse(std::hint::black_box(twilio_in)) {
            if let Ok(Some(audio)) = inbound.push(&media.media.payload) {
                sent += to_openai.append(audio).len();
            }
        }
        if let Ok(ServerEvent::AudioDelta(delta)) = ServerEvent::parse(std::hint::black_box(openai_in)) {
            let _ = outbound.push(&delta.delta, |frame| sent += to_twilio.media(stream_sid_json, frame).len());
        }
    }
    sent
}

fn main() {
    let mode = match std::env::args().nth(1).as_deref() {
        Some("passthrough") => AudioMode::Passthrough,
        _ => AudioMode::Pcm24k,
    };
    let seconds = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(60);
    let twilio_in = format!(
        r#"{{"event":"media","sequenceNumber":"42","media":{{"track":"inbound","chunk":"41","timestamp":"820","payload":"{}"}},"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}}"#,
        STANDARD.encode(mulaw_frame())
    );
    let audio: Vec<u8> = match mode {
        AudioMode::Pcm24k => tone(24_000.0, FRAME_24K).iter().flat_map(|s| s.to_le_bytes()).collect(),
        AudioMode::Passthrough => mulaw_frame(),
    };
    let openai_in = format!(
        r#"{{"type":"response.output_audio.delta","event_id":"event_9","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"{}"}}"#,
        STANDARD.encode(audio)
    );
    println!("{} bytes written in {seconds} call-seconds", call_seconds(mode, seconds, &twilio_in, &openai_in));
}
