//! Last checks on the code the reader settled on, line by line as the transcript gave
//! them (before turns are joined). Each rule guards against one way a code comes out
//! wrong; each either gives no code or, where the words settle it, the code they settle.
//!
//! - A later host line after only the agent's "got it", "mm-hm", "go ahead" or echo
//!   opens with code characters, and the code ends where the host's earlier line did:
//!   joined when the host says it is done ("9 9, sorry I wasn't done", "c'est tout"),
//!   otherwise no code ("7 0 3" / "got it" / "9 9 …" is never 703).
//! - An "oh" right after the code's last character that was not read as a zero: a zero
//!   only beside other ohs and before a pause, the line's end or a closing phrase ("one
//!   oh one oh." is 1010; "one oh one five oh by the way we close at ten" gives no code);
//!   an "o" ("or") inside a digit run in a Spanish or Italian conversation ("cuatro
//!   cuatro uno o dos", "Sí, 5 5 3 o 8."): no code.
//! - The host says in the same line that there is no code ("there's no confirmation
//!   number", "no damos número de confirmación", "il n'y a pas de numéro", "keine
//!   Bestätigungsnummer", "non diamo numeri di conferma"), or gives a local phone number
//!   ("555 2100") after the agent asked for a phone number or an address: no code.
//! - The host corrects a read-back with the corrected part and then the whole code ("non
//!   trente-trois 22 33" after "22 23"): the whole code when the corrected part covers
//!   every character that changed, otherwise no code.

use super::reader::{backchannel, opening_unit, run_at, runs, spoken_unit, transparent, turns, Run};
use super::tokens::Tok;
use super::words::{CODE_FILLERS, DENY};
use crate::events::Speaker;

/// The code after the checks: `code` itself, the code the words settle on, or `None`.
/// `text` is the transcript's lines, `lines` their tokens.
pub(super) fn settle(text: &[(Speaker, &str)], lines: &[(Speaker, Vec<Tok>)], code: String) -> Option<String> {
    let code = corrected_read_back(text, lines, code)?;
    let code = oh_after_code(lines, code)?;
    if no_code_or_local_phone(lines, &code) {
        return None;
    }
    continued_later(lines, code)
}

/// Whether the host said there is no code or gave `code` as a local phone number asked
/// for: a read-back the host accepts does not make either a code.
pub(super) fn no_code_or_local_phone(lines: &[(Speaker, Vec<Tok>)], code: &str) -> bool {
    said_no_code(lines, code) || local_phone_asked_for(lines, code)
}

fn word(toks: &[Tok], i: usize) -> Option<&str> {
    toks.get(i).and_then(Tok::word)
}

fn words(toks: &[Tok]) -> impl Iterator<Item = &str> {
    toks.iter().filter_map(Tok::word)
}

/// The run of code characters a line ends on, past its closing punctuation.
fn closing_run(toks: &[Tok]) -> Option<Run> {
    let mut end = toks.len();
    while end > 0 && matches!(toks[end - 1], Tok::Stop | Tok::Comma) {
        end -= 1;
    }
    (0..end).find_map(|k| run_at(toks, k).filter(|r| r.end == end && !r.code.is_empty()))
}

/// What a host says after the last characters to close the code: "that's the whole
/// thing", "sorry I wasn't done", "eso es todo", "c'est tout", "das ist alles", "ecco
/// tutto". Only then does a continuation join the code.
const CLOSINGS: &[&[&str]] = &[
    &["that's", "the", "whole"],
    &["that's", "all"],
    &["that's", "it"],
    &["wasn't", "done"],
    &["wasn't", "finished"],
    &["eso", "es", "todo"],
    &["no", "habia", "terminado"],
    &["c'est", "tout"],
    &["das", "ist", "alles"],
    &["ecco", "tutto"],
    &["e", "tutto"],
];

const AFFIRM_WORDS: &[&str] = &["yes", "yeah", "yep", "yup", "correct", "si", "oui", "ja", "esatto", "exacto"];

/// Words that may lead into the closing phrase: "9 9, sorry, I wasn't done".
const CLOSING_LEADS: &[&str] = &["sorry", "i", "perdon", "pardon", "scusi", "scusa"];

/// Whether a closing phrase comes straight after the run ending at `from`: commas,
/// fillers and an apology at most between ("4 at 8, that's it" does not close "4").
fn closes_code(toks: &[Tok], from: usize) -> bool {
    let mut at = from;
    while matches!(toks.get(at), Some(Tok::Comma))
        || word(toks, at).is_some_and(|w| CODE_FILLERS.contains(&w) || CLOSING_LEADS.contains(&w))
    {
        at += 1;
    }
    let rest: Vec<&str> = toks[at.min(toks.len())..].iter().map_while(Tok::word).collect();
    CLOSINGS.iter().any(|phrase| rest.starts_with(phrase))
}

/// Rule 1: a host line ending on code characters, then only the agent's backchannel or
/// echo, then a host line opening with code characters. If the code ends with the first
/// line's characters and neither holds the second line's nor is the second line's whole
/// code, it may be cut short: joined when the first line gave the code and stopped
/// without a full stop and the host closes the code straight after the new characters,
/// otherwise none. ("It's 5 5 3 1." / "Okay." / "4 at 8, that's it." is never 55314.)
fn continued_later(lines: &[(Speaker, Vec<Tok>)], mut code: String) -> Option<String> {
    for (i, (speaker, first)) in lines.iter().enumerate() {
        if *speaker != Speaker::Restaurant {
            continue;
        }
        // Only a line that gave (part of) the code can have left it cut short.
        let Some(mut tail) = closing_run(first).filter(|r| gave(r, &code)) else { continue };
        let mut stopped = matches!(first.last(), Some(Tok::Stop));
        let mut j = i + 1;
        let mut between = 0;
        while let Some((speaker, toks)) = lines.get(j) {
            let next_host = *speaker == Speaker::Restaurant;
            if !(next_host || transparent(toks) || backchannel(toks)) {
                break;
            }
            if next_host {
                if between == 0 {
                    break;
                }
                // "3 9 2 0 1 2 people": where the run ends cannot be told, so it goes on
                // with nothing.
                let Some(open) = opening_unit(toks).and_then(|f| run_at(toks, f)).filter(|r| !r.ambiguous) else {
                    break;
                };
                let joined = format!("{}{}", tail.code, open.code);
                let closes = closes_code(toks, open.end);
                // "Q as in queen, yes." / "2, yeah, at the end.": the code's own characters
                // said again, not more of it.
                let said_again = !closes
                    && (code.starts_with(&open.code)
                        || (code.contains(&open.code) && words(toks).any(|w| AFFIRM_WORDS.contains(&w))));
                let cut_short =
                    code.ends_with(&tail.code) && !code.contains(&joined) && open.code != code && !said_again;
                if cut_short {
                    // After a full stop the host had finished a sentence: more characters
                    // later are too unsure to join.
                    if stopped || !closes {
                        return None;
                    }
                    code.push_str(&open.code);
                }
                // The next host line may itself be continued after another backchannel.
                match closing_run(toks).filter(|r| r.start == open.start) {
                    Some(run) => {
                        tail = Run { code: joined, ..run };
                        stopped = matches!(toks.last(), Some(Tok::Stop));
                        between = 0;
                    }
                    None => break,
                }
            } else {
                between += 1;
            }
            j += 1;
        }
    }
    Some(code)
}

/// Whether this run of a host line gave (part of) the code.
fn gave(run: &Run, code: &str) -> bool {
    run.code.len() >= 3 && code.contains(run.code.as_str())
}

/// Spanish and Italian words that mark a conversation as spoken in a language where "o"
/// is "or", not a zero.
const O_IS_OR: &[&str] = &[
    "si",
    "gracias",
    "grazie",
    "hola",
    "ciao",
    "buongiorno",
    "vale",
    "claro",
    "certo",
    "el",
    "su",
    "es",
    "numero",
    "confirmacion",
    "reserva",
    "il",
    "di",
    "conferma",
    "prenotazione",
    "uno",
    "dos",
    "tres",
    "cuatro",
    "cinco",
    "seis",
    "siete",
    "ocho",
    "nueve",
    "cero",
    "due",
    "tre",
    "quattro",
    "cinque",
    "sei",
    "sette",
    "otto",
    "nove",
    "zero",
];

/// Rule 2: "oh" (or "o") right after the run that ends the code: a zero when the run
/// already read an "oh" as a zero ("one oh one oh") and the "oh" is followed by a full
/// stop, a comma, the line's end or a closing phrase, otherwise no code; and no code for
/// an "o" inside a run that gave the code anywhere in a Spanish or Italian conversation
/// ("¿Me da el número?" / "Sí, 5 5 3 o 8.").
fn oh_after_code(lines: &[(Speaker, Vec<Tok>)], mut code: String) -> Option<String> {
    let mut zero_after = false;
    let o_is_or = lines.iter().any(|(_, toks)| words(toks).any(|w| O_IS_OR.contains(&w)));
    for (_, toks) in lines.iter().filter(|(speaker, _)| *speaker == Speaker::Restaurant) {
        for run in runs(toks).iter().filter(|r| gave(r, &code)) {
            let oh_inside = |oh: &str| (run.start..run.end).any(|k| word(toks, k) == Some(oh));
            if o_is_or && oh_inside("o") {
                return None;
            }
            if code.ends_with(run.code.as_str()) && matches!(word(toks, run.end), Some("oh" | "o")) {
                // "one oh one five oh by the way…": a zero only where the code plainly
                // ends with it, at a pause, the line's end or a closing phrase.
                let ends_there = matches!(toks.get(run.end + 1), None | Some(Tok::Stop | Tok::Comma))
                    || closes_code(toks, run.end + 1);
                if !oh_inside("oh") || !ends_there {
                    return None;
                }
                zero_after = true;
            }
        }
    }
    if zero_after {
        code.push('0');
    }
    Some(code)
}

/// Words that say "no" before what there is none of.
const NONE_OF: &[&str] = &[
    "no", "not", "don't", "dont", "doesn't", "never", "pas", "keine", "kein", "keinen", "nessun", "nessuno", "non",
    "sin", "sans", "ohne", "senza",
];

/// Words that may stand between that "no" and the code's name: "don't give any
/// confirmation numbers", "no damos número de", "pas de numéro", "non diamo numeri di".
const NONE_OF_BETWEEN: &[&str] = &[
    "give", "do", "have", "use", "any", "a", "hay", "damos", "tenemos", "dan", "de", "d'", "di", "diamo", "abbiamo",
    "c'e", "haben", "geben", "gibt", "es", "un", "una", "number", "numbers", "numero", "numeros", "numeri",
];

/// The code's name in every language.
const CODE_NAMES: &[&str] = &[
    "confirmation",
    "conf",
    "confirmacion",
    "conferma",
    "bestatigungsnummer",
    "bestatigung",
    "reference",
    "referencia",
    "number",
    "numbers",
    "numero",
    "numeros",
    "numeri",
    "nummer",
    "code",
    "codes",
    "codigo",
    "codice",
];

/// Rule 3a: the line that gave the code says there is none: "there's no confirmation
/// number", "we don't give confirmation numbers", "il n'y a pas de numéro".
fn said_no_code(lines: &[(Speaker, Vec<Tok>)], code: &str) -> bool {
    lines.iter().filter(|(speaker, _)| *speaker == Speaker::Restaurant).any(|(_, toks)| {
        let w: Vec<&str> = words(toks).collect();
        let says_none = w.iter().enumerate().any(|(k, none)| {
            NONE_OF.contains(none) && {
                let mut j = k + 1;
                while j < w.len() && j <= k + 3 && NONE_OF_BETWEEN.contains(&w[j]) && !CODE_NAMES.contains(&w[j]) {
                    j += 1;
                }
                w.get(j).is_some_and(|name| CODE_NAMES.contains(name))
            }
        });
        says_none && runs(toks).iter().any(|r| gave(r, code))
    })
}

/// What the agent asks for when it asks for a phone number or an address.
const PHONE_OR_ADDRESS: &[&str] = &[
    "phone",
    "telephone",
    "address",
    "reach",
    "telefono",
    "direccion",
    "adresse",
    "telefon",
    "telefonnummer",
    "indirizzo",
];

/// Rule 3b: seven digits said as a group of three and a group of four ("555 2100"),
/// the whole code, in a line after the agent asked for a phone number or an address.
fn local_phone_asked_for(lines: &[(Speaker, Vec<Tok>)], code: &str) -> bool {
    let mut asked = false;
    for (speaker, toks) in lines {
        if *speaker == Speaker::Agent {
            asked |= words(toks).any(|w| PHONE_OR_ADDRESS.contains(&w));
            continue;
        }
        let local_shape = toks.windows(2).any(|pair| match pair {
            [Tok::Word(a), Tok::Word(b)] => {
                let numeral = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_digit());
                numeral(a, 3) && numeral(b, 4) && format!("{a}{b}") == code
            }
            _ => false,
        });
        if asked && local_shape {
            return true;
        }
    }
    false
}

/// The spoken units over `start..end` with the offset in the code where each starts:
/// "44 18" is ("44" at 0, "18" at 2).
fn units_of(toks: &[Tok], start: usize, end: usize) -> Vec<(usize, String)> {
    let mut units = Vec::new();
    let (mut i, mut offset) = (start, 0);
    while i < end {
        if matches!(toks.get(i), Some(Tok::Comma)) {
            i += 1;
            continue;
        }
        let Some((chars, next)) = spoken_unit(toks, i).filter(|(_, next)| *next > i) else { break };
        let len = chars.len();
        units.push((offset, chars));
        offset += len;
        i = next;
    }
    units
}

/// Rule 4: the host answers a read-back with "no", the corrected part and the whole code
/// ("non trente-trois 22 33" after "22 23"), read as one run: the whole code when it is
/// as long as the read-back, the corrected part is one spoken unit of two or more
/// characters followed by the whole code as a group of its own, and the part is the
/// whole code's unit holding the first character that changed and every other one that
/// did; otherwise no code.
fn corrected_read_back(text: &[(Speaker, &str)], lines: &[(Speaker, Vec<Tok>)], code: String) -> Option<String> {
    for (k, pair) in lines.windows(2).enumerate() {
        let [(Speaker::Agent, agent), (Speaker::Restaurant, host)] = pair else { continue };
        let Ok([read_back]) = <[Run; 1]>::try_from(runs(agent)) else { continue };
        let read_back = read_back.code;
        let opens_no = words(host).next().is_some_and(|w| DENY.contains(&w));
        let n = read_back.len();
        // "No, there's more, 9 1 1 3 8 2" goes on from the read-back; "No, 6 double-oh 3"
        // says again the code the host gave before. Read over the turns the reader joins
        // from the lines before this reply: "It's 2 4 1..." / "Mm-hm." / "2 2." gave 24122
        // across two lines.
        let before = turns(text.iter().take(k + 1).copied());
        let said_before = before
            .iter()
            .any(|(speaker, toks)| *speaker == Speaker::Restaurant && runs(toks).iter().any(|r| r.code == code));
        let Some(corrected) = runs(host).into_iter().find(|r| r.code == code) else { continue };
        if !opens_no || code.len() <= n || code.starts_with(&read_back) || said_before {
            continue;
        }
        let (part, whole) = code.split_at(code.len() - n);
        // "trente-trois" then "22 33": the part said as one unit, then the whole code as
        // a group of its own, whose units say where the part belongs.
        let whole_units = spoken_unit(host, corrected.start)
            .filter(|(chars, _)| chars == part)
            .and_then(|(_, next)| run_at(host, next).filter(|r| r.code == whole && r.end == corrected.end))
            .map(|r| units_of(host, r.start, r.end));
        let changed: Vec<usize> =
            whole.bytes().zip(read_back.bytes()).enumerate().filter(|(_, (a, b))| a != b).map(|(k, _)| k).collect();
        // The part is the unit of the whole holding the first change, and holds every
        // change: "dix-huit" for "44 17" → "44 18".
        let agrees = part.len() >= 2
            && part.len() < n
            && changed.first().is_some_and(|&first| {
                whole_units.unwrap_or_default().iter().any(|(at, unit)| {
                    unit == part
                        && (*at..at + unit.len()).contains(&first)
                        && changed.iter().all(|k| (*at..at + unit.len()).contains(k))
                })
            });
        return agrees.then(|| whole.to_string());
    }
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::super::host_code;
    use crate::events::Speaker;

    fn convo(lines: &[(&str, &str)]) -> Option<String> {
        host_code(
            lines.iter().map(|(who, text)| (if *who == "A" { Speaker::Agent } else { Speaker::Restaurant }, *text)),
        )
    }

    #[test]
    fn a_code_continued_after_a_backchannel_is_joined_or_none() {
        let ask = ("A", "What's the confirmation number?");
        // Before this rule: 703 and QW771028, cut short.
        assert_eq!(
            convo(&[ask, ("R", "it's 7 0 3"), ("A", "got it"), ("R", "9 9 sorry I wasn't done")]),
            Some("70399".into())
        );
        let long = [
            ask,
            ("R", "okay ready it's Q W 7 7"),
            ("A", "mm-hm"),
            ("R", "1 0 2 8"),
            ("A", "go ahead"),
            ("R", "5 5 that's the whole thing"),
        ];
        assert_eq!(convo(&long), Some("QW77102855".into()));
        assert_eq!(
            convo(&[ask, ("R", "it's 4 1 8"), ("A", "got it"), ("R", "2 2 and the table's by the window")]),
            None
        );
        // The whole code, or its own characters, said again are no continuation.
        assert_eq!(
            convo(&[ask, ("R", "It's 6 6 1 9."), ("A", "Got it, thanks."), ("R", "Yes, 6 6 1 9.")]),
            Some("6619".into())
        );
        assert_eq!(
            convo(&[("R", "Confirmation number is M 5 7 2."), ("A", "N 5 7 2?"), ("R", "M as in Mary.")]),
            Some("M572".into())
        );
    }

    #[test]
    fn a_final_oh_is_a_zero_only_beside_other_ohs_and_o_is_or_in_spanish_and_italian() {
        let ask = ("A", "What's the confirmation code?");
        assert_eq!(convo(&[ask, ("R", "one oh one oh, easy to remember")]), Some("1010".into()));
        // Words straight after the final "oh" leave it unsure: "oh by the way" opens an aside.
        assert_eq!(convo(&[ask, ("R", "one oh one oh easy to remember")]), None);
        assert_eq!(convo(&[ask, ("R", "Number's 6 6 2 oh, I mean 6 6 2 0.")]), Some("6620".into()));
        assert_eq!(
            convo(&[
                ("A", "¿Tiene un número de confirmación?"),
                ("R", "su número de confirmación es cuatro cuatro uno o dos")
            ]),
            None
        );
        assert_eq!(convo(&[("A", "Ha un numero di conferma?"), ("R", "il numero di conferma è 5 5 3 o 8")]), None);
    }

    #[test]
    fn no_code_said_or_a_local_phone_asked_for_gives_no_code() {
        let mixed = [
            ("A", "could you give me the address and a number"),
            ("R", "sure we're at 1400 Main Street and the number is 555 2100 um the booking's under your name there's no confirmation number"),
        ];
        assert_eq!(convo(&mixed), None);
        assert_eq!(
            convo(&[("A", "Could I get your address and phone number?"), ("R", "the number is 555 2100")]),
            None
        );
        assert_eq!(
            convo(&[
                ("A", "¿Me da un número?"),
                ("R", "Reservado para 4 a las 9, mesa 14, no damos número de confirmación")
            ]),
            None
        );
        assert_eq!(
            convo(&[("A", "Haben Sie eine Nummer?"), ("R", "Tisch 12, wir haben keine Bestätigungsnummer")]),
            None
        );
        // A "no" that corrects the code, not one that says there is none.
        assert_eq!(
            convo(&[("A", "And the confirmation?"), ("R", "5 5 8 2 no sorry confirmation is 5 5 8 3")]),
            Some("5583".into())
        );
    }

    #[test]
    fn a_read_back_corrected_by_a_part_and_the_whole_code_is_the_whole_code() {
        let said =
            [("A", "le numéro de confirmation s'il vous plaît"), ("R", "vingt-deux trente-trois"), ("A", "22 23")];
        let with = |reply: &'static str| {
            let mut lines = said.to_vec();
            lines.push(("R", reply));
            convo(&lines)
        };
        // Before this rule: 332233 and 342233.
        assert_eq!(with("non trente-trois 22 33"), Some("2233".into()));
        assert_eq!(with("non trente-quatre 22 33"), None);
        let added = [
            ("A", "And the confirmation number?"),
            ("R", "Confirmation is 4 4 1 2"),
            ("A", "4 4 2 1?"),
            ("R", "No 4 4 1 2 3"),
        ];
        assert_eq!(convo(&added), None);
    }

    // Issue 16: inputs a reviewer traced by hand to a code the host never said.

    #[test]
    fn a_closed_line_or_a_time_after_it_is_no_continuation() {
        let ask = ("A", "What's the confirmation number?");
        // Before the fix: 55314 and 55312. After a full stop, more characters later are
        // never joined; whether they were more of the code is not told, so no code.
        assert_eq!(convo(&[ask, ("R", "It's 5 5 3 1."), ("A", "Okay."), ("R", "4 at 8, that's it.")]), None);
        assert_eq!(
            convo(&[
                ("A", "¿Cuál es el número de confirmación?"),
                ("R", "Es 5 5 3 1."),
                ("A", "Vale."),
                ("R", "2 a las 9, eso es todo.")
            ]),
            None
        );
        let table =
            [ask, ("R", "Confirmation is 7 7 1 9."), ("R", "Table 12"), ("A", "Okay."), ("R", "4 at 8, that's all")];
        assert_eq!(convo(&table), Some("7719".into()));
        // Open line, then a run with something else before the closing phrase.
        assert_eq!(convo(&[ask, ("R", "it's 5 5 3 1"), ("A", "okay"), ("R", "4 at 8, that's it")]), None);
    }

    #[test]
    fn a_read_back_corrected_across_joined_lines_keeps_the_whole_code() {
        let lines = [
            ("A", "What's the confirmation number?"),
            ("R", "It's 2 4 1..."),
            ("A", "Mm-hm."),
            ("R", "2 2."),
            ("A", "4 1 2 3?"),
            ("R", "No, 2 4 1 2 2."),
        ];
        // Before the fix: 4122, a code the host never said.
        assert_eq!(convo(&lines), Some("24122".into()));
        // The corrected part spelled digit by digit is no corrected part: "No, 3 3 2 2 3 3".
        let said =
            [("A", "le numéro de confirmation s'il vous plaît"), ("R", "vingt-deux trente-trois"), ("A", "22 23")];
        let mut digits = said.to_vec();
        digits.push(("R", "non 3 3 22 33"));
        assert_ne!(convo(&digits), Some("2233".into()));
    }

    #[test]
    fn an_oh_followed_by_more_words_is_no_zero() {
        let ask = ("A", "What's the confirmation code?");
        // Before the fix: 10150.
        assert_eq!(convo(&[ask, ("R", "one oh one five oh by the way we close at ten")]), None);
        assert_eq!(convo(&[ask, ("R", "one oh one five oh.")]), Some("10150".into()));
        assert_eq!(convo(&[ask, ("R", "one oh one five oh, that's it")]), Some("10150".into()));
    }

    #[test]
    fn a_lone_o_between_digits_in_a_spanish_or_italian_call_is_or() {
        // Before the fix: 55308.
        assert_eq!(convo(&[("A", "¿Me da el número de confirmación?"), ("R", "Sí, 5 5 3 o 8.")]), None);
        assert_eq!(convo(&[("A", "Mi dà il numero di conferma?"), ("R", "Sì, 5 5 3 o 8.")]), None);
        assert_eq!(convo(&[("A", "What's the confirmation number?"), ("R", "Yes, 5 5 3 o 8.")]), Some("55308".into()));
    }
}
