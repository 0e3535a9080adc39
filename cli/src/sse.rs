//! Server-Sent Events framing for `GET /v1/calls/{id}/events`, without IO: bytes in,
//! events out, so a frame split across reads (or a connection cut mid-frame) is handled
//! in one place and tested without a server.

use serde_json::Value;

/// One event of a call's live stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: u64,
    /// `status`, `transcript`, `outcome`, `attempt` or `end`.
    pub kind: String,
    pub data: Value,
}

/// Accumulates a stream's bytes and yields whole events.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
}

impl Decoder {
    /// Adds bytes read from the connection and returns the events now complete.
    /// Comments (keep-alives) and frames that are not a well-formed event are skipped:
    /// the stream's own framing is the only thing a listener can rely on.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some((end, separator)) = frame_end(&self.buffer) {
            let frame: Vec<u8> = self.buffer.drain(..end + separator).collect();
            if let Some(event) = parse(&String::from_utf8_lossy(&frame[..end])) {
                events.push(event);
            }
        }
        events
    }
}

/// Where the first frame ends (a blank line, `\n\n` or `\r\n\r\n`), and the
/// separator's length.
fn frame_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Reads one frame's `id:`, `event:` and `data:` lines (several `data:` lines join
/// with newlines, as the SSE format says).
fn parse(frame: &str) -> Option<Event> {
    let (mut id, mut kind, mut data) = (None, None, Vec::new());
    for line in frame.lines() {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name {
            "id" => id = value.trim().parse().ok(),
            "event" => kind = Some(value.trim().to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    Some(Event { id: id?, kind: kind?, data: serde_json::from_str(&data.join("\n")).ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_split_across_reads_come_out_whole() {
        let stream = ": keep-alive\n\nid: 1\nevent: status\ndata: {\"status\":\"ringing\"}\n\nid: 2\nevent: end\ndata: {\"a\":1}\n\n";
        let mut decoder = Decoder::default();
        let mut events = Vec::new();
        for chunk in stream.as_bytes().chunks(7) {
            events.extend(decoder.push(chunk));
        }
        assert_eq!(
            events,
            vec![
                Event { id: 1, kind: "status".into(), data: json!({"status": "ringing"}) },
                Event { id: 2, kind: "end".into(), data: json!({"a": 1}) },
            ]
        );
    }

    #[test]
    fn crlf_frames_and_multi_line_data_are_read() {
        let mut decoder = Decoder::default();
        let events = decoder.push(b"id: 3\r\nevent: outcome\r\ndata: {\"result\":\r\ndata: \"declined\"}\r\n\r\n");
        assert_eq!(events, vec![Event { id: 3, kind: "outcome".into(), data: json!({"result": "declined"}) }]);
    }

    #[test]
    fn a_cut_frame_waits_and_a_malformed_one_is_skipped() {
        let mut decoder = Decoder::default();
        assert!(decoder.push(b"id: 4\nevent: transcript\ndata: {\"te").is_empty());
        assert!(decoder.push(b"xt\":\"hi\"}\n\nid: x\nevent: status\ndata: {}\n\n").len() == 1);
    }
}
