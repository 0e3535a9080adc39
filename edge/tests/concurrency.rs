//! Requests that arrive together. KV answers over the network, so concurrent handlers
//! interleave between reading a record and writing it back; the store here yields to
//! the other requests before every operation to make that happen every time.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use edge::allowance::{Admission, Admit};
use edge::app::Edge;
use edge::config::EdgeConfig;
use edge::http::{EdgeRequest, EdgeResponse};
use edge::idempotency::Claim;
use edge::keeper::{Change, Reply};
use edge::listing::IndexPage;
use edge::memory::{yield_now, ManualClock, MemoryStore, SequentialIds};
use edge::ports::{Arbiters, CallKeepers, IdSource, Ports, Records, StoreError};
use futures_util::future::join_all;
use serde_json::{json, Value};
use shared::auth;

/// The in-memory store with a round trip's worth of yielding before each operation.
#[derive(Default)]
struct InterleavingStore(MemoryStore);

impl Records for InterleavingStore {
    async fn record(&self, call_id: &str) -> Result<Option<String>, StoreError> {
        yield_now().await;
        self.0.record(call_id).await
    }
    async fn list_calls(&self, owner: &str, cursor: Option<&str>, limit: u32) -> Result<IndexPage, StoreError> {
        yield_now().await;
        self.0.list_calls(owner, cursor, limit).await
    }
}

impl CallKeepers for InterleavingStore {
    async fn change_call(&self, call_id: &str, change: Change, now: DateTime<Utc>) -> Result<Reply, StoreError> {
        yield_now().await;
        self.0.change_call(call_id, change, now).await
    }
}

impl Arbiters for InterleavingStore {
    async fn claim_key(&self, key: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        yield_now().await;
        self.0.claim_key(key, request_hash, now).await
    }
    async fn settle_key(&self, key: &str, request_hash: &str, call_id: Option<&str>) -> Result<(), StoreError> {
        yield_now().await;
        self.0.settle_key(key, request_hash, call_id).await
    }
    async fn admit(&self, key: &str, request: &Admit) -> Result<Admission, StoreError> {
        yield_now().await;
        self.0.admit(key, request).await
    }
    async fn release(&self, key: &str, call_id: &str) -> Result<(), StoreError> {
        yield_now().await;
        self.0.release(key, call_id).await
    }
    async fn withdraw(&self, key: &str, request: &Admit) -> Result<(), StoreError> {
        yield_now().await;
        self.0.withdraw(key, request).await
    }
}

/// One store seen from one of several Worker isolates: each isolate has its own
/// leases, so only what the store does atomically holds between them.
struct Isolate<'a>(&'a InterleavingStore);

impl Records for Isolate<'_> {
    async fn record(&self, call_id: &str) -> Result<Option<String>, StoreError> {
        self.0.record(call_id).await
    }
    async fn list_calls(&self, owner: &str, cursor: Option<&str>, limit: u32) -> Result<IndexPage, StoreError> {
        self.0.list_calls(owner, cursor, limit).await
    }
}

impl CallKeepers for Isolate<'_> {
    async fn change_call(&self, call_id: &str, change: Change, now: DateTime<Utc>) -> Result<Reply, StoreError> {
        self.0.change_call(call_id, change, now).await
    }
}

impl Arbiters for Isolate<'_> {
    async fn claim_key(&self, key: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        self.0.claim_key(key, request_hash, now).await
    }
    async fn settle_key(&self, key: &str, request_hash: &str, call_id: Option<&str>) -> Result<(), StoreError> {
        self.0.settle_key(key, request_hash, call_id).await
    }
    async fn admit(&self, key: &str, request: &Admit) -> Result<Admission, StoreError> {
        self.0.admit(key, request).await
    }
    async fn release(&self, key: &str, call_id: &str) -> Result<(), StoreError> {
        self.0.release(key, call_id).await
    }
    async fn withdraw(&self, key: &str, request: &Admit) -> Result<(), StoreError> {
        self.0.withdraw(key, request).await
    }
}

/// Call ids that cannot collide between isolates.
struct IsolateIds(&'static str, SequentialIds);

impl IdSource for IsolateIds {
    fn call_id(&self) -> String {
        format!("{}_{}", self.0, self.1.call_id())
    }
}

type IsolateEdge<'a> = Edge<Isolate<'a>, FakeTwilio, Webhooks, ManualClock, IsolateIds>;

fn isolate<'a>(store: &'a InterleavingStore, name: &'static str) -> IsolateEdge<'a> {
    isolate_with(store, name, config())
}

fn isolate_with<'a>(store: &'a InterleavingStore, name: &'static str, config: EdgeConfig) -> IsolateEdge<'a> {
    Edge::new(
        config,
        Ports {
            store: Isolate(store),
            twilio: FakeTwilio::default(),
            webhooks: Webhooks::default(),
            clock: ManualClock::at(start()),
            ids: IsolateIds(name, SequentialIds::default()),
        },
    )
}

type ConcurrentEdge = Edge<InterleavingStore, FakeTwilio, Webhooks, ManualClock, SequentialIds>;

fn concurrent_edge() -> ConcurrentEdge {
    Edge::new(
        config(),
        Ports {
            store: InterleavingStore::default(),
            twilio: FakeTwilio::default(),
            webhooks: Webhooks::default(),
            clock: ManualClock::at(start()),
            ids: SequentialIds::default(),
        },
    )
}

fn booking_request(idempotency_key: &str) -> EdgeRequest {
    booking_request_to(idempotency_key, KEY_A, &booking())
}

fn booking_request_to(idempotency_key: &str, key: &str, body: &Value) -> EdgeRequest {
    EdgeRequest::new("POST", "/v1/calls")
        .header("Authorization", key)
        .header("Idempotency-Key", idempotency_key)
        .body(body.to_string())
}

fn event_request(call_id: &str, event: &Value) -> EdgeRequest {
    let path = format!("/internal/calls/{call_id}/events");
    let body = event.to_string();
    let signature = auth::sign_request(SECRET, start().timestamp(), "POST", &path, body.as_bytes());
    EdgeRequest::new("POST", &path).header(auth::SIGNATURE_HEADER, &signature).body(body)
}

fn status_request(call_id: &str, params: &[(&str, &str)]) -> EdgeRequest {
    status_callback(call_id, params, start())
}

fn handle(edge: &ConcurrentEdge, request: EdgeRequest) -> EdgeResponse {
    pollster::block_on(edge.handle(&request))
}

fn handle_in(edge: &IsolateEdge<'_>, request: EdgeRequest) -> EdgeResponse {
    pollster::block_on(edge.handle(&request))
}

#[test]
fn simultaneous_bookings_with_one_idempotency_key_dial_once() {
    let edge = concurrent_edge();
    let requests: Vec<EdgeRequest> = (0..4).map(|_| booking_request("order-1")).collect();
    let responses = pollster::block_on(join_all(requests.iter().map(|r| edge.handle(r))));

    assert_eq!(edge.ports.twilio.created.borrow().len(), 1, "one dial for one key");
    assert_one_booking_and_its_retries(&responses.iter().collect::<Vec<_>>());
}

/// One 201 and the rest 200, all naming the same call.
fn assert_one_booking_and_its_retries(responses: &[&EdgeResponse]) {
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 201]);
    let ids: Vec<Value> = responses.iter().map(|r| r.json_body()["call_id"].clone()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "every retry names the same call: {ids:?}");
}

#[test]
fn simultaneous_bookings_with_one_idempotency_key_dial_once_across_isolates() {
    let store = InterleavingStore::default();
    let (east, west) = (isolate(&store, "east"), isolate(&store, "west"));
    let requests: Vec<EdgeRequest> = (0..4).map(|_| booking_request("order-2")).collect();
    let (east_requests, west_requests) = requests.split_at(2);
    let responses = pollster::block_on(futures_util::future::join(
        join_all(east_requests.iter().map(|r| east.handle(r))),
        join_all(west_requests.iter().map(|r| west.handle(r))),
    ));

    let dials = east.ports.twilio.created.borrow().len() + west.ports.twilio.created.borrow().len();
    assert_eq!(dials, 1, "one dial for one key, whichever isolate each request reached");
    assert_one_booking_and_its_retries(&responses.0.iter().chain(&responses.1).collect::<Vec<_>>());
}

#[test]
fn a_twiml_request_replayed_into_another_isolate_at_once_mints_no_second_token() {
    let store = InterleavingStore::default();
    let (east, west) = (isolate(&store, "east"), isolate(&store, "west"));
    let booked = handle_in(&east, booking_request("order-5"));
    let call_id = booked.json_body()["call_id"].as_str().unwrap_or_default().to_owned();
    let answer = [("CallSid", "CA1"), ("CallStatus", "in-progress"), ("AnsweredBy", "human")];
    let request = twilio(&format!("/twilio/twiml/{call_id}"), &answer);
    // Both read the ledger before either writes it back: only the key tells them apart.
    let (a, b) = pollster::block_on(futures_util::future::join(east.handle(&request), west.handle(&request)));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 403]);
    let tokens = [&a, &b].iter().filter(|r| String::from_utf8_lossy(&r.body).contains("name=\"token\"")).count();
    assert_eq!(tokens, 1, "one stream token for the call");
}

#[test]
fn a_key_refused_before_dialing_is_free_for_the_retry() {
    let mut config = config();
    config.max_calls_in_flight = 1;
    let edge = Edge { config, ..concurrent_edge() };
    let first = handle(&edge, booking_request("order-3"));
    assert_eq!(first.status, 201);
    let refused = handle(&edge, booking_request("order-4"));
    assert_eq!(refused.status, 429, "the one call slot is taken: {:?}", refused.json_body());
    let claims = edge.ports.store.0.list("idem:").unwrap_or_default();
    assert_eq!(claims.len(), 1, "the refused booking left no claim on its key: {claims:?}");

    let call_id = first.json_body()["call_id"].as_str().unwrap_or_default().to_owned();
    let completed = [("CallSid", "CA1"), ("CallStatus", "completed"), ("SequenceNumber", "3"), ("CallDuration", "42")];
    assert_eq!(handle(&edge, status_request(&call_id, &completed)).status, 204);
    let retried = handle(&edge, booking_request("order-4"));
    assert_eq!(retried.status, 201, "the retry books: {:?}", retried.json_body());
    assert_ne!(retried.json_body()["call_id"], first.json_body()["call_id"]);
    assert_eq!(edge.ports.twilio.created.borrow().len(), 2);
}

#[test]
fn simultaneous_bookings_cannot_exceed_the_in_flight_limit_together() {
    let mut config = config();
    config.max_calls_in_flight = 2;
    let responses = book_in_two_isolates(config, 5);
    let accepted = responses.iter().filter(|r| r.status == 201).count();
    let refused = responses.iter().filter(|r| r.json_body()["error"]["code"] == "too_many_calls").count();
    assert_eq!((accepted, refused), (2, 3));
}

/// `count` different bookings (each to its own restaurant) at once, spread over two
/// isolates sharing one store; checks that exactly the accepted ones dialed.
fn book_in_two_isolates(config: EdgeConfig, count: usize) -> Vec<EdgeResponse> {
    let requests: Vec<EdgeRequest> =
        (0..count).map(|n| booking_request_to(&format!("order-{n}"), KEY_A, &booking_to(&restaurant(n)))).collect();
    send_in_two_isolates(config, requests)
}

fn send_in_two_isolates(config: EdgeConfig, requests: Vec<EdgeRequest>) -> Vec<EdgeResponse> {
    let store = InterleavingStore::default();
    let (east, west) = (isolate_with(&store, "east", config.clone()), isolate_with(&store, "west", config));
    let responses = pollster::block_on(join_all(requests.iter().enumerate().map(|(n, r)| {
        if n % 2 == 0 {
            east.handle(r)
        } else {
            west.handle(r)
        }
    })));
    let dials = east.ports.twilio.created.borrow().len() + west.ports.twilio.created.borrow().len();
    assert_eq!(dials, responses.iter().filter(|r| r.status == 201).count());
    responses
}

#[test]
fn simultaneous_bookings_cannot_exceed_the_per_minute_allowance_together() {
    let mut config = config();
    config.bookings_per_minute = 3;
    let responses = book_in_two_isolates(config, 6);
    let limited = responses.iter().filter(|r| r.status == 429 && r.json_body()["error"]["code"] == "rate_limited");
    assert_eq!(limited.count(), 3);
    assert_eq!(responses.iter().filter(|r| r.status == 201).count(), 3);
}

#[test]
fn simultaneous_bookings_of_one_number_by_several_keys_ring_it_once() {
    let requests: Vec<EdgeRequest> = (0..6)
        .map(|n| booking_request_to(&format!("order-{n}"), if n < 3 { KEY_A } else { KEY_B }, &booking()))
        .collect();
    let responses = send_in_two_isolates(config(), requests);
    let accepted = responses.iter().filter(|r| r.status == 201).count();
    let busy = responses.iter().filter(|r| r.status == 429 && r.json_body()["error"]["code"] == "destination_busy");
    assert_eq!((accepted, busy.count()), (1, 5), "{:#?}", responses.iter().map(|r| r.json_body()).collect::<Vec<_>>());
    assert!(responses.iter().filter(|r| r.status == 429).all(|r| r.retry_after_seconds.is_some()));
}

#[test]
fn a_callback_and_an_event_arriving_together_both_land() {
    let edge = concurrent_edge();
    let call_id = handle(&edge, booking_request("order-2")).json_body()["call_id"].as_str().unwrap().to_owned();
    let answered =
        [("CallSid", "CA1"), ("CallStatus", "in-progress"), ("SequenceNumber", "2"), ("AnsweredBy", "human")];
    assert_eq!(handle(&edge, status_request(&call_id, &answered)).status, 204);
    let started = json!({"id": "MZ1-1", "type": "stream_started", "stream_sid": "MZ1"});
    assert_eq!(handle(&edge, event_request(&call_id, &started)).status, 200);

    // The host's last words, the outcome, the end of the stream and Twilio's
    // `completed` (twice), all at once.
    let outcome = json!({"id": "MZ1-3", "type": "outcome", "at_ms": 5000, "outcome": {
        "result": "confirmed", "confirmation_number": "B22", "confirmed_date": "2026-12-05",
        "confirmed_time": "19:30", "party_size": 4, "notes": null}});
    let line = json!({"id": "MZ1-2", "type": "transcript", "speaker": "restaurant", "text": "B as in bravo, two, two.", "at_ms": 4000});
    let ended = json!({"id": "MZ1-4", "type": "stream_ended", "reason": "agent_hung_up"});
    let completed = [("CallSid", "CA1"), ("CallStatus", "completed"), ("SequenceNumber", "3"), ("CallDuration", "42")];
    let requests = [
        event_request(&call_id, &line),
        status_request(&call_id, &completed),
        event_request(&call_id, &outcome),
        status_request(&call_id, &completed),
        event_request(&call_id, &ended),
    ];
    let responses = pollster::block_on(join_all(requests.iter().map(|r| edge.handle(r))));
    assert!(responses.iter().all(|r| r.status < 300), "{:?}", responses.iter().map(|r| r.status).collect::<Vec<_>>());

    let record = handle(&edge, EdgeRequest::new("GET", &format!("/v1/calls/{call_id}")).header("Authorization", KEY_A))
        .json_body();
    assert_eq!(record["status"], "completed");
    assert_eq!(record["duration_seconds"], 42);
    assert_eq!(record["outcome"]["confirmation_number"], "B22");
    assert_eq!(record["transcript"][0]["text"], "B as in bravo, two, two.");

    let sent = edge.ports.webhooks.sent.borrow();
    assert_eq!(sent.len(), 1, "the completion webhook fires once");
    let pushed: Value = serde_json::from_str(&sent[0].1).unwrap();
    assert_eq!(pushed["outcome"]["confirmation_number"], "B22");
}

#[test]
fn many_simultaneous_updates_of_one_call_across_isolates_lose_nothing() {
    let store = InterleavingStore::default();
    let (east, west) = (isolate(&store, "east"), isolate(&store, "west"));
    let booked = handle_in(&east, booking_request("order-6"));
    let call_id = booked.json_body()["call_id"].as_str().unwrap_or_default().to_owned();
    let started = json!({"id": "MZ1-0", "type": "stream_started", "stream_sid": "MZ1"});
    assert_eq!(handle_in(&west, event_request(&call_id, &started)).status, 200);

    // 160 transcript lines and 40 status callbacks at once, half reaching each isolate.
    let mut requests: Vec<EdgeRequest> = (1..=160)
        .map(|n| {
            let line = json!({"id": format!("MZ1-{n}"), "type": "transcript", "speaker": "restaurant",
                "text": format!("line {n}"), "at_ms": n * 100});
            event_request(&call_id, &line)
        })
        .collect();
    for n in 0..40 {
        let status = if n % 2 == 0 { "ringing" } else { "in-progress" };
        let sequence = (n + 1).to_string();
        requests.push(status_request(
            &call_id,
            &[("CallSid", "CA1"), ("CallStatus", status), ("SequenceNumber", &sequence)],
        ));
    }
    let responses = pollster::block_on(join_all(requests.iter().enumerate().map(|(n, r)| {
        if n % 2 == 0 {
            east.handle(r)
        } else {
            west.handle(r)
        }
    })));
    assert!(responses.iter().all(|r| r.status < 300));

    let record =
        handle_in(&east, EdgeRequest::new("GET", &format!("/v1/calls/{call_id}")).header("Authorization", KEY_A))
            .json_body();
    let lines = record["transcript"].as_array().map_or(0, Vec::len);
    assert_eq!(lines, 160, "every transcript line kept, whichever isolate took it");
    assert_eq!(record["status"], "in_progress");
    assert_eq!(record["twilio_call_sid"].as_str().map(str::len), Some(34), "the dialed call's sid, not overwritten");
}

/// Twilio taking its time to place a call: a cancel can arrive meanwhile.
#[derive(Default)]
struct SlowTwilio(FakeTwilio);

impl edge::ports::TwilioApi for SlowTwilio {
    async fn create_call(
        &self,
        call: &shared::twilio::rest::CreateCall,
    ) -> Result<shared::twilio::rest::CallResource, edge::ports::TwilioError> {
        for _ in 0..20 {
            yield_now().await;
        }
        self.0.create_call(call).await
    }
    async fn update_call(
        &self,
        call_sid: &str,
        update: &shared::twilio::rest::UpdateCall,
    ) -> Result<(), edge::ports::TwilioError> {
        self.0.update_call(call_sid, update).await
    }
    async fn delete_recording(&self, recording_sid: &str) -> Result<(), edge::ports::TwilioError> {
        self.0.delete_recording(recording_sid).await
    }
}

#[test]
fn a_call_canceled_while_twilio_places_it_is_ended_as_soon_as_twilio_returns_it() {
    let edge = Edge::new(
        config(),
        Ports {
            store: MemoryStore::default(),
            twilio: SlowTwilio::default(),
            webhooks: Webhooks::default(),
            clock: ManualClock::at(start()),
            ids: SequentialIds::default(),
        },
    );
    let booking = booking_request("order-7");
    let cancel = EdgeRequest::new("POST", "/v1/calls/call_0001/cancel").header("Authorization", KEY_A);
    let cancel_soon = async {
        for _ in 0..5 {
            yield_now().await;
        }
        edge.handle(&cancel).await
    };
    let (booked, canceled) = pollster::block_on(futures_util::future::join(edge.handle(&booking), cancel_soon));
    assert_eq!(booked.status, 201, "{:?}", booked.json_body());
    assert_eq!(canceled.status, 200, "{:?}", canceled.json_body());
    assert_eq!(canceled.json_body()["status"], "canceled");
    let updates = edge.ports.twilio.0.updates.borrow();
    assert_eq!(updates.len(), 1, "the call Twilio placed after the cancel is hung up at once");
    assert_eq!(updates[0].1, shared::twilio::rest::UpdateCall::HangUp);
}
