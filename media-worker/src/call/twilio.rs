//! The Twilio side of a call (Media Streams; see docs/wire-formats.md): the agent's
//! audio converted to 20 ms mu-law `media` messages, `mark` and `clear`, batched
//! writes with back-pressure, and the close. Reading stays in the loop (`super`);
//! nothing here decides.

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use shared::twilio::stream::StreamCommand;
use tracing::warn;

use super::{feed_within, flush_within, send_within, Flushed};
use crate::audio::Outbound;
use crate::frames::MessageArena;
use crate::metrics::Metrics;

/// 20 ms of 8 kHz mu-law: one Twilio media frame.
const TWILIO_FRAME_BYTES: usize = 160;

/// Twilio's frames are about 350 bytes: this holds several when the worker is behind.
pub const TWILIO_READ_BUFFER_BYTES: usize = 2 * 1024;

type TwilioSink = SplitSink<WebSocket, Message>;

pub(super) struct TwilioPeer {
    sink: TwilioSink,
    stream_sid: String,
    /// `streamSid` as a JSON string literal, escaped once.
    stream_sid_json: String,
    /// Agent audio, the model's format to Twilio's 20 ms frames.
    outbound: Outbound,
    /// Twilio messages built from one audio delta, reused between deltas.
    outgoing: Vec<bytes::Bytes>,
    /// Memory for the per-frame messages (no allocation per frame).
    arena: MessageArena,
    /// Twilio stalled or went away while we were sending: send nothing more.
    gone: bool,
    /// Messages written to the socket's buffer since it was last flushed.
    unflushed: bool,
    /// Among them, audio frames.
    unflushed_audio: bool,
}

impl TwilioPeer {
    pub(super) fn new(sink: TwilioSink, stream_sid: &str, outbound: Outbound) -> TwilioPeer {
        TwilioPeer {
            sink,
            stream_sid: stream_sid.to_owned(),
            stream_sid_json: serde_json::to_string(stream_sid).unwrap_or_else(|_| "\"\"".into()),
            outbound,
            outgoing: Vec::with_capacity(32),
            arena: MessageArena::default(),
            gone: false,
            unflushed: false,
            unflushed_audio: false,
        }
    }

    /// Converts one agent audio delta (base64) into frames and writes them; false if
    /// Twilio stalled. Undecodable audio is skipped (counted).
    pub(super) async fn play(&mut self, base64: &str, metrics: &Metrics) -> bool {
        let started = std::time::Instant::now();
        let (sid, outgoing, arena) = (&self.stream_sid_json, &mut self.outgoing, &mut self.arena);
        if let Err(error) = self.outbound.push(base64, |frame| outgoing.push(arena.media(sid, frame))) {
            Metrics::inc(&metrics.frames_malformed);
            warn!(%error, "skipping undecodable agent audio");
        }
        metrics.observe_frame(started.elapsed());
        self.send_outgoing(metrics).await
    }

    /// Writes the reply's last partial frame, padded with silence.
    pub(super) async fn flush_audio(&mut self, metrics: &Metrics) -> bool {
        let (sid, outgoing, arena) = (&self.stream_sid_json, &mut self.outgoing, &mut self.arena);
        let _ = self.outbound.flush(|frame| outgoing.push(arena.media(sid, frame)));
        self.send_outgoing(metrics).await
    }

    /// Writes key tones (8 kHz mu-law in whole 20 ms frames, see `shared::codec::dtmf`)
    /// as they are: they are already in Twilio's format.
    pub(super) async fn play_tones(&mut self, mulaw: &[u8], metrics: &Metrics) -> bool {
        let (sid, outgoing, arena) = (&self.stream_sid_json, &mut self.outgoing, &mut self.arena);
        let mut payload = String::with_capacity(TWILIO_FRAME_BYTES * 4 / 3 + 4);
        for frame in mulaw.chunks(TWILIO_FRAME_BYTES) {
            payload.clear();
            shared::codec::b64::encode_into(frame, &mut payload);
            outgoing.push(arena.media(sid, &payload));
        }
        self.send_outgoing(metrics).await
    }

    pub(super) async fn mark(&mut self, name: &str) -> bool {
        let mut json = Vec::with_capacity(96);
        StreamCommand::mark(&self.stream_sid, name).write_json(&mut json);
        self.send_json(&json).await
    }

    /// Empties Twilio's playback buffer, and ours.
    pub(super) async fn clear(&mut self) -> bool {
        self.outbound.discard();
        let mut json = Vec::with_capacity(96);
        StreamCommand::clear(&self.stream_sid).write_json(&mut json);
        self.send_json(&json).await
    }

    async fn send_json(&mut self, json: &[u8]) -> bool {
        let message = self.arena.copy(json);
        self.send(message).await
    }

    /// Sends the media messages built from the last delta, in order.
    async fn send_outgoing(&mut self, metrics: &Metrics) -> bool {
        let mut outgoing = std::mem::take(&mut self.outgoing);
        let mut open = true;
        for text in outgoing.drain(..) {
            Metrics::inc(&metrics.frames_out);
            open &= self.send(text).await;
            self.unflushed_audio = true;
        }
        // Handed back empty, keeping its capacity for the next delta.
        self.outgoing = outgoing;
        open
    }

    async fn send(&mut self, text: bytes::Bytes) -> bool {
        // Our own JSON: always UTF-8.
        let Ok(text) = Utf8Bytes::try_from(text) else { return true };
        if self.gone {
            return true;
        }
        if feed_within(&mut self.sink, Message::Text(text)).await {
            self.unflushed = true;
            true
        } else {
            self.gone = true;
            false
        }
    }

    /// Writes out what was queued.
    pub(super) async fn flush(&mut self) -> Flushed {
        let audio = std::mem::take(&mut self.unflushed_audio);
        if !std::mem::take(&mut self.unflushed) || self.gone {
            return Flushed { open: true, audio: false };
        }
        if flush_within(&mut self.sink).await {
            Flushed { open: true, audio }
        } else {
            self.gone = true;
            Flushed { open: false, audio: false }
        }
    }

    /// Ends the WebSocket with a close frame, not a bare reset, unless Twilio is gone.
    pub(super) async fn close(mut self) {
        if !self.gone {
            send_within(&mut self.sink, Message::Close(None)).await;
        }
    }

    /// Closes a socket whose stream was refused.
    pub(super) async fn refuse(mut sink: TwilioSink) {
        send_within(&mut sink, Message::Close(None)).await;
    }
}
