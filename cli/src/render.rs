//! Human output: a record's summary, one line per live event, and what a record means
//! for the exit code.

use serde_json::Value;

use crate::sse::Event;

/// The booking is confirmed.
pub const EXIT_CONFIRMED: u8 = 0;
/// Bad usage, a refusal by the API, or the API could not be reached.
pub const EXIT_ERROR: u8 = 1;
/// The call is final and the booking is not confirmed (declined, another time offered,
/// voicemail, no answer, busy, failed, canceled).
pub const EXIT_NOT_CONFIRMED: u8 = 2;
/// `get` of a call still under way.
pub const EXIT_NOT_FINAL: u8 = 3;

const FINAL: [&str; 5] = ["completed", "no_answer", "busy", "failed", "canceled"];

pub fn is_final(record: &Value) -> bool {
    record["status"].as_str().is_some_and(|s| FINAL.contains(&s))
}

/// The exit code a record gives: confirmed only when the call completed with a
/// `confirmed` outcome.
pub fn exit_code(record: &Value) -> u8 {
    if !is_final(record) {
        EXIT_NOT_FINAL
    } else if record["status"] == "completed" && record["outcome"]["result"] == "confirmed" {
        EXIT_CONFIRMED
    } else {
        EXIT_NOT_CONFIRMED
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn clock(at_ms: &Value) -> String {
    let ms = at_ms.as_u64().unwrap_or(0);
    format!("{}:{:02}", ms / 60_000, ms / 1000 % 60)
}

/// `ringing`, `in_progress (answered by human)`, `failed: <error>`.
fn status_line(status: &Value, answered_by: &Value, error: &Value) -> String {
    let mut line = status.as_str().unwrap_or("unknown").replace('_', " ");
    if let Some(who) = answered_by.as_str() {
        line.push_str(&format!(" (answered by {})", who.replace('_', " ")));
    }
    if let Some(error) = text(error).or_else(|| error["message"].as_str().map(str::to_owned)) {
        line.push_str(&format!(": {error}"));
    }
    line
}

/// The outcome in a few lines: result, confirmation code and how it was checked.
pub fn outcome(outcome: &Value) -> Vec<String> {
    let Some(result) = outcome["result"].as_str() else {
        return vec!["Outcome: none".to_owned()];
    };
    let mut lines = vec![format!("Outcome: {}", result.replace('_', " "))];
    if let Some(code) = text(&outcome["confirmation_number"]) {
        let check = outcome["code_verification"].as_str().map(|v| format!(" ({})", v.replace('_', " ")));
        lines.push(format!("Confirmation: {code}{}", check.unwrap_or_default()));
        if outcome["code_verification"] == "mismatch" {
            if let Some(heard) = text(&outcome["heard_code"]) {
                lines.push(format!("  The restaurant said {heard}: check with them before relying on either."));
            }
        }
    }
    let when: Vec<String> =
        [&outcome["confirmed_date"], &outcome["confirmed_time"]].into_iter().filter_map(text).collect();
    if !when.is_empty() {
        lines.push(format!("When: {}", when.join(" ")));
    }
    if let Some(size) = text(&outcome["party_size"]) {
        lines.push(format!("Party: {size}"));
    }
    if let Some(notes) = text(&outcome["notes"]) {
        lines.push(format!("Notes: {notes}"));
    }
    lines
}

/// The end of a followed call: where it ended and the final outcome (its code checked
/// again over the whole call, so it may differ from the one reported live).
pub fn verdict(record: &Value) -> String {
    let mut lines = vec![format!(
        "{}  {}",
        record["call_id"].as_str().unwrap_or("?"),
        status_line(&record["status"], &record["answered_by"], &record["error"])
    )];
    if !record["outcome"].is_null() {
        lines.extend(outcome(&record["outcome"]));
    }
    lines.join("\n")
}

/// A record for a person: who was called for what, where it stands, the outcome and
/// the conversation.
pub fn record(record: &Value) -> String {
    let mut lines = vec![format!(
        "{}  {}",
        record["call_id"].as_str().unwrap_or("?"),
        status_line(&record["status"], &record["answered_by"], &record["error"])
    )];
    let request = &record["request"];
    let reservation = &request["reservation"];
    lines.push(format!(
        "{} {} — {} {}, party of {}, for {}",
        request["restaurant"]["name"].as_str().unwrap_or("?"),
        request["restaurant"]["phone"].as_str().unwrap_or("?"),
        reservation["date"].as_str().unwrap_or("?"),
        reservation["time"].as_str().unwrap_or("?"),
        text(&reservation["party_size"]).unwrap_or_else(|| "?".into()),
        reservation["name"].as_str().unwrap_or("?"),
    ));
    if let Some(at) = record["scheduled_for"].as_str().filter(|_| record["status"] == "scheduled") {
        lines.push(format!("Next call: {} UTC", created(&Value::from(at))));
    }
    if let Some(attempts) = record["attempts"].as_array().filter(|a| a.len() > 1) {
        let ends: Vec<String> =
            attempts.iter().map(|a| a["status"].as_str().unwrap_or("?").replace('_', " ")).collect();
        lines.push(format!("Calls placed: {} ({})", attempts.len(), ends.join(", ")));
    }
    if let Some(seconds) = record["duration_seconds"].as_u64() {
        lines.push(format!("Duration: {seconds} s"));
    }
    if !record["outcome"].is_null() {
        lines.extend(outcome(&record["outcome"]));
    }
    if let Some(transcript) = record["transcript"].as_array().filter(|t| !t.is_empty()) {
        lines.push("Transcript:".to_owned());
        lines.extend(transcript.iter().map(transcript_line));
    }
    lines.join("\n")
}

fn transcript_line(line: &Value) -> String {
    format!(
        "  [{}] {}: {}",
        clock(&line["at_ms"]),
        line["speaker"].as_str().unwrap_or("?"),
        line["text"].as_str().unwrap_or("")
    )
}

/// What a listed call came to: `confirmed A73X`, `not confirmed` (an outcome other than
/// a confirmation, or a final call without one), or `-` while the call is under way.
fn result(call: &Value) -> String {
    match call["confirmed"].as_bool() {
        Some(true) => match text(&call["confirmation_number"]) {
            Some(code) => format!("confirmed {code}"),
            None => "confirmed".to_owned(),
        },
        Some(false) => "not confirmed".to_owned(),
        None if is_final(call) => "not confirmed".to_owned(),
        None => "-".to_owned(),
    }
}

/// `2026-12-02T01:22:05.123Z` as `2026-12-02 01:22:05` (UTC); anything else as given.
fn created(value: &Value) -> String {
    let raw = value.as_str().unwrap_or("?");
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| raw.to_owned())
}

/// At most `max` characters, an ellipsis marking a cut.
fn clipped(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((end, _)) if text.chars().count() > max => format!("{}…", &text[..end]),
        _ => text.to_owned(),
    }
}

/// `list`'s table: one call a line, in the order given (the API's: newest first).
pub fn calls(calls: &[Value]) -> String {
    if calls.is_empty() {
        return "No calls.".to_owned();
    }
    let header = ["CALL", "STATUS", "CREATED (UTC)", "RESTAURANT", "FOR", "PARTY", "RESULT"].map(str::to_owned);
    let rows: Vec<[String; 7]> = calls
        .iter()
        .map(|call| {
            [
                call["call_id"].as_str().unwrap_or("?").to_owned(),
                call["status"].as_str().unwrap_or("?").replace('_', " "),
                created(&call["created_at"]),
                clipped(call["restaurant_name"].as_str().unwrap_or("?"), 28),
                format!("{} {}", call["date"].as_str().unwrap_or("?"), call["time"].as_str().unwrap_or("?")),
                text(&call["party_size"]).unwrap_or_else(|| "?".to_owned()),
                result(call),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One live event as a line (or a few); `None` for the `end` event, whose record the
/// caller summarises.
pub fn event(event: &Event) -> Option<String> {
    let data = &event.data;
    match event.kind.as_str() {
        "status" => Some(format!("… {}", status_line(&data["status"], &data["answered_by"], &data["error"]))),
        "transcript" => Some(transcript_line(data)),
        "outcome" => Some(outcome(data).join("\n")),
        // One placed call of the booking ended; a retry may follow (`scheduled`).
        "attempt" => Some(format!(
            "… attempt {} ended: {}",
            text(&data["number"]).unwrap_or_else(|| "?".to_owned()),
            status_line(&data["status"], &data["answered_by"], &data["error"])
        )),
        "end" => None,
        other => Some(format!("({other}) {data}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_completed_confirmed_call_exits_zero() {
        let confirmed = json!({"status": "completed", "outcome": {"result": "confirmed"}});
        assert_eq!(exit_code(&confirmed), EXIT_CONFIRMED);
        assert_eq!(exit_code(&json!({"status": "completed", "outcome": {"result": "declined"}})), EXIT_NOT_CONFIRMED);
        assert_eq!(exit_code(&json!({"status": "canceled", "outcome": {"result": "confirmed"}})), EXIT_NOT_CONFIRMED);
        assert_eq!(exit_code(&json!({"status": "no_answer", "outcome": null})), EXIT_NOT_CONFIRMED);
        assert_eq!(exit_code(&json!({"status": "ringing", "outcome": null})), EXIT_NOT_FINAL);
    }

    #[test]
    fn calls_are_a_table_with_what_each_came_to() {
        let calls = [
            json!({"call_id": "call_2", "status": "in_progress", "created_at": "2026-12-02T01:22:05.123Z",
                "updated_at": "2026-12-02T01:22:09Z", "restaurant_name": "Chez Panisse", "date": "2026-12-05",
                "time": "19:30", "party_size": 4, "confirmed": null, "confirmation_number": null}),
            json!({"call_id": "call_1", "status": "completed", "created_at": "2026-12-01T20:00:00+01:00",
                "updated_at": "2026-12-01T19:01:00Z", "restaurant_name": "A Very Long Restaurant Name Indeed, Truly",
                "date": "2026-12-04", "time": "20:00", "party_size": 12, "confirmed": true, "confirmation_number": "A73X"}),
            json!({"call_id": "call_0", "status": "no_answer", "created_at": "2026-12-01T18:00:00Z",
                "updated_at": "2026-12-01T18:01:00Z", "restaurant_name": "Zuni", "date": "2026-12-04",
                "time": "18:00", "party_size": 2, "confirmed": null, "confirmation_number": null}),
        ];
        let table = super::calls(&calls);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("CALL    STATUS       CREATED (UTC)        RESTAURANT"), "{table}");
        assert_eq!(
            lines[1],
            "call_2  in progress  2026-12-02 01:22:05  Chez Panisse                  2026-12-05 19:30  4      -"
        );
        assert!(lines[2].contains("2026-12-01 19:00:00  A Very Long Restaurant Name…"), "{table}");
        assert!(lines[2].ends_with("12     confirmed A73X"), "{table}");
        assert!(lines[3].ends_with("2      not confirmed"), "{table}");
        assert_eq!(super::calls(&[]), "No calls.");
    }

    #[test]
    fn a_record_says_when_the_next_call_is_and_how_each_one_ended() {
        let waiting = json!({"call_id": "call_1", "status": "scheduled", "scheduled_for": "2026-12-04T01:00:00Z",
            "attempts": [{"number": 1, "status": "busy"}], "request": {}});
        let text = record(&waiting);
        assert!(text.contains("Next call: 2026-12-04 01:00:00 UTC"), "{text}");
        assert!(!text.contains("Calls placed"), "one call is not a list: {text}");
        let done = json!({"call_id": "call_1", "status": "completed", "scheduled_for": "2026-12-04T01:00:00Z",
            "attempts": [{"number": 1, "status": "no_answer"}, {"number": 2, "status": "completed"}], "request": {}});
        let text = record(&done);
        assert!(!text.contains("Next call"), "{text}");
        assert!(text.contains("Calls placed: 2 (no answer, completed)"), "{text}");
    }

    #[test]
    fn an_attempt_says_how_it_ended() {
        let attempt = Event {
            id: 4,
            kind: "attempt".into(),
            data: json!({"number": 1, "status": "busy", "answered_by": null, "error": null,
                "started_at": "2026-12-02T01:58:52Z", "ended_at": "2026-12-02T01:58:53Z"}),
        };
        assert_eq!(event(&attempt).as_deref(), Some("… attempt 1 ended: busy"));
        let answered = Event { data: json!({"number": 2, "status": "completed", "answered_by": "human"}), ..attempt };
        assert_eq!(event(&answered).as_deref(), Some("… attempt 2 ended: completed (answered by human)"));
    }

    #[test]
    fn a_mismatched_code_is_flagged() {
        let lines = outcome(&json!({"result": "confirmed", "confirmation_number": "A73Y",
            "code_verification": "mismatch", "heard_code": "A73X"}));
        assert_eq!(lines[1], "Confirmation: A73Y (mismatch)");
        assert!(lines[2].contains("A73X"), "{lines:?}");
    }
}
