//! The confirmation-code reader over the evaluation set (README in
//! `fixtures/confirmation/`): on the dev file, which the reader was tuned on, not one
//! wrong code and not one code where there was none, and a floor on exact matches;
//! the held-out file is only scored (counts, never its cases): no wrong code, no false
//! code, and the exact floor measured when the reader last changed. The second held-out
//! file, written without reading the reader, is scored the same way against its
//! measured floor and ceilings. The third held-out file, written independently, was
//! scored blind once (before and after the round that never saw it) and is a development
//! set since 2026-12-02; it is held to its measured floor and no wrong or false code. The
//! fourth held-out file was scored blind the same way and became a development set in
//! the next round (2026-12-02), held the same way.

mod support {
    pub mod code_corpus;
}

use support::code_corpus::{parse, read, score, Tally};

fn cases(name: &str) -> Vec<support::code_corpus::Case> {
    let path = format!("{}/tests/fixtures/confirmation/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn dev_set_has_no_wrong_code_and_no_false_code() {
    let score = score(&cases("dev.jsonl"), read);
    let wrong: Vec<String> = score
        .failures
        .iter()
        .filter(|(_, got)| got.is_some())
        .map(|(case, got)| format!("{} expected {:?} read {:?}", case.id, case.expected, got))
        .collect();
    assert!(wrong.is_empty(), "wrong codes on dev: {wrong:#?}\n{}", score.report());
    assert!(score.total.exact >= DEV_EXACT_FLOOR, "{}", score.report());
}

/// A held-out file's totals, and those totals as the one line ever printed of it: the
/// held-out cases are never read while tuning.
fn held_out(name: &str) -> (Tally, String) {
    let t = score(&cases(name), read).total;
    let line = format!(
        "exact {}/{}, wrong {}, false positives {}/{}",
        t.exact, t.with_code, t.wrong, t.false_positives, t.without_code
    );
    (t, line)
}

/// At least `floor` exact codes, and no wrong or false code: on every set those came
/// down to zero, and they never go back up.
fn assert_held_out(name: &str, floor: usize) {
    let (t, totals) = held_out(name);
    assert!(t.exact >= floor, "{totals}");
    assert_eq!(t.wrong, 0, "{totals}");
    assert_eq!(t.false_positives, 0, "{totals}");
}

#[test]
fn held_out_set_scores_within_its_measured_bounds() {
    // Scored only, never read.
    assert_held_out("heldout.jsonl", HELD_OUT_EXACT_FLOOR);
}

#[test]
fn second_held_out_set_scores_within_its_measured_bounds() {
    // Written by someone who never read the reader; its per-form counts guided one round
    // and its failures were read in the next (2026-12-02): a development set now. Its
    // wrong code and three false ones came down to zero.
    assert_held_out("heldout2.jsonl", HELD_OUT_2_EXACT_FLOOR);
}

#[test]
fn third_held_out_set_scores_within_its_measured_bounds() {
    // Scored blind: 223/256, 1 wrong, 3 false before the round that never saw it, 228/256,
    // 1 wrong, 3 false after; its failures were read in the next round (2026-12-02), which
    // brought the wrong code (W400 for W40091) and the three false ones to zero.
    assert_held_out("heldout3.jsonl", HELD_OUT_3_EXACT_FLOOR);
}

#[test]
fn fourth_held_out_set_scores_within_its_measured_bounds() {
    // Scored blind: 193/262, 4 wrong, 2 false before the two rounds that never saw it,
    // 196/262, 4 wrong, 1 false after them; its failures were read in the next round
    // (2026-12-02), which brought the four wrong codes (703, QW771028, 101, 332233) and the
    // false one (5552100) to zero.
    assert_held_out("heldout4.jsonl", HELD_OUT_4_EXACT_FLOOR);
}

#[test]
fn fifth_held_out_set_scores_within_its_measured_bounds() {
    // Scored blind after every round above: 183/272, 2 wrong, 0 false. Only its two wrong
    // codes were read (a letter the agent echoed wrongly, corrected by the host: VV331,
    // TT902), to name the kind for a round that worked from new dev cases: 185/272, 0 wrong.
    assert_held_out("heldout5.jsonl", HELD_OUT_5_EXACT_FLOOR);
}

// Lowered (2026-12-02, issue 16.4): a final "oh" followed by more words ("two oh two oh
// nice and easy") is no longer read as a zero, since "oh by the way…" may be an aside.
const DEV_EXACT_FLOOR: usize = 572;
const HELD_OUT_EXACT_FLOOR: usize = 229;
const HELD_OUT_2_EXACT_FLOOR: usize = 230;
const HELD_OUT_3_EXACT_FLOOR: usize = 245;
const HELD_OUT_4_EXACT_FLOOR: usize = 199;
const HELD_OUT_5_EXACT_FLOOR: usize = 185;
