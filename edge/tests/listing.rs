//! `GET /v1/calls` (a key's calls, newest first, paged, filtered), `DELETE /v1/calls/{id}`
//! and `RECORD_RETENTION_DAYS`, natively against in-memory ports.

mod common;

use chrono::Duration;
use common::*;
use edge::http::{EdgeRequest, EdgeResponse};
use edge::keys;
use serde_json::Value;

fn list(edge: &TestEdge, key: &str, query: &str) -> EdgeResponse {
    send(edge, EdgeRequest::new("GET", &format!("/v1/calls?{query}")).header("Authorization", key))
}

fn delete(edge: &TestEdge, key: &str, id: &str) -> EdgeResponse {
    send(edge, EdgeRequest::new("DELETE", &format!("/v1/calls/{id}")).header("Authorization", key))
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().map_or_else(Vec::new, |calls| {
        calls.iter().map(|c| c["call_id"].as_str().unwrap_or_default().to_owned()).collect()
    })
}

/// Books `n` calls a minute apart, each to its own number, each called once (no
/// retries); returns their ids, oldest first.
fn book_calls(edge: &TestEdge, key: &str, n: usize) -> Vec<String> {
    let first_number = if key == KEY_A { 0 } else { 100 };
    (0..n)
        .map(|i| {
            let mut body = booking_to(&restaurant(first_number + i));
            body["retry"] = serde_json::json!({"max_attempts": 1});
            let response = book(edge, key, &body);
            assert_eq!(response.status, 201, "{:?}", response.json_body());
            edge.ports.clock.advance(Duration::minutes(1));
            response.json_body()["call_id"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// Twilio reports the call over (nobody answered): final, no stream.
fn end(edge: &TestEdge, id: &str, status_word: &str) {
    let response = status(edge, id, &[("CallSid", &format!("CA-{id}")), ("CallStatus", status_word)]);
    assert_eq!(response.status, 204);
}

#[test]
fn a_keys_calls_are_listed_newest_first_a_page_at_a_time() {
    let edge = edge();
    let booked = book_calls(&edge, KEY_A, 5);
    book_calls(&edge, KEY_B, 1);

    let first = list(&edge, KEY_A, "limit=2").json_body();
    assert_eq!(ids(&first), [booked[4].clone(), booked[3].clone()]);
    assert_eq!(first["has_more"], true);
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let second = list(&edge, KEY_A, &format!("limit=2&cursor={cursor}")).json_body();
    assert_eq!(ids(&second), [booked[2].clone(), booked[1].clone()]);
    let cursor = second["next_cursor"].as_str().expect("a cursor").to_owned();
    let last = list(&edge, KEY_A, &format!("limit=2&cursor={cursor}")).json_body();
    assert_eq!(ids(&last), [booked[0].clone()]);
    assert_eq!((last["has_more"].clone(), last["next_cursor"].clone()), (Value::Bool(false), Value::Null));

    let summary = &first["data"][0];
    assert_eq!(summary["restaurant_name"], "Chez Panisse");
    assert_eq!((summary["date"].as_str(), summary["party_size"].as_u64()), (Some("2026-12-05"), Some(4)));
    assert_eq!(summary["status"], "dialing");
    assert!(summary.get("transcript").is_none() && summary.get("request").is_none(), "a summary, not the record");

    // The other key's call is not in this key's list, and the reverse.
    assert_eq!(ids(&list(&edge, KEY_B, "").json_body()).len(), 1);
    assert!(!ids(&list(&edge, KEY_A, "limit=100").json_body()).iter().any(|id| !booked.contains(id)));
}

#[test]
fn the_list_filters_by_status_and_creation_time() {
    let edge = edge();
    let booked = book_calls(&edge, KEY_A, 4);
    end(&edge, &booked[0], "no-answer");
    end(&edge, &booked[2], "no-answer");

    let no_answer = list(&edge, KEY_A, "status=no_answer").json_body();
    assert_eq!(ids(&no_answer), [booked[2].clone(), booked[0].clone()]);
    assert!(no_answer["data"].as_array().is_some_and(|d| d.iter().all(|c| c["status"] == "no_answer")));

    // Booked at 12:00, 12:01, 12:02, 12:03: after 12:01 (inclusive), before 12:03.
    let window = list(&edge, KEY_A, "created_after=2026-11-24T12:01:00Z&created_before=2026-11-24T12:03:00Z");
    assert_eq!(ids(&window.json_body()), [booked[2].clone(), booked[1].clone()]);
    assert_eq!(window.json_body()["has_more"], false, "older calls are before created_after: the list ends");

    let bad = list(&edge, KEY_A, "status=finished");
    assert_eq!((bad.status, error_code(&bad)), (422, "invalid_field".to_owned()));
    // A cursor is only what the list gave this key: forged, tampered or another key's is a 422.
    let page = list(&edge, KEY_A, "limit=1").json_body();
    let cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
    assert_eq!(list(&edge, KEY_A, &format!("limit=1&cursor={cursor}")).status, 200);
    let tampered = format!("{}0", &cursor[..cursor.len() - 1]);
    for forged in ["calls:owner:0000", "zz.zz", tampered.as_str()] {
        let refused = list(&edge, KEY_A, &format!("cursor={forged}"));
        assert_eq!((refused.status, refused.json_body()["error"]["field"].as_str()), (422, Some("cursor")), "{forged}");
    }
    let elsewhere = list(&edge, KEY_B, &format!("cursor={cursor}"));
    assert_eq!(elsewhere.status, 422, "another key's cursor");
    assert_eq!(list(&edge, "Bearer nope", "").status, 401);
}

#[test]
fn a_final_call_is_erased_everywhere_and_a_live_one_is_refused() {
    let edge = edge();
    let booked = book_calls(&edge, KEY_A, 2);
    let (live, done) = (&booked[0], &booked[1]);
    end(&edge, done, "busy");

    let refused = delete(&edge, KEY_A, live);
    assert_eq!((refused.status, error_code(&refused)), (409, "call_not_final".to_owned()));
    assert_eq!(get(&edge, KEY_A, live).status, 200, "a refused delete erases nothing");
    assert_eq!(delete(&edge, KEY_B, done).status, 404, "another key's call is not there to delete");

    let deleted = delete(&edge, KEY_A, done);
    assert_eq!(deleted.status, 200, "{:?}", deleted.json_body());
    assert_eq!(deleted.json_body()["deleted"], true);
    assert_eq!(get(&edge, KEY_A, done).status, 404);
    assert_eq!(ids(&list(&edge, KEY_A, "").json_body()), [live.as_str()]);
    let store = &edge.ports.store;
    assert_eq!(store.list_now(&keys::record(done)), Vec::<String>::new(), "the published record is gone");
    assert_eq!(store.list_now(&keys::keeper(done)), Vec::<String>::new(), "and what its keeper held");
    // A late callback about it brings nothing back.
    end(&edge, done, "completed");
    assert_eq!(get(&edge, KEY_A, done).status, 404);
    assert_eq!(delete(&edge, KEY_A, done).status, 404, "deleting twice finds nothing the second time");
}

#[test]
fn records_are_forgotten_after_the_retention_period() {
    let edge = edge();
    let booked = book_calls(&edge, KEY_A, 2);
    end(&edge, &booked[0], "no-answer");
    assert_eq!(edge.ports.webhooks.sent.borrow().len(), 1, "its webhook went out as it ended");
    let retention = edge.config.record_retention();
    assert_eq!(retention, Duration::days(30), "RECORD_RETENTION_DAYS defaults to 30");
    let store = &edge.ports.store;
    let now = start() + retention;
    let forget = |at| pollster::block_on(edge.forget_expired(at));
    assert_eq!(forget(now - Duration::minutes(1)), 0, "not yet");
    // The ended call goes; the one still dialing (which would be stuck) goes too once idle that long.
    assert_eq!(forget(now + Duration::minutes(5)), 2);
    assert!(
        store.list_now("call:").is_empty()
            && store.list_now("calls:").is_empty()
            && store.list_now("keeper:").is_empty()
    );
}
