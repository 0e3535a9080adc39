//! The two messages sent 50 times a second per direction, written directly rather
//! than through serde's tag machinery, into a [`MessageArena`] so that steady-state
//! frames allocate nothing.

use bytes::{Bytes, BytesMut};

/// Memory for outgoing messages. Each message is written at the end and split off as
/// shared `Bytes`; once the messages before it have been sent and dropped, `reserve`
/// reclaims the same allocation, so a call's frames reuse one buffer.
pub struct MessageArena {
    buffer: BytesMut,
}

/// Room reserved at a time: a burst of Twilio frames from one agent delta, or a few
/// OpenAI appends. Messages are dropped as soon as they are sent, so the same chunk is
/// reclaimed over and over; it is per call and per direction, so it is kept small
/// (docs/performance.md, memory per call).
const ARENA_CHUNK: usize = 8 * 1024;

impl Default for MessageArena {
    fn default() -> MessageArena {
        MessageArena { buffer: BytesMut::with_capacity(ARENA_CHUNK) }
    }
}

impl MessageArena {
    fn message(&mut self, size: usize, write: impl FnOnce(&mut BytesMut)) -> Bytes {
        if self.buffer.capacity() < size {
            self.buffer.reserve(size.max(ARENA_CHUNK));
        }
        write(&mut self.buffer);
        self.buffer.split().freeze()
    }

    /// A Twilio `media` message (see [`media_message`]).
    pub fn media(&mut self, stream_sid_json: &str, payload: &str) -> Bytes {
        self.message(payload.len() + stream_sid_json.len() + 48, |out| {
            out.extend_from_slice(br#"{"event":"media","streamSid":"#);
            out.extend_from_slice(stream_sid_json.as_bytes());
            out.extend_from_slice(br#","media":{"payload":""#);
            out.extend_from_slice(payload.as_bytes());
            out.extend_from_slice(br#""}}"#);
        })
    }

    /// An OpenAI `input_audio_buffer.append` (see [`append_message`]).
    pub fn append(&mut self, audio: &str) -> Bytes {
        self.message(audio.len() + 48, |out| {
            out.extend_from_slice(br#"{"type":"input_audio_buffer.append","audio":""#);
            out.extend_from_slice(audio.as_bytes());
            out.extend_from_slice(br#""}"#);
        })
    }

    /// Any other message, already serialized.
    pub fn copy(&mut self, text: &[u8]) -> Bytes {
        self.message(text.len(), |out| out.extend_from_slice(text))
    }
}

/// A Twilio `media` message; the payload is base64 and needs no escaping.
pub fn media_message(stream_sid_json: &str, payload: &str) -> String {
    let mut text = String::with_capacity(payload.len() + stream_sid_json.len() + 48);
    text.push_str(r#"{"event":"media","streamSid":"#);
    text.push_str(stream_sid_json);
    text.push_str(r#","media":{"payload":""#);
    text.push_str(payload);
    text.push_str(r#""}}"#);
    text
}

/// An OpenAI `input_audio_buffer.append`; the audio is base64 and needs no escaping.
pub fn append_message(audio: &str) -> String {
    let mut text = String::with_capacity(audio.len() + 48);
    text.push_str(r#"{"type":"input_audio_buffer.append","audio":""#);
    text.push_str(audio);
    text.push_str(r#""}"#);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::openai::events::ClientEvent;
    use shared::twilio::stream::StreamCommand;

    #[test]
    fn the_hand_written_messages_equal_the_typed_ones() {
        let media = media_message("\"MZ1\"", "//8=");
        let typed: StreamCommand = serde_json::from_str(&media).unwrap();
        assert_eq!(typed, StreamCommand::media("MZ1", "//8="));
        let append = append_message("AAAA");
        let typed: ClientEvent = serde_json::from_str(&append).unwrap();
        assert_eq!(typed, ClientEvent::InputAudioBufferAppend { audio: "AAAA".into() });
    }

    #[test]
    fn the_arena_writes_the_same_bytes_and_reuses_its_memory() {
        let mut arena = MessageArena::default();
        assert_eq!(arena.media("\"MZ1\"", "//8=").as_ref(), media_message("\"MZ1\"", "//8=").as_bytes());
        assert_eq!(arena.append("AAAA").as_ref(), append_message("AAAA").as_bytes());
        // Steady state: each message is sent and dropped before the next few are written.
        let mut arena = MessageArena::default();
        let payload = "A".repeat(1280);
        let first = arena.append(&payload);
        let start = first.as_ptr();
        drop(first);
        let mut reused = false;
        for _ in 0..200 {
            let message = arena.append(&payload);
            reused |= message.as_ptr() == start;
        }
        assert!(reused, "the arena came back to its first allocation");
    }
}
