//! Reads a confirmation code out of what was said, for when the agent never reported
//! one: "your confirmation number is A as in apple, seven, three, X" → `A73X`.
//! Handles digits and number words, single letters, NATO and "A for apple" spellings,
//! "double"/"triple", and codes said as one word ("A7X3", "A-7-X-3").

use crate::call::TranscriptLine;
use crate::events::{Outcome, OutcomeResult, Speaker};

const MIN_LEN: usize = 3;
const MAX_LEN: usize = 16;
/// Words that may sit between the trigger and the code ("number is", "it's the").
const PREAMBLE: [&str; 12] =
    ["is", "number", "it's", "its", "the", "your", "will", "be", "code", "it", "that's", "reads"];
const FILLER: [&str; 4] = ["dash", "hyphen", "then", "space"];
const NATO: [&str; 28] = [
    "alpha", "alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor",
    "whiskey", "whisky", "xray", "yankee",
];
const DIGIT_WORDS: [(&str, char); 12] = [
    ("zero", '0'),
    ("oh", '0'),
    ("one", '1'),
    ("two", '2'),
    ("three", '3'),
    ("four", '4'),
    ("five", '5'),
    ("six", '6'),
    ("seven", '7'),
    ("eight", '8'),
    ("nine", '9'),
    ("niner", '9'),
];

fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\'')) {
        let word = raw.trim_matches(|c| c == '-' || c == '\'').to_lowercase();
        if word.is_empty() {
            continue;
        }
        // "A-7-X-3" is four characters; "x-ray" stays one word.
        let parts: Vec<&str> = word.split('-').collect();
        if parts.len() > 1 && parts.iter().all(|p| p.chars().count() == 1) {
            out.extend(parts.iter().map(|p| p.to_string()));
        } else {
            out.push(word.replace('-', ""));
        }
    }
    out
}

/// One spoken token as code characters, if it is one.
fn code_chars(token: &str) -> Option<String> {
    if let Some((_, digit)) = DIGIT_WORDS.iter().find(|(word, _)| *word == token) {
        return Some(digit.to_string());
    }
    if NATO.contains(&token) || token == "zulu" {
        return token.chars().next().map(|c| c.to_ascii_uppercase().to_string());
    }
    let alnum = token.chars().all(|c| c.is_ascii_alphanumeric());
    let has_digit = token.chars().any(|c| c.is_ascii_digit());
    if alnum && (token.chars().count() == 1 || has_digit) {
        return Some(token.to_ascii_uppercase());
    }
    None
}

fn is_trigger(tokens: &[String], at: usize) -> bool {
    match tokens[at].as_str() {
        "confirmation" | "reference" | "code" => true,
        "number" => at > 0 && matches!(tokens[at - 1].as_str(), "booking" | "reservation"),
        _ => false,
    }
}

/// The last confirmation code in `text`, if any.
pub fn extract(text: &str) -> Option<String> {
    let tokens = tokens(text);
    let mut found = None;
    for start in (0..tokens.len()).filter(|&i| is_trigger(&tokens, i)) {
        if let Some(code) = read_code(&tokens[start + 1..]) {
            found = Some(code);
        }
    }
    found
}

fn read_code(tokens: &[String]) -> Option<String> {
    let mut code = String::new();
    let mut i = 0;
    while i < tokens.len() && code.is_empty() && PREAMBLE.contains(&tokens[i].as_str()) {
        i += 1;
    }
    while i < tokens.len() && code.len() < MAX_LEN {
        let token = tokens[i].as_str();
        let repeat = match token {
            "double" => 2,
            "triple" => 3,
            _ => 1,
        };
        if repeat > 1 {
            match tokens.get(i + 1).and_then(|t| code_chars(t)) {
                Some(chars) => {
                    code.push_str(&chars.repeat(repeat));
                    i += 2;
                    continue;
                }
                None => break,
            }
        }
        if FILLER.contains(&token) && !code.is_empty() {
            i += 1;
            continue;
        }
        // "A as in apple", "B for boy", "C like cat": skip the example word.
        if !code.is_empty() && matches!(token, "as" | "for" | "like") {
            let skip = if token == "as" && tokens.get(i + 1).map(String::as_str) == Some("in") { 3 } else { 2 };
            i += skip;
            continue;
        }
        match code_chars(token) {
            Some(chars) => code.push_str(&chars),
            None => break,
        }
        i += 1;
    }
    (MIN_LEN..=MAX_LEN).contains(&code.len()).then_some(code)
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
    let said_by = |speaker| transcript.iter().filter(move |l| l.speaker == speaker).map(|l| l.text.as_str());
    let code = said_by(Speaker::Restaurant)
        .rev()
        .find_map(extract)
        .or_else(|| said_by(Speaker::Agent).rev().find_map(extract));
    let restaurant: String = said_by(Speaker::Restaurant).collect::<Vec<_>>().join(" ").to_lowercase();
    let note = "the agent reported no outcome; this was read from the transcript";
    if let Some(code) = code {
        return Outcome {
            confirmation_number: Some(code),
            ..Outcome::without_decision(OutcomeResult::Confirmed, note)
        };
    }
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

    fn line(speaker: Speaker, text: &str, at_ms: u64) -> TranscriptLine {
        TranscriptLine { speaker, text: text.into(), at_ms }
    }

    #[test]
    fn fallback_prefers_the_restaurants_words() {
        let transcript = [
            line(Speaker::Agent, "I'd like a table for four.", 0),
            line(Speaker::Restaurant, "Sure, your confirmation number is K as in kilo, 9, 1.", 1000),
            line(Speaker::Agent, "So that's confirmation K 9 7?", 2000),
        ];
        let outcome = fallback_outcome(&transcript);
        assert_eq!(outcome.result, OutcomeResult::Confirmed);
        assert_eq!(outcome.confirmation_number.as_deref(), Some("K91"));
    }

    #[test]
    fn fallback_recognises_declines_and_voicemail() {
        let full = [line(Speaker::Restaurant, "Sorry, we're fully booked that night.", 0)];
        assert_eq!(fallback_outcome(&full).result, OutcomeResult::Declined);
        let vm = [line(Speaker::Restaurant, "Please leave a message after the tone.", 0)];
        assert_eq!(fallback_outcome(&vm).result, OutcomeResult::Voicemail);
        assert_eq!(fallback_outcome(&[]).result, OutcomeResult::NoDecision);
    }
}
