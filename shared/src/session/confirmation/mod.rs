//! The confirmation code: read from the conversation and checked against what the
//! agent reported. A wrong code is worse than none, so the reader gives up whenever
//! the words do not settle on one code.
//!
//! | module | job |
//! |---|---|
//! | `tokens` | transcript text → words, stops, commas, times, phone numbers |
//! | `words` | number words, NATO letters, triggers, fillers, corrections (en, es, fr, de, it) |
//! | `reader` | runs of code characters, triggers and answers, corrections, the host's code |
//! | `safety` | last checks line by line: a code cut short, a final "oh", "there's no confirmation number", a read-back corrected by part and whole |
//!
//! [`verify`] gives every reported code a [`CodeVerification`]; [`fallback_outcome`] is
//! the outcome when the agent reported none.

mod reader;
mod safety;
mod tokens;
mod words;

use crate::call::TranscriptLine;
use crate::events::{CodeVerification, Outcome, OutcomeResult, Speaker};
use reader::{asks_for_code, runs, turns, Run};
use tokens::Tok;

/// The code the host gave in this conversation, or `None` if it gave none or the
/// conversation does not settle on one.
pub fn host_code<'a>(lines: impl IntoIterator<Item = (Speaker, &'a str)>) -> Option<String> {
    let lines: Vec<(Speaker, &str)> = lines.into_iter().collect();
    heard_code(&lines)
}

/// The reader's code over the joined turns, then the line-by-line safety checks.
fn heard_code(lines: &[(Speaker, &str)]) -> Option<String> {
    let code = reader::host_code(&turns(lines.iter().copied()))?;
    safety::settle(lines, &line_tokens(lines), code)
}

/// Each line's tokens, before turns are joined: what the safety checks read.
fn line_tokens(lines: &[(Speaker, &str)]) -> Vec<(Speaker, Vec<Tok>)> {
    lines.iter().map(|(speaker, text)| (*speaker, tokens::tokenize(text))).collect()
}

/// The code in one host utterance read on its own.
pub fn extract(text: &str) -> Option<String> {
    host_code([(Speaker::Restaurant, text)])
}

fn transcript_turns(transcript: &[TranscriptLine]) -> Vec<(Speaker, Vec<Tok>)> {
    turns(transcript.iter().map(|l| (l.speaker, l.text.as_str())))
}

/// Whether a host reply accepts what the agent just read back: "yes, that's right".
fn affirms(reply: &[Tok], code: &str) -> bool {
    reader::accepts(reply, code)
}

/// Whether the host's own words hold a code as long as `code` but different: then a
/// "yes" to the agent's read-back does not settle it.
fn host_said_other(turns: &[(Speaker, Vec<Tok>)], code: &str) -> bool {
    turns
        .iter()
        .filter(|(speaker, _)| *speaker == Speaker::Restaurant)
        .flat_map(|(_, toks)| runs(toks))
        .any(|r| r.code != code && r.code.len() == code.len())
}

/// The last code the agent read back and the host accepted; with `only`, that code.
/// Never one the host's own words contradict.
fn read_back_confirmed(turns: &[(Speaker, Vec<Tok>)], only: Option<&str>) -> Option<String> {
    let mut found = None;
    for (k, (speaker, toks)) in turns.iter().enumerate() {
        if *speaker != Speaker::Agent {
            continue;
        }
        let Some((Speaker::Restaurant, reply)) = turns.get(k + 1) else {
            continue;
        };
        let candidates: Vec<Run> = runs(toks);
        let chosen = match only {
            Some(code) => candidates.into_iter().find(|r| r.code == code),
            // Without a reported code, only a read-back of a code, not "seven thirty?".
            None if asks_for_code(toks, true) => {
                candidates.into_iter().rfind(|r| r.code.chars().any(|c| c.is_ascii_digit()) && r.code.len() >= 4)
            }
            None => None,
        };
        if let Some(run) = chosen.filter(|r| affirms(reply, &r.code)) {
            found = Some(run.code);
        }
    }
    found.filter(|code| !host_said_other(turns, code))
}

/// The outcome with its code checked against the transcript: the host's own words
/// (`heard`), a read-back the host confirmed (`read_back_confirmed`), a different code
/// from the host (`mismatch`, with `heard_code`), or `unverifiable`. With no code
/// reported, the code the host gave (or confirmed) is taken, with its state.
pub fn verify(mut outcome: Outcome, transcript: &[TranscriptLine]) -> Outcome {
    let turns = transcript_turns(transcript);
    let lines: Vec<(Speaker, &str)> = transcript.iter().map(|l| (l.speaker, l.text.as_str())).collect();
    let heard = heard_code(&lines);
    // A read-back the host accepted goes through the same no-code and local-phone checks
    // as the host's own words.
    let line_toks = line_tokens(&lines);
    let read_back = |only: Option<&str>| {
        read_back_confirmed(&turns, only).filter(|code| !safety::no_code_or_local_phone(&line_toks, code))
    };
    outcome.heard_code = None;
    outcome.code_verification = None;
    match outcome.confirmation_number.clone() {
        Some(code) => {
            let state = match heard {
                Some(heard) if heard == code => CodeVerification::Heard,
                Some(heard) => {
                    outcome.heard_code = Some(heard);
                    CodeVerification::Mismatch
                }
                None if read_back(Some(&code)).is_some() => CodeVerification::ReadBackConfirmed,
                None => CodeVerification::Unverifiable,
            };
            outcome.code_verification = Some(state);
        }
        // A voicemail or a refusal has no code, whatever was said.
        None if matches!(outcome.result, OutcomeResult::Voicemail | OutcomeResult::Declined) => {}
        None => {
            if let Some(code) = heard {
                outcome.confirmation_number = Some(code);
                outcome.code_verification = Some(CodeVerification::Heard);
            } else if let Some(code) = read_back(None) {
                outcome.confirmation_number = Some(code);
                outcome.code_verification = Some(CodeVerification::ReadBackConfirmed);
            }
        }
    }
    outcome
}

const DECLINE_PHRASES: [&str; 9] = [
    "fully booked",
    "no availability",
    "no tables",
    "we're full",
    "we are full",
    "can't accommodate",
    "cannot accommodate",
    "we're closed",
    "we are closed",
];
const VOICEMAIL_PHRASES: [&str; 5] =
    ["leave a message", "after the tone", "after the beep", "not available to take your call", "voicemail"];

/// The outcome read from the transcript alone, when the agent reported none.
pub fn fallback_outcome(transcript: &[TranscriptLine]) -> Outcome {
    let note = "the agent reported no outcome; this was read from the transcript";
    let coded = verify(Outcome::without_decision(OutcomeResult::NoDecision, note), transcript);
    if coded.confirmation_number.is_some() {
        return Outcome { result: OutcomeResult::Confirmed, ..coded };
    }
    let restaurant: String = transcript
        .iter()
        .filter(|l| l.speaker == Speaker::Restaurant)
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let result = if DECLINE_PHRASES.iter().any(|p| restaurant.contains(p)) {
        OutcomeResult::Declined
    } else if VOICEMAIL_PHRASES.iter().any(|p| restaurant.contains(p)) {
        OutcomeResult::Voicemail
    } else {
        OutcomeResult::NoDecision
    };
    Outcome::without_decision(result, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(speaker: Speaker, text: &str, at_ms: u64) -> TranscriptLine {
        TranscriptLine { speaker, text: text.into(), at_ms }
    }

    fn reported(code: Option<&str>) -> Outcome {
        Outcome {
            confirmation_number: code.map(str::to_owned),
            ..Outcome::without_decision(OutcomeResult::Confirmed, "booked")
        }
    }

    #[test]
    fn reads_spelled_phonetic_and_compact_codes() {
        let cases = [
            ("Your confirmation number is A as in apple, seven, three, X.", Some("A73X")),
            ("Confirmation code: bravo seven seven two.", Some("B772")),
            ("Your reference is A-7-X-3, see you then.", Some("A7X3")),
            ("Booking number 4 8 2 1.", Some("4821")),
            ("It's confirmation A7X3.", Some("A7X3")),
            ("The confirmation number is double seven three, Q for queen.", Some("773Q")),
            ("your confirmation is oh four niner", Some("049")),
            ("Reservation number is X-ray, Yankee, 5, 5.", Some("XY55")),
            ("Confirmation is under the name Ada.", None),
            ("We'll see you at seven thirty.", None),
            ("Confirmation number is 7.", None),
            ("First confirmation is 111, sorry, the confirmation number is 222.", Some("222")),
        ];
        for (text, expected) in cases {
            assert_eq!(extract(text).as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn fallback_takes_the_hosts_code_not_an_unconfirmed_read_back() {
        let transcript = [
            line(Speaker::Agent, "I'd like a table for four.", 0),
            line(Speaker::Restaurant, "Sure, your confirmation number is K as in kilo, 9, 1.", 1000),
            line(Speaker::Agent, "So that's confirmation K 9 7?", 2000),
        ];
        let outcome = fallback_outcome(&transcript);
        assert_eq!(outcome.result, OutcomeResult::Confirmed);
        assert_eq!(outcome.confirmation_number.as_deref(), Some("K91"));
        assert_eq!(outcome.code_verification, Some(CodeVerification::Heard));
    }

    #[test]
    fn fallback_recognises_declines_and_voicemail() {
        let full = [line(Speaker::Restaurant, "Sorry, we're fully booked that night.", 0)];
        assert_eq!(fallback_outcome(&full).result, OutcomeResult::Declined);
        let vm = [line(Speaker::Restaurant, "Please leave a message after the tone.", 0)];
        assert_eq!(fallback_outcome(&vm).result, OutcomeResult::Voicemail);
        assert_eq!(fallback_outcome(&[]).result, OutcomeResult::NoDecision);
        assert_eq!(fallback_outcome(&[]).code_verification, None);
    }

    #[test]
    fn a_code_the_host_said_is_heard() {
        let transcript = [line(Speaker::Restaurant, "Your confirmation number is 4 4 1 2.", 0)];
        let outcome = verify(reported(Some("4412")), &transcript);
        assert_eq!(outcome.code_verification, Some(CodeVerification::Heard));
        assert_eq!(outcome.heard_code, None);
    }

    #[test]
    fn a_different_code_from_the_host_is_a_mismatch_showing_both() {
        let transcript = [line(Speaker::Restaurant, "Your confirmation number is 4 4 1 2.", 0)];
        let outcome = verify(reported(Some("4413")), &transcript);
        assert_eq!(outcome.code_verification, Some(CodeVerification::Mismatch));
        assert_eq!(outcome.confirmation_number.as_deref(), Some("4413"));
        assert_eq!(outcome.heard_code.as_deref(), Some("4412"));
    }

    #[test]
    fn a_read_back_the_host_confirmed() {
        // The transcription garbled the host's code; the read-back and the "yes" carry it.
        let transcript = [
            line(Speaker::Restaurant, "Your confirmation is, um, for fur K.", 0),
            line(Speaker::Agent, "So the confirmation is K 9 1 4?", 1000),
            line(Speaker::Restaurant, "Yes, that's right.", 2000),
        ];
        let outcome = verify(reported(Some("K914")), &transcript);
        assert_eq!(outcome.code_verification, Some(CodeVerification::ReadBackConfirmed));
        let outcome = verify(reported(None), &transcript);
        assert_eq!(outcome.confirmation_number.as_deref(), Some("K914"));
        assert_eq!(outcome.code_verification, Some(CodeVerification::ReadBackConfirmed));
        let mumbled = [
            line(Speaker::Agent, "So the confirmation is K 9 1 4?", 1000),
            line(Speaker::Restaurant, "Uh-huh, see you tonight.", 2000),
        ];
        assert_eq!(
            verify(reported(Some("K914")), &mumbled).code_verification,
            Some(CodeVerification::ReadBackConfirmed)
        );
        let not_an_answer = [
            line(Speaker::Agent, "So the confirmation is K 9 1 4?", 1000),
            line(Speaker::Restaurant, "That's for the patio table.", 2000),
        ];
        assert_eq!(
            verify(reported(Some("K914")), &not_an_answer).code_verification,
            Some(CodeVerification::Unverifiable),
            "\"that's\" opens a yes only as \"that's right\""
        );
        let refused =
            [line(Speaker::Agent, "So that's K 9 1 4?", 1000), line(Speaker::Restaurant, "No, not quite.", 2000)];
        assert_eq!(verify(reported(Some("K914")), &refused).code_verification, Some(CodeVerification::Unverifiable));
    }

    #[test]
    fn a_yes_to_a_read_back_the_hosts_words_contradict_confirms_nothing() {
        let transcript = [
            line(Speaker::Restaurant, "Your confirmation is 4 4 1 2.", 0),
            line(Speaker::Agent, "So the confirmation is 4 4 2 1?", 1000),
            line(Speaker::Restaurant, "Yeah.", 2000),
        ];
        assert_eq!(verify(reported(None), &transcript).confirmation_number, None);
        let reported_other = verify(reported(Some("4421")), &transcript);
        assert_eq!(reported_other.code_verification, Some(CodeVerification::Unverifiable));
    }

    #[test]
    fn a_read_back_neither_confirmed_nor_corrected_leaves_the_hosts_own_words() {
        let transcript = [
            line(Speaker::Restaurant, "Your confirmation is 4 4 1 2.", 0),
            line(Speaker::Agent, "4 4 1 2?", 1000),
            line(Speaker::Restaurant, "Hang on, let me check.", 2000),
        ];
        assert_eq!(verify(reported(Some("4412")), &transcript).code_verification, Some(CodeVerification::Heard));
        let refused = [
            line(Speaker::Restaurant, "Your confirmation is 4 4 1 2.", 0),
            line(Speaker::Agent, "4 4 1 2?", 1000),
            line(Speaker::Restaurant, "Hang on, no.", 2000),
        ];
        assert_eq!(verify(reported(Some("4412")), &refused).code_verification, Some(CodeVerification::Unverifiable));
    }

    #[test]
    fn no_reported_code_takes_the_hosts_with_its_state() {
        let transcript = [line(Speaker::Restaurant, "You're booked, confirmation B 4 4 2.", 0)];
        let outcome = verify(reported(None), &transcript);
        assert_eq!(outcome.confirmation_number.as_deref(), Some("B442"));
        assert_eq!(outcome.code_verification, Some(CodeVerification::Heard));
        let declined = Outcome::without_decision(OutcomeResult::Declined, "full");
        assert_eq!(verify(declined, &transcript).confirmation_number, None);
    }

    #[test]
    fn old_records_without_verification_still_read() {
        let old = r#"{"result":"confirmed","confirmation_number":"A73X","confirmed_date":null,"confirmed_time":null,"party_size":4,"notes":null}"#;
        let outcome: Outcome = serde_json::from_str(old).unwrap();
        assert_eq!(outcome.code_verification, None);
        assert_eq!(outcome.heard_code, None);
    }

    #[test]
    fn a_read_back_never_gives_a_code_the_host_said_is_none_or_a_local_phone() {
        // Before the fix: 4412 and 5552100 as ReadBackConfirmed.
        let none = [
            line(Speaker::Restaurant, "Table 4 4 1 2, we don't give confirmation numbers.", 0),
            line(Speaker::Agent, "So the confirmation is 4 4 1 2?", 1000),
            line(Speaker::Restaurant, "Yes.", 2000),
        ];
        assert_eq!(verify(reported(None), &none).confirmation_number, None);
        assert_eq!(verify(reported(Some("4412")), &none).code_verification, Some(CodeVerification::Unverifiable));
        let phone = [
            line(Speaker::Agent, "Could I get your phone number?", 0),
            line(Speaker::Restaurant, "It's 555 2100.", 1000),
            line(Speaker::Agent, "So the confirmation number is 555 2100?", 2000),
            line(Speaker::Restaurant, "Yes.", 3000),
        ];
        assert_eq!(verify(reported(None), &phone).confirmation_number, None);
        assert_eq!(verify(reported(Some("5552100")), &phone).code_verification, Some(CodeVerification::Unverifiable));
    }
}
