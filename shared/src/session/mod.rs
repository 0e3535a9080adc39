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
//!    [`CallSession::accepts_audio`].
//!
//! # What it owns
//!
//! - the OpenAI session configuration, and reconnecting once with the conversation so far;
//! - barge-in: when the restaurant starts speaking over unplayed agent audio, Twilio
//!   `clear` and `conversation.item.truncate` at the position actually played;
//! - transcripts of both sides, the agent's held until heard (or cut where interrupted);
//! - the outcome, from `report_outcome` or, failing that, from the transcript, its
//!   confirmation code checked against what the host said (again when the call ends);
//! - time: every deadline of the call (the `timer` module): the greeting wait, silence, the
//!   maximum length and its wrap-up, the goodbye's drain;
//! - how the call ends, and the events that record it ([`ending`]).

pub mod confirmation;
pub mod ending;
mod timer;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::call::TranscriptLine;
use crate::events::{CallEvent, CallEventKind, CallStats, EndReason, Outcome, Speaker};
use crate::openai::config::{resume_instructions, AgentSettings, END_CALL, REPORT_OUTCOME};
use crate::openai::events::{ClientEvent, Item, ResponseOverrides, Role, ServerEvent};
use crate::twilio::stream::StreamMessage;
use ending::EventSlot;
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
    /// OpenAI is configured: forward the restaurant audio kept while it was away (the
    /// pre-roll), then forward audio as it comes (see [`CallSession::accepts_audio`]).
    ForwardPreRoll,
    /// Tell the edge (through the outbox).
    Report(CallEvent),
    /// Open the OpenAI socket again.
    ReconnectOpenAi,
    /// Hang up through the Twilio REST API, saying `farewell` first if given.
    HangUp {
        farewell: Option<String>,
    },
    CloseOpenAi,
    /// Nothing more will come out of this session.
    Finished,
}

const WRAP_UP_INSTRUCTIONS: &str = "The call has reached its time limit. Politely say you have to go. If the outcome is known and not yet reported, call report_outcome first; then say goodbye and call end_call.";
const NUDGE_INSTRUCTIONS: &str =
    "The line has been quiet for a while. Ask once, briefly, whether anyone is still there. If you were put on hold, say nothing.";

/// Agent audio sent to Twilio and not yet acknowledged as played.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingMark {
    name: String,
    item_id: String,
    /// Position in the item (ms of audio) once this mark's audio has played.
    end_ms: u64,
}

/// The agent item currently being played.
#[derive(Debug, Clone, Default)]
struct ItemPlayback {
    item_id: String,
    sent_bytes: u64,
    played_ms: u64,
}

/// An agent line waiting until it has been heard.
#[derive(Debug, Clone)]
struct HeldLine {
    item_id: String,
    text: String,
    /// When the line began, in ms since the stream started (as the transcript keeps it).
    at_ms: u64,
    /// `transcript.done` arrived; until then `text` is the deltas so far.
    complete: bool,
}

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
            timers: TimerTable::default(),
            nudged: false,
            end_call_requested: false,
            ending_response: None,
            speech_stopped_at: None,
            responses_with_audio: Vec::new(),
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
                self.audio_in_bytes += base64_decoded_len(&media.media.payload);
            }
            StreamMessage::Mark(mark) => self.mark_played(&mark.mark.name, now),
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
            ServerEvent::AudioTranscriptDelta { item_id, delta, .. } => {
                // Kept as it streams: a reply cut off by barge-in may never get its `done`.
                if self.interrupted_items.contains(item_id) {
                    return;
                }
                match self.held_lines.iter_mut().find(|l| &l.item_id == item_id) {
                    Some(line) => line.text.push_str(delta),
                    None => {
                        let at_ms = self.at_ms(now);
                        self.held_lines.push(HeldLine {
                            item_id: item_id.clone(),
                            text: delta.clone(),
                            at_ms,
                            complete: false,
                        });
                    }
                }
            }
            ServerEvent::AudioTranscriptDone { item_id, transcript, .. } => {
                if self.interrupted_items.contains(item_id) {
                    return; // already recorded as heard, cut where the restaurant spoke
                }
                let at_ms = self.at_ms(now);
                match self.held_lines.iter_mut().find(|l| &l.item_id == item_id) {
                    Some(line) => {
                        line.text.clone_from(transcript);
                        line.complete = true;
                    }
                    None => self.held_lines.push(HeldLine {
                        item_id: item_id.clone(),
                        text: transcript.clone(),
                        at_ms,
                        complete: true,
                    }),
                }
                if !self.marks.iter().any(|m| &m.item_id == item_id) {
                    self.release_line(item_id, None);
                }
            }
            ServerEvent::FunctionCallArgumentsDone { name, call_id, arguments, response_id, .. } => {
                self.tool_call(name, call_id, arguments, response_id, now);
            }
            // Reported by the shell (logged, counted); only an ended session is lost.
            ServerEvent::Error { error } if error.ends_session() => self.openai_lost(now),
            _ => {}
        }
    }

    fn openai_connected(&mut self, now: Instant) {
        let first = self.reconnects_left > 0 && self.transcript.is_empty() && !self.openai_ready;
        let instructions = if self.transcript.is_empty() {
            self.params.instructions.clone()
        } else {
            resume_instructions(&self.params.instructions, &self.transcript)
        };
        let session = self.params.settings.session(instructions);
        self.send_openai(ClientEvent::SessionUpdate { event_id: None, session: Box::new(session) });
        self.outputs.push_back(Output::ForwardPreRoll);
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
        if self.reconnects_left > 0 {
            self.reconnects_left -= 1;
            self.outputs.push_back(Output::ReconnectOpenAi);
        } else {
            self.finish(EndReason::ModelUnavailable, now);
        }
    }

    fn agent_audio(&mut self, response_id: &str, item_id: &str, delta_b64: &str, now: Instant) {
        if self.interrupted_items.iter().any(|i| i == item_id) {
            return; // the rest of an interrupted reply: never play it
        }
        let bytes = base64_decoded_len(delta_b64);
        if bytes == 0 {
            return;
        }
        self.audio_out_bytes += bytes;
        if self.stats.first_agent_audio_ms.is_none() {
            self.stats.first_agent_audio_ms = Some(self.at_ms(now));
        }
        if !self.responses_with_audio.iter().any(|r| r == response_id) {
            self.responses_with_audio.push(response_id.to_owned());
            if let Some(stopped) = self.speech_stopped_at.take() {
                self.stats.reply_latencies_ms.push(millis(now.saturating_duration_since(stopped)));
            }
        }
        self.timers.stop(Timer::Greeting);
        let playback = match &mut self.playback {
            Some(p) if p.item_id == item_id => p,
            slot => slot.insert(ItemPlayback { item_id: item_id.to_owned(), ..ItemPlayback::default() }),
        };
        playback.sent_bytes += bytes;
        let end_ms = playback.sent_bytes / self.params.settings.audio_mode.bytes_per_ms();
        self.mark_seq += 1;
        let name = format!("a{}", self.mark_seq);
        self.marks.push_back(PendingMark { name: name.clone(), item_id: item_id.to_owned(), end_ms });
        self.outputs.push_back(Output::PlayAgentAudio { base64: delta_b64.to_owned() });
        self.outputs.push_back(Output::ToTwilio(TwilioCommand::Mark(name)));
        self.activity(now);
    }

    /// Twilio played up to a mark (or cleared it). Marks come back in order, so every
    /// earlier pending mark has played too; names we no longer track are ignored.
    fn mark_played(&mut self, name: &str, now: Instant) {
        let Some(index) = self.marks.iter().position(|m| m.name == name) else {
            return;
        };
        let played: Vec<PendingMark> = self.marks.drain(..=index).collect();
        self.activity(now);
        for mark in &played {
            if let Some(playback) = self.playback.as_mut().filter(|p| p.item_id == mark.item_id) {
                playback.played_ms = playback.played_ms.max(mark.end_ms);
            }
        }
        for mark in played {
            let fully_played = !self.marks.iter().any(|m| m.item_id == mark.item_id);
            let complete = self.held_lines.iter().any(|l| l.item_id == mark.item_id && l.complete);
            if fully_played && complete {
                self.release_line(&mark.item_id, None);
            }
        }
        self.hang_up_when_done(now);
    }

    /// After `end_call`: hang up once the goodbye has played and the response that
    /// asked for it is done (its usage counted); the deadline ends the wait regardless.
    fn hang_up_when_done(&mut self, now: Instant) {
        if self.end_call_requested && self.marks.is_empty() && self.ending_response.is_none() {
            self.finish(EndReason::AgentHungUp, now);
        }
    }

    /// The restaurant started speaking: if agent audio is still queued at Twilio, stop
    /// it and cut the agent's item at what was heard.
    fn barge_in(&mut self, _now: Instant) {
        let Some(playback) = self.playback.clone() else {
            return;
        };
        let unplayed = self.marks.iter().any(|m| m.item_id == playback.item_id);
        if !unplayed {
            return;
        }
        self.stats.barge_ins += 1;
        self.outputs.push_back(Output::ToTwilio(TwilioCommand::Clear));
        let sent_ms = playback.sent_bytes / self.params.settings.audio_mode.bytes_per_ms();
        let audio_end_ms = playback.played_ms.min(sent_ms);
        self.send_openai(ClientEvent::ConversationItemTruncate {
            item_id: playback.item_id.clone(),
            content_index: 0,
            audio_end_ms,
        });
        // Twilio echoes the cleared marks; they are no longer ours to track.
        self.marks.clear();
        self.interrupted_items.push(playback.item_id.clone());
        if self.interrupted_items.len() > 16 {
            self.interrupted_items.remove(0);
        }
        let heard = if sent_ms == 0 { 0.0 } else { audio_end_ms as f64 / sent_ms as f64 };
        self.release_line(&playback.item_id, Some(heard));
        self.playback = None;
    }

    /// Emits the agent's line for `item_id`: whole, or cut to the share heard.
    fn release_line(&mut self, item_id: &str, heard_share: Option<f64>) {
        let Some(index) = self.held_lines.iter().position(|l| l.item_id == item_id) else {
            return;
        };
        let line = self.held_lines.remove(index);
        let text = match heard_share {
            None => line.text,
            Some(share) => cut_at_share(&line.text, share),
        };
        if !text.trim().is_empty() {
            self.add_line_at(Speaker::Agent, &text, line.at_ms);
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
        self.outputs.push_back(Output::Report(event));
    }

    fn finish(&mut self, reason: EndReason, now: Instant) {
        if self.phase == Phase::Ended {
            return;
        }
        if let Some(farewell) = ending::hang_up(reason) {
            self.outputs.push_back(Output::HangUp { farewell: farewell.map(str::to_owned) });
        }
        for item in self.held_lines.iter().map(|l| l.item_id.clone()).collect::<Vec<_>>() {
            self.release_line(&item, None);
        }
        // The read-back and the host's answer often come after `report_outcome`: check the
        // code again against the whole conversation, and record it if that changes.
        if let Some((given, recorded, at_ms)) = self.agent_outcome.take().filter(|_| reason != EndReason::Superseded) {
            let outcome = confirmation::verify(given, &self.transcript);
            if outcome != recorded {
                let at_ms = self.at_ms(now).max(at_ms + 1);
                self.report(CallEventKind::Outcome { outcome, at_ms });
            }
        }
        if !self.outcome_reported && reason != EndReason::Superseded {
            let outcome = ending::closing_outcome(reason, &self.transcript);
            self.outcome_reported = true;
            let at_ms = self.at_ms(now);
            self.report(CallEventKind::Outcome { outcome, at_ms });
        }
        let stats = self.final_stats();
        self.report(CallEventKind::StreamEnded { reason, stats });
        self.outputs.push_back(Output::CloseOpenAi);
        self.outputs.push_back(Output::Finished);
        self.phase = Phase::Ended;
        self.openai_ready = false;
        self.timers.stop_all();
    }
}

impl CallSession {
    /// The stream's figures with the audio each way, the models and the cost estimate.
    fn final_stats(&mut self) -> CallStats {
        let mut stats = std::mem::take(&mut self.stats);
        let settings = &self.params.settings;
        // Twilio's audio is 8 kHz mu-law: 8 bytes a millisecond.
        stats.audio_in_ms = self.audio_in_bytes / 8;
        stats.audio_out_ms = self.audio_out_bytes / settings.audio_mode.bytes_per_ms();
        stats.model = Some(settings.model.clone());
        stats.transcription_model = Some(settings.transcription_model.clone());
        stats.estimated_cost_micro_usd = settings.pricing.estimate(&stats.usage, stats.transcribed_ms);
        stats
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Decoded length of standard padded base64, without decoding it.
fn base64_decoded_len(text: &str) -> u64 {
    let len = text.len() as u64;
    let padding = text.bytes().rev().take_while(|&b| b == b'=').count() as u64;
    (len / 4 * 3).saturating_sub(padding.min(2))
}

/// The first `share` of `text`, cut at a word boundary, marked as interrupted.
fn cut_at_share(text: &str, share: f64) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let keep = ((words.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
    if keep >= words.len() {
        return text.to_owned();
    }
    if keep == 0 {
        return String::new();
    }
    format!("{}…", words[..keep].join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lengths() {
        assert_eq!(base64_decoded_len(""), 0);
        assert_eq!(base64_decoded_len("AAAA"), 3);
        assert_eq!(base64_decoded_len("AAA="), 2);
        assert_eq!(base64_decoded_len("AA=="), 1);
    }

    #[test]
    fn interrupted_lines_keep_the_heard_share() {
        assert_eq!(cut_at_share("one two three four", 0.5), "one two…");
        assert_eq!(cut_at_share("one two three four", 1.0), "one two three four");
        assert_eq!(cut_at_share("one two", 0.0), "");
    }
}
