//! One simulated call as Twilio Media Streams places it: `connected`, `start` with the
//! call's token, a 20 ms mu-law frame every 20 ms (stamped as it leaves), marks echoed
//! as soon as they arrive, `stop` at the end. The host talks in turns (turns.rs):
//! silence, then speech; the first agent audio after a turn's last frame of speech is
//! stamped as that turn's reply.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::turns;

/// After `stop`, how long to wait for the worker to close the socket.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct CallerReport {
    /// When each media frame was sent, in order.
    pub sent: Vec<Instant>,
    /// Per turn the host ended: the turn and when its reply's first agent audio arrived.
    pub replies: Vec<(u64, Instant)>,
    /// Agent audio received, in 8 kHz mu-law bytes (8 a millisecond). Counted by
    /// length, not messages: in `passthrough` the worker forwards each delta whole.
    pub agent_bytes: u64,
    /// Messages that were not the Twilio commands we know.
    pub unreadable: u64,
    /// Set when the call could not run at all.
    pub failure: Option<String>,
}

pub struct CallPlan {
    pub url: String,
    pub call_id: String,
    pub token: String,
    pub call_sid: String,
    pub stream_sid: String,
    /// Base64 of one 20 ms mu-law frame of the host speaking, and one of silence.
    pub speech: String,
    pub silence: String,
    pub audio: Duration,
}

pub async fn run(plan: CallPlan) -> CallerReport {
    let mut report = CallerReport::default();
    if let Err(error) = talk(&plan, &mut report).await {
        report.failure = Some(error.to_string());
    }
    report
}

async fn talk(plan: &CallPlan, report: &mut CallerReport) -> anyhow::Result<()> {
    // Nagle off, as Twilio's media servers send each frame as it is due.
    let (socket, _) =
        tokio_tungstenite::connect_async_with_config(&plan.url, Some(crate::socket_config()), true).await?;
    let (mut tx, mut rx) = socket.split();
    let text = |value: serde_json::Value| Message::Text(value.to_string().into());
    let stream_sid = &plan.stream_sid;
    tx.send(text(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}))).await?;
    tx.send(text(json!({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {"accountSid": "AC00000000000000000000000000000001", "streamSid": stream_sid, "callSid": plan.call_sid,
            "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"call_id": plan.call_id, "token": plan.token}}})))
        .await?;
    let frames = plan.audio.as_millis() as u64 / 20;
    report.sent.reserve(frames as usize);
    let mut sequence = 1u64;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut stopped_at = None;
    // The turn whose speech ended last, until its reply is heard.
    let mut awaiting_reply = None;
    loop {
        let close_by = stopped_at.map(|at: Instant| tokio::time::Instant::from_std(at + CLOSE_WAIT));
        tokio::select! {
            _ = tick.tick(), if stopped_at.is_none() => {
                sequence += 1;
                let index = report.sent.len() as u64;
                let chunk = index + 1;
                if chunk > frames {
                    tx.send(text(json!({"event": "stop", "sequenceNumber": sequence.to_string(), "streamSid": stream_sid,
                        "stop": {"accountSid": "AC00000000000000000000000000000001", "callSid": plan.call_sid}}))).await?;
                    stopped_at = Some(Instant::now());
                    continue;
                }
                let media = format!(
                    r#"{{"event":"media","sequenceNumber":"{sequence}","streamSid":"{stream_sid}","media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{}","payload":"{}"}}}}"#,
                    (chunk - 1) * 20,
                    if turns::is_speech(index) { &plan.speech } else { &plan.silence }
                );
                report.sent.push(Instant::now());
                tx.send(Message::Text(media.into())).await?;
                if let Some(turn) = turns::ends_turn(index) {
                    awaiting_reply = Some(turn);
                }
            }
            _ = tokio::time::sleep_until(close_by.unwrap_or_else(tokio::time::Instant::now)), if close_by.is_some() => {
                anyhow::bail!("the worker did not close the stream after stop");
            }
            message = rx.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Err(error)) => return Err(error.into()),
                    Some(Ok(_)) => continue,
                };
                if text.contains(r#""event":"media""#) {
                    if let Some(turn) = awaiting_reply.take() {
                        report.replies.push((turn, Instant::now()));
                    }
                    report.agent_bytes += payload_bytes(&text);
                } else if text.contains(r#""event":"mark""#) {
                    // Played at once: echo it back, as Twilio does when playback reaches it.
                    let Ok(mark) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                    sequence += 1;
                    tx.send(text_echo(&mark, sequence)).await?;
                } else if !text.contains(r#""event":"clear""#) {
                    report.unreadable += 1;
                }
            }
        }
    }
}

/// The decoded length of a media message's base64 `payload`.
fn payload_bytes(message: &str) -> u64 {
    const KEY: &str = r#""payload":""#;
    let Some(start) = message.find(KEY).map(|at| at + KEY.len()) else { return 0 };
    let payload = message[start..].split('"').next().unwrap_or_default();
    let padding = payload.bytes().rev().take_while(|&b| b == b'=').count();
    (payload.len() / 4 * 3).saturating_sub(padding) as u64
}

impl CallerReport {
    /// Agent audio received, in whole 20 ms frames.
    pub fn agent_frames(&self) -> u64 {
        self.agent_bytes / 160
    }
}

fn text_echo(mark: &serde_json::Value, sequence: u64) -> Message {
    let echo = json!({"event": "mark", "sequenceNumber": sequence.to_string(), "streamSid": mark["streamSid"],
        "mark": {"name": mark["mark"]["name"]}});
    Message::Text(echo.to_string().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_audio_is_counted_by_its_length_not_by_messages() {
        let frame = format!(r#"{{"event":"media","streamSid":"MZ1","media":{{"payload":"{}=="}}}}"#, "A".repeat(214));
        // 216 base64 characters: 54 groups of four = 162 bytes, minus two padding bytes.
        assert_eq!(payload_bytes(&frame), 160);
        assert_eq!(payload_bytes(r#"{"event":"media","media":{"payload":""}}"#), 0);
        assert_eq!(payload_bytes(r#"{"event":"mark"}"#), 0);
    }
}
