//! One phone call's conversation, as a sans-IO state machine: the core that owns the
//! whole call. Inputs go in with the time they happened, outputs come out, and the
//! deadlines are data the driver asks for; nothing here reads a clock or a socket.
//!
//! # The driver's contract
//!
//! The media worker's per-call task (`media_worker::call`) owns the sockets and drives
//! one [`CallSession`], after str0m's `Rtc` and quinn-proto's `Connection`:
//!
//! ```text
//! session = CallSession::new(params, now)          (Twilio's `start` was checked)
//! loop {
//!     drain: while let Some(output) = session.poll_output() { perform it, in order }
//!     if the last output was Output::Finished: stop
//!     wait for the first of: a Twilio frame | an OpenAI frame | a socket opening or
//!                            closing | the instant session.poll_timeout() returned
//!     session.handle_input(input, now)   or   session.handle_timeout(now)
//! }
//! ```
//!
//! 1. **One mutation, then a full drain.** After every `handle_input` or
//!    `handle_timeout`, the driver takes every output before it feeds anything else,
//!    and performs them in the order given: audio before its mark, a `clear` before the
//!    truncation, the pre-roll after the configuration that asked for it.
//! 2. **Time comes from the driver.** `now` is the driver's monotonic clock at the
//!    moment of the input; it never goes backwards. [`CallSession::poll_timeout`] is the
//!    next instant `handle_timeout` is due (none once finished); ask again after every
//!    mutation, since any input may move it. A timer that fires is stopped before it is
//!    handled, so a past instant is never offered twice. Every time the session reports
//!    (`at_ms`, latencies) counts from the `now` it was created with.
//! 3. **The driver decides nothing about the call.** It converts audio, keeps the
//!    pre-roll, writes frames, opens sockets when asked ([`Output::ReconnectOpenAi`])
//!    and reads Twilio meanwhile, and reports what happened to its sockets as inputs.
//!    Every ending — the agent's goodbye, silence, the time limit, the caller hanging
//!    up, the model lost, a shutdown, another stream taking over — is decided here, and
//!    the ones without a live session (a refused stream, an orphaned call) in
//!    [`ending`]. The driver carries out [`Output::HangUp`] and [`Output::Report`]
//!    as given, and stops at [`Output::Finished`].
//! 4. **Audio bytes never pass through the state.** The session learns how much agent
//!    audio was sent (to place marks) and what Twilio played (from mark echoes); the
//!    restaurant's audio goes from Twilio to OpenAI through the driver once
//!    [`CallSession::accepts_audio`], and until then into a pre-roll of the first
//!    [`PRE_ROLL_FRAMES`] frames.
//! 5. **The driver says when audio left.** Only it knows when a write reached a socket:
//!    after a flush that carried restaurant audio to OpenAI it gives
//!    [`Input::RestaurantAudioWritten`], after one that carried agent audio to Twilio
//!    [`Input::AgentAudioWritten`]. A Twilio frame's `now` is when it was read, before
//!    it was forwarded, and an OpenAI event's when it was read, before it was parsed;
//!    the session turns these into the latency a host hears ([`latency`]).
//!
//! # What it owns, and where
//!
//! - here: the inputs and outputs, the OpenAI session configuration and reconnecting
//!   once with the conversation so far, the tools (`report_outcome`, `end_call`), what
//!   each deadline does when it fires;
//! - `playback`: what the restaurant actually heard — marks, the position played,
//!   barge-in (Twilio `clear` and `conversation.item.truncate` at that position), the
//!   agent's lines held until heard or cut where interrupted;
//! - [`latency`]: the latency a host hears per turn, and the worker's share of it;
//! - `timer`: time — every deadline of the call (the greeting wait, silence, the
//!   maximum length and its wrap-up, the goodbye's drain) as data;
//! - [`ending`]: every way the call ends — the live session's `finish`, the endings
//!   without one, farewells, outcome notes and the events' ids;
//! - [`confirmation`]: the confirmation code read from the conversation, and every code
//!   the agent reports checked against what the host said (again when the call ends).

pub mod confirmation;
pub mod ending;
mod keypad;
pub mod latency;
mod playback;
mod timer;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::call::TranscriptLine;
use crate::events::{CallEvent, CallEventKind, CallStats, EndReason, Outcome, Speaker};
use crate::language::{Farewell, Language};
use crate::openai::config::{resume_instructions, AgentSettings, END_CALL, PRESS_KEYS, REPORT_OUTCOME};
use crate::openai::events::{ClientEvent, Item, ResponseOverrides, Role, ServerEvent};
use crate::twilio::stream::StreamMessage;
use ending::EventSlot;
use keypad::{HeldAudio, PressingKeys};
pub use latency::PRE_ROLL_FRAMES;
use latency::{TurnFigures, TurnLatency};
use playback::{base64_decoded_len, HeldLine, ItemPlayback, PendingMark};
use timer::{Timer, TimerTable};

/// Time limits of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLimits {
    /// Past this (from the stream's start), the agent is asked to wrap up.
    pub max_call: Duration,
    /// After asking the agent to wrap up, hang up regardless this much later.
    pub wrap_up_grace: Duration,
    /// If the restaurant has not spoken this long after the stream starts, the agent opens.
    pub greeting_wait: Duration,
    /// Nobody has spoken this long: the agent asks once whether anyone is there.
    pub silence_nudge: Duration,
    /// After the nudge, nobody has spoken this long: hang up.
    pub silence_hang_up: Duration,
    /// After `end_call`, wait at most this long for the goodbye to finish playing.
    pub goodbye_drain: Duration,
}

impl SessionLimits {
    pub fn with_max_call_seconds(seconds: u64) -> SessionLimits {
        SessionLimits {
            max_call: Duration::from_secs(seconds),
            wrap_up_grace: Duration::from_secs(20),
            greeting_wait: Duration::from_secs(4),
            silence_nudge: Duration::from_secs(15),
            silence_hang_up: Duration::from_secs(60),
            goodbye_drain: Duration::from_secs(8),
        }
    }
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits::with_max_call_seconds(600)
    }
}

/// What the session is created with, once the stream's token has been checked.
#[derive(Debug, Clone)]
pub struct SessionParams {
    pub call_id: String,
    pub stream_sid: String,
    pub instructions: String,
    /// The booking's language tag (BCP-47), if it gave one: the farewells and the
    /// transcription hint follow it.
    pub language: Option<String>,
    pub settings: AgentSettings,
    pub limits: SessionLimits,
}

#[derive(Debug)]
pub enum Input<'a> {
    Twilio(&'a StreamMessage<'a>),
    OpenAi(&'a ServerEvent<'a>),
    /// The OpenAI socket is open (first time or after a reconnect).
    OpenAiConnected,
    /// The OpenAI socket closed or could not be opened.
    OpenAiLost,
    /// Twilio's socket closed without a `stop`.
    TwilioLost,
    /// The worker's drain deadline passed.
    Shutdown,
    /// Another stream for this call took over.
    Superseded,
    /// A flush just wrote restaurant audio (at least one `input_audio_buffer.append`)
    /// to OpenAI's socket.
    RestaurantAudioWritten,
    /// A flush just wrote agent audio (at least one Twilio `media` frame) to Twilio's
    /// socket.
    AgentAudioWritten,
}

/// Something to say to Twilio; the shell adds the `streamSid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioCommand {
    Mark(String),
    Clear,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    ToTwilio(TwilioCommand),
    ToOpenAi(ClientEvent<'static>),
    /// Convert this agent audio (base64, in the session's output format) and send it
    /// to Twilio, before the mark that follows this output.
    PlayAgentAudio {
        base64: String,
    },
    /// The agent's reply is complete: send its last partial frame, padded with silence.
    FlushAgentAudio,
    /// Play these key tones (8 kHz mu-law, whole 20 ms frames) to Twilio as they are,
    /// before the mark that follows this output.
    PlayTones {
        mulaw: Vec<u8>,
    },
    /// OpenAI is configured: forward the restaurant audio kept while it was away (the
    /// pre-roll), then forward audio as it comes (see [`CallSession::accepts_audio`]).
    ForwardPreRoll,
    /// Tell the edge (through the outbox). Boxed: events are rare and large, and every
    /// audio output would otherwise move their size through the queue.
    Report(Box<CallEvent>),
    /// Open the OpenAI socket again.
    ReconnectOpenAi,
    /// Hang up through the Twilio REST API, saying `farewell` first if given (in the
    /// call's language).
    HangUp {
        farewell: Option<Farewell>,
    },
    CloseOpenAi,
    /// Nothing more will come out of this session.
    Finished,
}

const WRAP_UP_INSTRUCTIONS: &str = "The call has reached its time limit. Politely say you have to go. If the outcome is known and not yet reported, call report_outcome first; then say goodbye and call end_call.";
const NUDGE_INSTRUCTIONS: &str =
    "The line has been quiet for a while. Ask once, briefly, whether anyone is still there. If you were put on hold, say nothing.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Live,
    Ended,
}

pub struct CallSession {
    params: SessionParams,
    /// The stream's start: every `at_ms` the session reports counts from here.
    started_at: Instant,
    phase: Phase,
    openai_ready: bool,
    reconnects_left: u8,
    outputs: VecDeque<Output>,
    event_seq: u64,
    transcript: Vec<TranscriptLine>,
    outcome_reported: bool,
    /// The agent's last `report_outcome` as it gave it, and the `at_ms` it was recorded
    /// at; its code is checked again against the whole transcript when the call ends.
    agent_outcome: Option<(Outcome, Outcome, u64)>,
    // Playback and barge-in.
    playback: Option<ItemPlayback>,
    marks: VecDeque<PendingMark>,
    mark_seq: u64,
    interrupted_items: Vec<String>,
    held_lines: Vec<HeldLine>,
    /// Keys being played for a phone menu, and the agent audio held until they have.
    pressing: Option<PressingKeys>,
    held_audio: Vec<HeldAudio>,
    timers: TimerTable,
    /// The silence nudge was sent: the next silence ends the call.
    nudged: bool,
    /// The agent called `end_call`: hang up once its goodbye has played.
    end_call_requested: bool,
    /// The response that called `end_call`, until its `response.done` (and usage) came.
    ending_response: Option<String>,
    // Latency bookkeeping.
    speech_stopped_at: Option<Instant>,
    responses_with_audio: Vec<String>,
    turns: TurnLatency,
    stats: CallStats,
    // Usage bookkeeping: audio each way in bytes, and the open VAD turn's start.
    audio_in_bytes: u64,
    audio_out_bytes: u64,
    speech_started_ms: Option<u64>,
}

impl CallSession {
    /// A session for a stream whose token has been checked. It asks for the OpenAI
    /// socket straight away (the shell should already be opening it).
    pub fn new(params: SessionParams, now: Instant) -> CallSession {
        let mut session = CallSession {
            params,
            started_at: now,
            phase: Phase::Live,
            openai_ready: false,
            reconnects_left: 1,
            outputs: VecDeque::new(),
            event_seq: 0,
            transcript: Vec::new(),
            outcome_reported: false,
            agent_outcome: None,
            playback: None,
            marks: VecDeque::new(),
            mark_seq: 0,
            interrupted_items: Vec::new(),
            held_lines: Vec::new(),
            pressing: None,
            held_audio: Vec::new(),
            timers: TimerTable::default(),
            nudged: false,
            end_call_requested: false,
            ending_response: None,
            speech_stopped_at: None,
            responses_with_audio: Vec::new(),
            turns: TurnLatency::new(),
            stats: CallStats::default(),
            audio_in_bytes: 0,
            audio_out_bytes: 0,
            speech_started_ms: None,
        };
        session.timers.set(Timer::WrapUp, now + session.params.limits.max_call);
        let stream_sid = session.params.stream_sid.clone();
        session.report(CallEventKind::StreamStarted { stream_sid });
        session
    }

    /// Whether restaurant audio should go to OpenAI now; until then the shell keeps a
    /// short pre-roll so the restaurant's greeting is not lost.
    pub fn accepts_audio(&self) -> bool {
        self.phase == Phase::Live && self.openai_ready
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Ended
    }

    pub fn transcript(&self) -> &[TranscriptLine] {
        &self.transcript
    }

    /// Agent audio sent to Twilio but not yet played, in ms.
    pub fn unplayed_ms(&self) -> u64 {
        match (&self.playback, self.marks.back()) {
            (Some(playback), Some(last)) if last.item_id == playback.item_id => {
                last.end_ms.saturating_sub(playback.played_ms)
            }
            (_, Some(last)) => last.end_ms,
            _ => 0,
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next moment [`CallSession::handle_timeout`] must be called. Allocates nothing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Live => self.timers.next_timeout(),
            Phase::Ended => None,
        }
    }

    pub fn handle_input(&mut self, input: Input<'_>, now: Instant) {
        if self.phase == Phase::Ended {
            return;
        }
        match input {
            Input::Twilio(message) => self.handle_twilio(message, now),
            Input::OpenAi(event) => self.handle_openai(event, now),
            Input::OpenAiConnected => self.openai_connected(now),
            Input::OpenAiLost => self.openai_lost(now),
            Input::TwilioLost => self.finish(EndReason::CallerHungUp, now),
            Input::Shutdown => self.finish(EndReason::Shutdown, now),
            Input::Superseded => self.finish(EndReason::Superseded, now),
            Input::RestaurantAudioWritten => self.turns.audio_written(now),
            Input::AgentAudioWritten => {
                if let Some(figures) = self.turns.agent_audio_written(now) {
                    self.turn_measured(figures);
                }
            }
        }
    }

    /// Fires every timer due at `now`, each stopped before it is handled.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in Timer::VALUES {
            if self.phase == Phase::Ended {
                return;
            }
            if self.timers.is_expired(timer, now) {
                self.timers.stop(timer);
                self.timer_fired(timer, now);
            }
        }
    }

    fn timer_fired(&mut self, timer: Timer, now: Instant) {
        let limits = &self.params.limits;
        match timer {
            Timer::MaxDuration => self.finish(EndReason::MaxDuration, now),
            Timer::WrapUp => {
                let hang_up_at = self.started_at + limits.max_call + limits.wrap_up_grace;
                self.timers.set(Timer::MaxDuration, hang_up_at);
                if self.openai_ready {
                    self.send_openai(ClientEvent::ConversationItemCreate {
                        previous_item_id: None,
                        item: Item::text(Role::System, WRAP_UP_INSTRUCTIONS),
                    });
                    self.send_openai(ClientEvent::ResponseCreate { response: None });
                }
            }
            Timer::GoodbyeDrain => self.finish(EndReason::AgentHungUp, now),
            Timer::Greeting => {
                // The restaurant picked up but has said nothing: open the conversation.
                self.send_openai(ClientEvent::ResponseCreate { response: None });
                self.activity(now);
            }
            // Agent audio is still unacknowledged: not silence. The next mark echo (or
            // barge-in) is activity, and arms the countdown again.
            Timer::Silence if !self.openai_ready || !self.marks.is_empty() => {}
            Timer::Silence if self.nudged => self.finish(EndReason::Silence, now),
            Timer::Silence => {
                self.nudged = true;
                // The hang-up countdown starts from the nudge.
                self.activity(now);
                self.send_openai(ClientEvent::ResponseCreate {
                    response: Some(ResponseOverrides {
                        instructions: Some(NUDGE_INSTRUCTIONS.into()),
                        tool_choice: None,
                    }),
                });
            }
        }
    }

    fn handle_twilio(&mut self, message: &StreamMessage<'_>, now: Instant) {
        match message {
            StreamMessage::Media(media) => {
                let bytes = base64_decoded_len(&media.media.payload);
                self.audio_in_bytes += bytes;
                self.turns.frame_read(bytes, self.accepts_audio(), now);
            }
            StreamMessage::Mark(mark) => {
                if !self.keys_played(&mark.mark.name, now) {
                    self.mark_played(&mark.mark.name, now);
                }
            }
            StreamMessage::Stop(_) => self.finish(EndReason::CallerHungUp, now),
            // `start` created this session; `connected` and DTMF need nothing.
            StreamMessage::Start(_) | StreamMessage::Connected(_) | StreamMessage::Dtmf(_) => {}
        }
    }

    fn handle_openai(&mut self, event: &ServerEvent<'_>, now: Instant) {
        match event {
            ServerEvent::SpeechStarted { audio_start_ms, .. } => {
                self.speech_started_ms = Some(*audio_start_ms);
                self.activity(now);
                self.timers.stop(Timer::Greeting);
                self.barge_in(now);
            }
            ServerEvent::SpeechStopped { audio_end_ms, .. } => {
                // A committed turn: what input transcription bills, by the minute.
                if let Some(start) = self.speech_started_ms.take() {
                    self.stats.transcribed_ms += audio_end_ms.saturating_sub(start);
                }
                self.activity(now);
                self.speech_stopped_at = Some(now);
                self.turns.speech_stopped(*audio_end_ms);
            }
            ServerEvent::InputTranscriptCompleted { transcript, .. } => {
                self.add_line(Speaker::Restaurant, transcript, now);
            }
            ServerEvent::ResponseCreated { .. } => self.timers.stop(Timer::Greeting),
            ServerEvent::ResponseDone { response } => {
                if let Some(usage) = &response.usage {
                    self.stats.usage.add(&usage.tokens());
                }
                if self.ending_response.as_deref() == Some(response.id.as_str()) {
                    self.ending_response = None;
                    self.hang_up_when_done(now);
                }
            }
            ServerEvent::AudioDelta(delta) => self.agent_audio(&delta.response_id, &delta.item_id, &delta.delta, now),
            ServerEvent::AudioDone { .. } => self.outputs.push_back(Output::FlushAgentAudio),
            ServerEvent::AudioTranscriptDelta { item_id, delta, .. } => self.agent_words(item_id, delta, false, now),
            ServerEvent::AudioTranscriptDone { item_id, transcript, .. } => {
                self.agent_words(item_id, transcript, true, now)
            }
            ServerEvent::FunctionCallArgumentsDone { name, call_id, arguments, response_id, .. } => {
                self.tool_call(name, call_id, arguments, response_id, now);
            }
            // Reported by the shell (logged, counted); only an ended session is lost.
            ServerEvent::Error { error } if error.ends_session() => self.openai_lost(now),
            _ => {}
        }
    }

    /// The call's language (English unless the booking named another).
    fn language(&self) -> Language {
        self.params.language.as_deref().and_then(|tag| Language::parse(tag).ok()).unwrap_or_default()
    }

    fn openai_connected(&mut self, now: Instant) {
        let first = self.reconnects_left > 0 && self.transcript.is_empty() && !self.openai_ready;
        let instructions = if self.transcript.is_empty() {
            self.params.instructions.clone()
        } else {
            resume_instructions(&self.params.instructions, &self.transcript)
        };
        let session = self.params.settings.session(instructions, self.language());
        self.send_openai(ClientEvent::SessionUpdate { event_id: None, session: Box::new(session) });
        self.outputs.push_back(Output::ForwardPreRoll);
        self.turns.connected();
        self.openai_ready = true;
        self.activity(now);
        // Back after a drop with the restaurant waiting for an answer: give it now.
        if self.transcript.last().is_some_and(|line| line.speaker == Speaker::Restaurant) {
            self.send_openai(ClientEvent::ResponseCreate { response: None });
        }
        if first && self.stats.first_agent_audio_ms.is_none() {
            let greeting_at = now.max(self.started_at + self.params.limits.greeting_wait);
            self.timers.set(Timer::Greeting, greeting_at);
        }
    }

    fn openai_lost(&mut self, now: Instant) {
        self.openai_ready = false;
        // Silence is not counted without a model to notice it; reconnecting arms it again.
        self.timers.stop(Timer::Silence);
        // A new socket counts audio from zero again.
        self.speech_started_ms = None;
        self.turns.lost();
        if self.reconnects_left > 0 {
            self.reconnects_left -= 1;
            self.outputs.push_back(Output::ReconnectOpenAi);
        } else {
            self.finish(EndReason::ModelUnavailable, now);
        }
    }

    fn tool_call(&mut self, name: &str, call_id: &str, arguments: &str, response_id: &str, now: Instant) {
        match name {
            REPORT_OUTCOME => {
                let reply = match Outcome::from_tool_arguments(arguments) {
                    Ok(given) => {
                        self.outcome_reported = true;
                        let at_ms = self.at_ms(now);
                        let outcome = confirmation::verify(given.clone(), &self.transcript);
                        self.agent_outcome = Some((given, outcome.clone(), at_ms));
                        self.report(CallEventKind::Outcome { outcome, at_ms });
                        r#"{"ok":true}"#.to_owned()
                    }
                    Err(error) => serde_json::json!({"ok": false, "error": error.0}).to_string(),
                };
                self.tool_reply(call_id, reply);
            }
            PRESS_KEYS => self.press_keys(call_id, arguments, now),
            END_CALL => {
                // Let the goodbye finish playing and this response's `response.done`
                // (which follows at once) arrive with its usage, but not forever.
                if !response_id.is_empty() {
                    self.ending_response = Some(response_id.to_owned());
                }
                self.end_call_requested = true;
                self.timers.set(Timer::GoodbyeDrain, now + self.params.limits.goodbye_drain);
                self.hang_up_when_done(now);
            }
            other => {
                let reply =
                    serde_json::json!({"ok": false, "error": format!("there is no tool named {other}")}).to_string();
                self.tool_reply(call_id, reply);
            }
        }
    }

    fn tool_reply(&mut self, call_id: &str, output: String) {
        self.send_openai(ClientEvent::ConversationItemCreate {
            previous_item_id: None,
            item: Item::FunctionCallOutput { call_id: call_id.to_owned(), output },
        });
        self.send_openai(ClientEvent::ResponseCreate { response: None });
    }

    fn add_line(&mut self, speaker: Speaker, text: &str, now: Instant) {
        self.add_line_at(speaker, text, self.at_ms(now));
    }

    fn add_line_at(&mut self, speaker: Speaker, text: &str, at_ms: u64) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let line = TranscriptLine { speaker, text: text.to_owned(), at_ms };
        self.transcript.push(line);
        self.report(CallEventKind::Transcript { speaker, text: text.to_owned(), at_ms });
    }

    /// Someone spoke or audio played: the silence countdown starts again.
    fn activity(&mut self, now: Instant) {
        if self.openai_ready {
            let limits = &self.params.limits;
            let idle = if self.nudged { limits.silence_hang_up } else { limits.silence_nudge };
            self.timers.set(Timer::Silence, now + idle);
        }
    }

    /// One turn's latency, kept for the stream's figures.
    fn turn_measured(&mut self, figures: TurnFigures) {
        self.stats.heard_latencies_ms.push(millis(figures.heard));
        self.stats.worker_added_latencies_us.push(u64::try_from(figures.worker.as_micros()).unwrap_or(u64::MAX));
    }

    /// `now` as the transcript and events count time: ms since the stream started.
    fn at_ms(&self, now: Instant) -> u64 {
        millis(now.saturating_duration_since(self.started_at))
    }

    fn send_openai(&mut self, event: ClientEvent<'static>) {
        self.outputs.push_back(Output::ToOpenAi(event));
    }

    fn report(&mut self, kind: CallEventKind) {
        self.event_seq += 1;
        let event = ending::event(&self.params.stream_sid, EventSlot::Live(self.event_seq), kind);
        self.outputs.push_back(Output::Report(Box::new(event)));
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
