//! Realtime events against recorded-shape fixtures.

use std::borrow::Cow;

use shared::openai::config::{AgentSettings, AudioMode};
use shared::openai::events::{ClientEvent, Item, Role, ServerEvent};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/openai/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn server_events_parse_from_recorded_frames() {
    assert!(matches!(
        ServerEvent::parse(&fixture("session_created.json")).unwrap(),
        ServerEvent::SessionCreated { .. }
    ));
    assert!(matches!(
        ServerEvent::parse(&fixture("speech_started.json")).unwrap(),
        ServerEvent::SpeechStarted { audio_start_ms: 1000, ref item_id } if item_id == "item_B2"
    ));
    let delta = fixture("audio_delta.json");
    match ServerEvent::parse(&delta).unwrap() {
        ServerEvent::AudioDelta(d) => {
            assert_eq!(d.item_id, "item_C5");
            assert_eq!(d.delta, "AAABAAIAAwA=");
            assert!(matches!(d.delta, Cow::Borrowed(_)), "audio must borrow from the frame");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ServerEvent::parse(&fixture("transcript_done.json")).unwrap(),
        ServerEvent::AudioTranscriptDone { ref transcript, .. } if transcript.starts_with("Hi, I'd like")
    ));
    assert!(matches!(
        ServerEvent::parse(&fixture("input_transcription_completed.json")).unwrap(),
        ServerEvent::InputTranscriptCompleted { ref transcript, .. } if transcript.contains("apple")
    ));
    match ServerEvent::parse(&fixture("function_call_done.json")).unwrap() {
        ServerEvent::FunctionCallArgumentsDone { name, call_id, arguments, .. } => {
            assert_eq!((name.as_str(), call_id.as_str()), ("report_outcome", "call_F4"));
            assert!(arguments.contains("A73X"));
        }
        other => panic!("{other:?}"),
    }
    match ServerEvent::parse(&fixture("error_session_expired.json")).unwrap() {
        ServerEvent::Error { error } => assert!(error.ends_session()),
        other => panic!("{other:?}"),
    }
    let server_error = r#"{"type":"error","event_id":"event_G2","error":{"type":"server_error","code":null,"message":"The server had an error while processing your request.","param":null,"event_id":null}}"#;
    match ServerEvent::parse(server_error).unwrap() {
        ServerEvent::Error { error } => assert!(!error.ends_session(), "recoverable: the socket stays open"),
        other => panic!("{other:?}"),
    }
    match ServerEvent::parse(&fixture("rate_limits_updated.json")).unwrap() {
        ServerEvent::RateLimitsUpdated { rate_limits } => {
            assert_eq!(rate_limits[1].remaining, 49950.0)
        }
        other => panic!("{other:?}"),
    }
    match ServerEvent::parse(&fixture("response_done.json")).unwrap() {
        ServerEvent::ResponseDone { response } => {
            assert_eq!(response.status.as_deref(), Some("cancelled"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn events_we_do_not_use_are_kept_as_unknown_not_errors() {
    assert_eq!(ServerEvent::parse(&fixture("future_event.json")).unwrap(), ServerEvent::Unknown);
    assert_eq!(ServerEvent::parse(&fixture("mcp_event.json")).unwrap(), ServerEvent::Unknown);
    assert_eq!(ServerEvent::parse(r#"{"type":"brand.new.event","anything":[1,2]}"#).unwrap(), ServerEvent::Unknown);
}

#[test]
fn malformed_server_events_are_errors() {
    for bad in
        ["", "[]", "{", r#"{"type":"response.output_audio.delta"}"#, r#"{"type":"input_audio_buffer.speech_started"}"#]
    {
        assert!(ServerEvent::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn client_events_serialize_to_the_ga_names_and_round_trip() {
    let settings = AgentSettings::new("gpt-realtime", "marin", AudioMode::Pcm24k).unwrap();
    let events = vec![
        ClientEvent::SessionUpdate {
            event_id: None,
            session: Box::new(settings.session("Book a table.".into(), shared::language::Language::En)),
        },
        ClientEvent::InputAudioBufferAppend { audio: Cow::Borrowed("AAAA") },
        ClientEvent::ConversationItemTruncate { item_id: "item_1".into(), content_index: 0, audio_end_ms: 1500 },
        ClientEvent::ConversationItemCreate { previous_item_id: None, item: Item::text(Role::User, "hello") },
        ClientEvent::ResponseCreate { response: None },
    ];
    let mut out = Vec::new();
    for event in &events {
        event.write_json(&mut out);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["type"], event.type_name());
        let back: ClientEvent = serde_json::from_slice(&out).unwrap();
        assert_eq!(&back, event);
    }
    events[1].write_json(&mut out);
    assert_eq!(String::from_utf8_lossy(&out), r#"{"type":"input_audio_buffer.append","audio":"AAAA"}"#);
}

#[test]
fn beta_shaped_client_events_are_rejected() {
    for beta in [
        r#"{"type":"session.update","session":{"modalities":["audio"],"input_audio_format":"g711_ulaw"}}"#,
        r#"{"type":"input_audio_buffer.append","audio":"AAAA","extra":1}"#,
        r#"{"type":"conversation.item.truncate","item_id":"i","content_index":0}"#,
    ] {
        assert!(serde_json::from_str::<ClientEvent>(beta).is_err(), "{beta}");
    }
}

#[test]
fn an_audio_delta_reads_the_same_whatever_the_key_order() {
    // The wire order (`type` first) takes the one-pass route; any other order the
    // general one. Both must give the same event, and the same errors.
    let wire = fixture("audio_delta.json");
    let value: serde_json::Value = serde_json::from_str(&wire).unwrap();
    let sorted = value.to_string(); // serde_json's map sorts keys: `type` comes last
    assert!(!sorted.starts_with(r#"{"type""#));
    let fast = ServerEvent::parse(wire.trim()).unwrap();
    assert!(matches!(&fast, ServerEvent::AudioDelta(d) if d.delta == "AAABAAIAAwA=" && d.item_id == "item_C5"));
    assert_eq!(fast, ServerEvent::parse(&sorted).unwrap());
    let broken = r#"{"type":"response.output_audio.delta","response_id":"r","item_id":7,"delta":""}"#;
    assert!(ServerEvent::parse(broken).is_err());
    let truncated = r#"{"type":"response.output_audio.delta","response_id":"r","#;
    assert!(ServerEvent::parse(truncated).is_err());
}
