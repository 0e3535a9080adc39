//! Scores a confirmation-code reader on the evaluation set in
//! `shared/tests/fixtures/confirmation/` (format in its README). Shared by the
//! `code_eval` example and the corpus test.

use std::collections::BTreeMap;

use serde::Deserialize;
use shared::events::Speaker;

#[derive(Debug, Clone, Deserialize)]
pub struct Turn {
    pub speaker: Speaker,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub id: String,
    pub form: String,
    pub turns: Vec<Turn>,
    pub expected: Option<String>,
    #[serde(default)]
    pub lang: String,
}

/// Parses JSON Lines; a bad line is an error naming its line number.
pub fn parse(text: &str) -> Result<Vec<Case>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

/// Counts over a set of cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Cases with a code.
    pub with_code: usize,
    pub exact: usize,
    /// A code other than the expected one.
    pub wrong: usize,
    pub missed: usize,
    /// Cases without a code.
    pub without_code: usize,
    /// A code where there was none.
    pub false_positives: usize,
}

impl Tally {
    fn add(&mut self, expected: Option<&str>, got: Option<&str>) {
        match (expected, got) {
            (Some(e), Some(g)) if e == g => {
                self.with_code += 1;
                self.exact += 1;
            }
            (Some(_), Some(_)) => {
                self.with_code += 1;
                self.wrong += 1;
            }
            (Some(_), None) => {
                self.with_code += 1;
                self.missed += 1;
            }
            (None, Some(_)) => {
                self.without_code += 1;
                self.false_positives += 1;
            }
            (None, None) => self.without_code += 1,
        }
    }

    /// A case the reader got wrong (a different code or a code where none was).
    pub fn errors(&self) -> usize {
        self.wrong + self.false_positives
    }
}

fn pct(part: usize, whole: usize) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

/// Every case's reading, totals, and totals per form.
pub struct Score {
    pub total: Tally,
    pub by_form: BTreeMap<String, Tally>,
    pub by_lang: BTreeMap<String, Tally>,
    /// (case, what the reader gave) for cases not read exactly.
    pub failures: Vec<(Case, Option<String>)>,
}

pub fn score(cases: &[Case], reader: impl Fn(&[Turn]) -> Option<String>) -> Score {
    let mut total = Tally::default();
    let mut by_form: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_lang: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in cases {
        let got = reader(&case.turns);
        total.add(case.expected.as_deref(), got.as_deref());
        by_form.entry(case.form.clone()).or_default().add(case.expected.as_deref(), got.as_deref());
        by_lang.entry(case.lang.clone()).or_default().add(case.expected.as_deref(), got.as_deref());
        if got != case.expected {
            failures.push((case.clone(), got));
        }
    }
    Score { total, by_form, by_lang, failures }
}

impl Score {
    pub fn report(&self) -> String {
        let t = &self.total;
        let mut out = format!(
            "cases {}: {} with a code, {} without\n\
             exact match (of cases with a code)  {} ({}/{})\n\
             wrong code (of cases with a code)   {} ({}/{})\n\
             missed (of cases with a code)       {} ({}/{})\n\
             false positives (of cases without)  {} ({}/{})\n\
             wrong or false code (of all cases)  {} ({}/{})\n\n",
            t.with_code + t.without_code,
            t.with_code,
            t.without_code,
            pct(t.exact, t.with_code),
            t.exact,
            t.with_code,
            pct(t.wrong, t.with_code),
            t.wrong,
            t.with_code,
            pct(t.missed, t.with_code),
            t.missed,
            t.with_code,
            pct(t.false_positives, t.without_code),
            t.false_positives,
            t.without_code,
            pct(t.errors(), t.with_code + t.without_code),
            t.errors(),
            t.with_code + t.without_code,
        );
        out.push_str(&format!(
            "{:<24} {:>5} {:>7} {:>7} {:>7} {:>9}\n",
            "form", "cases", "exact", "wrong", "missed", "false+"
        ));
        let rows = self.by_form.iter().chain(self.by_lang.iter());
        for (form, f) in rows {
            out.push_str(&format!(
                "{:<24} {:>5} {:>7} {:>7} {:>7} {:>9}\n",
                form,
                f.with_code + f.without_code,
                format!("{}/{}", f.exact, f.with_code),
                f.wrong,
                f.missed,
                format!("{}/{}", f.false_positives, f.without_code),
            ));
        }
        out
    }
}

/// The reader under test: the host's code from the whole conversation.
pub fn read(turns: &[Turn]) -> Option<String> {
    shared::session::confirmation::host_code(turns.iter().map(|t| (t.speaker, t.text.as_str())))
}
