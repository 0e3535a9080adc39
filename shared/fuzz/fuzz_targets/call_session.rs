#![no_main]
//! A call session fed arbitrary frames from both sides and arbitrary clock steps.
use libfuzzer_sys::fuzz_target;
use shared::openai::config::{AgentSettings, AudioMode};
use shared::openai::events::ServerEvent;
use shared::session::{CallSession, Input, SessionLimits, SessionParams};
use shared::twilio::stream::StreamMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(settings) = AgentSettings::new("gpt-realtime", "marin", AudioMode::Pcm24k) else { return };
    let params = SessionParams {
        call_id: "call".into(),
        stream_sid: "MZ".into(),
        instructions: "book".into(),
        language: None,
        settings,
        limits: SessionLimits::with_max_call_seconds(60),
    };
    let mut now = std::time::Instant::now();
    let mut session = CallSession::new(params, now);
    session.handle_input(Input::OpenAiConnected, now);
    for chunk in data.split(|&b| b == 0) {
        let Some((&selector, rest)) = chunk.split_first() else { continue };
        now += std::time::Duration::from_millis(u64::from(selector) * 97);
        let text = String::from_utf8_lossy(rest);
        match selector % 4 {
            0 => {
                if let Ok(message) = StreamMessage::parse(&text) {
                    session.handle_input(Input::Twilio(&message), now);
                }
            }
            1 => {
                if let Ok(event) = ServerEvent::parse(&text) {
                    session.handle_input(Input::OpenAi(&event), now);
                }
            }
            2 => session.handle_timeout(now),
            _ => session.handle_input(Input::OpenAiLost, now),
        }
        while session.poll_output().is_some() {}
    }
});
