//! Twilio's side of a Media Streams WebSocket, playing a scripted restaurant.
//!
//! It sends `connected`, `start` (with the TwiML's stream parameters: `call_id`, `token`,
//! `language`), then one 20 ms mu-law frame per tick: real tones while the restaurant speaks, silence
//! otherwise. What the worker sends back is checked against docs/wire-formats.md and
//! "played" in real time: a `mark` is echoed once the audio queued before it has
//! played, `clear` empties the queue and echoes every pending mark. When the fake
//! REST API records a hang-up for this call, it sends `stop` and closes, as Twilio does.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared::codec::mulaw;
use shared::twilio::stream::StreamCommand;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::twilio_rest::Ledger;

/// One thing the restaurant says.
#[derive(Debug, Clone)]
pub struct Line {
    pub speech_ms: u32,
    /// Silence before speaking, once the agent has finished (a pause, or hold).
    pub pause_before_ms: u32,
    /// Start speaking once this much of the agent's current reply has played
    /// (barge-in), instead of waiting for the agent to finish.
    pub interrupt_after_ms: Option<u32>,
    /// A phone menu's next step: said only once these keys have been heard on the line
    /// (as tones, [`crate::keypad`]); never if other keys are pressed.
    pub after_keys: Option<String>,
}

impl Line {
    pub fn says(speech_ms: u32) -> Line {
        Line { speech_ms, pause_before_ms: 300, interrupt_after_ms: None, after_keys: None }
    }

    /// Said once the caller has pressed `keys` (a menu's choice), after a short pause.
    pub fn after_keys(speech_ms: u32, keys: &str) -> Line {
        Line { speech_ms, pause_before_ms: 600, interrupt_after_ms: None, after_keys: Some(keys.to_owned()) }
    }

    /// Speaks after a long silence, as after putting the caller on hold.
    pub fn after_pause(speech_ms: u32, pause_ms: u32) -> Line {
        Line { speech_ms, pause_before_ms: pause_ms, interrupt_after_ms: None, after_keys: None }
    }

    pub fn interrupts_after(speech_ms: u32, played_ms: u32) -> Line {
        Line { speech_ms, pause_before_ms: 0, interrupt_after_ms: Some(played_ms), after_keys: None }
    }
}

#[derive(Debug, Clone)]
pub struct MediaCall {
    pub url: String,
    /// The `<Parameter>`s of the TwiML's `<Stream>` (the edge's `call_id`, `token` and
    /// `language`), sent as `start.customParameters`, as Twilio does.
    pub parameters: BTreeMap<String, String>,
    pub call_sid: String,
    pub stream_sid: String,
    pub lines: Vec<Line>,
    /// How many times faster than real time frames are sent and played.
    pub speed: u32,
    /// End the stream (send `stop`) after this much audio even if nobody hangs up.
    pub max_audio_ms: u64,
    /// Send `stop` as soon as every line has been said (the restaurant hangs up).
    pub hang_up_after_last_line: bool,
    /// Send a few malformed frames (not JSON, an unknown event, a binary frame) after
    /// `start`, as a broken peer would.
    pub malformed_frames: bool,
}

#[derive(Debug, Clone, Default)]
pub struct MediaReport {
    pub frames_sent: u64,
    pub agent_frames: u64,
    /// RMS of the agent audio received (0 if none).
    pub agent_rms: f32,
    pub marks_echoed: Vec<String>,
    pub clears: u32,
    pub violations: Vec<String>,
    pub lines_said: usize,
    /// Keys heard as DTMF tones in the agent's audio, in order.
    pub keys_heard: String,
    /// Why the stream ended: "hung_up" (REST), "stop_sent", "closed_by_worker".
    pub ended_by: String,
}

enum Queued {
    Audio(u64),
    Mark(String),
}

fn frame(speaking: bool, n: u64) -> String {
    let samples: Vec<i16> = (0..160)
        .map(|i| {
            if speaking {
                (7_000.0 * (2.0 * std::f32::consts::PI * 300.0 * (n * 160 + i) as f32 / 8000.0).sin()) as i16
            } else {
                0
            }
        })
        .collect();
    let mut codes = [0u8; 160];
    let _ = mulaw::encode(&samples, &mut codes);
    STANDARD.encode(codes)
}

impl MediaCall {
    pub async fn run(self, mut hangups: watch::Receiver<Ledger>) -> anyhow::Result<MediaReport> {
        let (socket, _) = tokio_tungstenite::connect_async(&self.url).await?;
        let (mut tx, mut rx) = socket.split();
        let mut report = MediaReport::default();
        let mut sequence = 1u64;
        let send = |value: Value| Message::Text(value.to_string().into());
        tx.send(send(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}))).await?;
        tx.send(send(json!({"event": "start", "sequenceNumber": sequence.to_string(), "streamSid": self.stream_sid,
            "start": {"accountSid": "AC00000000000000000000000000000001", "streamSid": self.stream_sid, "callSid": self.call_sid,
                "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": self.parameters}})))
        .await?;
        if self.malformed_frames {
            tx.send(Message::Text("this is not json".into())).await?;
            tx.send(send(json!({"event": "teleport", "sequenceNumber": "2"}))).await?;
            tx.send(Message::Binary(vec![0xFF; 160].into())).await?;
            tx.send(send(json!({"event": "media", "sequenceNumber": "3", "streamSid": self.stream_sid, "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "%%% not base64"}}))).await?;
        }
        let mut tick = tokio::time::interval(
            Duration::from_millis(20 / u64::from(self.speed.max(1))).max(Duration::from_millis(1)),
        );
        let mut queue: VecDeque<Queued> = VecDeque::new();
        let mut timestamp = 0u64;
        let mut line = 0usize;
        let mut speaking_left = 0u32;
        // The restaurant picks up and speaks shortly.
        let mut gap_ms = self.lines.first().map_or(300, |l| l.pause_before_ms);
        let mut agent_played_this_reply = 0u64;
        let mut agent_heard_since_line = false;
        let mut silent_since_last_line = 0u32;
        let mut energy = 0f64;
        let mut energy_samples = 0u64;
        let mut keypad = crate::keypad::KeyDetector::default();
        'call: loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Play 20 ms of the agent's queued audio; echo marks that are reached.
                    let mut budget = 20u64;
                    while budget > 0 {
                        match queue.front_mut() {
                            Some(Queued::Audio(ms)) => {
                                let used = (*ms).min(budget);
                                *ms -= used;
                                budget -= used;
                                agent_played_this_reply += used;
                                if *ms == 0 {
                                    queue.pop_front();
                                }
                            }
                            Some(Queued::Mark(_)) => {
                                if let Some(Queued::Mark(name)) = queue.pop_front() {
                                    sequence += 1;
                                    if tx.send(send(json!({"event": "mark", "sequenceNumber": sequence.to_string(), "streamSid": self.stream_sid, "mark": {"name": name}}))).await.is_err() {
                                        report.ended_by = "closed_by_worker".into();
                                        break 'call;
                                    }
                                    report.marks_echoed.push(name);
                                }
                            }
                            None => break,
                        }
                    }
                    let agent_playing = queue.iter().any(|q| matches!(q, Queued::Audio(_)));
                    if !agent_playing && queue.is_empty() && agent_heard_since_line {
                        agent_played_this_reply = 0;
                    }
                    // Decide whether the restaurant speaks this frame.
                    if speaking_left == 0 && line < self.lines.len() {
                        let next = &self.lines[line];
                        let may_start = match (&next.after_keys, next.interrupt_after_ms) {
                            // A menu step: the keys were heard and have finished sounding.
                            (Some(keys), _) => keypad.heard().ends_with(keys.as_str()) && !agent_playing,
                            (None, Some(after)) => agent_playing && agent_played_this_reply >= u64::from(after),
                            (None, None) => line == 0 || (agent_heard_since_line && !agent_playing),
                        };
                        if may_start {
                            if gap_ms == 0 || next.interrupt_after_ms.is_some() {
                                speaking_left = next.speech_ms;
                                line += 1;
                                report.lines_said = line;
                                agent_heard_since_line = false;
                                gap_ms = self.lines.get(line).map_or(300, |l| l.pause_before_ms);
                            } else {
                                gap_ms = gap_ms.saturating_sub(20);
                            }
                        }
                    }
                    let speaking = speaking_left > 0;
                    speaking_left = speaking_left.saturating_sub(20);
                    sequence += 1;
                    let chunk = report.frames_sent + 1;
                    let sent = tx.send(send(json!({"event": "media", "sequenceNumber": sequence.to_string(), "streamSid": self.stream_sid,
                        "media": {"track": "inbound", "chunk": chunk.to_string(), "timestamp": timestamp.to_string(), "payload": frame(speaking, chunk)}}))).await;
                    // A worker that closed (or reset) the socket ended the stream; that is an
                    // outcome to report, not an error of the simulated caller.
                    if sent.is_err() {
                        report.ended_by = "closed_by_worker".into();
                        break;
                    }
                    report.frames_sent += 1;
                    timestamp += 20;
                    let done_talking = line >= self.lines.len() && speaking_left == 0;
                    if done_talking {
                        silent_since_last_line += 20;
                    }
                    // Hang up after a beat of silence, so the last words are transcribed.
                    let hang_up = self.hang_up_after_last_line && done_talking && silent_since_last_line >= 800;
                    if hang_up || timestamp >= self.max_audio_ms {
                        sequence += 1;
                        tx.send(send(json!({"event": "stop", "sequenceNumber": sequence.to_string(), "streamSid": self.stream_sid,
                            "stop": {"accountSid": "AC00000000000000000000000000000001", "callSid": self.call_sid}}))).await?;
                        let _ = tx.close().await;
                        report.ended_by = "stop_sent".into();
                        break;
                    }
                }
                changed = hangups.changed() => {
                    if changed.is_ok() && hangups.borrow().calls.iter().any(|c| c.sid == self.call_sid && !c.updates.is_empty()) {
                        sequence += 1;
                        let _ = tx.send(send(json!({"event": "stop", "sequenceNumber": sequence.to_string(), "streamSid": self.stream_sid,
                            "stop": {"accountSid": "AC00000000000000000000000000000001", "callSid": self.call_sid}}))).await;
                        let _ = tx.close().await;
                        report.ended_by = "hung_up".into();
                        break;
                    }
                }
                message = rx.next() => {
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            report.ended_by = "closed_by_worker".into();
                            break;
                        }
                        Some(Ok(Message::Binary(_))) => {
                            report.violations.push("binary frame (Twilio error 31950)".into());
                            continue;
                        }
                        Some(Ok(_)) => continue,
                    };
                    match serde_json::from_str::<StreamCommand>(&text) {
                        Ok(StreamCommand::Media { stream_sid, media }) => {
                            if stream_sid != self.stream_sid {
                                report.violations.push(format!("media for stream {stream_sid}"));
                            }
                            let Ok(codes) = STANDARD.decode(media.payload.as_bytes()) else {
                                report.violations.push("media payload is not base64".into());
                                continue;
                            };
                            let mut linear = vec![0i16; codes.len()];
                            let _ = mulaw::decode(&codes, &mut linear);
                            for block in linear.chunks(160) {
                                if let Some(key) = keypad.push(block) {
                                    report.keys_heard.push(key);
                                }
                            }
                            energy += linear.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
                            energy_samples += linear.len() as u64;
                            report.agent_frames += 1;
                            agent_heard_since_line = true;
                            queue.push_back(Queued::Audio(codes.len() as u64 / 8));
                        }
                        Ok(StreamCommand::Mark { stream_sid, mark }) => {
                            if stream_sid != self.stream_sid {
                                report.violations.push(format!("mark for stream {stream_sid}"));
                            }
                            queue.push_back(Queued::Mark(mark.name.to_string()));
                        }
                        Ok(StreamCommand::Clear { .. }) => {
                            report.clears += 1;
                            // Cleared audio never plays; every pending mark is echoed now.
                            for item in std::mem::take(&mut queue) {
                                if let Queued::Mark(name) = item {
                                    sequence += 1;
                                    if tx.send(send(json!({"event": "mark", "sequenceNumber": sequence.to_string(), "streamSid": self.stream_sid, "mark": {"name": name}}))).await.is_err() {
                                        report.ended_by = "closed_by_worker".into();
                                        break 'call;
                                    }
                                    report.marks_echoed.push(name);
                                }
                            }
                            agent_played_this_reply = 0;
                        }
                        Err(error) => report.violations.push(format!("invalid message (Twilio error 31951): {error}: {text:.120}")),
                    }
                }
            }
        }
        report.agent_rms = if energy_samples == 0 { 0.0 } else { (energy / energy_samples as f64).sqrt() as f32 };
        Ok(report)
    }
}
