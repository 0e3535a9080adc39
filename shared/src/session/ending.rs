//! How a call ends, every way it can: what is said before hanging up, the outcome's
//! note when nothing was settled, and the ids of the events that record it.
//!
//! A live session ends itself: its `finish` is here, beside the rest (the hang-up and
//! farewell from [`hang_up`], the outcome from [`closing_outcome`]). Two endings have no live session, and are
//! built here whole for the shell to carry out:
//! - [`refused`]: the stream was admitted but cannot get an agent (no call slot, or the
//!   call's details could not be loaded);
//! - [`orphaned`]: the worker carrying the call died, and a survivor finishes it from
//!   the transcript the live store kept.
//!
//! Event ids: every event of a stream is `{stream_sid}-{slot}` ([`EventSlot`]). The
//! edge applies each id once, so the same ending must always get the same ids: a
//! refusal or an orphan finished twice (two sweepers, a retry) is counted once.

use std::fmt;

use std::time::Instant;

use super::{CallSession, Output, Phase};
use crate::call::TranscriptLine;
use crate::events::{CallEvent, CallEventKind, CallStats, EndReason, Outcome, OutcomeResult};
use crate::language::{Farewell, Language};
use crate::session::confirmation;

/// Where an event sits among its stream's events; with the stream's sid it makes the
/// event's id. The live session numbers its events; the endings without a session use
/// fixed names, which no number can equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSlot {
    /// The live session's `n`th event, from 1.
    Live(u64),
    /// A refused stream's outcome, then its end.
    RefusedOutcome,
    RefusedEnd,
    /// The outcome and end a survivor records for a stream whose worker died.
    OrphanOutcome,
    OrphanEnd,
}

impl fmt::Display for EventSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // These strings are ids the edge has already stored: never change them.
        match self {
            EventSlot::Live(n) => write!(f, "{n}"),
            EventSlot::RefusedOutcome => f.write_str("refused-0"),
            EventSlot::RefusedEnd => f.write_str("refused-1"),
            EventSlot::OrphanOutcome => f.write_str("orphan-outcome"),
            EventSlot::OrphanEnd => f.write_str("orphan-ended"),
        }
    }
}

/// The event `kind` of stream `stream_sid`, in `slot`.
pub fn event(stream_sid: &str, slot: EventSlot, kind: CallEventKind) -> CallEvent {
    CallEvent::of_stream(stream_sid, slot, kind)
}

/// Why an admitted stream gets no agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every call slot is taken.
    AtCapacity,
    /// The edge would not (or could not) give the call's details.
    ContextUnavailable,
}

impl Refusal {
    pub fn reason(self) -> EndReason {
        match self {
            Refusal::AtCapacity => EndReason::AtCapacity,
            Refusal::ContextUnavailable => EndReason::ContextUnavailable,
        }
    }
}

/// An ending with no live session: hang up saying `farewell`, then record `events`
/// (the outcome, then the stream's end).
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    /// In the language its stream's `language` parameter named (the booking's details
    /// are not at hand); English when it named none the agent speaks.
    pub farewell: Farewell,
    pub events: [CallEvent; 2],
}

/// A stream admitted and then refused, before any conversation; `language` is the
/// booking's tag as the stream's parameters carried it.
pub fn refused(stream_sid: &str, refusal: Refusal, language: Option<&str>) -> Ending {
    let reason = refusal.reason();
    let note = no_decision_note(reason).unwrap_or_default();
    let outcome = Outcome::without_decision(OutcomeResult::NoDecision, note);
    Ending {
        farewell: sessionless_farewell(reason, language),
        events: [
            event(stream_sid, EventSlot::RefusedOutcome, CallEventKind::Outcome { outcome, at_ms: 0 }),
            event(
                stream_sid,
                EventSlot::RefusedEnd,
                CallEventKind::StreamEnded { reason, stats: CallStats::default() },
            ),
        ],
    }
}

/// A stream whose worker died mid-call, finished from the transcript it left: the
/// outcome read from it, dated at its last line; `language` as for [`refused`].
pub fn orphaned(stream_sid: &str, transcript: &[TranscriptLine], language: Option<&str>) -> Ending {
    let reason = EndReason::WorkerLost;
    let outcome = closing_outcome(reason, transcript);
    let at_ms = transcript.last().map_or(0, |line| line.at_ms);
    Ending {
        farewell: sessionless_farewell(reason, language),
        events: [
            event(stream_sid, EventSlot::OrphanOutcome, CallEventKind::Outcome { outcome, at_ms }),
            event(stream_sid, EventSlot::OrphanEnd, CallEventKind::StreamEnded { reason, stats: CallStats::default() }),
        ],
    }
}

/// The outcome read from the transcript when the agent reported none, noting why the
/// call ended if that left nothing settled.
pub fn closing_outcome(reason: EndReason, transcript: &[TranscriptLine]) -> Outcome {
    let mut outcome = confirmation::fallback_outcome(transcript);
    if outcome.result == OutcomeResult::NoDecision {
        if let Some(note) = no_decision_note(reason) {
            outcome.notes = Some(note.to_owned());
        }
    }
    outcome
}

/// Whether this worker hangs up a call ending for `reason`, and what it says first,
/// in `language` (the booking's `tag` picks the regional voice): `None` when the call
/// is already gone or belongs to another stream.
pub fn hang_up(reason: EndReason, language: Language, tag: Option<&str>) -> Option<Option<Farewell>> {
    match reason {
        EndReason::CallerHungUp | EndReason::Superseded => None,
        _ => Some(farewell(reason, language, tag)),
    }
}

fn farewell(reason: EndReason, language: Language, tag: Option<&str>) -> Option<Farewell> {
    language
        .farewell(reason)
        .map(|text| Farewell { text: text.to_owned(), locale: language.say_locale(tag).to_owned() })
}

/// The farewell for an ending without a live session, in the language `tag` names
/// (English for none, or one the agent does not speak).
fn sessionless_farewell(reason: EndReason, tag: Option<&str>) -> Farewell {
    let language = tag.and_then(|tag| Language::parse(tag).ok()).unwrap_or_default();
    farewell(reason, language, tag)
        .unwrap_or_else(|| Farewell { text: String::new(), locale: language.say_locale(tag).to_owned() })
}

/// Why nothing was settled, when the ending itself is the reason.
pub fn no_decision_note(reason: EndReason) -> Option<&'static str> {
    match reason {
        EndReason::ModelUnavailable => Some("the voice model became unavailable before the booking was settled"),
        EndReason::WorkerLost => Some("the media worker carrying the call stopped before the booking was settled"),
        EndReason::AtCapacity => Some("all media workers were busy"),
        EndReason::ContextUnavailable => Some("the call's details could not be loaded"),
        EndReason::AgentHungUp
        | EndReason::MaxDuration
        | EndReason::Silence
        | EndReason::Shutdown
        | EndReason::CallerHungUp
        | EndReason::Superseded => None,
    }
}

/// The live session's own endings.
impl CallSession {
    /// After `end_call`: hang up once the goodbye has played and the response that
    /// asked for it is done (its usage counted); the deadline ends the wait regardless.
    pub(super) fn hang_up_when_done(&mut self, now: Instant) {
        if self.end_call_requested && self.marks.is_empty() && self.ending_response.is_none() {
            self.finish(EndReason::AgentHungUp, now);
        }
    }

    /// Ends the live session for `reason`: the hang-up (with its farewell) if the call
    /// is still ours, the agent's held lines, the outcome checked again or read from the
    /// transcript, `stream_ended` with the stream's figures, then nothing more.
    pub(super) fn finish(&mut self, reason: EndReason, now: Instant) {
        if self.phase == Phase::Ended {
            return;
        }
        if let Some(farewell) = hang_up(reason, self.language(), self.params.language.as_deref()) {
            self.outputs.push_back(Output::HangUp { farewell });
        }
        for item in self.held_lines.iter().map(|l| l.item_id.clone()).collect::<Vec<_>>() {
            self.release_line(&item, None);
        }
        // The read-back and the host's answer often come after `report_outcome`: check the
        // code again against the whole conversation, and record it if that changes.
        if let Some((given, recorded, at_ms)) = self.agent_outcome.take().filter(|_| reason != EndReason::Superseded) {
            let outcome = confirmation::verify(given, &self.transcript);
            if outcome != recorded {
                let at_ms = self.at_ms(now).max(at_ms + 1);
                self.report(CallEventKind::Outcome { outcome, at_ms });
            }
        }
        if !self.outcome_reported && reason != EndReason::Superseded {
            let outcome = closing_outcome(reason, &self.transcript);
            self.outcome_reported = true;
            let at_ms = self.at_ms(now);
            self.report(CallEventKind::Outcome { outcome, at_ms });
        }
        let stats = self.final_stats();
        self.report(CallEventKind::StreamEnded { reason, stats });
        self.outputs.push_back(Output::CloseOpenAi);
        self.outputs.push_back(Output::Finished);
        self.phase = Phase::Ended;
        self.openai_ready = false;
        self.timers.stop_all();
    }

    /// The stream's figures with the audio each way, the models and the cost estimate.
    fn final_stats(&mut self) -> CallStats {
        let mut stats = std::mem::take(&mut self.stats);
        let settings = &self.params.settings;
        // Twilio's audio is 8 kHz mu-law: 8 bytes a millisecond.
        stats.audio_in_ms = self.audio_in_bytes / 8;
        stats.audio_out_ms = self.audio_out_bytes / settings.audio_mode.bytes_per_ms();
        stats.model = Some(settings.model.clone());
        stats.transcription_model = Some(settings.transcription_model.clone());
        stats.estimated_cost_micro_usd = settings.pricing.estimate(&stats.usage, stats.transcribed_ms);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Speaker;

    #[test]
    fn event_ids_stay_what_the_edge_already_stored() {
        let ids = |ending: &Ending| ending.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&refused("MZ1", Refusal::AtCapacity, None)), ["MZ1-refused-0", "MZ1-refused-1"]);
        assert_eq!(ids(&orphaned("MZ1", &[], None)), ["MZ1-orphan-outcome", "MZ1-orphan-ended"]);
        assert_eq!(
            event("MZ1", EventSlot::Live(7), CallEventKind::StreamStarted { stream_sid: "MZ1".into() }).id,
            "MZ1-7"
        );
    }

    #[test]
    fn a_sessionless_farewell_is_in_the_language_the_stream_named() {
        let refused_es = refused("MZ1", Refusal::AtCapacity, Some("es-MX")).farewell;
        assert_eq!(refused_es.text, "Lo siento, ahora no podemos atender esta llamada. Adiós.");
        assert_eq!(refused_es.locale, "es-MX");
        let orphaned_de = orphaned("MZ1", &[], Some("de")).farewell;
        assert_eq!(orphaned_de.locale, "de-DE");
        assert!(orphaned_de.text.contains("Verbindung"), "{}", orphaned_de.text);
        // A tag the agent does not speak (or junk on the wire) falls back to English.
        let unknown = refused("MZ1", Refusal::AtCapacity, Some("ja-JP")).farewell;
        assert_eq!(
            (unknown.text.as_str(), unknown.locale.as_str()),
            ("Sorry, we can't take this call right now. Goodbye.", "en-US")
        );
    }

    #[test]
    fn a_refusal_says_why_and_records_no_decision_with_its_reason() {
        let ending = refused("MZ1", Refusal::ContextUnavailable, None);
        assert_eq!(ending.farewell.text, "Sorry, we're having technical trouble. Goodbye.");
        assert_eq!(ending.farewell.locale, "en-US");
        match &ending.events[0].kind {
            CallEventKind::Outcome { outcome, at_ms: 0 } => {
                assert_eq!(outcome.result, OutcomeResult::NoDecision);
                assert_eq!(outcome.notes.as_deref(), Some("the call's details could not be loaded"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ending.events[1].kind,
            CallEventKind::StreamEnded { reason: EndReason::ContextUnavailable, .. }
        ));
    }

    #[test]
    fn an_orphan_is_settled_from_its_transcript_at_its_last_line() {
        let line = |speaker, text: &str, at_ms| TranscriptLine { speaker, text: text.into(), at_ms };
        let transcript = [line(Speaker::Restaurant, "Sorry, we're fully booked tonight.", 4_200)];
        let ending = orphaned("MZ1", &transcript, None);
        match &ending.events[0].kind {
            CallEventKind::Outcome { outcome, at_ms } => {
                assert_eq!(outcome.result, OutcomeResult::Declined);
                assert_eq!(*at_ms, 4_200);
            }
            other => panic!("{other:?}"),
        }
        let silent = orphaned("MZ1", &[], None);
        match &silent.events[0].kind {
            CallEventKind::Outcome { outcome, .. } => assert_eq!(
                outcome.notes.as_deref(),
                Some("the media worker carrying the call stopped before the booking was settled")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_a_call_still_ours_is_hung_up() {
        let en = |reason| hang_up(reason, Language::En, None);
        assert_eq!(en(EndReason::Silence), Some(None));
        let shutdown = en(EndReason::Shutdown).flatten().map(|f| (f.text, f.locale));
        assert_eq!(shutdown, Some(("I'm sorry, I have to end the call now. Goodbye.".into(), "en-US".into())));
        assert_eq!(en(EndReason::CallerHungUp), None);
        assert_eq!(en(EndReason::Superseded), None);
    }

    #[test]
    fn a_calls_farewell_is_in_its_language_and_regional_voice() {
        let farewell = hang_up(EndReason::ModelUnavailable, Language::Es, Some("es-MX")).flatten();
        let farewell = farewell.map(|f| (f.text, f.locale));
        assert_eq!(
            farewell,
            Some((
                "Lo siento, tengo un problema técnico y debo terminar la llamada. Volveremos a llamar. Adiós.".into(),
                "es-MX".into()
            ))
        );
    }
}
