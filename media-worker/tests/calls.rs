//! Whole calls through the media worker, over loopback: a real redis-server, the fake
//! edge, the fake OpenAI Realtime server, the fake Twilio REST API, and a Twilio Media
//! Streams client playing the restaurant. Tests wait on recorded events, never sleep.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media_worker::config::MediaConfig;
use media_worker::server;
use serde_json::json;
use shared::auth;
use shared::booking::BookingRequest;
use shared::call::CallLedger;
use shared::events::{CallEvent, CallEventKind, EndReason, OutcomeResult, Speaker};
use shared::openai::config::AudioFormat;
use sim::fake_edge::FakeEdge;
use sim::openai_realtime::{AgentTurn, FakeOpenAi, Script};
use sim::redis_server::RedisServer;
use sim::twilio_media::{Line, MediaCall, MediaReport};
use sim::twilio_rest::FakeTwilioRest;
use sim::wait_until;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const SECRET: &str = "internal-secret-for-media-tests";
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "fake-twilio-token";
const CALL_ID: &str = "call_media_1";
const CALL_SID: &str = "CA00000000000000000000000000000001";

fn booking() -> BookingRequest {
    let date = (chrono::Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%d").to_string();
    let body = json!({
        "restaurant": {"name": "Chez Panisse", "phone": "+15105485525"},
        "reservation": {"date": date, "time": "19:30", "party_size": 4, "name": "Ada Lovelace"},
        "timezone": "America/Los_Angeles"
    });
    BookingRequest::parse(body.to_string().as_bytes(), chrono::Utc::now()).unwrap()
}

struct World {
    edge: FakeEdge,
    openai: FakeOpenAi,
    twilio: FakeTwilioRest,
    redis: Option<RedisServer>,
    worker_url: String,
    stop_worker: Option<oneshot::Sender<()>>,
    worker: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The environment the in-process worker was configured with.
    vars: Vec<(&'static str, String)>,
}

/// How a scenario's world is set up.
struct Setup {
    script: Script,
    audio_mode: &'static str,
    redis: bool,
    extra: Vec<(&'static str, String)>,
}

impl Setup {
    fn new(script: Script) -> Setup {
        Setup { script, audio_mode: "pcm24k", redis: true, extra: Vec::new() }
    }
}

impl World {
    async fn start(script: Script, audio_mode: &'static str, with_redis: bool) -> World {
        World::with(Setup { script, audio_mode, redis: with_redis, extra: Vec::new() }).await
    }

    async fn with(setup: Setup) -> World {
        let edge = FakeEdge::start(SECRET).await.unwrap();
        edge.add_call(CALL_ID, booking());
        let openai = FakeOpenAi::start(setup.script).await.unwrap();
        let twilio = FakeTwilioRest::start(ACCOUNT, AUTH_TOKEN).await.unwrap();
        twilio.register_call(CALL_SID, "+15105485525");
        let redis = if setup.redis { Some(RedisServer::start().await.unwrap()) } else { None };
        let audio_mode = setup.audio_mode;
        let mut vars = vec![
            ("OPENAI_API_KEY", "sk-test".to_owned()),
            ("OPENAI_REALTIME_URL", openai.url.clone()),
            ("AUDIO_MODE", audio_mode.to_owned()),
            ("INTERNAL_SECRET", SECRET.to_owned()),
            ("EDGE_BASE_URL", edge.base_url.clone()),
            ("TWILIO_ACCOUNT_SID", ACCOUNT.to_owned()),
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
            ("TWILIO_API_BASE", twilio.base_url.clone()),
            ("MAX_CALL_SECONDS", "60".to_owned()),
            ("INSTANCE_ID", "test-worker".to_owned()),
            ("REDIS_URL", redis.as_ref().map(|r| r.url.clone()).unwrap_or_default()),
        ];
        vars.extend(setup.extra);
        // Later entries win, so a scenario's extras override the defaults.
        let config =
            MediaConfig::from_lookup(|name| vars.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
                .unwrap();
        let env = vars.clone();
        let store = server::open_store(&config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let worker_url = format!("ws://{}/media", listener.local_addr().unwrap());
        let (stop_worker, stopped) = oneshot::channel::<()>();
        let worker = tokio::spawn(server::run(listener, config, store, async move {
            let _ = stopped.await;
        }));
        World { edge, openai, twilio, redis, worker_url, stop_worker: Some(stop_worker), worker, vars: env }
    }

    fn call(&self, lines: Vec<Line>) -> MediaCall {
        let token = auth::issue_stream_token(SECRET, CALL_ID, chrono::Utc::now().timestamp() + 300);
        MediaCall {
            url: self.worker_url.clone(),
            parameters: [("call_id", CALL_ID.to_owned()), ("token", token)]
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            call_sid: CALL_SID.into(),
            stream_sid: "MZ00000000000000000000000000000001".into(),
            lines,
            speed: 2,
            max_audio_ms: 40_000,
            hang_up_after_last_line: false,
            malformed_frames: false,
        }
    }

    /// The worker's Prometheus text.
    async fn metrics(&self) -> String {
        let url = self.worker_url.replace("ws://", "http://").replace("/media", "/metrics");
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }

    async fn run(&self, call: MediaCall) -> MediaReport {
        tokio::time::timeout(Duration::from_secs(60), call.run(self.twilio.watch()))
            .await
            .expect("the call ends")
            .unwrap()
    }

    /// Waits for the worker's hang-up through the REST API; returns the update's form.
    async fn hang_up(&self) -> Vec<(String, String)> {
        let mut ledger = self.twilio.watch();
        wait_until(&mut ledger, "a hang-up through the Twilio REST API", |l| {
            l.calls.iter().find(|c| c.sid == CALL_SID).and_then(|c| c.updates.first().cloned())
        })
        .await
        .unwrap()
    }

    /// Waits until the edge has the stream's `stream_ended`, then returns what it applied.
    async fn final_events(&self) -> Vec<CallEvent> {
        let mut log = self.edge.watch();
        wait_until(&mut log, "stream_ended at the edge", |l| {
            l.applied().iter().any(|e| matches!(e.kind, CallEventKind::StreamEnded { .. })).then(|| l.applied())
        })
        .await
        .unwrap()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop_worker.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.worker)
            .await
            .expect("the worker drains")
            .unwrap()
            .unwrap();
    }
}

fn transcript(events: &[CallEvent]) -> Vec<(Speaker, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            CallEventKind::Transcript { speaker, text, .. } => Some((*speaker, text.clone())),
            _ => None,
        })
        .collect()
}

fn outcome(events: &[CallEvent]) -> shared::events::Outcome {
    events
        .iter()
        .rev()
        .find_map(|e| if let CallEventKind::Outcome { outcome, .. } = &e.kind { Some(outcome.clone()) } else { None })
        .expect("an outcome")
}

fn end_reason(events: &[CallEvent]) -> EndReason {
    events
        .iter()
        .find_map(|e| if let CallEventKind::StreamEnded { reason, .. } = &e.kind { Some(*reason) } else { None })
        .expect("stream_ended")
}

fn booking_script() -> Script {
    Script {
        restaurant: vec![
            "Chez Panisse, good evening.".into(),
            "Yes, seven thirty for four works. Your confirmation number is A as in apple, seven, three, X.".into(),
        ],
        agent: vec![
            AgentTurn::say("Hello! I'd like to book a table for four tonight at seven thirty, under Ada Lovelace.", 1200),
            AgentTurn::say("Wonderful, that's A, seven, three, X. Thank you, goodbye!", 900).then_call(
                "report_outcome",
                json!({"result": "confirmed", "confirmation_number": "A73X", "confirmed_time": "19:30", "party_size": 4}),
            ),
            AgentTurn::call("end_call", json!({"reason": "booked"})),
        ],
        ..Script::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_call_runs_end_to_end_with_redis() {
    let world = World::start(booking_script(), "pcm24k", true).await;
    let report = world.run(world.call(vec![Line::says(800), Line::says(1500)])).await;
    let events = world.final_events().await;

    assert!(report.violations.is_empty(), "Twilio protocol: {:?}", report.violations);
    let openai = world.openai.observed();
    assert!(openai.violations.is_empty(), "OpenAI protocol: {:?}", openai.violations);
    assert_eq!(openai.session_format, Some(AudioFormat::Pcm { rate: 24_000 }));
    assert_eq!(openai.utterances, 2, "the fake model's VAD heard both lines through the codec and resampler");
    assert!(openai.instructions[0].contains("\"Chez Panisse\""));
    assert!(report.agent_frames > 50, "the agent's audio reached Twilio: {} frames", report.agent_frames);
    assert!(report.agent_rms > 2_000.0, "and it is a real signal, not silence: rms {}", report.agent_rms);
    assert_eq!(world.hang_up().await, vec![("Status".to_owned(), "completed".to_owned())], "the agent hung up");
    assert_eq!(world.twilio.ledger().calls.len(), 1, "the worker never creates calls");
    assert_eq!(openai.tool_outputs, vec![r#"{"ok":true}"#.to_owned()]);

    assert!(matches!(events[0].kind, CallEventKind::StreamStarted { .. }));
    let lines = transcript(&events);
    assert!(lines.contains(&(Speaker::Restaurant, "Chez Panisse, good evening.".into())), "{lines:?}");
    assert!(lines.iter().any(|(s, t)| *s == Speaker::Agent && t.starts_with("Hello! I'd like to book")), "{lines:?}");
    let outcome = outcome(&events);
    assert_eq!(outcome.result, OutcomeResult::Confirmed);
    assert_eq!(outcome.confirmation_number.as_deref(), Some("A73X"));
    assert_eq!(end_reason(&events), EndReason::AgentHungUp);
    assert_eq!(world.edge.log().received.len(), events.len(), "each event delivered once");

    // The transcript so far lives in Redis too.
    let redis = world.redis.as_ref().unwrap();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let stored: Vec<String> =
        redis::AsyncCommands::lrange(&mut connection, format!("concierge:transcript:{CALL_ID}"), 0, -1).await.unwrap();
    assert_eq!(stored.len(), lines.len());

    // What the worker measured reaches the record, as the edge's ledger folds it.
    let mut ledger = CallLedger::new(CALL_ID.into(), "owner".into(), booking(), chrono::Utc::now());
    for event in &events {
        ledger.apply_event(event, chrono::Utc::now());
    }
    let metrics = ledger.record.metrics.clone().expect("the record keeps the stream's metrics");
    let billed = world.openai.observed().usage;
    assert_eq!(metrics.model.as_deref(), Some("gpt-realtime-2.1"));
    assert_eq!(metrics.transcription_model.as_deref(), Some("gpt-transcribe"));
    assert!(metrics.first_agent_audio_ms.is_some() && !metrics.reply_latencies_ms.is_empty(), "{metrics:?}");
    // Every answered turn's end of speech was found among the frames the worker appended
    // (the fake's VAD counts the same audio): each has the latency the host heard, and
    // the worker's share of it is a part of that.
    assert_eq!(metrics.heard_latencies_ms.len(), metrics.reply_latencies_ms.len(), "{metrics:?}");
    assert_eq!(metrics.worker_added_latencies_us.len(), metrics.heard_latencies_ms.len());
    for (heard_ms, worker_us) in metrics.heard_latencies_ms.iter().zip(&metrics.worker_added_latencies_us) {
        assert!(*worker_us <= heard_ms * 1_000 + 999, "{metrics:?}");
    }
    // Every response.done the fake billed is counted, the one that called end_call too;
    // the fake bills 20 audio tokens a second out: the two spoken replies (2.1 s) are 42.
    let used = metrics.usage;
    assert_eq!(used, billed, "the worker counted exactly what OpenAI billed");
    assert_eq!((used.responses, used.audio_output_tokens), (3, 42));
    assert!(used.text_input_tokens > 0 && used.cached_text_tokens > 0 && used.audio_input_tokens > 0, "{used:?}");
    assert!((2_000..=2_300).contains(&metrics.audio_out_ms), "2.1 s of agent audio, padded: {}", metrics.audio_out_ms);
    assert!(metrics.audio_in_ms >= 2_300, "the restaurant's two lines came in: {}", metrics.audio_in_ms);
    assert!(metrics.transcribed_ms > 1_000, "both lines were committed turns: {}", metrics.transcribed_ms);
    let cost = metrics.estimated_cost_micro_usd.expect("gpt-realtime-2.1 and gpt-transcribe have list prices");
    assert!(cost > 0, "{cost}");

    // And Prometheus has the same call in its histograms and counters.
    let text = world.metrics().await;
    assert_eq!(metric(&text, "concierge_first_agent_audio_seconds_count"), 1, "{text}");
    assert_eq!(metric(&text, "concierge_reply_latency_seconds_count"), metrics.reply_latencies_ms.len() as u64);
    assert_eq!(metric(&text, "concierge_heard_latency_seconds_count"), metrics.heard_latencies_ms.len() as u64);
    assert_eq!(metric(&text, "concierge_worker_added_latency_seconds_count"), metrics.heard_latencies_ms.len() as u64);
    let audio_out = r#"concierge_openai_tokens_total{modality="audio",direction="output",cached="false"}"#;
    assert_eq!(metric(&text, audio_out), used.audio_output_tokens, "{text}");
    assert!(text.lines().any(|l| l.starts_with("concierge_estimated_cost_usd_total 0.")), "{text}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_expired_token_is_refused_before_any_openai_session() {
    let world = World::start(booking_script(), "pcm24k", false).await;
    for token in [
        "",
        "garbage",
        &auth::issue_stream_token("wrong-secret", CALL_ID, chrono::Utc::now().timestamp() + 300),
        &auth::issue_stream_token(SECRET, CALL_ID, chrono::Utc::now().timestamp() - 1),
    ] {
        let mut call = world.call(vec![Line::says(800)]);
        call.parameters.insert("token".into(), token.to_owned());
        let report = world.run(call).await;
        assert_eq!(report.ended_by, "closed_by_worker", "token {token:?}");
        assert_eq!(report.agent_frames, 0);
    }
    assert_eq!(world.openai.observed().connections, 0, "no OpenAI session was opened");
    assert!(world.edge.log().received.is_empty());
    assert_eq!(world.edge.log().context_requests, 0);
    world.stop().await;
}

/// A counter or gauge from the Prometheus text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines().find_map(|line| line.strip_prefix(name).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_clears_twilio_and_truncates_at_what_was_played() {
    let script = Script {
        restaurant: vec!["Chez Panisse.".into(), "Sorry, which day was that?".into()],
        agent: vec![
            AgentTurn::say("Hello, I would like to book a table for four people tonight at seven thirty under the name Ada Lovelace please.", 4000),
            AgentTurn::say("Tonight, please.", 600),
        ],
        ..Script::default()
    };
    let world = World::with(Setup { redis: false, ..Setup::new(script) }).await;
    let mut call = world.call(vec![Line::says(800), Line::interrupts_after(900, 700)]);
    call.hang_up_after_last_line = true;
    let report = world.run(call).await;
    let events = world.final_events().await;
    let openai = world.openai.observed();
    assert!(openai.violations.is_empty(), "{:?}", openai.violations);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.clears, 1, "Twilio's buffer was cleared");
    assert_eq!(openai.truncations.len(), 1);
    let (item, at_ms) = &openai.truncations[0];
    assert_eq!(item, "item_agent_0");
    // The restaurant spoke up after ~700 ms had played: the cut is there, not at 4000.
    assert!((600..=1_600).contains(at_ms), "truncated at {at_ms} ms");
    let cut = transcript(&events).into_iter().find(|(s, _)| *s == Speaker::Agent).map(|(_, t)| t).unwrap();
    assert!(cut.ends_with('…') && cut.len() < 60, "the transcript keeps what was heard: {cut:?}");
    let stats = events
        .iter()
        .find_map(|e| if let CallEventKind::StreamEnded { stats, .. } = &e.kind { Some(stats.clone()) } else { None })
        .unwrap();
    assert_eq!(stats.barge_ins, 1);
    assert!(stats.first_agent_audio_ms.is_some());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_openai_socket_is_reopened_with_the_conversation_so_far() {
    let script = Script { drop_at_response: Some(1), ..booking_script() };
    let world = World::with(Setup::new(script)).await;
    world.run(world.call(vec![Line::says(800), Line::says(1500)])).await;
    let events = world.final_events().await;
    let openai = world.openai.observed();
    assert!(openai.violations.is_empty(), "{:?}", openai.violations);
    assert_eq!(openai.connections, 2, "one reconnect");
    let resumed = &openai.instructions[1];
    assert!(resumed.contains("The connection dropped"), "{resumed}");
    assert!(resumed.contains("Restaurant: Chez Panisse, good evening."), "{resumed}");
    assert_eq!(outcome(&events).confirmation_number.as_deref(), Some("A73X"), "the call still ended in a booking");
    assert_eq!(end_reason(&events), EndReason::AgentHungUp);
    assert!(metric(&world.metrics().await, "concierge_openai_errors_total") >= 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_is_still_read_while_openai_reconnects() {
    // The socket drops as the first reply starts and the reconnect hangs unanswered.
    // Twilio's frames keep coming, then its `stop`: the call ends at once as the
    // restaurant's hang-up, not after the connect's 8 s deadline as a dead model.
    let script = Script { drop_at_response: Some(0), hold_connections_after: Some(1), ..booking_script() };
    let world = World::with(Setup { redis: false, ..Setup::new(script) }).await;
    let mut held = world.openai.watch();
    let call = MediaCall { max_audio_ms: 60_000, ..world.call(vec![Line::says(800)]) };
    let running = tokio::spawn(call.run(world.twilio.watch()));
    wait_until(&mut held, "the reconnect held", |o| (o.held_connections == 1).then_some(())).await.unwrap();
    // The restaurant hangs up: Twilio's REST API records it and the stream sends `stop`.
    let hang_up = format!("{}/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL_SID}.json", world.twilio.base_url);
    let response = reqwest::Client::new()
        .post(hang_up)
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .form(&[("Status", "completed")])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let report = tokio::time::timeout(Duration::from_secs(60), running).await.expect("the call ends").unwrap().unwrap();
    assert_eq!(report.ended_by, "hung_up");
    let events = world.final_events().await;
    assert_eq!(end_reason(&events), EndReason::CallerHungUp);
    assert_eq!(world.openai.observed().connections, 1, "the reconnect never completed");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_server_errors_with_the_socket_open_do_not_end_or_reconnect_the_call() {
    // Two recoverable `server_error` events, one as each of the first two replies starts;
    // the socket stays open throughout.
    let script = Script { server_error_at_responses: vec![0, 1], ..booking_script() };
    let world = World::with(Setup { redis: false, ..Setup::new(script) }).await;
    world.run(world.call(vec![Line::says(800), Line::says(1500)])).await;
    let events = world.final_events().await;
    let openai = world.openai.observed();
    assert_eq!(openai.server_errors_sent, 2);
    assert!(openai.violations.is_empty(), "{:?}", openai.violations);
    assert_eq!(openai.connections, 1, "no reconnect");
    assert_eq!(outcome(&events).confirmation_number.as_deref(), Some("A73X"), "the call completed normally");
    assert_eq!(end_reason(&events), EndReason::AgentHungUp);
    let hang_up = world.hang_up().await;
    assert!(!hang_up.iter().any(|(_, v)| v.contains("technical trouble")), "{hang_up:?}");
    let metrics = world.metrics().await;
    assert_eq!(metric(&metrics, "concierge_openai_error_events_total"), 2, "reported and counted");
    assert_eq!(metric(&metrics, "concierge_openai_errors_total"), 0, "no socket was lost");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_failing_twice_ends_the_call_politely() {
    let script = Script {
        restaurant: vec!["Chez Panisse.".into(), "Let me check the book for you.".into()],
        drop_at_response: Some(1),
        max_connections: Some(1),
        ..booking_script()
    };
    let world = World::with(Setup { redis: false, ..Setup::new(script) }).await;
    world.run(world.call(vec![Line::says(800), Line::says(1500)])).await;
    let events = world.final_events().await;
    let hang_up = world.hang_up().await;
    let twiml = hang_up.iter().find(|(k, _)| k == "Twiml").map(|(_, v)| v.clone()).expect("a farewell");
    assert!(
        twiml.contains("<Say language=\"en-US\">")
            && twiml.contains("technical trouble")
            && twiml.contains("<Hangup/>"),
        "{twiml}"
    );
    assert_eq!(world.openai.observed().refused_connections, 1);
    assert_eq!(end_reason(&events), EndReason::ModelUnavailable);
    let outcome = outcome(&events);
    assert_eq!(outcome.result, OutcomeResult::NoDecision);
    assert!(outcome.notes.unwrap().contains("unavailable"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_socket_that_stops_reading_is_dropped_not_queued_behind() {
    // OpenAI stops taking audio twice (the first socket and the reconnect): the worker
    // waits for room at most SEND_DEADLINE each time, queues nothing, and ends the call.
    let script = Script { stall_once_configured: true, ..booking_script() };
    let world = World::with(Setup { redis: false, ..Setup::new(script) }).await;
    let mut call = world.call(vec![Line::says(800), Line::says(1500)]);
    // Audio fast and long enough to fill the stalled sockets' buffers.
    call.speed = 20;
    call.max_audio_ms = 600_000;
    let report = world.run(call).await;
    // The worker ended it (hang-up or closing the socket, whichever the client saw first).
    assert!(report.ended_by == "hung_up" || report.ended_by == "closed_by_worker", "{report:?}");
    assert_eq!(world.openai.observed().stalled_connections, 2, "one reconnect, then it gave up");
    let events = world.final_events().await;
    assert_eq!(end_reason(&events), EndReason::ModelUnavailable);
    let hang_up = world.hang_up().await;
    assert!(hang_up.iter().any(|(k, v)| k == "Twiml" && v.contains("technical trouble")), "{hang_up:?}");
    assert!(metric(&world.metrics().await, "concierge_openai_errors_total") >= 2);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_in_the_outbox_while_the_edge_is_down_and_arrive_once() {
    // Room in memory for about two events: the rest wait in Redis only (spilled) and are
    // read back from it when their turn comes.
    const MEMORY: u64 = 600;
    let extra = vec![("OUTBOX_MEMORY_BYTES", MEMORY.to_string())];
    let world = World::with(Setup { extra, ..Setup::new(booking_script()) }).await;
    let call = world.call(vec![Line::says(800), Line::says(1500)]);
    let twilio = world.twilio.watch();
    let running = tokio::spawn(async move { call.run(twilio).await });
    // Down right after the context was fetched: every event of the call meets a 503.
    let mut log = world.edge.watch();
    wait_until(&mut log, "the context fetch", |l| (l.context_requests > 0).then_some(())).await.unwrap();
    world.edge.set_down(true);
    tokio::time::timeout(Duration::from_secs(60), running).await.unwrap().unwrap().unwrap();
    let mut log = world.edge.watch();
    wait_until(&mut log, "the edge turning events away", |l| (l.turned_away >= 3).then_some(())).await.unwrap();
    assert!(world.edge.log().received.is_empty());
    // Every event of the call is in Redis, and the outbox's memory holds no more than
    // its limit: the rest were spilled. (Polled: neither has a change feed.)
    let redis_url = world.redis.as_ref().map(|r| r.url.clone()).unwrap();
    let stored = tokio::time::timeout(Duration::from_secs(20), async {
        let client = redis::Client::open(redis_url.as_str()).unwrap();
        loop {
            let metrics = world.metrics().await;
            let memory = metric(&metrics, "concierge_outbox_memory_bytes");
            let spilled = metric(&metrics, "concierge_outbox_spilled_total");
            if let Ok(mut redis) = client.get_multiplexed_async_connection().await {
                let stored: HashMap<String, String> =
                    redis::AsyncCommands::hgetall(&mut redis, format!("concierge:outbox:{CALL_ID}"))
                        .await
                        .unwrap_or_default();
                if stored.values().any(|e| e.contains("stream_ended")) && memory <= MEMORY && spilled >= 3 {
                    return stored;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the call's events in Redis, spilled from a bounded memory");
    world.edge.set_down(false);
    let events = world.final_events().await;
    let log = world.edge.log();
    for id in stored.keys() {
        assert!(log.received.iter().any(|e| &e.id == id), "event {id}, kept only in Redis, was delivered");
    }
    assert_eq!(metric(&world.metrics().await, "concierge_outbox_memory_bytes"), 0, "all delivered, nothing held");
    let mut ids: Vec<&str> = log.received.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "no event delivered twice");
    assert!(
        matches!(events[0].kind, CallEventKind::StreamStarted { .. })
            || events.iter().any(|e| matches!(e.kind, CallEventKind::StreamStarted { .. }))
    );
    assert_eq!(outcome(&events).confirmation_number.as_deref(), Some("A73X"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_mode_sends_mulaw_both_ways_with_the_embedded_store() {
    let world = World::start(booking_script(), "passthrough", false).await;
    let report = world.run(world.call(vec![Line::says(800), Line::says(1500)])).await;
    let events = world.final_events().await;
    let openai = world.openai.observed();
    assert!(openai.violations.is_empty(), "{:?}", openai.violations);
    assert_eq!(openai.session_format, Some(AudioFormat::Pcmu));
    assert_eq!(openai.utterances, 2);
    assert!(report.agent_rms > 2_000.0, "rms {}", report.agent_rms);
    assert_eq!(outcome(&events).confirmation_number.as_deref(), Some("A73X"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restaurant_hanging_up_finalizes_from_the_transcript() {
    let script = Script {
        restaurant: vec!["Chez Panisse.".into(), "You're booked, your reference is bravo four four two. Bye!".into()],
        agent: vec![AgentTurn::say("Hello, a table for four at seven thirty please, for Ada Lovelace.", 1200)],
        ..Script::default()
    };
    let world = World::with(Setup { redis: false, ..Setup::new(script) }).await;
    let mut call = world.call(vec![Line::says(800), Line::says(1500)]);
    call.hang_up_after_last_line = true;
    call.malformed_frames = true;
    let report = world.run(call).await;
    assert_eq!(report.ended_by, "stop_sent");
    let events = world.final_events().await;
    assert_eq!(end_reason(&events), EndReason::CallerHungUp);
    let outcome = outcome(&events);
    assert_eq!(outcome.result, OutcomeResult::Confirmed);
    assert_eq!(outcome.confirmation_number.as_deref(), Some("B442"), "read from the transcript");
    assert!(world.twilio.ledger().calls[0].updates.is_empty(), "no hang-up needed: the call is over");
    assert!(
        metric(&world.metrics().await, "concierge_frames_malformed_total") >= 4,
        "malformed frames were skipped, the call went on"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_worker_refuses_politely_without_an_agent() {
    let world = World::with(Setup {
        redis: false,
        extra: vec![("MAX_CONCURRENT_CALLS", "0".into())],
        ..Setup::new(booking_script())
    })
    .await;
    // The booking's language rides on the stream's parameters: the refusal is in it.
    let mut call = world.call(vec![Line::says(800)]);
    call.parameters.insert("language".into(), "es-MX".into());
    let report = world.run(call).await;
    assert_eq!(report.agent_frames, 0);
    let hang_up = world.hang_up().await;
    assert!(
        hang_up.iter().any(|(k, v)| k == "Twiml"
            && v.contains("<Say language=\"es-MX\">Lo siento, ahora no podemos atender esta llamada. Adiós.</Say>")),
        "{hang_up:?}"
    );
    let events = world.final_events().await;
    assert_eq!(end_reason(&events), EndReason::AtCapacity);
    assert_eq!(world.openai.observed().connections, 0);
    assert_eq!(metric(&world.metrics().await, "concierge_streams_refused_total"), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_mid_call_does_not_stop_the_call() {
    let mut world = World::with(Setup::new(booking_script())).await;
    let call = world.call(vec![Line::says(800), Line::says(1500)]);
    let twilio = world.twilio.watch();
    let running = tokio::spawn(async move { call.run(twilio).await });
    let mut log = world.edge.watch();
    wait_until(&mut log, "the stream starting", |l| (!l.received.is_empty()).then_some(())).await.unwrap();
    world.redis.take().unwrap().kill().await;
    tokio::time::timeout(Duration::from_secs(60), running).await.unwrap().unwrap().unwrap();
    let events = world.final_events().await;
    assert_eq!(outcome(&events).confirmation_number.as_deref(), Some("A73X"));
    assert_eq!(end_reason(&events), EndReason::AgentHungUp);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_gets_the_calls_state_back_and_the_call_goes_on() {
    let script = Script { restaurant: vec!["Hold on please.".into()], ..Script::default() };
    let extra = vec![("SESSION_TTL_SECONDS", "3".to_owned())];
    let mut world = World::with(Setup { extra, ..Setup::new(script) }).await;
    let mut call = world.call(vec![Line::says(800)]);
    call.max_audio_ms = 16_000;
    let twilio = world.twilio.watch();
    let running = tokio::spawn(async move { call.run(twilio).await });
    // The edge is down from the start, so the call's events wait in the outbox.
    let mut log = world.edge.watch();
    wait_until(&mut log, "the context fetch", |l| (l.context_requests > 0).then_some(())).await.unwrap();
    world.edge.set_down(true);

    let redis = world.redis.take().unwrap();
    let (url, port) = (redis.url.clone(), redis.port);
    let line = "Hold on please.";
    stored_in_redis(&url, "the line, the registration and the outbox reach Redis", line).await;
    // Restarted empty (no persistence), on the same address.
    redis.kill().await;
    let restarted = RedisServer::start_on(port).await.unwrap();
    stored_in_redis(&url, "the worker writes the line, the registration and the outbox back", line).await;
    world.edge.set_down(false);

    let report = tokio::time::timeout(Duration::from_secs(60), running).await.unwrap().unwrap().unwrap();
    assert_eq!(report.ended_by, "stop_sent", "the call ran to its own end");
    let events = world.final_events().await;
    assert_eq!(end_reason(&events), EndReason::CallerHungUp, "not superseded by the store's amnesia");
    assert!(transcript(&events).contains(&(Speaker::Restaurant, line.into())));
    let log = world.edge.log();
    assert_eq!(log.received.len(), log.applied().len(), "nothing delivered twice");
    world.redis = Some(restarted);
    world.stop().await;
}

/// Waits until Redis at `url` holds the call's registration, its stream token's
/// once-only claim, and `line` both in its transcript and in its outbox. Redis has no
/// change feed here, so this polls it (bounded by the deadline).
async fn stored_in_redis(url: &str, what: &str, line: &str) {
    let client = redis::Client::open(url).unwrap();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(mut redis) = client.get_multiplexed_async_connection().await {
                let transcript: Vec<String> =
                    redis::AsyncCommands::lrange(&mut redis, format!("concierge:transcript:{CALL_ID}"), 0, -1)
                        .await
                        .unwrap_or_default();
                let outbox: Vec<String> =
                    redis::AsyncCommands::hvals(&mut redis, format!("concierge:outbox:{CALL_ID}"))
                        .await
                        .unwrap_or_default();
                let registered: Option<String> =
                    redis::AsyncCommands::hget(&mut redis, "concierge:calls", CALL_ID).await.unwrap_or_default();
                // The token's once-only claim: one key per token of the call.
                let token_used: Option<String> =
                    redis::AsyncCommands::keys::<_, Vec<String>>(&mut redis, format!("concierge:stream:{CALL_ID}:*"))
                        .await
                        .unwrap_or_default()
                        .into_iter()
                        .next();
                if transcript.iter().any(|l| l.contains(line))
                    && outbox.iter().any(|e| e.contains(line))
                    && registered.is_some()
                    && token_used.is_some()
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(found.is_ok(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_live_calls_until_the_deadline() {
    let script = Script { restaurant: vec!["Hold on please.".into()], ..Script::default() };
    let mut world =
        World::with(Setup { redis: false, extra: vec![("DRAIN_SECONDS", "1".into())], ..Setup::new(script) }).await;
    let call = world.call(vec![Line::says(800)]);
    let twilio = world.twilio.watch();
    let running = tokio::spawn(async move { call.run(twilio).await });
    let mut log = world.edge.watch();
    wait_until(&mut log, "the stream starting", |l| (!l.received.is_empty()).then_some(())).await.unwrap();
    let health = world.worker_url.replace("ws://", "http://").replace("/media", "/health");
    assert_eq!(reqwest::get(&health).await.unwrap().status(), 200);
    let _ = world.stop_worker.take().unwrap().send(());
    let events = world.final_events().await;
    assert_eq!(end_reason(&events), EndReason::Shutdown);
    let hang_up = world.hang_up().await;
    assert!(hang_up.iter().any(|(k, v)| k == "Twiml" && v.contains("have to end the call")), "{hang_up:?}");
    tokio::time::timeout(Duration::from_secs(30), &mut world.worker)
        .await
        .expect("the worker exits after draining")
        .unwrap()
        .unwrap();
    // The worker ended it (hang-up or closing the socket, whichever the client saw first).
    let ended_by = running.await.unwrap().unwrap().ended_by;
    assert!(ended_by == "hung_up" || ended_by == "closed_by_worker", "{ended_by}");
}

/// Another media worker, as a real process of the built binary, with this world's
/// settings; with everything it has logged so far.
async fn worker_process(world: &World) -> (tokio::process::Child, String, Arc<Mutex<String>>) {
    let port = sim::wrangler::free_port().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_media-worker"));
    // Earlier entries first, so later ones (a scenario's extras) win.
    for (key, value) in &world.vars {
        command.env(key, value);
    }
    command
        .env("PORT", port.to_string())
        .env("INSTANCE_ID", "doomed-worker")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (listening, mut listening_seen) = tokio::sync::watch::channel(false);
    tokio::spawn(collect_lines(child.stdout.take().unwrap(), log.clone(), listening.clone()));
    tokio::spawn(collect_lines(child.stderr.take().unwrap(), log.clone(), listening.clone()));
    drop(listening);
    tokio::time::timeout(Duration::from_secs(20), listening_seen.wait_for(|seen| *seen))
        .await
        .expect("the worker process starts")
        .expect("the worker process exited before listening");
    (child, format!("ws://127.0.0.1:{port}/media"), log)
}

/// Appends a child's output to `log`, flagging when it says it listens.
async fn collect_lines(
    output: impl tokio::io::AsyncRead + Unpin,
    log: Arc<Mutex<String>>,
    listening: tokio::sync::watch::Sender<bool>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // Its JSON log says when it listens.
        if line.contains("media worker listening") {
            listening.send_replace(true);
        }
        let mut log = log.lock().unwrap();
        log.push_str(&line);
        log.push('\n');
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_call_loses_nothing_and_a_survivor_finishes_the_record() {
    let extra = vec![("SESSION_TTL_SECONDS", "3".to_owned()), ("OUTBOX_SWEEP_SECONDS", "1".to_owned())];
    let world = World::with(Setup { extra, ..Setup::new(booking_script()) }).await;
    let (mut doomed, doomed_url, _log) = worker_process(&world).await;
    let mut call = world.call(vec![Line::says(800), Line::says(1500)]);
    call.url = doomed_url;
    call.parameters.insert("language".into(), "it".into());
    let twilio = world.twilio.watch();
    let running = tokio::spawn(async move { call.run(twilio).await });
    // The edge goes down once the call has its context: events pile up in the outbox.
    let mut log = world.edge.watch();
    wait_until(&mut log, "the context fetch", |l| (l.context_requests > 0).then_some(())).await.unwrap();
    world.edge.set_down(true);
    // Once the restaurant's first line is in Redis's outbox, the worker dies. Redis has
    // no change feed here, so this one wait polls it (bounded by the deadline).
    let client = redis::Client::open(world.redis.as_ref().unwrap().url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let outbox_key = format!("concierge:outbox:{CALL_ID}");
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let pending: Vec<String> = redis::AsyncCommands::hvals(&mut redis, &outbox_key).await.unwrap_or_default();
            if pending.iter().any(|json| json.contains("Chez Panisse, good evening.")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the restaurant's line reaches the outbox");
    doomed.start_kill().unwrap();
    let _ = doomed.wait().await;
    let report = tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap().unwrap();
    assert_eq!(report.ended_by, "closed_by_worker");
    world.edge.set_down(false);

    let events = world.final_events().await;
    assert_eq!(end_reason(&events), EndReason::WorkerLost, "the survivor finished the record");
    assert!(
        events.iter().any(|e| matches!(e.kind, CallEventKind::StreamStarted { .. })),
        "the dead worker's events arrived"
    );
    assert!(transcript(&events).contains(&(Speaker::Restaurant, "Chez Panisse, good evening.".into())), "{events:?}");
    let log = world.edge.log();
    assert_eq!(log.received.len(), log.applied().len(), "nothing delivered twice");
    let hang_up = world.hang_up().await;
    assert!(
        hang_up
            .iter()
            .any(|(k, v)| k == "Twiml"
                && v.contains("<Say language=\"it-IT\">Mi dispiace, la connessione si è interrotta")),
        "the abandoned call was hung up, in the booking's language: {hang_up:?}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_tokens_never_reach_the_logs() {
    const OPENAI_KEY: &str = "sk-proj-never-log-me-7f3a91c2";
    // Debug level: dependencies' logs (HTTP, WebSocket, Redis) are in scope too.
    let extra = vec![("OPENAI_API_KEY", OPENAI_KEY.to_owned()), ("RUST_LOG", "debug".to_owned())];
    let world = World::with(Setup { extra, ..Setup::new(booking_script()) }).await;
    let (mut process, url, log) = worker_process(&world).await;

    let mut forged = world.call(vec![Line::says(800)]);
    forged.url = url.clone();
    forged.parameters.insert(
        "token".into(),
        auth::issue_stream_token("wrong-secret", CALL_ID, chrono::Utc::now().timestamp() + 300),
    );
    let forged_token = forged.parameters["token"].clone();
    assert_eq!(world.run(forged).await.ended_by, "closed_by_worker");
    let mut call = world.call(vec![Line::says(800), Line::says(1500)]);
    call.url = url;
    let token = call.parameters["token"].clone();
    world.run(call).await;
    let events = world.final_events().await;
    assert_eq!(outcome(&events).confirmation_number.as_deref(), Some("A73X"), "a whole call was logged");
    process.start_kill().unwrap();
    let _ = process.wait().await;

    let log = log.lock().unwrap().clone();
    assert!(log.lines().filter(|line| line.contains(CALL_ID)).count() >= 3, "the call is in the log:\n{log}");
    let basic_auth = shared::twilio::rest::basic_auth(ACCOUNT, AUTH_TOKEN);
    for (what, secret) in [
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("INTERNAL_SECRET", SECRET),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
        ("Twilio's Basic credentials", basic_auth.trim_start_matches("Basic ")),
        ("the stream token", &token),
        ("a forged stream token", &forged_token),
    ] {
        assert!(!log.contains(secret), "{what} appears in the log");
    }
    world.stop().await;
}

/// A call's stream token opens one stream, once: a second socket presenting it while the
/// call is live (a replay of the same `start`, or another `streamSid`) and again after the
/// call ended is refused before any OpenAI session, and the live stream goes on undisturbed.
async fn a_stream_token_opens_one_stream_once(redis: bool) {
    let script = Script { restaurant: vec!["Hello?".into()], ..Script::default() };
    let world = World::with(Setup { redis, ..Setup::new(script) }).await;
    let mut first = world.call(vec![Line::says(600)]);
    first.max_audio_ms = 16_000;
    let (token, first_sid) = (first.parameters["token"].clone(), first.stream_sid.clone());
    let twilio = world.twilio.watch();
    let running = tokio::spawn(async move { first.run(twilio).await });
    let mut log = world.edge.watch();
    wait_until(&mut log, "the first stream starting", |l| (!l.received.is_empty()).then_some(())).await.unwrap();

    let replay = |stream_sid: &str| {
        let mut call = world.call(vec![Line::says(600)]);
        call.parameters.insert("token".into(), token.clone());
        call.stream_sid = stream_sid.into();
        call
    };
    for stream_sid in [first_sid.as_str(), "MZ00000000000000000000000000000002"] {
        let report = world.run(replay(stream_sid)).await;
        assert_eq!(report.ended_by, "closed_by_worker", "a second socket with the token ({stream_sid})");
        assert_eq!(report.agent_frames, 0);
    }
    assert!(!running.is_finished(), "the refusals came while the first stream was live");
    assert_eq!(world.openai.observed().connections, 1, "no second agent");

    let first = tokio::time::timeout(Duration::from_secs(60), running).await.unwrap().unwrap().unwrap();
    assert_eq!(first.ended_by, "stop_sent", "the live stream ran to its own end");
    let events = world.final_events().await;
    assert_eq!(end_reason(&events), EndReason::CallerHungUp, "not superseded");
    let delivered = world.edge.log().received.len();

    // After the call ended, the token (still within its life) opens nothing.
    let report = world.run(replay("MZ00000000000000000000000000000003")).await;
    assert_eq!(report.ended_by, "closed_by_worker");
    assert_eq!(world.openai.observed().connections, 1, "no new OpenAI session");
    assert_eq!(world.edge.log().received.len(), delivered, "the completed record is left alone");
    assert!(world.twilio.ledger().calls[0].updates.is_empty(), "no refusal hung up the call");
    assert_eq!(metric(&world.metrics().await, "concierge_streams_refused_total"), 3);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_token_opens_one_stream_once_with_redis() {
    a_stream_token_opens_one_stream_once(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_token_opens_one_stream_once_with_the_embedded_store() {
    a_stream_token_opens_one_stream_once(false).await;
}

/// Reads a raw socket until the worker closes it (bounded by a deadline).
async fn closed_by_worker(socket: &mut tokio::net::TcpStream, what: &str) {
    use tokio::io::AsyncReadExt;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0u8; 1024];
        while let Ok(n) = socket.read(&mut buffer).await {
            if n == 0 {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: the worker closed the socket");
}

/// Waits until the worker ends a WebSocket (close frame, end or error).
async fn websocket_closed<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>, what: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(message)) = socket.next().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: the worker closed the socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_valid_start_are_capped_and_cut_at_the_deadline() {
    use futures_util::SinkExt;
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::tungstenite::Message;
    let extra = vec![("START_DEADLINE_MS", "1000".to_owned()), ("MAX_UNAUTHENTICATED_CONNECTIONS", "2".to_owned())];
    let world = World::with(Setup { redis: false, extra, ..Setup::new(booking_script()) }).await;
    let address = world.worker_url.trim_start_matches("ws://").trim_end_matches("/media").to_owned();

    // Two half-sent upgrade requests take both places at the door...
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        socket.write_all(b"GET /media HTTP/1.1\r\nHost: worker\r\nUpgrade: websocket\r\n").await.unwrap();
        held.push(socket);
    }
    // ...so a third connection is closed as soon as it arrives,
    let mut third = tokio::net::TcpStream::connect(&address).await.unwrap();
    closed_by_worker(&mut third, "a connection beyond the cap").await;
    // and the two are cut at the deadline, their headers never finished.
    for socket in &mut held {
        closed_by_worker(socket, "a half-sent request").await;
    }

    // A socket that upgrades but never sends `start` is cut at the deadline too.
    let (mut silent, _) = tokio_tungstenite::connect_async(world.worker_url.as_str()).await.unwrap();
    websocket_closed(&mut silent, "an upgraded socket without start").await;

    // Junk before `start` is skipped and counted, and past a few dozen frames the socket
    // is closed without waiting for a `start`.
    let (mut noisy, _) = tokio_tungstenite::connect_async(world.worker_url.as_str()).await.unwrap();
    for _ in 0..40 {
        if noisy.send(Message::Text("not a media streams message".into())).await.is_err() {
            break;
        }
    }
    websocket_closed(&mut noisy, "a socket sending junk before start").await;

    assert_eq!(world.openai.observed().connections, 0);
    let metrics = world.metrics().await;
    assert_eq!(metric(&metrics, "concierge_connections_refused_total"), 1);
    assert_eq!(metric(&metrics, "concierge_connections_timed_out_total"), 3);
    assert_eq!(metric(&metrics, "concierge_frames_malformed_total"), 32);
    assert!(metric(&metrics, "concierge_unauthenticated_connections") <= 1, "only the metrics request itself");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_before_start_is_logged_a_few_lines_then_summed() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let world = World::with(Setup { redis: false, ..Setup::new(booking_script()) }).await;
    let (mut process, url, log) = worker_process(&world).await;
    let (mut noisy, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
    for _ in 0..20 {
        noisy.send(Message::Text("not a media streams message".into())).await.unwrap();
    }
    noisy.send(Message::Close(None)).await.unwrap();
    websocket_closed(&mut noisy, "a socket sending junk").await;
    // The summary is the last thing the worker logs for that socket.
    let summed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if log.lock().unwrap().contains("malformed frames before start") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    process.start_kill().unwrap();
    let _ = process.wait().await;
    let log = log.lock().unwrap().clone();
    assert!(summed.is_ok(), "a summary line:\n{log}");
    assert_eq!(log.matches("skipping a malformed frame before start").count(), 3, "{log}");
    let summary = log.lines().find(|l| l.contains("malformed frames before start")).unwrap();
    assert!(summary.contains("\"skipped\":20"), "{summary}");
    world.stop().await;
}
