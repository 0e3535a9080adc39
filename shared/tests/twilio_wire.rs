//! Twilio formats against recorded-shape fixtures and the signature test vectors of
//! twilio-python's `test_request_validator.py` (see docs/wire-formats.md).

use std::borrow::Cow;

use shared::twilio::form;
use shared::twilio::rest::{CallResource, CreateCall, UpdateCall};
use shared::twilio::signature;
use shared::twilio::status::{AnsweredBy, StatusCallback, TwilioCallStatus, REPLAY_WINDOW_SECONDS};
use shared::twilio::stream::{StreamCommand, StreamMessage};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn voice_params() -> Vec<(String, String)> {
    pairs(&[
        ("CallSid", "CA1234567890ABCDE"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
        ("Caller", "+14158675309"),
    ])
}

#[test]
fn signature_vectors_from_the_reference_validator() {
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(signature::compute("12345", url, &voice_params()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    assert_eq!(
        signature::compute("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", &voice_params()),
        "kvajT1Ptam85bY51eRf/AJRuM3w="
    );
    assert_eq!(
        signature::compute("12345", "http://mycompany.com:80/myapp.php?foo=1&bar=2", &voice_params()),
        "0ZXoZLH/DfblKGATFgpif+LLRf4="
    );
    assert_eq!(
        signature::compute("12345", "http://mycompany.com:1234/myapp.php?foo=1&bar=2", &voice_params()),
        "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
    );
    let repeated =
        pairs(&[("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]);
    assert_eq!(signature::compute("12345", url, &repeated), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    let docs = pairs(&[
        ("Digits", "1234"),
        ("To", "+18005551212"),
        ("From", "+14158675310"),
        ("Caller", "+14158675310"),
        ("CallSid", "CA1234567890ABCDE"),
    ]);
    assert_eq!(
        signature::compute("12345", "https://example.com/myapp.php?foo=1&bar=2", &docs),
        "L/OH5YylLD5NRKLltdqwSvS0BnU="
    );
}

#[test]
fn validation_accepts_each_port_form_and_refuses_tampering() {
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let params = voice_params();
    // Signed without the port, received with it, and the other way round.
    assert!(signature::validate("12345", url, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    assert!(signature::validate("12345", url, &params, "kvajT1Ptam85bY51eRf/AJRuM3w="));
    assert!(signature::validate(
        "12345",
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        &params,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    ));
    assert!(signature::validate(
        "12345",
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        &params,
        "0ZXoZLH/DfblKGATFgpif+LLRf4="
    ));
    assert!(signature::validate(
        "12345",
        "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
        &params,
        "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
    ));
    // Credentials in the URL are not part of what Twilio signs.
    assert!(signature::validate(
        "12345",
        "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
        &params,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    ));

    assert!(!signature::validate("54321", url, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    assert!(!signature::validate(
        "12345",
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        &params,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    ));
    let mut changed = params.clone();
    changed[1].1 = "9999".into();
    assert!(!signature::validate("12345", url, &changed, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    assert!(!signature::validate("12345", url, &params, ""));
    assert!(!signature::validate("12345", url, &params, "not base64 at all"));
}

#[test]
fn json_body_signature_vector() {
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    let body = br#"{"property": "value", "boolean": true}"#;
    assert!(signature::validate_json_body("12345", url, body, "a9nBmqA0ju/hNViExpshrM61xv4="));
    assert!(!signature::validate_json_body(
        "12345",
        url,
        br#"{"property": "other", "boolean": true}"#,
        "a9nBmqA0ju/hNViExpshrM61xv4="
    ));
    assert!(!signature::validate_json_body(
        "12345",
        "https://mycompany.com/myapp.php",
        body,
        "a9nBmqA0ju/hNViExpshrM61xv4="
    ));
}

#[test]
fn stream_messages_parse_from_recorded_frames() {
    let connected = fixture("twilio/stream_connected.json");
    assert!(matches!(StreamMessage::parse(&connected).unwrap(), StreamMessage::Connected(c) if c.version == "1.0.0"));

    let start = fixture("twilio/stream_start.json");
    let StreamMessage::Start(start) = StreamMessage::parse(&start).unwrap() else { panic!("not a start") };
    assert_eq!(start.sequence_number, 1);
    assert_eq!(start.stream_sid, "MZ18ad3ab5a668481ce02b83e7395059f0");
    assert_eq!(start.start.call_sid, "CA7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d");
    assert!(start.start.media_format.is_mulaw_8k_mono());
    assert_eq!(start.start.custom_parameters.get("call_id").map(String::as_str), Some("call_01"));
    assert_eq!(start.start.custom_parameters.get("token").map(String::as_str), Some("1800000000.abcdef"));

    let media = fixture("twilio/stream_media.json");
    let StreamMessage::Media(media) = StreamMessage::parse(&media).unwrap() else { panic!("not media") };
    assert_eq!((media.sequence_number, media.media.chunk, media.media.timestamp), (4, 2, 40));
    assert!(matches!(media.media.payload, Cow::Borrowed(_)), "the payload must borrow from the frame");
    let mut audio = Vec::new();
    shared::codec::b64::decode_into(&media.media.payload, &mut audio).unwrap();
    assert_eq!(audio.len(), 160);

    let mark = fixture("twilio/stream_mark.json");
    assert!(matches!(StreamMessage::parse(&mark).unwrap(), StreamMessage::Mark(m) if m.mark.name == "item_1:1200"));
    let dtmf = fixture("twilio/stream_dtmf.json");
    assert!(matches!(StreamMessage::parse(&dtmf).unwrap(), StreamMessage::Dtmf(d) if d.dtmf.digit == "1"));
    let stop = fixture("twilio/stream_stop.json");
    assert!(matches!(StreamMessage::parse(&stop).unwrap(), StreamMessage::Stop(s) if s.sequence_number == 7));
}

#[test]
fn bad_stream_frames_are_errors() {
    for bad in [
        "",
        "not json",
        "{}",
        r#"{"event":"teleport"}"#,
        r#"{"event":"media","sequenceNumber":"x","media":{"chunk":"1","timestamp":"0","payload":""},"streamSid":"MZ"}"#,
        r#"{"event":"media","sequenceNumber":"1","streamSid":"MZ"}"#,
        r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ"}"#,
    ] {
        assert!(StreamMessage::parse(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn outbound_commands_are_exactly_the_documented_shapes() {
    let mut out = Vec::new();
    StreamCommand::media("MZ1", "//8=").write_json(&mut out);
    assert_eq!(String::from_utf8_lossy(&out), r#"{"event":"media","streamSid":"MZ1","media":{"payload":"//8="}}"#);
    StreamCommand::mark("MZ1", "item_1:200").write_json(&mut out);
    assert_eq!(String::from_utf8_lossy(&out), r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"item_1:200"}}"#);
    StreamCommand::clear("MZ1").write_json(&mut out);
    assert_eq!(String::from_utf8_lossy(&out), r#"{"event":"clear","streamSid":"MZ1"}"#);
}

#[test]
fn a_status_callback_is_fresh_only_within_the_replay_window_of_its_timestamp() {
    let ringing =
        StatusCallback::from_form(&form::parse(fixture("twilio/status_ringing.form").trim().as_bytes())).unwrap();
    let sent: chrono::DateTime<chrono::Utc> = "2018-03-25T09:52:21Z".parse().unwrap();
    let window = chrono::Duration::seconds(REPLAY_WINDOW_SECONDS);
    assert!(ringing.is_fresh(sent));
    assert!(ringing.is_fresh(sent + window), "Twilio's retries and queueing delays are allowed");
    assert!(ringing.is_fresh(sent - window), "so is a clock a little behind Twilio's");
    assert!(!ringing.is_fresh(sent + window + chrono::Duration::seconds(1)), "a later replay is not");
    assert!(!ringing.is_fresh(sent - window - chrono::Duration::seconds(1)));
    let undated = StatusCallback::from_form(&form::parse(b"CallSid=CA1&CallStatus=ringing")).unwrap();
    assert!(!undated.is_fresh(sent), "no Timestamp, no proof of when");
    let garbled =
        StatusCallback::from_form(&form::parse(b"CallSid=CA1&CallStatus=ringing&Timestamp=yesterday")).unwrap();
    assert_eq!(garbled.sent_at, None);
    assert!(!garbled.is_fresh(sent));
}

#[test]
fn status_callbacks_parse_from_recorded_forms() {
    let completed =
        StatusCallback::from_form(&form::parse(fixture("twilio/status_completed.form").trim().as_bytes())).unwrap();
    assert_eq!(completed.call_status, TwilioCallStatus::Completed);
    assert_eq!(completed.call_duration, Some(49));
    assert_eq!(completed.sequence_number, Some(3));
    assert_eq!(completed.answered_by, Some(AnsweredBy::Human));
    assert_eq!(completed.call_sid, "CA7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d");
    let ringing =
        StatusCallback::from_form(&form::parse(fixture("twilio/status_ringing.form").trim().as_bytes())).unwrap();
    assert_eq!(ringing.call_status, TwilioCallStatus::Ringing);
    assert_eq!(ringing.answered_by, None);
    assert_eq!(ringing.sent_at, Some("2018-03-25T09:52:21Z".parse().unwrap()));

    assert!(StatusCallback::from_form(&form::parse(b"CallSid=CA1")).is_err());
    assert!(StatusCallback::from_form(&form::parse(b"CallSid=CA1&CallStatus=teleported")).is_err());
    assert!(StatusCallback::from_form(&form::parse(b"CallStatus=ringing")).is_err());
}

#[test]
fn rest_shapes() {
    let resource: CallResource = serde_json::from_str(&fixture("twilio/calls_create_response.json")).unwrap();
    assert_eq!(resource.sid, "CA7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d");
    assert_eq!(resource.status, "queued");
    assert_eq!(CreateCall::path("AC1"), "/2010-04-01/Accounts/AC1/Calls.json");
    assert_eq!(UpdateCall::path("AC1", "CA2"), "/2010-04-01/Accounts/AC1/Calls/CA2.json");
    assert_eq!(UpdateCall::HangUp.to_form(), "Status=completed");
    assert_eq!(UpdateCall::Cancel.to_form(), "Status=canceled");
    assert_eq!(
        UpdateCall::Twiml("<Response><Hangup/></Response>".into()).to_form(),
        "Twiml=%3CResponse%3E%3CHangup%2F%3E%3C%2FResponse%3E"
    );
}

#[test]
fn a_media_frame_reads_the_same_whatever_the_key_order() {
    // The wire order (`event` first) takes the one-pass route; any other order the
    // general one. Both must give the same message.
    let wire = fixture("twilio/stream_media.json");
    let value: serde_json::Value = serde_json::from_str(&wire).unwrap();
    let fast = StreamMessage::parse(wire.trim()).unwrap();
    let StreamMessage::Media(media) = &fast else { panic!("{fast:?}") };
    assert_eq!((media.sequence_number, media.media.chunk, media.media.timestamp), (4, 2, 40));
    let reordered = format!(
        r#"{{"streamSid":{},"media":{},"sequenceNumber":"4","event":"media"}}"#,
        value["streamSid"], value["media"]
    );
    assert_eq!(fast, StreamMessage::parse(&reordered).unwrap());
}

#[test]
fn counters_are_strings_or_numbers_and_never_negative() {
    let frame =
        |seq: &str| format!(r#"{{"event":"mark","sequenceNumber":{seq},"streamSid":"MZ1","mark":{{"name":"m"}}}}"#);
    let read = |seq: &str| match StreamMessage::parse(&frame(seq)) {
        Ok(StreamMessage::Mark(mark)) => Ok(mark.sequence_number),
        Ok(other) => panic!("{other:?}"),
        Err(error) => Err(error.to_string()),
    };
    assert_eq!(read(r#""4""#), Ok(4));
    assert_eq!(read("4"), Ok(4));
    assert_eq!(read(r#""18446744073709551615""#), Ok(u64::MAX));
    for bad in [r#""-1""#, "-1", r#""4x""#, r#""""#, "4.5", "null", "[4]", r#""18446744073709551616""#] {
        let error = read(bad).expect_err(bad);
        assert!(error.contains("invalid Media Streams message"), "{bad}: {error}");
    }
}
