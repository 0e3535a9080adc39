//! The latency a host hears, per turn, and the worker's share of it.
//!
//! For a turn, let T0 be when the worker read from Twilio the frame holding the end of
//! the host's speech, F when that frame was written to OpenAI's socket, D when the
//! reply's first audio delta was read from OpenAI, and X when the reply's first frame
//! was written to Twilio's socket. The host hears X − T0 (after the network and the
//! VAD's own silence wait, which come before T0); the model's time is D − F; the
//! worker's share is (F − T0) + (X − D).
//!
//! OpenAI names the end of speech by `audio_end_ms` in `input_audio_buffer.speech_stopped`:
//! "milliseconds since the session started when speech stopped", a position in the
//! input audio appended to that socket, which "includes the `min_silence_duration_ms`
//! configured in the Session"
//! (<https://docs.rs/openai-openapi-types/latest/openai_openapi_types/struct.RealtimeServerEventInputAudioBufferSpeechStopped.html>,
//! generated from OpenAI's API reference). So the frame found is the one whose arrival
//! let the VAD decide; the host's last word was the configured silence earlier. The
//! position is found here by counting the audio the shell appended to the current
//! socket: the pre-roll first after each (re)connect, then every frame as it came.
//! Positions count 8 kHz input audio (8 bytes a ms) in both audio modes: `pcm24k`
//! resamples each 20 ms frame to a 20 ms frame, so a position means the same audio.
//!
//! Nothing here allocates after [`TurnLatency::new`]: the frames are a fixed ring.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Restaurant audio kept while OpenAI is (re)connecting: 10 s of 20 ms frames. The shell
/// keeps the first this many frames and forwards them on [`super::Output::ForwardPreRoll`].
pub const PRE_ROLL_FRAMES: usize = 500;

/// Frames remembered after they were appended: 2.56 s of 20 ms frames, far more than
/// the time between a frame reaching OpenAI and its `speech_stopped` coming back.
const RECENT_FRAMES: usize = 128;

/// Twilio's audio, 8 kHz mu-law: 8 bytes a millisecond.
const INPUT_BYTES_PER_MS: u64 = 8;

/// One frame appended to OpenAI live, at positions `start..end` (bytes of 8 kHz audio).
#[derive(Debug, Clone, Copy)]
struct Appended {
    start: u64,
    end: u64,
    read_at: Instant,
    written_at: Option<Instant>,
}

/// A turn whose end of speech was found: T0, F, and D once the reply starts.
#[derive(Debug, Clone, Copy)]
struct Turn {
    heard_end_read_at: Instant,
    heard_end_written_at: Instant,
    reply_read_at: Option<Instant>,
}

/// One turn's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnFigures {
    /// X − T0: from the worker reading the end of the host's speech to the reply's first
    /// audio leaving for Twilio.
    pub heard: Duration,
    /// D − F: OpenAI's time, from the frame written to the reply's first delta read.
    pub model: Duration,
    /// (F − T0) + (X − D): the worker's own time on the way in and on the way out.
    pub worker: Duration,
}

#[derive(Debug)]
pub(super) struct TurnLatency {
    frames: VecDeque<Appended>,
    /// Audio appended to the current OpenAI socket, in bytes of 8 kHz audio.
    position: u64,
    /// Audio the shell holds in its pre-roll while OpenAI is away.
    pre_roll_frames: usize,
    pre_roll_bytes: u64,
    turn: Option<Turn>,
}

impl TurnLatency {
    pub(super) fn new() -> TurnLatency {
        TurnLatency {
            frames: VecDeque::with_capacity(RECENT_FRAMES),
            position: 0,
            pre_roll_frames: 0,
            pre_roll_bytes: 0,
            turn: None,
        }
    }

    /// A Twilio frame of `bytes` read at `now`: appended at once if OpenAI is taking
    /// audio (`live`), else held in the pre-roll (while there is room, as the shell does).
    pub(super) fn frame_read(&mut self, bytes: u64, live: bool, now: Instant) {
        if !live {
            if self.pre_roll_frames < PRE_ROLL_FRAMES {
                self.pre_roll_frames += 1;
                self.pre_roll_bytes += bytes;
            }
            return;
        }
        if self.frames.len() == RECENT_FRAMES {
            self.frames.pop_front();
        }
        let start = self.position;
        self.position += bytes;
        self.frames.push_back(Appended { start, end: self.position, read_at: now, written_at: None });
    }

    /// Restaurant audio reached OpenAI's socket at `now`: every frame not yet written was.
    pub(super) fn audio_written(&mut self, now: Instant) {
        for frame in self.frames.iter_mut().rev() {
            if frame.written_at.is_some() {
                break;
            }
            frame.written_at = Some(now);
        }
    }

    /// A new OpenAI socket: it counts from zero, and the pre-roll is appended first.
    /// Turns that end in the pre-roll are not measured (they waited for the socket).
    pub(super) fn connected(&mut self) {
        self.position = self.pre_roll_bytes;
        self.pre_roll_frames = 0;
        self.pre_roll_bytes = 0;
        self.frames.clear();
        self.turn = None;
    }

    /// The socket is gone: what it counted means nothing to the next one.
    pub(super) fn lost(&mut self) {
        self.position = 0;
        self.frames.clear();
        self.turn = None;
    }

    /// The model's VAD placed the end of speech at `audio_end_ms`: the turn starts at the
    /// frame holding that position, if it is still remembered and was written.
    pub(super) fn speech_stopped(&mut self, audio_end_ms: u64) {
        let position = audio_end_ms.saturating_mul(INPUT_BYTES_PER_MS);
        self.turn =
            self.frames.iter().find(|frame| frame.start < position && position <= frame.end).and_then(|frame| {
                Some(Turn {
                    heard_end_read_at: frame.read_at,
                    heard_end_written_at: frame.written_at?,
                    reply_read_at: None,
                })
            });
    }

    /// The reply's first audio delta was read at `now`.
    pub(super) fn reply_started(&mut self, now: Instant) {
        if let Some(turn) = self.turn.as_mut() {
            turn.reply_read_at.get_or_insert(now);
        }
    }

    /// Agent audio reached Twilio's socket at `now`: the figures of the turn whose reply
    /// this began, once.
    pub(super) fn agent_audio_written(&mut self, now: Instant) -> Option<TurnFigures> {
        let turn = self.turn?;
        let reply_read_at = turn.reply_read_at?;
        self.turn = None;
        let (t0, f, d, x) = (turn.heard_end_read_at, turn.heard_end_written_at, reply_read_at, now);
        Some(TurnFigures {
            heard: x.saturating_duration_since(t0),
            model: d.saturating_duration_since(f),
            worker: f.saturating_duration_since(t0) + x.saturating_duration_since(d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u64 = 160;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// `count` live frames, one every 20 ms from `base + first_ms`, each written 30 µs
    /// after it was read.
    fn stream(turns: &mut TurnLatency, base: Instant, first_ms: u64, count: u64) {
        for i in 0..count {
            let read = base + Duration::from_millis(first_ms + 20 * i);
            turns.frame_read(FRAME, true, read);
            turns.audio_written(read + us(30));
        }
    }

    #[test]
    fn a_turn_splits_into_the_models_time_and_the_workers() {
        let base = Instant::now();
        let mut turns = TurnLatency::new();
        turns.connected();
        stream(&mut turns, base, 0, 50);
        // Speech stopped at 620 ms of audio: inside the frame read at 600 ms (600..620).
        turns.speech_stopped(620);
        let d = base + Duration::from_millis(900);
        assert_eq!(turns.agent_audio_written(d), None, "no reply yet");
        turns.reply_started(d);
        turns.reply_started(d + us(500)); // later deltas do not move D
        let figures = turns.agent_audio_written(d + us(45)).expect("a measured turn");
        let t0 = base + Duration::from_millis(600);
        assert_eq!(figures.heard, (d + us(45)) - t0);
        assert_eq!(figures.model, d - (t0 + us(30)));
        assert_eq!(figures.worker, us(30 + 45));
        assert_eq!(turns.agent_audio_written(d + us(90)), None, "each turn is counted once");
    }

    #[test]
    fn the_preroll_comes_first_on_each_socket_and_turns_ending_in_it_are_not_measured() {
        let base = Instant::now();
        let mut turns = TurnLatency::new();
        // 300 ms held while OpenAI connects, then live from 300 ms.
        for i in 0..15 {
            turns.frame_read(FRAME, false, base + Duration::from_millis(20 * i));
        }
        turns.connected();
        turns.audio_written(base + Duration::from_millis(305));
        stream(&mut turns, base, 300, 10);
        turns.speech_stopped(200);
        turns.reply_started(base + Duration::from_millis(700));
        assert_eq!(turns.agent_audio_written(base + Duration::from_millis(701)), None, "ended in the pre-roll");
        // 360 ms of audio is 60 ms after the 300 ms of pre-roll: the third live frame,
        // read at 340 ms.
        turns.speech_stopped(360);
        turns.reply_started(base + Duration::from_millis(800));
        let figures = turns.agent_audio_written(base + Duration::from_millis(800) + us(10)).unwrap();
        assert_eq!(figures.heard, Duration::from_millis(460) + us(10));
        assert_eq!(figures.worker, us(40));
    }

    #[test]
    fn a_reconnect_counts_from_zero_again() {
        let base = Instant::now();
        let mut turns = TurnLatency::new();
        turns.connected();
        stream(&mut turns, base, 0, 20);
        turns.speech_stopped(380);
        turns.lost();
        turns.reply_started(base + Duration::from_millis(500));
        assert_eq!(turns.agent_audio_written(base + Duration::from_millis(501)), None, "lost with its socket");
        // Nothing held (no frames came while away): the new socket counts from 0.
        turns.connected();
        stream(&mut turns, base, 1_000, 5);
        turns.speech_stopped(40);
        turns.reply_started(base + Duration::from_millis(1_200));
        let figures = turns.agent_audio_written(base + Duration::from_millis(1_200)).unwrap();
        assert_eq!(figures.heard, Duration::from_millis(180), "from the frame read at 1 020 ms");
    }

    #[test]
    fn frames_too_old_or_never_written_are_not_guessed() {
        let base = Instant::now();
        let mut turns = TurnLatency::new();
        turns.connected();
        stream(&mut turns, base, 0, RECENT_FRAMES as u64 + 10);
        turns.speech_stopped(100);
        turns.reply_started(base + Duration::from_secs(5));
        assert_eq!(turns.agent_audio_written(base + Duration::from_secs(5)), None, "forgotten");
        turns.frame_read(FRAME, true, base + Duration::from_secs(6));
        let unwritten_end_ms = (RECENT_FRAMES as u64 + 11) * 20;
        turns.speech_stopped(unwritten_end_ms);
        turns.reply_started(base + Duration::from_secs(7));
        assert_eq!(turns.agent_audio_written(base + Duration::from_secs(7)), None, "OpenAI cannot have heard it");
        turns.speech_stopped(unwritten_end_ms + 20);
        turns.reply_started(base + Duration::from_secs(7));
        assert_eq!(turns.agent_audio_written(base + Duration::from_secs(7)), None, "past what was appended");
    }

    #[test]
    fn the_preroll_is_capped_as_the_shell_caps_it() {
        let base = Instant::now();
        let mut turns = TurnLatency::new();
        for _ in 0..PRE_ROLL_FRAMES + 7 {
            turns.frame_read(FRAME, false, base);
        }
        turns.connected();
        stream(&mut turns, base, 0, 1);
        let after_pre_roll_ms = PRE_ROLL_FRAMES as u64 * 20 + 20;
        turns.speech_stopped(after_pre_roll_ms);
        turns.reply_started(base + Duration::from_millis(50));
        assert!(turns.agent_audio_written(base + Duration::from_millis(50)).is_some());
    }
}
