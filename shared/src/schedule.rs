//! When a booking's calls are placed. A person does not ring a restaurant at 03:00, nor
//! give up because the line was busy once: calls go out only inside a calling window
//! in the restaurant's own time, never so late that the reservation has passed or is
//! about to, and again after a busy line, no answer, a carrier failure or an answering
//! machine, as the booking's retry policy allows.
//!
//! Sans-IO: every rule takes the time and returns one. Window arithmetic is done on the
//! restaurant's wall clock with its time zone's rules, so a day with a DST change has
//! neither a missing nor a doubled opening (`tests/schedule_properties.rs`).

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Attempts a booking may ask for at most.
pub const MAX_ATTEMPTS: u32 = 5;
/// The retry interval a booking may ask for, in minutes.
pub const RETRY_INTERVAL_MINUTES: std::ops::RangeInclusive<u32> = 1..=240;
/// Days ahead the next opening of a window is looked for (a window always opens daily).
const SEARCH_DAYS: i64 = 3;
const MINUTES_PER_DAY: u16 = 24 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("'{0}' is not a time of day such as 10:00 (24-hour clock, 24:00 for midnight at the end)")]
    BadTime(String),
    #[error("the window must end after it starts ({start}–{end})")]
    Empty { start: String, end: String },
    #[error("'{0}' is not a window such as 10:00-21:30")]
    BadWindow(String),
}

/// The hours calls may be placed, on the restaurant's wall clock: from `start`
/// (inclusive) to `end` (exclusive), within one day; `24:00` ends at midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WindowText", into = "WindowText")]
pub struct CallingWindow {
    start_minute: u16,
    end_minute: u16,
}

/// How a window is written in JSON: `{"start": "10:00", "end": "21:30"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowText {
    pub start: String,
    pub end: String,
}

impl TryFrom<WindowText> for CallingWindow {
    type Error = ScheduleError;
    fn try_from(text: WindowText) -> Result<CallingWindow, ScheduleError> {
        CallingWindow::new(&text.start, &text.end)
    }
}

impl From<CallingWindow> for WindowText {
    fn from(window: CallingWindow) -> WindowText {
        WindowText { start: clock(window.start_minute), end: clock(window.end_minute) }
    }
}

fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// `HH:MM` as minutes since midnight; `24:00` is the end of the day.
fn minute_of(text: &str) -> Result<u16, ScheduleError> {
    let bad = || ScheduleError::BadTime(text.to_owned());
    let (hours, minutes) = text.trim().split_once(':').ok_or_else(bad)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(bad());
    }
    let (hours, minutes): (u16, u16) = (hours.parse().map_err(|_| bad())?, minutes.parse().map_err(|_| bad())?);
    match (hours, minutes) {
        (24, 0) => Ok(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Ok(hours * 60 + minutes),
        _ => Err(bad()),
    }
}

impl CallingWindow {
    /// Any time of day.
    pub const ALWAYS: CallingWindow = CallingWindow { start_minute: 0, end_minute: MINUTES_PER_DAY };

    pub fn new(start: &str, end: &str) -> Result<CallingWindow, ScheduleError> {
        let (start_minute, end_minute) = (minute_of(start)?, minute_of(end)?);
        if start_minute >= end_minute || start_minute >= MINUTES_PER_DAY {
            return Err(ScheduleError::Empty { start: start.trim().to_owned(), end: end.trim().to_owned() });
        }
        Ok(CallingWindow { start_minute, end_minute })
    }

    /// `10:00-21:30`, as a deployment setting writes it.
    pub fn parse(text: &str) -> Result<CallingWindow, ScheduleError> {
        let (start, end) = text.split_once('-').ok_or_else(|| ScheduleError::BadWindow(text.to_owned()))?;
        CallingWindow::new(start, end)
    }

    /// Whether `at` falls inside the window on the wall clock of `tz`.
    pub fn contains(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&tz);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        (self.start_minute..self.end_minute).contains(&minute)
    }

    /// The first instant at or after `from` inside the window.
    pub fn next_opening(&self, tz: Tz, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.contains(tz, from) {
            return Some(from);
        }
        let first_day = from.with_timezone(&tz).date_naive();
        (0..=SEARCH_DAYS)
            .filter_map(|offset| first_day.checked_add_signed(Duration::days(offset)))
            .filter_map(|day| self.opening_on(tz, day))
            .find(|opening| *opening >= from)
    }

    /// The first instant of `day` (on `tz`'s wall clock) inside the window: its start,
    /// or, when a DST change skips the start, the first wall-clock minute after it that
    /// exists; the earlier of two when the clock goes back over it.
    fn opening_on(&self, tz: Tz, day: NaiveDate) -> Option<DateTime<Utc>> {
        (self.start_minute..self.end_minute).find_map(|minute| {
            let time = NaiveTime::from_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)?;
            match tz.from_local_datetime(&day.and_time(time)) {
                LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at.with_timezone(&Utc)),
                LocalResult::None => None,
            }
        })
    }
}

/// How an attempt ended, as far as trying again is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    Busy,
    NoAnswer,
    /// The phone network could not complete the call (Twilio's `failed`).
    CarrierFailed,
    /// An answering machine picked up; no message is left.
    Voicemail,
    /// Someone answered, or the user canceled: never tried again.
    Settled,
}

impl AttemptEnd {
    pub fn is_retryable(self) -> bool {
        !matches!(self, AttemptEnd::Settled)
    }
}

/// Why no further attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The attempt settled the booking one way or the other.
    Settled,
    /// The policy's attempts are used up.
    Exhausted,
    /// The next opening comes after the last moment to call.
    TooLate,
}

/// Why a booking cannot be called at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unplaceable {
    #[error(
        "the calling window ({window_start}–{window_end} restaurant time) next opens at {earliest}, after the last moment to call ({deadline}, shortly before the reservation)"
    )]
    TooLate { earliest: DateTime<Utc>, deadline: DateTime<Utc>, window_start: String, window_end: String },
    #[error("{0} is not inside the calling window ({1}–{2} restaurant time)")]
    OutsideWindow(DateTime<Utc>, String, String),
}

/// A booking's calling plan, resolved when it is made: the deployment's defaults with
/// the booking's own choices over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPlan {
    /// The restaurant's IANA time zone (the booking's `timezone`).
    pub timezone: String,
    pub window: CallingWindow,
    pub max_attempts: u32,
    pub retry_interval_seconds: u32,
    /// The last moment a call may start: the reservation's start less the lead time.
    pub deadline: DateTime<Utc>,
}

impl CallPlan {
    fn tz(&self) -> Tz {
        // Checked when the booking was made; UTC only if a stored plan were damaged.
        self.timezone.parse().unwrap_or(Tz::UTC)
    }

    /// When the first attempt goes out: now, or `call_at` if the booking asked for a
    /// time, moved to the window's next opening if outside it. A `call_at` outside the
    /// window is refused: the user asked for a time this plan will not call at.
    pub fn first_attempt(
        &self,
        now: DateTime<Utc>,
        call_at: Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, Unplaceable> {
        let window = WindowText::from(self.window);
        if let Some(at) = call_at.filter(|at| !self.window.contains(self.tz(), *at)) {
            return Err(Unplaceable::OutsideWindow(at, window.start, window.end));
        }
        let from = call_at.map_or(now, |at| at.max(now));
        match self.window.next_opening(self.tz(), from) {
            Some(at) if at <= self.deadline => Ok(at),
            earliest => Err(Unplaceable::TooLate {
                earliest: earliest.unwrap_or(from),
                deadline: self.deadline,
                window_start: window.start,
                window_end: window.end,
            }),
        }
    }

    /// After attempt number `attempts_made` ended as `end` at `ended_at`: when to try
    /// again, or why not.
    pub fn next_attempt(
        &self,
        attempts_made: u32,
        end: AttemptEnd,
        ended_at: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Stop> {
        if !end.is_retryable() {
            return Err(Stop::Settled);
        }
        if attempts_made >= self.max_attempts {
            return Err(Stop::Exhausted);
        }
        let earliest = ended_at + Duration::seconds(i64::from(self.retry_interval_seconds));
        match self.window.next_opening(self.tz(), earliest) {
            Some(at) if at <= self.deadline => Ok(at),
            _ => Err(Stop::TooLate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap_or_default()
    }

    fn plan(window: &str, deadline: &str) -> CallPlan {
        CallPlan {
            timezone: "America/New_York".into(),
            window: CallingWindow::parse(window).unwrap_or(CallingWindow::ALWAYS),
            max_attempts: 3,
            retry_interval_seconds: 600,
            deadline: utc(deadline),
        }
    }

    #[test]
    fn windows_are_written_as_wall_clock_times() {
        assert_eq!(
            CallingWindow::parse("10:00-21:30").map(WindowText::from).map(|w| (w.start, w.end)).ok(),
            Some(("10:00".into(), "21:30".into()))
        );
        assert_eq!(CallingWindow::parse("00:00-24:00"), Ok(CallingWindow::ALWAYS));
        for bad in ["10-21", "21:30-10:00", "10:00-10:00", "25:00-26:00", "9:00-10:00", "10:60-11:00", "24:00-24:00"] {
            assert!(CallingWindow::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_booking_made_at_night_is_called_when_the_window_opens() {
        // 23:00 in New York (EST, UTC-5) is 04:00 UTC the next day.
        let plan = plan("10:00-21:30", "2027-01-20T23:00:00Z");
        let first = plan.first_attempt(utc("2027-01-16T04:00:00Z"), None);
        assert_eq!(first, Ok(utc("2027-01-16T15:00:00Z")), "10:00 EST the next morning");
        let now = utc("2027-01-16T16:00:00Z");
        assert_eq!(plan.first_attempt(now, None), Ok(now), "inside the window: at once");
    }

    #[test]
    fn nothing_is_placed_after_the_last_moment_to_call() {
        let plan = plan("10:00-21:30", "2027-01-16T14:00:00Z");
        assert!(matches!(plan.first_attempt(utc("2027-01-16T04:00:00Z"), None), Err(Unplaceable::TooLate { .. })));
        let plan = self::plan("10:00-21:30", "2027-01-16T16:05:00Z");
        let ended = utc("2027-01-16T16:00:00Z");
        assert_eq!(plan.next_attempt(1, AttemptEnd::Busy, ended), Err(Stop::TooLate), "16:10 is past 16:05");
    }

    #[test]
    fn retries_follow_the_policy_and_the_window() {
        let plan = plan("10:00-21:30", "2027-01-20T23:00:00Z");
        let ended = utc("2027-01-16T16:00:00Z");
        assert_eq!(plan.next_attempt(1, AttemptEnd::Busy, ended), Ok(utc("2027-01-16T16:10:00Z")));
        assert_eq!(plan.next_attempt(2, AttemptEnd::Voicemail, ended), Ok(utc("2027-01-16T16:10:00Z")));
        assert_eq!(plan.next_attempt(3, AttemptEnd::NoAnswer, ended), Err(Stop::Exhausted));
        assert_eq!(plan.next_attempt(1, AttemptEnd::Settled, ended), Err(Stop::Settled));
        // 21:25 EST + 10 minutes is after closing: the next morning at 10:00.
        let late = utc("2027-01-17T02:25:00Z");
        assert_eq!(plan.next_attempt(1, AttemptEnd::NoAnswer, late), Ok(utc("2027-01-17T15:00:00Z")));
    }

    #[test]
    fn a_call_at_outside_the_window_is_refused_and_one_inside_is_kept() {
        let plan = plan("10:00-21:30", "2027-01-20T23:00:00Z");
        let now = utc("2027-01-16T04:00:00Z");
        assert!(matches!(
            plan.first_attempt(now, Some(utc("2027-01-16T06:00:00Z"))),
            Err(Unplaceable::OutsideWindow(..))
        ));
        let at = utc("2027-01-16T18:00:00Z");
        assert_eq!(plan.first_attempt(now, Some(at)), Ok(at));
    }

    #[test]
    fn a_window_starting_in_the_spring_gap_opens_at_the_first_minute_that_exists() {
        // 2027-03-14: New York's clocks jump from 02:00 to 03:00.
        let plan = plan("02:30-04:00", "2027-03-20T00:00:00Z");
        let opening = plan.first_attempt(utc("2027-03-14T05:00:00Z"), None); // 00:00 EST
        assert_eq!(opening, Ok(utc("2027-03-14T07:00:00Z")), "03:00 EDT");
    }
}
