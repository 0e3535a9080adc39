//! The edge's fold of Twilio callbacks and media-worker events: forward-only, applied
//! once, and the same final record whatever order or repetition they arrive in.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use shared::booking::BookingRequest;
use shared::call::{Applied, CallLedger, CallStatus};
use shared::events::{CallEvent, CallEventKind, CallStats, EndReason, Outcome, OutcomeResult, Speaker};
use shared::twilio::form;
use shared::twilio::status::{AnsweredBy, StatusCallback};

fn now() -> DateTime<Utc> {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

fn request() -> BookingRequest {
    let body = br#"{"restaurant":{"name":"Chez Panisse","phone":"+15105485525"},"reservation":{"date":"2026-12-05","time":"19:30","party_size":4,"name":"Ada Lovelace"},"timezone":"America/Los_Angeles"}"#;
    BookingRequest::parse(body, now()).unwrap()
}

fn ledger() -> CallLedger {
    CallLedger::new("call_1".into(), "owner".into(), request(), now())
}

fn callback(status: &str, seq: u32, extra: &str) -> StatusCallback {
    let body = format!("CallSid=CA1&AccountSid=AC1&CallStatus={status}&SequenceNumber={seq}{extra}");
    StatusCallback::from_form(&form::parse(body.as_bytes())).unwrap()
}

#[derive(Debug, Clone)]
enum Delivery {
    Status(StatusCallback),
    Event(CallEvent),
}

fn event(id: &str, kind: CallEventKind) -> CallEvent {
    CallEvent { id: id.into(), kind }
}

fn confirmed(code: &str) -> Outcome {
    Outcome {
        result: OutcomeResult::Confirmed,
        confirmation_number: Some(code.into()),
        confirmed_date: Some("2026-12-05".into()),
        confirmed_time: Some("19:30".into()),
        party_size: Some(4),
        notes: None,
        code_verification: None,
        heard_code: None,
    }
}

/// A complete answered call as Twilio and the media worker would deliver it.
fn answered_call() -> Vec<Delivery> {
    vec![
        Delivery::Status(callback("initiated", 0, "")),
        Delivery::Status(callback("ringing", 1, "")),
        Delivery::Status(callback("in-progress", 2, "&AnsweredBy=human")),
        Delivery::Event(event("MZ1-1", CallEventKind::StreamStarted { stream_sid: "MZ1".into() })),
        Delivery::Event(event(
            "MZ1-2",
            CallEventKind::Transcript { speaker: Speaker::Restaurant, text: "Chez Panisse.".into(), at_ms: 900 },
        )),
        Delivery::Event(event(
            "MZ1-3",
            CallEventKind::Transcript { speaker: Speaker::Agent, text: "A table for four?".into(), at_ms: 1500 },
        )),
        Delivery::Event(event(
            "MZ1-4",
            CallEventKind::Transcript { speaker: Speaker::Restaurant, text: "Booked, code A73X.".into(), at_ms: 4000 },
        )),
        Delivery::Event(event("MZ1-5", CallEventKind::Outcome { outcome: confirmed("A73Y"), at_ms: 4100 })),
        // The agent corrected itself later: the newer outcome must win in any order.
        Delivery::Event(event("MZ1-6", CallEventKind::Outcome { outcome: confirmed("A73X"), at_ms: 5200 })),
        Delivery::Event(event(
            "MZ1-7",
            CallEventKind::StreamEnded { reason: EndReason::AgentHungUp, stats: CallStats::default() },
        )),
        Delivery::Status(callback("completed", 3, "&CallDuration=49&AnsweredBy=human")),
    ]
}

fn apply_all(deliveries: &[Delivery]) -> CallLedger {
    let mut ledger = ledger();
    ledger.dialed("CA1", now());
    for (i, delivery) in deliveries.iter().enumerate() {
        let at = now() + Duration::seconds(i as i64);
        match delivery {
            Delivery::Status(cb) => ledger.apply_status_callback(cb, at),
            Delivery::Event(ev) => ledger.apply_event(ev, at),
        };
    }
    ledger
}

/// The record without `updated_at`, which honestly differs with arrival times.
fn essence(ledger: &CallLedger) -> serde_json::Value {
    let mut value = serde_json::to_value(&ledger.record).unwrap();
    value.as_object_mut().unwrap().remove("updated_at");
    value
}

#[test]
fn an_answered_call_in_order_ends_complete() {
    let ledger = apply_all(&answered_call());
    let record = &ledger.record;
    assert_eq!(record.status, CallStatus::Completed);
    assert_eq!(record.twilio_call_sid.as_deref(), Some("CA1"));
    assert_eq!(record.answered_by, Some(AnsweredBy::Human));
    assert_eq!(record.duration_seconds, Some(49));
    assert_eq!(record.outcome.as_ref().unwrap().confirmation_number.as_deref(), Some("A73X"));
    let texts: Vec<&str> = record.transcript.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["Chez Panisse.", "A table for four?", "Booked, code A73X."]);
    assert!(ledger.is_final());
}

#[test]
fn late_callbacks_never_move_a_call_backwards() {
    let mut ledger = ledger();
    ledger.apply_status_callback(&callback("in-progress", 2, ""), now());
    assert_eq!(ledger.apply_status_callback(&callback("ringing", 1, ""), now()), Applied::Unchanged);
    assert_eq!(ledger.apply_status_callback(&callback("initiated", 0, ""), now()), Applied::Unchanged);
    assert_eq!(ledger.record.status, CallStatus::InProgress);
    ledger.apply_status_callback(&callback("completed", 3, "&CallDuration=12"), now());
    assert_eq!(ledger.apply_status_callback(&callback("in-progress", 2, ""), now()), Applied::Unchanged);
    assert_eq!(ledger.record.status, CallStatus::Completed);
    // A repeat of the completed callback is a no-op.
    assert_eq!(ledger.apply_status_callback(&callback("completed", 3, "&CallDuration=12"), now()), Applied::Unchanged);
}

#[test]
fn but_late_callbacks_still_contribute_facts() {
    let mut ledger = ledger();
    ledger.apply_status_callback(&callback("completed", 3, "&CallDuration=30"), now());
    ledger.apply_status_callback(&callback("in-progress", 2, "&AnsweredBy=human"), now());
    assert_eq!(ledger.record.status, CallStatus::Completed);
    assert_eq!(ledger.record.answered_by, Some(AnsweredBy::Human));
    assert_eq!(ledger.record.duration_seconds, Some(30));
}

#[test]
fn repeated_events_apply_once() {
    let mut ledger = ledger();
    let line = event("MZ1-2", CallEventKind::Transcript { speaker: Speaker::Agent, text: "Hello".into(), at_ms: 10 });
    assert_eq!(ledger.apply_event(&line, now()), Applied::Changed);
    assert_eq!(ledger.apply_event(&line, now()), Applied::Unchanged);
    assert_eq!(ledger.record.transcript.len(), 1);
}

#[test]
fn a_machine_answer_becomes_a_voicemail_outcome() {
    let mut ledger = ledger();
    ledger.apply_status_callback(&callback("in-progress", 2, "&AnsweredBy=machine_start"), now());
    assert!(ledger.record.outcome.is_none(), "not decided while the call is live");
    ledger.apply_status_callback(&callback("completed", 3, "&CallDuration=4"), now());
    assert_eq!(ledger.record.outcome.as_ref().unwrap().result, OutcomeResult::Voicemail);
    assert!(ledger.is_final());
}

#[test]
fn busy_no_answer_and_failure_are_terminal_with_reasons() {
    for (status, expected) in
        [("busy", CallStatus::Busy), ("no-answer", CallStatus::NoAnswer), ("failed", CallStatus::Failed)]
    {
        let mut ledger = ledger();
        ledger.apply_status_callback(&callback("ringing", 1, ""), now());
        ledger.apply_status_callback(&callback(status, 2, "&ErrorCode=32009&ErrorMessage=Carrier+rejected"), now());
        assert_eq!(ledger.record.status, expected);
        assert!(ledger.is_final());
        if expected == CallStatus::Failed {
            let error = ledger.record.error.as_ref().unwrap();
            assert_eq!((error.code.as_str(), error.message.as_str()), ("32009", "Carrier rejected"));
        }
    }
}

#[test]
fn a_stream_still_running_keeps_the_call_open() {
    let mut ledger = ledger();
    ledger.apply_event(&event("MZ1-1", CallEventKind::StreamStarted { stream_sid: "MZ1".into() }), now());
    ledger.apply_status_callback(&callback("completed", 3, ""), now());
    assert!(!ledger.is_final(), "the outcome may still be on its way");
    ledger.apply_event(
        &event("MZ1-9", CallEventKind::StreamEnded { reason: EndReason::CallerHungUp, stats: CallStats::default() }),
        now(),
    );
    assert!(ledger.is_final());
}

#[test]
fn an_explicit_cancel_is_kept_against_twilios_completed() {
    let mut ledger = ledger();
    ledger.apply_status_callback(&callback("in-progress", 2, ""), now());
    ledger.canceled(now());
    ledger.apply_status_callback(&callback("completed", 3, "&CallDuration=5"), now());
    assert_eq!(ledger.record.status, CallStatus::Canceled);
    assert_eq!(ledger.record.duration_seconds, Some(5));
}

#[test]
fn every_status_pair_respects_the_order() {
    for from in CallStatus::ALL {
        for to in CallStatus::ALL {
            let forward = from.may_become(to);
            if from.is_terminal() && to.is_terminal() {
                continue; // precedence among endings, checked above
            }
            let rank = |s: CallStatus| CallStatus::ALL.iter().position(|x| *x == s).unwrap().min(4);
            assert_eq!(forward, rank(to) > rank(from), "{from:?} -> {to:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any order of the deliveries, with any of them repeated, ends in the same record.
    #[test]
    fn any_order_and_repetition_ends_in_the_same_record(
        order in Just((0..answered_call().len()).collect::<Vec<_>>()).prop_shuffle(),
        repeats in proptest::collection::vec(0..answered_call().len(), 0..6),
    ) {
        let all = answered_call();
        let expected = essence(&apply_all(&all));
        let mut shuffled: Vec<Delivery> = order.iter().map(|&i| all[i].clone()).collect();
        for (n, &r) in repeats.iter().enumerate() {
            let at = (n * 3) % (shuffled.len() + 1);
            shuffled.insert(at, all[r].clone());
        }
        let got = apply_all(&shuffled);
        prop_assert_eq!(essence(&got), expected);
        prop_assert!(got.is_final());
    }
}
