//! The edge's fold of Twilio callbacks and media-worker events: forward-only, applied
//! once, and the same final record whatever order or repetition they arrive in.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use shared::booking::BookingRequest;
use shared::call::{Applied, CallLedger, CallStatus};
use shared::events::{CallEvent, CallEventKind, CallStats, EndReason, Outcome, OutcomeResult, Speaker, TokenUsage};
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
    // Named as the media worker names them: `{stream_sid}-{n}`.
    let stream = id.split('-').next().map(str::to_owned);
    CallEvent { id: id.into(), stream, kind }
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

fn stats(first_audio: u64, latencies: &[u64], audio_tokens: u64, cost: Option<u64>) -> CallStats {
    CallStats {
        first_agent_audio_ms: Some(first_audio),
        reply_latencies_ms: latencies.to_vec(),
        heard_latencies_ms: latencies.iter().map(|ms| ms + 20).collect(),
        worker_added_latencies_us: latencies.iter().map(|ms| ms / 10).collect(),
        barge_ins: 1,
        model: Some("gpt-realtime-2.1".into()),
        transcription_model: Some("gpt-transcribe".into()),
        usage: TokenUsage {
            responses: 2,
            text_input_tokens: 100,
            audio_input_tokens: audio_tokens,
            cached_text_tokens: 10,
            cached_audio_tokens: 0,
            text_output_tokens: 20,
            audio_output_tokens: 2 * audio_tokens,
        },
        audio_in_ms: 3_000,
        audio_out_ms: 2_000,
        transcribed_ms: 1_500,
        estimated_cost_micro_usd: cost,
    }
}

/// A complete answered call as Twilio and the media worker would deliver it: a first
/// stream that was superseded after one reply, then the stream that finished the call.
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
            "MZ0-9",
            CallEventKind::StreamEnded { reason: EndReason::Superseded, stats: stats(700, &[640], 400, Some(40_000)) },
        )),
        Delivery::Event(event(
            "MZ1-7",
            CallEventKind::StreamEnded {
                reason: EndReason::AgentHungUp,
                stats: stats(1_100, &[900, 450], 1_000, Some(95_000)),
            },
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

/// The record without `updated_at` and the attempt's `ended_at`, which honestly differ
/// with arrival times.
fn essence(ledger: &CallLedger) -> serde_json::Value {
    let mut value = serde_json::to_value(&ledger.record).unwrap();
    value.as_object_mut().unwrap().remove("updated_at");
    for attempt in value["attempts"].as_array_mut().unwrap() {
        attempt.as_object_mut().unwrap().remove("ended_at");
    }
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
    // Both streams' metrics, summed: the record keeps what the worker measured.
    let metrics = record.metrics.as_ref().expect("the record keeps the metrics");
    assert_eq!(metrics.first_agent_audio_ms, Some(700));
    assert_eq!(metrics.reply_latencies_ms, [450, 640, 900]);
    assert_eq!(metrics.heard_latencies_ms, [470, 660, 920]);
    assert_eq!(metrics.worker_added_latencies_us, [45, 64, 90]);
    assert_eq!(metrics.barge_ins, 2);
    assert_eq!(metrics.model.as_deref(), Some("gpt-realtime-2.1"));
    assert_eq!(metrics.usage.responses, 4);
    assert_eq!(metrics.usage.audio_input_tokens, 1_400);
    assert_eq!(metrics.usage.audio_output_tokens, 2_800);
    assert_eq!(metrics.usage.cached_text_tokens, 20);
    assert_eq!((metrics.audio_in_ms, metrics.audio_out_ms, metrics.transcribed_ms), (6_000, 4_000, 3_000));
    assert_eq!(metrics.estimated_cost_micro_usd, Some(135_000));
}

#[test]
fn metrics_appear_with_the_first_ended_stream_and_a_repeat_adds_nothing() {
    let mut ledger = ledger();
    assert!(ledger.record.metrics.is_none());
    let ended = event(
        "MZ1-9",
        CallEventKind::StreamEnded { reason: EndReason::CallerHungUp, stats: stats(800, &[500], 10, None) },
    );
    ledger.apply_event(&ended, now());
    ledger.apply_event(&ended, now());
    let metrics = ledger.record.metrics.clone().unwrap();
    assert_eq!(metrics, stats(800, &[500], 10, None));
    // A stream lost with its worker reports no figures: the record's stay as they were,
    // and a known cost is kept when another stream's is unknown.
    let lost =
        event("MZ1-lost", CallEventKind::StreamEnded { reason: EndReason::WorkerLost, stats: CallStats::default() });
    ledger.apply_event(&lost, now());
    assert_eq!(ledger.record.metrics.as_ref(), Some(&metrics));
    let priced = event(
        "MZ2-9",
        CallEventKind::StreamEnded { reason: EndReason::AgentHungUp, stats: stats(900, &[], 10, Some(7)) },
    );
    ledger.apply_event(&priced, now());
    assert_eq!(ledger.record.metrics.as_ref().unwrap().estimated_cost_micro_usd, Some(7));
}

#[test]
fn stream_ended_events_from_before_metrics_still_parse() {
    let old = r#"{"id":"MZ1-9","type":"stream_ended","reason":"agent_hung_up","stats":{"first_agent_audio_ms":5,"reply_latencies_ms":[],"barge_ins":0}}"#;
    let parsed: CallEvent = serde_json::from_str(old).unwrap();
    let CallEventKind::StreamEnded { stats, .. } = parsed.kind else { panic!("{parsed:?}") };
    assert_eq!(stats.first_agent_audio_ms, Some(5));
    assert_eq!(stats.usage, TokenUsage::default());
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
            // Waiting (queued, or scheduled for a later attempt) is one stage: neither
            // moves to the other by a fold (a new attempt sets it outright).
            let stages: [&[CallStatus]; 4] = [
                &[CallStatus::Queued, CallStatus::Scheduled],
                &[CallStatus::Dialing],
                &[CallStatus::Ringing],
                &[CallStatus::InProgress],
            ];
            let rank = |s: CallStatus| stages.iter().position(|stage| stage.contains(&s)).unwrap_or(4);
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
