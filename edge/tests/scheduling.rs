//! When calls are placed: the calling window on the restaurant's clock, `call_at`,
//! retries after busy / no answer, cancel during a wait, and what a waiting booking
//! holds of the key's limits. Natively against in-memory ports, on a manual clock; the
//! keeper's wake-ups are driven the way the Durable Object alarm drives them.

mod common;

use chrono::Duration;
use common::*;
use edge::app::Edge;
use edge::http::EdgeRequest;
use serde_json::{json, Value};

/// The deployment's defaults (window 10:00–21:30, three attempts ten minutes apart)
/// with `changes` over them.
fn edge_with(changes: &[(&str, &str)]) -> TestEdge {
    Edge { config: deployment_config(changes), ..edge() }
}

fn dialed(edge: &TestEdge) -> usize {
    edge.ports.twilio.created.borrow().len()
}

/// The Twilio sid of the `n`th call the fake created (1-based).
fn sid(n: usize) -> String {
    format!("CA{n:032}")
}

fn attempt_statuses(record: &Value) -> Vec<String> {
    record["attempts"].as_array().map_or_else(Vec::new, |attempts| {
        attempts.iter().map(|a| a["status"].as_str().unwrap_or_default().to_owned()).collect()
    })
}

fn cancel(edge: &TestEdge, id: &str) -> u16 {
    send(edge, EdgeRequest::new("POST", &format!("/v1/calls/{id}/cancel")).header("Authorization", KEY_A)).status
}

#[test]
fn a_booking_made_before_the_window_opens_is_scheduled_and_dialed_when_it_opens() {
    // 12:00 UTC is 04:00 in Los Angeles: before the 10:00 opening.
    let edge = edge_with(&[]);
    let created = book(&edge, KEY_A, &booking());
    assert_eq!(created.status, 201, "{:?}", created.json_body());
    assert_eq!(created.json_body()["status"], "scheduled");
    assert_eq!(created.json_body()["scheduled_for"], "2026-11-24T18:00:00Z", "10:00 PST");
    assert_eq!(dialed(&edge), 0, "nobody is woken at 04:00");
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!((record["status"].as_str(), record["attempts"].clone()), (Some("scheduled"), json!([])));

    edge.ports.clock.advance(Duration::hours(5) + Duration::minutes(59));
    wake_due(&edge);
    assert_eq!(dialed(&edge), 0, "09:59 is still too early");
    edge.ports.clock.advance(Duration::minutes(1));
    wake_due(&edge);
    assert_eq!(dialed(&edge), 1, "dialed at the opening");
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(record["status"], "dialing");
    assert_eq!(record["scheduled_for"], Value::Null);
    assert_eq!(attempt_statuses(&record), ["dialing"]);
    wake_due(&edge);
    assert_eq!(dialed(&edge), 1, "a second wake-up dials nothing more");
}

#[test]
fn a_busy_line_is_called_again_after_the_interval_and_the_webhook_waits_for_the_last_attempt() {
    let edge = edge_with(&[("CALLING_WINDOW", "00:00-24:00")]);
    assert_eq!(book(&edge, KEY_A, &booking()).status, 201);
    status(&edge, "call_0001", &[("CallSid", &sid(1)), ("CallStatus", "busy")]);
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(record["status"], "scheduled");
    assert_eq!(record["scheduled_for"], "2026-11-24T12:10:00Z", "ten minutes later");
    assert_eq!(attempt_statuses(&record), ["busy"]);
    assert!(edge.ports.webhooks.sent.borrow().is_empty(), "not final: no webhook yet");
    // Twilio repeats its busy callback: late news about a finished attempt.
    status(&edge, "call_0001", &[("CallSid", &sid(1)), ("CallStatus", "busy")]);
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["status"], "scheduled");

    edge.ports.clock.advance(Duration::minutes(10));
    wake_due(&edge);
    assert_eq!(dialed(&edge), 2);
    status(&edge, "call_0001", &[("CallSid", &sid(2)), ("CallStatus", "in-progress"), ("AnsweredBy", "human")]);
    status(&edge, "call_0001", &[("CallSid", &sid(2)), ("CallStatus", "completed"), ("CallDuration", "40")]);
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(record["status"], "completed");
    assert_eq!(attempt_statuses(&record), ["busy", "completed"]);
    assert_eq!(record["attempts"][0]["twilio_call_sid"], sid(1));
    assert_eq!(record["attempts"][1]["twilio_call_sid"], sid(2));
    assert_eq!(record["attempts"][1]["duration_seconds"], 40);
    let sent = edge.ports.webhooks.sent.borrow();
    assert_eq!(sent.len(), 1, "one webhook, after the last attempt");
    let pushed: Value = serde_json::from_str(&sent[0].1).unwrap_or_default();
    assert_eq!(attempt_statuses(&pushed), ["busy", "completed"]);
}

#[test]
fn three_unanswered_calls_end_as_no_answer_with_three_attempts_and_one_webhook() {
    let edge = edge_with(&[("CALLING_WINDOW", "00:00-24:00")]);
    book(&edge, KEY_A, &booking());
    for attempt in 1..=3 {
        assert_eq!(dialed(&edge), attempt);
        status(&edge, "call_0001", &[("CallSid", &sid(attempt)), ("CallStatus", "no-answer")]);
        edge.ports.clock.advance(Duration::minutes(10));
        wake_due(&edge);
    }
    assert_eq!(dialed(&edge), 3, "never more attempts than the policy");
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(record["status"], "no_answer");
    assert_eq!(attempt_statuses(&record), ["no_answer"; 3]);
    assert_eq!(edge.ports.webhooks.sent.borrow().len(), 1);
}

#[test]
fn a_bookings_own_policy_and_window_win_over_the_deployments() {
    let edge = edge_with(&[]);
    let mut body = booking();
    body["retry"] = json!({"max_attempts": 2, "interval_minutes": 5});
    body["calling_window"] = json!({"start": "00:00", "end": "24:00"});
    book(&edge, KEY_A, &body);
    assert_eq!(dialed(&edge), 1, "its window is open at 04:00");
    status(&edge, "call_0001", &[("CallSid", &sid(1)), ("CallStatus", "busy")]);
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["scheduled_for"], "2026-11-24T12:05:00Z");
    edge.ports.clock.advance(Duration::minutes(5));
    wake_due(&edge);
    status(&edge, "call_0001", &[("CallSid", &sid(2)), ("CallStatus", "busy")]);
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!((record["status"].as_str(), attempt_statuses(&record).len()), (Some("busy"), 2));
}

#[test]
fn cancel_during_a_wait_stops_every_attempt_to_come() {
    let edge = edge_with(&[("CALLING_WINDOW", "00:00-24:00")]);
    let mut body = booking();
    body["call_at"] = json!("2026-11-24T15:00:00Z");
    let created = book(&edge, KEY_A, &body).json_body();
    assert_eq!(
        (created["status"].as_str(), created["scheduled_for"].as_str()),
        (Some("scheduled"), Some("2026-11-24T15:00:00Z"))
    );
    assert_eq!(cancel(&edge, "call_0001"), 200);
    assert!(edge.ports.twilio.updates.borrow().is_empty(), "no call to hang up: none was placed");
    edge.ports.clock.advance(Duration::hours(4));
    wake_due(&edge);
    assert_eq!(dialed(&edge), 0, "nothing dialed after the cancel");
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!((record["status"].as_str(), record["scheduled_for"].clone()), (Some("canceled"), Value::Null));
    assert_eq!(edge.ports.webhooks.sent.borrow().len(), 1);

    // Between attempts too.
    book(&edge, KEY_A, &booking_to(&restaurant(1)));
    status(&edge, "call_0002", &[("CallSid", &sid(1)), ("CallStatus", "no-answer")]);
    assert_eq!(cancel(&edge, "call_0002"), 200);
    edge.ports.clock.advance(Duration::hours(1));
    wake_due(&edge);
    assert_eq!(dialed(&edge), 1);
    assert_eq!(attempt_statuses(&get(&edge, KEY_A, "call_0002").json_body()), ["no_answer"]);
}

#[test]
fn a_booking_that_cannot_be_called_in_time_is_refused_with_the_reason() {
    let edge = edge_with(&[]);
    // 04:00 in Los Angeles, a table at 09:00 the same morning: the window opens at 10:00.
    let mut early = booking();
    early["reservation"]["date"] = json!("2026-11-24");
    early["reservation"]["time"] = json!("09:00");
    let refused = book(&edge, KEY_A, &early);
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json_body()["error"]["field"], "reservation.time");
    let message = refused.json_body()["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("10:00") && message.contains("last moment to call"), "{message}");

    let mut outside = booking();
    outside["call_at"] = json!("2026-11-24T13:00:00Z"); // 05:00 in Los Angeles
    let refused = book(&edge, KEY_A, &outside);
    assert_eq!((refused.status, refused.json_body()["error"]["field"].as_str()), (422, Some("call_at")));
    assert_eq!(dialed(&edge), 0);
}

#[test]
fn a_booking_waiting_for_its_next_attempt_holds_no_call_slot() {
    let edge = edge_with(&[("CALLING_WINDOW", "00:00-24:00"), ("MAX_CALLS_IN_FLIGHT", "1")]);
    book(&edge, KEY_A, &booking());
    status(&edge, "call_0001", &[("CallSid", &sid(1)), ("CallStatus", "busy")]);
    // Its slot went back while it waits: another booking may dial.
    assert_eq!(book(&edge, KEY_A, &booking_to(&restaurant(1))).status, 201);
    assert_eq!(dialed(&edge), 2);
    // Its time comes while the other call holds the key's one slot: it waits a minute more.
    edge.ports.clock.advance(Duration::minutes(10));
    wake_due(&edge);
    assert_eq!(dialed(&edge), 2, "no free slot: not dialed");
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(
        (record["status"].as_str(), record["scheduled_for"].as_str()),
        (Some("scheduled"), Some("2026-11-24T12:11:00Z"))
    );
    assert_eq!(attempt_statuses(&record), ["busy"], "the attempt that could not be placed is not counted");
    status(&edge, "call_0002", &[("CallSid", &sid(2)), ("CallStatus", "completed")]);
    edge.ports.clock.advance(Duration::minutes(1));
    wake_due(&edge);
    assert_eq!(dialed(&edge), 3, "placed once the slot is free");
    assert_eq!(attempt_statuses(&get(&edge, KEY_A, "call_0001").json_body()), ["busy", "dialing"]);
}

#[test]
fn a_booking_that_finds_no_free_slot_before_its_last_moment_ends_failed_with_the_reason() {
    let edge = edge_with(&[("CALLING_WINDOW", "00:00-24:00"), ("MAX_CALLS_IN_FLIGHT", "1")]);
    // 12:00 UTC; the table is at 12:45 UTC (04:45 in Los Angeles): the last moment to call
    // is 12:15, before the other call's slot lapses (12:20, its longest possible call).
    let mut soon = booking();
    soon["reservation"]["date"] = json!("2026-11-24");
    soon["reservation"]["time"] = json!("04:45");
    assert_eq!(book(&edge, KEY_A, &soon).status, 201);
    status(&edge, "call_0001", &[("CallSid", &sid(1)), ("CallStatus", "busy")]);
    assert_eq!(book(&edge, KEY_A, &booking_to(&restaurant(1))).status, 201, "holds the key's one slot from now on");
    for _ in 0..18 {
        edge.ports.clock.advance(Duration::minutes(1));
        wake_due(&edge);
    }
    assert_eq!(dialed(&edge), 2, "never placed: no slot until past its last moment");
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(record["status"], "failed");
    assert_eq!(record["error"]["code"], "not_placed_in_time");
    assert_eq!(record["scheduled_for"], Value::Null);
    assert_eq!(attempt_statuses(&record), ["busy"]);
    let webhooks = edge.ports.webhooks.sent.borrow();
    assert_eq!(webhooks.iter().filter(|(_, body, _)| body.contains("call_0001")).count(), 1);
}

#[test]
fn a_past_attempts_recording_is_deleted_at_twilio_since_the_record_keeps_only_the_answered_ones() {
    let edge = edge_with(&[("CALLING_WINDOW", "00:00-24:00")]);
    let mut body = booking();
    body["record"] = json!(true);
    assert_eq!(book(&edge, KEY_A, &body).status, 201);
    // A machine answered the first attempt (recorded from the answer) and was hung up on.
    status(&edge, "call_0001", &[("CallSid", &sid(1)), ("CallStatus", "in-progress"), ("AnsweredBy", "machine_start")]);
    status(&edge, "call_0001", &[("CallSid", &sid(1)), ("CallStatus", "completed"), ("CallDuration", "4")]);
    edge.ports.clock.advance(Duration::minutes(10));
    wake_due(&edge);
    assert_eq!(dialed(&edge), 2, "voicemail is tried again");
    let voicemail_recording = "RE11111111111111111111111111111111";
    let recorded = [
        ("CallSid", sid(1)),
        ("RecordingSid", voicemail_recording.to_owned()),
        ("RecordingStatus", "completed".to_owned()),
        ("RecordingUrl", format!("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{voicemail_recording}")),
    ];
    let recorded: Vec<(&str, &str)> = recorded.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(send(&edge, twilio("/twilio/recording/call_0001", &recorded)).status, 204);
    assert_eq!(*edge.ports.twilio.deleted_recordings.borrow(), [voicemail_recording]);
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["recording"], Value::Null);
}
