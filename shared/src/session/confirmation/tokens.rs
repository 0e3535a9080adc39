//! Speech-transcript text as tokens the reader can walk: lower-case, accent-folded
//! words, sentence stops, commas, and the two things that end a code on sight,
//! times ("7:30") and phone numbers ("510-548-5525").

/// One token of a transcript line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A word or a group of digits, folded (`é` → `e`, `ß` → `ss`), lower-case.
    Word(String),
    /// `.`, `?`, `!`, `;`: a sentence ends.
    Stop,
    /// `,`, `:`, or the seam between two joined utterances.
    Comma,
    /// Two to four capitals written together ("PQ", "LMN"): letters of a code, when
    /// one is being read.
    Letters(String),
    /// A clock time written with a separator ("7:30", "19.30", "7:30pm") or an amount
    /// of money ("$40", "25€"): never part of a code.
    Time,
    /// Digits grouped like a phone number: "510-548-5525", "(510)", "+1".
    Phone,
}

impl Tok {
    pub fn word(&self) -> Option<&str> {
        match self {
            Tok::Word(w) | Tok::Letters(w) => Some(w),
            _ => None,
        }
    }
}

/// Folds accents and case so one word list serves every spelling.
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars().flat_map(char::to_lowercase) {
        match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' => out.push('a'),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'í' | 'ì' | 'î' | 'ï' => out.push('i'),
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => out.push('o'),
            'ú' | 'ù' | 'û' | 'ü' => out.push('u'),
            'ñ' => out.push('n'),
            'ç' => out.push('c'),
            'ß' => out.push_str("ss"),
            '’' | '‘' | '`' => out.push('\''),
            other => out.push(other),
        }
    }
    out
}

/// Nouns after which "no." is "number": "confirmation no. 4412".
const NUMBERED: [&str; 7] = ["confirmation", "conf", "reservation", "booking", "reference", "ref", "order"];

/// Parts of French numbers written with hyphens.
const FRENCH_NUMBER_PARTS: &[&str] = &[
    "un",
    "deux",
    "trois",
    "quatre",
    "cinq",
    "six",
    "sept",
    "huit",
    "neuf",
    "dix",
    "onze",
    "douze",
    "treize",
    "quatorze",
    "quinze",
    "seize",
    "vingt",
    "vingts",
    "trente",
    "quarante",
    "cinquante",
    "soixante",
    "et",
];
const FRENCH_TENS: &[&str] = &["dix", "vingt", "trente", "quarante", "cinquante", "soixante", "quatre"];

/// Nouns whose "'s" is "is": "confirmation's 4412", "number's 4412".
const IS_CONTRACTED: &[&str] = &[
    "confirmation",
    "number",
    "code",
    "reference",
    "id",
    "booking",
    "reservation",
    "name",
    "digit",
    "letter",
    "conf",
    "ref",
    "locator",
    "res",
];

/// A contraction standing alone after a symbol ("confirmation #'s 4412"): the verb.
fn contracted_verb(chunk: &str) -> Option<&'static str> {
    match chunk.trim_end_matches([',', '.', ':', ';', '!', '?']) {
        "'s" => Some("is"),
        "'ll" => Some("will"),
        "'d" => Some("would"),
        _ => None,
    }
}

fn is_time(core: &str) -> bool {
    // "7-30": an hour and a quarter written with a hyphen ("44-12" stays a code).
    if let Some((hour, minutes)) = core.split_once('-') {
        let hour_digit = hour.len() == 1 && matches!(hour.as_bytes()[0], b'1'..=b'9');
        return hour_digit && matches!(minutes, "00" | "15" | "30" | "45");
    }
    let core = core.trim_end_matches("pm").trim_end_matches("am").trim_end_matches('h');
    // "20h30": the French way, hours up to 23.
    if let Some((hours, minutes)) = core.split_once('h') {
        let two_digits = minutes.len() == 2 && minutes.parse::<u32>().is_ok_and(|m| m < 60);
        return two_digits && hours.parse::<u32>().is_ok_and(|h| h <= 23) && !hours.is_empty() && hours.len() <= 2;
    }
    let Some((hours, minutes)) = core.split_once([':', '.']) else {
        return false;
    };
    (1..=2).contains(&hours.len())
        && hours.chars().all(|c| c.is_ascii_digit())
        && minutes.len() == 2
        && minutes.chars().all(|c| c.is_ascii_digit())
}

fn is_phone(core: &str) -> bool {
    let groups: Vec<&str> = core.split(['-', '.']).filter(|g| !g.is_empty()).collect();
    let all_digits = groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()));
    let digits: usize = groups.iter().map(|g| g.len()).sum();
    // "510-548-5525", "548-5525", "+1": grouped digits with a 3- or 4-digit tail.
    all_digits && groups.len() >= 2 && digits >= 7 && groups.iter().all(|g| g.len() >= 3)
}

/// Splits a chunk's core on hyphens and dots between single characters into words.
fn push_core(core: &str, out: &mut Vec<Tok>) {
    if core.is_empty() {
        return;
    }
    let money = (core.starts_with(['$', '€', '£']) || core.ends_with(['€', '$', '£']))
        && core.chars().any(|c| c.is_ascii_digit());
    if is_time(core) || money {
        out.push(Tok::Time);
        return;
    }
    if is_phone(core) || (core.starts_with('(') && core.ends_with(')')) || core.starts_with('+') {
        out.push(Tok::Phone);
        return;
    }
    let core = core.trim_matches(|c: char| !c.is_alphanumeric());
    if core.is_empty() {
        return;
    }
    match core.rsplit_once('\'') {
        Some((stem, "s")) if IS_CONTRACTED.contains(&stem) => {
            out.push(Tok::Word(stem.to_owned()));
            out.push(Tok::Word("is".to_owned()));
            return;
        }
        // "4 4 1 2's what I've got": the digits and "is", not an unknown word that
        // would end the code one character early.
        Some((stem, "s" | "ll")) if !stem.is_empty() && stem.chars().all(|c| c.is_ascii_digit()) => {
            out.push(Tok::Word(stem.to_owned()));
            out.push(Tok::Word(if core.ends_with("'s") { "is" } else { "will" }.to_owned()));
            return;
        }
        // "number'll be", "confirmation'd be".
        Some((stem, verb @ ("ll" | "d"))) if IS_CONTRACTED.contains(&stem) => {
            out.push(Tok::Word(stem.to_owned()));
            out.push(Tok::Word(if verb == "ll" { "will" } else { "would" }.to_owned()));
            return;
        }
        _ => {}
    }
    // "4,412": a thousands separator, not a pause.
    let groups: Vec<&str> = core.split(',').collect();
    if groups.len() > 1
        && groups.iter().all(|g| !g.is_empty() && g.chars().all(|c| c.is_ascii_digit()))
        && groups[0].len() <= 3
        && groups[1..].iter().all(|g| g.len() == 3)
    {
        out.push(Tok::Word(groups.concat()));
        return;
    }
    // "x-ray" stays one word; "A-7-X-3", "2-oh-3-3", "forty-five", "double-seven" split.
    if core == "x-ray" {
        out.push(Tok::Word("xray".to_owned()));
        return;
    }
    let hyphened: Vec<&str> = core.split('-').collect();
    if hyphened.len() > 1 {
        // "soixante-dix-sept", "quatre-vingt-dix": French numbers are one number.
        if hyphened.iter().all(|p| FRENCH_NUMBER_PARTS.contains(p)) && FRENCH_TENS.contains(&hyphened[0]) {
            out.push(Tok::Word(hyphened.concat()));
            return;
        }
        // "ZQ-4471", "A-7-X-3", "44-12": one code written with hyphens.
        let code_like = hyphened.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()));
        let has_digit = hyphened.iter().any(|p| p.chars().any(|c| c.is_ascii_digit()));
        let short_letters = hyphened
            .iter()
            .all(|p| p.chars().any(|c| c.is_ascii_digit()) || (p.len() <= 3 && super::words::digit(p).is_none()));
        if code_like && has_digit && short_letters {
            out.push(Tok::Word(hyphened.concat()));
            return;
        }
    }
    // "A.7.X.3" is four characters; "4.4" (no letters, single chars) too.
    let parts: Vec<&str> = if core.contains('-') {
        core.split('-').collect()
    } else if core.contains('.') && core.split('.').all(|p| p.chars().count() == 1) {
        core.split('.').collect()
    } else {
        vec![core]
    };
    for part in parts {
        let part = part.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        if !part.is_empty() {
            out.push(Tok::Word(part.to_owned()));
        }
    }
}

/// "20 h 30", "19 h": an evening hour said the French way is a time, not "20", the
/// letter H and "30".
fn french_hours(toks: Vec<Tok>) -> Vec<Tok> {
    let number = |t: Option<&Tok>, range: std::ops::RangeInclusive<u32>, len: usize| {
        t.and_then(Tok::word).is_some_and(|w| w.len() == len && w.parse::<u32>().is_ok_and(|v| range.contains(&v)))
    };
    let mut out = Vec::with_capacity(toks.len());
    let mut k = 0;
    while k < toks.len() {
        let hour = number(toks.get(k), 10..=23, 2) && toks.get(k + 1).and_then(Tok::word) == Some("h");
        if hour {
            out.push(Tok::Time);
            k += if number(toks.get(k + 2), 0..=59, 2) { 3 } else { 2 };
            continue;
        }
        out.push(toks[k].clone());
        k += 1;
    }
    out
}

/// Tokens of one utterance.
/// Capitals that are words or abbreviations, not letters of a code.
const CAPITAL_WORDS: &[&str] = &[
    "OK", "AM", "PM", "ID", "US", "IT", "NO", "SO", "TV", "AN", "AT", "BE", "DO", "GO", "HI", "IF", "IN", "IS", "ME",
    "MY", "OF", "ON", "OR", "TO", "UP", "WE", "THE", "AND", "FOR", "YES", "YOU", "ARE", "SMS", "USA", "BBQ", "VIP",
    "ASAP", "OH", "UH", "UM", "MM", "HM", "MHM", "NYC", "LA", "SF", "EST", "PST", "CET", "EUR", "USD", "DJ", "RSVP",
    "NOTE", "CODE", "ALL", "SET", "DONE", "NOT", "BUT", "YEAH", "YEP", "SURE", "HOLD", "WAIT", "ONE", "TWO", "SIX",
    "TEN", "FIVE", "FOUR", "NINE", "ZERO", "ES", "EL", "LE", "DE", "DU", "IL", "DI", "DIE", "DER", "DAS", "IST",
];

fn capital_letters(original: &str) -> bool {
    let core = original.trim_matches(|c: char| !c.is_alphanumeric());
    // A lone capital "A", "E" or "Y" is the letter (the article "a" and the Italian and
    // Spanish "e" and "y" are written small); "I" is a pronoun, "O" often a zero.
    matches!(core, "A" | "E" | "Y")
        || (2..=4).contains(&core.len())
            && core.chars().all(|c| c.is_ascii_uppercase())
            && !CAPITAL_WORDS.contains(&core)
}

pub fn tokenize(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    for original in text.split_whitespace() {
        let capitals = capital_letters(original);
        // The French "à" is never the letter A: it keeps its accent.
        let folded = if original.trim_end_matches([',', '.']) == "à" { original.to_owned() } else { fold(original) };
        let chunk = folded.as_str();
        let bare = chunk.trim_end_matches([',', '.', ':', ';']);
        if bare.len() > 2 && bare.starts_with('(') && bare.ends_with(')') {
            // "(510)": an area code in parentheses.
            out.push(Tok::Phone);
            continue;
        }
        // "#'s", "# 's": the verb of a contraction whose noun is a symbol, never the
        // letter S.
        let verb = chunk.strip_prefix('#').and_then(contracted_verb).or_else(|| contracted_verb(chunk));
        if let Some(verb) = verb {
            if chunk.starts_with('#') {
                out.push(Tok::Word("number".to_owned()));
            }
            out.push(Tok::Word(verb.to_owned()));
            match chunk.chars().last() {
                Some('.' | '?' | '!' | ';') => out.push(Tok::Stop),
                Some(',' | ':') => out.push(Tok::Comma),
                _ => {}
            }
            continue;
        }
        let mut chunk = chunk.trim_start_matches(['"', '(', '[', '¿', '¡', '«', '“', '\'']);
        // "n°" / "nº" / "#" are "number".
        let after_noun = out.last().and_then(Tok::word).is_some_and(|w| NUMBERED.contains(&w));
        let abbreviation = chunk.trim_end_matches([',', ':']);
        if matches!(abbreviation, "n°" | "nº" | "#" | "nr." | "nr")
            || (after_noun && matches!(abbreviation, "no." | "no" | "num" | "num."))
        {
            out.push(Tok::Word("number".to_owned()));
            if chunk.ends_with(',') || chunk.ends_with(':') {
                out.push(Tok::Comma);
            }
            continue;
        }
        if let Some(rest) = chunk.strip_prefix('#') {
            out.push(Tok::Word("number".to_owned()));
            chunk = rest;
        }
        // Trailing punctuation, kept in order after the core.
        let mut tail = Vec::new();
        let mut core = chunk;
        while let Some(last) = core.chars().last() {
            let tok = match last {
                '.' | '?' | '!' | ';' | '…' => Tok::Stop,
                ',' | ':' => Tok::Comma,
                '"' | ')' | ']' | '»' | '”' | '\'' => {
                    // "(510)" keeps its parenthesis for the phone test below.
                    if last == ')' && core.starts_with('(') {
                        break;
                    }
                    core = &core[..core.len() - last.len_utf8()];
                    continue;
                }
                _ => break,
            };
            // "7.30" and "A.7" keep their inner dots; only trailing ones are stops.
            tail.push(tok);
            core = &core[..core.len() - last.len_utf8()];
        }
        let before = out.len();
        push_core(core, &mut out);
        if capitals && out.len() == before + 1 {
            if let Some(Tok::Word(w)) = out.last_mut() {
                let letters = std::mem::take(w);
                out.pop();
                out.push(Tok::Letters(letters));
            }
        }
        tail.reverse();
        // Several stops in a row ("...") are one.
        for tok in tail {
            if out.last() != Some(&tok) {
                out.push(tok);
            }
        }
    }
    french_hours(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text)
            .into_iter()
            .map(|t| match t {
                Tok::Word(w) => w,
                Tok::Letters(l) => format!("<{l}>"),
                Tok::Stop => ".".into(),
                Tok::Comma => ",".into(),
                Tok::Time => "<time>".into(),
                Tok::Phone => "<phone>".into(),
            })
            .collect()
    }

    #[test]
    fn splits_codes_times_phones_and_contractions() {
        assert_eq!(words("A-7-X-3, at 7:30."), ["a7x3", ",", "at", "<time>", "."]);
        assert_eq!(words("Confirmation's 2-oh-3-3"), ["confirmation", "is", "2", "oh", "3", "3"]);
        assert_eq!(words("call 510-548-5525 or (510) 548-5525"), ["call", "<phone>", "or", "<phone>", "<phone>"]);
        assert_eq!(words("X-ray Número: 19.30h"), ["xray", "numero", ",", "<time>"]);
        assert_eq!(words("confirmation no. 4412"), ["confirmation", "number", "4412"]);
        assert_eq!(words("#4412... ok"), ["number", "4412", ".", "ok"]);
        assert_eq!(words("Fünfundvierzig, dreißig"), ["funfundvierzig", ",", "dreissig"]);
        assert_eq!(words("ZQ-4471, 44-12, 4,412"), ["zq4471", ",", "4412", ",", "4412"]);
        assert_eq!(words("It's PQ 7, OK, SMS"), ["it's", "<pq>", "7", ",", "ok", ",", "sms"]);
        assert_eq!(
            words("A, a, I, E, e, Y, y"),
            ["<a>", ",", "a", ",", "i", ",", "<e>", ",", "e", ",", "<y>", ",", "y"]
        );
        assert_eq!(words("4412 $40 25€"), ["4412", "<time>", "<time>"]);
        assert_eq!(words("soixante-dix-sept number'll"), ["soixantedixsept", "number", "will"]);
        assert_eq!(words("4, à 20 h, À"), ["4", ",", "à", "<time>", ",", "a"]);
        assert_eq!(words("pour 20 h 30, 20h30, 8 h 30"), ["pour", "<time>", ",", "<time>", ",", "8", "h", "30"]);
    }

    #[test]
    fn digits_with_a_contraction_are_the_digits_and_the_verb() {
        assert_eq!(words("4 4 1 2's what I've got"), ["4", "4", "1", "2", "is", "what", "i've", "got"]);
        assert_eq!(words("9 9 0 4'll be it"), ["9", "9", "0", "4", "will", "be", "it"]);
        assert_eq!(words("Conf's 8 8"), ["conf", "is", "8", "8"]);
        assert_eq!(words("Ref's 3"), ["ref", "is", "3"]);
        assert_eq!(words("confirmation #'s 2 2"), ["confirmation", "number", "is", "2", "2"]);
        assert_eq!(words("number 's, it'd"), ["number", "is", ",", "it'd"]);
        assert_eq!(words("Confirmation'd be"), ["confirmation", "would", "be"]);
    }

    #[test]
    fn an_hour_and_a_quarter_with_a_hyphen_is_a_time() {
        assert_eq!(words("It's 7-30."), ["it's", "<time>", "."]);
        assert_eq!(words("It's 44-12."), ["it's", "4412", "."]);
    }
}
