//! A lean OpenAI Realtime endpoint for load: the GA events the media worker needs
//! (`session.created`, `session.updated`, `input_audio_buffer.speech_stopped`,
//! `response.output_audio.delta` and `.done`), no VAD, so the machine's time goes to
//! the worker. It stamps when each appended frame arrives, and takes turns with the
//! host by the script both ends know (turns.rs): on the frame that ends the host's
//! speech it says `speech_stopped` (its `audio_end_ms` is that frame's end, counted
//! over every frame appended) and replies at once, in 100 ms deltas at real-time pace.
//! It logs when it heard that frame and when its first delta was written: its own time,
//! which the report takes out of the latency the caller measures.
//!
//! Behind the bare relay (relay.rs) it hears Twilio's own messages instead, forwarded
//! unparsed: it stamps each `media` frame, takes the call from `start`, takes the same
//! turns, replying in Twilio `media` messages of `passthrough`'s size (100 ms of mu-law
//! each), and closes on `stop`, as the worker would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared::codec::mulaw;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::turns::{self, EndpointTurn};

/// The agent speaks in deltas of this much audio, this often (real time).
pub const AGENT_DELTA_MS: u64 = 100;

/// Who connects to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The media worker, speaking the Realtime API.
    Worker,
    /// The bare relay, forwarding the Twilio callers' messages as they are.
    Relay,
}

/// What one call's Realtime session saw.
#[derive(Debug, Default, Clone)]
pub struct SessionLog {
    /// When the session was configured (`session.update`).
    pub configured_at: Option<Instant>,
    /// When each `input_audio_buffer.append` arrived, in order.
    pub appends: Vec<Instant>,
    /// Agent audio sent to the worker, in milliseconds.
    pub agent_ms: u64,
    /// The turns it replied to.
    pub turns: Vec<EndpointTurn>,
    /// Client events that were not JSON or had no type (protocol errors).
    pub unreadable: u64,
}

/// Sessions by the call index found in their instructions.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<usize, SessionLog>>>);

impl Sessions {
    pub fn take(&self) -> HashMap<usize, SessionLog> {
        self.0.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default()
    }

    fn store(&self, call: usize, log: SessionLog) {
        if let Ok(mut sessions) = self.0.lock() {
            sessions.insert(call, log);
        }
    }
}

/// The call index in instructions built from a booking at `restaurant_name(index)`.
fn call_index(instructions: &str) -> Option<usize> {
    let rest = &instructions[instructions.find(RESTAURANT_PREFIX)? + RESTAURANT_PREFIX.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

const RESTAURANT_PREFIX: &str = "Load Test Bistro No. ";

/// The restaurant of call `index`: how the endpoint tells its sessions apart.
pub fn restaurant_name(index: usize) -> String {
    format!("{RESTAURANT_PREFIX}{index}")
}

/// The call index in a call id made by the generator (`call_load_<step>_<index>`).
fn call_index_of_id(call_id: &str) -> Option<usize> {
    call_id.rsplit_once('_')?.1.parse().ok()
}

/// Serves on a loopback port until the runtime stops; returns its `ws://` URL. Each
/// session replies to turns whose reply is over `speak_for` after it was configured,
/// then only listens, so every reply is through the worker before the call ends.
pub async fn start(audio_mode: &str, speak_for: Duration, peer: Peer) -> anyhow::Result<(String, Sessions)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/v1/realtime", listener.local_addr()?);
    let sessions = Sessions::default();
    let delta = agent_delta(if peer == Peer::Relay { "passthrough" } else { audio_mode });
    let accepted = sessions.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (sessions, delta) = (accepted.clone(), delta.clone());
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                if let Ok(socket) =
                    tokio_tungstenite::accept_async_with_config(stream, Some(crate::socket_config())).await
                {
                    match peer {
                        Peer::Worker => session(socket, sessions, delta, speak_for).await,
                        Peer::Relay => relayed_session(socket, sessions, delta, speak_for).await,
                    }
                }
            });
        }
    });
    Ok((url, sessions))
}

/// `AGENT_DELTA_MS` of a 300 Hz tone, base64, in the session's output format.
fn agent_delta(audio_mode: &str) -> Arc<str> {
    let rate = if audio_mode == "passthrough" { 8_000 } else { 24_000 };
    let samples: Vec<i16> = (0..rate * AGENT_DELTA_MS as usize / 1000)
        .map(|i| (6_000.0 * (2.0 * std::f32::consts::PI * 300.0 * i as f32 / rate as f32).sin()) as i16)
        .collect();
    let bytes = if audio_mode == "passthrough" {
        let mut codes = vec![0u8; samples.len()];
        let _ = mulaw::encode(&samples, &mut codes);
        codes
    } else {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    };
    STANDARD.encode(bytes).into()
}

async fn session(
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    sessions: Sessions,
    delta: Arc<str>,
    speak_for: Duration,
) {
    let (mut tx, mut rx) = socket.split();
    let mut log = SessionLog::default();
    let mut call = None;
    let mut seq = 0u64;
    let mut event = |mut value: Value| {
        seq += 1;
        value["event_id"] = json!(format!("event_{seq}"));
        Message::Text(sim::openai_realtime::server_event_text(&value).into())
    };
    let created = json!({"type": "session.created", "session": {"type": "realtime", "object": "realtime.session", "id": "sess_load", "model": "gpt-realtime"}});
    if tx.send(event(created)).await.is_err() {
        return;
    }
    let mut speak = tokio::time::interval(Duration::from_millis(AGENT_DELTA_MS));
    speak.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The reply being spoken: its turn and the deltas sent so far.
    let mut replying: Option<(u64, u64)> = None;
    let audio = |turn: u64| {
        json!({"type": "response.output_audio.delta", "response_id": format!("resp_{turn}"),
            "item_id": format!("item_{turn}"), "output_index": 0, "content_index": 0, "delta": &*delta})
    };
    loop {
        tokio::select! {
            message = rx.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                // The hot path: frames are only stamped and counted, never parsed.
                if text.contains("\"input_audio_buffer.append\"") {
                    let heard_at = Instant::now();
                    let index = log.appends.len() as u64;
                    log.appends.push(heard_at);
                    let Some(turn) = turns::ends_turn(index).filter(|_| may_reply(&log, speak_for)) else { continue };
                    // The host's speech ended with this frame: say so, and reply at once.
                    let stopped = json!({"type": "input_audio_buffer.speech_stopped",
                        "audio_end_ms": turns::audio_end_ms(index), "item_id": format!("item_host_{turn}")});
                    if tx.feed(event(stopped)).await.is_err() || tx.send(event(audio(turn))).await.is_err() {
                        break;
                    }
                    log.turns.push(EndpointTurn { turn, heard_at, replied_at: Instant::now() });
                    log.agent_ms += AGENT_DELTA_MS;
                    replying = Some((turn, 1));
                    speak.reset();
                    continue;
                }
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    log.unreadable += 1;
                    continue;
                };
                if value["type"] == "session.update" {
                    call = value["session"]["instructions"].as_str().and_then(call_index);
                    log.configured_at.get_or_insert_with(Instant::now);
                    let updated = json!({"type": "session.updated", "session": value["session"].clone()});
                    if tx.send(event(updated)).await.is_err() {
                        break;
                    }
                } else if value["type"].as_str().is_none() {
                    log.unreadable += 1;
                }
            }
            _ = speak.tick(), if replying.is_some() => {
                let Some((turn, sent)) = replying else { continue };
                if tx.send(event(audio(turn))).await.is_err() {
                    break;
                }
                log.agent_ms += AGENT_DELTA_MS;
                replying = Some((turn, sent + 1));
                if sent + 1 == turns::REPLY_DELTAS {
                    replying = None;
                    let done = json!({"type": "response.output_audio.done", "response_id": format!("resp_{turn}"),
                        "item_id": format!("item_{turn}"), "output_index": 0, "content_index": 0});
                    if tx.send(event(done)).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    if let Some(call) = call {
        sessions.store(call, log);
    }
}

/// Whether a reply starting now is over `speak_for` after the session was configured.
fn may_reply(log: &SessionLog, speak_for: Duration) -> bool {
    let reply = Duration::from_millis(turns::REPLY_DELTAS * AGENT_DELTA_MS);
    log.configured_at.is_some_and(|at| at.elapsed() + reply <= speak_for)
}

/// One call through the bare relay: Twilio's messages in, Twilio's messages out.
async fn relayed_session(
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    sessions: Sessions,
    delta: Arc<str>,
    speak_for: Duration,
) {
    let (mut tx, mut rx) = socket.split();
    let mut log = SessionLog::default();
    let mut call = None;
    let mut stream_sid = String::new();
    let mut speak = tokio::time::interval(Duration::from_millis(AGENT_DELTA_MS));
    speak.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Deltas of the reply being spoken still to send.
    let mut reply_left = 0u64;
    loop {
        tokio::select! {
            message = rx.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                // The hot path, as for the worker's appends: stamped and counted, never parsed.
                if text.contains(r#""event":"media""#) {
                    let heard_at = Instant::now();
                    let index = log.appends.len() as u64;
                    log.appends.push(heard_at);
                    let Some(turn) = turns::ends_turn(index).filter(|_| may_reply(&log, speak_for)) else { continue };
                    // The same turn as the worker's endpoint takes, with nothing to say
                    // about it: the caller hears the reply.
                    let audio = json!({"event": "media", "streamSid": &stream_sid, "media": {"payload": &*delta}});
                    if tx.send(Message::Text(audio.to_string().into())).await.is_err() {
                        break;
                    }
                    log.turns.push(EndpointTurn { turn, heard_at, replied_at: Instant::now() });
                    log.agent_ms += AGENT_DELTA_MS;
                    reply_left = turns::REPLY_DELTAS - 1;
                    speak.reset();
                    continue;
                }
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    log.unreadable += 1;
                    continue;
                };
                match value["event"].as_str() {
                    Some("start") => {
                        call = value["start"]["customParameters"]["call_id"].as_str().and_then(call_index_of_id);
                        stream_sid = value["start"]["streamSid"].as_str().unwrap_or_default().to_owned();
                        log.configured_at.get_or_insert_with(Instant::now);
                    }
                    // The call is over: close, as the worker closes both sides after `stop`.
                    Some("stop") => {
                        let _ = tx.close().await;
                        break;
                    }
                    Some(_) => {}
                    None => log.unreadable += 1,
                }
            }
            _ = speak.tick(), if reply_left > 0 => {
                let audio = json!({"event": "media", "streamSid": &stream_sid, "media": {"payload": &*delta}});
                if tx.send(Message::Text(audio.to_string().into())).await.is_err() {
                    break;
                }
                log.agent_ms += AGENT_DELTA_MS;
                reply_left -= 1;
            }
        }
    }
    if let Some(call) = call {
        sessions.store(call, log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_told_apart_by_their_restaurant() {
        let instructions = format!("You are calling {} to book a table.", restaurant_name(417));
        assert_eq!(call_index(&instructions), Some(417));
        assert_eq!(call_index("You are calling Chez Panisse."), None);
    }

    #[test]
    fn relayed_calls_are_told_apart_by_their_call_id() {
        assert_eq!(call_index_of_id("call_load_3_417"), Some(417));
        assert_eq!(call_index_of_id("call_load_3_"), None);
        assert_eq!(call_index_of_id("call"), None);
    }
}
