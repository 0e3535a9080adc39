//! The vocabulary the reader needs, in the languages the agent speaks (en, es, fr, de,
//! it), all accent-folded (see [`super::tokens::fold`]).

/// Digits said as words.
const DIGITS: &[(&str, u32)] = &[
    ("zero", 0),
    ("oh", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("niner", 9),
    ("cero", 0),
    ("uno", 1),
    ("una", 1),
    ("dos", 2),
    ("tres", 3),
    ("cuatro", 4),
    ("cinco", 5),
    ("seis", 6),
    ("siete", 7),
    ("ocho", 8),
    ("nueve", 9),
    ("un", 1),
    ("une", 1),
    ("deux", 2),
    ("trois", 3),
    ("quatre", 4),
    ("cinq", 5),
    ("sept", 7),
    ("huit", 8),
    ("neuf", 9),
    ("null", 0),
    ("eins", 1),
    ("ein", 1),
    ("zwei", 2),
    ("zwo", 2),
    ("drei", 3),
    ("vier", 4),
    ("funf", 5),
];
const MORE_DIGITS: &[(&str, u32)] = &[
    ("sechs", 6),
    ("sieben", 7),
    ("acht", 8),
    ("neun", 9),
    ("due", 2),
    ("tre", 3),
    ("quattro", 4),
    ("cinque", 5),
    ("sei", 6),
    ("sette", 7),
    ("otto", 8),
    ("nove", 9),
];

/// 10 to 19.
const TEENS: &[(&str, u32)] = &[
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
    ("diez", 10),
    ("once", 11),
    ("doce", 12),
    ("trece", 13),
    ("catorce", 14),
    ("quince", 15),
    ("dieciseis", 16),
    ("diecisiete", 17),
    ("dieciocho", 18),
    ("diecinueve", 19),
    ("dix", 10),
    ("onze", 11),
    ("douze", 12),
    ("treize", 13),
    ("quatorze", 14),
    ("quinze", 15),
    ("seize", 16),
    ("zehn", 10),
    ("elf", 11),
    ("zwolf", 12),
    ("dreizehn", 13),
    ("vierzehn", 14),
    ("funfzehn", 15),
    ("sechzehn", 16),
    ("siebzehn", 17),
    ("achtzehn", 18),
    ("neunzehn", 19),
    ("dieci", 10),
    ("undici", 11),
    ("dodici", 12),
    ("tredici", 13),
    ("quattordici", 14),
    ("quindici", 15),
    ("sedici", 16),
    ("diciassette", 17),
    ("diciotto", 18),
    ("diciannove", 19),
    ("dixsept", 17),
    ("dixhuit", 18),
    ("dixneuf", 19),
    ("dix", 10),
];

/// 20, 30, … 90.
const TENS: &[(&str, u32)] = &[
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fourty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
    ("veinte", 20),
    ("treinta", 30),
    ("cuarenta", 40),
    ("cincuenta", 50),
    ("sesenta", 60),
    ("setenta", 70),
    ("ochenta", 80),
    ("noventa", 90),
    ("vingt", 20),
    ("trente", 30),
    ("quarante", 40),
    ("cinquante", 50),
    ("soixante", 60),
    ("zwanzig", 20),
    ("dreissig", 30),
    ("vierzig", 40),
    ("funfzig", 50),
    ("sechzig", 60),
    ("siebzig", 70),
    ("achtzig", 80),
    ("neunzig", 90),
    ("venti", 20),
    ("trenta", 30),
    ("quaranta", 40),
    ("cinquanta", 50),
    ("sessanta", 60),
    ("settanta", 70),
    ("ottanta", 80),
    ("novanta", 90),
];

pub const NATO: &[&str] = &[
    "alpha", "alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor",
    "whiskey", "whisky", "xray", "yankee", "zulu",
];

pub fn digit(word: &str) -> Option<u32> {
    DIGITS.iter().chain(MORE_DIGITS.iter()).find(|(w, _)| *w == word).map(|&(_, v)| v)
}

pub fn teen(word: &str) -> Option<u32> {
    TEENS.iter().find(|(w, _)| *w == word).map(|&(_, v)| v)
}

pub fn tens(word: &str) -> Option<u32> {
    TENS.iter().find(|(w, _)| *w == word).map(|&(_, v)| v)
}

/// Hundreds said as one word: "cuatrocientos", "trecento".
const HUNDREDS: &[(&str, u32)] = &[
    ("cien", 100),
    ("ciento", 100),
    ("doscientos", 200),
    ("trescientos", 300),
    ("cuatrocientos", 400),
    ("quinientos", 500),
    ("seiscientos", 600),
    ("setecientos", 700),
    ("ochocientos", 800),
    ("novecientos", 900),
    ("cento", 100),
    ("duecento", 200),
    ("trecento", 300),
    ("quattrocento", 400),
    ("cinquecento", 500),
    ("seicento", 600),
    ("settecento", 700),
    ("ottocento", 800),
    ("novecento", 900),
    ("hundert", 100),
    ("einhundert", 100),
];

/// Numbers below 100 said as one word, in any of the languages.
pub fn below_hundred(word: &str) -> Option<u32> {
    digit(word).or_else(|| teen(word)).or_else(|| tens(word)).or_else(|| compound(word))
}

/// A whole number said as one word with hundreds: "cuatrocientos", "zweihundertzwolf",
/// "duecentocinquanta".
pub fn hundreds_word(word: &str) -> Option<u32> {
    if let Some(&(_, v)) = HUNDREDS.iter().find(|(w, _)| *w == word) {
        return Some(v);
    }
    for marker in ["hundert", "cento"] {
        if let Some((head, rest)) = word.split_once(marker) {
            let times = if head.is_empty() || head == "ein" { Some(1) } else { digit(head).filter(|&d| d > 1) };
            let rest_value = if rest.is_empty() { Some(0) } else { below_hundred(rest.trim_start_matches("und")) };
            if let (Some(times), Some(rest)) = (times, rest_value) {
                return Some(times * 100 + rest);
            }
        }
    }
    None
}

/// One-word compounds: "veintidos", "quarantacinque", "ventitre", "funfundvierzig",
/// and French joined from hyphens: "soixantedixsept", "quatrevingtdix", "vingtetun".
pub fn compound(word: &str) -> Option<u32> {
    for (head, base) in [("quatrevingts", 80), ("quatrevingt", 80), ("soixante", 60)] {
        if let Some(rest) = word.strip_prefix(head) {
            let rest = rest.strip_prefix("et").unwrap_or(rest);
            if rest.is_empty() {
                return Some(base);
            }
            if let Some(v) = teen(rest).or_else(|| digit(rest).filter(|&d| d > 0)) {
                return Some(base + v);
            }
        }
    }
    if let Some((unit, ten)) = word.split_once("und") {
        if let (Some(u), Some(t)) = (digit(unit), tens(ten)) {
            return (u > 0).then_some(t + u);
        }
    }
    if let Some(rest) = word.strip_prefix("veinti") {
        return digit(rest).filter(|&u| u > 0).map(|u| 20 + u);
    }
    for &(ten, value) in TENS {
        // Italian drops the tens' last vowel before "uno" and "otto": "ventuno", "trentotto".
        let stems = [ten, &ten[..ten.len() - 1]];
        for stem in stems {
            if let Some(rest) = word.strip_prefix(stem) {
                let rest = rest.strip_prefix("et").unwrap_or(rest);
                if let Some(u) = digit(rest).filter(|&u| u > 0) {
                    return Some(value + u);
                }
            }
        }
    }
    None
}

pub const DOUBLE: &[&str] = &["double", "doble", "doppio", "doppel", "doppia", "doppelte"];
pub const TRIPLE: &[&str] = &["triple", "triplo", "tripel"];

/// Words that join a spelled letter to its example: "A as in apple", "B wie Berta".
pub const SPELL_JOINERS: &[&str] = &["as", "for", "like", "wie", "de", "como", "comme", "come"];

/// Said between the characters of a code without meaning anything.
pub const CODE_FILLERS: &[&str] = &[
    "dash",
    "hyphen",
    "then",
    "space",
    "uh",
    "um",
    "umm",
    "er",
    "erm",
    "ah",
    "uhm",
    "ehm",
    "hmm",
    "mmm",
    "eh",
    "euh",
    "ahm",
    "ehh",
    "guion",
    "tiret",
    "bindestrich",
    "trattino",
];

/// After a number, these make it a quantity or a time, not part of a code.
pub const QUANTITY: &[&str] = &[
    "tonight",
    "tomorrow",
    "today",
    "sharp",
    "noon",
    "midnight",
    "morning",
    "evening",
    "night",
    "hrs",
    "mins",
    "dollars",
    "dollar",
    "bucks",
    "euros",
    "euro",
    "pounds",
    "deposit",
    "percent",
    "letters",
    "digits",
    "numbers",
    "characters",
    "second",
    "seconds",
    "sec",
    "moment",
    "minute",
    "people",
    "persons",
    "person",
    "guests",
    "guest",
    "pm",
    "am",
    "p",
    "oclock",
    "o'clock",
    "minutes",
    "hours",
    "personas",
    "personnes",
    "personen",
    "persone",
    "heures",
    "uhr",
    "horas",
    "ore",
    "of",
    "pax",
    "seats",
    "covers",
    "adults",
    "kids",
    "children",
];

/// One-letter words that are usually words, not letters ("y" is Spanish "and").
pub const AMBIGUOUS_LETTERS: &[&str] = &["a", "i", "y", "e", "o", "u"];
/// Of those, the ones taken as letters when a code character follows.
pub const LETTER_IF_FOLLOWED: &[&str] = &["a", "i"];

/// Nouns that name the booking's code on their own.
pub const STRONG_TRIGGERS: &[&str] = &[
    "confirmation",
    "conf",
    "confirmacion",
    "conferma",
    "bestatigungsnummer",
    "bestatigungscode",
    "bestatigung",
    "buchungsnummer",
    "buchungscode",
    "reservierungsnummer",
    "reservierungscode",
    "referenznummer",
    "reference",
    "ref",
    "referencia",
    "riferimento",
    "localizador",
    "confirmationnumber",
    "confirmationcode",
    "vorgangsnummer",
    "buchungsreferenz",
    "reservierungsreferenz",
    // "record locator": an airline's word some booking systems use.
    "locator",
];

/// Nouns that name a code only in a booking's context: "reservation number",
/// "número de reserva", "the code for your booking".
pub const WEAK_TRIGGERS: &[&str] = &["number", "code", "id", "numero", "nummer", "codice", "codigo", "identifier"];

/// Words that may stand right before a trigger without changing what it names: articles,
/// possessives, openings ("your confirmation", "so the number", "il numero di conferma").
/// Any other word there qualifies it ("deposit reference", "payment reference", "hold
/// number"): a code of something else, whatever the host calls it.
pub const TRIGGER_LEADS: &[&str] = &[
    "the", "your", "a", "an", "this", "that", "that's", "thats", "it's", "its", "it", "is", "be", "was", "will", "my",
    "his", "her", "their", "and", "so", "okay", "ok", "yes", "yeah", "yep", "sure", "uh", "um", "er", "ah", "oh",
    "here's", "there's", "with", "got", "have", "new", "correct", "right", "full", "same", "no", "any", "then", "also",
    "res", "record", "first", "second", "last", "final", "actual", "real", "old", "other", "previous", "original",
    "updated", "su", "el", "la", "los", "de", "del", "di", "il", "lo", "suo", "sua", "vostro", "vostra", "votre", "le",
    "du", "des", "ihre", "ihr", "die", "der", "das", "eure", "ist", "es", "est", "e", "y", "et", "und",
];

/// Words that give a weak trigger its booking context.
pub const BOOKING: &[&str] = &[
    "reservation",
    "booking",
    "reserva",
    "reservacion",
    "reservation's",
    "prenotazione",
    "reservierung",
    "buchung",
    "reservierungs",
    "confirmation",
    "confirmacion",
    "conferma",
    "reference",
    "bestatigung",
    // "res number": short for reservation.
    "res",
];

/// Qualifiers that make a "code"/"number" something else: never a booking code.
pub const OTHER_CODES: &[&str] = &[
    "valet",
    "coat",
    "locker",
    "voucher",
    "gift",
    "pin",
    "verification",
    "membership",
    "loyalty",
    "member",
    "account",
    "invoice",
    "receipt",
    "transaction",
    "tracking",
    "elevator",
    "postleitzahl",
    "plz",
    "navi",
    "buzzer",
    "elevator",
    "lift",
    "order",
    "codigo postal",
    "cap",
    "area",
    "zip",
    "postal",
    "post",
    "postcode",
    "parking",
    "door",
    "gate",
    "dress",
    "promo",
    "promotional",
    "discount",
    "coupon",
    "access",
    "wifi",
    "wi",
    "entry",
    "security",
    "country",
    "phone",
    "telephone",
    "cell",
    "mobile",
    "table",
    "room",
    "fax",
    "callback",
    "contact",
    "postale",
    "telefono",
    "telephone",
    "telefon",
    "telefonnummer",
    "tel",
    "acces",
    "porte",
    "puerta",
    "portone",
    "garage",
    "tur",
    // Tables, rooms, gates, parking, phones and vouchers in the other languages.
    "mesa",
    "tavolo",
    "tisch",
    "habitacion",
    "chambre",
    "salle",
    "zimmer",
    "saal",
    "camera",
    "sala",
    "cancello",
    "portail",
    "tor",
    "estacionamiento",
    "aparcamiento",
    "parcheggio",
    "parkplatz",
    "stationnement",
    "movil",
    "celular",
    "portable",
    "handy",
    "handynummer",
    "cellulare",
    "regalo",
    "cadeau",
    "gutschein",
    "citofono",
    "interphone",
    "klingel",
];

/// Words allowed between a trigger and its code: "is, uh,", "is going to be", "for that".
pub const PREAMBLE: &[&str] = &[
    "is",
    "it's",
    "its",
    "it",
    "will",
    "be",
    "would",
    "going",
    "to",
    "gonna",
    "the",
    "your",
    "that's",
    "that",
    "for",
    "this",
    "uh",
    "um",
    "umm",
    "er",
    "erm",
    "ah",
    "so",
    "okay",
    "ok",
    "number",
    "code",
    "reads",
    "just",
    "here",
    "there",
    "there's",
    "here's",
    "you",
    "go",
    "we",
    "have",
    "got",
    "as",
    "follows",
    "like",
    "id",
    "booking",
    "reservation",
    "now",
    "should",
    "'s",
    "es",
    "sera",
    "seria",
    "su",
    "el",
    "la",
    "de",
    "del",
    "numero",
    "codigo",
    "reserva",
    "para",
    "va",
    "ser",
    "eh",
    "este",
    "pues",
    "est",
    "c'est",
    "votre",
    "le",
    "du",
    "code",
    "euh",
    "alors",
    "donc",
    "pour",
    "ce",
    "serait",
    "ist",
    "lautet",
    "ware",
    "die",
    "der",
    "das",
    "ihre",
    "ihr",
    "ah",
    "ahm",
    "also",
    "nummer",
    "fur",
    "e",
    "il",
    "di",
    "suo",
    "sua",
    "vostro",
];

/// More preamble: Italian and a few politeness words.
pub const PREAMBLE_MORE: &[&str] = &[
    "della",
    "dello",
    "delle",
    "des",
    "vom",
    "zur",
    "letter",
    "then",
    "on",
    "actually",
    "oh",
    "mm",
    "hm",
    "mhm",
    "sara",
    "codice",
    "allora",
    "per",
    "ehm",
    "prenotazione",
    "sure",
    "yes",
    "yeah",
    "yep",
    "certainly",
    "of",
    "course",
    "yup",
    "absolutely",
    "right",
];

/// Replies that accept a read-back.
pub const AFFIRM: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "correct",
    "right",
    "exactly",
    "perfect",
    "sure",
    "uh-huh",
    "mhm",
    "mm-hmm",
    "si",
    "correcto",
    "exacto",
    "oui",
    "exact",
    "exactement",
    "ja",
    "genau",
    "richtig",
    "stimmt",
    "esatto",
    "giusto",
    "certo",
    "perfetto",
    "perfecto",
    "parfait",
    "great",
    "that's",
];

/// Replies that refuse a read-back or take back what was just said.
pub const DENY: &[&str] = &["no", "nope", "incorrect", "wrong", "nein", "non", "not", "negative", "falsch"];

/// Words that take back the code just said: "5 5 8 2, no sorry, 5 5 8 3".
pub const CORRECTION: &[&str] = &[
    "hold",
    "hang",
    "mistake",
    "instead",
    "whoops",
    "misread",
    "typo",
    "wrong",
    "sorry",
    "actually",
    "wait",
    "correction",
    "oops",
    "rather",
    "mean",
    "scratch",
    "make",
    "perdon",
    "perdona",
    "digo",
    "pardon",
    "plutot",
    "entschuldigung",
    "korrektur",
    "meine",
    "scusi",
    "scusa",
    "cioe",
    "anzi",
    "mejor",
    "dicho",
    "veux",
];

/// Of the correction words, those that only ever take something back ("wait", "my
/// mistake"), unlike "sorry" or "hold", which as often apologise or go on ("sorry about
/// the wait", "we hold the table").
pub const RETRACT: &[&str] =
    &["wait", "actually", "mistake", "wrong", "scratch", "oops", "whoops", "misread", "typo", "correction"];

/// Number words that are also ordinary English words: Spanish "once" (11) in "6 1 2 9
/// once it saves".
pub const FALSE_FRIENDS: &[&str] = &["once"];

/// Words said before a code repeated: "4412, again 4412", "I repeat".
pub const REPEAT: &[&str] = &["again", "repeat", "once", "more", "so", "that's", "i", "otra", "vez", "encore"];

/// Filler phrases a busy host says before the code ("hang on, the screen's slow,
/// let me see"), skipped after a strong trigger.
pub const STALLING: &[&str] = &[
    "hang",
    "hold",
    "on",
    "let",
    "let's",
    "lets",
    "me",
    "see",
    "check",
    "look",
    "bear",
    "with",
    "second",
    "sec",
    "moment",
    "screen",
    "screen's",
    "computer",
    "system",
    "here",
    "my",
    "slow",
    "today",
    "pull",
    "up",
    "find",
    "where",
    "was",
    "alright",
    "all",
    "right",
    "and",
    "kind",
    "of",
    "hidden",
    "this",
    "one",
    "sorry",
    "just",
    "give",
    "wait",
    "ok",
    "okay",
    "oh",
    "well",
    "now",
    "got",
    "it",
    "bit",
    "a",
    "the",
    "momento",
    "attendez",
    "warten",
    "sie",
    "momentino",
    "vediamo",
    "voyons",
    "veamos",
    "mal",
    "kurz",
    "numbers",
    "letters",
    "digits",
    "spell",
    // "got a pen?", "let me read it out", "I'm just scrolling down", "you know what".
    "pen",
    "paper",
    "ready",
    "read",
    "out",
    "say",
    "twice",
    "write",
    "down",
    "loading",
    "scrolling",
    "i'm",
    "know",
    "what",
];

/// Agent lines that only keep the host talking: "uh-huh", "mm-hm", "okay".
pub const BACKCHANNEL: &[&str] = &[
    "uh", "huh", "mm", "hm", "mhm", "okay", "ok", "yes", "yeah", "yep", "sure", "go", "on", "aja", "aha", "si", "oui",
    "ja", "d'accord", "got", "it", "right", "vale", "bene", "genau", "gut", "mhmm", "ajá", "take", "your", "time",
    "no", "problem", "worries", "rush", "of", "course", "claro", "bien", "sur", "certo", "klar",
];

/// After a number, these make it an address, not part of a code.
pub const STREET: &[&str] = &[
    "street",
    "st",
    "avenue",
    "ave",
    "road",
    "rd",
    "boulevard",
    "blvd",
    "drive",
    "dr",
    "lane",
    "ln",
    "way",
    "place",
    "main",
    "broadway",
    "calle",
    "avenida",
    "rue",
    "strasse",
    "str",
    "via",
    "viale",
    "piazza",
    "plaza",
    "suite",
];
