//! The whole route table, natively, against in-memory ports.

mod common;

use chrono::Duration;
use common::*;
use edge::app::{Edge, MAX_BODY_BYTES};
use edge::config::EdgeConfig;
use edge::http::EdgeRequest;
use edge::ports::TwilioError;
use serde_json::{json, Value};
use shared::auth;
use shared::twilio::rest::{TwilioApiError, UpdateCall};

#[test]
fn booking_creates_the_call_with_the_contracts_twilio_parameters() {
    let edge = edge();
    let response = book(&edge, KEY_A, &booking());
    assert_eq!(response.status, 201, "{:?}", response.json_body());
    let body = response.json_body();
    assert_eq!(body["call_id"], "call_0001");
    assert_eq!(body["status"], "dialing");
    assert_eq!(body["links"]["self"], "/v1/calls/call_0001");

    let created = edge.ports.twilio.created.borrow();
    assert_eq!(created.len(), 1);
    let call = &created[0];
    assert_eq!(call.to, "+15105485525");
    assert_eq!(call.from, "+15005550006");
    assert_eq!(call.url, format!("{BASE}/twilio/twiml/call_0001"));
    assert_eq!(call.status_callback, format!("{BASE}/twilio/status/call_0001"));
    assert_eq!(call.amd_callback, Some(format!("{BASE}/twilio/amd/call_0001")), "asynchronous AMD");
    assert_eq!((call.send_digits.clone(), call.recording_callback.clone()), (None, None), "neither asked for");
    assert_eq!((call.timeout_seconds, call.time_limit_seconds), (30, 900));

    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(record["status"], "dialing");
    assert_eq!(record["twilio_call_sid"], format!("CA{:032}", 1));
    assert_eq!(record["request"]["restaurant"]["name"], "Chez Panisse");
    assert_eq!(record["transcript"], json!([]));
    assert!(record.get("owner").is_none(), "bookkeeping stays private");
}

#[test]
fn bad_bookings_get_the_contracts_errors() {
    let edge = edge();
    let unauthenticated = send(&edge, EdgeRequest::new("POST", "/v1/calls").body(booking().to_string()));
    assert_eq!((unauthenticated.status, error_code(&unauthenticated)), (401, "unauthorized".into()));
    assert_eq!(book(&edge, "Bearer nope", &booking()).status, 401);

    let malformed = send(&edge, EdgeRequest::new("POST", "/v1/calls").header("Authorization", KEY_A).body("{not json"));
    assert_eq!((malformed.status, error_code(&malformed)), (400, "malformed_json".into()));

    let mut invalid = booking();
    invalid["reservation"]["party_size"] = json!(0);
    let response = book(&edge, KEY_A, &invalid);
    assert_eq!(response.status, 422);
    assert_eq!(response.json_body()["error"]["field"], "reservation.party_size");
    assert!(response.json_body()["error"]["message"].as_str().unwrap().contains("between 1 and 50"));

    let huge = send(
        &edge,
        EdgeRequest::new("POST", "/v1/calls").header("Authorization", KEY_A).body(vec![b' '; MAX_BODY_BYTES + 1]),
    );
    assert_eq!(huge.status, 413);
    assert!(edge.ports.twilio.created.borrow().is_empty(), "nothing was dialed");
}

#[test]
fn idempotency_keys_never_dial_twice() {
    let edge = edge();
    let request = |body: &Value| {
        EdgeRequest::new("POST", "/v1/calls")
            .header("Authorization", KEY_A)
            .header("Idempotency-Key", "order-77")
            .body(body.to_string())
    };
    let first = send(&edge, request(&booking()));
    assert_eq!(first.status, 201);
    let again = send(&edge, request(&booking()));
    assert_eq!(again.status, 200);
    assert_eq!(again.json_body()["call_id"], first.json_body()["call_id"]);
    assert_eq!(edge.ports.twilio.created.borrow().len(), 1);

    let mut other = booking();
    other["reservation"]["party_size"] = json!(5);
    let conflict = send(&edge, request(&other));
    assert_eq!((conflict.status, error_code(&conflict)), (409, "conflict".into()));

    // Keys are per API key: another tenant's identical key is a different booking.
    let other_tenant = send(
        &edge,
        EdgeRequest::new("POST", "/v1/calls")
            .header("Authorization", KEY_B)
            .header("Idempotency-Key", "order-77")
            .body(booking_to(&restaurant(1)).to_string()),
    );
    assert_eq!(other_tenant.status, 201);
    assert_eq!(edge.ports.twilio.created.borrow().len(), 2);
}

#[test]
fn no_secret_reaches_a_response_a_webhook_or_storage() {
    let edge = edge();
    let mut responses = vec![
        book(&edge, KEY_A, &booking()),
        book(&edge, "Bearer wrong-key", &booking()),
        get(&edge, KEY_A, "call_0001"),
        get(&edge, KEY_B, "call_0001"),
        send(&edge, twilio("/twilio/twiml/call_0001", &[("CallSid", "CA1"), ("CallStatus", "in-progress")])),
        send(&edge, EdgeRequest::new("POST", "/twilio/status/call_0001").body("CallStatus=completed")),
        status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "completed"), ("CallDuration", "30")]),
        internal(&edge, "GET", "/internal/calls/call_0001", ""),
        send(&edge, EdgeRequest::new("GET", "/internal/calls/call_0001").header(auth::SIGNATURE_HEADER, "t=1,v1=00")),
    ];
    let ended = json!({"id": "MZ1-1", "type": "stream_ended", "reason": "agent_hung_up"}).to_string();
    responses.push(internal(&edge, "POST", "/internal/calls/call_0001/events", &ended));
    *edge.ports.twilio.refuse_with.borrow_mut() = Some(TwilioError::Network("connection refused".into()));
    responses.push(book(&edge, KEY_A, &booking()));
    edge.ports.store.set_unavailable(true);
    responses.push(book(&edge, KEY_A, &booking()));
    edge.ports.store.set_unavailable(false);
    assert_eq!(edge.ports.webhooks.sent.borrow().len(), 1, "the webhook was sent too");

    let mut seen: Vec<String> = responses.iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect();
    seen.extend(edge.ports.webhooks.sent.borrow().iter().map(|(_, body, _)| body.clone()));
    for key in edge.ports.store.list_now("") {
        seen.push(format!("{key} {}", edge.ports.store.entry(&key).unwrap()));
    }
    let api_key_a = KEY_A.trim_start_matches("Bearer ");
    let api_key_b = KEY_B.trim_start_matches("Bearer ");
    for (what, secret) in [
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
        ("INTERNAL_SECRET", SECRET),
        ("an API key", api_key_a),
        ("an API key", api_key_b),
    ] {
        assert!(!seen.iter().any(|text| text.contains(secret)), "{what} leaked: {seen:#?}");
    }
    // The TwiML carries a stream token (for Twilio's eyes only), never the secret it is made with.
    assert!(seen[4].contains("token"), "{}", seen[4]);
}

#[test]
fn twilio_refusing_is_a_502_with_its_code_and_the_record_says_failed() {
    let edge = edge();
    *edge.ports.twilio.refuse_with.borrow_mut() = Some(TwilioError::Api(TwilioApiError {
        code: 21211,
        message: "Invalid 'To' Phone Number".into(),
        more_info: None,
        status: 400,
    }));
    let response = book(&edge, KEY_A, &booking());
    assert_eq!(response.status, 502);
    let error = &response.json_body()["error"];
    assert_eq!(error["code"], "twilio_refused");
    assert_eq!(error["twilio"]["code"], 21211);
    assert_eq!(error["twilio"]["message"], "Invalid 'To' Phone Number");
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(record["status"], "failed");
    assert_eq!(record["error"]["code"], "twilio_21211");

    *edge.ports.twilio.refuse_with.borrow_mut() = Some(TwilioError::Network("connection refused".into()));
    let response = book(&edge, KEY_A, &booking());
    assert_eq!((response.status, error_code(&response)), (502, "twilio_unreachable".into()));
}

#[test]
fn calls_are_visible_only_to_their_own_key() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    assert_eq!(get(&edge, KEY_A, "call_0001").status, 200);
    let other = get(&edge, KEY_B, "call_0001");
    let missing = get(&edge, KEY_A, "call_9999");
    assert_eq!((other.status, missing.status), (404, 404));
    assert_eq!(other.body, missing.body, "another tenant's call looks exactly like no call");
    let cancel = send(&edge, EdgeRequest::new("POST", "/v1/calls/call_0001/cancel").header("Authorization", KEY_B));
    assert_eq!(cancel.status, 404);
}

#[test]
fn twiml_connects_the_stream_with_a_valid_token() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    let response = send(
        &edge,
        twilio(
            "/twilio/twiml/call_0001",
            &[("CallSid", "CA1"), ("CallStatus", "in-progress"), ("AnsweredBy", "human")],
        ),
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type, "text/xml");
    let xml = String::from_utf8(response.body).unwrap();
    assert!(xml.contains("<Connect><Stream url=\"wss://media.example.com/media\">"), "{xml}");
    assert!(xml.contains("<Parameter name=\"call_id\" value=\"call_0001\"/>"));
    let token = xml.split("name=\"token\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let now = start().timestamp();
    assert_eq!(auth::verify_stream_token(SECRET, "call_0001", Some(token), now), Ok(()));
    assert_eq!(auth::verify_stream_token(SECRET, "call_0001", Some(token), now + 301), Err(auth::AuthError::Expired));
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["answered_by"], "human");
}

#[test]
fn twiml_for_a_machine_hangs_up_and_records_voicemail() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    let response = send(
        &edge,
        twilio(
            "/twilio/twiml/call_0001",
            &[("CallSid", "CA1"), ("CallStatus", "in-progress"), ("AnsweredBy", "machine_start")],
        ),
    );
    assert!(String::from_utf8(response.body).unwrap().contains("<Hangup/>"));
    status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "completed"), ("CallDuration", "3")]);
    let record = get(&edge, KEY_A, "call_0001").json_body();
    assert_eq!(record["status"], "completed");
    assert_eq!(record["outcome"]["result"], "voicemail");
}

#[test]
fn twilio_routes_refuse_missing_wrong_and_replayed_signatures() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    let unsigned = EdgeRequest::new("POST", "/twilio/status/call_0001").body("CallSid=CA1&CallStatus=ringing");
    assert_eq!(send(&edge, unsigned).status, 403);
    let wrong = twilio("/twilio/status/call_0001", &[("CallSid", "CA1"), ("CallStatus", "ringing")])
        .body("CallSid=CA1&CallStatus=completed");
    assert_eq!(send(&edge, wrong).status, 403, "a body changed after signing is refused");
    // A signature made for another call's URL cannot be replayed against this one.
    let mut replayed = twilio("/twilio/status/call_0002", &[("CallSid", "CA1"), ("CallStatus", "completed")]);
    replayed.path = "/twilio/status/call_0001".into();
    assert_eq!(send(&edge, replayed).status, 403);
    let twiml =
        EdgeRequest::new("POST", "/twilio/twiml/call_0001").header("X-Twilio-Signature", "AAAA").body("CallSid=CA1");
    assert_eq!(send(&edge, twiml).status, 403);
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["status"], "dialing");
}

#[test]
fn a_replayed_twiml_request_is_refused_and_mints_no_second_stream_token() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    let answer = [("CallSid", "CA1"), ("CallStatus", "in-progress"), ("AnsweredBy", "human")];
    let first = send(&edge, twilio("/twilio/twiml/call_0001", &answer));
    assert_eq!(first.status, 200);
    assert!(String::from_utf8_lossy(&first.body).contains("name=\"token\""));
    // The same signed request again, byte for byte: Twilio asks once, so this is a
    // replay after a fresh token for the media stream.
    let replay = send(&edge, twilio("/twilio/twiml/call_0001", &answer));
    assert_eq!(replay.status, 403);
    assert_eq!(replay.json_body()["error"]["code"], "forbidden");
    assert!(!String::from_utf8_lossy(&replay.body).contains("token"));
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["status"], "in_progress", "the call is untouched");
}

#[test]
fn a_status_callback_replayed_outside_its_window_or_undated_is_refused() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    let ringing = [("CallSid", "CA1"), ("CallStatus", "ringing"), ("SequenceNumber", "1")];
    let captured = status_callback("call_0001", &ringing, start());
    assert_eq!(send(&edge, captured.clone()).status, 204);
    // Twilio's own duplicates arrive within the window: accepted, and change nothing.
    edge.ports.clock.advance(Duration::minutes(15));
    assert_eq!(send(&edge, captured.clone()).status, 204);
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["status"], "ringing");
    // The same capture later: refused, although its signature is valid.
    edge.ports.clock.advance(Duration::seconds(1));
    let replay = send(&edge, captured);
    assert_eq!(replay.status, 403);
    // A completed callback sent now is fine; a signed one without a Timestamp is not.
    let completed = [("CallSid", "CA1"), ("CallStatus", "completed"), ("CallDuration", "30")];
    assert_eq!(send(&edge, twilio("/twilio/status/call_0001", &completed)).status, 403);
    let now = start() + Duration::seconds(15 * 60 + 1);
    let from_the_future = status_callback("call_0001", &completed, now + Duration::minutes(16));
    assert_eq!(send(&edge, from_the_future).status, 403);
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["status"], "ringing");
    assert_eq!(send(&edge, status_callback("call_0001", &completed, now)).status, 204);
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["status"], "completed");
}

#[test]
fn callbacks_in_any_order_move_forward_only_and_the_webhook_fires_once() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    let id = "call_0001";
    assert_eq!(
        status(&edge, id, &[("CallSid", "CA1"), ("CallStatus", "ringing"), ("SequenceNumber", "1")]).status,
        204
    );
    status(
        &edge,
        id,
        &[("CallSid", "CA1"), ("CallStatus", "in-progress"), ("SequenceNumber", "2"), ("AnsweredBy", "human")],
    );
    status(&edge, id, &[("CallSid", "CA1"), ("CallStatus", "initiated"), ("SequenceNumber", "0")]);
    assert_eq!(get(&edge, KEY_A, id).json_body()["status"], "in_progress");

    let event = |body: Value| internal(&edge, "POST", &format!("/internal/calls/{id}/events"), &body.to_string());
    assert_eq!(event(json!({"id": "MZ1-1", "type": "stream_started", "stream_sid": "MZ1"})).status, 200);
    event(json!({"id": "MZ1-2", "type": "transcript", "speaker": "restaurant", "text": "Chez Panisse.", "at_ms": 800}));
    let repeated = event(
        json!({"id": "MZ1-2", "type": "transcript", "speaker": "restaurant", "text": "Chez Panisse.", "at_ms": 800}),
    );
    assert_eq!(repeated.json_body()["applied"], false);
    event(
        json!({"id": "MZ1-3", "type": "outcome", "at_ms": 5000, "outcome": {"result": "confirmed", "confirmation_number": "A73X", "confirmed_date": "2026-12-05", "confirmed_time": "19:30", "party_size": 4, "notes": null}}),
    );

    // Twilio reports the end before the media worker does: not final yet.
    status(
        &edge,
        id,
        &[("CallSid", "CA1"), ("CallStatus", "completed"), ("SequenceNumber", "3"), ("CallDuration", "61")],
    );
    assert!(edge.ports.webhooks.sent.borrow().is_empty());
    event(json!({"id": "MZ1-4", "type": "stream_ended", "reason": "agent_hung_up"}));
    // A late duplicate changes nothing and sends nothing more.
    status(
        &edge,
        id,
        &[("CallSid", "CA1"), ("CallStatus", "completed"), ("SequenceNumber", "3"), ("CallDuration", "61")],
    );

    let record = get(&edge, KEY_A, id).json_body();
    assert_eq!(record["status"], "completed");
    assert_eq!(record["duration_seconds"], 61);
    assert_eq!(record["outcome"]["confirmation_number"], "A73X");
    assert_eq!(record["transcript"].as_array().unwrap().len(), 1);

    let sent = edge.ports.webhooks.sent.borrow();
    assert_eq!(sent.len(), 1, "the completion webhook fires once");
    let (url, body, signature) = &sent[0];
    assert_eq!(url, "https://user.example/hooks/concierge?source=test");
    let delivered: Value = serde_json::from_str(body).unwrap();
    assert_eq!(delivered["outcome"]["result"], "confirmed");
    assert_eq!(shared::webhook::verify(WHSEC_A, Some(signature), body.as_bytes(), start().timestamp()), Ok(()));
}

/// The README's recipe, step by step, with nothing but an HMAC: split the header,
/// HMAC-SHA256 of `t`, `.`, the raw body with the key's webhook secret, compare, and
/// refuse a `t` more than 300 s away.
fn verify_as_the_readme_says(secret: &str, header: &str, body: &[u8], now: i64) -> bool {
    use hmac::{Hmac, Mac};
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1.push(value.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    v1.contains(&expected) && (now - t).abs() <= 300
}

#[test]
fn a_webhook_is_signed_with_its_own_keys_webhook_secret_never_the_internal_one() {
    let edge = edge();
    assert_eq!(book(&edge, KEY_A, &booking()).status, 201);
    assert_eq!(book(&edge, KEY_B, &booking_to(&restaurant(1))).status, 201);
    status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "busy")]);
    status(&edge, "call_0002", &[("CallSid", "CA2"), ("CallStatus", "no-answer")]);
    let sent = edge.ports.webhooks.sent.borrow();
    assert_eq!(sent.len(), 2);
    let now = start().timestamp();
    for ((_, body, header), (own, other)) in sent.iter().zip([(WHSEC_A, WHSEC_B), (WHSEC_B, WHSEC_A)]) {
        assert!(verify_as_the_readme_says(own, header, body.as_bytes(), now), "{header}");
        assert!(!verify_as_the_readme_says(other, header, body.as_bytes(), now), "another key's secret");
        assert!(!verify_as_the_readme_says(SECRET, header, body.as_bytes(), now), "INTERNAL_SECRET");
        assert!(!verify_as_the_readme_says(own, header, body.as_bytes(), now + 301), "stale");
        assert!(auth::verify_request(
            SECRET,
            Some(header),
            "POST",
            "/hooks/concierge?source=test",
            body.as_bytes(),
            now
        )
        .is_err());
    }
}

#[test]
fn a_delivered_webhook_sent_back_to_an_internal_route_is_refused_by_the_signature_check() {
    let edge = edge();
    // The user picks the callback's path: the one of the edge's internal event route.
    let mut body = booking();
    body["callback_url"] = json!("https://user.example/internal/calls/call_0001/events");
    assert_eq!(book(&edge, KEY_A, &body).status, 201);
    status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "busy")]);
    let (_, delivered, signature) = edge.ports.webhooks.sent.borrow()[0].clone();
    for header in [shared::webhook::SIGNATURE_HEADER, auth::SIGNATURE_HEADER] {
        let replay = EdgeRequest::new("POST", "/internal/calls/call_0001/events")
            .header(header, &signature)
            .body(delivered.clone());
        let response = send(&edge, replay);
        assert_eq!((response.status, error_code(&response)), (403, "forbidden".into()), "under {header}");
    }
}

#[test]
fn a_refused_webhook_is_retried_with_backoff_until_accepted() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    edge.ports.webhooks.answer.borrow_mut().extend([500, 503]);
    status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "busy")]);
    assert_eq!(edge.ports.webhooks.sent.borrow().len(), 1);
    // Not due yet: the first retry waits a minute.
    assert_eq!(wake_due(&edge), 0);
    assert_eq!(edge.ports.webhooks.sent.borrow().len(), 1);
    edge.ports.clock.advance(Duration::seconds(61));
    assert_eq!(wake_due(&edge), 0, "refused again");
    assert_eq!(edge.ports.webhooks.sent.borrow().len(), 2);
    // The second retry waits two minutes.
    edge.ports.clock.advance(Duration::seconds(61));
    assert_eq!(wake_due(&edge), 0);
    edge.ports.clock.advance(Duration::seconds(60));
    assert_eq!(wake_due(&edge), 1);
    assert_eq!(edge.ports.webhooks.sent.borrow().len(), 3);
    edge.ports.clock.advance(Duration::hours(5));
    assert!(edge.ports.store.calls_due(start() + Duration::days(1)).is_empty(), "delivered: nothing pending");
    // Later callbacks send nothing more.
    status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "busy")]);
    assert_eq!(edge.ports.webhooks.sent.borrow().len(), 3);
}

#[test]
fn a_webhook_is_given_up_after_the_last_attempt() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    edge.ports.webhooks.answer.borrow_mut().extend([500; 20]);
    status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "no-answer")]);
    for _ in 0..30 {
        edge.ports.clock.advance(Duration::hours(4));
        wake_due(&edge);
    }
    assert_eq!(edge.ports.webhooks.sent.borrow().len(), edge::keeper::WEBHOOK_MAX_ATTEMPTS as usize);
    assert!(edge.ports.store.calls_due(start() + Duration::days(30)).is_empty(), "given up: nothing pending");
    assert_eq!(get(&edge, KEY_A, "call_0001").json_body()["status"], "no_answer", "the record is unaffected");
}

#[test]
fn internal_routes_need_a_fresh_valid_signature() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    let context = internal(&edge, "GET", "/internal/calls/call_0001", "");
    assert_eq!(context.status, 200);
    let body = context.json_body();
    assert_eq!(body["call_id"], "call_0001");
    assert!(body["instructions"].as_str().unwrap().contains("Chez Panisse"));
    assert_eq!(body["request"]["reservation"]["party_size"], 4);

    let unsigned = send(&edge, EdgeRequest::new("GET", "/internal/calls/call_0001"));
    assert_eq!(unsigned.status, 403);
    let forged = auth::sign_request("wrong-secret", start().timestamp(), "GET", "/internal/calls/call_0001", b"");
    assert_eq!(
        send(&edge, EdgeRequest::new("GET", "/internal/calls/call_0001").header(auth::SIGNATURE_HEADER, &forged))
            .status,
        403
    );
    let stale = auth::sign_request(SECRET, start().timestamp() - 301, "GET", "/internal/calls/call_0001", b"");
    assert_eq!(
        send(&edge, EdgeRequest::new("GET", "/internal/calls/call_0001").header(auth::SIGNATURE_HEADER, &stale)).status,
        403
    );
    assert_eq!(internal(&edge, "GET", "/internal/calls/call_0404", "").status, 404);
    let bad_event = internal(&edge, "POST", "/internal/calls/call_0001/events", "{\"id\":1}");
    assert_eq!(bad_event.status, 400);
}

#[test]
fn cancel_hangs_up_or_stops_the_call_and_then_refuses() {
    let edge = edge();
    book(&edge, KEY_A, &booking());
    let cancel = || send(&edge, EdgeRequest::new("POST", "/v1/calls/call_0001/cancel").header("Authorization", KEY_A));
    let response = cancel();
    assert_eq!(response.status, 200);
    assert_eq!(response.json_body()["status"], "canceled");
    // `Status=completed` ends a call in any state, so a record that lags Twilio (ringing
    // here, answered there) still hangs up.
    assert_eq!(edge.ports.twilio.updates.borrow()[0].1, UpdateCall::HangUp, "not yet answered: ended too");
    assert_eq!(cancel().status, 409);

    book(&edge, KEY_A, &booking());
    status(&edge, "call_0002", &[("CallSid", "CA2"), ("CallStatus", "in-progress")]);
    let response = send(&edge, EdgeRequest::new("POST", "/v1/calls/call_0002/cancel").header("Authorization", KEY_A));
    assert_eq!(response.status, 200);
    assert_eq!(edge.ports.twilio.updates.borrow()[1].1, UpdateCall::HangUp, "answered: hang up");
}

#[test]
fn unknown_routes_methods_and_storage_outages_are_clean_errors() {
    let edge = edge();
    assert_eq!(send(&edge, EdgeRequest::new("GET", "/nope")).status, 404);
    assert_eq!(send(&edge, EdgeRequest::new("PUT", "/v1/calls/x").header("Authorization", KEY_A)).status, 405);
    assert_eq!(send(&edge, EdgeRequest::new("DELETE", "/v1/calls").header("Authorization", KEY_A)).status, 405);
    assert_eq!(send(&edge, EdgeRequest::new("GET", "/v1/calls")).status, 401, "a list needs a key");
    edge.ports.store.set_unavailable(true);
    let response = book(&edge, KEY_A, &booking());
    assert_eq!((response.status, error_code(&response)), (503, "storage_unavailable".into()));
    assert!(edge.ports.twilio.created.borrow().is_empty(), "nothing dialed without a record");
}

#[test]
fn too_many_calls_in_flight_is_a_429_until_one_ends() {
    let edge = edge();
    for n in 1..=20 {
        assert_eq!(book(&edge, KEY_A, &booking_to(&restaurant(n))).status, 201, "call {n}");
    }
    let refused = book(&edge, KEY_A, &booking_to(&restaurant(21)));
    assert_eq!((refused.status, error_code(&refused)), (429, "too_many_calls".into()));
    assert!(refused.json_body()["error"]["message"].as_str().unwrap().contains("limit is 20"));
    assert_eq!(edge.ports.twilio.created.borrow().len(), 20, "the refused booking dialed nothing");
    // Another key has its own allowance.
    assert_eq!(book(&edge, KEY_B, &booking_to(&restaurant(22))).status, 201);
    // One call ends: its slot goes back at once, and there is room again.
    assert_eq!(slots_held(&edge), 21);
    status(&edge, "call_0003", &[("CallSid", "CA3"), ("CallStatus", "busy")]);
    assert_eq!(slots_held(&edge), 20, "given back when the call ended, not when next needed");
    assert_eq!(book(&edge, KEY_A, &booking_to(&restaurant(23))).status, 201);
}

/// Slots held across every key's allowance in the store.
fn slots_held(edge: &TestEdge) -> usize {
    edge.ports
        .store
        .list_now("allowance:")
        .iter()
        .map(|key| {
            let text = edge.ports.store.entry(key).unwrap();
            serde_json::from_str::<edge::allowance::Allowance>(&text).unwrap().in_flight.len()
        })
        .sum()
}

#[test]
fn bookings_beyond_the_per_minute_allowance_are_a_429_with_retry_after() {
    let mut config = config();
    config.bookings_per_minute = 3;
    let edge = Edge { config, ..edge() };
    edge.ports.clock.advance(Duration::seconds(15));
    for n in 1..=3 {
        assert_eq!(book(&edge, KEY_A, &booking_to(&restaurant(n))).status, 201, "booking {n}");
    }
    let refused = book(&edge, KEY_A, &booking_to(&restaurant(4)));
    assert_eq!((refused.status, error_code(&refused)), (429, "rate_limited".into()));
    assert_eq!(refused.retry_after_seconds, Some(45), "the next minute starts in 45 s");
    assert_eq!(refused.json_body()["error"]["retry_after_seconds"], 45);
    assert!(refused.json_body()["error"]["message"].as_str().unwrap().contains("3 calls a minute"));
    assert_eq!(edge.ports.twilio.created.borrow().len(), 3, "the refused booking dialed nothing");
    // Invalid bookings are refused before they count.
    assert_eq!(book(&edge, KEY_A, &json!({"restaurant": {}})).status, 422);
    // Another key has its own allowance.
    assert_eq!(book(&edge, KEY_B, &booking_to(&restaurant(5))).status, 201);
    // A new minute, a new allowance.
    edge.ports.clock.advance(Duration::seconds(45));
    assert_eq!(book(&edge, KEY_A, &booking_to(&restaurant(6))).status, 201);
}

#[test]
fn configuration_errors_name_the_setting() {
    let error = EdgeConfig::from_lookup(|_| None).unwrap_err();
    assert!(error.to_string().contains("PUBLIC_BASE_URL"));
    let with = |bad_name: &'static str, bad_value: &'static str| {
        let good = config();
        EdgeConfig::from_lookup(move |name| {
            if name == bad_name {
                return Some(bad_value.to_owned());
            }
            match name {
                "PUBLIC_BASE_URL" => Some(good.public_base_url.clone()),
                "MEDIA_WS_URL" => Some(good.media_ws_url.clone()),
                "TWILIO_FROM_NUMBER" => Some(good.twilio_from_number.clone()),
                "TWILIO_ACCOUNT_SID" | "TWILIO_AUTH_TOKEN" | "INTERNAL_SECRET" | "API_KEYS" => Some("x".into()),
                _ => None,
            }
        })
    };
    assert!(with("MEDIA_WS_URL", "https://not-ws").unwrap_err().to_string().contains("MEDIA_WS_URL"));
    assert!(with("TWILIO_FROM_NUMBER", "5005550006").unwrap_err().to_string().contains("TWILIO_FROM_NUMBER"));
    assert!(with("RING_TIMEOUT_SECONDS", "soon").unwrap_err().to_string().contains("RING_TIMEOUT_SECONDS"));
    assert_eq!(with("RING_TIMEOUT_SECONDS", "45").unwrap().ring_timeout_seconds, 45);
    assert!(with("API_KEYS", "key:whsec_short").unwrap_err().to_string().contains("API_KEYS"));
    assert!(with("ALLOWED_DESTINATIONS", "1,44").unwrap_err().to_string().contains("ALLOWED_DESTINATIONS"));
    assert!(with("ALLOW_INSECURE_CALLBACKS", "yes").unwrap_err().to_string().contains("ALLOW_INSECURE_CALLBACKS"));
    let defaults = with("RING_TIMEOUT_SECONDS", "45").unwrap();
    assert_eq!(defaults.destinations, shared::destination::Destinations::default());
    assert_eq!((defaults.calls_per_destination_per_hour, defaults.allow_insecure_callbacks), (4, false));
    assert!(with("ALLOW_INSECURE_CALLBACKS", "1").unwrap().allow_insecure_callbacks);
    for days in ["0", "366", "a month"] {
        assert!(
            with("RECORD_RETENTION_DAYS", days).unwrap_err().to_string().contains("RECORD_RETENTION_DAYS"),
            "{days}"
        );
    }
    assert_eq!(with("RECORD_RETENTION_DAYS", "7").unwrap().record_retention_days, 7);
}

#[test]
fn the_clock_is_injected() {
    let edge = edge();
    edge.ports.clock.advance(Duration::days(20));
    // 2026-12-05 is now in the past for this edge.
    let response = book(&edge, KEY_A, &booking());
    assert_eq!(response.status, 422);
    assert_eq!(response.json_body()["error"]["field"], "reservation.time");
}

#[test]
fn callback_urls_that_could_reach_inside_are_refused_at_booking() {
    let edge = edge();
    for url in [
        "http://user.example/hook",
        "https://127.0.0.1/hook",
        "https://127.1/hook",
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://0177.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/hook",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fd00::1]/hook",
        "https://localhost/hook",
        "https://localhost./hook",
        "https://api.localhost/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://%6c%6fcalhost/hook",
        "https://user:pass@user.example/hook",
        "https://edge.example.com/internal/calls/call_0001/events",
    ] {
        let mut body = booking();
        body["callback_url"] = json!(url);
        let response = book(&edge, KEY_A, &body);
        assert_eq!(response.status, 422, "{url}");
        assert_eq!(response.json_body()["error"]["field"], "callback_url", "{url}");
        assert!(response.json_body()["error"]["message"].as_str().unwrap().starts_with("callback_url "), "{url}");
    }
    assert!(edge.ports.twilio.created.borrow().is_empty(), "nothing was dialed");
}

#[test]
fn plain_http_and_loopback_callbacks_need_the_local_development_setting() {
    let mut body = booking();
    body["callback_url"] = json!("http://127.0.0.1:8080/hooks");
    assert_eq!(book(&edge(), KEY_A, &body).status, 422);
    let mut config = config();
    config.allow_insecure_callbacks = true;
    let local = Edge { config, ..edge() };
    assert_eq!(book(&local, KEY_A, &body).status, 201);
    body["callback_url"] = json!("http://192.168.1.10/hooks");
    assert_eq!(book(&local, KEY_A, &booking_to(&restaurant(1))).status, 201);
    let private = book(&local, KEY_A, &{
        let mut b = booking_to(&restaurant(2));
        b["callback_url"] = json!("http://192.168.1.10/hooks");
        b
    });
    assert_eq!(private.status, 422, "private ranges stay closed in local development");
}

#[test]
fn a_key_without_a_webhook_secret_books_but_not_with_a_callback_url() {
    let mut config = config();
    config.api_keys = format!("key-alpha:{WHSEC_A},key-beta");
    let edge = Edge { config, ..edge() };
    let refused = book(&edge, KEY_B, &booking());
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json_body()["error"]["field"], "callback_url");
    assert!(refused.json_body()["error"]["message"].as_str().unwrap().contains("no webhook signing secret"));
    let mut without = booking();
    without.as_object_mut().unwrap().remove("callback_url");
    assert_eq!(book(&edge, KEY_B, &without).status, 201, "the older API_KEYS form still books");
    // A call whose key lost its secret since is not signed with anything else: not sent.
    let (mut config, ports) = (edge.config, edge.ports);
    config.api_keys = "key-alpha,key-beta".into();
    let edge = Edge { config, ports };
    status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "busy")]);
    assert!(edge.ports.webhooks.sent.borrow().is_empty());
}

#[test]
fn premium_rate_special_and_foreign_numbers_are_refused_at_booking() {
    let edge = edge();
    for phone in [
        "+19005551234",
        "+12129761234",
        "+18005551234",
        "+18332001234",
        "+15005550001",
        "+19112001234",
        "+15105550123",
        "+18762001234",
        "+442079460000",
        "+882123456789",
    ] {
        let response = book(&edge, KEY_A, &booking_to(phone));
        assert_eq!(response.status, 422, "{phone}");
        assert_eq!(response.json_body()["error"]["field"], "restaurant.phone", "{phone}");
    }
    assert!(edge.ports.twilio.created.borrow().is_empty(), "nothing was dialed");
    let mut config = config();
    config.destinations = shared::destination::Destinations::parse("+1,+44").unwrap();
    let uk = Edge { config, ..edge };
    assert_eq!(book(&uk, KEY_A, &booking_to("+442079460000")).status, 201);
    assert_eq!(book(&uk, KEY_A, &booking_to("+449098790000")).status, 422, "UK premium rate");
}

#[test]
fn one_number_takes_one_live_call_and_so_many_an_hour_across_keys() {
    let mut config = config();
    config.calls_per_destination_per_hour = 3;
    config.bookings_per_minute = 2;
    let edge = Edge { config, ..edge() };
    assert_eq!(book(&edge, KEY_A, &booking()).status, 201);
    for key in [KEY_A, KEY_B, KEY_A] {
        let busy = book(&edge, key, &booking());
        assert_eq!((busy.status, error_code(&busy)), (429, "destination_busy".into()));
        assert_eq!(busy.retry_after_seconds, Some(60));
    }
    // Refused by the number, the key's minute was not spent: one more booking fits.
    assert_eq!(book(&edge, KEY_A, &booking_to(&restaurant(1))).status, 201);
    // The call ends: the number is free at once.
    status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "completed"), ("CallDuration", "20")]);
    assert_eq!(book(&edge, KEY_B, &booking()).status, 201);
    // A dial Twilio refuses gives the number back too. (Refused bookings used ids 2–4.)
    status(&edge, "call_0006", &[("CallSid", "CA3"), ("CallStatus", "no-answer")]);
    *edge.ports.twilio.refuse_with.borrow_mut() = Some(TwilioError::Network("connection refused".into()));
    assert_eq!(book(&edge, KEY_B, &booking()).status, 502);
    *edge.ports.twilio.refuse_with.borrow_mut() = None;
    // Three calls this hour (the refused dial counted): the fourth waits for the next hour.
    edge.ports.clock.advance(Duration::minutes(10));
    let hourly = book(&edge, KEY_B, &booking());
    assert_eq!((hourly.status, error_code(&hourly)), (429, "destination_rate_limited".into()));
    assert_eq!(hourly.retry_after_seconds, Some(50 * 60), "the next hour starts at 13:00");
    assert!(hourly.json_body()["error"]["message"].as_str().unwrap().contains("3 calls an hour"));
    edge.ports.clock.advance(Duration::minutes(50));
    assert_eq!(book(&edge, KEY_B, &booking()).status, 201);
}

#[test]
fn twilio_failures_name_neither_the_api_base_nor_the_account() {
    let edge = edge();
    let detail =
        "error sending request for url (http://127.0.0.1:1/2010-04-01/Accounts/AC1/Calls.json): connection refused";
    *edge.ports.twilio.refuse_with.borrow_mut() = Some(TwilioError::Network(detail.into()));
    let unreachable = book(&edge, KEY_A, &booking());
    assert_eq!((unreachable.status, error_code(&unreachable)), (502, "twilio_unreachable".into()));
    let sid = "AC0123456789abcdef0123456789abcdef";
    *edge.ports.twilio.refuse_with.borrow_mut() = Some(TwilioError::Api(TwilioApiError {
        code: 20404,
        message: format!("The requested resource /2010-04-01/Accounts/{sid}/Calls.json was not found"),
        more_info: Some("https://www.twilio.com/docs/errors/20404".into()),
        status: 404,
    }));
    let refused = book(&edge, KEY_A, &booking_to(&restaurant(1)));
    assert_eq!((refused.status, error_code(&refused)), (502, "twilio_refused".into()));
    assert_eq!(refused.json_body()["error"]["twilio"]["code"], 20404);
    let mut seen: Vec<String> =
        [&unreachable, &refused].iter().map(|r| String::from_utf8_lossy(&r.body).into()).collect();
    seen.push(get(&edge, KEY_A, "call_0001").json_body().to_string());
    seen.push(get(&edge, KEY_A, "call_0002").json_body().to_string());
    for text in &seen {
        for secret in ["127.0.0.1:1", "/Accounts/", sid, "AC1/"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[test]
fn in_local_development_only_the_edges_own_port_counts_as_itself() {
    let mut config = config();
    config.allow_insecure_callbacks = true;
    config.public_base_url = "http://127.0.0.1:8787".into();
    let local = Edge { config, ..edge() };
    let mut body = booking();
    body["callback_url"] = json!("http://127.0.0.1:8787/internal/calls/call_0001/events");
    assert_eq!(book(&local, KEY_A, &body).status, 422);
    body["callback_url"] = json!("http://127.0.0.1:9000/hooks");
    assert_eq!(book(&local, KEY_A, &body).status, 201);
}
