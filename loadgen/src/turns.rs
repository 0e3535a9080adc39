//! The conversation every simulated call follows, known to both ends so neither has to
//! parse audio on the hot path: the host (the Twilio caller) is quiet, speaks, and the
//! agent (the Realtime endpoint) replies as soon as the host's speech ends, with no
//! model time, so what a turn takes beyond the endpoint's own time is the bridge's.
//!
//! A turn is [`TURN_FRAMES`] frames of 20 ms: [`SPEECH_FROM`] frames of silence, then
//! host speech to the end of the turn. The endpoint counts the frames it hears; the one
//! that ends a turn's speech is its cue. The reply ([`REPLY_DELTAS`] deltas) is over
//! well before the next turn's speech ends, so the first agent audio the caller hears
//! after a turn's last frame is that turn's reply.

use std::time::{Duration, Instant};

/// 2 s a turn.
pub const TURN_FRAMES: u64 = 100;
/// The host speaks for the last 0.8 s of each turn.
pub const SPEECH_FROM: u64 = 60;
/// The reply: 1.5 s in the endpoint's usual 100 ms deltas, so the agent is heard three
/// quarters of the time and its last audio is 0.5 s clear of the next turn's end.
pub const REPLY_DELTAS: u64 = 15;
// The reply is over (with room to spare) before the next turn's speech ends.
const _: () = assert!(REPLY_DELTAS * crate::realtime::AGENT_DELTA_MS + 500 <= TURN_FRAMES * 20);
/// One frame of audio.
pub const FRAME: Duration = Duration::from_millis(20);

/// Whether frame `index` (0-based, as sent) carries host speech.
pub fn is_speech(index: u64) -> bool {
    index % TURN_FRAMES >= SPEECH_FROM
}

/// The turn whose host speech frame `index` ends, if it ends one.
pub fn ends_turn(index: u64) -> Option<u64> {
    (index % TURN_FRAMES == TURN_FRAMES - 1).then_some(index / TURN_FRAMES)
}

/// Where the host's speech ended in the input audio, as OpenAI's `audio_end_ms` counts
/// it: the end of frame `index`, with every frame appended from the first.
pub fn audio_end_ms(index: u64) -> u64 {
    (index + 1) * FRAME.as_millis() as u64
}

/// A turn as the endpoint saw it.
#[derive(Debug, Clone, Copy)]
pub struct EndpointTurn {
    pub turn: u64,
    /// When the frame that ended the host's speech arrived.
    pub heard_at: Instant,
    /// When the reply's first delta had been written.
    pub replied_at: Instant,
}

/// The latency a bridge added to one turn, as the host hears it: from the caller
/// sending the turn's last frame of speech to it receiving the first agent audio,
/// less the endpoint's own time (its "model" time) in between.
pub fn added(last_speech_sent: Instant, first_reply_received: Instant, endpoint: &EndpointTurn) -> Duration {
    let round_trip = first_reply_received.saturating_duration_since(last_speech_sent);
    round_trip.saturating_sub(endpoint.replied_at.saturating_duration_since(endpoint.heard_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_turn_is_silence_then_speech_ending_on_its_last_frame() {
        assert!(!is_speech(0) && !is_speech(59) && is_speech(60) && is_speech(99) && !is_speech(100));
        assert_eq!(ends_turn(98), None);
        assert_eq!(ends_turn(99), Some(0));
        assert_eq!(ends_turn(299), Some(2));
        // The end of frame 99 is 2 s of audio in.
        assert_eq!(audio_end_ms(99), 2_000);
    }

    #[test]
    fn the_endpoints_own_time_is_not_the_bridges() {
        let sent = Instant::now();
        let endpoint = EndpointTurn {
            turn: 0,
            heard_at: sent + Duration::from_micros(300),
            replied_at: sent + Duration::from_micros(450),
        };
        let received = sent + Duration::from_micros(900);
        assert_eq!(added(sent, received, &endpoint), Duration::from_micros(750));
    }
}
