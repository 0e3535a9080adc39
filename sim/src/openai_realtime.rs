//! A fake OpenAI Realtime server speaking the GA protocol (docs/wire-formats.md).
//!
//! - Every client event is parsed with the project's strict types; anything else (a beta
//!   field, a misspelled type, a truncate past the audio sent) is recorded as a protocol
//!   violation, which tests assert is empty, and answered with an `error` event.
//! - Server VAD runs on the audio it actually receives, decoded in the session's format,
//!   so a broken codec or resampler means no speech is heard and the test fails.
//! - The agent is scripted: each turn is audio (a tone, real samples), its transcript,
//!   and optionally a function call. Restaurant utterances get transcripts in order.
//! - Faults: drop the socket after a number of responses, refuse connections, send a
//!   recoverable `server_error` with the socket left open.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use shared::codec::mulaw;
use shared::events::TokenUsage;
use shared::openai::config::AudioFormat;
use shared::openai::events::{ClientEvent, Item, Usage};
use tokio::sync::watch;

/// One scripted agent reply.
#[derive(Debug, Clone)]
pub struct AgentTurn {
    pub text: String,
    pub audio_ms: u32,
    /// A function call made after the audio: (name, arguments JSON).
    pub tool_call: Option<(String, Value)>,
}

impl AgentTurn {
    pub fn say(text: &str, audio_ms: u32) -> AgentTurn {
        AgentTurn { text: text.into(), audio_ms, tool_call: None }
    }

    pub fn then_call(mut self, name: &str, arguments: Value) -> AgentTurn {
        self.tool_call = Some((name.into(), arguments));
        self
    }

    /// A tool call with no speech.
    pub fn call(name: &str, arguments: Value) -> AgentTurn {
        AgentTurn { text: String::new(), audio_ms: 0, tool_call: Some((name.into(), arguments)) }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Script {
    /// What the restaurant says, in order: the transcript of each detected utterance.
    pub restaurant: Vec<String>,
    /// The agent's replies, in order, one per response.
    pub agent: Vec<AgentTurn>,
    /// Close the socket (without a close frame) when this response starts, once.
    pub drop_at_response: Option<usize>,
    /// Refuse new connections (HTTP 503) once this many have been accepted.
    pub max_connections: Option<usize>,
    /// Once this many have been accepted, hold each new connection's upgrade unanswered
    /// (a reconnect that takes as long as the client lets it).
    pub hold_connections_after: Option<usize>,
    /// Stop reading the socket once the session is configured, holding it open: a
    /// stalled consumer, whose socket buffers fill until the client cannot send.
    pub stall_once_configured: bool,
    /// Send a recoverable `error` event (type `server_error`) as these responses start,
    /// keeping the socket open; the response then goes on as scripted.
    pub server_error_at_responses: Vec<usize>,
}

/// What the fake saw, for assertions.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub connections: usize,
    pub refused_connections: usize,
    pub client_events: Vec<String>,
    pub violations: Vec<String>,
    pub session_format: Option<AudioFormat>,
    pub instructions: Vec<String>,
    pub audio_ms_received: u64,
    pub utterances: usize,
    pub truncations: Vec<(String, u64)>,
    pub tool_outputs: Vec<String>,
    pub responses: usize,
    pub cancelled_responses: usize,
    /// Connections that stopped reading (`Script::stall_once_configured`).
    pub stalled_connections: usize,
    /// Upgrades held unanswered (`Script::hold_connections_after`).
    pub held_connections: usize,
    /// `server_error` events sent (`Script::server_error_at_responses`).
    pub server_errors_sent: usize,
    /// Token usage summed over the `response.done` events actually sent.
    pub usage: TokenUsage,
}

struct Shared {
    script: Mutex<Script>,
    observed: watch::Sender<Observed>,
    next_turn: AtomicUsize,
    next_utterance: AtomicUsize,
    dropped: Mutex<bool>,
}

pub struct FakeOpenAi {
    /// `ws://127.0.0.1:port/v1/realtime`
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeOpenAi {
    pub async fn start(script: Script) -> anyhow::Result<FakeOpenAi> {
        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            observed: watch::channel(Observed::default()).0,
            next_turn: AtomicUsize::new(0),
            next_utterance: AtomicUsize::new(0),
            dropped: Mutex::new(false),
        });
        // A server that will stall gets small socket buffers, so the client meets a full
        // socket in moments rather than after megabytes.
        let stalls = shared.script.lock().is_ok_and(|s| s.stall_once_configured);
        let app = Router::new().route("/v1/realtime", get(upgrade)).with_state(shared.clone());
        let (address, server) = crate::serve_on_loopback_with(app, stalls.then_some(8 * 1024)).await?;
        let url = format!("ws://{address}/v1/realtime");
        Ok(FakeOpenAi { url, shared, server })
    }

    pub fn observed(&self) -> Observed {
        self.shared.observed.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<Observed> {
        self.shared.observed.subscribe()
    }
}

async fn upgrade(State(shared): State<Arc<Shared>>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7);
    if !bearer {
        return (StatusCode::UNAUTHORIZED, "missing bearer token").into_response();
    }
    let full = shared
        .script
        .lock()
        .ok()
        .and_then(|s| s.max_connections)
        .is_some_and(|max| shared.observed.borrow().connections >= max);
    if full {
        shared.observed.send_modify(|o| o.refused_connections += 1);
        return (StatusCode::SERVICE_UNAVAILABLE, "over capacity").into_response();
    }
    let held = shared
        .script
        .lock()
        .ok()
        .and_then(|s| s.hold_connections_after)
        .is_some_and(|after| shared.observed.borrow().connections >= after);
    if held {
        shared.observed.send_modify(|o| o.held_connections += 1);
        // Until the client gives up, which drops this request.
        std::future::pending::<()>().await;
    }
    let beta = headers.contains_key("openai-beta");
    upgrade.on_upgrade(move |socket| connection(socket, shared, beta))
}

/// Energy VAD over 20 ms windows, like server_vad with threshold, padding and silence.
struct Vad {
    speaking: bool,
    voiced_ms: u32,
    silent_ms: u32,
    position_ms: u64,
    started_at_ms: u64,
}

const VAD_RMS: f32 = 500.0;
const VAD_START_MS: u32 = 60;
const VAD_STOP_MS: u32 = 500;

enum VadEvent {
    Started(u64),
    Stopped(u64),
}

impl Vad {
    fn feed(&mut self, samples: &[i16], rate: u32, events: &mut Vec<VadEvent>) {
        let window = (rate / 50) as usize;
        for chunk in samples.chunks(window) {
            let rms = (chunk.iter().map(|&s| f32::from(s).powi(2)).sum::<f32>() / chunk.len().max(1) as f32).sqrt();
            let ms = (chunk.len() as u64 * 1000 / u64::from(rate)) as u32;
            self.position_ms += u64::from(ms);
            if rms > VAD_RMS {
                self.voiced_ms += ms;
                self.silent_ms = 0;
                if !self.speaking && self.voiced_ms >= VAD_START_MS {
                    self.speaking = true;
                    self.started_at_ms = self.position_ms.saturating_sub(u64::from(self.voiced_ms));
                    events.push(VadEvent::Started(self.started_at_ms));
                }
            } else {
                self.silent_ms += ms;
                if !self.speaking {
                    self.voiced_ms = 0;
                }
                if self.speaking && self.silent_ms >= VAD_STOP_MS {
                    self.speaking = false;
                    self.voiced_ms = 0;
                    events.push(VadEvent::Stopped(self.position_ms));
                }
            }
        }
    }
}

struct Connection {
    shared: Arc<Shared>,
    format: Option<AudioFormat>,
    create_response: bool,
    vad: Vad,
    seq: u64,
    /// Audio sent per agent item, in ms, for truncate checks.
    items: Vec<(String, u64)>,
    /// Deltas still to send for the response in flight.
    pending_deltas: VecDeque<Value>,
    pending_tail: Vec<Value>,
    active_response: Option<String>,
    /// The conversation so far in tokens (text, audio): every response's input.
    context: (u64, u64),
    /// The previous response's input, which the next one finds in the cache.
    cached_prefix: (u64, u64),
    /// The input of the response in flight, billed even if it is cancelled.
    active_input: Option<(u64, u64)>,
}

/// `response.usage` as the GA API reports it: input (all of the conversation so far,
/// partly cached) and output tokens split by modality. The token counts are the fake's
/// own arithmetic (a word is a text token, audio is 10 tokens a second in and 20 out);
/// only the shape matters.
fn usage(input: (u64, u64), cached: (u64, u64), output: (u64, u64)) -> Value {
    let cached = (cached.0.min(input.0), cached.1.min(input.1));
    json!({
        "total_tokens": input.0 + input.1 + output.0 + output.1,
        "input_tokens": input.0 + input.1,
        "output_tokens": output.0 + output.1,
        "input_token_details": {
            "text_tokens": input.0, "audio_tokens": input.1, "image_tokens": 0,
            "cached_tokens": cached.0 + cached.1,
            "cached_tokens_details": {"text_tokens": cached.0, "audio_tokens": cached.1, "image_tokens": 0}
        },
        "output_token_details": {"text_tokens": output.0, "audio_tokens": output.1}
    })
}

fn tone(format: AudioFormat, ms: u32) -> Vec<u8> {
    let (rate, mulaw_out) = match format {
        AudioFormat::Pcm { rate } => (rate, false),
        _ => (8_000, true),
    };
    let samples: Vec<i16> = (0..(rate * ms / 1000))
        .map(|n| (9_000.0 * (2.0 * std::f32::consts::PI * 440.0 * n as f32 / rate as f32).sin()) as i16)
        .collect();
    if mulaw_out {
        let mut codes = vec![0u8; samples.len()];
        let _ = mulaw::encode(&samples, &mut codes);
        codes
    } else {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }
}

impl Connection {
    fn event(&mut self, mut value: Value) -> Message {
        if value["type"] == "response.done" {
            if let Ok(sent) = serde_json::from_value::<Usage>(value["response"]["usage"].clone()) {
                self.observe(|o| o.usage.add(&sent.tokens()));
            }
        }
        self.seq += 1;
        value["event_id"] = json!(format!("event_{}", self.seq));
        Message::Text(server_event_text(&value).into())
    }

    fn observe(&self, change: impl FnOnce(&mut Observed)) {
        self.shared.observed.send_modify(change);
    }

    fn violation(&self, what: String) -> Value {
        self.observe(|o| o.violations.push(what.clone()));
        json!({"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_event", "message": what, "param": null}})
    }

    /// Starts the next scripted response; its deltas go out as the loop polls them.
    fn start_response(&mut self) -> Vec<Value> {
        let index = self.shared.next_turn.load(Ordering::SeqCst);
        let (turn, drop_here, server_error) = {
            let script = self.shared.script.lock().map(|s| s.clone()).unwrap_or_default();
            (
                script.agent.get(index).cloned(),
                script.drop_at_response == Some(index),
                script.server_error_at_responses.contains(&index),
            )
        };
        let Some(turn) = turn else { return Vec::new() };
        let mut out = Vec::new();
        if server_error {
            self.observe(|o| o.server_errors_sent += 1);
            out.push(json!({"type": "error", "error": {"type": "server_error", "code": null, "message": "The server had an error while processing your request. Sorry about that!", "param": null, "event_id": null}}));
        }
        if drop_here {
            if let Ok(mut dropped) = self.shared.dropped.lock() {
                if !*dropped {
                    // The turn is not consumed: a reconnected session replays it.
                    *dropped = true;
                    return vec![json!({"type": "__drop"})];
                }
            }
        }
        self.shared.next_turn.fetch_add(1, Ordering::SeqCst);
        self.observe(|o| o.responses += 1);
        let response_id = format!("resp_{index}");
        let item_id = format!("item_agent_{index}");
        self.active_response = Some(response_id.clone());
        out.extend([
            json!({"type": "rate_limits.updated", "rate_limits": [{"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 0.06}]}),
            json!({"type": "response.created", "response": {"id": response_id, "object": "realtime.response", "status": "in_progress", "output": []}}),
        ]);
        if turn.audio_ms > 0 {
            let format = self.format.unwrap_or(AudioFormat::Pcmu);
            let audio = tone(format, turn.audio_ms);
            let per_100ms = audio.len() * 100 / turn.audio_ms as usize;
            self.items.push((item_id.clone(), u64::from(turn.audio_ms)));
            // The transcript streams alongside the audio, word by word, as the real API does.
            let chunks: Vec<&[u8]> = audio.chunks(per_100ms.max(1)).collect();
            let words: Vec<&str> = turn.text.split_inclusive(' ').collect();
            let per_chunk = words.len().div_ceil(chunks.len().max(1)).max(1);
            for (n, chunk) in chunks.iter().enumerate() {
                self.pending_deltas.push_back(json!({"type": "response.output_audio.delta", "response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0, "delta": STANDARD.encode(chunk)}));
                let text: String = words.iter().skip(n * per_chunk).take(per_chunk).copied().collect();
                if !text.is_empty() {
                    self.pending_deltas.push_back(json!({"type": "response.output_audio_transcript.delta", "response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0, "delta": text}));
                }
            }
            self.pending_tail.push(json!({"type": "response.output_audio.done", "response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}));
            self.pending_tail.push(json!({"type": "response.output_audio_transcript.done", "response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0, "transcript": turn.text}));
        }
        if let Some((name, arguments)) = turn.tool_call {
            self.pending_tail.push(json!({"type": "response.function_call_arguments.done", "response_id": response_id, "item_id": format!("item_fc_{index}"), "output_index": 1, "call_id": format!("call_{index}"), "name": name, "arguments": arguments.to_string()}));
        }
        let input = self.context;
        let output = (turn.text.split_whitespace().count() as u64, u64::from(turn.audio_ms) / 50);
        let billed = usage(input, self.cached_prefix, output);
        self.active_input = Some(input);
        self.cached_prefix = input;
        self.context = (input.0 + output.0, input.1 + output.1);
        self.pending_tail.push(json!({"type": "response.done", "response": {"id": response_id, "object": "realtime.response", "status": "completed", "output": [], "usage": billed}}));
        out.extend(self.pending_deltas.drain(..1.min(self.pending_deltas.len())));
        out
    }

    fn cancel_response(&mut self) -> Vec<Value> {
        let Some(response_id) = self.active_response.take() else { return Vec::new() };
        self.pending_deltas.clear();
        self.pending_tail.clear();
        self.observe(|o| o.cancelled_responses += 1);
        // The input was read before the cut: it is billed, the unsent output is not.
        let input = self.active_input.take().unwrap_or_default();
        let billed = usage(input, (0, 0), (0, 0));
        vec![
            json!({"type": "response.done", "response": {"id": response_id, "object": "realtime.response", "status": "cancelled", "status_details": {"type": "cancelled", "reason": "turn_detected"}, "output": [], "usage": billed}}),
        ]
    }

    /// The next queued server event of the response in flight, if any.
    fn next_queued(&mut self) -> Option<Value> {
        if let Some(delta) = self.pending_deltas.pop_front() {
            return Some(delta);
        }
        if self.pending_tail.is_empty() {
            return None;
        }
        let event = self.pending_tail.remove(0);
        if self.pending_tail.is_empty() {
            self.active_response = None;
        }
        Some(event)
    }

    fn handle(&mut self, text: &str) -> Vec<Value> {
        let event: ClientEvent = match serde_json::from_str(text) {
            Ok(event) => event,
            Err(error) => return vec![self.violation(format!("unreadable client event ({error}): {text:.200}"))],
        };
        self.observe(|o| o.client_events.push(event.type_name().to_owned()));
        match event {
            ClientEvent::SessionUpdate { session, .. } => {
                self.format = Some(session.audio.input.format);
                if session.audio.input.format != session.audio.output.format {
                    return vec![self.violation("input and output formats differ".into())];
                }
                self.create_response = matches!(
                    session.audio.input.turn_detection,
                    Some(shared::openai::config::TurnDetection::ServerVad { create_response: true, .. })
                );
                let (format, instructions) = (session.audio.input.format, session.instructions.clone());
                self.context.0 = self.context.0.max(instructions.split_whitespace().count() as u64);
                self.observe(|o| {
                    o.session_format = Some(format);
                    o.instructions.push(instructions);
                });
                vec![json!({"type": "session.updated", "session": serde_json::to_value(&*session).unwrap_or_default()})]
            }
            ClientEvent::InputAudioBufferAppend { audio } => {
                let Some(format) = self.format else {
                    return vec![self.violation("audio appended before session.update".into())];
                };
                let Ok(bytes) = STANDARD.decode(audio.as_bytes()) else {
                    return vec![self.violation("audio is not base64".into())];
                };
                let (samples, rate): (Vec<i16>, u32) = match format {
                    AudioFormat::Pcm { rate } => {
                        if bytes.len() % 2 != 0 {
                            return vec![self.violation("PCM16 audio with an odd byte count".into())];
                        }
                        (bytes.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect(), rate)
                    }
                    _ => {
                        let mut linear = vec![0i16; bytes.len()];
                        let _ = mulaw::decode(&bytes, &mut linear);
                        (linear, 8_000)
                    }
                };
                let ms = samples.len() as u64 * 1000 / u64::from(rate);
                self.observe(|o| o.audio_ms_received += ms);
                let mut vad_events = Vec::new();
                self.vad.feed(&samples, rate, &mut vad_events);
                let mut out = Vec::new();
                for vad_event in vad_events {
                    match vad_event {
                        VadEvent::Started(at) => {
                            let n = self.shared.next_utterance.load(Ordering::SeqCst);
                            out.push(json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": at, "item_id": format!("item_user_{n}")}));
                            // interrupt_response: the reply in flight is cancelled.
                            out.extend(self.cancel_response());
                        }
                        VadEvent::Stopped(at) => {
                            self.context.1 += at.saturating_sub(self.vad.started_at_ms) / 100;
                            let n = self.shared.next_utterance.fetch_add(1, Ordering::SeqCst);
                            self.observe(|o| o.utterances += 1);
                            let item = format!("item_user_{n}");
                            out.push(json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": at, "item_id": item}));
                            out.push(json!({"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": null}));
                            let transcript = self
                                .shared
                                .script
                                .lock()
                                .ok()
                                .and_then(|s| s.restaurant.get(n).cloned())
                                .unwrap_or_default();
                            out.push(json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": item, "content_index": 0, "transcript": transcript, "usage": {"type": "duration", "seconds": 1}}));
                            if self.create_response {
                                out.extend(self.start_response());
                            }
                        }
                    }
                }
                out
            }
            ClientEvent::ConversationItemTruncate { item_id, content_index, audio_end_ms } => {
                let Some((_, length)) = self.items.iter().find(|(id, _)| *id == item_id).cloned() else {
                    return vec![self.violation(format!("truncate of unknown item {item_id}"))];
                };
                if content_index != 0 || audio_end_ms > length {
                    return vec![self.violation(format!(
                        "truncate of {item_id} at {audio_end_ms} ms: audio content is already shorter ({length} ms)"
                    ))];
                }
                self.observe(|o| o.truncations.push((item_id.clone(), audio_end_ms)));
                vec![
                    json!({"type": "conversation.item.truncated", "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms}),
                ]
            }
            ClientEvent::ConversationItemCreate { item, .. } => {
                if let Item::FunctionCallOutput { output, .. } = &item {
                    let output = output.clone();
                    self.observe(|o| o.tool_outputs.push(output));
                }
                vec![
                    json!({"type": "conversation.item.added", "item": serde_json::to_value(&item).unwrap_or_default()}),
                ]
            }
            ClientEvent::ResponseCreate { .. } => self.start_response(),
            ClientEvent::ResponseCancel { .. } => self.cancel_response(),
            ClientEvent::InputAudioBufferCommit {} | ClientEvent::InputAudioBufferClear {} => Vec::new(),
        }
    }
}

async fn connection(mut socket: WebSocket, shared: Arc<Shared>, beta_header: bool) {
    shared.observed.send_modify(|o| o.connections += 1);
    let mut conn = Connection {
        shared: shared.clone(),
        format: None,
        create_response: false,
        vad: Vad { speaking: false, voiced_ms: 0, silent_ms: 0, position_ms: 0, started_at_ms: 0 },
        seq: 0,
        items: Vec::new(),
        pending_deltas: VecDeque::new(),
        pending_tail: Vec::new(),
        active_response: None,
        context: (0, 0),
        cached_prefix: (0, 0),
        active_input: None,
    };
    if beta_header {
        let refusal = json!({"type": "error", "error": {"type": "invalid_request_error", "code": "beta_api_shape_disabled", "message": "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.", "param": null}});
        conn.observe(|o| o.violations.push("sent the OpenAI-Beta header".into()));
        let message = conn.event(refusal);
        let _ = socket.send(message).await;
        let _ = socket
            .send(Message::Close(Some(axum::extract::ws::CloseFrame { code: 4000, reason: "beta".into() })))
            .await;
        return;
    }
    let created = conn.event(json!({"type": "session.created", "session": {"type": "realtime", "object": "realtime.session", "id": "sess_fake", "model": shared::openai::DEFAULT_MODEL}}));
    if socket.send(created).await.is_err() {
        return;
    }
    // Audio deltas are paced a little (10 ms apart) so barge-in can land mid-reply.
    let mut pace = tokio::time::interval(std::time::Duration::from_millis(10));
    loop {
        tokio::select! {
            message = socket.recv() => {
                let Some(Ok(message)) = message else { return };
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => return,
                    Message::Binary(_) => {
                        let error = conn.violation("binary frame".into());
                        let message = conn.event(error);
                        let _ = socket.send(message).await;
                        continue;
                    }
                    _ => continue,
                };
                let mut configured = false;
                for reply in conn.handle(&text) {
                    if reply["type"] == "__drop" {
                        return; // the socket goes away without a close frame
                    }
                    configured |= reply["type"] == "session.updated";
                    let message = conn.event(reply);
                    if socket.send(message).await.is_err() {
                        return;
                    }
                }
                if configured && conn.shared.script.lock().is_ok_and(|s| s.stall_once_configured) {
                    conn.observe(|o| o.stalled_connections += 1);
                    // Open, never read again; the client closing the socket is not noticed.
                    std::future::pending::<()>().await;
                }
            }
            _ = pace.tick() => {
                if let Some(event) = conn.next_queued() {
                    let message = conn.event(event);
                    if socket.send(message).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// A server event as OpenAI writes it: `type` first, then `event_id`, then the rest.
/// (`serde_json`'s map sorts keys, which would put `type` last.)
pub fn server_event_text(event: &Value) -> String {
    let Some(fields) = event.as_object() else { return event.to_string() };
    let mut text = String::from("{");
    let first = ["type", "event_id"].into_iter().filter_map(|k| fields.get_key_value(k));
    let rest = fields.iter().filter(|(k, _)| *k != "type" && *k != "event_id");
    for (i, (key, value)) in first.chain(rest).enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&Value::from(key.as_str()).to_string());
        text.push(':');
        text.push_str(&value.to_string());
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_events_are_written_type_first_and_read_back_unchanged() {
        let event = json!({"type": "response.output_audio.delta", "event_id": "event_1", "response_id": "resp_1",
            "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": "AAA\"="});
        let text = server_event_text(&event);
        assert!(text.starts_with(r#"{"type":"response.output_audio.delta","event_id":"event_1","#), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), event);
        assert_eq!(server_event_text(&json!([1, 2])), "[1,2]");
    }

    #[test]
    fn response_done_carries_usage_in_the_ga_shape() {
        let done = json!({"type": "response.done", "event_id": "event_9", "response": {"id": "resp_1", "object": "realtime.response",
            "status": "completed", "output": [], "usage": usage((120, 40), (100, 60), (9, 30))}});
        let text = server_event_text(&done);
        let shared::openai::events::ServerEvent::ResponseDone { response } =
            shared::openai::events::ServerEvent::parse(&text).unwrap()
        else {
            panic!("{text}")
        };
        let usage = response.usage.unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens, usage.total_tokens), (160, 39, 199));
        assert_eq!(usage.input_token_details.cached_tokens, 140, "cached never exceeds the input");
        let tokens = usage.tokens();
        assert_eq!((tokens.cached_text_tokens, tokens.cached_audio_tokens), (100, 40));
        assert_eq!((tokens.text_output_tokens, tokens.audio_output_tokens), (9, 30));
    }
}
