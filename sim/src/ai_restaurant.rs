//! A restaurant played by a Realtime model: the host's side of the phone call is an
//! OpenAI Realtime session (GA protocol, `audio/pcmu` both ways, server VAD), bridged to
//! the Media Streams connection exactly as Twilio would carry it. With real OpenAI
//! credentials this lets the demo run a real agent against a simulated restaurant; in
//! tests it runs against the fake Realtime server, which checks its protocol too.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared::twilio::stream::StreamCommand;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::twilio_media::MediaReport;
use crate::twilio_rest::Ledger;

/// Who the model plays, and where it runs.
#[derive(Debug, Clone)]
pub struct AiHost {
    /// `wss://api.openai.com/v1/realtime` or a fake's URL.
    pub realtime_url: String,
    pub api_key: String,
    pub model: String,
    pub voice: String,
    pub instructions: String,
}

impl AiHost {
    /// A host at the demo's restaurant who has a table at 7:30 and gives a confirmation code.
    pub fn chez_panisse(realtime_url: &str, api_key: &str) -> AiHost {
        AiHost {
            realtime_url: realtime_url.to_owned(),
            api_key: api_key.to_owned(),
            model: shared::openai::DEFAULT_MODEL.into(),
            voice: "cedar".into(),
            instructions: "You are the host answering the phone at Chez Panisse, a restaurant in Berkeley. \
Greet the caller briefly (\"Chez Panisse, good evening\"). Tonight 7:30 PM is available for parties up to 6. \
Take the booking if asked, ask for the name, then give the confirmation number A73X, spelling it \
(\"A as in apple, seven, three, X\"). Speak briefly and naturally, like a busy host. Say goodbye when the caller does."
                .into(),
        }
    }
}

/// The stream's identity, from the TwiML the edge served.
#[derive(Debug, Clone)]
pub struct StreamTarget {
    pub url: String,
    /// The `<Stream>`'s `<Parameter>`s, sent as `start.customParameters`.
    pub parameters: BTreeMap<String, String>,
    pub call_sid: String,
    pub stream_sid: String,
}

enum Queued {
    Audio(u64),
    Mark(String),
}

impl AiHost {
    pub async fn run(
        self,
        target: StreamTarget,
        mut hangups: watch::Receiver<Ledger>,
        max_call: Duration,
    ) -> anyhow::Result<MediaReport> {
        let (worker, _) = tokio_tungstenite::connect_async(&target.url).await?;
        let (mut to_worker, mut from_worker) = worker.split();
        let separator = if self.realtime_url.contains('?') { '&' } else { '?' };
        let mut request = format!("{}{separator}model={}", self.realtime_url, self.model).into_client_request()?;
        request.headers_mut().insert("Authorization", format!("Bearer {}", self.api_key).parse()?);
        let (model, _) = tokio_tungstenite::connect_async(request).await?;
        let (mut to_model, mut from_model) = model.split();
        let text = |value: Value| Message::Text(value.to_string().into());
        let pcmu = json!({"type": "audio/pcmu"});
        to_model
            .send(text(json!({"type": "session.update", "session": {
                "type": "realtime", "model": self.model, "instructions": self.instructions, "output_modalities": ["audio"],
                "audio": {"input": {"format": pcmu, "transcription": null, "noise_reduction": null,
                                    "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                                       "silence_duration_ms": 500, "create_response": true, "interrupt_response": true}},
                          "output": {"format": pcmu, "voice": self.voice, "speed": 1.0}},
                "tools": [], "tool_choice": "auto"}})))
            .await?;
        // The host speaks first, as anyone answering a phone does.
        to_model.send(text(json!({"type": "response.create"}))).await?;

        let mut sequence = 1u64;
        let account = "AC00000000000000000000000000000001";
        to_worker.send(text(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}))).await?;
        to_worker
            .send(text(json!({"event": "start", "sequenceNumber": "1", "streamSid": target.stream_sid,
                "start": {"accountSid": account, "streamSid": target.stream_sid, "callSid": target.call_sid, "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": target.parameters}})))
            .await?;

        let mut report = MediaReport::default();
        let mut host_audio: VecDeque<u8> = VecDeque::new();
        // What the host hears, played out in real time: the model's VAD needs the
        // silences between the agent's sentences as much as the sentences.
        let mut heard: VecDeque<u8> = VecDeque::new();
        let mut playback: VecDeque<Queued> = VecDeque::new();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let deadline = tokio::time::sleep(max_call);
        tokio::pin!(deadline);
        let mut timestamp = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Play 20 ms of the agent's audio, echoing the marks reached.
                    let mut budget = 20u64;
                    while let Some(front) = playback.front_mut() {
                        match front {
                            Queued::Audio(ms) if budget > 0 => {
                                let used = (*ms).min(budget);
                                *ms -= used;
                                budget -= used;
                                if *ms == 0 {
                                    playback.pop_front();
                                }
                            }
                            Queued::Audio(_) => break,
                            Queued::Mark(_) => {
                                if let Some(Queued::Mark(name)) = playback.pop_front() {
                                    sequence += 1;
                                    to_worker.send(text(json!({"event": "mark", "sequenceNumber": sequence.to_string(), "streamSid": target.stream_sid, "mark": {"name": name}}))).await?;
                                    report.marks_echoed.push(name);
                                }
                            }
                        }
                    }
                    let earful: Vec<u8> = (0..160).map(|_| heard.pop_front().unwrap_or(0xFF)).collect();
                    to_model.send(text(json!({"type": "input_audio_buffer.append", "audio": STANDARD.encode(&earful)}))).await?;
                    // Send 20 ms of the host's voice (or silence).
                    let frame: Vec<u8> = (0..160).map(|_| host_audio.pop_front().unwrap_or(0xFF)).collect();
                    sequence += 1;
                    report.frames_sent += 1;
                    to_worker.send(text(json!({"event": "media", "sequenceNumber": sequence.to_string(), "streamSid": target.stream_sid,
                        "media": {"track": "inbound", "chunk": report.frames_sent.to_string(), "timestamp": timestamp.to_string(), "payload": STANDARD.encode(&frame)}}))).await?;
                    timestamp += 20;
                }
                message = from_worker.next() => {
                    let Some(Ok(Message::Text(body))) = message else {
                        if matches!(message, Some(Ok(Message::Ping(_) | Message::Pong(_)))) { continue; }
                        report.ended_by = "closed_by_worker".into();
                        break;
                    };
                    match serde_json::from_str::<StreamCommand>(&body) {
                        Ok(StreamCommand::Media { media, .. }) => {
                            report.agent_frames += 1;
                            let bytes = STANDARD.decode(media.payload.as_bytes()).unwrap_or_default();
                            playback.push_back(Queued::Audio(bytes.len() as u64 / 8));
                            // Mu-law both ways: what the agent says is what the host hears.
                            heard.extend(bytes);
                        }
                        Ok(StreamCommand::Mark { mark, .. }) => playback.push_back(Queued::Mark(mark.name.to_string())),
                        Ok(StreamCommand::Clear { .. }) => {
                            report.clears += 1;
                            heard.clear();
                            for item in std::mem::take(&mut playback) {
                                if let Queued::Mark(name) = item {
                                    sequence += 1;
                                    to_worker.send(text(json!({"event": "mark", "sequenceNumber": sequence.to_string(), "streamSid": target.stream_sid, "mark": {"name": name}}))).await?;
                                }
                            }
                        }
                        Err(error) => report.violations.push(format!("invalid message: {error}")),
                    }
                }
                message = from_model.next() => {
                    let Some(Ok(Message::Text(body))) = message else { continue };
                    let Ok(event) = serde_json::from_str::<Value>(&body) else { continue };
                    match event["type"].as_str() {
                        Some("response.output_audio.delta") => {
                            if let Some(delta) = event["delta"].as_str() {
                                host_audio.extend(STANDARD.decode(delta).unwrap_or_default());
                            }
                        }
                        // The agent talked over the host: the host stops.
                        Some("input_audio_buffer.speech_started") => host_audio.clear(),
                        Some("error") => report.violations.push(format!("the host's model reported: {}", event["error"])),
                        _ => {}
                    }
                }
                changed = hangups.changed() => {
                    if changed.is_ok() && hangups.borrow().calls.iter().any(|c| c.sid == target.call_sid && !c.updates.is_empty()) {
                        sequence += 1;
                        let _ = to_worker.send(text(json!({"event": "stop", "sequenceNumber": sequence.to_string(), "streamSid": target.stream_sid,
                            "stop": {"accountSid": account, "callSid": target.call_sid}}))).await;
                        report.ended_by = "hung_up".into();
                        break;
                    }
                }
                _ = &mut deadline => {
                    report.ended_by = "time_limit".into();
                    break;
                }
            }
        }
        let _ = to_worker.close().await;
        let _ = to_model.close().await;
        Ok(report)
    }
}
