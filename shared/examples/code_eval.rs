//! Scores the confirmation-code reader on evaluation files:
//!
//! ```sh
//! cargo run -p shared --example code_eval -- shared/tests/fixtures/confirmation/dev.jsonl
//! cargo run -p shared --example code_eval -- --failures shared/tests/fixtures/confirmation/dev.jsonl
//! ```
//!
//! Prints exact matches (of cases with a code), wrong codes (of cases with a code and of
//! all cases), false positives (of cases without) and the same per form. `--failures`
//! lists the cases not read exactly: use it on the dev file only, never on held-out.

#[path = "../tests/support/code_corpus.rs"]
mod code_corpus;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show_failures = args.iter().any(|a| a == "--failures");
    let files: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if files.is_empty() {
        eprintln!("usage: code_eval [--failures] <file.jsonl>…");
        return ExitCode::from(2);
    }
    for file in files {
        let cases = match std::fs::read_to_string(file).map_err(|e| e.to_string()).and_then(|t| code_corpus::parse(&t))
        {
            Ok(cases) => cases,
            Err(error) => {
                eprintln!("{file}: {error}");
                return ExitCode::FAILURE;
            }
        };
        let score = code_corpus::score(&cases, code_corpus::read);
        println!("== {file}\n{}", score.report());
        if show_failures {
            for (case, got) in &score.failures {
                let expected = case.expected.as_deref().unwrap_or("none");
                let got = got.as_deref().unwrap_or("none");
                println!("{} [{}] expected {expected}, read {got}", case.id, case.lang);
                for turn in &case.turns {
                    println!("    {:?}: {}", turn.speaker, turn.text);
                }
            }
        }
    }
    ExitCode::SUCCESS
}
