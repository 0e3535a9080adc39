//! Every scenario end to end: the WASM edge under `wrangler dev` (workerd, local KV),
//! the media worker with a real redis-server, the fake Twilio (REST API, carrier with
//! callbacks out of order and twice, Media Streams), the fake OpenAI Realtime server and
//! the scripted restaurant. Each test books through the public API and checks the final
//! record the edge pushes to the callback URL, and that GET returns the same.

use demo::{EdgeMode, LocalStack, OpenAiMode, Scenario, StackOptions, API_KEY};
use serde_json::Value;

async fn run(scenario: Scenario) -> (LocalStack, Value) {
    run_on(scenario, EdgeMode::Wrangler).await
}

async fn start(scenario: Scenario, edge: EdgeMode) -> LocalStack {
    demo::install_tls();
    LocalStack::start(StackOptions {
        scenario,
        openai: OpenAiMode::Fake,
        edge,
        redis: true,
        unruly_callbacks: true,
        speed: 2,
    })
    .await
    .unwrap()
}

async fn run_on(scenario: Scenario, edge: EdgeMode) -> (LocalStack, Value) {
    let stack = start(scenario, edge).await;
    let http = reqwest::Client::new();
    let call_id = stack.book(&http).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.edge_log()));
    let pushed = stack.final_record().await.unwrap_or_else(|e| panic!("{e}\n{}", stack.edge_log()));
    assert_eq!(pushed["call_id"], call_id.as_str());
    // The pushed record is what GET returns.
    let fetched = stack.record(&http, &call_id).await.unwrap();
    let strip = |mut v: Value| {
        v.as_object_mut().map(|o| o.remove("updated_at"));
        v
    };
    assert_eq!(strip(pushed.clone()), strip(fetched));
    // And nobody else can see it.
    let other = http
        .get(format!("{}/v1/calls/{call_id}", stack.edge_url))
        .bearer_auth(format!("{API_KEY}-other"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);
    (stack, pushed)
}

fn lines(record: &Value) -> Vec<(String, String)> {
    record["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["speaker"].as_str().unwrap().to_owned(), l["text"].as_str().unwrap().to_owned()))
        .collect()
}

fn assert_no_protocol_violations(stack: &LocalStack) {
    let openai = stack.openai.observed();
    assert!(openai.violations.is_empty(), "OpenAI protocol: {:?}", openai.violations);
    for (sid, log) in stack.carrier.log() {
        if let Some(media) = &log.media {
            assert!(media.violations.is_empty(), "Twilio protocol on {sid}: {:?}", media.violations);
        }
        for (status, answer) in &log.callbacks {
            assert!(*answer == 204 || *answer == 200, "callback {status} answered {answer}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_confirms_and_spells_a_code() {
    let (stack, record) = run(Scenario::Confirms).await;
    assert_eq!(record["status"], "completed");
    assert_eq!(record["answered_by"], "human");
    assert_eq!(record["outcome"]["result"], "confirmed");
    assert_eq!(record["outcome"]["confirmation_number"], "A73X");
    assert_eq!(record["outcome"]["party_size"], 4);
    let lines = lines(&record);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], ("restaurant".to_owned(), "Chez Panisse, good evening.".to_owned()));
    assert!(record["duration_seconds"].as_u64().unwrap() >= 1);
    assert!(stack.openai.observed().utterances >= 2);
    assert_no_protocol_violations(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_offers_another_time() {
    let (stack, record) = run(Scenario::OffersAnotherTime).await;
    assert_eq!(record["outcome"]["result"], "alternative_offered");
    assert_eq!(record["outcome"]["confirmed_time"], "21:15");
    assert_eq!(record["outcome"]["confirmation_number"], Value::Null);
    assert_no_protocol_violations(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restaurant_is_fully_booked() {
    let (stack, record) = run(Scenario::FullyBooked).await;
    assert_eq!(record["status"], "completed");
    assert_eq!(record["outcome"]["result"], "declined");
    assert_no_protocol_violations(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_puts_the_caller_on_hold_then_confirms() {
    let (stack, record) = run(Scenario::OnHold).await;
    assert_eq!(record["outcome"]["confirmation_number"], "K91");
    let lines = lines(&record);
    assert!(lines.iter().any(|(_, t)| t.starts_with("Thanks for holding")), "{lines:?}");
    // The agent said nothing while on hold: "Of course." then the confirmation.
    let agent: Vec<&String> = lines.iter().filter(|(s, _)| s == "agent").map(|(_, t)| t).collect();
    assert_eq!(agent.len(), 2, "{agent:?}");
    assert_no_protocol_violations(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_interrupts_the_agent() {
    let (stack, record) = run(Scenario::Interrupts).await;
    assert_eq!(record["outcome"]["confirmation_number"], "B22");
    let first_agent_line = lines(&record).into_iter().find(|(s, _)| s == "agent").unwrap().1;
    assert!(first_agent_line.ends_with('…'), "the interrupted line keeps only what was heard: {first_agent_line}");
    let openai = stack.openai.observed();
    assert_eq!(openai.truncations.len(), 1);
    assert!(stack.carrier.log().values().any(|l| l.media.as_ref().is_some_and(|m| m.clears == 1)));
    assert_no_protocol_violations(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicemail_gets_no_message_and_is_tried_again() {
    let (stack, record) = run(Scenario::Voicemail).await;
    assert_eq!(record["status"], "completed");
    assert_eq!(record["answered_by"], "machine_start");
    assert_eq!(record["outcome"]["result"], "voicemail");
    assert!(lines(&record).iter().all(|(speaker, _)| speaker != "agent"), "the agent left no message: {record}");
    assert_eq!(attempt_ends(&record), ["completed"; 3], "a machine each time: three calls, then the end");
    let log = stack.carrier.log();
    assert_eq!(log.len(), 3);
    let placed = stack.twilio.ledger().calls;
    for (sid, call) in &log {
        // Asynchronous AMD: the stream starts at answer (a host's greeting would reach the
        // agent); the verdict comes mid-call and the edge hangs up on the machine.
        assert!(call.twiml.as_deref().unwrap().contains("<Stream"), "connected at answer");
        assert_eq!(
            call.amd.as_ref().map(|(verdict, status)| (verdict.as_str(), *status)),
            Some(("machine_start", 204))
        );
        let hung_up = placed.iter().find(|c| &c.sid == sid).is_some_and(|c| !c.updates.is_empty());
        assert!(hung_up, "the edge ended the call on the machine");
    }
    assert_one_webhook(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_line_is_tried_three_times() {
    let (stack, record) = run(Scenario::Busy).await;
    assert_eq!(record["status"], "busy");
    assert_eq!(record["outcome"], Value::Null);
    assert_eq!(attempt_ends(&record), ["busy"; 3]);
    assert_eq!(stack.openai.observed().connections, 0);
    assert_one_webhook(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_answers_three_times() {
    let (stack, record) = run(Scenario::NoAnswer).await;
    assert_eq!(record["status"], "no_answer");
    assert_eq!(record["answered_by"], Value::Null);
    assert_eq!(attempt_ends(&record), ["no_answer"; 3]);
    let sids: std::collections::BTreeSet<&str> =
        record["attempts"].as_array().unwrap().iter().filter_map(|a| a["twilio_call_sid"].as_str()).collect();
    assert_eq!(sids.len(), 3, "three calls placed, each its own Twilio call");
    assert_one_webhook(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_line_then_the_host_books_the_table_on_the_second_attempt() {
    let (stack, record) = run(Scenario::BusyThenAnswers).await;
    assert_eq!(record["status"], "completed");
    assert_eq!(record["outcome"]["result"], "confirmed");
    assert_eq!(record["outcome"]["confirmation_number"], "A73X");
    assert_eq!(attempt_ends(&record), ["busy", "completed"]);
    let attempts = record["attempts"].as_array().unwrap();
    assert_eq!(attempts[1]["answered_by"], "human");
    assert_eq!(record["twilio_call_sid"], attempts[1]["twilio_call_sid"], "the record shows the call that answered");
    assert!(attempts[1]["started_at"].as_str() >= attempts[0]["ended_at"].as_str(), "one after the other");
    assert_eq!(stack.openai.observed().connections, 1, "only the answered call reached the agent");
    assert_one_webhook(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_booked_for_later_is_placed_at_its_time_by_the_keepers_alarm() {
    let stack = start(Scenario::Confirms, EdgeMode::Wrangler).await;
    let call_at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let mut body = stack.booking();
    body["call_at"] = serde_json::json!(call_at.to_rfc3339());
    let created = stack.book_with(&reqwest::Client::new(), &body).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created["status"], "scheduled", "{created}");
    assert!(stack.carrier.log().is_empty(), "nothing dialed before its time");
    let record = stack.final_record().await.unwrap_or_else(|e| panic!("{e}\n{}", stack.edge_log()));
    assert_eq!(record["outcome"]["confirmation_number"], "A73X");
    let attempts = record["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    let started: chrono::DateTime<chrono::Utc> = attempts[0]["started_at"].as_str().unwrap().parse().unwrap();
    assert!(started >= call_at - chrono::Duration::milliseconds(1), "placed at {started}, asked for {call_at}");
    assert_one_webhook(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_call_says_so_and_its_record_points_at_the_dual_channel_recording() {
    let stack = start(Scenario::Confirms, EdgeMode::Wrangler).await;
    let mut body = stack.booking();
    body["record"] = serde_json::json!(true);
    stack.book_with(&reqwest::Client::new(), &body).await.unwrap_or_else(|e| panic!("{e}"));
    let record = stack.final_record().await.unwrap_or_else(|e| panic!("{e}\n{}", stack.edge_log()));
    assert_eq!(record["outcome"]["confirmation_number"], "A73X");
    assert_eq!(record["recording"]["channels"], 2, "{record}");
    assert!(record["recording"]["url"].as_str().is_some_and(|url| url.contains("/Recordings/RE")));
    let placed = stack.twilio.ledger().calls;
    assert_eq!(placed[0].param("RecordingChannels"), Some("dual"));
    let instructions = stack.openai.observed().instructions.join("\n");
    assert!(instructions.contains("This call is recorded."), "the agent is told to say so");
    assert_one_webhook(&stack);
    // Erasing the record deletes the audio at Twilio too.
    let call_id = record["call_id"].as_str().unwrap_or_default();
    let http = reqwest::Client::new();
    let erased =
        http.delete(format!("{}/v1/calls/{call_id}", stack.edge_url)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(erased.status(), 200);
    assert_eq!(erased.json::<Value>().await.unwrap()["recording_deleted"], true);
    assert_eq!(stack.twilio.ledger().deleted_recordings, [record["recording"]["sid"].as_str().unwrap_or_default()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_menu_is_answered_with_the_right_key_played_as_tones_then_the_host_books() {
    let (stack, record) = run(Scenario::PhoneMenu).await;
    assert_eq!(record["outcome"]["confirmation_number"], "A73X", "{record}");
    let log = stack.carrier.log();
    let media = log.values().find_map(|call| call.media.clone()).expect("a media stream");
    assert_eq!(media.keys_heard, "2", "the menu heard the 2 as DTMF tones on the line");
    assert_eq!(media.lines_said, 3, "menu, the host, the confirmation");
    assert_no_protocol_violations(&stack);
}

/// How each attempt ended, in order.
fn attempt_ends(record: &Value) -> Vec<String> {
    record["attempts"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap_or_default().to_owned()).collect()
}

/// The completion webhook went out once, after the last attempt.
fn assert_one_webhook(stack: &LocalStack) {
    let deliveries = stack.sink.watch().borrow().clone();
    assert_eq!(deliveries.len(), 1, "one webhook: {:?}", deliveries.iter().map(|d| d.status).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_played_by_a_realtime_model_books_the_table() {
    let (stack, record) = run(Scenario::AiHost).await;
    assert_eq!(record["status"], "completed");
    assert_eq!(record["outcome"]["confirmation_number"], "A73X");
    let host = stack.host_openai.as_ref().unwrap().observed();
    assert!(host.violations.is_empty(), "the AI host's own Realtime protocol: {:?}", host.violations);
    assert_eq!(host.session_format, Some(shared::openai::config::AudioFormat::Pcmu));
    assert!(host.utterances >= 1, "the host heard the agent through the phone line");
    assert!(host.responses >= 2, "and answered it after its greeting: {} responses", host.responses);
    assert_no_protocol_violations(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_drops_and_reconnects_gets_every_event_once_in_order() {
    demo::install_tls();
    for edge in [EdgeMode::Native, EdgeMode::Wrangler] {
        let options = StackOptions {
            scenario: Scenario::Confirms,
            openai: OpenAiMode::Fake,
            edge,
            redis: false,
            unruly_callbacks: true,
            speed: 2,
        };
        let stack = LocalStack::start(options).await.unwrap();
        let http = reqwest::Client::new();
        let call_id = stack.book(&http).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.edge_log()));

        // Connect, take events until the first transcript line (mid-call), drop.
        let mut seen = Vec::new();
        stack
            .follow(&http, &call_id, None, |event| {
                seen.push(event.clone());
                event.kind != "transcript"
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", stack.edge_log()));
        assert_eq!(seen.last().map(|e| e.kind.as_str()), Some("transcript"), "{seen:?}");
        // Reconnect where it left off, and follow to the end.
        let last = seen.last().map(|e| e.id);
        stack
            .follow(&http, &call_id, last, |event| {
                seen.push(event.clone());
                true
            })
            .await
            .unwrap();

        let ids: Vec<u64> = seen.iter().map(|e| e.id).collect();
        assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "every event once, in order ({edge:?})");
        let end = seen.last().unwrap();
        assert_eq!(end.kind, "end");
        let pushed = stack.final_record().await.unwrap();
        assert_eq!(end.data, pushed, "the stream ends at the final record ({edge:?})");
        assert_eq!(end.data["outcome"]["confirmation_number"], "A73X");
        let lines = seen.iter().filter(|e| e.kind == "transcript").count();
        assert_eq!(lines, pushed["transcript"].as_array().map_or(0, Vec::len), "every line streamed");
        assert!(seen.iter().any(|e| e.kind == "status" && e.data["status"] == "in_progress"));
    }
}

// The confirmation code's checks are the shared core's, the same in both edges; these
// two run on the native edge so they need no wrangler toolchain.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_the_host_did_not_say_is_recorded_as_a_mismatch_with_both_codes() {
    let (stack, record) = run_on(Scenario::MisreadsCode, EdgeMode::Native).await;
    assert_eq!(record["status"], "completed");
    let outcome = &record["outcome"];
    assert_eq!(outcome["result"], "confirmed");
    assert_eq!(outcome["confirmation_number"], "A73Y", "the model's code is kept, not replaced: {outcome}");
    assert_eq!(outcome["code_verification"], "mismatch", "{outcome}");
    assert_eq!(outcome["heard_code"], "A73X", "{outcome}");
    assert_no_protocol_violations(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_correcting_the_read_back_leaves_the_corrected_code() {
    let (stack, record) = run_on(Scenario::CorrectsReadBack, EdgeMode::Native).await;
    let outcome = &record["outcome"];
    assert_eq!(outcome["confirmation_number"], "K91", "{outcome}");
    assert_eq!(outcome["code_verification"], "heard", "{outcome}");
    assert_eq!(outcome["heard_code"], Value::Null);
    let lines = lines(&record);
    assert!(lines.iter().any(|(s, t)| s == "agent" && t.contains("nine, seven?")), "{lines:?}");
    assert!(lines.iter().any(|(s, t)| s == "restaurant" && t == "No, K, nine, one."), "{lines:?}");
    assert_no_protocol_violations(&stack);
}
