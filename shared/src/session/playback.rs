//! What the restaurant has actually heard of the agent: the audio sent to Twilio and the
//! marks placed after it, the position played (from mark echoes), barge-in (Twilio
//! `clear` and `conversation.item.truncate` at that position), and the agent's lines,
//! held until heard or cut to the share heard.

use std::time::Instant;

use super::timer::Timer;
use super::{millis, CallSession, Output, TwilioCommand};
use crate::events::Speaker;
use crate::openai::events::ClientEvent;

/// Agent audio sent to Twilio and not yet acknowledged as played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingMark {
    pub(super) name: String,
    pub(super) item_id: String,
    /// Position in the item (ms of audio) once this mark's audio has played.
    pub(super) end_ms: u64,
}

/// The agent item currently being played.
#[derive(Debug, Clone, Default)]
pub(super) struct ItemPlayback {
    pub(super) item_id: String,
    pub(super) sent_bytes: u64,
    pub(super) played_ms: u64,
}

/// An agent line waiting until it has been heard.
#[derive(Debug, Clone)]
pub(super) struct HeldLine {
    pub(super) item_id: String,
    pub(super) text: String,
    /// When the line began, in ms since the stream started (as the transcript keeps it).
    pub(super) at_ms: u64,
    /// `transcript.done` arrived; until then `text` is the deltas so far.
    pub(super) complete: bool,
}

impl CallSession {
    pub(super) fn agent_audio(&mut self, response_id: &str, item_id: &str, delta_b64: &str, now: Instant) {
        if self.interrupted_items.iter().any(|i| i == item_id) {
            return; // the rest of an interrupted reply: never play it
        }
        if self.hold_while_pressing(response_id, item_id, delta_b64) {
            return;
        }
        let bytes = base64_decoded_len(delta_b64);
        if bytes == 0 {
            return;
        }
        self.audio_out_bytes += bytes;
        if self.stats.first_agent_audio_ms.is_none() {
            self.stats.first_agent_audio_ms = Some(self.at_ms(now));
        }
        if !self.responses_with_audio.iter().any(|r| r == response_id) {
            self.responses_with_audio.push(response_id.to_owned());
            if let Some(stopped) = self.speech_stopped_at.take() {
                self.stats.reply_latencies_ms.push(millis(now.saturating_duration_since(stopped)));
                self.turns.reply_started(now);
            }
        }
        self.timers.stop(Timer::Greeting);
        let playback = match &mut self.playback {
            Some(p) if p.item_id == item_id => p,
            slot => slot.insert(ItemPlayback { item_id: item_id.to_owned(), ..ItemPlayback::default() }),
        };
        playback.sent_bytes += bytes;
        let end_ms = playback.sent_bytes / self.params.settings.audio_mode.bytes_per_ms();
        self.mark_seq += 1;
        let name = format!("a{}", self.mark_seq);
        self.marks.push_back(PendingMark { name: name.clone(), item_id: item_id.to_owned(), end_ms });
        self.outputs.push_back(Output::PlayAgentAudio { base64: delta_b64.to_owned() });
        self.outputs.push_back(Output::ToTwilio(TwilioCommand::Mark(name)));
        self.activity(now);
    }

    /// Twilio played up to a mark (or cleared it). Marks come back in order, so every
    /// earlier pending mark has played too; names we no longer track are ignored.
    pub(super) fn mark_played(&mut self, name: &str, now: Instant) {
        let Some(index) = self.marks.iter().position(|m| m.name == name) else {
            return;
        };
        let played: Vec<PendingMark> = self.marks.drain(..=index).collect();
        self.activity(now);
        for mark in &played {
            if let Some(playback) = self.playback.as_mut().filter(|p| p.item_id == mark.item_id) {
                playback.played_ms = playback.played_ms.max(mark.end_ms);
            }
        }
        for mark in played {
            let fully_played = !self.marks.iter().any(|m| m.item_id == mark.item_id);
            let complete = self.held_lines.iter().any(|l| l.item_id == mark.item_id && l.complete);
            if fully_played && complete {
                self.release_line(&mark.item_id, None);
            }
        }
        self.hang_up_when_done(now);
    }

    /// The restaurant started speaking: if agent audio is still queued at Twilio, stop
    /// it and cut the agent's item at what was heard.
    pub(super) fn barge_in(&mut self, _now: Instant) {
        let Some(playback) = self.playback.clone() else {
            return;
        };
        let unplayed = self.marks.iter().any(|m| m.item_id == playback.item_id);
        if !unplayed {
            return;
        }
        self.stats.barge_ins += 1;
        self.outputs.push_back(Output::ToTwilio(TwilioCommand::Clear));
        let sent_ms = playback.sent_bytes / self.params.settings.audio_mode.bytes_per_ms();
        let audio_end_ms = playback.played_ms.min(sent_ms);
        self.send_openai(ClientEvent::ConversationItemTruncate {
            item_id: playback.item_id.clone(),
            content_index: 0,
            audio_end_ms,
        });
        // Twilio echoes the cleared marks; they are no longer ours to track.
        self.marks.clear();
        self.interrupted_items.push(playback.item_id.clone());
        if self.interrupted_items.len() > 16 {
            self.interrupted_items.remove(0);
        }
        let heard = if sent_ms == 0 { 0.0 } else { audio_end_ms as f64 / sent_ms as f64 };
        self.release_line(&playback.item_id, Some(heard));
        self.playback = None;
    }

    /// Emits the agent's line for `item_id`: whole, or cut to the share heard.
    pub(super) fn release_line(&mut self, item_id: &str, heard_share: Option<f64>) {
        let Some(index) = self.held_lines.iter().position(|l| l.item_id == item_id) else {
            return;
        };
        let line = self.held_lines.remove(index);
        let text = match heard_share {
            None => line.text,
            Some(share) => cut_at_share(&line.text, share),
        };
        if !text.trim().is_empty() {
            self.add_line_at(Speaker::Agent, &text, line.at_ms);
        }
    }

    /// The agent's words for `item_id` as they stream (`complete` once `transcript.done`
    /// gives them whole): held until the audio they go with has played.
    pub(super) fn agent_words(&mut self, item_id: &str, text: &str, complete: bool, now: Instant) {
        if self.interrupted_items.iter().any(|i| i == item_id) {
            // Already recorded as heard, cut where the restaurant spoke; and a reply cut
            // off by barge-in may never get its `done`, which is why deltas are kept.
            return;
        }
        let at_ms = self.at_ms(now);
        match self.held_lines.iter_mut().find(|l| l.item_id == item_id) {
            Some(line) if complete => {
                text.clone_into(&mut line.text);
                line.complete = true;
            }
            Some(line) => line.text.push_str(text),
            None => {
                self.held_lines.push(HeldLine { item_id: item_id.to_owned(), text: text.to_owned(), at_ms, complete })
            }
        }
        if complete && !self.marks.iter().any(|m| m.item_id == item_id) {
            self.release_line(item_id, None);
        }
    }
}

/// Decoded length of standard padded base64, without decoding it.
pub(super) fn base64_decoded_len(text: &str) -> u64 {
    let len = text.len() as u64;
    let padding = text.bytes().rev().take_while(|&b| b == b'=').count() as u64;
    (len / 4 * 3).saturating_sub(padding.min(2))
}

/// The first `share` of `text`, cut at a word boundary, marked as interrupted.
fn cut_at_share(text: &str, share: f64) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let keep = ((words.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
    if keep >= words.len() {
        return text.to_owned();
    }
    if keep == 0 {
        return String::new();
    }
    format!("{}…", words[..keep].join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lengths() {
        assert_eq!(base64_decoded_len(""), 0);
        assert_eq!(base64_decoded_len("AAAA"), 3);
        assert_eq!(base64_decoded_len("AAA="), 2);
        assert_eq!(base64_decoded_len("AA=="), 1);
    }

    #[test]
    fn interrupted_lines_keep_the_heard_share() {
        assert_eq!(cut_at_share("one two three four", 0.5), "one two…");
        assert_eq!(cut_at_share("one two three four", 1.0), "one two three four");
        assert_eq!(cut_at_share("one two", 0.0), "");
    }
}
