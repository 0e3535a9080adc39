//! The edge Worker as WASM under `wrangler dev` (workerd, local KV and Durable Objects), with the fake
//! Twilio REST API behind TWILIO_API_BASE: booking → Twilio call → TwiML → status
//! callbacks → media-worker events → status and completion webhook, all over HTTP.
//! One Worker process serves every step, so the test is one long scenario.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::auth;
use shared::twilio::{form, signature};
use sim::twilio_rest::FakeTwilioRest;
use sim::wait_until;
use sim::webhook_sink::WebhookSink;
use sim::wrangler::{free_port, WranglerDev};

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "fake-twilio-auth-token";
const SECRET: &str = "internal-secret-for-tests";
const KEY: &str = "key-for-tests";
const WEBHOOK_SECRET: &str = "whsec_for_tests_0123456789abcdef";

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

struct Harness {
    edge: WranglerDev,
    twilio: FakeTwilioRest,
    sink: WebhookSink,
    http: reqwest::Client,
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.edge.base_url)
    }

    async fn book(&self, body: &Value, idempotency_key: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url("/v1/calls")).bearer_auth(KEY).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, call_id: &str) -> Value {
        self.http
            .get(self.url(&format!("/v1/calls/{call_id}")))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The key's first page of calls once it satisfies `ready` (KV lags its keeper).
    async fn list_until(&self, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let response = self.http.get(self.url("/v1/calls?limit=100")).bearer_auth(KEY).send().await.unwrap();
            let page: Value = response.json().await.unwrap_or(Value::Null);
            if ready(&page) {
                return page;
            }
            assert!(Instant::now() < deadline, "the list never showed it: {page:#}\n{}", self.edge.log());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The record once it satisfies `ready`: `GET` reads KV, which the call's keeper
    /// writes at most once a second, so a read right after a change may lag it.
    async fn record_when(&self, call_id: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let record = self.get(call_id).await;
            if ready(&record) {
                return record;
            }
            assert!(Instant::now() < deadline, "the record never showed {what}: {record:#}\n{}", self.edge.log());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// POSTs a form as Twilio would, signed over the public URL.
    async fn twilio_post(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let signature = signature::compute(AUTH_TOKEN, &self.url(path), &pairs);
        self.http
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(form::encode(params.iter().copied()))
            .send()
            .await
            .unwrap()
    }

    /// A status callback as Twilio sends it: signed, stamped with the time it is sent.
    async fn status_post(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let timestamp = chrono::Utc::now().to_rfc2822();
        let mut params = params.to_vec();
        params.push(("Timestamp", &timestamp));
        self.twilio_post(path, &params).await
    }

    async fn internal(&self, method: &str, path: &str, body: &str) -> reqwest::Response {
        let signature = auth::sign_request(SECRET, unix_now(), method, path, body.as_bytes());
        let request = match method {
            "GET" => self.http.get(self.url(path)),
            _ => self.http.post(self.url(path)).header("Content-Type", "application/json").body(body.to_owned()),
        };
        request.header(auth::SIGNATURE_HEADER, signature).send().await.unwrap()
    }
}

/// The Worker's settings every test here shares: its own port, the fake Twilio, secrets.
fn edge_vars(port: u16, twilio: &FakeTwilioRest) -> Vec<(&'static str, String)> {
    vec![
        ("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}")),
        ("MEDIA_WS_URL", "ws://127.0.0.1:9/media".to_owned()),
        ("TWILIO_API_BASE", twilio.base_url.clone()),
        ("TWILIO_FROM_NUMBER", "+15005550006".to_owned()),
        ("TWILIO_ACCOUNT_SID", ACCOUNT.to_owned()),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
        ("INTERNAL_SECRET", SECRET.to_owned()),
        // Calls at any hour, once: these tests are not about when calls go out.
        ("CALLING_WINDOW", "00:00-24:00".to_owned()),
        ("RETRY_MAX_ATTEMPTS", "1".to_owned()),
    ]
}

fn booking(callback_url: &str, phone: &str) -> Value {
    let date = (Utc::now() + Duration::days(7)).format("%Y-%m-%d").to_string();
    json!({
        "restaurant": {"name": "Chez Panisse", "phone": phone},
        "reservation": {"date": date, "time": "19:30", "party_size": 4, "name": "Ada Lovelace", "flexibility_minutes": 30},
        "timezone": "America/Los_Angeles",
        "callback_url": callback_url
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wasm_edge_runs_a_whole_call_under_wrangler_dev() {
    let twilio = FakeTwilioRest::start(ACCOUNT, AUTH_TOKEN).await.unwrap();
    twilio.refuse("+15105480001", 21211, "Invalid 'To' Phone Number");
    let sink = WebhookSink::start().await.unwrap();
    let port = free_port().unwrap();
    let mut vars = edge_vars(port, &twilio);
    vars.extend([
        ("API_KEYS", format!("other-key,{KEY}:{WEBHOOK_SECRET}")),
        // The sink listens on loopback over plain http.
        ("ALLOW_INSECURE_CALLBACKS", "1".to_owned()),
        ("WEBHOOK_RETRY_BASE_SECONDS", "0".to_owned()),
    ]);
    let edge = WranglerDev::start(port, &vars).await.unwrap();
    let h = Harness { edge, twilio, sink, http: reqwest::Client::new() };
    let hook = format!("{}/hooks/concierge", h.sink.base_url);

    // Booking: timed, as the figure the README reports.
    let started = Instant::now();
    let (status, created) = h.book(&booking(&hook, "+15105485525"), Some("order-1")).await;
    let booking_ms = started.elapsed().as_millis();
    assert_eq!(status, StatusCode::CREATED, "{created}\n{}", h.edge.log());
    println!("edge under wrangler dev answered a booking in {booking_ms} ms");
    let call_id = created["call_id"].as_str().unwrap().to_owned();
    assert!(call_id.starts_with("call_") && call_id.len() == 37, "{call_id}");
    assert_eq!(created["status"], "dialing");

    // Twilio was asked exactly as the contract says.
    let ledger = h.twilio.ledger();
    assert_eq!(ledger.calls.len(), 1);
    let call = &ledger.calls[0];
    assert_eq!(call.param("To"), Some("+15105485525"));
    assert_eq!(call.param("From"), Some("+15005550006"));
    assert_eq!(call.param("Url"), Some(h.url(&format!("/twilio/twiml/{call_id}")).as_str()));
    assert_eq!(call.param("StatusCallback"), Some(h.url(&format!("/twilio/status/{call_id}")).as_str()));
    assert_eq!(call.params("StatusCallbackEvent"), ["initiated", "ringing", "answered", "completed"]);
    assert_eq!(call.param("MachineDetection"), Some("Enable"));
    assert_eq!(call.param("AsyncAmd"), Some("true"), "asynchronous: the greeting reaches the agent");
    assert_eq!(call.param("Timeout"), Some("30"));
    assert_eq!(call.param("TimeLimit"), Some("900"));
    let sid = call.sid.clone();

    // The same Idempotency-Key and body: the same call, no second dial.
    let (status, again) = h.book(&booking(&hook, "+15105485525"), Some("order-1")).await;
    assert_eq!((status, &again["call_id"]), (StatusCode::OK, &created["call_id"]));
    assert_eq!(h.twilio.ledger().calls.len(), 1);
    // Another body under that key is refused, and the key keeps its call.
    let (status, conflict) = h.book(&booking(&hook, "+15105480000"), Some("order-1")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    // Overlapping first sends of a new key meet in the key's Durable Object: one dial.
    let racing = booking(&hook, "+15105485526");
    let answers = futures_util::future::join_all((0..4).map(|_| h.book(&racing, Some("order-2")))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|(status, _)| status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 201], "{answers:?}\n{}", h.edge.log());
    assert!(answers.iter().all(|(_, body)| body["call_id"] == answers[0].1["call_id"]), "{answers:?}");
    assert_eq!(h.twilio.ledger().calls.len(), 2, "one dial for the racing key");

    // Callbacks arrive out of order; the call only moves forward.
    let status_path = format!("/twilio/status/{call_id}");
    let ringing = h
        .status_post(
            &status_path,
            &[("CallSid", &sid), ("AccountSid", ACCOUNT), ("CallStatus", "ringing"), ("SequenceNumber", "1")],
        )
        .await;
    assert_eq!(ringing.status(), StatusCode::NO_CONTENT);
    h.status_post(
        &status_path,
        &[("CallSid", &sid), ("AccountSid", ACCOUNT), ("CallStatus", "initiated"), ("SequenceNumber", "0")],
    )
    .await;
    h.record_when(&call_id, "ringing", |r| r["status"] == "ringing").await;

    // Answered: the TwiML connects the stream with a token the media worker will accept.
    let twiml = h
        .twilio_post(
            &format!("/twilio/twiml/{call_id}"),
            &[("CallSid", &sid), ("AccountSid", ACCOUNT), ("CallStatus", "in-progress"), ("AnsweredBy", "human")],
        )
        .await;
    assert_eq!(twiml.status(), StatusCode::OK);
    assert!(twiml.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
    let xml = twiml.text().await.unwrap();
    assert!(xml.contains("<Connect><Stream url=\"ws://127.0.0.1:9/media\">"), "{xml}");
    let token = xml.split("name=\"token\" value=\"").nth(1).and_then(|t| t.split('"').next()).unwrap();
    assert_eq!(auth::verify_stream_token(SECRET, &call_id, Some(token), unix_now()), Ok(()));
    // Twilio asks once: the same signed request again is a replay and mints no token.
    let replay = h
        .twilio_post(
            &format!("/twilio/twiml/{call_id}"),
            &[("CallSid", &sid), ("AccountSid", ACCOUNT), ("CallStatus", "in-progress"), ("AnsweredBy", "human")],
        )
        .await;
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);
    assert!(!replay.text().await.unwrap().contains("token"));
    h.status_post(
        &status_path,
        &[
            ("CallSid", &sid),
            ("AccountSid", ACCOUNT),
            ("CallStatus", "in-progress"),
            ("SequenceNumber", "2"),
            ("AnsweredBy", "human"),
        ],
    )
    .await;

    // The media worker fetches the context and reports the conversation.
    let context = h.internal("GET", &format!("/internal/calls/{call_id}"), "").await;
    assert_eq!(context.status(), StatusCode::OK);
    let context: Value = context.json().await.unwrap();
    assert!(context["instructions"].as_str().unwrap().contains("\"Chez Panisse\""));
    let events_path = format!("/internal/calls/{call_id}/events");
    for event in [
        json!({"id": "MZ1-1", "type": "stream_started", "stream_sid": "MZ1"}),
        json!({"id": "MZ1-2", "type": "transcript", "speaker": "restaurant", "text": "Chez Panisse, how can I help?", "at_ms": 700}),
        json!({"id": "MZ1-3", "type": "transcript", "speaker": "agent", "text": "A table for four at seven thirty, please.", "at_ms": 1900}),
        json!({"id": "MZ1-4", "type": "outcome", "at_ms": 9000, "outcome": {"result": "confirmed", "confirmation_number": "A73X", "confirmed_date": null, "confirmed_time": "19:30", "party_size": 4, "notes": null}}),
        json!({"id": "MZ1-2", "type": "transcript", "speaker": "restaurant", "text": "Chez Panisse, how can I help?", "at_ms": 700}),
        json!({"id": "MZ1-5", "type": "stream_ended", "reason": "agent_hung_up"}),
    ] {
        let response = h.internal("POST", &events_path, &event.to_string()).await;
        assert_eq!(response.status(), StatusCode::OK, "{event}");
    }
    // The user's endpoint is down at first: the call's keeper retries (its alarm) until it accepts.
    h.sink.refuse_next(1);
    let mut deliveries = h.sink.watch();
    h.status_post(
        &status_path,
        &[
            ("CallSid", &sid),
            ("AccountSid", ACCOUNT),
            ("CallStatus", "completed"),
            ("SequenceNumber", "3"),
            ("CallDuration", "42"),
        ],
    )
    .await;

    let record = h.record_when(&call_id, "completed", |r| r["status"] == "completed").await;
    assert_eq!(record["twilio_call_sid"], sid.as_str());
    assert_eq!(record["answered_by"], "human");
    assert_eq!(record["duration_seconds"], 42);
    assert_eq!(record["outcome"]["confirmation_number"], "A73X");
    assert_eq!(record["transcript"].as_array().unwrap().len(), 2, "the repeated event applied once");

    // The completion webhook was refused once, retried by the keeper's alarm, and arrived signed.
    let refused = wait_until(&mut deliveries, "the first webhook attempt", |d| d.first().cloned())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", h.edge.log()));
    assert_eq!(refused.status, 503, "{:#?}", h.sink.deliveries());
    let delivery = match wait_until(&mut deliveries, "the retried webhook", |d| d.get(1).cloned()).await {
        Ok(delivery) => delivery,
        Err(error) => panic!("{error}\n{}", h.edge.log()),
    };
    assert_eq!(delivery.status, 204);
    assert_eq!(delivery.body, refused.body, "the same final record");
    assert_eq!(delivery.path_and_query, "/hooks/concierge");
    let body: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(body["call_id"], call_id.as_str());
    assert_eq!(body["outcome"]["result"], "confirmed");
    // Signed with the key's own webhook secret, as the README tells the user to check.
    assert_eq!(delivery.verify(WEBHOOK_SECRET, unix_now()), Ok(()));
    assert!(delivery.verify(SECRET, unix_now()).is_err(), "never with INTERNAL_SECRET");

    // Sealed: late or replayed callbacks and events of a stream opened again change nothing.
    let late_failed =
        [("CallSid", sid.as_str()), ("AccountSid", ACCOUNT), ("CallStatus", "failed"), ("SequenceNumber", "4")];
    assert_eq!(h.status_post(&status_path, &late_failed).await.status(), StatusCode::NO_CONTENT);
    for event in [
        json!({"id": "MZ2-1", "type": "stream_started", "stream_sid": "MZ2"}),
        json!({"id": "MZ2-2", "stream": "MZ2", "type": "transcript", "speaker": "agent", "text": "Hello again?", "at_ms": 10}),
        json!({"id": "MZ2-3", "stream": "MZ2", "type": "outcome", "at_ms": 20, "outcome": {"result": "declined", "confirmation_number": null, "confirmed_date": null, "confirmed_time": null, "party_size": null, "notes": null}}),
    ] {
        let response = h.internal("POST", &events_path, &event.to_string()).await;
        assert_eq!(response.status(), StatusCode::OK, "{event}");
        assert_eq!(response.json::<Value>().await.unwrap()["applied"], false, "{event}");
    }
    let sealed = h.get(&call_id).await;
    assert_eq!(sealed, record, "the final record never changes");
    assert!(sealed["error"].is_null());
    assert_eq!(h.sink.deliveries().len(), 2, "no further webhook");

    // The key's list shows it: one KV list, each call's summary the metadata of its entry.
    let listed = h
        .list_until(|page| page["data"].as_array().is_some_and(|d| d.iter().any(|c| c["call_id"] == call_id.as_str())))
        .await;
    let summary = listed["data"].as_array().and_then(|d| d.iter().find(|c| c["call_id"] == call_id.as_str()).cloned());
    let summary = summary.unwrap_or_default();
    assert_eq!(
        (summary["status"].as_str(), summary["confirmation_number"].as_str()),
        (Some("completed"), Some("A73X"))
    );
    assert_eq!(summary["confirmed"], true);
    // Deleted: gone from its keeper at once, from KV (record and list entry) at the keeper's next alarm.
    let deleted = h.http.delete(h.url(&format!("/v1/calls/{call_id}"))).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let gone = h.http.get(h.url(&format!("/v1/calls/{call_id}"))).bearer_auth(KEY).send().await.unwrap();
        if gone.status() == StatusCode::NOT_FOUND {
            break;
        }
        assert!(Instant::now() < deadline, "the deleted record is still read\n{}", h.edge.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    h.list_until(|page| page["data"].as_array().is_some_and(|d| !d.iter().any(|c| c["call_id"] == call_id.as_str())))
        .await;

    // Nobody gets in without credentials; bad input is a clear error, never a 500.
    let unsigned = h.http.post(h.url(&status_path)).body("CallSid=x&CallStatus=canceled").send().await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::FORBIDDEN);
    let forged = h
        .http
        .get(h.url(&format!("/internal/calls/{call_id}")))
        .header(auth::SIGNATURE_HEADER, "t=1,v1=00")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let no_key = h.http.get(h.url(&format!("/v1/calls/{call_id}"))).send().await.unwrap();
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    let other_tenant =
        h.http.get(h.url(&format!("/v1/calls/{call_id}"))).bearer_auth("other-key").send().await.unwrap();
    assert_eq!(other_tenant.status(), StatusCode::NOT_FOUND);
    let malformed = h.http.post(h.url("/v1/calls")).bearer_auth(KEY).body("{\"restaurant\":").send().await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let mut invalid = booking(&hook, "+15105485525");
    invalid["reservation"]["party_size"] = json!(99);
    let (status, error) = h.book(&invalid, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "reservation.party_size");

    // Twilio refusing is a 502 carrying Twilio's code, and the record says failed.
    let (status, refused) = h.book(&booking(&hook, "+15105480001"), None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{refused}");
    assert_eq!(refused["error"]["twilio"]["code"], 21211);
    assert_eq!(h.twilio.ledger().refusals, vec![(400, 21211)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_updates_of_one_call_all_land_through_its_durable_object() {
    let twilio = FakeTwilioRest::start(ACCOUNT, AUTH_TOKEN).await.unwrap();
    let port = free_port().unwrap();
    let mut vars = edge_vars(port, &twilio);
    vars.push(("API_KEYS", format!("{KEY}:{WEBHOOK_SECRET}")));
    let edge = WranglerDev::start(port, &vars).await.unwrap();
    let sink = WebhookSink::start().await.unwrap();
    let h = Harness { edge, twilio, sink, http: reqwest::Client::new() };
    let (status, created) = h.book(&booking("https://user.example/hook", "+15105485525"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}\n{}", h.edge.log());
    let call_id = created["call_id"].as_str().unwrap().to_owned();
    let sid = h.twilio.ledger().calls[0].sid.clone();
    let events_path = format!("/internal/calls/{call_id}/events");
    let started = json!({"id": "MZ1-0", "type": "stream_started", "stream_sid": "MZ1"}).to_string();
    assert_eq!(h.internal("POST", &events_path, &started).await.status(), StatusCode::OK);

    // 80 transcript lines and 20 status callbacks at once.
    let status_path = format!("/twilio/status/{call_id}");
    let lines = (1..=80).map(|n| {
        let line = json!({"id": format!("MZ1-{n}"), "stream": "MZ1", "type": "transcript", "speaker": "restaurant",
            "text": format!("line {n}"), "at_ms": n * 100});
        let h = &h;
        let events_path = &events_path;
        async move { h.internal("POST", events_path, &line.to_string()).await.status() }
    });
    let callbacks = (1..=20).map(|n| {
        let (h, sid, status_path) = (&h, &sid, &status_path);
        async move {
            let sequence = n.to_string();
            let params = [
                ("CallSid", sid.as_str()),
                ("AccountSid", ACCOUNT),
                ("CallStatus", "in-progress"),
                ("SequenceNumber", &sequence),
            ];
            h.status_post(status_path, &params).await.status()
        }
    });
    let (lines, callbacks) =
        futures_util::future::join(futures_util::future::join_all(lines), futures_util::future::join_all(callbacks))
            .await;
    assert!(lines.iter().chain(&callbacks).all(|s| s.is_success()), "{lines:?} {callbacks:?}\n{}", h.edge.log());

    let record =
        h.record_when(&call_id, "all 80 lines", |r| r["transcript"].as_array().map_or(0, Vec::len) == 80).await;
    assert_eq!(record["status"], "in_progress");
    assert_eq!(record["twilio_call_sid"], sid.as_str());
}
