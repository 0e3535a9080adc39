//! Whole scripted calls through the sans-IO session: wire-format JSON in, outputs
//! checked one by one, time advanced by hand.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use shared::events::{CallEventKind, CodeVerification, EndReason, OutcomeResult, Speaker};
use shared::openai::config::{AgentSettings, AudioMode};
use shared::openai::events::{ClientEvent, Item, ServerEvent};
use shared::session::{CallSession, Input, Output, SessionLimits, SessionParams, TwilioCommand};
use shared::twilio::stream::StreamMessage;

const STREAM: &str = "MZ0001";

/// A scripted call; its clock counts whole ms, and the stream starts at 1 000.
struct Call {
    session: CallSession,
    base: Instant,
    now: u64,
    outputs: Vec<Output>,
}

impl Call {
    fn start(mode: AudioMode) -> Call {
        Call::start_with(AgentSettings::new("gpt-realtime", "marin", mode).unwrap())
    }

    fn start_with(settings: AgentSettings) -> Call {
        Call::start_in(settings, None)
    }

    /// A call in the booking's language (`tag`, BCP-47).
    fn start_in(settings: AgentSettings, tag: Option<&str>) -> Call {
        let params = SessionParams {
            call_id: "call_1".into(),
            stream_sid: STREAM.into(),
            instructions: "Book a table for 4 at 19:30.".into(),
            language: tag.map(str::to_owned),
            settings,
            limits: SessionLimits::with_max_call_seconds(120),
        };
        let base = Instant::now();
        let session = CallSession::new(params, base + Duration::from_millis(1_000));
        let mut call = Call { session, base, now: 1_000, outputs: Vec::new() };
        call.drain();
        call
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut fresh = Vec::new();
        while let Some(output) = self.session.poll_output() {
            fresh.push(output);
        }
        self.outputs.extend(fresh.clone());
        fresh
    }

    /// Moves the clock to `ms`, firing every timer that falls due on the way as the
    /// shell would, and returns what came out.
    fn at(&mut self, ms: u64) -> Vec<Output> {
        assert!(ms >= self.now, "time goes forward");
        let mut fired = 0;
        while let Some(due) = self.due().filter(|&d| d <= ms) {
            fired += 1;
            assert!(fired < 100, "the session keeps offering a timer at {due} ms: a spin");
            self.now = due.max(self.now);
            self.session.handle_timeout(self.instant());
        }
        self.now = ms;
        self.drain()
    }

    /// When the session's next timer is due.
    fn due(&self) -> Option<u64> {
        self.session.poll_timeout().map(|at| u64::try_from((at - self.base).as_millis()).unwrap())
    }

    fn instant(&self) -> Instant {
        self.base + Duration::from_millis(self.now)
    }

    /// Fires the timers due at `ms` once, as the shell does when its timer goes off.
    fn fire(&mut self, ms: u64) -> Vec<Output> {
        self.now = ms;
        self.session.handle_timeout(self.instant());
        self.drain()
    }

    fn openai(&mut self, event: serde_json::Value) -> Vec<Output> {
        let text = event.to_string();
        let parsed = ServerEvent::parse(&text).unwrap();
        self.session.handle_input(Input::OpenAi(&parsed), self.instant());
        self.drain()
    }

    fn twilio(&mut self, message: serde_json::Value) -> Vec<Output> {
        let text = message.to_string();
        let parsed = StreamMessage::parse(&text).unwrap();
        self.session.handle_input(Input::Twilio(&parsed), self.instant());
        self.drain()
    }

    fn input(&mut self, input: Input<'_>) -> Vec<Output> {
        self.session.handle_input(input, self.instant());
        self.drain()
    }

    fn connect(&mut self) -> Vec<Output> {
        self.input(Input::OpenAiConnected)
    }

    fn restaurant_says(&mut self, text: &str) -> Vec<Output> {
        let mut out = self.openai(
            json!({"type": "input_audio_buffer.speech_started", "event_id": "e", "audio_start_ms": 0, "item_id": "in"}),
        );
        out.extend(self.openai(
            json!({"type": "input_audio_buffer.speech_stopped", "event_id": "e", "audio_end_ms": 900, "item_id": "in"}),
        ));
        out.extend(self.openai(json!({"type": "conversation.item.input_audio_transcription.completed", "event_id": "e", "item_id": "in", "content_index": 0, "transcript": text})));
        out
    }

    /// One audio delta of `ms` milliseconds for `item`.
    fn agent_audio(&mut self, response: &str, item: &str, ms: usize) -> Vec<Output> {
        let bytes = vec![0u8; ms * 48];
        let delta = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.openai(json!({"type": "response.output_audio.delta", "event_id": "e", "response_id": response, "item_id": item, "output_index": 0, "content_index": 0, "delta": delta}))
    }

    fn agent_transcript(&mut self, item: &str, text: &str) -> Vec<Output> {
        self.openai(json!({"type": "response.output_audio_transcript.done", "event_id": "e", "response_id": "r", "item_id": item, "output_index": 0, "content_index": 0, "transcript": text}))
    }

    fn tool(&mut self, name: &str, arguments: serde_json::Value) -> Vec<Output> {
        self.openai(json!({"type": "response.function_call_arguments.done", "event_id": "e", "response_id": "r", "item_id": "fc", "output_index": 0, "call_id": format!("call_{name}"), "name": name, "arguments": arguments.to_string()}))
    }

    /// `response.done` for the response the tool calls belong to ("r"), billing `audio_out` tokens.
    fn tools_done(&mut self, audio_out: u64) -> Vec<Output> {
        self.openai(json!({"type": "response.done", "event_id": "e", "response": {"id": "r", "status": "completed", "output": [],
            "usage": {"input_tokens": 0, "output_tokens": audio_out, "output_token_details": {"text_tokens": 0, "audio_tokens": audio_out}}}}))
    }

    /// The agent says `text` and Twilio plays all of it.
    fn agent_says(&mut self, item: &str, text: &str) {
        let sent = self.agent_audio(&format!("resp_{item}"), item, 100);
        self.agent_transcript(item, text);
        for name in marks(&sent) {
            self.mark_echo(&name);
        }
    }

    fn outcomes(&self) -> Vec<(shared::events::Outcome, u64)> {
        self.reports()
            .into_iter()
            .filter_map(
                |k| if let CallEventKind::Outcome { outcome, at_ms } = k { Some((outcome, at_ms)) } else { None },
            )
            .collect()
    }

    fn mark_echo(&mut self, name: &str) -> Vec<Output> {
        self.twilio(json!({"event": "mark", "sequenceNumber": "9", "streamSid": STREAM, "mark": {"name": name}}))
    }

    fn reports(&self) -> Vec<CallEventKind> {
        self.outputs
            .iter()
            .filter_map(|o| if let Output::Report(e) = o { Some(e.kind.clone()) } else { None })
            .collect()
    }

    fn transcript(&self) -> Vec<(Speaker, String)> {
        self.reports()
            .into_iter()
            .filter_map(|k| {
                if let CallEventKind::Transcript { speaker, text, .. } = k {
                    Some((speaker, text))
                } else {
                    None
                }
            })
            .collect()
    }

    fn outcome(&self) -> Option<shared::events::Outcome> {
        self.reports().into_iter().rev().find_map(|k| {
            if let CallEventKind::Outcome { outcome, .. } = k {
                Some(outcome)
            } else {
                None
            }
        })
    }

    fn ended(&self) -> Option<EndReason> {
        self.reports().into_iter().find_map(|k| {
            if let CallEventKind::StreamEnded { reason, .. } = k {
                Some(reason)
            } else {
                None
            }
        })
    }
}

fn marks(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| if let Output::ToTwilio(TwilioCommand::Mark(n)) = o { Some(n.clone()) } else { None })
        .collect()
}

fn openai_types(outputs: &[Output]) -> Vec<&'static str> {
    outputs.iter().filter_map(|o| if let Output::ToOpenAi(e) = o { Some(e.type_name()) } else { None }).collect()
}

#[test]
fn happy_path_books_and_hangs_up_after_the_goodbye() {
    let mut call = Call::start(AudioMode::Pcm24k);
    assert!(matches!(&call.reports()[0], CallEventKind::StreamStarted { stream_sid } if stream_sid == STREAM));
    assert!(!call.session.accepts_audio(), "no audio before OpenAI is configured");

    let out = call.connect();
    assert_eq!(openai_types(&out), ["session.update"]);
    assert_eq!(out[1], Output::ForwardPreRoll, "the audio kept while connecting follows the configuration");
    assert!(call.session.accepts_audio());

    call.at(1_500);
    call.restaurant_says("Chez Panisse, how can I help you?");
    call.at(1_800);
    call.openai(json!({"type": "response.created", "event_id": "e", "response": {"id": "resp_1"}}));
    let out = call.agent_audio("resp_1", "item_a1", 100);
    assert!(
        matches!(&out[0], Output::PlayAgentAudio { base64 } if base64.len() == 6_400),
        "audio goes out before its mark"
    );
    let first_marks = marks(&out);
    let more = call.agent_audio("resp_1", "item_a1", 100);
    let second_marks = marks(&more);
    call.agent_transcript("item_a1", "Hello, I'd like a table for four tonight at seven thirty.");
    assert!(call.transcript().iter().all(|(s, _)| *s != Speaker::Agent), "held until heard");
    call.at(2_000);
    call.mark_echo(&first_marks[0]);
    call.mark_echo(&second_marks[0]);
    assert_eq!(
        call.transcript().last().unwrap(),
        &(Speaker::Agent, "Hello, I'd like a table for four tonight at seven thirty.".to_string())
    );

    call.at(4_000);
    call.restaurant_says("Yes, you're booked. Your confirmation number is A as in apple, seven, three, X.");
    let out = call.tool("report_outcome", json!({"result": "confirmed", "confirmation_number": "a-73x", "confirmed_date": "2026-12-05", "confirmed_time": "19:30", "party_size": 4}));
    assert_eq!(openai_types(&out), ["conversation.item.create", "response.create"]);
    let outcome = call.outcome().unwrap();
    assert_eq!(outcome.result, OutcomeResult::Confirmed);
    assert_eq!(outcome.confirmation_number.as_deref(), Some("A73X"));
    assert_eq!(outcome.code_verification, Some(CodeVerification::Heard), "the host said it");
    assert_eq!(outcome.party_size, Some(4));

    call.at(4_250);
    let goodbye = call.agent_audio("resp_2", "item_a2", 200);
    let out = call.tool("end_call", json!({}));
    assert!(!out.iter().any(|o| matches!(o, Output::HangUp { .. })), "the goodbye is still playing");
    let out = call.tools_done(7);
    assert!(!out.iter().any(|o| matches!(o, Output::HangUp { .. })), "the goodbye is still playing");
    call.at(4_500);
    let out = call.mark_echo(&marks(&goodbye)[0]);
    assert!(out.contains(&Output::HangUp { farewell: None }));
    assert!(out.contains(&Output::CloseOpenAi));
    assert_eq!(out.last(), Some(&Output::Finished));
    assert_eq!(call.ended(), Some(EndReason::AgentHungUp));
    // The outcome came from the agent: no fallback overwrote it.
    assert_eq!(call.reports().iter().filter(|k| matches!(k, CallEventKind::Outcome { .. })).count(), 1);
    match call.reports().last() {
        Some(CallEventKind::StreamEnded { stats, .. }) => {
            assert_eq!(stats.first_agent_audio_ms, Some(800));
            assert_eq!(stats.reply_latencies_ms, vec![300, 250]);
            assert_eq!(stats.barge_ins, 0);
            assert_eq!(stats.usage.audio_output_tokens, 7, "the goodbye's response is counted");
        }
        other => panic!("{other:?}"),
    }
    assert!(call.session.is_finished());
    assert_eq!(call.due(), None);
}

#[test]
fn barge_in_clears_twilio_and_truncates_at_what_was_played() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    let mut names = Vec::new();
    for _ in 0..3 {
        names.extend(marks(&call.agent_audio("resp_1", "item_a1", 100)));
    }
    call.agent_transcript("item_a1", "We would like a table for four people at seven thirty please");
    call.mark_echo(&names[0]); // 100 ms of 300 ms heard
    assert_eq!(call.session.unplayed_ms(), 200);

    let out = call.openai(json!({"type": "input_audio_buffer.speech_started", "event_id": "e", "audio_start_ms": 2100, "item_id": "in_2"}));
    assert_eq!(out[0], Output::ToTwilio(TwilioCommand::Clear));
    match &out[1] {
        Output::ToOpenAi(ClientEvent::ConversationItemTruncate { item_id, content_index, audio_end_ms }) => {
            assert_eq!((item_id.as_str(), *content_index, *audio_end_ms), ("item_a1", 0, 100));
        }
        other => panic!("expected a truncate, got {other:?}"),
    }
    // The agent's line keeps what was heard (a third of it), marked as cut off.
    assert_eq!(call.transcript().last().unwrap(), &(Speaker::Agent, "We would like a…".to_string()));

    // Late audio of the interrupted item is never played; echoes of cleared marks are ignored.
    assert!(call.agent_audio("resp_1", "item_a1", 100).is_empty());
    assert!(call.mark_echo(&names[1]).is_empty());
    assert!(call.mark_echo(&names[2]).is_empty());
    assert_eq!(call.session.unplayed_ms(), 0);

    // Speech with nothing unplayed is not a barge-in.
    let out = call.openai(
        json!({"type": "input_audio_buffer.speech_started", "event_id": "e", "audio_start_ms": 0, "item_id": "in_3"}),
    );
    assert!(out.is_empty());
    // A new reply plays normally.
    assert!(
        matches!(&call.agent_audio("resp_2", "item_a2", 40)[0], Output::PlayAgentAudio { base64 } if base64.len() == 2_560)
    );
}

#[test]
fn a_reply_cut_before_its_transcript_finished_keeps_the_words_streamed_so_far() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    let mut names = Vec::new();
    for words in ["We would ", "like a table ", "for four ", "at seven "] {
        names.extend(marks(&call.agent_audio("resp_1", "item_a1", 100)));
        call.openai(json!({"type": "response.output_audio_transcript.delta", "event_id": "e", "response_id": "resp_1", "item_id": "item_a1", "output_index": 0, "content_index": 0, "delta": words}));
    }
    call.mark_echo(&names[1]); // half of what was sent has played
    call.openai(
        json!({"type": "input_audio_buffer.speech_started", "event_id": "e", "audio_start_ms": 0, "item_id": "in"}),
    );
    // Half the audio played: half of the nine words streamed so far.
    assert_eq!(call.transcript(), vec![(Speaker::Agent, "We would like a table…".to_string())]);
    // A late `done` for the interrupted item adds nothing.
    call.agent_transcript("item_a1", "We would like a table for four at seven thirty.");
    assert_eq!(call.transcript().len(), 1);
}

#[test]
fn truncation_never_goes_past_the_audio_that_was_sent() {
    let mut call = Call::start(AudioMode::Passthrough);
    call.connect();
    // 8 bytes per ms in passthrough: 10 bytes is 1 ms; marks resolve to what was sent.
    let delta = base64::engine::general_purpose::STANDARD.encode([0xFFu8; 10]);
    let out = call.openai(json!({"type": "response.output_audio.delta", "event_id": "e", "response_id": "r", "item_id": "it", "output_index": 0, "content_index": 0, "delta": delta}));
    let name = marks(&out)[0].clone();
    call.agent_audio("r", "it", 1);
    call.mark_echo(&name);
    let out = call.openai(
        json!({"type": "input_audio_buffer.speech_started", "event_id": "e", "audio_start_ms": 0, "item_id": "in"}),
    );
    match &out[1] {
        Output::ToOpenAi(ClientEvent::ConversationItemTruncate { audio_end_ms, .. }) => {
            assert!(*audio_end_ms <= 7, "{audio_end_ms}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn voicemail_leaves_no_message_and_hangs_up() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(3_000);
    call.restaurant_says("You've reached Chez Panisse. Please leave a message after the beep.");
    call.tool("report_outcome", json!({"result": "voicemail"}));
    let out = call.tool("end_call", json!({"reason": "voicemail"}));
    assert!(!out.iter().any(|o| matches!(o, Output::HangUp { .. })), "its response.done follows at once");
    let out = call.tools_done(0);
    assert!(out.contains(&Output::HangUp { farewell: None }), "nothing queued: hang up as it comes");
    assert_eq!(call.outcome().unwrap().result, OutcomeResult::Voicemail);
    assert_eq!(call.ended(), Some(EndReason::AgentHungUp));
    assert!(call.transcript().iter().all(|(s, _)| *s == Speaker::Restaurant), "the agent said nothing");
}

#[test]
fn restaurant_hanging_up_finalizes_with_the_transcript_outcome() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    call.restaurant_says("Sure, that's booked, reference is bravo 4 4 2. Bye!");
    let out = call.twilio(json!({"event": "stop", "sequenceNumber": "40", "stop": {"accountSid": "AC1", "callSid": "CA1"}, "streamSid": STREAM}));
    assert!(!out.iter().any(|o| matches!(o, Output::HangUp { .. })), "the call is already over");
    assert!(out.contains(&Output::CloseOpenAi));
    let outcome = call.outcome().unwrap();
    assert_eq!(outcome.result, OutcomeResult::Confirmed);
    assert_eq!(outcome.confirmation_number.as_deref(), Some("B442"));
    assert_eq!(call.ended(), Some(EndReason::CallerHungUp));
    // After the end, nothing more comes out.
    assert!(call.restaurant_says("hello?").is_empty());
}

#[test]
fn openai_dropping_reconnects_once_with_the_conversation_then_ends_politely() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    call.restaurant_says("Good evening, Chez Panisse.");
    let out = call.openai(json!({"type": "error", "event_id": "e", "error": {"type": "invalid_request_error", "code": "session_expired", "message": "expired"}}));
    assert_eq!(out, vec![Output::ReconnectOpenAi]);
    assert!(!call.session.accepts_audio());

    let out = call.connect();
    match &out[0] {
        Output::ToOpenAi(ClientEvent::SessionUpdate { session, .. }) => {
            assert!(session.instructions.starts_with("Book a table for 4 at 19:30."));
            assert!(
                session.instructions.contains("Restaurant: Good evening, Chez Panisse."),
                "{}",
                session.instructions
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(openai_types(&out), ["session.update", "response.create"], "the restaurant spoke last: answer it");
    // A non-fatal error is survived.
    assert!(call.openai(json!({"type": "error", "event_id": "e", "error": {"type": "invalid_request_error", "code": "item_truncate_invalid", "message": "x"}})).is_empty());

    let out = call.input(Input::OpenAiLost);
    assert!(
        matches!(&out[0], Output::HangUp { farewell: Some(farewell) } if farewell.text.contains("technical trouble") && farewell.locale == "en-US")
    );
    let outcome = call.outcome().unwrap();
    assert_eq!(outcome.result, OutcomeResult::NoDecision);
    assert!(outcome.notes.unwrap().contains("unavailable"));
    assert_eq!(call.ended(), Some(EndReason::ModelUnavailable));
}

#[test]
fn openai_error_events_with_the_socket_open_are_survived_without_a_reconnect() {
    // OpenAI: "Most errors are recoverable and the session will stay open"
    // (https://developers.openai.com/api/reference/resources/realtime/server-events).
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    call.restaurant_says("Good evening, Chez Panisse.");
    let server_error = json!({"type": "error", "event_id": "e", "error": {"type": "server_error", "code": null,
        "message": "The server had an error while processing your request.", "param": null, "event_id": null}});
    for _ in 0..2 {
        assert!(call.openai(server_error.clone()).is_empty(), "no reconnect, no hang-up");
        assert!(call.session.accepts_audio(), "the socket is still open: audio keeps flowing");
    }
    assert_eq!(call.ended(), None);
    // The one reconnect is still there for a socket that really closes.
    assert_eq!(call.input(Input::OpenAiLost), vec![Output::ReconnectOpenAi]);
}

#[test]
fn the_agent_opens_when_the_restaurant_stays_silent() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    assert_eq!(call.due(), Some(5_000));
    assert!(openai_types(&call.at(4_999)).is_empty());
    assert_eq!(openai_types(&call.at(5_000)), ["response.create"]);
}

#[test]
fn a_greeting_cancels_the_agents_opening() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    call.restaurant_says("Hello?");
    assert!(openai_types(&call.at(6_000)).is_empty());
}

#[test]
fn the_maximum_call_length_asks_for_a_wrap_up_then_hangs_up() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    call.restaurant_says("Hold on, let me look.");
    // Keep the line busy so silence rules do not end the call first.
    for t in (3_000..121_000).step_by(5_000) {
        call.at(t);
        call.restaurant_says("mm-hmm");
    }
    let out = call.at(121_000);
    match &out[..] {
        [Output::ToOpenAi(ClientEvent::ConversationItemCreate { item: Item::Message { .. }, .. }), Output::ToOpenAi(ClientEvent::ResponseCreate { .. })] =>
            {}
        other => panic!("expected the wrap-up request, got {other:?}"),
    }
    call.at(141_000);
    assert!(call.outputs.contains(&Output::HangUp { farewell: None }));
    assert_eq!(call.ended(), Some(EndReason::MaxDuration));
}

#[test]
fn silence_gets_one_nudge_then_a_hang_up() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    call.restaurant_says("One moment.");
    match &call.at(17_000)[..] {
        [Output::ToOpenAi(ClientEvent::ResponseCreate { response: Some(overrides) })] => {
            assert!(overrides.instructions.as_deref().unwrap().contains("still there"));
        }
        other => panic!("expected a nudge, got {other:?}"),
    }
    call.at(76_999);
    assert_eq!(call.ended(), None);
    call.at(77_000);
    assert_eq!(call.ended(), Some(EndReason::Silence));
}

#[test]
fn the_end_of_a_reply_flushes_its_last_frame() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.agent_audio("resp_1", "item_a1", 30);
    let out = call.openai(json!({"type": "response.output_audio.done", "event_id": "e", "response_id": "resp_1", "item_id": "item_a1", "output_index": 0, "content_index": 0}));
    assert_eq!(out, [Output::FlushAgentAudio]);
}

#[test]
fn a_silence_deadline_with_unacknowledged_audio_is_not_offered_again() {
    // Twilio stops echoing marks but keeps the socket open: the silence deadline falls
    // due while agent audio is still unacknowledged. It may not act then, and it may not
    // be offered again in the past either, or the shell re-arms it every turn and spins.
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    call.restaurant_says("Hello?");
    let sent = call.agent_audio("resp_1", "item_a1", 100);
    let due = call.due().expect("the silence deadline");
    assert_eq!(due, 17_000);
    assert!(call.fire(due).is_empty(), "no nudge while the agent's audio is unacknowledged");
    let next = call.due();
    assert!(next.is_some_and(|next| next > due), "a fired deadline is not offered again: {next:?} at {due}");
    // When the echo finally comes, the silence countdown starts again from it.
    call.at(30_000);
    call.mark_echo(&marks(&sent)[0]);
    assert!(openai_types(&call.at(44_999)).is_empty());
    assert_eq!(openai_types(&call.at(45_000)), ["response.create"], "the nudge, 15 s after the echo");
}

#[test]
fn bad_tool_arguments_are_returned_to_the_model_not_recorded() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    let out = call.tool("report_outcome", json!({"result": "maybe"}));
    match &out[0] {
        Output::ToOpenAi(ClientEvent::ConversationItemCreate {
            item: Item::FunctionCallOutput { call_id, output },
            ..
        }) => {
            assert_eq!(call_id, "call_report_outcome");
            assert!(output.contains("\"ok\":false"), "{output}");
        }
        other => panic!("{other:?}"),
    }
    assert!(call.outcome().is_none());
    let out = call.tool("order_pizza", json!({}));
    assert!(
        matches!(&out[0], Output::ToOpenAi(ClientEvent::ConversationItemCreate { item: Item::FunctionCallOutput { output, .. }, .. }) if output.contains("no tool named order_pizza"))
    );
}

#[test]
fn event_ids_are_unique_and_name_the_stream() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.restaurant_says("Hi");
    call.restaurant_says("Still here");
    call.input(Input::TwilioLost);
    let ids: Vec<String> =
        call.outputs.iter().filter_map(|o| if let Output::Report(e) = o { Some(e.id.clone()) } else { None }).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    assert!(ids.iter().all(|id| id.starts_with("MZ0001-")));
    assert_eq!(call.ended(), Some(EndReason::CallerHungUp));
}

#[test]
fn the_stream_reports_its_usage_audio_and_estimated_cost() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    // 100 frames of Twilio's 20 ms mu-law audio: 2 s of restaurant audio in.
    let payload = base64::engine::general_purpose::STANDARD.encode([0xffu8; 160]);
    for n in 0..100u64 {
        call.twilio(json!({"event": "media", "sequenceNumber": (n + 2).to_string(), "streamSid": STREAM, "media": {"track": "inbound", "chunk": (n + 1).to_string(), "timestamp": (n * 20).to_string(), "payload": payload}}));
    }
    call.restaurant_says("Chez Panisse."); // a 900 ms turn for transcription
    call.agent_audio("resp_1", "item_1", 1_500);
    let usage = |text_in: u64, audio_in: u64, cached: serde_json::Value, text_out: u64, audio_out: u64| {
        json!({"type": "response.done", "event_id": "e", "response": {"id": "resp_1", "object": "realtime.response", "status": "completed", "output": [], "usage": {
            "total_tokens": text_in + audio_in + text_out + audio_out, "input_tokens": text_in + audio_in, "output_tokens": text_out + audio_out,
            "input_token_details": cached_details(text_in, audio_in, cached),
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out}}}})
    };
    fn cached_details(text: u64, audio: u64, cached: serde_json::Value) -> serde_json::Value {
        let total = cached["text_tokens"].as_u64().unwrap_or(0) + cached["audio_tokens"].as_u64().unwrap_or(0);
        json!({"text_tokens": text, "audio_tokens": audio, "image_tokens": 0, "cached_tokens": total, "cached_tokens_details": cached})
    }
    call.openai(usage(600, 200, json!({"text_tokens": 0, "audio_tokens": 0}), 40, 300));
    call.openai(usage(640, 1_800, json!({"text_tokens": 576, "audio_tokens": 192}), 60, 700));
    // A cancelled response without usage, and one whose cached split is missing.
    call.openai(json!({"type": "response.done", "event_id": "e", "response": {"id": "resp_x", "status": "cancelled", "output": []}}));
    call.openai(json!({"type": "response.done", "event_id": "e", "response": {"id": "resp_3", "status": "completed", "output": [],
        "usage": {"input_tokens": 10, "output_tokens": 0, "input_token_details": {"text_tokens": 10, "audio_tokens": 0, "cached_tokens": 4}}}}));
    call.input(Input::TwilioLost);

    let stats = call
        .reports()
        .into_iter()
        .find_map(|k| if let CallEventKind::StreamEnded { stats, .. } = k { Some(stats) } else { None })
        .unwrap();
    let used = stats.usage;
    assert_eq!(used.responses, 3);
    assert_eq!((used.text_input_tokens, used.audio_input_tokens), (1_250, 2_000));
    assert_eq!((used.cached_text_tokens, used.cached_audio_tokens), (580, 192));
    assert_eq!((used.text_output_tokens, used.audio_output_tokens), (100, 1_000));
    assert_eq!(stats.audio_in_ms, 2_000);
    assert_eq!(stats.audio_out_ms, 1_500);
    assert_eq!(stats.transcribed_ms, 900);
    assert_eq!(stats.model.as_deref(), Some("gpt-realtime"));
    assert_eq!(stats.transcription_model.as_deref(), Some("gpt-transcribe"));
    // `gpt-realtime` has no default prices here: no estimate rather than a wrong one.
    assert_eq!(stats.estimated_cost_micro_usd, None);

    let mut priced = Call::start_with(AgentSettings::new("gpt-realtime-2.1", "marin", AudioMode::Pcm24k).unwrap());
    priced.connect();
    priced.restaurant_says("Hello.");
    priced.openai(usage(1_000, 5_000, json!({"text_tokens": 200, "audio_tokens": 1_000}), 300, 2_000));
    priced.input(Input::TwilioLost);
    let stats = priced
        .reports()
        .into_iter()
        .find_map(|k| if let CallEventKind::StreamEnded { stats, .. } = k { Some(stats) } else { None })
        .unwrap();
    // Tokens $0.26688 (see the pricing module's test) + 0.9 s of gpt-transcribe at
    // $0.0045 a minute ($0.0000675).
    assert_eq!(stats.estimated_cost_micro_usd, Some(266_880 + 68));
}

#[test]
fn end_call_waits_for_its_response_to_be_done_but_not_forever() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    call.restaurant_says("Goodbye then.");
    let out = call.tool("end_call", json!({}));
    assert!(!out.iter().any(|o| matches!(o, Output::HangUp { .. })));
    // Another response finishing changes nothing; the deadline hangs up regardless.
    call.openai(json!({"type": "response.done", "event_id": "e", "response": {"id": "other", "status": "completed", "output": []}}));
    assert!(!call.session.is_finished());
    let out = call.at(2_000 + 8_000);
    assert!(out.contains(&Output::HangUp { farewell: None }));
    assert_eq!(call.ended(), Some(EndReason::AgentHungUp));
}

#[test]
fn a_reported_code_that_differs_from_the_hosts_is_a_mismatch_showing_both() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    call.restaurant_says("You're all set, your confirmation number is A as in apple, seven, three, X.");
    call.tool("report_outcome", json!({"result": "confirmed", "confirmation_number": "A73Y"}));
    call.input(Input::TwilioLost);
    let outcome = call.outcome().unwrap();
    assert_eq!(outcome.confirmation_number.as_deref(), Some("A73Y"), "the agent's code is kept, not replaced");
    assert_eq!(outcome.code_verification, Some(CodeVerification::Mismatch));
    assert_eq!(outcome.heard_code.as_deref(), Some("A73X"));
}

#[test]
fn the_host_correcting_the_read_back_gives_the_corrected_code() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    call.restaurant_says("Confirmation is K as in kilo, nine, one.");
    call.at(3_000);
    call.agent_says("item_a1", "K, nine, seven?");
    call.tool("report_outcome", json!({"result": "confirmed", "confirmation_number": "K97"}));
    assert_eq!(call.outcome().unwrap().code_verification, Some(CodeVerification::Mismatch));
    call.at(4_000);
    call.restaurant_says("No, K, nine, one.");
    call.tool("report_outcome", json!({"result": "confirmed", "confirmation_number": "K91"}));
    call.input(Input::TwilioLost);
    let outcome = call.outcome().unwrap();
    assert_eq!(outcome.confirmation_number.as_deref(), Some("K91"));
    assert_eq!(outcome.code_verification, Some(CodeVerification::Heard));
    assert_eq!(outcome.heard_code, None);
}

#[test]
fn a_read_back_confirmed_after_the_report_is_recorded_at_the_end() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.at(2_000);
    // The transcription lost the code; the model heard it.
    call.restaurant_says("You're booked, the confirmation is, um...");
    call.tool("report_outcome", json!({"result": "confirmed", "confirmation_number": "K914"}));
    let (first, first_at) = call.outcomes()[0].clone();
    assert_eq!(first.code_verification, Some(CodeVerification::Unverifiable));
    call.at(3_000);
    call.agent_says("item_a1", "So the confirmation is K, 9, 1, 4?");
    call.at(4_000);
    call.restaurant_says("Yes, that's right.");
    call.at(4_000);
    call.input(Input::TwilioLost);
    let outcomes = call.outcomes();
    assert_eq!(outcomes.len(), 2, "the checked outcome is recorded again: {outcomes:?}");
    let (last, last_at) = outcomes[1].clone();
    assert!(last_at > first_at, "newer, so the edge keeps it");
    assert_eq!(last.confirmation_number.as_deref(), Some("K914"));
    assert_eq!(last.code_verification, Some(CodeVerification::ReadBackConfirmed));
}

#[test]
fn a_call_in_spanish_transcribes_spanish_and_says_its_farewell_in_spanish() {
    let mut call =
        Call::start_in(AgentSettings::new("gpt-realtime", "marin", AudioMode::Pcm24k).unwrap(), Some("es-MX"));
    let out = call.connect();
    match &out[0] {
        Output::ToOpenAi(ClientEvent::SessionUpdate { session, .. }) => {
            let transcription = session.audio.input.transcription.as_ref().map(|t| t.language.clone());
            assert_eq!(transcription, Some(Some("es".into())), "the transcription hint follows the call's language");
        }
        other => panic!("{other:?}"),
    }
    call.input(Input::OpenAiLost);
    call.fire(call.due().unwrap_or(0));
    let out = call.connect();
    assert!(!out.is_empty());
    let out = call.input(Input::OpenAiLost);
    match &out[0] {
        Output::HangUp { farewell: Some(farewell) } => {
            assert!(farewell.text.starts_with("Lo siento"), "{}", farewell.text);
            assert_eq!(farewell.locale, "es-MX");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pressed_keys_play_after_what_was_said_and_hold_the_agent_until_they_have() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    call.restaurant_says("Thank you for calling Chez Panisse. For reservations, press 2.");
    let said = call.agent_audio("r", "a1", 200);
    let out = call.tool("press_keys", json!({"digits": "2"}));
    let tones = out.iter().position(|o| matches!(o, Output::PlayTones { .. })).expect("the tones");
    assert_eq!(out.iter().position(|o| *o == Output::FlushAgentAudio), Some(tones - 1), "after what was said");
    let Output::PlayTones { mulaw } = &out[tones] else { panic!("{:?}", out[tones]) };
    assert_eq!(mulaw.len(), 8 * 200, "one key: 100 ms of tone, 100 ms of silence, 8 kHz mu-law");
    let keys_mark = match &out[tones + 1] {
        Output::ToTwilio(TwilioCommand::Mark(name)) => name.clone(),
        other => panic!("{other:?}"),
    };
    assert!(openai_types(&out).is_empty(), "no result before the keys have played");
    // The agent's audio meanwhile is held, not played over the keys.
    let held = call.agent_audio("r2", "a2", 100);
    assert!(!held.iter().any(|o| matches!(o, Output::PlayAgentAudio { .. })), "{held:?}");
    for name in marks(&said) {
        call.mark_echo(&name);
    }
    let out = call.mark_echo(&keys_mark);
    assert_eq!(openai_types(&out), ["conversation.item.create"], "the result, and no response: the menu answers");
    let result = out.iter().find_map(|o| match o {
        Output::ToOpenAi(ClientEvent::ConversationItemCreate {
            item: Item::FunctionCallOutput { output, .. }, ..
        }) => Some(output.clone()),
        _ => None,
    });
    assert_eq!(result.as_deref(), Some(r#"{"ok":true,"pressed":"2"}"#));
    assert!(out.iter().any(|o| matches!(o, Output::PlayAgentAudio { .. })), "the held audio plays now");
}

#[test]
fn keys_that_are_not_keys_are_refused_to_the_model_and_nothing_plays() {
    let mut call = Call::start(AudioMode::Pcm24k);
    call.connect();
    let out = call.tool("press_keys", json!({"digits": "two"}));
    assert!(!out.iter().any(|o| matches!(o, Output::PlayTones { .. })));
    assert_eq!(openai_types(&out), ["conversation.item.create", "response.create"]);
}

/// One 20 ms Twilio frame of mu-law silence.
fn media_frame(chunk: u64) -> serde_json::Value {
    let payload = base64::engine::general_purpose::STANDARD.encode([0xffu8; 160]);
    json!({"event": "media", "sequenceNumber": "2", "streamSid": STREAM,
        "media": {"track": "inbound", "chunk": chunk.to_string(), "timestamp": ((chunk - 1) * 20).to_string(), "payload": payload}})
}

#[test]
fn each_turn_reports_the_latency_the_host_heard_and_the_workers_share() {
    let mut call = Call::start(AudioMode::Pcm24k);
    // 100 ms of audio before OpenAI is configured: the pre-roll, appended first.
    for chunk in 1..=5 {
        call.at(1_000 + chunk * 20);
        call.twilio(media_frame(chunk));
    }
    call.at(1_120);
    call.connect();
    call.at(1_121);
    call.input(Input::RestaurantAudioWritten);
    // Then a frame every 20 ms from 1 200, each written to OpenAI 1 ms after it was read.
    for chunk in 6..=30 {
        call.at(1_200 + (chunk - 6) * 20);
        call.twilio(media_frame(chunk));
        call.at(1_201 + (chunk - 6) * 20);
        call.input(Input::RestaurantAudioWritten);
    }
    // OpenAI's VAD ends the turn at 300 ms of appended audio: 100 of pre-roll, then the
    // tenth live frame (280..300 ms), read at 1 380 and written at 1 381.
    call.at(1_690);
    call.openai(
        json!({"type": "input_audio_buffer.speech_stopped", "event_id": "e", "audio_end_ms": 300, "item_id": "in"}),
    );
    call.at(1_900);
    call.agent_audio("resp_1", "item_1", 100);
    call.at(1_902);
    call.input(Input::AgentAudioWritten);
    // A later delta of the same reply, and its write, measure nothing more.
    call.agent_audio("resp_1", "item_1", 100);
    call.at(1_905);
    call.input(Input::AgentAudioWritten);

    // A turn that ended inside the pre-roll waited for the socket: not measured.
    call.openai(
        json!({"type": "input_audio_buffer.speech_stopped", "event_id": "e", "audio_end_ms": 60, "item_id": "in2"}),
    );
    call.at(2_300);
    call.agent_audio("resp_2", "item_2", 100);
    call.input(Input::AgentAudioWritten);

    call.twilio(json!({"event": "stop", "sequenceNumber": "40", "stop": {"accountSid": "AC1", "callSid": "CA1"}, "streamSid": STREAM}));
    match call.reports().last() {
        Some(CallEventKind::StreamEnded { stats, .. }) => {
            assert_eq!(stats.reply_latencies_ms, [210, 395], "from each speech_stopped, as before");
            // X − T0 = 1 902 − 1 380; the worker: 1 ms to OpenAI, 2 ms to Twilio.
            assert_eq!(stats.heard_latencies_ms, [522]);
            assert_eq!(stats.worker_added_latencies_us, [3_000]);
        }
        other => panic!("{other:?}"),
    }
}
