//! `concierge`: book a restaurant table by phone through the Concierge API, follow the
//! call live, read its record, list calls, cancel one, delete one.
#![deny(unsafe_code)]

mod api;
mod render;
mod sse;

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};

use api::{Client, ClientError};
use render::{EXIT_CONFIRMED, EXIT_ERROR};

const EXIT_CODES: &str = "Exit codes:
  0  the booking is confirmed (book --wait, watch, get of a finished call);
     book without --wait, list, cancel and delete: the API accepted the request
  1  usage error, the API refused the request (its error is printed), or it could not be reached
  2  the call is final and the booking is not confirmed (declined, another time offered,
     voicemail, no answer, busy, failed, canceled)
  3  get: the call is still under way";

#[derive(Parser)]
#[command(name = "concierge", version, about = "Book a restaurant table by phone through the Concierge API.", after_help = EXIT_CODES)]
struct Cli {
    /// The API's base URL, e.g. https://concierge-edge.example.workers.dev
    #[arg(long, env = "CONCIERGE_URL", global = true)]
    url: Option<String>,
    /// Your API key
    #[arg(long, env = "CONCIERGE_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// Print JSON (one document, or one event per line) instead of text
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Book a table: the call starts at once (or at its scheduled time); prints its id
    Book(Box<Book>),
    /// Follow a call live until it is final: status, both sides of the conversation, the outcome
    Watch { call_id: String },
    /// Show a call's record
    Get { call_id: String },
    /// List your calls, newest first
    List(List),
    /// Cancel a call (hangs up if answered)
    Cancel { call_id: String },
    /// Erase a finished call's record (request, transcript, outcome) for good
    Delete { call_id: String },
}

#[derive(Args)]
struct List {
    /// Only calls in this status
    #[arg(long, value_parser = ["queued", "scheduled", "dialing", "ringing", "in_progress", "completed", "no_answer", "busy", "failed", "canceled"])]
    status: Option<String>,
    /// Only calls created at or after this time: YYYY-MM-DD (UTC midnight) or RFC 3339
    #[arg(long, value_parser = since)]
    since: Option<String>,
    /// Only calls created before this time: YYYY-MM-DD (through that day, UTC) or RFC 3339
    #[arg(long, value_parser = until)]
    until: Option<String>,
    /// Calls per page, 1 to 100; without --all only the first page is shown
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: u32,
    /// Follow the pages to the last one
    #[arg(long)]
    all: bool,
}

/// `--calling-window 10:00-21:30` as the API's `{"start": "10:00", "end": "21:30"}`; the
/// API checks the times.
fn calling_window(text: &str) -> Result<Value, String> {
    match text.split_once('-') {
        Some((start, end)) if !start.trim().is_empty() && !end.trim().is_empty() => {
            Ok(json!({"start": start.trim(), "end": end.trim()}))
        }
        _ => Err(format!("'{text}' is not a window such as 10:00-21:30")),
    }
}

/// `--since`: a date is its first instant (UTC); a time is taken as given, in UTC.
fn since(text: &str) -> Result<String, String> {
    instant(text, false)
}

/// `--until`: a date is the end of that day (UTC), so `--since D --until D` is day D.
fn until(text: &str) -> Result<String, String> {
    instant(text, true)
}

fn instant(text: &str, end_of_day: bool) -> Result<String, String> {
    use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end_of_day { date.succ_opt().ok_or("the date is too late")? } else { date };
        let midnight = day.and_hms_opt(0, 0, 0).ok_or("not a time")?.and_utc();
        return Ok(midnight.to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .map_err(|_| format!("'{text}' is neither YYYY-MM-DD nor an RFC 3339 time (2026-12-05T19:30:00Z)"))
}

#[derive(Args)]
struct Book {
    /// The booking as JSON (the API's BookingRequest; `-` for stdin); flags override its fields
    #[arg(long)]
    file: Option<String>,
    /// Restaurant name
    #[arg(long, required_unless_present = "file")]
    restaurant: Option<String>,
    /// Restaurant phone, E.164 (+15105485525)
    #[arg(long, required_unless_present = "file")]
    phone: Option<String>,
    /// Date, YYYY-MM-DD
    #[arg(long, required_unless_present = "file")]
    date: Option<String>,
    /// Time, HH:MM (24-hour, restaurant's local time)
    #[arg(long, required_unless_present = "file")]
    time: Option<String>,
    /// Number of guests
    #[arg(long, required_unless_present = "file")]
    party_size: Option<u32>,
    /// Name the table is booked under
    #[arg(long, required_unless_present = "file")]
    name: Option<String>,
    /// The restaurant's IANA time zone, e.g. America/Los_Angeles
    #[arg(long, required_unless_present = "file")]
    timezone: Option<String>,
    /// Guest's phone for the restaurant, E.164
    #[arg(long)]
    contact_phone: Option<String>,
    /// Special requests to pass on
    #[arg(long)]
    special_requests: Option<String>,
    /// Minutes either side of the time the guest would accept
    #[arg(long)]
    flexibility: Option<u32>,
    /// URL the final record is POSTed to (signed)
    #[arg(long)]
    callback_url: Option<String>,
    /// Digits to dial once the restaurant answers (0-9, *, #, w for a half-second pause)
    #[arg(long)]
    extension: Option<String>,
    /// The language the agent speaks (BCP-47: en, es, fr, de, it, …); English by default
    #[arg(long)]
    language: Option<String>,
    /// When to place the first call, RFC 3339 (2026-12-04T17:00:00-08:00); at once by default
    #[arg(long)]
    call_at: Option<String>,
    /// The hours the restaurant may be called, on its clock: HH:MM-HH:MM (10:00-21:30)
    #[arg(long, value_parser = calling_window)]
    calling_window: Option<Value>,
    /// Calls to place in all if the line is busy, nobody answers or a machine does (1: no retry)
    #[arg(long)]
    attempts: Option<u32>,
    /// Minutes between one attempt's end and the next
    #[arg(long)]
    retry_interval: Option<u32>,
    /// Record the call (the agent says so at the start)
    #[arg(long)]
    record: bool,
    /// Idempotency key: the same key and booking never dial twice
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Follow the call live until it is final; the exit code then says whether it is confirmed
    #[arg(long)]
    wait: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // clap's own code for bad usage is 2, which here means "not confirmed".
            return ExitCode::from(if error.use_stderr() { EXIT_ERROR } else { EXIT_CONFIRMED });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let url = cli.url.context("no API URL: set CONCIERGE_URL or pass --url")?;
    let key = cli.api_key.context("no API key: set CONCIERGE_API_KEY or pass --api-key")?;
    let client = Client::new(&url, &key)?;
    let json = cli.json;
    match cli.command {
        Command::Book(book) => {
            let booking = booking(&book)?;
            let created = client.book(&booking, book.idempotency_key.as_deref()).await?;
            let call_id = created["call_id"].as_str().context("the API's answer has no call_id")?.to_owned();
            if json {
                println!("{created}");
            } else {
                println!("{call_id}");
            }
            if book.wait {
                watch(&client, &call_id, json).await
            } else {
                Ok(EXIT_CONFIRMED)
            }
        }
        Command::Watch { call_id } => watch(&client, checked(&call_id)?, json).await,
        Command::Get { call_id } => {
            let record = client.get(checked(&call_id)?).await?;
            print_record(&record, json);
            Ok(render::exit_code(&record))
        }
        Command::List(list) => {
            let (calls, more) = list_calls(&client, &list).await?;
            if json {
                println!("{}", Value::Array(calls));
            } else {
                println!("{}", render::calls(&calls));
            }
            if more {
                eprintln!("… more calls: --all shows every page; --since and --until narrow the list");
            }
            Ok(EXIT_CONFIRMED)
        }
        Command::Delete { call_id } => {
            let deleted = client.delete(checked(&call_id)?).await?;
            anyhow::ensure!(deleted["deleted"] == true, "the API did not say the call was deleted: {deleted}");
            if json {
                println!("{deleted}");
            } else {
                let recording =
                    if deleted["recording_deleted"] == true { " (and its recording at Twilio)" } else { "" };
                println!("{call_id}  deleted{recording}");
            }
            Ok(EXIT_CONFIRMED)
        }
        Command::Cancel { call_id } => {
            let record = client.cancel(checked(&call_id)?).await?;
            if json {
                println!("{record}");
            } else {
                println!("{call_id}  {}", record["status"].as_str().unwrap_or("?").replace('_', " "));
            }
            Ok(EXIT_CONFIRMED)
        }
    }
}

/// The calls `list` asks for: one page, or with `--all` every page in turn (each
/// `next_cursor` asked for once). Also says whether pages were left unread.
async fn list_calls(client: &Client, list: &List) -> anyhow::Result<(Vec<Value>, bool)> {
    let mut query = vec![("limit", list.limit.to_string())];
    let filters = [("status", &list.status), ("created_after", &list.since), ("created_before", &list.until)];
    query.extend(filters.into_iter().filter_map(|(name, value)| Some((name, value.clone()?))));
    let mut calls = Vec::new();
    let mut cursors = std::collections::HashSet::new();
    loop {
        let page = client.list(&query).await?;
        let data = page["data"].as_array().with_context(|| format!("the API's list has no `data`: {page}"))?;
        calls.extend(data.iter().cloned());
        let next = page["next_cursor"].as_str().filter(|_| page["has_more"] == true);
        let Some(next) = next else { return Ok((calls, false)) };
        if !list.all {
            return Ok((calls, true));
        }
        anyhow::ensure!(cursors.insert(next.to_owned()), "the API gave the cursor {next} twice: stopping");
        query.retain(|(name, _)| *name != "cursor");
        query.push(("cursor", next.to_owned()));
    }
}

fn checked(call_id: &str) -> anyhow::Result<&str> {
    anyhow::ensure!(api::is_call_id(call_id), "`{call_id}` is not a call id (call_…)");
    Ok(call_id)
}

fn print_record(record: &Value, json: bool) {
    if json {
        println!("{record}");
    } else {
        println!("{}", render::record(record));
    }
}

/// The booking document: `--file` if given, each flag set over it.
fn booking(book: &Book) -> anyhow::Result<Value> {
    let mut booking = match book.file.as_deref() {
        Some(path) => {
            let text = if path == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).context("reading the booking from stdin")?;
                text
            } else {
                std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
            };
            let value: Value = serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))?;
            anyhow::ensure!(value.is_object(), "{path}: a booking is a JSON object");
            value
        }
        None => json!({}),
    };
    let mut set = |section: Option<&str>, field: &str, value: Option<Value>| {
        let Some(value) = value else { return };
        let Some(root) = booking.as_object_mut() else { return };
        let target = match section {
            Some(section) => {
                let entry = root.entry(section).or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                match entry.as_object_mut() {
                    Some(object) => object,
                    None => return,
                }
            }
            None => root,
        };
        target.insert(field.to_owned(), value);
    };
    let string = |s: &Option<String>| s.clone().map(Value::from);
    set(Some("restaurant"), "name", string(&book.restaurant));
    set(Some("restaurant"), "phone", string(&book.phone));
    set(Some("reservation"), "date", string(&book.date));
    set(Some("reservation"), "time", string(&book.time));
    set(Some("reservation"), "party_size", book.party_size.map(Value::from));
    set(Some("reservation"), "name", string(&book.name));
    set(Some("reservation"), "contact_phone", string(&book.contact_phone));
    set(Some("reservation"), "special_requests", string(&book.special_requests));
    set(Some("reservation"), "flexibility_minutes", book.flexibility.map(Value::from));
    set(None, "timezone", string(&book.timezone));
    set(None, "callback_url", string(&book.callback_url));
    set(Some("restaurant"), "extension", string(&book.extension));
    set(None, "language", string(&book.language));
    set(None, "call_at", string(&book.call_at));
    set(None, "calling_window", book.calling_window.clone());
    set(Some("retry"), "max_attempts", book.attempts.map(Value::from));
    set(Some("retry"), "interval_minutes", book.retry_interval.map(Value::from));
    set(None, "record", book.record.then_some(Value::Bool(true)));
    Ok(booking)
}

/// Consecutive failed connections (without a new event in between) before giving up.
const MAX_RECONNECTS: u32 = 8;

/// Follows the call's events to its `end`, reconnecting from the last event seen when the
/// stream drops; returns the exit code of the final record.
async fn watch(client: &Client, call_id: &str, json: bool) -> anyhow::Result<u8> {
    let mut last_event_id = None;
    let mut failures = 0u32;
    let mut progress = Progress::new(json);
    loop {
        let outcome = follow_once(client, call_id, json, &mut last_event_id, &mut failures, &mut progress).await;
        progress.clear();
        let reason = match outcome {
            Ok(Some(record)) => {
                if !json {
                    println!("{}", render::verdict(&record));
                }
                return Ok(render::exit_code(&record));
            }
            Ok(None) => "the stream ended before the call did".to_owned(),
            Err(error) if error.is_transient() => format!("{:#}", anyhow::Error::from(error)),
            Err(error) => return Err(error.into()),
        };
        failures += 1;
        if failures > MAX_RECONNECTS {
            anyhow::bail!("lost the event stream {MAX_RECONNECTS} times in a row: {reason}");
        }
        // 0.5 s, 1 s, 2 s, … up to 8 s between attempts.
        let backoff = Duration::from_millis(500 << (failures - 1).min(4));
        // On stderr even with --json: stdout stays one event per line.
        eprintln!("… reconnecting in {:.1} s ({reason})", backoff.as_secs_f32());
        tokio::time::sleep(backoff).await;
    }
}

/// One connection: prints events as they come; the final record once `end` arrives,
/// `None` if the stream closed first.
async fn follow_once(
    client: &Client,
    call_id: &str,
    json: bool,
    last_event_id: &mut Option<u64>,
    failures: &mut u32,
    progress: &mut Progress,
) -> Result<Option<Value>, ClientError> {
    let mut response = client.events(call_id, *last_event_id).await?;
    let mut decoder = sse::Decoder::default();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        let read = tokio::select! {
            read = response.chunk() => read,
            _ = ticks.tick() => {
                progress.show();
                continue;
            }
        };
        let chunk = match read {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(None),
            Err(source) => {
                return Err(ClientError::Network {
                    url: format!("the events of {call_id}"),
                    source: source.without_url(),
                })
            }
        };
        for event in decoder.push(&chunk) {
            // A replay after reconnecting never repeats what was printed.
            if last_event_id.is_some_and(|last| event.id <= last) {
                continue;
            }
            *last_event_id = Some(event.id);
            *failures = 0;
            progress.clear();
            if event.kind == "status" {
                progress.status = event.data["status"].as_str().map(|s| s.replace('_', " "));
            }
            if json {
                println!("{}", json!({"id": event.id, "event": event.kind, "data": event.data}));
            } else if let Some(line) = render::event(&event) {
                println!("{line}");
            }
            if event.kind == "end" {
                return Ok(Some(event.data));
            }
        }
    }
}

/// The line under the conversation while a call rings and runs (`… ringing 0:07`),
/// redrawn each second on a terminal's stderr; absent with `--json` or when stderr is
/// not a terminal, where the status lines already say as much.
struct Progress {
    live: bool,
    started: std::time::Instant,
    status: Option<String>,
    shown: bool,
}

impl Progress {
    fn new(json: bool) -> Progress {
        let live = !json && std::io::stderr().is_terminal();
        Progress { live, started: std::time::Instant::now(), status: None, shown: false }
    }

    fn show(&mut self) {
        let Some(status) = self.status.as_deref().filter(|_| self.live) else { return };
        let seconds = self.started.elapsed().as_secs();
        eprint!("\r\x1b[K… {status} {}:{:02}", seconds / 60, seconds % 60);
        let _ = std::io::stderr().flush();
        self.shown = true;
    }

    /// Erases the line before anything else is printed.
    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
            self.shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(args: &[&str]) -> Value {
        let cli = Cli::try_parse_from(["concierge", "book", "--file", "-"].iter().chain(args)).unwrap();
        let Command::Book(book) = cli.command else { panic!("not book") };
        // No --file read: the flags alone.
        booking(&Book { file: None, ..*book }).unwrap()
    }

    #[test]
    fn every_booking_field_has_a_flag() {
        let booking = book(&[
            "--restaurant",
            "Chez Panisse",
            "--phone",
            "+15105485525",
            "--extension",
            "12#",
            "--date",
            "2026-12-05",
            "--time",
            "19:30",
            "--party-size",
            "4",
            "--name",
            "Ada",
            "--contact-phone",
            "+14155550123",
            "--special-requests",
            "window",
            "--flexibility",
            "30",
            "--timezone",
            "America/Los_Angeles",
            "--callback-url",
            "https://example.com/h",
            "--language",
            "es",
            "--call-at",
            "2026-12-04T17:00:00-08:00",
            "--calling-window",
            "16:00-18:00",
            "--attempts",
            "2",
            "--retry-interval",
            "15",
            "--record",
        ]);
        assert_eq!(
            booking,
            json!({
                "restaurant": {"name": "Chez Panisse", "phone": "+15105485525", "extension": "12#"},
                "reservation": {"date": "2026-12-05", "time": "19:30", "party_size": 4, "name": "Ada",
                    "contact_phone": "+14155550123", "special_requests": "window", "flexibility_minutes": 30},
                "timezone": "America/Los_Angeles", "callback_url": "https://example.com/h",
                "language": "es", "call_at": "2026-12-04T17:00:00-08:00",
                "calling_window": {"start": "16:00", "end": "18:00"},
                "retry": {"max_attempts": 2, "interval_minutes": 15}, "record": true
            })
        );
        // Flags left out are left out: the API's defaults apply.
        let minimal = book(&["--restaurant", "Zuni"]);
        assert_eq!(minimal, json!({"restaurant": {"name": "Zuni"}}));
        assert!(Cli::try_parse_from(["concierge", "book", "--file", "-", "--calling-window", "10:00"]).is_err());
    }
}
