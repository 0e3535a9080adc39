//! Reads the host's confirmation code out of a conversation.
//!
//! What it promises: a code it gives is one the host said, read the same way each time
//! the host said it, with nothing else the host said that could be the code instead.
//! When that cannot be shown it gives no code, since a miss is better than a wrong code.
//!
//! A code is a run of code characters (digits, number words, letters, NATO words,
//! "A as in apple", "double seven") that follows a trigger ("confirmation number is,
//! uh,") or answers the agent's question about the code. The run ends at a sentence's
//! end, a time, a phone number, a quantity ("2 people", "30 pm") or any other word.
//! Consecutive host utterances are read as one (also across the agent's "mm-hm" or
//! echo, or when the host starts the code over); a correction ("no, sorry, …", and a
//! later "oh wait, it's …") replaces the code and a repeat collapses. A letter the agent
//! echoed wrongly and the host put right ("B as in boy?" / "no, V as in Victor, V, 3 3 1")
//! replaces only that letter; a letter spelled and then said again is one letter.
//!
//! It gives no code when:
//! - two different codes are given and neither takes the other back ("4 4 0 9, or is it
//!   4 4 9 0"), or code characters outside the code are not explained by what they are
//!   (another code's name or "our" before them, a clock time, "per person" or "is our
//!   number" after them, the agent's own digits said back);
//! - where the code starts or ends cannot be told: a time or party size glued on
//!   ("3 9 2 0 1 2 people"), a character or two of code left later in its sentence that
//!   nothing names ("4 4 1 2, okay, 7 7"; "for 2" and "at 8" are named), or a word at
//!   its edge that may be a character ("for 4 1 2", "O 7 7 1", "3 X 9 e.", "bee 4 4 1");
//! - a repeat is cut short or slips ("6 1 9 4, 6 1 9", "4 4 1 2 4 4 1 3"), repeats with
//!   no pause at all ("4 4 1 2 4 4 1 2");
//! - the host takes the code back with nothing whole in its place ("…, no wait",
//!   "nein, Moment"), or names it as another code ("that's our zip", "for the garage");
//! - the agent read back another code the length of the host's and the reply does not
//!   say which ("yes", "the second one");
//! - the only digits are a phone number said in groups ("815, 555, 0142");
//! - the trigger is qualified by another noun ("deposit reference", "hold number", "the
//!   number here"), or the replacement after "sorry" is named as something else ("sorry,
//!   the gate code is …") or comes after other digits;
//! - a "no" or an "actually" follows the code with no code after it, in its turn or a
//!   later one ("…, or, sorry, no, I'll call you back"; "Oh wait, don't use that one");
//! - an hour and minutes are glued onto single characters ("4 4 1 2 7 30 Friday"), an
//!   article brings one more character ("and then there's a 5 at the end"), or an answer
//!   with no trigger runs on into a word ("just 4 4 1 2 Market");
//! - a group is said again before the code starts over ("7 2, 7 2, 7 2 1 9"), or a
//!   letter is spelled again away from where it was said ("M 4 4 2 M as in Mary"), or a
//!   tens word comes before a numeral ("twenty 4 1 9": 2419 or 20419?), or a number
//!   counts letters ("Q Q 4, two Qs"), or an article, a street's letter or a group of
//!   digits is glued onto its end ("5 5 2 A table", "6 0 1 9 B Street", "1 2 8 8 1 800",
//!   "4412 2");
//! - what the code opens follows it ("…, punch it in at the side door", "…, that's for
//!   the gate", "…, márquelo en la puerta");
//! - the digits have a phone number's national shape ("91 555 01 83", "612 345 678",
//!   "030 8824 19") or a phone word names them ("…, el teléfono del restaurante");
//! - the host disowns the code in any language, with no code after ("ese no es", "c'est
//!   pas le bon", "das ist die falsche", "è sbagliato", "that's not the right one");
//! - the host puts right a letter the agent echoed, and which of the code's letters it
//!   replaces cannot be told ("D as in David, T as in Tom, 4" / "P?" / "no, B as in boy"),
//!   or a letter is said once more after being spelled and said ("V as in Victor, V V");
//! - a host utterance stops on code characters with no full stop, the agent only says
//!   "go ahead" or "mm-hm", and the host's next turn goes on with characters that cannot
//!   be joined ("Sorry, and then a 5 at the end."): the code read may be cut short.
//!
//! The code it gives then passes the line-by-line checks in `safety`.

use super::tokens::{tokenize, Tok};
use super::words::*;
use crate::events::Speaker;

const MIN_LEN: usize = 3;
const MAX_LEN: usize = 16;
/// Tokens skipped at most between a trigger and its code.
const PREAMBLE_BUDGET: usize = 24;
/// Tokens searched at most after "no, sorry" for the code that replaces one.
const CORRECTION_WINDOW: usize = 16;

/// One code character group and where reading continues.
struct Unit {
    chars: String,
    next: usize,
    numeric: bool,
}

/// A run of code characters over `start..end` tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Run {
    pub code: String,
    pub start: usize,
    pub end: usize,
    /// Where the code ends cannot be told ("3 9 2 0 1 2 people"): never a code.
    pub ambiguous: bool,
}

impl Run {
    pub fn valid(&self) -> bool {
        let len = self.code.chars().count();
        let digits = self.code.chars().filter(char::is_ascii_digit).count();
        // Ten digits and more is a phone number, not a booking code.
        !self.ambiguous && (MIN_LEN..=MAX_LEN).contains(&len) && !(digits == len && len >= 10)
    }
}

fn word(toks: &[Tok], i: usize) -> Option<&str> {
    toks.get(i).and_then(Tok::word)
}

fn in_list(list: &[&str], w: Option<&str>) -> bool {
    w.is_some_and(|w| list.contains(&w))
}

/// A number below 100 starting at `i`: "7", "forty five", "treinta y cinco",
/// "quatre vingt", "soixantedixsept".
fn small_number(toks: &[Tok], i: usize) -> Option<(u32, usize)> {
    let w = word(toks, i)?;
    if !w.is_empty() && w.len() <= 2 && w.chars().all(|c| c.is_ascii_digit()) {
        return w.parse().ok().map(|v| (v, i + 1));
    }
    if let Some(t) = tens(w) {
        // "treinta y cinco", "vingt et un".
        let joined = matches!(word(toks, i + 1), Some("y" | "et" | "e" | "und"));
        let unit_at = if joined { i + 2 } else { i + 1 };
        // "soixante dix sept", "soixante et onze": the French seventies, written apart.
        if w == "soixante" {
            if let Some((v, next)) = french_teen(toks, unit_at) {
                return Some((60 + v, next));
            }
        }
        if let Some(u) = word(toks, unit_at).and_then(digit).filter(|&u| u > 0) {
            return Some((t + u, unit_at + 1));
        }
        return Some((t, i + 1));
    }
    if w == "quatre" && matches!(word(toks, i + 1), Some("vingt" | "vingts")) {
        let after = i + 2;
        if let Some((v, next)) = french_teen(toks, after) {
            return Some((80 + v, next));
        }
        if let Some(v) = word(toks, after).and_then(|w| digit(w).filter(|&d| d > 0)) {
            return Some((80 + v, after + 1));
        }
        return Some((80, after));
    }
    if let Some(teen_value) = french_teen(toks, i) {
        return Some(teen_value);
    }
    teen(w).or_else(|| compound(w)).or_else(|| digit(w).filter(|_| w != "oh")).map(|v| (v, i + 1))
}

/// A French number from 10 to 19 at `i`, written apart or not: "dix sept" is 17, one
/// number, not 10 and 7.
fn french_teen(toks: &[Tok], i: usize) -> Option<(u32, usize)> {
    let w = word(toks, i)?;
    if w == "dix" {
        if let Some(d) = word(toks, i + 1).and_then(digit).filter(|&d| (7..=9).contains(&d)) {
            let french = matches!(word(toks, i + 1), Some("sept" | "huit" | "neuf"));
            return french.then_some((10 + d, i + 2));
        }
    }
    let french_teens =
        ["dix", "onze", "douze", "treize", "quatorze", "quinze", "seize", "dixsept", "dixhuit", "dixneuf"];
    french_teens.contains(&w).then(|| teen(w).map(|v| (v, i + 1))).flatten()
}

/// Whether a bare "mil"/"mille" at `i` is a number: a hundreds word or a small number
/// follows it ("mil doscientos", "mille trois") or a number comes before it. Alone it
/// is the "thousand" of "mil gracias", "mille grazie", "mille mercis".
fn number_beside_thousand(toks: &[Tok], i: usize) -> bool {
    let number_before = i.checked_sub(1).and_then(|k| word(toks, k)).is_some_and(|p| {
        (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) || digit(p).is_some() || below_hundred(p).is_some()
    });
    number_before || word(toks, i + 1).and_then(hundreds_word).is_some() || small_number(toks, i + 1).is_some()
}

/// A number said with "hundred" or "thousand": "fifteen hundred forty five",
/// "two thousand and nineteen", "5 hundred 30", "cuatrocientos quince".
fn large_number(toks: &[Tok], i: usize) -> Option<(u32, usize)> {
    let w = word(toks, i)?;
    let (mut value, mut next) = if let Some(h) = hundreds_word(w) {
        (h, i + 1)
    } else if w == "a" && matches!(word(toks, i + 1), Some("hundred")) {
        (100, i + 2)
    } else if matches!(w, "mil" | "mille") && number_beside_thousand(toks, i) {
        // "mil doscientos cuarenta": a thousand, in Spanish and French.
        (1000, i + 1)
    } else {
        let (v, next) = small_number(toks, i)?;
        match word(toks, next) {
            Some("hundred") => (v * 100, next + 1),
            Some("thousand" | "mil" | "mille" | "mila") => (v * 1000, next + 1),
            _ => return None,
        }
    };
    // "dos mil trescientos diez": the hundreds after the thousands, as one word.
    if value >= 1000 && value % 1000 == 0 {
        if let Some(h) = word(toks, next).and_then(hundreds_word) {
            value += h;
            next += 1;
        }
    }
    if value >= 1000 && value % 1000 == 0 {
        // "two thousand [and] nineteen", "one thousand one hundred".
        let at = if word(toks, next) == Some("and") { next + 1 } else { next };
        if let Some((v, after)) = small_number(toks, at) {
            match word(toks, after) {
                Some("hundred") => {
                    value += v * 100;
                    next = after + 1;
                }
                _ => return Some((value + v, after)),
            }
        }
    }
    // "seven hundred oh five".
    if value % 100 == 0 && matches!(word(toks, next), Some("oh" | "o")) {
        if let Some(d) = word(toks, next + 1).and_then(digit).filter(|_| word(toks, next + 1) != Some("oh")) {
            return Some((value + d, next + 2));
        }
    }
    let at = if matches!(word(toks, next), Some("and" | "y" | "e")) { next + 1 } else { next };
    if let Some((v, after)) = small_number(toks, at).filter(|&(v, _)| v < 100) {
        value += v;
        next = after;
    }
    Some((value, next))
}

fn is_ordinal_or_clock(w: &str) -> bool {
    let letters: String = w.chars().skip_while(char::is_ascii_digit).collect();
    w.starts_with(|c: char| c.is_ascii_digit())
        && matches!(letters.as_str(), "st" | "nd" | "rd" | "th" | "pm" | "am" | "h" | "er" | "e" | "eme" | "o" | "a")
}

/// Whether a code character of any kind (ambiguous letters aside) starts at `i`.
fn plain_unit_follows(toks: &[Tok], mut i: usize) -> bool {
    while matches!(toks.get(i), Some(Tok::Comma)) || in_list(CODE_FILLERS, word(toks, i)) {
        i += 1;
    }
    let Some(w) = word(toks, i) else {
        return false;
    };
    (w.len() == 1 && !AMBIGUOUS_LETTERS.contains(&w))
        || w.chars().all(|c| c.is_ascii_digit())
        || digit(w).is_some()
        || NATO.contains(&w)
        || DOUBLE.contains(&w)
        || TRIPLE.contains(&w)
        || small_number(toks, i).is_some()
        || spelled_example(toks, i + 1, w.chars().next().unwrap_or(' ')).is_some()
}

/// "A as in apple", "B for boy", "C, wie Cäsar": the index after the example, if one follows.
fn spelled_example(toks: &[Tok], mut i: usize, letter: char) -> Option<usize> {
    while matches!(toks.get(i), Some(Tok::Comma)) {
        i += 1;
    }
    let joiner = word(toks, i)?;
    if !SPELL_JOINERS.contains(&joiner) {
        return None;
    }
    let mut at = if joiner == "as" && word(toks, i + 1) == Some("in") { i + 2 } else { i + 1 };
    while matches!(toks.get(at), Some(Tok::Comma)) || in_list(CODE_FILLERS, word(toks, at)) {
        at += 1;
    }
    let example = word(toks, at)?;
    let starts_alike = example.starts_with(letter) && example.len() > 1;
    let alphabetic = example.chars().all(char::is_alphabetic);
    (starts_alike && alphabetic).then_some(at + 1)
}

/// The characters one spoken unit at `i` gives ("trente-trois" is "33", "3" is "3") and
/// where the unit ends.
pub(super) fn spoken_unit(toks: &[Tok], i: usize) -> Option<(String, usize)> {
    unit_at(toks, i, false).map(|u| (u.chars, u.next))
}

fn unit_at(toks: &[Tok], i: usize, in_run: bool) -> Option<Unit> {
    if let Some(Tok::Letters(letters)) = toks.get(i) {
        // A capital "A as in apple".
        if let Some(next) =
            letters.chars().next().filter(|_| letters.len() == 1).and_then(|l| spelled_example(toks, i + 1, l))
        {
            return Some(Unit { chars: letters.to_ascii_uppercase(), next, numeric: false });
        }
        // "PQ 7 7 2": capitals run together are letters only next to the rest of a code.
        return (in_run || plain_unit_follows(toks, i + 1)).then(|| Unit {
            chars: letters.to_ascii_uppercase(),
            next: i + 1,
            numeric: false,
        });
    }
    let w = word(toks, i)?;
    // "capital D capital F 6 1 0", "lowercase x": the letter, marked.
    if matches!(w, "capital" | "uppercase" | "lowercase") {
        let letter = word(toks, i + 1).filter(|l| l.len() == 1 && l.chars().all(|c| c.is_ascii_alphabetic()))?;
        return Some(Unit { chars: letter.to_ascii_uppercase(), next: i + 2, numeric: false });
    }
    // "7 O 8": a transcribed "oh" between digits.
    let numeric_before =
        i > 0 && word(toks, i - 1).is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()) || digit(p).is_some());
    if w == "o" && in_run && numeric_before && plain_unit_follows(toks, i + 1) {
        return Some(Unit { chars: "0".into(), next: i + 1, numeric: true });
    }
    // "one second", "one moment": not a digit.
    if matches!(w, "one" | "un" | "uno" | "ein" | "eine") && in_list(QUANTITY, word(toks, i + 1)) && !in_run {
        return None;
    }
    // "the wrong one", "that one": a pronoun.
    if w == "one" && in_list(ONE_AS_PRONOUN, word(toks, i.wrapping_sub(1))) {
        return None;
    }
    // "I missed one, 2 4 6 8": after a word the reader has no use for, "one" is a
    // pronoun, not a digit.
    let unknown_before = i.checked_sub(1).and_then(|k| word(toks, k)).is_some_and(|p| {
        p.len() > 1
            && p.chars().all(char::is_alphabetic)
            && !known_word(p)
            && below_hundred(p).is_none()
            && !NATO.contains(&p)
    });
    if w == "one" && !in_run && unknown_before {
        return None;
    }
    if let Some((value, next)) = large_number(toks, i) {
        return Some(Unit { chars: value.to_string(), next, numeric: true });
    }
    if w.chars().all(|c| c.is_ascii_digit()) {
        return Some(Unit { chars: w.to_owned(), next: i + 1, numeric: true });
    }
    if let Some((value, next)) = small_number(toks, i) {
        return Some(Unit { chars: value.to_string(), next, numeric: true });
    }
    if w == "oh" {
        // "Oh," opening a sentence is an exclamation; inside a code, or before more of
        // one, it is zero.
        let sentence_start = i == 0 || matches!(toks.get(i - 1), Some(Tok::Stop));
        if !in_run && sentence_start && toks.get(i + 1) == Some(&Tok::Comma) {
            return None;
        }
        let ends = matches!(toks.get(i + 1), Some(Tok::Stop) | None);
        return (plain_unit_follows(toks, i + 1) || (in_run && ends)).then(|| Unit {
            chars: "0".into(),
            next: i + 1,
            numeric: true,
        });
    }
    if NATO.contains(&w) {
        let letter = w.chars().next()?.to_ascii_uppercase();
        return Some(Unit { chars: letter.to_string(), next: i + 1, numeric: false });
    }
    let mut chars = w.chars();
    if let (Some(letter), None) = (chars.next(), chars.next()) {
        if !letter.is_ascii_alphabetic() {
            return None;
        }
        if let Some(next) = spelled_example(toks, i + 1, letter) {
            return Some(Unit { chars: letter.to_ascii_uppercase().to_string(), next, numeric: false });
        }
        if AMBIGUOUS_LETTERS.contains(&w) && !(LETTER_IF_FOLLOWED.contains(&w) && plain_unit_follows(toks, i + 1)) {
            return None;
        }
        // A lower-case "a" opening a run is the article ("it's a 7 7 3"); the letter is
        // written "A".
        if w == "a" && !in_run {
            return None;
        }
        return Some(Unit { chars: letter.to_ascii_uppercase().to_string(), next: i + 1, numeric: false });
    }
    let alnum = w.chars().all(|c| c.is_ascii_alphanumeric());
    let has_digit = w.chars().any(|c| c.is_ascii_digit());
    let has_letter = w.chars().any(|c| c.is_ascii_alphabetic());
    if alnum && has_digit && has_letter && w.len() <= MAX_LEN && !is_ordinal_or_clock(w) {
        // "4o77", "4-O-7-7": an "oh" between digits is a zero.
        let chars: Vec<char> = w.chars().collect();
        let code: String = chars
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                let digit_at = |at: Option<usize>| at.and_then(|a| chars.get(a)).is_some_and(char::is_ascii_digit);
                if c == 'o' && digit_at(k.checked_sub(1)) && digit_at(Some(k + 1)) {
                    '0'
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        return Some(Unit { chars: code, next: i + 1, numeric: false });
    }
    None
}

/// Words before "one" that make it a pronoun.
const ONE_AS_PRONOUN: &[&str] = &[
    "the", "that", "this", "wrong", "right", "last", "first", "other", "which", "each", "another", "new", "old",
    "correct", "same", "second", "third", "latter", "former",
];

/// Words that join the last character of a code: "four, eight, eight and one".
const LAST_JOINERS: &[&str] = &["and", "y", "et", "und", "e"];
const ENGLISH_DIGITS: &[&str] =
    &["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "niner"];

/// The run of code characters starting exactly at `start`, if one does.
pub(super) fn run_at(toks: &[Tok], start: usize) -> Option<Run> {
    let mut units: Vec<Unit> = Vec::new();
    // Unit indices where a comma came before: the code's spoken groups.
    let mut group_starts: Vec<usize> = Vec::new();
    // Unit indices after any pause (a comma or an "uh"): where a repeat may start.
    let mut pauses: Vec<usize> = Vec::new();
    let mut i = start;
    let mut ambiguous = false;
    let mut last_spelled = false;
    let mut respelled = false;
    let mut said_after_spelling = false;
    loop {
        let mut j = i;
        let mut separated = false;
        let mut paused = false;
        if !units.is_empty() {
            while matches!(toks.get(j), Some(Tok::Comma)) || in_list(CODE_FILLERS, word(toks, j)) {
                separated |= toks.get(j) == Some(&Tok::Comma);
                paused = true;
                j += 1;
            }
            // "2, B, that's B as in boy, 6": the letter said again, spelled.
            if matches!(word(toks, j), Some("that's" | "thats")) {
                if let Some(last) = units.last().filter(|u| !u.numeric && u.chars.len() == 1) {
                    if let Some(again) = unit_at(toks, j + 1, true).filter(|u| u.chars == last.chars) {
                        i = again.next;
                        continue;
                    }
                }
            }
            // "1 4, and then 7 7": the code goes on.
            if in_list(&["and", "y", "et", "und"], word(toks, j))
                && in_list(&["then", "luego", "puis", "dann", "poi"], word(toks, j + 1))
                && unit_at(toks, j + 2, true).is_some()
            {
                j += 2;
            }
            // "…, and F": a last character after "and".
            if matches!(toks.get(j), Some(Tok::Word(w)) if LAST_JOINERS.contains(&w.as_str())) {
                // "…, 7, and... 3.": the last character may come after a pause.
                let mut k = j + 1;
                while matches!(toks.get(k), Some(Tok::Stop | Tok::Comma)) {
                    k += 1;
                }
                match unit_at(toks, k, true) {
                    Some(u) if matches!(toks.get(u.next), Some(Tok::Stop) | None) => {
                        // "… 1 2 e 7": "and" in Italian, or the letter E? Only a number
                        // word in the joiner's own language ("e sette", "y uno") tells.
                        let lone_letter = word(toks, j).is_some_and(|w| w.len() == 1);
                        let foreign_word = word(toks, k).is_some_and(|w| {
                            digit(w).is_some() && !ENGLISH_DIGITS.contains(&w) && !w.starts_with(char::is_numeric)
                        });
                        if lone_letter && !foreign_word {
                            ambiguous = true;
                            break;
                        }
                        j = k;
                    }
                    _ => break,
                }
            }
            // "Two. Five. Four. One.": one character a sentence.
            if toks.get(j) == Some(&Tok::Stop) && units.iter().all(|u| u.chars.len() == 1) {
                // A letter spelled after the stop ("2. R like Robert.") clarifies one
                // already said; it does not add to the code.
                let lone = unit_at(toks, j + 1, true).filter(|u| {
                    u.chars.len() == 1
                        && u.next == j + 2
                        && word(toks, j + 1) != Some("oh")
                        && matches!(toks.get(u.next), Some(Tok::Stop | Tok::Comma) | None)
                });
                if lone.is_some() {
                    j += 1;
                    paused = true;
                }
            }
        }
        // "…4 4 1 2, seven thirty": a clock time, never a code nor part of one.
        if is_clock_words(toks, j) {
            ambiguous |= !separated;
            break;
        }
        let w = word(toks, j);
        // "6 1 2 9 once it saves": a number word that is also an English word counts only
        // beside number words of its own language; next to numerals or English ones,
        // where the code ends cannot be told.
        if in_list(FALSE_FRIENDS, w) && !(foreign_number(toks, j.wrapping_sub(1)) || foreign_number(toks, j + 1)) {
            ambiguous |= !units.is_empty();
            break;
        }
        let unit = if in_list(DOUBLE, w) || in_list(TRIPLE, w) {
            let times = if in_list(DOUBLE, w) { 2 } else { 3 };
            match unit_at(toks, j + 1, true).filter(|u| u.chars.len() == 1) {
                Some(u) => Unit { chars: u.chars.repeat(times), next: u.next, numeric: u.numeric },
                None => break,
            }
        } else {
            match unit_at(toks, j, !units.is_empty()) {
                Some(u) => u,
                None => break,
            }
        };
        // "D, D as in dog": the letter said, then spelled, is one letter (a double one
        // is said "double D" or spelled twice).
        // "Q Q 4, two Qs": a number counting letters is no character of the code.
        // ("es" is the Spanish "is": "El 4 8 2 0 es su número".)
        let counts_letters = unit.numeric
            && word(toks, unit.next).is_some_and(|n| n != "es")
            && word(toks, unit.next).is_some_and(|n| {
                let letter = n.strip_suffix("'s").or_else(|| n.strip_suffix('s'));
                letter.is_some_and(|l| l.len() == 1 && l != "a" && l != "i" && l != "u")
            });
        if counts_letters {
            ambiguous = true;
            break;
        }
        // "5 5 2 A table by the window", "6 0 1 9 B Street": a letter that may be an
        // article or a street's name.
        let next_word = word(toks, unit.next);
        let article = word(toks, j) == Some("a")
            && !units.is_empty()
            && next_word.is_some_and(|n| n.chars().all(char::is_alphabetic))
            && unit_at(toks, unit.next, true).is_none();
        let street_letter = !unit.numeric && unit.chars.len() == 1 && in_list(STREET, next_word);
        // "1 2 8 8 1 800": a group of digits glued onto single characters starts
        // something else (a phone number), or not.
        let glued_group = !units.is_empty()
            && !paused
            && units.iter().all(|u| u.chars.len() == 1)
            && word(toks, j).is_some_and(|g| g.len() >= 3 && g.chars().all(|c| c.is_ascii_digit()));
        if article || street_letter || glued_group {
            ambiguous = true;
            break;
        }
        // "twenty 4 1 9": twenty-four, or twenty and a 4? A tens word before a digit
        // written as a numeral cannot be told.
        let tens_then_numeral = word(toks, j).and_then(tens).is_some()
            && unit.next == j + 1
            && word(toks, unit.next).is_some_and(|n| n.len() == 1 && matches!(n.as_bytes()[0], b'1'..=b'9'));
        ambiguous |= tens_then_numeral;
        let spelled = !unit.numeric && unit.chars.len() == 1 && unit.next > j + 1;
        let same_letter = units.last().is_some_and(|u| !u.numeric && u.chars == unit.chars);
        // "V as in Victor V": the letter spelled, then said again, is one letter; one
        // more "V" after that may be a double or the same letter once more.
        if said_after_spelling && same_letter {
            ambiguous = true;
            break;
        }
        said_after_spelling = false;
        if last_spelled && !spelled && unit.chars.len() == 1 && same_letter {
            said_after_spelling = true;
            last_spelled = false;
            i = unit.next;
            continue;
        }
        if spelled && !last_spelled && units.last().is_some_and(|u| u.chars == unit.chars) {
            units.pop();
            pauses.retain(|&p| p < units.len());
            group_starts.retain(|&g| g < units.len());
        } else if spelled && units.iter().rev().skip(1).any(|u| !u.numeric && u.chars.contains(unit.chars.as_str())) {
            // "M 4 4 2 M as in Mary", "D 4, D as in David, 4 1 2": the letter spelled
            // may be a new one or the earlier one made clear (unless the whole code is
            // being said again: "T R 5, T as in Tom, R as in Robert, 5").
            respelled = true;
        }
        let after = word(toks, unit.next);
        if unit.numeric && (in_list(QUANTITY, after) || in_list(STREET, after)) {
            // "…2, 2 people" ends the code; so does "…2, 7 30 pm" (back to the comma);
            // "3 9 2 0 1 2 people" cannot say where it ended.
            // Only an hour goes back to the comma: "…3 4, 0 4 people" cannot be told.
            if !units.is_empty() && !separated {
                let hour =
                    |u: &Unit| !u.chars.starts_with('0') && u.chars.parse::<u32>().is_ok_and(|h| (1..=23).contains(&h));
                match group_starts.last() {
                    Some(&g) if g > 0 && units.len() == g + 1 && hour(&units[g]) => units.truncate(g),
                    _ => ambiguous = true,
                }
            }
            break;
        }
        if separated {
            group_starts.push(units.len());
        }
        if paused {
            pauses.push(units.len());
        }
        last_spelled = spelled;
        i = unit.next;
        units.push(unit);
    }
    if units.is_empty() {
        return None;
    }
    if glued_minutes(&units, &pauses) {
        ambiguous = true;
    }
    // "is, oh, 4 4 1 2": a hesitation or a zero, which cannot be told.
    if word(toks, start) == Some("oh") && toks.get(start + 1) == Some(&Tok::Comma) {
        ambiguous = true;
    }
    // "91 555 01 83", "612 345 678", "030 8824 19": a phone number's national shape.
    if national_phone(&units) {
        ambiguous = true;
    }
    match phone_in(&units, &group_starts) {
        // "815, 555, 0142": the whole run is a phone number.
        Some(0) => ambiguous = true,
        // "A73X, 510 548 5525": a phone number said after the code.
        Some(g) => {
            units.truncate(g);
            pauses.retain(|&p| p < g);
        }
        None => {}
    }
    let whole: String = units.iter().map(|u| u.chars.as_str()).collect();
    let code = match said_once(&units, &pauses) {
        Some(code) => code,
        None => {
            ambiguous = true;
            whole.clone()
        }
    };
    ambiguous |= respelled && code == whole;
    // "4412 2": a digit glued onto a number of three digits or more leaves the code's
    // end untold (a repeat aside).
    // "triple nine" is one character said three times, not a number.
    let big = |u: &Unit| u.numeric && u.chars.len() >= 3 && u.chars.chars().any(|c| !u.chars.starts_with(c));
    let n = units.len();
    let digit_glued = n >= 2
        && big(&units[n - 2])
        && units[n - 1].numeric
        && units[n - 1].chars.len() == 1
        && !pauses.contains(&(n - 1));
    ambiguous |= digit_glued && code == whole;
    Some(Run { code, start, end: i, ambiguous })
}

/// Whether the word at `i` is a number word of a language other than English
/// ("sette", "cuatro", "zwei"), numerals aside.
fn foreign_number(toks: &[Tok], i: usize) -> bool {
    word(toks, i).is_some_and(|w| {
        let english = ENGLISH_DIGITS.contains(&w) || ENGLISH_TENS_AND_TEENS.contains(&w);
        below_hundred(w).is_some() && !english && !w.starts_with(|c: char| c.is_ascii_digit())
    })
}

const ENGLISH_TENS_AND_TEENS: &[&str] = &[
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fourty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
];

/// Whether a run of single characters ends, with no pause, in an hour and its minutes
/// ("4 4 1 2 7 30 Friday"): the two-digit group breaks the code's rhythm, and where the
/// code ends cannot be told.
fn glued_minutes(units: &[Unit], pauses: &[usize]) -> bool {
    let n = units.len();
    if n < 3 {
        return false;
    }
    let (hour, minutes) = (&units[n - 2], &units[n - 1]);
    let singles = units[..n - 1].iter().all(|u| u.chars.len() == 1);
    let is_hour = hour.numeric && matches!(hour.chars.as_str(), "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9");
    let is_minutes = minutes.numeric && matches!(minutes.chars.as_str(), "00" | "15" | "30" | "45");
    singles && is_hour && is_minutes && !pauses.contains(&(n - 1)) && !pauses.contains(&(n - 2))
}

/// Whether "seven thirty", "eight fifteen", "seven forty-five", "six o'clock" starts at `j`.
fn is_clock_words(toks: &[Tok], j: usize) -> bool {
    clock_words_len(toks, j).is_some()
}

/// How many words the clock time at `j` takes ("seven forty five": 3). "Eleven
/// forty-six" is no clock time a host books: a number pair, as a code is said.
fn clock_words_len(toks: &[Tok], j: usize) -> Option<usize> {
    let hour = word(toks, j).and_then(|w| digit(w).or_else(|| teen(w))).filter(|h| (1..=12).contains(h));
    let is_word = word(toks, j).is_some_and(|w| !w.chars().all(|c| c.is_ascii_digit()));
    if hour.is_none() || !is_word {
        return None;
    }
    match word(toks, j + 1)? {
        // "eleven thirty-two forty-one": a number pair, not half past.
        "thirty" if word(toks, j + 2).and_then(digit).is_some_and(|d| d > 0) && word(toks, j + 2) != Some("oh") => None,
        "fifteen" | "thirty" | "fortyfive" | "oclock" | "o'clock" | "quarter" | "half" => Some(2),
        "forty" => match word(toks, j + 2) {
            Some("five") => Some(3),
            Some(w) if digit(w).is_some() => None,
            _ => Some(2),
        },
        _ => None,
    }
}

/// Where a phone number starts in a run (groups of 3-3-4 or 3-4 digits, or one group
/// of 7 to 11, at its end): 0 when the whole run is one ("815, 555, 0142").
fn phone_in(units: &[Unit], group_starts: &[usize]) -> Option<usize> {
    let mut starts: Vec<usize> = vec![0];
    starts.extend(group_starts.iter().copied().filter(|&g| g > 0 && g < units.len()));
    starts.dedup();
    let groups: Vec<(usize, usize)> =
        starts.iter().enumerate().map(|(k, &g)| (g, starts.get(k + 1).copied().unwrap_or(units.len()))).collect();
    let digits = |(from, to): (usize, usize)| -> Option<usize> {
        let part = &units[from..to];
        part.iter().all(|u| u.numeric).then(|| part.iter().map(|u| u.chars.len()).sum())
    };
    let lens: Vec<Option<usize>> = groups.iter().map(|&g| digits(g)).collect();
    let n = groups.len();
    if lens.len() == 3 && lens.iter().copied().collect::<Option<Vec<_>>>().as_deref() == Some(&[3, 3, 4]) {
        return Some(0);
    }
    // The first group is the code (or all of it): only later groups can be the phone.
    for take in [3usize, 2, 1] {
        if n <= take {
            continue;
        }
        let tail: Option<Vec<usize>> = lens[n - take..].iter().copied().collect();
        let phone = match tail.as_deref() {
            Some([3, 3, 4]) | Some([3, 4]) => true,
            Some([one]) => (7..=11).contains(one),
            _ => false,
        };
        if phone {
            return Some(groups[n - take].0);
        }
    }
    None
}

/// Whether a run is a phone number by its shape in the five languages' countries,
/// groups of numerals: nine digits in groups of two and three (Spain: "91 555 01 83",
/// "612 34 56 78", "612 345 678"), or a trunk prefix of a zero and two to four more
/// digits and eight digits or more in all (Germany, Italy, France: "030 8824 19",
/// "06 4821 339"). A code said in pairs ("44 12 88 91") or digit by digit is neither.
fn national_phone(units: &[Unit]) -> bool {
    let numerals = units.iter().all(|u| u.numeric && u.chars.len() >= 2 && u.chars.chars().all(|c| c.is_ascii_digit()));
    if !numerals || units.len() < 2 {
        return false;
    }
    let lens: Vec<usize> = units.iter().map(|u| u.chars.len()).collect();
    let total: usize = lens.iter().sum();
    let spanish = total == 9 && lens.len() >= 3 && lens.iter().all(|&l| l == 2 || l == 3) && lens.contains(&3);
    let trunk = units[0].chars.starts_with('0') && total >= 8 && (lens[0] >= 3 || lens[1] >= 3);
    spanish || trunk
}

/// The code in a run that may hold it more than once, judged at its seams (a pause, or
/// two words of several characters side by side: "A73X A73X"): said again in full it
/// is one code ("4 4 1 2, 4 4 1 2"), and started over at the last pause it is the last
/// saying ("A 7 7, A 7 7 2"). `None` when the last group only repeats the
/// code's start or end ("6 1 9 4, 6 1 9", "4 4 1 2, 1 2"), slips by one character
/// ("4 4 1 2, 4 4 1 3", also without a pause), or the code repeats with no seam at all
/// ("4 4 1 2 4 4 1 2": one long code, or one said twice?).
fn said_once(units: &[Unit], pauses: &[usize]) -> Option<String> {
    let code: String = units.iter().map(|u| u.chars.as_str()).collect();
    let split = |k: usize| {
        let offset: usize = units[..k].iter().map(|u| u.chars.len()).sum();
        (code.get(..offset).unwrap_or_default(), code.get(offset..).unwrap_or_default())
    };
    let seam = (1..units.len())
        .rev()
        .find(|&k| pauses.contains(&k) || (units[k - 1].chars.len() > 1 && units[k].chars.len() > 1));
    // Said again in full: after the first pause ("T R 5, T as in Tom, R as in Robert, 5")
    // or at the last seam ("A73X A73X").
    let first_pause = pauses.iter().copied().filter(|&p| p > 0 && p < units.len()).min();
    for k in [first_pause, seam].into_iter().flatten() {
        let (head, rest) = split(k);
        if rest == head && head.len() >= MIN_LEN {
            return Some(head.to_owned());
        }
    }
    if let Some(k) = seam {
        let (head, rest) = split(k);
        if pauses.contains(&k) && head.len() >= 2 {
            if rest.len() > head.len() && rest.starts_with(head) {
                // "1 2, 1 2 1 2": a pattern, or one code said in parts? Cannot be told.
                let again = rest.get(head.len()..).unwrap_or_default();
                return (!again.starts_with(head)).then(|| rest.to_owned());
            }
            let partial =
                rest.len() >= 2 && rest.len() < head.len() && (head.starts_with(rest) || head.ends_with(rest));
            // "one hundred, one hundred ten": two numbers said whole, a slip or a change.
            let two_numbers = units.len() == 2 && units.iter().all(|u| u.numeric && u.chars.len() >= 3);
            let slip_len = if two_numbers { 3 } else { 4 };
            if partial || (rest.len() == head.len() && head.len() >= slip_len && differ_by_one(head, rest)) {
                return None;
            }
            // "7 2, 7 2, 7 2 1 9": the last group starts over from the first one, but
            // what came before is not its start: a stammer, or more of the code?
            let first = first_pause.map(|p| split(p).0).filter(|&f| f.len() >= 2 && f != head);
            if first.is_some_and(|f| rest.len() > f.len() && rest.starts_with(f)) {
                return None;
            }
        }
    }
    let half = code.len() / 2;
    if code.len() % 2 == 0 && half >= MIN_LEN {
        let (a, b) = (code.get(..half).unwrap_or_default(), code.get(half..).unwrap_or_default());
        // "1 2 7 1 2 7" with no pause: a code of six (a code of three said twice comes
        // with a pause). "4 4 1 2 4 4 1 2" stays untold.
        let mut offset = 0;
        let seam = units.iter().position(|u| {
            let at_half = offset == half;
            offset += u.chars.len();
            at_half
        });
        let paused_at_half = seam.is_some_and(|k| pauses.contains(&k));
        if (a == b && (half >= 4 || paused_at_half)) || (half >= 4 && differ_by_one(a, b)) {
            return None;
        }
    }
    Some(code)
}

fn differ_by_one(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.chars().zip(b.chars()).filter(|(x, y)| x != y).count() == 1
}

/// Every valid run in `toks`, left to right.
pub(super) fn runs(toks: &[Tok]) -> Vec<Run> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match run_at(toks, i) {
            Some(run) if run.end > i => {
                i = run.end;
                if run.valid() {
                    out.push(run);
                }
            }
            _ => i += 1,
        }
    }
    out
}

fn near(toks: &[Tok], from: usize, to: usize, list: &[&str]) -> bool {
    (from..to.min(toks.len())).any(|k| in_list(list, word(toks, k)))
}

/// Whether a weak trigger ("number", "code", "id") at `i` names the booking's code.
fn weak_trigger_ok(toks: &[Tok], i: usize, context: bool) -> bool {
    let before = i.saturating_sub(2);
    if near(toks, before, i, OTHER_CODES) || near(toks, i + 1, i + 4, OTHER_CODES) {
        return false;
    }
    // "number of people", "our number", "my number", "the number here".
    if matches!(word(toks, i + 1), Some("of" | "here" | "there"))
        || matches!(word(toks, i.wrapping_sub(1)), Some("our" | "my" | "this" | "a"))
    {
        return false;
    }
    if near(toks, before, i, BOOKING) || near(toks, before, i, STRONG_TRIGGERS) {
        return true;
    }
    // "número de reserva", "the code for your booking".
    if near(toks, i + 1, i + 4, BOOKING) {
        return true;
    }
    context
        && matches!(
            word(toks, i.wrapping_sub(1)),
            Some("the" | "your" | "su" | "el" | "votre" | "le" | "ihre" | "die" | "il" | "suo" | "vostro")
        )
}

/// Words that sound like a digit or a letter: "for 4 1 2" may be "four, 4, 1, 2", and
/// "bee 4 4 1" may be "B 4 4 1".
const HOMOPHONES: &[&str] = &[
    "for", "to", "too", "o", "a", "won", "ate", "tree", "fore", "bee", "see", "sea", "dee", "gee", "jay", "kay", "pea",
    "pee", "tea", "tee", "vee", "zee", "zed", "eye", "cue", "queue", "ex",
];
/// Of those, the ones that may end a code too ("4 4 1 see"). "For" and "to" after a
/// code are ordinary ("4412 for 2 people") and count only at a pause ("4 4 1 to.").
const HOMOPHONES_AFTER: &[&str] = &[
    "won", "ate", "tree", "fore", "bee", "see", "sea", "dee", "gee", "jay", "kay", "pea", "pee", "tea", "tee", "vee",
    "zee", "zed", "eye", "cue", "queue", "ex",
];
/// After a number, these make it the subject of a new clause ("… 0 1 4 8 is our
/// number"): it names something else.
const COPULA: &[&str] = &["is", "was", "are", "es", "est", "ist"];

/// Whether the words at a run's edges may belong to it, or say it is something else:
/// a digit's homophone just before ("is for 4 1 2"), a lone letter that is also a word
/// or a homophone just after, at a pause or before more code ("3 X 9 e.", "8 0 8 O.",
/// "4 4 1 see"), or a verb making the run a subject ("5 5 5, 0 1 4 8 is our number").
fn doubtful_edges(toks: &[Tok], run: &Run) -> bool {
    if run.start.checked_sub(1).is_some_and(|k| in_list(HOMOPHONES, word(toks, k))) {
        return true;
    }
    let Some(after) = word(toks, run.end) else {
        return false;
    };
    let pause = matches!(toks.get(run.end + 1), Some(Tok::Stop | Tok::Comma) | None);
    if AMBIGUOUS_LETTERS.contains(&after) || HOMOPHONES_AFTER.contains(&after) || matches!(after, "to" | "too") {
        let more = unit_at(toks, run.end + 1, true).is_some_and(|u| !in_list(QUANTITY, word(toks, u.next)));
        if pause || more {
            return true;
        }
    }
    // "4 4 1 for.": a "four" the transcript spelled as a word; "4412 for 2" is a party.
    (after == "for" && pause) || COPULA.contains(&after)
}

/// Whether a run is taken as a code where it stands: whole, and nothing at its edges
/// that could change it.
fn takeable(toks: &[Tok], run: &Run) -> bool {
    run.valid() && !cut_short(toks, run.end, &run.code) && !doubtful_edges(toks, run) && !clock_like(toks, run)
}

/// Whether the code ending at `end` may go on after a word the reader did not know
/// ("7 7 B like in boy 4"): more code characters follow in the same breath, with no
/// time or party size to explain them. Then the run read is not the whole code.
fn cut_short(toks: &[Tok], end: usize, code: &str) -> bool {
    let mut k = end;
    while k < toks.len() && k < end + 4 {
        let Some(w) = toks.get(k).and_then(Tok::word) else {
            return false;
        };
        // A possessive starts something else: "8 2 0 6 1 our number is 212 555 0144".
        let possessive = matches!(w, "our" | "my" | "nuestro" | "notre" | "unsere" | "nostro");
        if possessive
            || matches!(
                w,
                "at" | "for" | "on" | "around" | "by" | "until" | "from" | "party" | "table" | "of" | "under"
            )
        {
            return false;
        }
        if k > end {
            if let Some(unit) = unit_at(toks, k, false) {
                // The code said again ("and that's 7 7 4 0") is a repeat, weighed as one.
                let again = run_at(toks, k).is_some_and(|r| r.code == code);
                return !again && !in_list(QUANTITY, word(toks, unit.next));
            }
        }
        k += 1;
    }
    false
}

/// A quantity said before the code ("for 2 people", "three letters and then"): skipped.
fn quantity_at(toks: &[Tok], j: usize) -> Option<usize> {
    let unit = unit_at(toks, j, false).filter(|u| u.numeric)?;
    in_list(QUANTITY, word(toks, unit.next)).then_some(unit.next + 1)
}

/// Reads the code after a trigger ending at `after`: skips the preamble (and, after a
/// strong trigger, a host's stalling), then a run.
fn read_after_trigger(toks: &[Tok], after: usize, strong: bool) -> Option<Run> {
    let mut j = after;
    let mut stops = 0;
    let max_stops = if strong { 3 } else { 1 };
    let mut limit = after + PREAMBLE_BUDGET;
    // After an aside, the code must end its sentence.
    let mut aside = false;
    while j < toks.len() && j < limit {
        match &toks[j] {
            Tok::Comma | Tok::Time => {}
            Tok::Stop => {
                stops += 1;
                if stops > max_stops {
                    return None;
                }
            }
            Tok::Phone => return None,
            Tok::Word(w) | Tok::Letters(w) => {
                if let Some(run) = run_at(toks, j) {
                    if takeable(toks, &run) {
                        let ends = matches!(toks.get(run.end), Some(Tok::Stop) | None);
                        return (!aside || ends).then_some(run);
                    }
                    if run.ambiguous || run.valid() {
                        return None;
                    }
                    if let Some(whole) = after_false_start(toks, &run) {
                        return Some(whole);
                    }
                }
                if let Some(next) = quantity_at(toks, j) {
                    j = next;
                    continue;
                }
                let w = w.as_str();
                // "confirmation code for the valet is …": another code after all.
                if OTHER_CODES.contains(&w) {
                    return None;
                }
                let skippable = PREAMBLE.contains(&w)
                    || PREAMBLE_MORE.contains(&w)
                    || CODE_FILLERS.contains(&w)
                    || AMBIGUOUS_LETTERS.contains(&w)
                    || STRONG_TRIGGERS.contains(&w)
                    || WEAK_TRIGGERS.contains(&w)
                    || (strong && STALLING.contains(&w))
                    // "for Friday, 4 4 2 0"; "for Friday 4 4 2 0" may be a date.
                    || (DAYS.contains(&w) && unit_at(toks, j + 1, false).is_none());
                if !skippable {
                    // "Your confirmation number, if you've got a pen, is …".
                    match aside_end(toks, j).filter(|_| strong) {
                        Some(end) => {
                            aside = true;
                            limit = end + PREAMBLE_BUDGET;
                            j = end;
                            continue;
                        }
                        None => return None,
                    }
                }
            }
        }
        j += 1;
    }
    None
}

/// Negations that make an aside say there is no code: "we don't really do those".
const NEGATIONS: &[&str] = &[
    "don't", "dont", "doesn't", "didn't", "never", "can't", "cannot", "nunca", "tampoco", "pas", "jamais", "nicht",
    "kein", "keine", "keinen", "mai",
];

/// Where an aside starting at `j` ends, if it is one: words set off by commas after a
/// strong trigger ("Your confirmation number, if you've got a pen, is …", "è, ehm,
/// aspetti un attimo, …", "Ihre Bestätigungsnummer, Moment, ich hab sie gleich, ist …"),
/// ended by a comma before the code or before "is" and the code. Not one with code
/// characters, another code, a phone, a negation or a correction in it ("…, we don't
/// really do those, but the table is 1 2"; "…, my cell is …").
fn aside_end(toks: &[Tok], j: usize) -> Option<usize> {
    let mut open = j;
    // "…number, and I'll text it": openings and stalling words come first.
    while open > 0
        && [PREAMBLE, PREAMBLE_MORE, CODE_FILLERS, STALLING].iter().any(|list| in_list(list, word(toks, open - 1)))
    {
        open -= 1;
    }
    if open == 0 || toks[open - 1] != Tok::Comma {
        return None;
    }
    let mut k = j;
    while k < toks.len() && k < j + 14 {
        match &toks[k] {
            Tok::Stop | Tok::Time | Tok::Phone => return None,
            Tok::Comma => {
                let mut m = k + 1;
                while m < k + 4
                    && (in_list(PREAMBLE, word(toks, m))
                        || in_list(CODE_FILLERS, word(toks, m))
                        || toks.get(m) == Some(&Tok::Comma))
                {
                    m += 1;
                }
                if unit_at(toks, m, false).is_some() {
                    return Some(k + 1);
                }
            }
            Tok::Word(w) | Tok::Letters(w) => {
                let w = w.as_str();
                let says_something_else = OTHER_CODES.contains(&w)
                    || PHONE.contains(&w)
                    || DENY.contains(&w)
                    || RETRACT.contains(&w)
                    || NEGATIONS.contains(&w)
                    || STRONG_TRIGGERS.contains(&w)
                    || WEAK_TRIGGERS.contains(&w);
                if says_something_else || unit_at(toks, k, false).is_some() {
                    return None;
                }
            }
        }
        k += 1;
    }
    None
}

/// "3 8... no, 3 9 1 2", "Bravo 4, uh, wait, Bravo 7 7 1": a start too short to be a
/// code, taken back ("no", "wait", "hold on", "sorry"), then the whole code. Only when
/// nothing but words comes between, and none names another code unless the code starts
/// over from the same characters.
fn after_false_start(toks: &[Tok], start: &Run) -> Option<Run> {
    let mut k = start.end;
    while matches!(toks.get(k), Some(Tok::Comma | Tok::Stop)) || in_list(CODE_FILLERS, word(toks, k)) {
        k += 1;
    }
    if !takes_back(toks, k) {
        return None;
    }
    let from = k;
    while k < toks.len() && k < from + CORRECTION_WINDOW {
        if matches!(toks[k], Tok::Time | Tok::Phone) {
            return None;
        }
        if unit_at(toks, k, false).is_some() {
            let whole = run_at(toks, k).filter(|r| takeable(toks, r) && !explained(toks, r))?;
            let restarts = whole.code.starts_with(&start.code);
            let other_code = toks[from..k].iter().filter_map(Tok::word).any(|w| OTHER_CODES.contains(&w));
            return (restarts || !other_code).then_some(whole);
        }
        k += 1;
    }
    None
}

/// Whether the trigger at `i` is qualified by the word right before it ("deposit
/// reference", "payment reference number", "hold number"): it then names a code of
/// something else, and what follows is not the booking's code. Articles, possessives,
/// openings and booking words do not qualify it; a trigger before it passes the
/// question on ("deposit reference number").
fn qualified(toks: &[Tok], i: usize) -> bool {
    let Some(before) = i.checked_sub(1).and_then(|k| word(toks, k)) else {
        return false;
    };
    if STRONG_TRIGGERS.contains(&before) || WEAK_TRIGGERS.contains(&before) {
        return qualified(toks, i - 1);
    }
    let known = TRIGGER_LEADS.contains(&before) || BOOKING.contains(&before) || BOOKED.contains(&before);
    let numeric = before.chars().any(|c| c.is_ascii_digit()) || digit(before).is_some();
    !(known || numeric)
}

/// After a code ending at `end`, a trigger naming it and ending its sentence: ", that's
/// your confirmation.", ". That's your confirmation number.", ", that's the confirmation number, see you Friday". The index
/// after it. Not "that's the confirmation for the other party", nor a code followed by
/// anything else first.
fn trigger_after(toks: &[Tok], end: usize, context: bool) -> Option<usize> {
    let mut k = end;
    if copula_trigger_after(toks, end) {
        // "6 6 3 1 9 is your confirmation number.", "El 4 8 2 0 es su número de …".
        k += 1;
    } else {
        if !matches!(toks.get(end), Some(Tok::Comma | Tok::Stop)) {
            return None;
        }
        k += 1;
        match (word(toks, k), word(toks, k + 1)) {
            (Some("that's" | "thats" | "c'est"), _) => k += 1,
            (Some("that"), Some("is")) => k += 2,
            _ => return None,
        }
    }
    if in_list(&["your", "the", "su", "votre", "le", "ihre", "die", "il", "suo", "vostro"], word(toks, k)) {
        k += 1;
    }
    if in_list(&["suo", "vostro"], word(toks, k)) {
        k += 1;
    }
    let (mut after, strong) = trigger_at(toks, k, context)?;
    if !strong && !near(toks, k.saturating_sub(2), k, BOOKING) && !near(toks, after, after + 3, BOOKING) {
        return None;
    }
    // "number", "de confirmación", "di conferma", "de réservation".
    while in_list(&["number", "code", "id", "de", "di", "del"], word(toks, after))
        || in_list(STRONG_TRIGGERS, word(toks, after))
        || in_list(BOOKING, word(toks, after))
    {
        after += 1;
    }
    matches!(toks.get(after), Some(Tok::Stop | Tok::Comma) | None).then_some(after)
}

/// Whether a copula right after a run starts "is your confirmation number": the run is
/// then its subject, named by the trigger, and the copula no longer makes it another thing.
fn copula_trigger_after(toks: &[Tok], end: usize) -> bool {
    in_list(&["is", "es", "est", "ist", "e"], word(toks, end))
        && (near(toks, end + 1, end + 4, STRONG_TRIGGERS) || near(toks, end + 1, end + 5, BOOKING))
}

/// The index after the trigger at `i`, and whether it is a strong one, if `i` is one.
fn trigger_at(toks: &[Tok], i: usize, context: bool) -> Option<(usize, bool)> {
    let w = word(toks, i)?;
    if qualified(toks, i) {
        return None;
    }
    if STRONG_TRIGGERS.contains(&w) {
        return Some((i + 1, true));
    }
    (WEAK_TRIGGERS.contains(&w) && weak_trigger_ok(toks, i, context)).then_some((i + 1, false))
}

/// What one host turn said about the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Said {
    /// A code; `corrects` when it takes back an earlier one.
    Code { code: String, corrects: bool },
    /// The code just said was taken back without a whole new one.
    Doubt,
    /// The code just said is another kind of code ("that's our zip").
    Withdraw { code: String },
    /// Code characters that nothing explains, outside what was read as the code: if
    /// they differ from the code, the conversation does not settle on one.
    Stray { code: String },
    /// A reply accepting what the agent just read back.
    Affirm,
    /// A reply refusing it.
    Deny,
}

/// Words a host may open an answer with before the code: "sure, it's", "no, sorry,".
fn answer_opening(w: &str) -> bool {
    PREAMBLE.contains(&w)
        || PREAMBLE_MORE.contains(&w)
        || AFFIRM.contains(&w)
        || DENY.contains(&w)
        || CORRECTION.contains(&w)
        || STALLING.contains(&w)
        || matches!(w, "i" | "hmm" | "thing" | "mm" | "hm" | "uh-huh" | "do" | "does" | "ready")
        // "claro", "bien sûr", "klar", "ecco": the same openings in the other languages.
        || matches!(w, "claro" | "bueno" | "vale" | "bien" | "sur" | "voila" | "klar" | "naturlich" | "gerne" | "ecco" | "certamente")
}

/// "the last digit is 5", "last one's a 2", "the first letter should be B": `code`
/// with that one character replaced.
fn replaced_character(toks: &[Tok], from: usize, code: &str) -> Option<(String, usize)> {
    placed_character(toks, from, code).map(|(code, after, _)| (code, after))
}

/// Places in a code said as ordinals: "the second digit".
const ORDINALS: &[&str] =
    &["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"];

/// `replaced_character`, with whether the words say it is a change ("actually",
/// "should be") rather than the character said again or added.
fn placed_character(toks: &[Tok], from: usize, code: &str) -> Option<(String, usize, bool)> {
    let to = (from + CORRECTION_WINDOW).min(toks.len());
    let at = (from..to).find(|&k| matches!(word(toks, k), Some("last")) || in_list(ORDINALS, word(toks, k)))?;
    let place = word(toks, at).and_then(|w| ORDINALS.iter().position(|o| *o == w));
    let mut k = at + 1;
    let mut changed = false;
    while in_list(
        &["digit", "letter", "one", "one's", "number", "character", "is", "should", "be", "a", "an", "'s", "actually"],
        word(toks, k),
    ) || matches!(toks.get(k), Some(Tok::Comma))
        || word(toks, k).is_some_and(|w| {
            w.strip_suffix("'s").is_some_and(|n| matches!(n, "digit" | "letter" | "number" | "character"))
        })
    {
        changed |= in_list(&["should", "actually"], word(toks, k));
        k += 1;
    }
    let unit = unit_at(toks, k, true).filter(|u| u.chars.len() == 1)?;
    let mut chars: Vec<char> = code.chars().collect();
    // "The fifth digit" of a code of four is no place in it.
    let slot = match place {
        Some(p) => chars.get_mut(p)?,
        None => chars.last_mut()?,
    };
    // "the last digit is 7 not 1": the character it was, named; a change.
    let mut after = unit.next;
    if word(toks, after) == Some("not") {
        let was = unit_at(toks, after + 1, true).filter(|u| u.chars.len() == 1)?;
        if !was.chars.starts_with(*slot) {
            return None;
        }
        after = was.next;
        changed = true;
    }
    // The sentence must end there: "the last digit is 5 and…" is not this.
    if !matches!(toks.get(after), Some(Tok::Stop | Tok::Comma) | None) {
        return None;
    }
    *slot = unit.chars.chars().next()?;
    Some((chars.into_iter().collect(), after, changed))
}

/// "that's a G not a K", "it's an 8, not a 3": `code` with the character named second
/// (there once in it) changed to the one named first.
fn swapped_character(toks: &[Tok], from: usize, code: &str) -> Option<(String, usize)> {
    let to = (from + CORRECTION_WINDOW).min(toks.len());
    let not = (from..to).find(|&k| word(toks, k) == Some("not"))?;
    let single = |k: usize| unit_at(toks, k, true).filter(|u| u.chars.len() == 1 && u.next == k + 1);
    let article = |k: usize| in_list(&["a", "an"], word(toks, k));
    let mut k = not.checked_sub(1)?;
    if toks[k] == Tok::Comma {
        k = k.checked_sub(1)?;
    }
    let new = single(k)?;
    let at = if article(not + 1) { not + 2 } else { not + 1 };
    let old = single(at)?;
    let (new, old) = (new.chars.chars().next()?, old.chars.chars().next()?);
    if new == old || code.matches(old).count() != 1 {
        return None;
    }
    Some((code.replace(old, &new.to_string()), at + 1))
}

fn takes_back(toks: &[Tok], j: usize) -> bool {
    let Some(w) = word(toks, j) else {
        return false;
    };
    CORRECTION.contains(&w)
        || (DENY.contains(&w) && matches!(toks.get(j + 1), Some(Tok::Comma | Tok::Stop) | None))
        // "9 9 1 4, no 9 9 4 1".
        || (DENY.contains(&w) && unit_at(toks, j + 1, false).is_some())
        || (DENY.contains(&w) && in_list(CORRECTION, word(toks, j + 1)))
}

/// After a code ending at `end`: repeats collapse, corrections replace. `strong` when
/// the code followed a trigger that names the booking's code on its own.
fn follow_ups(toks: &[Tok], mut end: usize, mut current: String, strong: bool, out: &mut Vec<Said>) -> usize {
    'outer: loop {
        let mut j = end;
        let mut correcting = false;
        // A character or two said after the taking back ("the last digit is 5").
        let mut numbers_since_correction = false;
        let mut limit = end + 10;
        // The first word after the code, in its own sentence: "4 4 1 7, nein Moment".
        let mut next_to_code = true;
        // "The code is 5 5 2 1, punch it in at the side door": a door's code.
        if opens_something(toks, end) || phone_named_after(toks, end) {
            out.push(Said::Withdraw { code: current });
            return end;
        }
        while j < toks.len() && j < limit {
            let w = match &toks[j] {
                Tok::Comma => {
                    j += 1;
                    continue;
                }
                Tok::Stop => {
                    next_to_code = false;
                    j += 1;
                    continue;
                }
                Tok::Time | Tok::Phone => break,
                Tok::Word(w) | Tok::Letters(w) => w.as_str(),
            };
            let first = std::mem::replace(&mut next_to_code, false);
            // "9 4 1 1 0, that's our zip": the code just read is another code.
            if first && names_other_code(toks, j, strong) {
                out.push(Said::Withdraw { code: current });
                return end;
            }
            // "6 3 9 0, the second digit is actually an 8": one character changed by its
            // place ("the last digit's a 7" may add one instead, unless it says "actually").
            if first && w == "the" && !correcting {
                let place_named = in_list(ORDINALS, word(toks, j + 1));
                if let Some((code, after, changed)) = placed_character(toks, j, &current) {
                    // "…it's 2 1 8 8 9, the last one's a 9": the place said again, as it is.
                    let restates = code == current;
                    let placed = word(toks, j + 1).is_some_and(|n| n == "last" || place_named);
                    if placed && (place_named || changed || restates) {
                        if code != current {
                            out.push(Said::Code { code, corrects: true });
                        }
                        return after;
                    }
                }
            }
            if let Some(run) = run_at(toks, j) {
                if run.valid() && run.code != current && doubtful_edges(toks, &run) {
                    // A replacement or a second saying whose edges cannot be told.
                    out.push(Said::Doubt);
                    return end;
                }
                if run.valid() {
                    // After "sorry", the first code characters are the replacement, and
                    // only if nothing names them as something else: "sorry, the gate code
                    // is 9 9 0 1", "sorry, 3 0 1 6 is your old one", "sorry, the party of 6
                    // was 9 1 1 6" take the code back without replacing it. After "last
                    // one's a 2", only the code with that 2 in place follows it.
                    let agrees_with_fix = || {
                        replaced_character(toks, end, &current)
                            .or_else(|| swapped_character(toks, end, &current))
                            .is_some_and(|(fixed, _)| fixed == run.code)
                    };
                    let unexplained_numbers = numbers_since_correction && !agrees_with_fix();
                    if correcting && (unexplained_numbers || explained(toks, &run)) {
                        out.push(Said::Doubt);
                        return end;
                    }
                    if correcting {
                        out.push(Said::Code { code: run.code.clone(), corrects: true });
                    } else if run.code != current {
                        // Numbers going on into a sentence ("7 30 works for us") are not a
                        // code; a second code on its own, with no word saying why, leaves
                        // the reader unable to choose.
                        if !matches!(toks.get(run.end), Some(Tok::Stop | Tok::Comma) | None) {
                            break;
                        }
                        out.push(Said::Code { code: run.code.clone(), corrects: false });
                    }
                    current = run.code;
                    end = run.end;
                    continue 'outer;
                }
                if correcting {
                    // "last one's a 2": part of a code, not all of it; read on.
                    numbers_since_correction = true;
                    j = run.end.max(j + 1);
                    continue;
                }
                break;
            }
            // "No" straight after the code takes it back, whatever follows.
            if takes_back(toks, j) || (first && DENY.contains(&w)) {
                // Once the host takes the code back, the replacement may come after
                // any words ("that's the other party. Yours is …").
                correcting = true;
                limit = j + CORRECTION_WINDOW;
            } else if !(correcting || REPEAT.contains(&w) || PREAMBLE.contains(&w) || w == "oh") {
                break;
            }
            j += 1;
        }
        if correcting {
            // "…4, sorry, the last digit is 5": one character replaced.
            match replaced_character(toks, end, &current) {
                Some((code, after)) => {
                    out.push(Said::Code { code, corrects: true });
                    return after;
                }
                // Taken back, and nothing whole replaces it: the code is withdrawn.
                None => out.push(Said::Doubt),
            }
        }
        return end;
    }
}

/// Whether the words at `j`, right after a code, say it is another kind of code:
/// "that's our zip", "is the parking code"; after a bare "code" or an answer with no
/// trigger, also "for the garage".
fn names_other_code(toks: &[Tok], j: usize, strong: bool) -> bool {
    let lead = ["that's", "thats", "that", "is", "it's", "its", "c'est", "es", "ist", "which"];
    let weak_lead = ["for", "para", "pour", "fur", "per", "on", "at"];
    if !(in_list(&lead, word(toks, j)) || (!strong && in_list(&weak_lead, word(toks, j)))) {
        return false;
    }
    let mut k = j + 1;
    while k < toks.len() && k <= j + 4 {
        match word(toks, k) {
            Some(w) if OTHER_CODES.contains(&w) => return true,
            Some(_) => k += 1,
            None => return false,
        }
    }
    false
}

/// Whether the words after a code ending at `end` say what it opens: its sentence names
/// a door, a gate or the wifi, with nothing else's digits after it, and keys the code in
/// or takes it up ("…, punch it in at the side door", "…, you'll need it for the garage",
/// "…, márquelo en la puerta") or names it right after the code ("…, that's for the
/// gate", "… for the side entrance"); or the next sentence keys it in there ("Punch it
/// in at the side door."). "…, and the side door is on Elm Street" or "ask for Mike at
/// the door" name a place, not what the code opens.
fn opens_something(toks: &[Tok], end: usize) -> bool {
    let sentence_end = |from: usize| (from..toks.len()).find(|&k| toks[k] == Tok::Stop).unwrap_or(toks.len());
    // Whether `from..to` names an access with no other code's characters after it, and
    // whether it keys something in.
    let names_access = |from: usize, to: usize| {
        let access = (from..to).find(|&k| in_list(ACCESS, word(toks, k)));
        let access = access.filter(|&a| runs(&toks[a..to]).is_empty() && !near(toks, from, a, OTHER_CODES));
        // "punch it in", "you'll need it for", "lo digiti": keyed in, or the code itself
        // taken up by a pronoun ("ask for Mike at the door" is neither).
        let keyed = access.is_some_and(|a| near(toks, from, a, KEY_IN) || near(toks, from, a, CODE_PRONOUNS));
        (access, keyed)
    };
    let to = sentence_end(end);
    let (access, keyed) = names_access(end, to);
    if let Some(a) = access {
        let mut k = end;
        while matches!(toks.get(k), Some(Tok::Comma)) {
            k += 1;
        }
        // "…, that's for the gate", "… for the side entrance", "…, c'est pour le portail".
        let lead =
            ["that's", "thats", "for", "at", "para", "pour", "fur", "per", "al", "a", "an", "it's", "its", "c'est"];
        let named_right_after = in_list(&lead, word(toks, k)) && a <= k + 4;
        if keyed || named_right_after {
            return true;
        }
    }
    if to >= toks.len() || runs(&toks[end..to]).iter().any(|r| r.start < to) {
        return false;
    }
    let next_to = sentence_end(to + 1);
    let (access, keyed) = names_access(to + 1, next_to);
    access.is_some() && keyed
}

/// Whether a phone word names the number ending at `end`, in apposition and with no
/// other digits after it in the sentence: "91 555 01 83, el teléfono del restaurante",
/// "555 0144, the restaurant's phone", "030 8824 19, das ist unsere Telefonnummer".
fn phone_named_after(toks: &[Tok], end: usize) -> bool {
    let mut k = end;
    while k < toks.len() && k < end + 8 {
        match &toks[k] {
            Tok::Comma => {}
            Tok::Word(w) if PHONE.contains(&w.as_str()) => {
                let to = (k..toks.len()).find(|&s| toks[s] == Tok::Stop).unwrap_or(toks.len());
                // "…, the phone number on file is 415 555 0199": the phone's digits follow.
                let digits_after =
                    (k..to).any(|s| toks[s] == Tok::Phone || unit_at(toks, s, false).is_some_and(|u| u.numeric));
                return !digits_after;
            }
            Tok::Word(w) if PHONE_APPOSITION.contains(&w.as_str()) => {}
            _ => return false,
        }
        k += 1;
    }
    false
}

/// Pronouns that take up a code just said: "use it at the buzzer", "den tippen Sie ein".
const CODE_PRONOUNS: &[&str] = &["it", "that", "this", "lo", "ihn", "den"];

/// Everything one host turn (consecutive utterances joined) says about the code.
pub(super) fn read_host_turn(toks: &[Tok], answering: bool, after_read_back: bool) -> Vec<Said> {
    let mut out = Vec::new();
    // Token ranges read as the code, its repeats and corrections.
    let mut read: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    if answering {
        let mut affirmed = false;
        let mut denied = false;
        // An explicit "no", "wrong", "not": "hang on, let me check" alone corrects nothing.
        let mut said_no = false;
        let mut limit = PREAMBLE_BUDGET;
        while i < toks.len().min(limit) {
            match &toks[i] {
                Tok::Comma | Tok::Stop => {}
                Tok::Word(w) | Tok::Letters(w) => {
                    // "Number's, oh, 4 4 1 2": a hesitation or a zero, as after a trigger.
                    if w == "oh" && run_at(toks, i).is_some_and(|r| r.ambiguous) {
                        break;
                    }
                    if let Some(run) = run_at(toks, i).filter(Run::valid) {
                        // With no trigger, "7 30", "at 730" or "… is our number" is no answer,
                        // nor digits running on into a word ("4 4 1 2 Market").
                        if !takeable(toks, &run) || explained(toks, &run) || runs_into_word(toks, &run) {
                            break;
                        }
                        out.push(Said::Code { code: run.code.clone(), corrects: denied });
                        let start = run.start;
                        i = follow_ups(toks, run.end, run.code, false, &mut out);
                        read.push((start, i));
                        break;
                    }
                    if let Some(next) = quantity_at(toks, i) {
                        i = next;
                        continue;
                    }
                    // After "no, I gave you the wrong one" to a read-back, the right one may
                    // follow any words; "no" to a question is "there is none".
                    let correcting = denied && after_read_back;
                    // "There's a hold number, 9 1 2 7": the answer names another code.
                    let trigger = STRONG_TRIGGERS.contains(&w.as_str()) || WEAK_TRIGGERS.contains(&w.as_str());
                    if trigger && qualified(toks, i) && !correcting {
                        break;
                    }
                    if (!answer_opening(w) && !correcting) || OTHER_CODES.contains(&w.as_str()) {
                        break;
                    }
                    affirmed |= AFFIRM.contains(&w.as_str());
                    said_no |= DENY.contains(&w.as_str());
                    if takes_back(toks, i) || (i == 0 && DENY.contains(&w.as_str())) {
                        denied = true;
                        if after_read_back {
                            limit = i + CORRECTION_WINDOW;
                        }
                    }
                }
                Tok::Time | Tok::Phone => break,
            }
            i += 1;
        }
        if out.is_empty() {
            if denied && said_no {
                out.push(Said::Deny);
            } else if affirmed {
                out.push(Said::Affirm);
            }
        }
    }
    let context = answering || near(toks, 0, toks.len(), BOOKED);
    while i < toks.len() {
        let found = trigger_at(toks, i, context)
            .and_then(|(after, strong)| read_after_trigger(toks, after, strong).map(|run| (run, strong)));
        match found {
            Some((run, strong)) => {
                out.push(Said::Code { code: run.code.clone(), corrects: false });
                let start = i;
                i = follow_ups(toks, run.end, run.code, strong, &mut out).max(i + 1);
                read.push((start, i));
            }
            None => i += 1,
        }
    }
    // "It's 6 6 0 3, that's your confirmation.": the trigger after the code names it.
    if !out.iter().any(|s| matches!(s, Said::Code { .. })) {
        for run in runs(toks) {
            let Some(after) = trigger_after(toks, run.end, context) else {
                continue;
            };
            // Before "is your confirmation number" the copula names the run, it does not
            // make it something else: only the words before it may.
            let named = if copula_trigger_after(toks, run.end) {
                let homophone_before = run.start.checked_sub(1).is_some_and(|k| in_list(HOMOPHONES, word(toks, k)));
                !run.valid() || homophone_before || named_before(toks, &run)
            } else {
                !takeable(toks, &run) || explained(toks, &run)
            };
            if !named {
                out.push(Said::Code { code: run.code.clone(), corrects: false });
                read.push((run.start, after));
                break;
            }
        }
    }
    for run in runs(toks) {
        let outside = read.iter().all(|&(from, to)| run.end <= from || run.start >= to);
        if outside && run.code.chars().any(|c| c.is_ascii_digit()) && !explained(toks, &run) {
            out.push(Said::Stray { code: run.code });
        }
    }
    if read.iter().any(|&(_, end)| leftover_in_sentence(toks, end) || taken_back_later(toks, end)) {
        out.push(Said::Doubt);
    }
    out
}

/// Words before a number that say what it is: "for 2", "at 8", "party of 6", "20 heures 30".
const NUMBER_NAMERS: &[&str] = &[
    "at", "for", "on", "around", "by", "until", "from", "party", "table", "of", "under", "à", "um", "alle", "vers",
    "las", "para", "pour", "fur", "per", "the", "le", "el", "il", "der", "die", "la", "heures", "heure", "uhr", "h",
    "horas", "ore",
];

/// Whether the sentence the code ended in goes on to a character or two of code that
/// nothing explains ("4 4 1 2, okay, 7 7", "4 4 1 2 and, uh, 7"): the code read may not
/// be all of it. Numbers that a word names ("for 2", "at 8", "20 e 30"), clock times,
/// whole runs (weighed as strays) and anything after another code is named are not.
fn leftover_in_sentence(toks: &[Tok], from: usize) -> bool {
    let mut k = from;
    // The end of the last number a word named: "20 e 30" joins on to it.
    let mut named_until = None;
    while k < toks.len() {
        match &toks[k] {
            // "4 4 1 2. Uh, 7.": a sentence of nothing but a character or two goes on
            // with the code, or corrects it; either way the code read is not sure.
            Tok::Stop => return fragment_sentence(toks, k + 1),
            Tok::Word(w) | Tok::Letters(w) => {
                if OTHER_CODES.contains(&w.as_str()) {
                    return false;
                }
                if let Some(len) = clock_words_len(toks, k) {
                    k += len;
                    continue;
                }
                if let Some(run) = run_at(toks, k).filter(|r| r.end > k) {
                    let before = word(toks, k.wrapping_sub(1));
                    let joined = in_list(LAST_JOINERS, before) && named_until == Some(k - 1);
                    let named = in_list(NUMBER_NAMERS, before) || joined;
                    // A letter alone is a word as often as a code character, unless an
                    // article brings it: "3 3 1, and a B."
                    let brought = in_list(&["a", "an"], before) && run.code.len() == 1;
                    let fragment = run.code.len() <= 2
                        && !run.ambiguous
                        && (brought || !run.code.chars().all(|c| c.is_ascii_alphabetic()));
                    if fragment && !named && !explained(toks, &run) {
                        return true;
                    }
                    if named {
                        named_until = Some(run.end);
                    }
                    k = run.end;
                    continue;
                }
            }
            _ => {}
        }
        k += 1;
    }
    false
}

/// Whether the turn, after what was read as the code and its corrections, goes on to
/// say "no" or take something back ("7 7 0 4, or, sorry, no, I'll call you back with
/// it"; "4 4 1 2. Hmm. Actually, hold on, that's not it.") with no code after it: the
/// code may be the thing withdrawn. ("Sorry" alone is as often an apology: "4 4 1 2,
/// sorry about the wait".)
fn taken_back_later(toks: &[Tok], from: usize) -> bool {
    retracts(toks, from, toks.len())
}

/// Whether `from..to` says "no" or takes something back ("wait", "actually", "my
/// mistake") with no code after it.
fn retracts(toks: &[Tok], from: usize, to: usize) -> bool {
    let denial = (from..to).find(|&k| {
        let retracting = in_list(DENY, word(toks, k)) || in_list(RETRACT, word(toks, k));
        (retracting && takes_back(toks, k)) || disowns(toks, k)
    });
    denial.is_some_and(|k| runs(&toks[k..to]).is_empty())
}

/// Whether the words at `k` say "that is not it", in any of the five languages: a
/// negation of being the one ("that's not the right one", "ese no es", "no es ese", "ce
/// n'est pas ça", "c'est pas le bon", "das stimmt nicht", "nicht die richtige", "non è
/// quello"). A negation of anything else ("not too hard to remember", "ce n'est pas
/// compliqué", "das ist nicht schwer", "non lo perda") takes nothing back.
fn disowns(toks: &[Tok], k: usize) -> bool {
    let at = |d: usize| word(toks, k + d);
    let clause_ends = |d: usize| matches!(toks.get(k + d), Some(Tok::Stop | Tok::Comma) | None);
    let before = k.checked_sub(1).and_then(|b| word(toks, b));
    let right_one = |d: usize| {
        in_list(RIGHT_ONE, at(d))
            // "not the right one", "pas le bon", "non è il numero giusto".
            || (in_list(&["the", "a", "el", "la", "le", "il", "die", "der", "das"], at(d))
                && (in_list(RIGHT_ONE, at(d + 1)) || in_list(RIGHT_ONE, at(d + 2))))
    };
    match word(toks, k) {
        // "that's not it", "that's not the right one", "that isn't it".
        Some("not") | Some("isn't") | Some("wasn't") => right_one(1) && !in_list(&["that", "this"], at(1)),
        // "ese no es", "ese no", "no es ese", "no era el bueno".
        Some("no") => {
            let demonstrative = in_list(&["ese", "esa", "eso", "este", "esta"], before);
            let copula = in_list(&["es", "era"], at(1));
            (demonstrative && (copula || clause_ends(1))) || (copula && (clause_ends(2) || right_one(2)))
        }
        // "ce n'est pas ça", "c'est pas le bon".
        Some("pas") => in_list(&["n'est", "c'est", "est", "etait", "n'etait"], before) && right_one(1),
        // "das stimmt nicht", "das ist nicht die richtige".
        Some("nicht") => {
            let stimmt = in_list(&["stimmt", "passt"], before) && clause_ends(1);
            stimmt || (in_list(&["ist", "war"], before) && right_one(1) && !in_list(&["das"], at(1)))
        }
        // "non è quello", "non è giusto".
        Some("non") => in_list(&["e", "era"], at(1)) && (clause_ends(2) || right_one(2)),
        _ => false,
    }
}

/// Whether the sentence from `k` holds nothing but a character or two of code and
/// fillers ("Uh, 7.", "And 7.").
fn fragment_sentence(toks: &[Tok], mut k: usize) -> bool {
    let mut fragment = false;
    while k < toks.len() {
        match &toks[k] {
            Tok::Stop => break,
            Tok::Comma => k += 1,
            Tok::Time | Tok::Phone => return false,
            Tok::Word(w) | Tok::Letters(w) => {
                // "Uh-huh, 9, 9.": a yes before them does not explain the characters.
                let yes = matches!(w.as_str(), "huh" | "mm" | "hm" | "mhm" | "yes" | "yeah" | "yep" | "yup");
                if CODE_FILLERS.contains(&w.as_str())
                    || in_list(&["and", "plus", "also", "oh"], Some(w.as_str()))
                    || yes
                {
                    k += 1;
                    continue;
                }
                // "And a B.": a letter an article brings is one more character.
                if matches!(w.as_str(), "a" | "an") {
                    if let Some(run) = run_at(toks, k + 1).filter(|r| r.code.len() == 1 && !r.ambiguous) {
                        fragment = true;
                        k = run.end;
                        continue;
                    }
                }
                match run_at(toks, k).filter(|r| r.code.len() <= 2 && !r.ambiguous) {
                    Some(run) => {
                        // A letter said again ("R like Robert.") clarifies, it adds nothing.
                        fragment |= run.code.chars().any(|c| c.is_ascii_digit());
                        k = run.end;
                    }
                    None => return false,
                }
            }
        }
    }
    fragment
}

/// Whether digits outside the code say what they are: another code or a possession
/// before them ("gate code is", "table", "our"), a clock time ("7 30", "19 30", "at 730"), a
/// rate after them ("125 per person"), or a verb making them a subject ("… is our
/// number").
fn explained(toks: &[Tok], run: &Run) -> bool {
    let after = word(toks, run.end);
    // "7 3 1 4 for the side entrance": what it opens, named.
    let opens = in_list(&["for", "para", "pour", "fur", "per"], after) && near(toks, run.end + 1, run.end + 4, ACCESS);
    named_before(toks, run)
        || opens
        || phone_named_after(toks, run.end)
        || in_list(&["per", "percent", "off"], after)
        || in_list(COPULA, after)
}

/// Whether the words before a run, or the run itself, say what it is: another code or
/// a possession before it ("gate code is", "table", "our"), a clock time ("7 30", "at
/// 730").
fn named_before(toks: &[Tok], run: &Run) -> bool {
    let mut k = run.start;
    while k > 0 && k + 4 > run.start {
        k -= 1;
        match word(toks, k) {
            Some(w)
                if OTHER_CODES.contains(&w)
                    || PHONE.contains(&w)
                    || CALL.contains(&w)
                    || matches!(w, "our" | "my" | "nuestro" | "notre" | "unsere" | "nostro") =>
            {
                return true;
            }
            Some(_) => {}
            None if toks[k] == Tok::Stop => break,
            None => {}
        }
    }
    let before = run.start.checked_sub(1).and_then(|k| word(toks, k));
    let after = word(toks, run.end);
    // "a" is the French "à" (folded) only before an hour ("à 20 heures"); in English it
    // is an article that may bring one more character ("there's a 5 at the end").
    let hour_word = in_list(&["heures", "heure", "h", "horas", "hora", "ore", "uhr", "pm", "am", "oclock"], after);
    let at_time = in_list(&["at", "um", "alle", "vers", "las"], before) || (before == Some("a") && hour_word);
    at_time || clock_like(toks, run)
}

/// Whether a run goes straight on, with no pause, into a word the reader has no use
/// for ("just 4 4 1 2 Market, we'll have you down"): the digits may be part of
/// something else (a street, a name), and without a trigger nothing says they are a code.
fn runs_into_word(toks: &[Tok], run: &Run) -> bool {
    let Some(after) = word(toks, run.end) else {
        return false;
    };
    !known_word(after) && unit_at(toks, run.end, false).is_none()
}

/// Whether the reader has a use for `w`: a preamble, filler, trigger, correction,
/// quantity, another code's name, or a word that names a number.
fn known_word(w: &str) -> bool {
    let lists: [&[&str]; 19] = [
        PREAMBLE,
        PREAMBLE_MORE,
        QUANTITY,
        STREET,
        CODE_FILLERS,
        REPEAT,
        CORRECTION,
        DENY,
        AFFIRM,
        STALLING,
        BOOKING,
        BOOKED,
        NUMBER_NAMERS,
        LAST_JOINERS,
        TRIGGER_LEADS,
        STRONG_TRIGGERS,
        WEAK_TRIGGERS,
        OTHER_CODES,
        COPULA,
    ];
    lists.iter().any(|list| list.contains(&w))
}

/// Whether a run is an hour and its minutes said as two numbers: "7 30", "19 45".
/// Said in words ("seven thirty") it is never read as a code at all.
fn clock_like(toks: &[Tok], run: &Run) -> bool {
    let words: Vec<&str> = toks[run.start..run.end].iter().filter_map(Tok::word).collect();
    match words.as_slice() {
        [h, m] => h.parse::<u32>().is_ok_and(|h| h <= 23) && m.len() == 2 && m.parse::<u32>().is_ok_and(|m| m < 60),
        _ => false,
    }
}

/// Whether a host turn opens by taking back what it said before: "oh wait, it's …",
/// "sorry, I misread, …".
fn opens_with_correction(toks: &[Tok]) -> bool {
    toks.iter()
        .enumerate()
        .take(6)
        .take_while(|(k, _)| run_at(toks, *k).is_none_or(|r| !r.valid()))
        .any(|(k, t)| t.word().is_some_and(|w| CORRECTION.contains(&w)) && takes_back(toks, k))
}

/// Words that put "the number" / "the code" in a booking's context.
const BOOKED: &[&str] = &[
    "booked",
    "confirmed",
    "reserved",
    "reservation",
    "booking",
    "reservado",
    "confirmado",
    "reserve",
    "confirme",
    "gebucht",
    "bestatigt",
    "reserviert",
    "prenotato",
    "confermato",
    "reserva",
    "prenotazione",
];

/// Whether an agent line asks about the code (so the next host turn may answer it
/// without a trigger): "do you have a confirmation number?", "could you spell that?".
pub(super) fn asks_for_code(toks: &[Tok], code_in_play: bool) -> bool {
    toks.iter().enumerate().any(|(i, t)| match t {
        Tok::Word(w) => match w.as_str() {
            "confirmation" | "reference" | "confirmacion" | "conferma" | "referencia" | "bestatigungsnummer" => true,
            "code" | "number" | "numero" | "codigo" | "nummer" | "codice" => weak_trigger_ok(toks, i, true),
            "spell" | "repeat" | "again" => code_in_play,
            _ => false,
        },
        _ => false,
    })
}

/// An agent line that only keeps the host talking ("mm-hm", "okay") or echoes the
/// characters so far ("Alpha, bravo."), so a code split around it reads on.
pub(super) fn transparent(agent: &[Tok]) -> bool {
    let words: Vec<&str> = agent.iter().filter_map(Tok::word).collect();
    let backchannel = backchannel(agent);
    // "Alpha, bravo.", "3 3, okay.": the characters so far, perhaps with a backchannel.
    let echo = !words.is_empty() && {
        let mut i = 0;
        let mut all_code = true;
        while i < agent.len() {
            match &agent[i] {
                Tok::Word(w) | Tok::Letters(w) => match unit_at(agent, i, true) {
                    Some(u) => i = u.next,
                    None if BACKCHANNEL.contains(&w.as_str()) => i += 1,
                    None => {
                        all_code = false;
                        break;
                    }
                },
                _ => i += 1,
            }
        }
        all_code
    };
    backchannel || echo
}

/// An agent line of nothing but "mm-hm", "okay", "go ahead": no echo, no read-back.
pub(super) fn backchannel(agent: &[Tok]) -> bool {
    let words: Vec<&str> = agent.iter().filter_map(Tok::word).collect();
    !words.is_empty() && words.len() <= 4 && words.iter().all(|w| BACKCHANNEL.contains(w))
}

/// Whether a host line says yes or no ("Q as in queen, yes."): it answers the agent's
/// echo as a read-back; it does not go on with the code.
fn answers_read_back(toks: &[Tok]) -> bool {
    toks.iter().filter_map(Tok::word).any(|w| matches!(w, "yes" | "yeah" | "yep" | "yup" | "correct" | "no" | "nope"))
}

/// Where the code the host left unfinished starts, if `next` opens by saying it again
/// and going on ("…is 7 1" then "7 1 9 9").
fn restart_of(host: &[Tok], next: &[Tok]) -> Option<(usize, usize)> {
    let mut end = host.len();
    while end > 0 && matches!(host[end - 1], Tok::Comma | Tok::Stop) {
        end -= 1;
    }
    let unfinished = (0..end).find_map(|k| run_at(host, k).filter(|r| r.end == end))?;
    // "Sorry, from the top, 5 0 7 7 3": a few words first, if none names another code.
    let first = (0..next.len().min(PREAMBLE_BUDGET)).find(|&k| unit_at(next, k, false).is_some())?;
    if next[..first].iter().filter_map(Tok::word).any(|w| OTHER_CODES.contains(&w)) {
        return None;
    }
    let restarted = run_at(next, first)?;
    let started_over = unfinished.code.len() >= 2 || first == 0;
    (started_over && restarted.code.len() > unfinished.code.len() && restarted.code.starts_with(&unfinished.code))
        .then_some((unfinished.start, first))
}

/// Where the code characters an utterance opens with start, past fillers and "and
/// then": "then 8 8 1", "and then 0 4".
pub(super) fn opening_unit(next: &[Tok]) -> Option<usize> {
    let mut f = next.iter().position(|t| t.word().is_some())?;
    while in_list(CODE_FILLERS, word(next, f)) || matches!(next.get(f), Some(Tok::Comma)) {
        f += 1;
    }
    if word(next, f) == Some("and") && word(next, f + 1) == Some("then") {
        f += 2;
    }
    plain_unit_follows(next, f).then_some(f)
}

/// Whether a host utterance ends on a trigger still waiting for its code:
/// "Confirmation number is...".
fn awaits_code(host: &[Tok]) -> bool {
    let words: Vec<&str> = host
        .iter()
        .rev()
        .map_while(|t| match t {
            Tok::Stop | Tok::Comma => Some(None),
            Tok::Word(w) => Some(Some(w.as_str())),
            _ => None,
        })
        .flatten()
        .take(4)
        .collect();
    let preamble = |w: &&str| PREAMBLE.contains(w) || PREAMBLE_MORE.contains(w) || WEAK_TRIGGERS.contains(w);
    let trigger_at = words.iter().position(|w| STRONG_TRIGGERS.contains(w));
    trigger_at.is_some_and(|t| words[..t].iter().all(preamble))
}

/// Appends the host's next utterance. If it starts over the code the first one left
/// unfinished ("…is 4 4" then "4 4 1 2"), the unfinished part gives way.
fn join(host: &mut Vec<Tok>, next: Vec<Tok>) {
    // "Confirmation number is..." then "4 4 1 2.": the pause is inside the sentence.
    if awaits_code(host) {
        while matches!(host.last(), Some(Tok::Stop | Tok::Comma)) {
            host.pop();
        }
        host.push(Tok::Comma);
        host.extend(next);
        return;
    }
    if !matches!(host.last(), Some(Tok::Stop)) {
        let first = next.iter().position(|t| t.word().is_some());
        let opening = opening_unit(&next).and_then(|f| run_at(&next, f));
        if let Some((start, from)) = restart_of(host, &next) {
            host.truncate(start);
            host.extend(next.into_iter().skip(from));
            return;
        }
        // Only an utterance that opens with code characters up to a pause goes on with
        // the code ("0 4,", "7. That's it."); "7 30 works for us" is something else.
        let spelled_on = first.is_some_and(|f| in_list(SPELL_JOINERS, word(&next, f)));
        let code_goes_on = opening.is_some_and(|r| matches!(next.get(r.end), Some(Tok::Stop | Tok::Comma) | None));
        host.push(if code_goes_on || spelled_on { Tok::Comma } else { Tok::Stop });
    }
    host.extend(next);
}

/// A conversation as turns: consecutive lines of one speaker joined, and a host
/// cut off mid-code joined across the agent's backchannel.
pub(super) fn turns<'a>(lines: impl IntoIterator<Item = (Speaker, &'a str)>) -> Vec<(Speaker, Vec<Tok>)> {
    let mut out: Vec<(Speaker, Vec<Tok>)> = Vec::new();
    // The host's last utterance trailed off ("8 2..."): a pause, not a sentence's end.
    let mut host_trailed = false;
    for (speaker, text) in lines {
        let toks = tokenize(text);
        let n = out.len();
        let trailed = host_trailed;
        if speaker == Speaker::Restaurant {
            let end = text.trim_end();
            host_trailed = end.ends_with("...") || end.ends_with('…');
        }
        let goes_on = opening_unit(&toks).is_some() || in_list(SPELL_JOINERS, word(&toks, 0));
        if trailed && goes_on && speaker == Speaker::Restaurant {
            let host = match out.len() {
                k if k >= 2 && out[k - 1].0 == Speaker::Agent && transparent(&out[k - 1].1) => out.get_mut(k - 2),
                k if k >= 1 && out[k - 1].0 == Speaker::Restaurant => out.get_mut(k - 1),
                _ => None,
            };
            if let Some((Speaker::Restaurant, host)) = host {
                while matches!(host.last(), Some(Tok::Stop)) {
                    host.pop();
                }
            }
        }
        // Host, backchannel, host: the backchannel drops out when the host had not
        // finished a sentence.
        if speaker == Speaker::Restaurant && n >= 2 {
            let (before, last) = out.split_at_mut(n - 1);
            let (agent_speaker, agent) = &last[0];
            let (host_speaker, host) = &mut before[n - 2];
            if *agent_speaker == Speaker::Agent
                && *host_speaker == Speaker::Restaurant
                && (!matches!(host.last(), Some(Tok::Stop)) || awaits_code(host))
                && ((transparent(agent) && goes_on && !answers_read_back(&toks))
                    // "…is 7 1" / "Sorry, 7 1 what?" / "7 1 9 9.": said again from the start.
                    || restart_of(host, &toks).is_some())
            {
                join(host, toks);
                out.pop();
                continue;
            }
        }
        match out.last_mut() {
            // A code split across two utterances reads on; a stop still ends it.
            Some((last, joined)) if *last == speaker => join(joined, toks),
            _ => out.push((speaker, toks)),
        }
    }
    out
}

/// Whether a host turn stops on code characters with no full stop after them: "…is
/// W as in whiskey 4 oh oh", "…4 4 0 9 1,".
fn ends_open(toks: &[Tok]) -> bool {
    let mut end = toks.len();
    while end > 0 && toks[end - 1] == Tok::Comma {
        end -= 1;
    }
    end > 0 && toks[end - 1] != Tok::Stop && (0..end).any(|k| run_at(toks, k).is_some_and(|r| r.end == end))
}

/// Whether a host turn's first sentence holds a code character that no word names as
/// something else ("and then a 5 at the end", "the next bit is 2 2"; not "for 4 people").
fn goes_on_with_code(toks: &[Tok]) -> bool {
    let to = toks.iter().position(|t| *t == Tok::Stop).unwrap_or(toks.len());
    (0..to).any(|k| {
        let named = k.checked_sub(1).is_some_and(|b| in_list(NUMBER_NAMERS, word(toks, b)));
        unit_at(toks, k, false).is_some_and(|u| !named && !in_list(QUANTITY, word(toks, u.next)))
    })
}

/// The code in a host turn that says nothing else ("It's P Q 4 4."): four to eight
/// characters with a digit, whole, no time, nothing after it.
fn lone_code(toks: &[Tok]) -> Option<String> {
    let [run] = runs(toks).try_into().ok()?;
    let before_ok = toks[..run.start].iter().filter_map(Tok::word).all(answer_opening);
    let nothing_after = toks[run.end..].iter().all(|t| matches!(t, Tok::Stop | Tok::Comma));
    let digit = run.code.chars().any(|c| c.is_ascii_digit());
    let fits = (4..=8).contains(&run.code.len()) && digit && takeable(toks, &run) && !explained(toks, &run);
    (before_ok && nothing_after && fits).then_some(run.code)
}

/// Whether a host reply accepts what the agent just read back: "yes, that's right",
/// "Yep, and that's for 2 people at 7". Not "that's the table number", nor a reply that
/// takes anything back or gives another code.
pub(super) fn accepts(reply: &[Tok], code: &str) -> bool {
    // "uh-huh" and "mm-hm" arrive as two words each.
    let mut said = reply.iter().filter_map(Tok::word).skip_while(|w| matches!(*w, "uh" | "um" | "oh" | "well"));
    let (first, second) = (said.next(), said.next());
    let opens_yes = match first {
        Some("that's" | "thats") => second.is_some_and(|w| matches!(w, "right" | "correct" | "it")),
        // "Eso es.", "C'est ça.", "Das stimmt.", "È giusto.": "that's it" in the others.
        Some("eso" | "es") => second.is_some_and(|w| matches!(w, "es" | "correcto" | "exacto")),
        Some("c'est") => second.is_some_and(|w| matches!(w, "ca" | "bon" | "juste" | "exact" | "correct")),
        Some("das") => second.is_some_and(|w| matches!(w, "stimmt" | "ist" | "passt")),
        Some("e") => second.is_some_and(|w| matches!(w, "giusto" | "corretto" | "esatto")),
        Some(w) => AFFIRM.contains(&w) || matches!(w, "huh" | "mm" | "hm"),
        None => false,
    };
    let takes_back = reply.iter().filter_map(Tok::word).any(|w| DENY.contains(&w) || CORRECTION.contains(&w));
    let other_code = runs(reply).iter().any(|r| r.code != code);
    opens_yes && !takes_back && !other_code
}

/// The code the host gave, after corrections, or `None` when there was none or the
/// conversation does not settle on one.
/// Words that say what the code is, opening a host's answer to an echo: "it's V",
/// "es la V", "c'est T", "das ist F".
const IT_IS: &[&str] = &["it's", "its", "it", "is", "that's", "thats", "es", "la", "el", "c'est", "cest", "das", "ist"];

/// Where the letter starts in a host turn that opens by putting a letter right: "no V
/// as in Victor", "no no, T as in Tom", "not N, M as in Mary", "it's F as in Frank".
fn letter_correction_start(toks: &[Tok]) -> Option<usize> {
    let mut k = 0;
    let mut opened = false;
    while let Some(tok) = toks.get(k) {
        let w = match tok {
            Tok::Comma | Tok::Stop => {
                k += 1;
                continue;
            }
            Tok::Word(w) | Tok::Letters(w) => w.as_str(),
            Tok::Time | Tok::Phone => return None,
        };
        if w == "not" {
            // "not B": the letter the agent said, named to be set aside.
            k = unit_at(toks, k + 1, true).filter(|u| !u.numeric && u.chars.len() == 1)?.next;
        } else if DENY.contains(&w) || IT_IS.contains(&w) {
            k += 1;
        } else {
            break;
        }
        opened = true;
    }
    let letter = unit_at(toks, k, true).filter(|u| !u.numeric && u.chars.len() == 1);
    (opened && letter.is_some()).then_some(k)
}

/// The host's `code` with the character the agent's `echo` got wrong replaced by
/// `fix`, a letter and perhaps the rest of the code said on from it. `None` when this
/// is not such a correction; `Some(None)` when which character it replaces cannot be
/// told ("D T 4" / "P?" / "no, B as in boy").
fn echoed_letter_replaced(code: &str, echo: &str, fix: &str) -> Option<Option<String>> {
    let code: Vec<char> = code.chars().collect();
    let echo: Vec<char> = echo.chars().collect();
    let fix: Vec<char> = fix.chars().collect();
    let letter = |c: &char| c.is_ascii_alphabetic();
    let place = match echo.as_slice() {
        // One letter echoed: the one the host had just said, if the code so far ends on
        // a letter, or else its only letter.
        [said] if letter(said) => {
            let letters: Vec<usize> = (0..code.len()).filter(|&p| letter(&code[p])).collect();
            let place = match letters.as_slice() {
                _ if code.last().is_some_and(letter) => code.len() - 1,
                [only] => *only,
                _ => return Some(None),
            };
            // The agent had that one right: the "no" is about something else.
            if code[place] == *said {
                return None;
            }
            place
        }
        // The whole code read back with one letter wrong.
        _ if echo.len() == code.len() => {
            let differ: Vec<usize> = (0..code.len()).filter(|&p| code[p] != echo[p]).collect();
            match differ.as_slice() {
                [p] if letter(&code[*p]) || letter(&echo[*p]) => *p,
                _ => return None,
            }
        }
        _ => return None,
    };
    let rest = &code[place + 1..];
    let mut fixed: Vec<char> = code[..place].to_vec();
    if rest.is_empty() || fix.get(1..) == Some(rest) {
        // The last character put right, and the code going on; or the rest said again.
        fixed.extend(&fix);
    } else if fix.len() == 1 {
        fixed.extend(&fix);
        fixed.extend(rest);
    } else {
        // "D T 4" read back "D P 4", then "no, T, 4 1": the T and then 4 1, or the 4 again?
        return Some(None);
    }
    Some(Some(fixed.into_iter().collect()))
}

/// The code characters a turn ends on, whole or not: "…is D as in David, T as in
/// Tom", "B as in boy?".
fn closing_run(toks: &[Tok]) -> Option<Run> {
    let mut end = toks.len();
    while end > 0 && matches!(toks[end - 1], Tok::Comma | Tok::Stop) {
        end -= 1;
    }
    (0..end).find_map(|k| run_at(toks, k).filter(|r| r.end == end && !r.ambiguous))
}

/// A host turn after the agent echoed a letter wrongly ("B as in boy?" for a V): the
/// host's letter ("no, V as in Victor, V, 3 3 1") replaces the one the agent got wrong,
/// not all that `host` said before; when which one cannot be told, the code is taken back.
fn put_right_echoed_letter(toks: &[Tok], agent: &[Tok], host: &[Tok], mut saids: Vec<Said>) -> Vec<Said> {
    let (Some(echo), Some(said), Some(k)) =
        (closing_run(agent).filter(|_| transparent(agent)), closing_run(host), letter_correction_start(toks))
    else {
        return saids;
    };
    let Some(fix) = run_at(toks, k) else {
        return saids;
    };
    // The host's letter and what follows it, read as a code or as characters left
    // unexplained ("Not N. M as in Mary, M, then 7 7 2.").
    let Some(first) = saids.iter().position(|s| matches!(s, Said::Code { .. } | Said::Stray { .. })) else {
        return saids;
    };
    if !matches!(&saids[first], Said::Code { code, .. } | Said::Stray { code } if *code == fix.code) {
        return saids;
    }
    if let Some(fixed) = echoed_letter_replaced(&said.code, &echo.code, &fix.code) {
        let whole = fixed.filter(|code| (MIN_LEN..=MAX_LEN).contains(&code.chars().count()));
        saids[first] = match whole {
            Some(code) => Said::Code { code, corrects: true },
            None => Said::Doubt,
        };
    }
    saids
}

pub(super) fn host_code(turns: &[(Speaker, Vec<Tok>)]) -> Option<String> {
    let mut current: Option<String> = None;
    let mut conflict = false;
    let mut strays: Vec<String> = Vec::new();
    let mut agent_before: Option<&[Tok]> = None;
    // A host turn of nothing but a code, with no trigger: taken only once read back.
    let mut unclaimed: Option<String> = None;
    // The agent asked for the code and the host only stalled ("One moment."): a reply
    // after the agent's "sure" still answers the question.
    let mut still_asked = false;
    // The host's last utterance stopped on code characters with no full stop ("…W as in
    // whiskey 4 oh oh"), and the agent only kept it talking since.
    let mut left_open = false;
    // The host's turn before the agent's last one: what an echo of the agent's echoed.
    let mut host_before: Option<&[Tok]> = None;
    for (speaker, toks) in turns {
        if *speaker == Speaker::Agent {
            still_asked &= transparent(toks);
            left_open &= backchannel(toks);
            agent_before = Some(toks);
            continue;
        }
        // The next turn goes on with code characters that could not be joined ("Sorry,
        // and then a 5 at the end."): the code read so far may be cut short.
        let cut_short = std::mem::replace(&mut left_open, ends_open(toks)) && goes_on_with_code(toks);
        let code_in_play = current.is_some() || conflict;
        let read_back = agent_before.map(runs).unwrap_or_default();
        // The agent asked about the code, or read one back, or the host comes back to
        // it ("Oh wait, it's 4413"): the reply may be the code.
        let asked = agent_before.is_some_and(|agent| asks_for_code(agent, code_in_play)) || still_asked;
        let answering = asked || (code_in_play && (!read_back.is_empty() || opens_with_correction(toks)));
        // The agent read back another code the length of ours ("Is that 4 4 1 2 or
        // 4 4 2 1?", "4 4 2 1?"): a code or a "no" in the reply settles which, and so do
        // characters said again without a "yes" ("B as in boy"); "yes" or "the second
        // one" alone does not.
        let contested = agent_before.is_some_and(|agent| {
            runs(agent)
                .iter()
                .filter(|r| !explained(agent, r))
                .any(|r| current.as_ref().is_some_and(|c| c.len() == r.code.len() && *c != r.code))
        });
        let saids = read_host_turn(toks, answering, !read_back.is_empty());
        let saids = match (agent_before, host_before) {
            (Some(agent), Some(host)) if !conflict => put_right_echoed_letter(toks, agent, host, saids),
            _ => saids,
        };
        // "It's K Z 7 3." / "K Z 7 3, got it." / "Yep.": a code with no trigger, which the
        // agent read back and the host accepted (or put right: "No, the last one's a 3").
        if let (Some(said), Some(agent)) = (unclaimed.take(), agent_before) {
            let agent_runs = runs(agent);
            if let [echo] = agent_runs.as_slice() {
                let accepted = echo.code == said && accepts(toks, &said);
                let put_right = echo.code != said
                    && echo.code.len() == said.len()
                    && toks.iter().filter_map(Tok::word).next().is_some_and(|w| DENY.contains(&w))
                    && placed_character(toks, 0, &echo.code).is_some_and(|(fixed, _, _)| fixed == said);
                if (accepted || put_right) && current.is_none() && !conflict {
                    current = Some(said);
                }
            }
        }
        let opening_turn = agent_before.is_none_or(|agent| asks_for_code(agent, false));
        let gave_code = saids.iter().any(|s| matches!(s, Said::Code { .. }));
        if opening_turn && current.is_none() && !gave_code {
            unclaimed = lone_code(toks);
        }
        // "Yeah, hold on.", "Sí, un momento.": a yes and a stall still leave it asked.
        still_asked = asked && saids.iter().all(|s| *s == Said::Affirm);
        // "And 7." in a turn of its own: more of the code, or a change to it.
        // "Yes, and then a 7." after a read-back: the yes does not settle it.
        let only_yes = saids.iter().all(|s| *s == Said::Affirm);
        if only_yes && current.is_some() && fragment_sentence(toks, 0) {
            conflict = true;
        }
        let no_code = !saids.iter().any(|s| matches!(s, Said::Code { .. }));
        // "Oh wait, don't use that one", "Hmm, actually that's the waitlist number": a
        // later turn taking the code back with no code of its own leaves none. ("No, B as
        // in boy" answers a read-back; "Thursday, actually." ends on its "actually".)
        let retracted = (0..toks.len()).any(|k| {
            let retracting = in_list(RETRACT, word(toks, k))
                && takes_back(toks, k)
                && !matches!(toks.get(k + 1), Some(Tok::Stop) | None);
            (retracting || disowns(toks, k)) && runs(&toks[k..]).is_empty()
        });
        if no_code && retracted {
            current = None;
        }
        let restates = !saids.contains(&Said::Affirm) && (0..toks.len()).any(|k| unit_at(toks, k, false).is_some());
        if contested && !saids.iter().any(|s| matches!(s, Said::Code { .. } | Said::Deny)) && !restates {
            conflict = true;
        }
        if cut_short && !gave_code {
            current = None;
        }
        for said in saids {
            match said {
                Said::Code { code, corrects: true } => {
                    current = Some(code);
                    conflict = false;
                }
                Said::Code { code, corrects: false } => match &current {
                    _ if conflict => {}
                    None => current = Some(code),
                    Some(c) if *c == code => {}
                    Some(_) => conflict = true,
                },
                // Taken back: a code said later may replace it; nothing else will.
                Said::Doubt => current = None,
                Said::Withdraw { code } => {
                    if current.as_ref() == Some(&code) && !conflict {
                        current = None;
                    }
                }
                Said::Stray { code } => strays.push(code),
                // "No" to a read-back of the very code we heard: the host disowns it.
                Said::Deny if read_back.iter().any(|r| Some(&r.code) == current.as_ref()) => conflict = true,
                // "Sorry, wrong one." with nothing read back: the code is taken back ("Sorry,
                // one more thing" is not: it has no "no", "wrong" or "not").
                Said::Deny if read_back.is_empty() && toks.iter().filter_map(Tok::word).any(|w| DENY.contains(&w)) => {
                    current = None
                }
                Said::Deny | Said::Affirm => {}
            }
        }
        agent_before = None;
        host_before = Some(toks);
    }
    // Other code characters nobody explained: the code may be those instead. The
    // agent's own digits (its phone number, the party, the time) said back are not.
    let agent_said: Vec<String> = turns
        .iter()
        .filter(|(speaker, _)| *speaker == Speaker::Agent)
        .flat_map(|(_, toks)| runs(toks))
        .map(|r| r.code)
        .collect();
    let unexplained = strays.iter().any(|s| Some(s) != current.as_ref() && !agent_said.contains(s));
    if conflict || unexplained {
        None
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(lines: &[&str]) -> Option<String> {
        host_code(&turns(lines.iter().map(|l| (Speaker::Restaurant, *l))))
    }

    fn convo(lines: &[(&str, &str)]) -> Option<String> {
        let lines =
            lines.iter().map(|(who, text)| (if *who == "a" { Speaker::Agent } else { Speaker::Restaurant }, *text));
        host_code(&turns(lines))
    }

    #[test]
    fn text_after_the_code_ends_it() {
        assert_eq!(host(&["Your confirmation is 4 4 1 2. 7:30, party of 2."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Your confirmation is 4 4 1 2, 7:30 for two people"]).as_deref(), Some("4412"));
        assert_eq!(host(&["confirmation number 4 4 1 2 and our number is 510-548-5525"]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation number is 8 8 1 9 I put a note about the window"]).as_deref(), Some("8819"));
        assert_eq!(host(&["Confirmation number is 8 8 1 9. I put a note."]).as_deref(), Some("8819"));
        assert_eq!(host(&["confirmation is 5 5 2 1 7 30 pm"]), None, "where the code ends cannot be told");
    }

    #[test]
    fn a_code_said_twice_is_one_code() {
        assert_eq!(host(&["Confirmation 4 4 1 2, 4 4 1 2."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation number is 4412. Again, 4412."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation is A73X A73X"]).as_deref(), Some("A73X"));
    }

    #[test]
    fn a_code_that_may_go_on_past_an_unknown_word_is_not_taken() {
        assert_eq!(host(&["Confirmation is 7 7 B like in boy 4."]), None);
        assert_eq!(host(&["Confirmation is 4 4 1 2 for 2 people at 7."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation is 4 4 1 2 $40 deposit."]).as_deref(), Some("4412"));
        assert_eq!(host(&["The confirmation code for the valet is 3 3 4."]), None);
    }

    #[test]
    fn a_fragment_of_code_left_in_the_codes_sentence_gives_no_code() {
        assert_eq!(host(&["Confirmation is 4 4 1 2, okay, 7 7."]), None);
        assert_eq!(host(&["Confirmation is 4 4 1 2, so that's, 9."]), None);
        assert_eq!(host(&["Confirmation is 4 4 1 2, for 2, at 8."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Il numero di conferma è 2 2 8 5, per le 20 e 30."]).as_deref(), Some("2285"));
        assert_eq!(
            host(&["Confirmation is 4 4 1 2, and the promo code, if you like, is SPRING 10."]).as_deref(),
            Some("4412")
        );
        assert_eq!(host(&["Confirmation is 7 7 4 0 and that's 7 7 4 0."]).as_deref(), Some("7740"));
    }

    #[test]
    fn a_sentence_of_one_more_character_after_the_code_gives_no_code() {
        let ask = ("a", "Great, is there a confirmation number?");
        assert_eq!(convo(&[ask, ("r", "Yeah, it's 4 4 1 2."), ("r", "Uh, 7.")]), None);
        let lines = [("r", "Your confirmation number is 5 5 0 2"), ("a", "Okay."), ("r", "And 7.")];
        assert_eq!(convo(&lines), None);
        assert_eq!(convo(&[ask, ("r", "Yeah, it's 4 4 1 2."), ("r", "For 4 people.")]).as_deref(), Some("4412"));
    }

    #[test]
    fn a_trigger_left_waiting_reads_on_after_a_backchannel() {
        let lines = [("r", "Confirmation number is..."), ("a", "Mm-hm."), ("r", "4 4 1 2.")];
        assert_eq!(convo(&lines).as_deref(), Some("4412"));
        let lines = [("r", "Confirmation number is..."), ("a", "Could you speak up?"), ("r", "4 4 1 2.")];
        assert_eq!(convo(&lines), None, "a real question");
    }

    #[test]
    fn a_question_the_host_stalled_on_is_still_asked_after_a_backchannel() {
        let ask = ("a", "Great, is there a confirmation number?");
        assert_eq!(
            convo(&[ask, ("r", "One moment."), ("a", "Sure."), ("r", "Okay, 4 4 1 2.")]).as_deref(),
            Some("4412")
        );
        assert_eq!(convo(&[ask, ("r", "One moment."), ("a", "Sure."), ("r", "Okay, 7 30 works.")]), None);
        let lines = [ask, ("r", "One moment."), ("a", "And is the patio open?"), ("r", "Yes, 4 4 1 2.")];
        assert_eq!(convo(&lines), None, "another question came between");
    }

    #[test]
    fn and_then_goes_on_with_the_code() {
        assert_eq!(host(&["Confirmation is 4 4 1 2 and then 7 7."]).as_deref(), Some("441277"));
        assert_eq!(host(&["Confirmation is 4 4 1 2 and, uh, 7 7."]), None, "more code after and");
        assert_eq!(host(&["Confirmation is 4 4 1 2 and 2 kids."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation is 4 4 1 2 and our number is 5 5 5 0 1 3 4."]).as_deref(), Some("4412"));
    }

    #[test]
    fn a_filler_in_any_language_does_not_end_the_code() {
        for text in [
            "Confirmation is 4 4 1 2, ehm, 7.",
            "Votre numéro de confirmation est le 4 4 1 2, euh, 7.",
            "Ihre Bestätigungsnummer ist 4 4 1 2, ähm, 7.",
            "Su número de confirmación es el 4 4 1 2, eh, 7.",
        ] {
            assert_eq!(host(&[text]).as_deref(), Some("44127"), "{text}");
        }
    }

    #[test]
    fn words_between_the_trigger_and_the_code_are_skipped() {
        assert_eq!(host(&["Your confirmation number is, uh, 7 2 1 9."]).as_deref(), Some("7219"));
        assert_eq!(host(&["the confirmation is going to be B 4 4 2"]).as_deref(), Some("B442"));
        assert_eq!(host(&["and the confirmation for that is 3 0 9 1"]).as_deref(), Some("3091"));
        assert_eq!(host(&["Your confirmation's 6 6 1 0"]).as_deref(), Some("6610"));
        assert_eq!(host(&["Your reservation number's 6 6 1 0"]).as_deref(), Some("6610"));
    }

    #[test]
    fn numbers_in_words_pairs_and_hyphens() {
        assert_eq!(host(&["confirmation number forty-five eighty-two"]).as_deref(), Some("4582"));
        assert_eq!(host(&["confirmation number is 2-oh-3-3"]).as_deref(), Some("2033"));
        assert_eq!(host(&["confirmation number is double-seven four one"]).as_deref(), Some("7741"));
        assert_eq!(host(&["confirmation is twelve hundred"]).as_deref(), Some("1200"));
        assert_eq!(host(&["Confirmation is A as in apple, seven, three, X."]).as_deref(), Some("A73X"));
        assert_eq!(host(&["Reference is X-ray, Yankee, 5, 5."]).as_deref(), Some("XY55"));
    }

    #[test]
    fn corrections_replace_and_partial_ones_void() {
        assert_eq!(host(&["Confirmation is 5 5 8 2, no sorry, 5 5 8 3."]).as_deref(), Some("5583"));
        assert_eq!(host(&["Confirmation is 5 5 8 2, I mean 5 5 8 3."]).as_deref(), Some("5583"));
        assert_eq!(host(&["Confirmation is 9 9 1 4, no 9 9 4 1."]).as_deref(), Some("9941"));
        assert_eq!(
            host(&["Confirmation is 7 7 1 8, hold on, that's the Thompson party. Yours is 7 7 8 1."]).as_deref(),
            Some("7781")
        );
        assert_eq!(host(&["Confirmation is 4-O-7-7."]).as_deref(), Some("4077"));
        assert_eq!(host(&["Confirmation is 5 5 8 2, sorry, the last digit is 3."]).as_deref(), Some("5583"));
        assert_eq!(host(&["Confirmation is 5 5 8 2, sorry, the last two are 3 1."]), None);
        assert_eq!(
            host(&["Confirmation is 6 6 1 2, oh wait no that's the other party. Yours is 8 2 1 7."]).as_deref(),
            Some("8217")
        );
        assert_eq!(host(&["Confirmation is 5 5 8 2. No problem at all."]).as_deref(), Some("5582"));
        assert_eq!(host(&["Confirmation is 5 5 8 2, oh sorry, that was the old booking."]), None, "withdrawn");
    }

    #[test]
    fn a_code_split_across_two_utterances_reads_on() {
        assert_eq!(host(&["Your confirmation number is 4 4", "1 2"]).as_deref(), Some("4412"));
        assert_eq!(host(&["Your confirmation number is 4 4", "4 4 1 2."]).as_deref(), Some("4412"), "started over");
        assert_eq!(host(&["Your confirmation number is 4 4 1 2", "7 30 works for us?"]).as_deref(), Some("4412"));
        let lines = [("r", "Confirmation is K 7,"), ("a", "Mm-hm."), ("r", "7 2.")];
        assert_eq!(convo(&lines).as_deref(), Some("K772"));
        let lines = [("r", "Confirmation is K 7,"), ("a", "Could you slow down?"), ("r", "7 2.")];
        assert_eq!(convo(&lines), None, "a real question is no backchannel");
    }

    #[test]
    fn a_time_a_phone_number_or_an_address_after_the_code_is_cut_off() {
        assert_eq!(host(&["Confirmation is 4 4 1 2, seven thirty then."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation is 4 4 1 2 seven thirty."]), None);
        assert_eq!(host(&["Confirmation is A 7 3 X, 510 548 5525 if you need us."]).as_deref(), Some("A73X"));
        assert_eq!(host(&["Confirmation is 4 4 1 2, 7 30 pm."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation is 4 4 1 2, 215 Main Street."]).as_deref(), Some("4412"));
    }

    #[test]
    fn capitals_run_together_are_letters_only_beside_a_code() {
        assert_eq!(host(&["Your confirmation is PQ 7 7 2."]).as_deref(), Some("PQ772"));
        assert_eq!(host(&["Your confirmation is by SMS."]), None);
        assert_eq!(host(&["Confirmation number is seven hundred oh five."]).as_deref(), Some("705"));
        assert_eq!(host(&["Confirmation number is a hundred and twelve."]).as_deref(), Some("112"));
        assert_eq!(host(&["Confirmation number is 7 O 8 1."]).as_deref(), Some("7081"));
        assert_eq!(host(&["Confirmation number is 4 4 1 2. Oh."]).as_deref(), Some("4412"));
    }

    #[test]
    fn the_hosts_answer_to_the_agents_question_needs_no_trigger() {
        let lines = [("a", "Great. Do you have a confirmation number?"), ("r", "Sure, it's 3 3 1 8.")];
        assert_eq!(convo(&lines).as_deref(), Some("3318"));
        let lines = [("a", "And the time, seven thirty?"), ("r", "Yes, 7 30.")];
        assert_eq!(convo(&lines), None);
        let lines = [("a", "And the confirmation number?"), ("r", "Um, 7 30 tomorrow, right?")];
        assert_eq!(convo(&lines), None, "a time is no answer");
        let lines = [("a", "Do you have a confirmation number?"), ("r", "Not really, we're at 2 1 5 Main Street.")];
        assert_eq!(convo(&lines), None);
        let lines = [("r", "Confirmation number is 5 5 8 2."), ("a", "That's 5 5 8 2?"), ("r", "No, 5 5 8 3.")];
        assert_eq!(convo(&lines).as_deref(), Some("5583"));
        let lines = [("r", "Confirmation number is 5 5 8 2."), ("a", "That's 5 5 8 2?"), ("r", "No.")];
        assert_eq!(convo(&lines), None);
    }

    #[test]
    fn other_codes_never_count() {
        for text in [
            "The area code is 5 1 0.",
            "Our zip code is 9 4 7 0 9.",
            "The parking code is 4 4 1 2.",
            "The door code is 1 2 3 4, the gate code is 5 6 7 8.",
            "Dress code is smart casual.",
            "You're booked. The code for the door is 4 4 1 2.",
            "Our phone number is 5 1 0 5 4 8 5 5 2 5.",
            "Table number 12 for 4 people.",
            "Confirmation will be sent to 510-548-5525.",
        ] {
            assert_eq!(host(&[text]), None, "{text}");
        }
        assert_eq!(host(&["You're booked, the code is 4 4 1 2."]).as_deref(), Some("4412"));
        assert_eq!(host(&["The code is 4 4 1 2."]), None, "code alone needs a booking");
        assert_eq!(host(&["Confirmation number 4 4 1 2 and the parking code is 9 9 8 8."]).as_deref(), Some("4412"));
    }

    #[test]
    fn unknown_triggers_and_other_languages() {
        assert_eq!(host(&["your conf number is 7 7 1 2"]).as_deref(), Some("7712"));
        assert_eq!(host(&["reservation ID is K 9 1 4"]).as_deref(), Some("K914"));
        assert_eq!(host(&["confirmation no. 3 3 4 5"]).as_deref(), Some("3345"));
        assert_eq!(host(&["Su número de confirmación es 4 5 8 2."]).as_deref(), Some("4582"));
        assert_eq!(host(&["El código de reserva es cuatro, cinco, ocho, dos."]).as_deref(), Some("4582"));
        assert_eq!(host(&["Votre numéro de confirmation est le 4 5 8 2."]).as_deref(), Some("4582"));
        assert_eq!(host(&["Ihre Bestätigungsnummer lautet vier fünf acht zwei."]).as_deref(), Some("4582"));
        assert_eq!(host(&["Il numero di prenotazione è quattro cinque otto due."]).as_deref(), Some("4582"));
        assert_eq!(host(&["Su número de confirmación es treinta y cinco, ochenta y dos."]).as_deref(), Some("3582"));
        assert_eq!(
            host(&["C'est noté, votre code de confirmation : 7 7 3 2, à vingt heures."]).as_deref(),
            Some("7732")
        );
        assert_eq!(host(&["Votre numéro de réservation est le A B 4 4 2."]).as_deref(), Some("AB442"));
        let text = "Votre numéro de réservation est le 8 8 1 4, à 20 h 30, pour deux.";
        assert_eq!(host(&[text]).as_deref(), Some("8814"), "à is never the letter A");
        assert_eq!(host(&["Ihre Reservierungsnummer ist die 4 4 1 2 für 19 Uhr."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Il codice di conferma è 4 4 1 2 e la cena è alle 20."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Il numero di prenotazione è il 3 3 9 4 per due persone."]).as_deref(), Some("3394"));
        assert_eq!(host(&["Su número de reserva es el 5 5 2 1 a nombre de García."]).as_deref(), Some("5521"));
        assert_eq!(host(&["Votre numéro de confirmation, c'est le 12 34 56."]).as_deref(), Some("123456"));
        assert_eq!(host(&["Die Postleitzahl ist 1 0 1 1 5, die Reservierung ist bestätigt."]), None);
        // A table, gate or parking number said besides is no second code, in any language.
        for text in [
            "Su número de reserva es el 4 4 1 2, mesa 1 2 4.",
            "Il numero di prenotazione è 4 4 1 2, tavolo 1 2 4.",
            "Ihre Reservierungsnummer ist 4 4 1 2, Tisch 1 2 4.",
            "Votre numéro de réservation est le 4 4 1 2, portail 1 2 4 5.",
        ] {
            assert_eq!(host(&[text]).as_deref(), Some("4412"), "{text}");
        }
    }

    #[test]
    fn a_phone_number_given_as_the_answer_is_no_code() {
        let ask = ("a", "Do you have a confirmation number?");
        assert_eq!(convo(&[ask, ("r", "Uh, 8 1 5, 5 5 5, 0 1 4 2, call if you need it.")]), None, "area code too");
        assert_eq!(convo(&[ask, ("r", "Yeah, 5 5 5, 0 1 4 8 is the best number to reach us.")]), None);
        assert_eq!(convo(&[ask, ("r", "Yeah, 5 5 5, 0 1 4 8.")]).as_deref(), Some("5550148"), "a 7-digit code");
    }

    #[test]
    fn a_repeat_cut_short_or_slipping_gives_no_code() {
        assert_eq!(host(&["Confirmation number is 6 1 9 4, 6 1 9."]), None);
        assert_eq!(host(&["Confirmation is 4 4 1 2, 4 4 1 3."]), None);
        assert_eq!(host(&["Confirmation is 4 4 1 2 4 4 1 3."]), None, "a slip without a pause");
        assert_eq!(host(&["Confirmation is 4 4 1 2 4 4 1 2."]), None, "one long code or one said twice");
        assert_eq!(host(&["Confirmation is 1 2 1 2 1 2."]).as_deref(), Some("121212"));
        assert_eq!(host(&["Confirmation is fourteen, fourteen."]).as_deref(), Some("1414"));
    }

    #[test]
    fn a_letter_said_then_spelled_is_one_letter() {
        let text = "Confirmation number is B 4 1, actually make that D, D as in dog, 4 1.";
        assert_eq!(host(&[text]).as_deref(), Some("D41"));
        assert_eq!(host(&["Confirmation is G as in George, G as in George, 5 1."]).as_deref(), Some("GG51"));
    }

    #[test]
    fn a_letter_the_agent_echoed_wrongly_is_replaced_by_the_hosts() {
        let v = [
            ("a", "and the reference"),
            ("r", "your reference is V"),
            ("a", "B as in boy"),
            ("r", "no V as in Victor V 3 3 1"),
        ];
        assert_eq!(convo(&v).as_deref(), Some("V331"));
        let dt = [
            ("a", "and the confirmation code please"),
            ("r", "it's D as in David T as in Tom"),
            ("a", "P as in Peter"),
            ("r", "no no T as in Tom T"),
            ("a", "okay D T"),
            ("r", "then 9 0 2"),
        ];
        assert_eq!(convo(&dt).as_deref(), Some("DT902"));
        let not_n = [
            ("a", "Is there a confirmation number?"),
            ("r", "Sure, the code is M as in Mary"),
            ("a", "N as in Nancy?"),
            ("r", "Not N. M as in Mary, M, then 7 7 2."),
        ];
        assert_eq!(convo(&not_n).as_deref(), Some("M772"));
        // The echo could stand for the D or the T.
        let unclear = [
            ("a", "And the reference?"),
            ("r", "It's D as in David, T as in Tom, 4"),
            ("a", "P as in Peter?"),
            ("r", "No, B as in boy, 4 1."),
        ];
        assert_eq!(convo(&unclear), None);
        // The P put right, and then "4 1": the code going on, or its 4 said again?
        let read_back = [
            ("a", "And the reference?"),
            ("r", "your reference is D T 4"),
            ("a", "D P 4?"),
            ("r", "no, T as in Tom, 4 1"),
        ];
        assert_eq!(convo(&read_back), None);
    }

    #[test]
    fn a_letter_spelled_then_said_again_is_one_letter() {
        assert_eq!(host(&["Confirmation is R as in Robert R, 4 4 2."]).as_deref(), Some("R442"));
        assert_eq!(host(&["Confirmation is R as in Robert, R, 4 4 2."]).as_deref(), Some("R442"));
        // One more R after that: a double, or the same letter once more?
        assert_eq!(host(&["Confirmation is R as in Robert, R R, 4 4 2."]), None);
    }

    #[test]
    fn only_the_last_group_is_judged_as_a_repeat() {
        assert_eq!(host(&["Your confirmation number is 4 4 1 2, 1 2."]), None, "its end said again?");
        assert_eq!(host(&["Your confirmation number is 12 12 12."]).as_deref(), Some("121212"));
        assert_eq!(host(&["Your confirmation number is 1 2, 1 2, 1 2, 1 2."]), None);
        assert_eq!(host(&["Your confirmation number is 4, 4, 4, 4, 1, 2."]).as_deref(), Some("444412"));
        assert_eq!(host(&["Your confirmation number is 1, 2, 3, 1, 2, 3."]), None);
        assert_eq!(host(&["Your confirmation number is 4, 4, 1, 1."]).as_deref(), Some("4411"));
        assert_eq!(host(&["Your confirmation number is 7, 7, 3, 7, 3."]).as_deref(), Some("77373"));
    }

    #[test]
    fn the_last_character_may_follow_and_after_a_pause() {
        let text = "Your confirmation code is, let me see, M as in Mary, 7, 7, and... 3.";
        assert_eq!(host(&[text]).as_deref(), Some("M773"));
    }

    #[test]
    fn a_code_started_over_is_the_last_saying() {
        assert_eq!(host(&["Your confirmation number is A 7 7, A 7 7 2."]).as_deref(), Some("A772"));
        assert_eq!(host(&["Confirmation number is 2 2 8, uh, 2 2 8 6."]).as_deref(), Some("2286"));
    }

    #[test]
    fn a_word_at_the_codes_edge_that_may_belong_to_it_gives_no_code() {
        assert_eq!(host(&["Confirmation number is O 7 7 1."]), None, "the letter O or a zero");
        assert_eq!(host(&["Confirmation number is 8 0 8 O."]), None);
        assert_eq!(host(&["Confirmation is 3 X 9 e."]), None);
        assert_eq!(host(&["Your confirmation number is for 4 1 2."]), None, "four?");
        assert_eq!(host(&["Confirmation number is to 8 8 1."]), None, "two?");
        assert_eq!(host(&["Il codice di conferma è 4 4 1 2 e la cena è alle 20."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Su número de reserva es el 5 5 2 1 y 3 personas."]).as_deref(), Some("5521"));
    }

    #[test]
    fn a_no_right_after_the_code_takes_it_back() {
        let text = "Ihre Bestätigungsnummer ist 4 4 1 7, nein Moment, 4 4 7 1.";
        assert_eq!(host(&[text]).as_deref(), Some("4471"));
        assert_eq!(host(&["Ihre Bestätigungsnummer ist 4 4 1 7, nein Moment, da muss ich nochmal schauen."]), None);
        assert_eq!(host(&["Confirmation is 5 5 8 2. No problem at all."]).as_deref(), Some("5582"));
    }

    #[test]
    fn digits_named_another_code_after_they_are_said_are_not_the_code() {
        let ask = ("a", "Do you have a confirmation number?");
        assert_eq!(convo(&[ask, ("r", "It's 9 4 1 1 0, that's our zip, ha, we don't do those.")]), None);
        let lines =
            [ask, ("r", "Sure, 3 3 0 9, that's the parking code actually, sorry, the confirmation is 1 8 8 2.")];
        assert_eq!(convo(&lines).as_deref(), Some("1882"));
    }

    #[test]
    fn a_second_candidate_nothing_explains_gives_no_code() {
        assert_eq!(host(&["Confirmation number is 4 4 0 9, or is it 4 4 9 0, I'm not sure."]), None);
        assert_eq!(host(&["Confirmation is 7 7 1 4. Table number is 2 1 5."]).as_deref(), Some("7714"));
        assert_eq!(host(&["Confirmation 6 2 1 8, the tasting menu is 125 per person."]).as_deref(), Some("6218"));
        assert_eq!(host(&["Yes, 7 30 works. Confirmation is 4 4 1 2."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation is 4 4 1 2, the gate code is 9 9 8 1."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation is 4 4 1 2 under Kim, K I M."]).as_deref(), Some("4412"), "letters only");
    }

    #[test]
    fn one_character_corrected_by_its_place() {
        assert_eq!(host(&["Confirmation is 9 2 7 7, sorry, the first digit's an 8."]).as_deref(), Some("8277"));
    }

    #[test]
    fn an_hour_and_minutes_after_a_trigger_are_a_time() {
        assert_eq!(host(&["Confirmation, yes, 7 30 on Friday."]), None);
        assert_eq!(host(&["Confirmation number is 19 45."]), None, "as 'seven thirty' is");
        assert_eq!(host(&["Confirmation number is 19 95."]).as_deref(), Some("1995"));
        assert_eq!(host(&["Confirmation number is 7 3 0."]).as_deref(), Some("730"));
    }

    #[test]
    fn a_digits_homophone_ending_the_code_gives_no_code() {
        assert_eq!(host(&["Confirmation number is 4 4 1 to."]), None);
        assert_eq!(host(&["Confirmation number is 4 4 1 for."]), None);
        assert_eq!(host(&["Confirmation number is 4 4 1 to 9."]), None);
        assert_eq!(host(&["Confirmation number is 4 4 1 2 for 2 people."]).as_deref(), Some("4412"));
        assert_eq!(host(&["So that's confirmation 1 1 7 3 for four at seven."]).as_deref(), Some("1173"));
    }

    #[test]
    fn a_letters_homophone_at_the_edge_gives_no_code() {
        assert_eq!(host(&["Your confirmation number is, uh, bee 4 4 1."]), None);
        assert_eq!(host(&["Confirmation is kay 7 7 1."]), None);
        assert_eq!(host(&["Confirmation number is 7 7 2 see."]), None);
        assert_eq!(host(&["Confirmation number is 4 4 1 2 see you Friday."]).as_deref(), Some("4412"));
    }

    #[test]
    fn a_time_given_as_the_answer_is_no_code() {
        let lines = [("a", "Do you have a confirmation number?"), ("r", "Sure, 7 30 for 4 people, you'll get a text.")];
        assert_eq!(convo(&lines), None);
        for reply in ["Oui, pour 20 h 30.", "Oui, c'est pour 20h30."] {
            assert_eq!(convo(&[("a", "Vous avez un numéro de confirmation ?"), ("r", reply)]), None, "{reply}");
        }
    }

    #[test]
    fn a_bare_code_for_something_else_is_not_the_booking() {
        assert_eq!(host(&["You're booked. The code's 4 4 1 2 for the garage."]), None);
        assert_eq!(host(&["Confirmation is 4 4 1 2 for the table by the window."]).as_deref(), Some("4412"));
    }

    #[test]
    fn the_host_coming_back_to_correct_the_code_replaces_it() {
        let lines = [
            ("r", "Confirmation number is 5 5 1 7."),
            ("a", "Great, thank you."),
            ("r", "Oh wait, sorry, it's 5 5 7 1."),
        ];
        assert_eq!(convo(&lines).as_deref(), Some("5571"));
    }

    #[test]
    fn the_agents_own_digits_said_back_are_no_second_code() {
        let lines = [
            ("a", "My callback number is 555 0198."),
            ("r", "5 5 5, 0 1 9 8, got it. And your confirmation number is 6 0 2 2."),
        ];
        assert_eq!(convo(&lines).as_deref(), Some("6022"));
    }

    #[test]
    fn an_oh_opening_the_code_is_a_word_or_unknown() {
        let ask = ("a", "Do you have a confirmation number?");
        assert_eq!(convo(&[ask, ("r", "Oh, 4 4 1 2.")]).as_deref(), Some("4412"), "an exclamation");
        assert_eq!(host(&["Your confirmation number is, oh, 4 4 1 2."]), None, "oh: a zero or a pause");
        assert_eq!(host(&["Confirmation number is oh 4 4 1 2."]).as_deref(), Some("04412"));
    }

    #[test]
    fn a_lower_case_a_opening_the_code_may_be_the_article() {
        let ask = ("a", "Do you have a confirmation number?");
        assert_eq!(convo(&[ask, ("r", "It's a 7 7 3.")]), None, "the article, or the letter A");
        assert_eq!(host(&["Your confirmation is A 7 3 X."]).as_deref(), Some("A73X"));
        assert_eq!(host(&["Your confirmation is A as in apple, 7, 3."]).as_deref(), Some("A73"));
    }

    #[test]
    fn a_lone_letter_joining_the_last_character_is_read_only_in_its_language() {
        assert_eq!(host(&["Confirmation number is 4 4 1 2 e 7."]), None, "and, or the letter E?");
        assert_eq!(host(&["Il numero di conferma è quattro, quattro, uno e sette."]).as_deref(), Some("4417"));
        assert_eq!(host(&["Confirmation number is 3 X 9 E."]).as_deref(), Some("3X9E"), "a capital is the letter");
        assert_eq!(host(&["Confirmation number is four, eight, eight and one."]).as_deref(), Some("4881"));
    }

    #[test]
    fn a_quantity_after_the_code_goes_back_to_the_comma_only_over_an_hour() {
        assert_eq!(host(&["Confirmation number is 3 3 4, 0 4 people."]), None);
        assert_eq!(host(&["Confirmation is 4 4 1 2, 7 30 pm."]).as_deref(), Some("4412"));
    }

    #[test]
    fn a_reply_that_does_not_say_which_of_two_read_back_codes_gives_no_code() {
        let asked = [("r", "Confirmation's 4 4 1 2."), ("a", "Is that 4 4 1 2 or 4 4 2 1?")];
        assert_eq!(convo(&[asked[0], asked[1], ("r", "The second one.")]), None);
        assert_eq!(convo(&[asked[0], asked[1], ("r", "4 4 1 2.")]).as_deref(), Some("4412"));
        let lines = [("r", "Confirmation number is B 7 3 3."), ("a", "D 7 3 3?"), ("r", "No, B. B as in boy.")];
        assert_eq!(convo(&lines).as_deref(), Some("B733"));
    }

    #[test]
    fn a_letter_spelled_again_after_the_code_clarifies_it() {
        let lines = [("a", "Is there a confirmation number?"), ("r", "R, 7, 7, 2. R like Robert.")];
        assert_eq!(convo(&lines).as_deref(), Some("R772"));
        assert_eq!(host(&["Confirmation number is Two. Five. Four. One."]).as_deref(), Some("2541"));
    }

    #[test]
    fn the_host_agreeing_to_a_different_read_back_gives_no_code() {
        let lines = [("r", "Your confirmation is 4 4 1 2."), ("a", "4 4 2 1?"), ("r", "Yeah.")];
        assert_eq!(convo(&lines), None);
        let lines = [("r", "Your confirmation is 4 4 1 2."), ("a", "4 4 1 2, and that's at 7 30?"), ("r", "Yeah.")];
        assert_eq!(convo(&lines).as_deref(), Some("4412"));
    }

    #[test]
    fn a_time_on_the_24_hour_clock_given_as_the_answer_is_no_code() {
        for (ask, reply) in [
            ("Do you have a confirmation number?", "Yeah, 19 30."),
            ("Ha un numero di conferma?", "Sì, 20 30."),
            ("Haben Sie eine Bestätigungsnummer?", "Ja, 19 30."),
        ] {
            assert_eq!(convo(&[("a", ask), ("r", reply)]), None, "{reply}");
        }
        let lines = [("a", "¿Tiene un número de confirmación?"), ("r", "Sí, claro, es el 4 4 1 2, para 4 personas.")];
        assert_eq!(convo(&lines).as_deref(), Some("4412"));
    }

    #[test]
    fn the_host_taking_the_code_back_in_a_later_turn_leaves_none() {
        let lines = [("r", "Confirmation number 4 4 1 2."), ("a", "Thank you."), ("r", "Sorry, wrong one. Hang on.")];
        assert_eq!(convo(&lines), None);
        let lines = [
            ("r", "Confirmation number 4 4 1 2."),
            ("a", "Thank you."),
            ("r", "Sorry, one more thing, we close at 10."),
        ];
        assert_eq!(convo(&lines).as_deref(), Some("4412"));
    }

    #[test]
    fn two_different_codes_give_none() {
        assert_eq!(host(&["Confirmation is 4412.", "Reference number 9931."]), None);
    }

    #[test]
    fn a_trigger_qualified_by_another_noun_names_another_code() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        assert_eq!(host(&["Your deposit reference number is 7 7 1 4 and that's all you need."]), None);
        assert_eq!(convo(&[ask, ("r", "Uh, the payment reference is 6 1 1 0 2.")]), None);
        assert_eq!(convo(&[ask, ("r", "There's a hold number, 9 1 2 7, for the card.")]), None);
        assert_eq!(host(&["The deposit reference is 5 1 6 0, and your booking ID is K 7 2 2."]), None, "two codes");
        assert_eq!(host(&["So your booking reference is 7 7 1 4."]).as_deref(), Some("7714"));
        assert_eq!(convo(&[ask, ("r", "Yes, the reference number is 6 1 1 0 2.")]).as_deref(), Some("61102"));
    }

    #[test]
    fn a_replacement_named_as_something_else_withdraws_the_code_without_replacing_it() {
        assert_eq!(host(&["Your confirmation number is 4 4 1 2, sorry, and the gate code is 9 9 0 1."]), None);
        assert_eq!(host(&["Confirmation is 8 0 0 2, sorry, the deposit receipt number is 8 0 0 3."]), None);
        assert_eq!(host(&["Confirmation is 9 1 1 5. Sorry, the party of 6 was 9 1 1 6."]), None);
        let old = "Confirmation is 3 0 1 6, sorry, my mistake, 3 0 1 6 is your old one, I'll get the new one.";
        assert_eq!(host(&[old]), None);
        assert_eq!(
            host(&["Confirmation number is 7 7 1 8 3 0 9. Oh, no, sorry, last one's a 2. 7 7 1 8 3 0 2."]).as_deref(),
            Some("7718302"),
            "the whole code said again after the character fixed agrees with it"
        );
        assert_eq!(host(&["Confirmation is 5 5 8 2, no sorry, 5 5 8 3."]).as_deref(), Some("5583"));
    }

    #[test]
    fn a_no_later_in_the_codes_sentence_withdraws_it() {
        assert_eq!(host(&["Confirmation is 7 7 0 4, or, sorry, no, I'll have to call you back with it."]), None);
        assert_eq!(host(&["Confirmation number 2 2 9 1, actually never mind, it hasn't gone through yet."]), None);
        assert_eq!(host(&["Confirmation is 4 4 1 2, thanks for waiting, no rush."]).as_deref(), Some("4412"));
        let ask = ("a", "Do you have a confirmation number?");
        let named = "Sure, it's 3 3 0 9, that's the parking code actually, sorry, the confirmation is 1 8 8 2.";
        assert_eq!(convo(&[ask, ("r", named)]).as_deref(), Some("1882"), "a code follows the taking back");
    }

    #[test]
    fn a_number_word_that_is_also_an_english_word_is_read_only_in_its_language() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        let once = "Number's, uh, 6 1 2, sorry, the number'll be 6 1 2 9 once it saves.";
        assert_eq!(convo(&[ask, ("r", once)]), None);
        assert_eq!(host(&["Su número de confirmación es cuatro cuatro uno once."]).as_deref(), Some("44111"));
    }

    #[test]
    fn an_answer_running_on_into_a_word_is_no_code() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        assert_eq!(convo(&[ask, ("r", "just 4 4 1 2 Market, we'll have you down")]), None);
        assert_eq!(convo(&[ask, ("r", "Sure, 4 4 1 2 for Friday.")]).as_deref(), Some("4412"));
    }

    #[test]
    fn one_more_character_an_article_brings_is_more_code() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        let end = "The confirmation number's, let me see, 8 8 3 0, and then there's a 5 at the end.";
        assert_eq!(convo(&[ask, ("r", end)]), None);
        assert_eq!(host(&["Confirmation's 5 0 5, the last digit's a 7."]), None);
        assert_eq!(host(&["Your confirmation's 3 3 1, and a B."]), None);
        assert_eq!(
            host(&["Votre numéro de confirmation est le 4 4 1 2, à 20 heures."]).as_deref(),
            Some("4412"),
            "the French \"à\" before an hour is a time"
        );
    }

    #[test]
    fn a_retraction_after_the_code_with_no_code_after_it_withdraws_it() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        let later = "4 4 1 2. Hmm. Actually, hold on, that's not it.";
        assert_eq!(convo(&[ask, ("r", later)]), None, "a later sentence");
        let lines = [
            ("r", "Confirmation is 8 4 4 9."),
            ("a", "Got it."),
            ("r", "Oh wait, don't use that one, it didn't save."),
        ];
        assert_eq!(convo(&lines), None, "a later turn");
        let lines = [
            ("r", "Okay so your confirmation number is 5 5 2 9."),
            ("a", "5 5 2 9, great."),
            ("r", "Hmm, actually that's the waitlist number, sorry."),
        ];
        assert_eq!(convo(&lines), None);
        let lines = [
            ("r", "Your confirmation is 7 1 1 2."),
            ("a", "7 1 1 2, and that was for Friday?"),
            ("r", "Thursday, actually."),
        ];
        assert_eq!(convo(&lines).as_deref(), Some("7112"), "an \"actually\" that ends the turn corrects the day");
    }

    #[test]
    fn an_hour_and_minutes_glued_onto_single_characters_give_no_code() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        assert_eq!(convo(&[ask, ("r", "Confirmation number 4 4 1 2 7 30 Friday")]), None);
        assert_eq!(host(&["Confirmation's 4 4 1 2 7 30 Friday."]), None);
        assert_eq!(host(&["Number's 4 4 1 2, 7 30 Friday."]), None, "a stray time still leaves it unsure");
        assert_eq!(host(&["Confirmation number is 4 4 1 0 30."]).as_deref(), Some("441030"), "0 30 is no time");
    }

    #[test]
    fn the_number_here_is_the_restaurants() {
        let booked = "Okay that's confirmed for Friday 7 30 4 people and the number here is 5 5 5 0 1 9 9";
        assert_eq!(host(&[booked]), None);
        assert_eq!(host(&["Okay that's confirmed, and the number is 5 5 0 1 9 9 7."]).as_deref(), Some("5501997"));
    }

    #[test]
    fn a_contraction_on_the_codes_last_digit_does_not_cut_it_short() {
        assert_eq!(host(&["Confirmation's 4 4 1 2's what I've got."]), None, "never 441");
        assert_eq!(host(&["Conf's 8 8 2 0."]).as_deref(), Some("8820"));
    }

    #[test]
    fn a_group_said_again_before_the_code_starts_over_gives_no_code() {
        assert_eq!(host(&["Confirmation's 7 2, 7 2, 7 2 1 9."]), None, "never 72727219");
        assert_eq!(host(&["Confirmation is A 7 7, A 7 7 2."]).as_deref(), Some("A772"), "started over in full");
    }

    #[test]
    fn a_yes_after_the_agents_echo_answers_it_and_adds_nothing() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        let lines = [ask, ("r", "Conf number's Q 7 7 2"), ("a", "Q 7 7 2?"), ("r", "Q as in queen, yes.")];
        assert_eq!(convo(&lines).as_deref(), Some("Q772"), "never Q772Q");
        let lines = [("r", "Confirmation number is 9 9"), ("a", "9 9, okay."), ("r", "1 7, and that's for 6 people.")];
        assert_eq!(convo(&lines).as_deref(), Some("9917"), "the code goes on after an echo");
    }

    #[test]
    fn an_oh_opening_an_answer_is_a_word_or_a_zero() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        assert_eq!(convo(&[ask, ("r", "Number's, oh, 4 4 1 2.")]), None);
        assert_eq!(convo(&[ask, ("r", "Number's 4 4 1 2.")]).as_deref(), Some("4412"));
    }

    #[test]
    fn a_letter_spelled_again_away_from_where_it_was_said_gives_no_code() {
        assert_eq!(host(&["Confirmation's M 4 4 2 M as in Mary."]), None, "never M442M");
        assert_eq!(host(&["Confirmation's D 4, D as in David, 4 1 2."]), None, "never D4D412");
        assert_eq!(
            host(&["Confirmation number is T R 5, T as in Tom, R as in Robert, 5."]).as_deref(),
            Some("TR5"),
            "the whole code said again"
        );
    }

    #[test]
    fn a_later_turn_of_a_yes_and_more_characters_or_an_articles_letter_gives_no_code() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        let lines = [ask, ("r", "Confirmation's 4 0 1"), ("a", "4 0 1."), ("r", "Uh-huh, 9, 9.")];
        assert_eq!(convo(&lines), None, "never 401");
        let lines = [ask, ("r", "Number'll be 6 6 1 2"), ("a", "6 6 1 2."), ("r", "And a B.")];
        assert_eq!(convo(&lines), None, "never 6612");
        let lines = [ask, ("r", "Number's 4 4 1 2."), ("a", "4 4 1 2."), ("r", "Yep, and it's 2 people.")];
        assert_eq!(convo(&lines).as_deref(), Some("4412"));
    }

    #[test]
    fn a_yes_to_the_read_back_and_one_more_character_gives_no_code() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        let lines = [ask, ("r", "It's double 4, 1, 2"), ("a", "4 4 1 2?"), ("r", "Yes, and then a 7.")];
        assert_eq!(convo(&lines), None, "never 4412");
        let lines = [ask, ("r", "It's double 4, 1, 2"), ("a", "4 4 1 2?"), ("r", "Yes, that's it.")];
        assert_eq!(convo(&lines).as_deref(), Some("4412"));
    }

    #[test]
    fn a_tens_word_before_a_numeral_gives_no_code() {
        assert_eq!(host(&["Confirmation's twenty 4 1 9."]), None, "never 20419");
        assert_eq!(host(&["Confirmation's forty 5, eighty 2."]), None, "never 405802");
        assert_eq!(host(&["Confirmation's forty-five eighty-two."]).as_deref(), Some("4582"));
    }

    #[test]
    fn a_number_counting_letters_or_a_doubled_letter_spelled_again_gives_no_code() {
        assert_eq!(host(&["Confirmation's Q Q 4, two Qs."]), None, "never QQ42");
        assert_eq!(host(&["Confirmation's double B 4, B as in boy."]), None, "never BB4B");
        assert_eq!(host(&["Confirmation's double B 4."]).as_deref(), Some("BB4"));
    }

    #[test]
    fn one_after_a_word_the_reader_has_no_use_for_is_a_pronoun() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        let missed = "It's 2 4 6, sorry, I missed one, 2 4 6 8.";
        assert_eq!(convo(&[ask, ("r", missed)]).as_deref(), Some("2468"), "never 12468");
        assert_eq!(convo(&[ask, ("r", "It's one 2 4 6.")]).as_deref(), Some("1246"));
    }

    #[test]
    fn an_article_a_street_letter_or_a_glued_group_at_the_codes_end_gives_no_code() {
        assert_eq!(host(&["Confirmation is 5 5 2 A table by the window"]), None, "never 552A");
        assert_eq!(host(&["Confirmation is 6 0 1 9 B Street entrance"]), None, "never 6019B");
        assert_eq!(host(&["Confirmation is 1 2 8 8 1 800 if you need us"]), None, "never 12881800");
        assert_eq!(host(&["Confirmation is 5 5 2 A."]).as_deref(), Some("552A"));
    }

    #[test]
    fn a_digit_glued_onto_a_number_or_a_number_restated_gives_no_code() {
        let ask = ("a", "Great, and is there a confirmation number for that?");
        assert_eq!(convo(&[ask, ("r", "It's 4412 2.")]), None, "never 44122");
        let restated = "It's one thousand, no, one hundred, one hundred ten.";
        assert_eq!(convo(&[ask, ("r", restated)]), None, "never 100110");
        assert_eq!(convo(&[ask, ("r", "It's triple nine two.")]).as_deref(), Some("9992"));
    }

    #[test]
    fn french_numbers_written_apart_are_one_number() {
        let said = "Le numéro de réservation, c'est le soixante dix sept, douze.";
        assert_eq!(host(&[said]).as_deref(), Some("7712"), "never 6010712");
        let said = "Votre numéro de réservation est le quatre vingt dix neuf, zéro cinq.";
        assert_eq!(host(&[said]).as_deref(), Some("9905"), "never 90905");
        let said = "Le numéro de confirmation, c'est soixante et onze, vingt-huit.";
        assert_eq!(host(&[said]).as_deref(), Some("7128"));
        assert_eq!(host(&["Le numéro de confirmation est dix sept, quatre."]).as_deref(), Some("174"));
    }

    #[test]
    fn a_number_pair_that_is_no_quarter_hour_is_a_code_and_a_quarter_hour_a_time() {
        assert_eq!(host(&["Confirmation number is eleven forty-six."]).as_deref(), Some("1146"));
        let later = "Confirmation is 4 4 1 2, and we'll see you at seven forty-five.";
        assert_eq!(host(&[later]).as_deref(), Some("4412"), "the five of forty-five is no more code");
        assert_eq!(host(&["Confirmation is seven forty-five."]), None);
    }

    #[test]
    fn a_marked_capital_or_lower_case_letter_is_a_letter() {
        assert_eq!(host(&["confirmation number is capital D capital F 6 1 0"]).as_deref(), Some("DF610"));
        assert_eq!(host(&["Confirmation code is lowercase x 9 9 2."]).as_deref(), Some("X992"));
        assert_eq!(host(&["It's the Capital 7 location, the confirmation comes by text."]), None);
    }

    #[test]
    fn a_contraction_on_a_number_sign_is_the_verb_not_the_letter_s() {
        assert_eq!(host(&["Your confirmation #'s 2 2 5 8."]).as_deref(), Some("2258"), "never S2258");
        assert_eq!(host(&["The confirmation'd be 8 1 4 6."]).as_deref(), Some("8146"));
        assert_eq!(host(&["Order #'s 5 5 1 8, that's for the cake."]), None);
    }

    #[test]
    fn fillers_stalling_and_openings_before_the_code() {
        assert_eq!(host(&["Confirmation number is, hmm, 6 0 2 8."]).as_deref(), Some("6028"));
        assert_eq!(host(&["Confirmation number, got a pen? It's 7 1 9 4."]).as_deref(), Some("7194"));
        assert_eq!(host(&["Confirmation, got a pen? Party of 6 at 7 30 on Friday."]), None);
        let ask = ("a", "Do you have a confirmation number for me?");
        assert_eq!(convo(&[ask, ("r", "Sure do, 8 8 2 1.")]).as_deref(), Some("8821"));
        assert_eq!(host(&["Record locator's Z 4 4 1 9."]).as_deref(), Some("Z4419"));
        assert_eq!(host(&["Your res number is 6 6 2 0."]).as_deref(), Some("6620"));
    }

    #[test]
    fn a_trigger_after_the_code_names_it() {
        assert_eq!(host(&["It's 6 6 0 3, that's your confirmation."]).as_deref(), Some("6603"));
        assert_eq!(host(&["It's 5 5 0 2. That's your confirmation number."]).as_deref(), Some("5502"));
        assert_eq!(host(&["Table 1 2 5. That's your confirmation."]), None);
        assert_eq!(
            host(&["It's double 5 0 9, that's your confirmation number, see you Friday."]).as_deref(),
            Some("5509")
        );
        assert_eq!(host(&["We have you at 7 30 for 4, that's your confirmation."]), None);
        let other = "It's 3 3 1 9, that's the confirmation for the other party, yours comes by text.";
        assert_eq!(host(&[other]), None);
        assert_eq!(host(&["5 5 1 2 or 5 5 2 1, that's the confirmation."]), None);
    }

    #[test]
    fn one_character_changed_by_its_place() {
        let fix = "Confirmation is 5 2 7 1, the third digit is actually a 9, sorry.";
        assert_eq!(host(&[fix]).as_deref(), Some("5291"), "never 5271");
        let fix = "Your confirmation number is 8 8 0 4, sorry, the second one should be a 3.";
        assert_eq!(host(&[fix]).as_deref(), Some("8304"));
        assert_eq!(host(&["Confirmation's 7 1 1 6, the second digit is a 1, yes."]).as_deref(), Some("7116"));
        assert_eq!(host(&["Confirmation is 4 4 1 2, the fifth digit is a 7."]), None, "no fifth place in 4412");
        assert_eq!(host(&["Confirmation is 6 2 4 0, the last digit's actually a 9."]).as_deref(), Some("6249"));
    }

    #[test]
    fn a_start_taken_back_then_the_whole_code() {
        assert_eq!(host(&["Confirmation number is 3 8... no, 3 9 1 2."]).as_deref(), Some("3912"));
        let nato = "Your reservation ID is Bravo 4, uh, wait, Bravo 7 7 1.";
        assert_eq!(host(&[nato]).as_deref(), Some("B771"), "never B4B771");
        assert_eq!(host(&["Confirmation is 4 4, hold on, the gate code is 4 4 1 2."]), None);
        assert_eq!(host(&["Confirmation is 2 7... no, sorry, I'll have to text it to you."]), None);
        assert_eq!(host(&["Confirmation is 5 1, wait, 5 1 9 0 or 5 1 0 9, let me check."]), None);
    }

    #[test]
    fn a_code_split_by_a_trailing_off_a_restart_or_and_then_reads_on() {
        let trailed = [("r", "Confirmation number is 8 2..."), ("a", "Mm-hm."), ("r", "...4 4 1.")];
        assert_eq!(convo(&trailed).as_deref(), Some("82441"));
        let restart =
            [("r", "Your confirmation is 3 1"), ("a", "Sorry, go on?"), ("r", "Sorry, from the top, 3 1 7 7 0.")];
        assert_eq!(convo(&restart).as_deref(), Some("31770"));
        let and_then = [("r", "The confirmation is 9 9 4"), ("a", "Okay, 9 9 4..."), ("r", "and then 1 2. That's it.")];
        assert_eq!(convo(&and_then).as_deref(), Some("99412"));
        let gate = [("r", "Confirmation is 4 4..."), ("a", "Mm-hm."), ("r", "...sorry, the gate code is 4 4 1 2.")];
        assert_eq!(convo(&gate), None);
        let party =
            [("r", "Your confirmation is 7 1 4 4"), ("a", "Okay, 7 1 4 4..."), ("r", "and then 4 people at 8, right?")];
        assert_eq!(convo(&party).as_deref(), Some("7144"));
    }

    #[test]
    fn a_code_with_no_trigger_read_back_and_accepted() {
        let accepted = [("r", "It's P Q 4 4."), ("a", "P Q 4 4, got it."), ("r", "Yep.")];
        assert_eq!(convo(&accepted).as_deref(), Some("PQ44"));
        let put_right = [("r", "It's 7 7 3 0 2."), ("a", "7 7 3 0 8?"), ("r", "No, the last one's a 2.")];
        assert_eq!(convo(&put_right).as_deref(), Some("77302"));
        assert_eq!(convo(&[("r", "It's 7 30."), ("a", "7 30, got it."), ("r", "Yep.")]), None);
        assert_eq!(convo(&[("r", "It's 5 5 1 8."), ("a", "5 5 1 9?"), ("r", "Yes.")]), None);
        assert_eq!(convo(&[("r", "It's 5 5 1 8."), ("a", "5 5 1 9?"), ("r", "No, the last one's a 7.")]), None);
        let asked_other =
            [("a", "What's the street number?"), ("r", "It's 4 4 1 2."), ("a", "4 4 1 2."), ("r", "Yep.")];
        assert_eq!(convo(&asked_other), None, "an answer to another question");
    }

    #[test]
    fn a_group_of_three_said_again_with_no_pause_is_a_code_of_six() {
        assert_eq!(host(&["Your confirmation is 1 2 7 1 2 7."]).as_deref(), Some("127127"));
        assert_eq!(host(&["Confirmation is 7 1 9, 7 1 9."]).as_deref(), Some("719"));
        assert_eq!(host(&["Confirmation is 4 4 1 2 4 4 1 2."]), None);
        assert_eq!(host(&["Your confirmation number is 1, 2, 3, 1, 2, 3."]), None, "a pause at its half");
    }

    #[test]
    fn a_code_followed_by_what_it_opens_is_that_things_code() {
        let booked = "You're booked for Friday.";
        for said in [
            "The code is 5 5 2 1, punch it in at the side door.",
            "The code's 6 6 1 9, you'll need it for the garage.",
            "The code is 3 7 0 2. Punch it in at the side door when you get here.",
            "El código es 4 4 8 1, márquelo en la puerta lateral.",
            "Il codice è 3 0 6 1, lo digiti al cancello.",
            "Der Code ist 6 0 4 8, den tippen Sie an der Seitentür ein.",
        ] {
            assert_eq!(host(&[booked, said]), None, "{said}");
        }
        let both = "The code is 7 3 1 4 for the side entrance, and your confirmation number is 5 5 0 9.";
        assert_eq!(host(&[both]).as_deref(), Some("5509"));
        let place = "Your confirmation number is 4 7 7 1, and the side door is on Elm Street.";
        assert_eq!(host(&[place]).as_deref(), Some("4771"));
        let meet = [("a", "Is there a confirmation number?"), ("r", "It's Mike 2 2, ask for Mike at the door.")];
        assert_eq!(convo(&meet).as_deref(), Some("M22"));
    }

    #[test]
    fn a_phone_number_in_a_national_shape_or_named_as_a_phone_is_no_code() {
        for (ask, said) in [
            ("¿Tiene un número de confirmación?", "Sí, es el 93 412 77 05, el teléfono del local."),
            ("¿Me da un número de confirmación?", "Apunte el 612 34 56 78, es mi móvil."),
            ("Haben Sie eine Bestätigungsnummer?", "Ja, 030 8824 19, das ist unsere Telefonnummer."),
            ("Ha un numero di conferma?", "Sì, 06 4821 339, è il telefono del ristorante."),
            ("Is there a confirmation number?", "Sure, 555 0144, the restaurant's phone, call if anything changes."),
        ] {
            assert_eq!(convo(&[("a", ask), ("r", said)]), None, "{said}");
        }
        assert_eq!(host(&["Your confirmation number is 44 12 88 91."]).as_deref(), Some("44128891"), "pairs");
        let phone_after = "Su número de confirmación es 4 8 1 2, y nuestro teléfono es el 91 555 32 10.";
        assert_eq!(host(&[phone_after]).as_deref(), Some("4812"));
        let on_file = "your confirmation is 2 9 4 6 the phone number on file is 415 555 0199";
        assert_eq!(host(&[on_file]).as_deref(), Some("2946"));
    }

    #[test]
    fn a_code_disowned_in_any_language_gives_no_code() {
        for said in [
            "Su número de confirmación es 3 3 8 1... uy, perdón, ese no es. Se lo mando por mensaje.",
            "Ihre Bestätigungsnummer ist 6 4 1 0. Ach, das ist die falsche, ich schicke sie Ihnen per SMS.",
            "Il numero di conferma è 4 0 8 8. Ah, è sbagliato, le mando un SMS.",
            "Your confirmation number is 5 1 8 3, hmm, that's not the right one, I'll text it to you.",
            "Le numéro de confirmation est 9 0 3 2... pardon, c'est pas le bon. Je vous rappelle.",
        ] {
            assert_eq!(host(&[said]), None, "{said}");
        }
        let not_hard = "Votre numéro de réservation est le 4 1 5 5, ce n'est pas compliqué.";
        assert_eq!(host(&[not_hard]).as_deref(), Some("4155"));
        let nicht_schwer = "Ihre Bestätigungsnummer ist 8 2 2 7, das ist nicht schwer zu merken.";
        assert_eq!(host(&[nicht_schwer]).as_deref(), Some("8227"));
    }

    #[test]
    fn a_code_left_open_before_a_backchannel_is_joined_or_given_up() {
        let whiskey =
            [("r", "Reference number's W as in whiskey 4 oh oh"), ("a", "Go ahead."), ("r", "9 1, that's it.")];
        assert_eq!(convo(&whiskey).as_deref(), Some("W40091"));
        let weiter = [("r", "Ihre Buchungsnummer ist 7 1 6"), ("a", "Ja, weiter."), ("r", "8 2, das war's.")];
        assert_eq!(convo(&weiter).as_deref(), Some("71682"));
        let in_words =
            [("r", "Your confirmation number is 6 0 2 8"), ("a", "Okay."), ("r", "Sorry, and then a 5 at the end.")];
        assert_eq!(convo(&in_words), None);
        let done = [("r", "Your confirmation number is 4 4 7 1 9"), ("a", "Okay."), ("r", "We'll see you Saturday.")];
        assert_eq!(convo(&done).as_deref(), Some("44719"));
    }

    #[test]
    fn a_run_before_is_your_confirmation_number_is_the_code() {
        let it = [("a", "Is there a confirmation number?"), ("r", "Yeah. 6 6 3 1 9 is your confirmation number.")];
        assert_eq!(convo(&it).as_deref(), Some("66319"));
        assert_eq!(host(&["El 4 8 2 0 es su número de confirmación."]).as_deref(), Some("4820"));
        assert_eq!(host(&["Le 7 7 1 3, c'est votre numéro de confirmation."]).as_deref(), Some("7713"));
        assert_eq!(host(&["Table 1 2 5 is your confirmation."]), None);
        let other = "5 5 0 1 is your confirmation number for the other booking, yours is coming by text.";
        assert_eq!(host(&[other]), None);
    }

    #[test]
    fn an_aside_between_the_trigger_and_the_code_is_skipped() {
        let pen = "Your confirmation number, if you've got something to write with, is 5 8 2 0 3.";
        assert_eq!(host(&[pen]).as_deref(), Some("58203"));
        let attimo = "Il suo numero di conferma è, ehm, aspetti un attimo, 4 4 1 9 0.";
        assert_eq!(host(&[attimo]).as_deref(), Some("44190"));
        let gleich = "Ihre Bestätigungsnummer, Moment, ich hab sie gleich, ist 5 5 1 3.";
        assert_eq!(host(&[gleich]).as_deref(), Some("5513"));
        let table = "Your confirmation number, we don't really do those, but the table is 1 2.";
        assert_eq!(host(&[table]), None);
        let cell = "The confirmation number, I'll have to call you back with it, my cell is 5 5 5 0 1 9 9.";
        assert_eq!(host(&[cell]), None);
        let party = "Your confirmation number, for the party of 6 on Friday, is 3 3 0 8.";
        assert_eq!(host(&[party]), None, "code characters in the aside");
    }

    #[test]
    fn an_answer_after_a_stalling_yes_and_read_backs_accepted_in_each_language() {
        let stalled = [
            ("a", "Is there a confirmation number?"),
            ("r", "Yeah, one sec."),
            ("a", "Sure."),
            ("r", "It's 8 8 2 0 4."),
        ];
        assert_eq!(convo(&stalled).as_deref(), Some("88204"));
        let eso = [
            ("a", "¿Tiene número de confirmación?"),
            ("r", "Sí, un segundo."),
            ("a", "Claro."),
            ("r", "Es el 6 6 0 2 9."),
            ("a", "¿6 6 0 2 9?"),
            ("r", "Eso es."),
        ];
        assert_eq!(convo(&eso).as_deref(), Some("66029"));
        let other_question = [
            ("a", "Is there a confirmation number?"),
            ("r", "Yes, we've got you down for Friday."),
            ("a", "Great, and what time was that for?"),
            ("r", "It's 7 30."),
        ];
        assert_eq!(convo(&other_question), None);
        let restated = [
            ("r", "Confirmation number is 4 4 7 2."),
            ("a", "4 4 7 3?"),
            ("r", "No, it's 4 4 7 2, the last one's a 2."),
        ];
        assert_eq!(convo(&restated).as_deref(), Some("4472"));
        let contradicted = [
            ("r", "Confirmation number is 5 5 1 8."),
            ("a", "5 5 1 8?"),
            ("r", "Sorry, it's 5 5 1 9, the last one's an 8."),
        ];
        assert_eq!(convo(&contradicted), None);
        let tonight = "So the confirmation number for tonight, it's actually a short one, is 7 2 4.";
        assert_eq!(host(&[tonight]).as_deref(), Some("724"));
        assert_eq!(host(&["The confirmation's for Friday 4 4 2 0."]), None, "Friday the 4th?");
    }

    #[test]
    fn a_character_swapped_by_name_number_pairs_our_and_spanish_thousands() {
        let place = "Confirmation number is 6 6 1 4, the last digit is 9 not 4, so 6 6 1 9.";
        assert_eq!(host(&[place]).as_deref(), Some("6619"));
        let contradicted = "Confirmation number is 4 4 1 8, the last digit is 3 not 8, so 4 4 1 8.";
        assert_eq!(host(&[contradicted]), None);
        let swap = "Your confirmation number is P 7 2 2, sorry, that's a B not a P. B 7 2 2.";
        assert_eq!(host(&[swap]).as_deref(), Some("B722"));
        let pairs = "Confirmation number is eleven thirty-two forty-one.";
        assert_eq!(host(&[pairs]).as_deref(), Some("113241"));
        let ours = "Confirmation number 5 5 3 1 9 our phone is 555 0101 if anything changes";
        assert_eq!(host(&[ours]).as_deref(), Some("55319"));
        let mil = "Su número de confirmación es mil doscientos cuarenta y cinco.";
        assert_eq!(host(&[mil]).as_deref(), Some("1245"));
        assert_eq!(host(&["Su número de reserva es dos mil trescientos diez."]).as_deref(), Some("2310"));
    }

    #[test]
    fn bare_mil_or_mille_is_a_thousand_only_beside_a_number() {
        // Before the fix: thanks read as 1000, and "…confirmación, mil gracias." gave 1000.
        for thanks in ["Mil gracias", "mille grazie", "mille mercis"] {
            assert_eq!(runs(&tokenize(thanks)), vec![], "{thanks}");
        }
        for thanks in [
            "El número de confirmación, mil gracias.",
            "Il numero di conferma, mille grazie.",
            "Le numéro de confirmation, mille mercis.",
        ] {
            assert_eq!(host(&[thanks]), None, "{thanks}");
        }
        assert_eq!(host(&["su número de confirmación es mil doscientos cuarenta"]), Some("1240".into()));
        assert_eq!(host(&["le numéro de confirmation est mille trois"]), Some("1003".into()));
        assert_eq!(host(&["el número de confirmación es dos mil quince"]), Some("2015".into()));
    }
}
