//! The calling rules hold for any time zone, window, moment and run of attempts: no
//! call outside its window or after its last moment, never more attempts than the
//! policy, and a day with a DST change has exactly one opening, like any other.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use shared::schedule::{AttemptEnd, CallPlan, CallingWindow, Stop};

/// Zones with DST of every shape: an hour either way, north and south, half an hour
/// (Lord Howe), a change at midnight (Santiago), none (Kolkata).
const ZONES: [&str; 7] = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
];

fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn window(start: u16, length: u16) -> CallingWindow {
    let end = (start + length).min(24 * 60);
    let end_text = if end == 24 * 60 { "24:00".to_owned() } else { clock(end) };
    CallingWindow::new(&clock(start), &end_text).expect("a valid window")
}

/// A moment in 2026–2027, to the second.
fn moment(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + seconds, 0).unwrap_or_default() // 2026-01-01
}

fn ends() -> impl Strategy<Value = AttemptEnd> {
    prop_oneof![
        Just(AttemptEnd::Busy),
        Just(AttemptEnd::NoAnswer),
        Just(AttemptEnd::CarrierFailed),
        Just(AttemptEnd::Voicemail),
        Just(AttemptEnd::Settled),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_next_opening_is_inside_the_window_and_nothing_earlier_is(
        zone in 0..ZONES.len(),
        start in 0u16..(24 * 60 - 1),
        length in 1u16..(24 * 60),
        from in 0i64..(2 * 365 * 86_400),
    ) {
        let tz: Tz = ZONES[zone].parse().expect("a zone");
        let window = window(start, length);
        let from = moment(from);
        let opening = window.next_opening(tz, from).expect("a window opens every few days at most");
        prop_assert!(opening >= from);
        prop_assert!(window.contains(tz, opening), "{opening} is outside {window:?} in {tz}");
        // Nothing between `from` and the opening was inside (the window is whole minutes).
        let mut at = from;
        while at < opening {
            prop_assert!(!window.contains(tz, at), "{at} was inside {window:?} in {tz}, before {opening}");
            at += Duration::minutes(1);
        }
        if opening > from {
            prop_assert!(!window.contains(tz, opening - Duration::seconds(1)));
        }
    }

    #[test]
    fn a_booking_never_gets_more_attempts_than_its_policy_nor_one_outside_its_window(
        zone in 0..ZONES.len(),
        start in 0u16..(24 * 60 - 30),
        length in 30u16..(24 * 60),
        max_attempts in 1u32..=5,
        interval_minutes in 1u32..=240,
        booked in 0i64..(2 * 365 * 86_400),
        days_ahead in 0i64..10,
        ends in proptest::collection::vec(ends(), 5),
        ring_seconds in proptest::collection::vec(0i64..3_000, 5),
    ) {
        let tz: Tz = ZONES[zone].parse().expect("a zone");
        let now = moment(booked);
        let plan = CallPlan {
            timezone: ZONES[zone].to_owned(),
            window: window(start, length),
            max_attempts,
            retry_interval_seconds: interval_minutes * 60,
            deadline: now + Duration::days(days_ahead) + Duration::hours(6),
        };
        let Ok(mut at) = plan.first_attempt(now, None) else { return Ok(()) };
        let mut attempts = vec![at];
        loop {
            let n = attempts.len();
            let ended_at = at + Duration::seconds(ring_seconds[n - 1]);
            match plan.next_attempt(n as u32, ends[n - 1], ended_at) {
                Ok(next) => {
                    prop_assert!(next >= ended_at + Duration::minutes(i64::from(interval_minutes)), "too soon");
                    at = next;
                    attempts.push(at);
                }
                Err(Stop::Settled) => { prop_assert!(!ends[n - 1].is_retryable()); break; }
                Err(Stop::Exhausted) => { prop_assert_eq!(n as u32, max_attempts); break; }
                Err(Stop::TooLate) => break,
            }
        }
        prop_assert!(attempts.len() as u32 <= max_attempts);
        for attempt in &attempts {
            prop_assert!(plan.window.contains(tz, *attempt), "{attempt} outside the window in {tz}");
            prop_assert!(*attempt <= plan.deadline, "{attempt} after the last moment to call");
        }
    }
}

/// Every day of two years, in each zone, a window touching the small hours (where
/// clocks change) opens exactly once: on that day, and at a different instant from
/// every other day's opening.
#[test]
fn a_dst_day_has_one_opening_like_any_other_day() {
    for zone in ZONES {
        let tz: Tz = zone.parse().expect("a zone");
        for window in [window(0, 60), window(90, 120), window(120, 30), window(150, 60), window(23 * 60 + 30, 30)] {
            let mut previous: Option<DateTime<Utc>> = None;
            let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
            while day < NaiveDate::from_ymd_opt(2028, 1, 1).expect("a date") {
                // From the start of the local day (or just after a midnight that does not exist).
                let midnight = (0..180)
                    .find_map(|m| {
                        tz.from_local_datetime(&day.and_hms_opt(0, 0, 0)?.checked_add_signed(Duration::minutes(m))?)
                            .earliest()
                    })
                    .expect("the day exists");
                let opening = window.next_opening(tz, midnight.with_timezone(&Utc)).expect("opens");
                let opens_on = opening.with_timezone(&tz).date_naive();
                // A window lying wholly inside a skipped hour has no opening that day: the
                // next one is the following day's. Nowhere else may a day be skipped.
                if opens_on != day {
                    let skipped = (0..24 * 60).all(|m| {
                        let t = midnight.with_timezone(&Utc) + Duration::minutes(m);
                        t.with_timezone(&tz).date_naive() != day || !window.contains(tz, t)
                    });
                    assert!(skipped, "{zone} {window:?}: {day} opens on {opens_on} though it has open minutes");
                }
                if let Some(previous) = previous {
                    assert!(opening >= previous, "{zone}: openings go back in time on {day}");
                }
                if opens_on == day {
                    assert_ne!(Some(opening), previous, "{zone} {window:?}: {day} has the previous day's opening");
                    previous = Some(opening);
                }
                day = day.succ_opt().expect("a next day");
            }
        }
    }
}
