//! Reaching the host: the asynchronous AMD verdict (a machine is hung up on, leaving no
//! message), a known extension dialed, an opt-in recording, and the agent's opening
//! sentence saying who is calling. Natively against in-memory ports.

mod common;

use common::*;
use edge::http::EdgeRequest;
use edge::ports::TwilioError;
use serde_json::{json, Value};
use shared::twilio::rest::{TwilioApiError, UpdateCall};

fn amd(edge: &TestEdge, id: &str, sid: &str, answered_by: &str) -> u16 {
    let params =
        [("CallSid", sid), ("AccountSid", "AC1"), ("AnsweredBy", answered_by), ("MachineDetectionDuration", "2400")];
    send(edge, twilio(&format!("/twilio/amd/{id}"), &params)).status
}

const RECORDING_SID: &str = "RE0123456789abcdef0123456789abcdef";
const RECORDING_URL: &str =
    "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE0123456789abcdef0123456789abcdef";

fn recording(edge: &TestEdge, id: &str, sid: &str) -> u16 {
    let params = [
        ("CallSid", sid),
        ("AccountSid", "AC1"),
        ("RecordingSid", RECORDING_SID),
        ("RecordingUrl", RECORDING_URL),
        ("RecordingStatus", "completed"),
        ("RecordingDuration", "41"),
        ("RecordingChannels", "2"),
    ];
    send(edge, twilio(&format!("/twilio/recording/{id}"), &params)).status
}

fn sid() -> String {
    format!("CA{:032}", 1)
}

fn context(edge: &TestEdge, id: &str) -> Value {
    internal(edge, "GET", &format!("/internal/calls/{id}"), "").json_body()
}

#[test]
fn a_machine_is_hung_up_on_when_amd_says_so_and_the_call_ends_as_voicemail() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    status(&edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "in-progress")]);
    // With asynchronous AMD the TwiML is fetched at answer, before any verdict: the
    // stream starts, so a host's greeting reaches the agent.
    let twiml = send(&edge, twilio("/twilio/twiml/call_0001", &[("CallSid", &sid()), ("CallStatus", "in-progress")]));
    assert!(String::from_utf8_lossy(&twiml.body).contains("<Stream"));

    assert_eq!(amd(&edge, "call_0001", &sid(), "machine_start"), 204);
    assert_eq!(edge.ports.twilio.updates.borrow().as_slice(), [(sid(), UpdateCall::HangUp)], "hung up at once");
    assert_eq!(amd(&edge, "call_0001", &sid(), "machine_start"), 204, "Twilio repeats its verdict");
    assert_eq!(edge.ports.twilio.updates.borrow().len(), 1, "one hang-up, not one per verdict");
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(record["answered_by"], "machine_start");
    // The media worker's stream ends with nothing decided, then Twilio's completed.
    for event in [
        json!({"id": "MZ1-0", "stream": "MZ1", "type": "stream_started", "stream_sid": "MZ1"}),
        json!({"id": "MZ1-1", "stream": "MZ1", "type": "outcome", "at_ms": 2600,
               "outcome": {"result": "no_decision", "confirmation_number": null, "confirmed_date": null,
                           "confirmed_time": null, "party_size": null, "notes": "the call ended"}}),
        json!({"id": "MZ1-2", "stream": "MZ1", "type": "stream_ended", "reason": "caller_hung_up", "stats": {}}),
    ] {
        assert_eq!(internal(&edge, "POST", "/internal/calls/call_0001/events", &event.to_string()).status, 200);
    }
    status(&edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "completed"), ("CallDuration", "4")]);
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(record["outcome"]["result"], "voicemail", "{record}");
    // A repeated verdict hangs up nothing more.
    amd(&edge, "call_0001", &sid(), "machine_start");
    assert_eq!(edge.ports.twilio.updates.borrow().len(), 1);
}

#[test]
fn a_human_or_an_unsure_verdict_leaves_the_call_to_the_agent() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    book(&edge, KEY_A, &booking_to(&restaurant(1)));
    assert_eq!(amd(&edge, "call_0001", &sid(), "human"), 204);
    assert_eq!(amd(&edge, "call_0002", &format!("CA{:032}", 2), "unknown"), 204);
    assert!(edge.ports.twilio.updates.borrow().is_empty());
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["answered_by"], "human");
    assert_eq!(get(&edge, KEY_A, "call_0002").json_body()["answered_by"], "unknown");
    // A verdict naming another call's sid changes nothing here.
    assert_eq!(amd(&edge, "call_0001", "CA-other", "machine_start"), 204);
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["answered_by"], "human");
}

#[test]
fn an_amd_or_recording_callback_must_be_signed_and_well_formed() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    let mut forged = twilio("/twilio/amd/call_0001", &[("CallSid", &sid()), ("AnsweredBy", "machine_start")]);
    forged.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("x-twilio-signature"));
    assert_eq!(send(&edge, forged).status, 403);
    let tampered = twilio("/twilio/recording/call_0002", &[("CallSid", &sid()), ("RecordingSid", RECORDING_SID)]);
    let replayed = EdgeRequest { path: "/twilio/recording/call_0001".into(), ..tampered };
    assert_eq!(send(&edge, replayed).status, 403, "a signature is for its own URL");
    assert_eq!(amd(&edge, "call_0001", &sid(), "robot"), 400);
    assert!(edge.ports.twilio.updates.borrow().is_empty());
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["answered_by"], Value::Null);
}

#[test]
fn a_recorded_call_is_placed_with_dual_channel_recording_and_its_webhook_carries_the_recording() {
    let edge = edge();
    let mut body = booking();
    body["record"] = json!(true);
    body["restaurant"]["extension"] = json!("ww204");
    assert_eq!(book(&edge, KEY_A, &body).status, 201);
    {
        let created = edge.ports.twilio.created.borrow();
        assert_eq!(created[0].send_digits.as_deref(), Some("ww204"));
        assert_eq!(created[0].recording_callback, Some(format!("{BASE}/twilio/recording/call_0001")));
    }
    let opening = context(&edge, "call_0001")["instructions"].as_str().unwrap_or_default().to_owned();
    assert!(opening.contains("an AI assistant calling on behalf of Ada Lovelace. This call is recorded."), "{opening}");

    status(&edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "in-progress"), ("AnsweredBy", "human")]);
    status(&edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "completed"), ("CallDuration", "41")]);
    assert!(edge.ports.webhooks.sent.borrow().is_empty(), "the webhook waits for the recording");
    assert_eq!(recording(&edge, "call_0001", &sid()), 204);
    let sent = edge.ports.webhooks.sent.borrow();
    assert_eq!(sent.len(), 1);
    let pushed: Value = serde_json::from_str(&sent[0].1).unwrap_or_default();
    assert_eq!(pushed["recording"]["url"], RECORDING_URL);
    assert_eq!(
        (pushed["recording"]["duration_seconds"].as_u64(), pushed["recording"]["channels"].as_u64()),
        (Some(41), Some(2))
    );
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["recording"]["sid"], RECORDING_SID);
}

/// A recorded call, ended, with its recording in the record.
fn recorded_call(edge: &TestEdge) {
    let mut body = booking();
    body["record"] = json!(true);
    assert_eq!(book(edge, KEY_A, &body).status, 201);
    status(edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "in-progress"), ("AnsweredBy", "human")]);
    status(edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "completed"), ("CallDuration", "41")]);
    assert_eq!(recording(edge, "call_0001", &sid()), 204);
}

fn delete(edge: &TestEdge, id: &str) -> edge::http::EdgeResponse {
    send(edge, EdgeRequest::new("DELETE", &format!("/v1/calls/{id}")).header("Authorization", KEY_A))
}

#[test]
fn deleting_a_recorded_call_deletes_its_audio_at_twilio_first_and_keeps_the_record_if_twilio_cannot() {
    let edge = edge();
    recorded_call(&edge);
    let unreachable = TwilioError::Network("connection reset".into());
    edge.ports.twilio.recording_delete_errors.borrow_mut().push(unreachable);
    let refused = delete(&edge, "call_0001");
    assert_eq!(refused.status, 502, "{}", String::from_utf8_lossy(&refused.body));
    let kept = get(&edge, KEY_A, "call_0001");
    assert_eq!((kept.status, kept.json_body()["recording"]["sid"].as_str()), (200, Some(RECORDING_SID)));

    let deleted = delete(&edge, "call_0001");
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json_body()["recording_deleted"], true);
    assert_eq!(*edge.ports.twilio.deleted_recordings.borrow(), [RECORDING_SID]);
    assert_eq!(get(&edge, KEY_A, "call_0001").status, 404);
}

#[test]
fn a_recording_twilio_no_longer_has_counts_as_deleted_and_a_malformed_recording_sid_is_refused() {
    let edge = edge();
    recorded_call(&edge);
    let gone = TwilioApiError { code: 20404, message: "not found".into(), more_info: None, status: 404 };
    edge.ports.twilio.recording_delete_errors.borrow_mut().push(TwilioError::Api(gone));
    let deleted = delete(&edge, "call_0001");
    assert_eq!((deleted.status, deleted.json_body()["recording_deleted"].as_bool()), (200, Some(true)));

    let edge = self::edge();
    book(&edge, KEY_A, &booking());
    // The sid goes into a REST path when the audio is deleted: nothing but Twilio's shape.
    let params =
        [("CallSid", sid()), ("RecordingSid", "RE1/../../Calls".to_owned()), ("RecordingStatus", "completed".into())];
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(send(&edge, twilio("/twilio/recording/call_0001", &params)).status, 400);
    // A call without a recording asks Twilio for nothing.
    status(&edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "no-answer")]);
    let deleted = delete(&edge, "call_0001");
    assert_eq!((deleted.status, deleted.json_body()["recording_deleted"].as_bool()), (200, Some(false)));
    assert!(edge.ports.twilio.deleted_recordings.borrow().is_empty());
}

#[test]
fn a_recorded_calls_webhook_goes_without_the_recording_if_it_never_comes() {
    let edge = edge();
    let mut body = booking();
    body["record"] = json!(true);
    book(&edge, KEY_A, &body);
    status(&edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "in-progress"), ("AnsweredBy", "human")]);
    status(&edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "completed")]);
    assert_eq!(wake_due(&edge), 0, "still waiting");
    edge.ports.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(wake_due(&edge), 1, "a minute is long enough");
}

#[test]
fn the_opening_sentence_is_the_deployments_when_it_sets_one() {
    let mut config = config();
    config.agent_introduction =
        Some("Good evening, Concierge here, an automated assistant booking for {guest} at {restaurant}.".into());
    let edge = edge::app::Edge { config, ..edge() };
    book(&edge, KEY_A, &booking());
    let instructions = context(&edge, "call_0001")["instructions"].as_str().unwrap_or_default().to_owned();
    assert!(
        instructions.contains(
            r#""Good evening, Concierge here, an automated assistant booking for Ada Lovelace at Chez Panisse.""#
        ),
        "{instructions}"
    );
    assert!(!instructions.contains("recorded"), "not recorded, not said");
}

#[test]
fn a_bad_extension_is_refused_naming_the_field() {
    let edge = edge();
    let mut body = booking();
    body["restaurant"]["extension"] = json!("ext. 204");
    let refused = book(&edge, KEY_A, &body);
    assert_eq!((refused.status, refused.json_body()["error"]["field"].as_str()), (422, Some("restaurant.extension")));
    body["restaurant"]["extension"] = json!("204");
    body["record"] = json!("yes");
    let refused = book(&edge, KEY_A, &body);
    assert_eq!((refused.status, refused.json_body()["error"]["field"].as_str()), (422, Some("record")));
}

#[test]
fn a_booking_in_spanish_gets_a_spanish_opening_and_an_unknown_language_is_refused_with_the_list() {
    let edge = edge();
    let mut body = booking();
    body["language"] = json!("es-MX");
    body["record"] = json!(true);
    assert_eq!(book(&edge, KEY_A, &body).status, 201);
    let instructions = context(&edge, "call_0001")["instructions"].as_str().unwrap_or_default().to_owned();
    assert!(
        instructions.contains("\"Hola, soy un asistente de inteligencia artificial que llama en nombre de Ada Lovelace. Esta llamada se está grabando.\""),
        "{instructions}"
    );
    assert!(instructions.contains("Speak Spanish unless the restaurant answers in another language"));
    // The stream carries the tag too: a worker that cannot take the call says so in Spanish.
    let twiml = send(
        &edge,
        twilio(
            "/twilio/twiml/call_0001",
            &[("CallSid", "CA1"), ("CallStatus", "in-progress"), ("AnsweredBy", "human")],
        ),
    );
    let twiml = String::from_utf8(twiml.body).unwrap_or_default();
    assert!(twiml.contains("<Parameter name=\"language\" value=\"es-MX\"/>"), "{twiml}");

    body["language"] = json!("pt-BR");
    let refused = book(&edge, KEY_A, &body);
    assert_eq!((refused.status, refused.json_body()["error"]["field"].as_str()), (422, Some("language")));
    let message = refused.json_body()["error"]["message"].as_str().unwrap_or_default().to_owned();
    for listed in ["en (English)", "es (Spanish)", "fr (French)", "de (German)", "it (Italian)"] {
        assert!(message.contains(listed), "{message}");
    }
    // Only a tag's shape goes into the TwiML: not a Spanish prefix with anything after it.
    for junk in [format!("es-{}", "x".repeat(600)), "es-MX\"/><Hangup/>".to_owned(), "es--MX".to_owned()] {
        body["language"] = json!(junk);
        let refused = book(&edge, KEY_A, &body);
        assert_eq!((refused.status, refused.json_body()["error"]["field"].as_str()), (422, Some("language")), "{junk}");
    }
}

#[test]
fn a_recorded_call_past_its_retention_goes_with_its_audio_and_stays_while_twilio_cannot_delete_it() {
    let edge = edge();
    recorded_call(&edge);
    let past_retention = start() + edge.config.record_retention() + chrono::Duration::hours(1);
    edge.ports.twilio.recording_delete_errors.borrow_mut().push(TwilioError::Network("timed out".into()));
    assert_eq!(pollster::block_on(edge.forget_expired(past_retention)), 0, "kept while its audio is at Twilio");
    assert_eq!(get(&edge, KEY_A, "call_0001").status, 200);
    assert_eq!(pollster::block_on(edge.forget_expired(past_retention)), 1);
    assert_eq!(*edge.ports.twilio.deleted_recordings.borrow(), [RECORDING_SID]);
    assert_eq!(get(&edge, KEY_A, "call_0001").status, 404);
}

#[test]
fn a_recording_finished_after_its_call_was_erased_is_deleted_when_it_arrives() {
    let edge = edge();
    let mut body = booking();
    body["record"] = json!(true);
    assert_eq!(book(&edge, KEY_A, &body).status, 201);
    status(&edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "in-progress"), ("AnsweredBy", "human")]);
    status(&edge, "call_0001", &[("CallSid", &sid()), ("CallStatus", "completed")]);
    edge.ports.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(wake_due(&edge), 1, "the webhook went without the recording");
    let erased = delete(&edge, "call_0001");
    assert_eq!((erased.status, erased.json_body()["recording_deleted"].as_bool()), (200, Some(false)));
    assert!(edge.ports.twilio.deleted_recordings.borrow().is_empty());
    // Twilio finishes the recording only now: nothing refers to it, so it goes at once.
    assert_eq!(recording(&edge, "call_0001", &sid()), 204);
    assert_eq!(*edge.ports.twilio.deleted_recordings.borrow(), [RECORDING_SID]);
    assert_eq!(get(&edge, KEY_A, "call_0001").status, 404);
}
