//! Reads the host's confirmation code out of a conversation.
//!
//! A code is a run of code characters (digits, number words, letters, NATO words,
//! "A as in apple", "double seven") that follows a trigger ("confirmation number is,
//! uh,") or answers the agent's question about the code. The run ends at a sentence's
//! end, a time, a phone number, a quantity ("2 people", "30 pm") or any other word.
//! Consecutive host utterances are read as one; a correction ("no, sorry, …")
//! replaces the code and a repeat collapses; two different codes with nothing to
//! choose between them give no code at all.

use super::tokens::{tokenize, Tok};
use super::words::*;
use crate::events::Speaker;

const MIN_LEN: usize = 3;
const MAX_LEN: usize = 16;
/// Words skipped at most between a trigger and its code.
const PREAMBLE_BUDGET: usize = 10;

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
}

impl Run {
    fn valid(&self) -> bool {
        let len = self.code.chars().count();
        let digits = self.code.chars().filter(char::is_ascii_digit).count();
        // Ten digits and more is a phone number, not a booking code.
        (MIN_LEN..=MAX_LEN).contains(&len) && !(digits == len && len >= 10)
    }
}

fn word(toks: &[Tok], i: usize) -> Option<&str> {
    toks.get(i).and_then(Tok::word)
}

fn in_list(list: &[&str], w: Option<&str>) -> bool {
    w.is_some_and(|w| list.contains(&w))
}

/// A number said in words starting at `i`: "forty five", "treinta y cinco",
/// "soixante dix sept", "twelve hundred".
fn number_words(toks: &[Tok], i: usize) -> Option<(u32, usize)> {
    let w = word(toks, i)?;
    let (mut value, mut next) = if let Some(t) = tens(w) {
        let mut value = t;
        let mut next = i + 1;
        // "treinta y cinco", "vingt et un", "einund…" arrive as words.
        let joined = matches!(word(toks, next), Some("y" | "et" | "e" | "und"));
        let unit_at = if joined { next + 1 } else { next };
        if t == 60 {
            if let Some(teen) = word(toks, unit_at).and_then(teen) {
                return Some((60 + teen, unit_at + 1));
            }
        }
        if let Some(u) = word(toks, unit_at).and_then(digit).filter(|&u| u > 0) {
            value += u;
            next = unit_at + 1;
        }
        (value, next)
    } else if w == "quatre" && matches!(word(toks, i + 1), Some("vingt" | "vingts")) {
        let after = i + 2;
        if let Some(teen) = word(toks, after).and_then(teen) {
            return Some((80 + teen, after + 1));
        }
        match word(toks, after).and_then(digit).filter(|&u| u > 0) {
            Some(u) => (80 + u, after + 1),
            None => (80, after),
        }
    } else if let Some(v) = teen(w).or_else(|| compound(w)) {
        (v, i + 1)
    } else if w == "dix" {
        (10, i + 1)
    } else {
        return None;
    };
    if matches!(word(toks, next), Some("hundred")) && value < 100 {
        value *= 100;
        next += 1;
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
        || number_words(toks, i).is_some()
}

/// "A as in apple", "B for boy", "C wie Cäsar": the index after the example, if one follows.
fn spelled_example(toks: &[Tok], i: usize, letter: char) -> Option<usize> {
    let joiner = word(toks, i)?;
    if !SPELL_JOINERS.contains(&joiner) {
        return None;
    }
    let at = if joiner == "as" && word(toks, i + 1) == Some("in") { i + 2 } else { i + 1 };
    let example = word(toks, at)?;
    let starts_alike = example.starts_with(letter) && example.len() > 1;
    let alphabetic = example.chars().all(char::is_alphabetic);
    (starts_alike && alphabetic).then_some(at + 1)
}

fn unit_at(toks: &[Tok], i: usize) -> Option<Unit> {
    let w = word(toks, i)?;
    if w.chars().all(|c| c.is_ascii_digit()) {
        return Some(Unit { chars: w.to_owned(), next: i + 1, numeric: true });
    }
    if let Some((value, next)) = number_words(toks, i) {
        return Some(Unit { chars: value.to_string(), next, numeric: true });
    }
    if let Some(d) = digit(w) {
        // "oh" is an exclamation unless more code follows.
        if w == "oh" && !plain_unit_follows(toks, i + 1) {
            return None;
        }
        return Some(Unit { chars: d.to_string(), next: i + 1, numeric: true });
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
        return Some(Unit { chars: letter.to_ascii_uppercase().to_string(), next: i + 1, numeric: false });
    }
    let alnum = w.chars().all(|c| c.is_ascii_alphanumeric());
    let has_digit = w.chars().any(|c| c.is_ascii_digit());
    let has_letter = w.chars().any(|c| c.is_ascii_alphabetic());
    if alnum && has_digit && has_letter && w.len() <= MAX_LEN && !is_ordinal_or_clock(w) {
        return Some(Unit { chars: w.to_ascii_uppercase(), next: i + 1, numeric: false });
    }
    None
}

/// The run of code characters starting exactly at `start`, if one does.
pub(super) fn run_at(toks: &[Tok], start: usize) -> Option<Run> {
    let mut units: Vec<Unit> = Vec::new();
    let mut i = start;
    loop {
        let mut j = i;
        if !units.is_empty() {
            while matches!(toks.get(j), Some(Tok::Comma)) || in_list(CODE_FILLERS, word(toks, j)) {
                j += 1;
            }
        }
        let w = word(toks, j);
        let unit = if in_list(DOUBLE, w) || in_list(TRIPLE, w) {
            let times = if in_list(DOUBLE, w) { 2 } else { 3 };
            match unit_at(toks, j + 1).filter(|u| u.chars.len() == 1) {
                Some(u) => Unit { chars: u.chars.repeat(times), next: u.next, numeric: u.numeric },
                None => break,
            }
        } else {
            match unit_at(toks, j) {
                Some(u) => u,
                None => break,
            }
        };
        let after = word(toks, unit.next);
        if unit.numeric && in_list(QUANTITY, after) {
            // "2 people", "7 30 pm": a quantity or a time, and the code ended before it.
            let clock =
                matches!(after, Some("pm" | "am" | "p" | "oclock" | "o'clock" | "uhr" | "heures" | "horas" | "ore"));
            if clock && units.last().is_some_and(|u| u.numeric && u.chars.len() <= 2) && unit.chars.len() == 2 {
                units.pop();
            }
            break;
        }
        i = unit.next;
        units.push(unit);
    }
    let first = units.first()?;
    let _ = first;
    let code: String = units.iter().map(|u| u.chars.as_str()).collect();
    Some(Run { code: collapse_repeat(&code), start, end: i })
}

/// "4412 4412" said twice in one breath is "4412".
fn collapse_repeat(code: &str) -> String {
    let len = code.len();
    if len >= 2 * MIN_LEN && len % 2 == 0 && code[..len / 2] == code[len / 2..] {
        return code[..len / 2].to_owned();
    }
    code.to_owned()
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
    // "number of people", "our number", "my number".
    if matches!(word(toks, i + 1), Some("of"))
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

/// Reads the code after a trigger ending at `after`: skips the preamble, then a run.
fn read_after_trigger(toks: &[Tok], after: usize) -> Option<Run> {
    let mut j = after;
    let mut stops = 0;
    let mut budget = PREAMBLE_BUDGET;
    while j < toks.len() && budget > 0 {
        match &toks[j] {
            Tok::Comma | Tok::Time => {}
            Tok::Stop => {
                stops += 1;
                if stops > 1 {
                    return None;
                }
            }
            Tok::Phone => return None,
            Tok::Word(w) => {
                if let Some(run) = run_at(toks, j) {
                    if run.valid() {
                        return Some(run);
                    }
                }
                let skippable = PREAMBLE.contains(&w.as_str())
                    || PREAMBLE_MORE.contains(&w.as_str())
                    || AMBIGUOUS_LETTERS.contains(&w.as_str())
                    || STRONG_TRIGGERS.contains(&w.as_str())
                    || WEAK_TRIGGERS.contains(&w.as_str());
                if !skippable {
                    return None;
                }
            }
        }
        j += 1;
        budget -= 1;
    }
    None
}

/// The index after the trigger at `i`, if `i` is one.
fn trigger_at(toks: &[Tok], i: usize, context: bool) -> Option<usize> {
    let w = word(toks, i)?;
    if STRONG_TRIGGERS.contains(&w) {
        return Some(i + 1);
    }
    (WEAK_TRIGGERS.contains(&w) && weak_trigger_ok(toks, i, context)).then_some(i + 1)
}

/// What one host turn said about the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Said {
    /// A code; `corrects` when it takes back an earlier one.
    Code { code: String, corrects: bool },
    /// The code just said was taken back without a whole new one.
    Doubt,
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
        || matches!(w, "i" | "let" | "me" | "see" | "check" | "hmm" | "well" | "mm")
}

/// After a code ending at `end`: repeats collapse, corrections replace.
fn follow_ups(toks: &[Tok], mut end: usize, mut current: String, out: &mut Vec<Said>) -> usize {
    'outer: loop {
        let mut j = end;
        let mut correcting = false;
        let mut partial = false;
        while j < toks.len() && j < end + 10 {
            let w = match &toks[j] {
                Tok::Comma | Tok::Stop => {
                    j += 1;
                    continue;
                }
                Tok::Time | Tok::Phone => break,
                Tok::Word(w) => w.as_str(),
            };
            if let Some(run) = run_at(toks, j) {
                if run.valid() {
                    if correcting {
                        out.push(Said::Code { code: run.code.clone(), corrects: true });
                    } else if run.code != current {
                        // A second code with no word saying why: the reader cannot choose.
                        out.push(Said::Code { code: run.code.clone(), corrects: false });
                    }
                    current = run.code;
                    end = run.end;
                    continue 'outer;
                }
                if correcting {
                    partial = true;
                }
                break;
            }
            let taken_back = CORRECTION.contains(&w)
                || (DENY.contains(&w) && matches!(toks.get(j + 1), Some(Tok::Comma | Tok::Stop) | None))
                || (DENY.contains(&w) && in_list(CORRECTION, word(toks, j + 1)));
            if taken_back {
                correcting = true;
            } else if !(REPEAT.contains(&w)
                || PREAMBLE.contains(&w)
                || (correcting && (answer_opening(w) || STRONG_TRIGGERS.contains(&w) || WEAK_TRIGGERS.contains(&w))))
            {
                break;
            }
            j += 1;
        }
        // "…2, sorry, the last one is 3": taken back, and what replaces it is not whole.
        if correcting
            && (partial
                || near(
                    toks,
                    end,
                    (end + 12).min(toks.len()),
                    &["last", "first", "digit", "letter", "end", "ultimo", "dernier", "letzte"],
                ))
        {
            out.push(Said::Doubt);
        }
        return end;
    }
}

/// Everything one host turn (consecutive utterances joined) says about the code.
pub(super) fn read_host_turn(toks: &[Tok], answering: bool) -> Vec<Said> {
    let mut out = Vec::new();
    let mut i = 0;
    if answering {
        let mut affirmed = false;
        let mut denied = false;
        while let Some(tok) = toks.get(i) {
            match tok {
                Tok::Comma | Tok::Stop => {}
                Tok::Word(w) => {
                    if let Some(run) = run_at(toks, i).filter(Run::valid) {
                        out.push(Said::Code { code: run.code.clone(), corrects: denied });
                        i = follow_ups(toks, run.end, run.code, &mut out);
                        break;
                    }
                    if !answer_opening(w) {
                        break;
                    }
                    affirmed |= AFFIRM.contains(&w.as_str());
                    denied |= DENY.contains(&w.as_str()) || CORRECTION.contains(&w.as_str());
                }
                Tok::Time | Tok::Phone => break,
            }
            i += 1;
        }
        if out.is_empty() {
            if denied {
                out.push(Said::Deny);
            } else if affirmed {
                out.push(Said::Affirm);
            }
        }
    }
    let context = answering || near(toks, 0, toks.len(), BOOKED);
    while i < toks.len() {
        match trigger_at(toks, i, context).and_then(|after| read_after_trigger(toks, after)) {
            Some(run) => {
                out.push(Said::Code { code: run.code.clone(), corrects: false });
                i = follow_ups(toks, run.end, run.code, &mut out).max(i + 1);
            }
            None => i += 1,
        }
    }
    out
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

/// A conversation as turns: consecutive lines of one speaker joined.
pub(super) fn turns<'a>(lines: impl IntoIterator<Item = (Speaker, &'a str)>) -> Vec<(Speaker, Vec<Tok>)> {
    let mut out: Vec<(Speaker, Vec<Tok>)> = Vec::new();
    for (speaker, text) in lines {
        let toks = tokenize(text);
        match out.last_mut() {
            Some((last, joined)) if *last == speaker => {
                // A code split across two utterances reads on; a stop still ends it.
                if !matches!(joined.last(), Some(Tok::Stop)) {
                    joined.push(Tok::Comma);
                }
                joined.extend(toks);
            }
            _ => out.push((speaker, toks)),
        }
    }
    out
}

/// The code the host gave, after corrections, or `None` when there was none or the
/// conversation does not settle on one.
pub(super) fn host_code(turns: &[(Speaker, Vec<Tok>)]) -> Option<String> {
    let mut current: Option<String> = None;
    let mut conflict = false;
    let mut agent_before: Option<&[Tok]> = None;
    for (speaker, toks) in turns {
        if *speaker == Speaker::Agent {
            agent_before = Some(toks);
            continue;
        }
        let code_in_play = current.is_some() || conflict;
        let read_back = agent_before.map(runs).unwrap_or_default();
        // The agent asked about the code, or read one back: the reply may be the code.
        let answering = agent_before.is_some_and(|agent| asks_for_code(agent, code_in_play))
            || (code_in_play && !read_back.is_empty());
        for said in read_host_turn(toks, answering) {
            match said {
                Said::Code { code, corrects } => match &current {
                    Some(c) if *c == code => {}
                    Some(_) if !corrects && !conflict => conflict = true,
                    _ if corrects || current.is_none() => {
                        current = Some(code);
                        conflict = false;
                    }
                    _ => {}
                },
                Said::Doubt => conflict = true,
                // "No" to a read-back of the very code we heard: the host disowns it.
                Said::Deny if read_back.iter().any(|r| Some(&r.code) == current.as_ref()) => conflict = true,
                Said::Deny | Said::Affirm => {}
            }
        }
        agent_before = None;
    }
    if conflict {
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
        assert_eq!(host(&["confirmation is 5 5 2 1 7 30 pm"]).as_deref(), Some("5521"));
    }

    #[test]
    fn a_code_said_twice_is_one_code() {
        assert_eq!(host(&["Confirmation 4 4 1 2, 4 4 1 2."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation number is 4412. Again, 4412."]).as_deref(), Some("4412"));
        assert_eq!(host(&["Confirmation is A73X A73X"]).as_deref(), Some("A73X"));
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
        assert_eq!(host(&["Confirmation is 5 5 8 2, sorry, the last digit is 3."]), None);
        assert_eq!(host(&["Confirmation is 5 5 8 2. No problem at all."]).as_deref(), Some("5582"));
    }

    #[test]
    fn a_code_split_across_two_utterances_reads_on() {
        assert_eq!(host(&["Your confirmation number is 4 4", "1 2"]).as_deref(), Some("4412"));
    }

    #[test]
    fn the_hosts_answer_to_the_agents_question_needs_no_trigger() {
        let lines = [("a", "Great. Do you have a confirmation number?"), ("r", "Sure, it's 3 3 1 8.")];
        assert_eq!(convo(&lines).as_deref(), Some("3318"));
        let lines = [("a", "And the time, seven thirty?"), ("r", "Yes, 7 30.")];
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
    }

    #[test]
    fn two_different_codes_give_none() {
        assert_eq!(host(&["Confirmation is 4412.", "Reference number 9931."]), None);
    }
}
