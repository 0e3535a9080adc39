//! An allowance: at most so many calls at once and so many bookings per fixed window.
//! One API key's is `MAX_CALLS_IN_FLIGHT` and `BOOKINGS_PER_MINUTE` per calendar
//! minute; one destination number's, across all keys, is one live call and
//! `CALLS_PER_DESTINATION_PER_HOUR` per calendar hour. Sans-IO: [`admit`] takes the
//! state and a booking and decides. The store applies it atomically (in the key's or
//! number's own Durable Object in a Worker), so simultaneous bookings cannot overshoot
//! a limit wherever they land.
//!
//! The edge gives a slot back when a call's record first shows it ended ([`release`]).
//! Should that be lost, the edge names the calls it finds ended when it asks again
//! after a refusal ([`Admit::ended`]), having read their records, and a slot lapses on
//! its own once its call cannot be running any more ([`Slot::until`]): no slot is held
//! for good.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A call holding one of the key's in-flight slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub call_id: String,
    /// When it was admitted: a booking saves its record just after, so a slot this
    /// young without a record is a booking still saving, not a call that ended.
    pub since: DateTime<Utc>,
    /// Past this the call has ended whatever its record says (ringing plus the longest call).
    pub until: DateTime<Utc>,
}

/// What the store keeps per API key or destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    pub in_flight: Vec<Slot>,
    /// Windows since the Unix epoch, and the bookings admitted in the current one.
    #[serde(alias = "minute")]
    pub window: i64,
    pub booked: u32,
}

fn default_window_seconds() -> u32 {
    60
}

/// A booking asking for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admit {
    pub call_id: String,
    /// Calls of this key the edge found ended since it last asked.
    pub ended: Vec<String>,
    pub max_in_flight: u32,
    /// Bookings per window.
    #[serde(alias = "per_minute")]
    pub per_window: u32,
    /// The window's length: 60 for an API key, 3600 for a destination.
    #[serde(default = "default_window_seconds")]
    pub window_seconds: u32,
    pub now: DateTime<Utc>,
    pub slot_until: DateTime<Utc>,
    /// Counted in the window: a booking is, a later attempt of it is not (the key's
    /// limits count bookings); every call to a number counts there.
    #[serde(default = "yes")]
    pub count: bool,
    /// Takes an in-flight slot: a call placed now does; a booking scheduled for later
    /// holds none while it waits.
    #[serde(default = "yes")]
    pub hold_slot: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "admission", rename_all = "snake_case")]
pub enum Admission {
    /// The call holds a slot and is counted in this minute.
    Admitted,
    /// Every slot is held, by these calls (which the edge may find ended).
    TooManyCalls { in_flight: Vec<Slot> },
    /// This window's bookings are used up.
    RateLimited { retry_after_seconds: u32 },
}

/// Decides `request` and updates `allowance`. Refusals change nothing but dropping
/// ended and lapsed slots, so they do not count against the window.
pub fn admit(allowance: &mut Allowance, request: &Admit) -> Admission {
    let Admit { call_id, ended, max_in_flight, per_window, window_seconds, now, slot_until, count, hold_slot } =
        request;
    let window_seconds = i64::from((*window_seconds).max(1));
    allowance.in_flight.retain(|slot| slot.until > *now && !ended.contains(&slot.call_id));
    let window = now.timestamp().div_euclid(window_seconds);
    if allowance.window != window {
        allowance.window = window;
        allowance.booked = 0;
    }
    if *count && allowance.booked >= *per_window {
        let left = window_seconds - now.timestamp().rem_euclid(window_seconds);
        let retry_after_seconds = u32::try_from(left).unwrap_or(u32::MAX);
        return Admission::RateLimited { retry_after_seconds };
    }
    if *hold_slot && allowance.in_flight.len() >= *max_in_flight as usize {
        return Admission::TooManyCalls { in_flight: allowance.in_flight.clone() };
    }
    if *hold_slot {
        allowance.in_flight.push(Slot { call_id: call_id.clone(), since: *now, until: *slot_until });
    }
    if *count {
        allowance.booked += 1;
    }
    Admission::Admitted
}

/// Gives back the slot of a call that has ended (nothing if it holds none).
pub fn release(allowance: &mut Allowance, call_id: &str) {
    allowance.in_flight.retain(|slot| slot.call_id != call_id);
}

/// Undoes `request`'s admission: a booking admitted here but refused by another
/// allowance (the destination's) gives its slot back and is not counted in the window.
pub fn withdraw(allowance: &mut Allowance, request: &Admit) {
    let held = allowance.in_flight.len();
    release(allowance, &request.call_id);
    let window = request.now.timestamp().div_euclid(i64::from(request.window_seconds.max(1)));
    let admitted = allowance.in_flight.len() < held || !request.hold_slot;
    if request.count && admitted && allowance.window == window {
        allowance.booked = allowance.booked.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        // 1,800,000,000 is a whole number of minutes, so `at(60)` starts the next one.
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    fn booking(call_id: &str, now: i64) -> Admit {
        Admit {
            call_id: call_id.into(),
            ended: Vec::new(),
            max_in_flight: 2,
            per_window: 3,
            window_seconds: 60,
            now: at(now),
            slot_until: at(now + 1_000),
            count: true,
            hold_slot: true,
        }
    }

    #[test]
    fn a_scheduled_booking_is_counted_without_a_slot_and_its_later_attempts_hold_slots_uncounted() {
        let mut allowance = Allowance::default();
        let scheduled = Admit { hold_slot: false, ..booking("a", 0) };
        assert_eq!(admit(&mut allowance, &scheduled), Admission::Admitted);
        assert_eq!((allowance.booked, allowance.in_flight.len()), (1, 0), "counted, no slot while it waits");
        let attempt = Admit { count: false, ..booking("a", 5) };
        assert_eq!(admit(&mut allowance, &attempt), Admission::Admitted);
        assert_eq!((allowance.booked, allowance.in_flight.len()), (1, 1), "a slot, not a second booking");
        // The window's bookings used up does not stop an attempt of a booking already counted.
        admit(&mut allowance, &booking("b", 6));
        admit(&mut allowance, &Admit { hold_slot: false, ..booking("c", 7) });
        assert!(matches!(admit(&mut allowance, &booking("d", 8)), Admission::RateLimited { .. }));
        release(&mut allowance, "a");
        assert_eq!(admit(&mut allowance, &Admit { count: false, ..booking("a", 9) }), Admission::Admitted);
        // Withdrawing an uncounted attempt gives its slot back and leaves the count alone.
        withdraw(&mut allowance, &Admit { count: false, ..booking("a", 9) });
        assert_eq!((allowance.booked, allowance.in_flight.len()), (3, 1));
    }

    #[test]
    fn slots_fill_and_an_ended_call_frees_its_own() {
        let mut allowance = Allowance::default();
        assert_eq!(admit(&mut allowance, &booking("a", 0)), Admission::Admitted);
        assert_eq!(admit(&mut allowance, &booking("b", 1)), Admission::Admitted);
        let Admission::TooManyCalls { in_flight } = admit(&mut allowance, &booking("c", 2)) else {
            panic!("both slots are held")
        };
        let held: Vec<(&str, DateTime<Utc>)> = in_flight.iter().map(|s| (s.call_id.as_str(), s.since)).collect();
        assert_eq!(held, [("a", at(0)), ("b", at(1))]);
        assert_eq!(allowance.booked, 2, "a refusal is not counted");
        let retry = Admit { ended: vec!["b".into(), "unknown".into()], ..booking("c", 3) };
        assert_eq!(admit(&mut allowance, &retry), Admission::Admitted);
        let held: Vec<&str> = allowance.in_flight.iter().map(|s| s.call_id.as_str()).collect();
        assert_eq!(held, ["a", "c"]);
    }

    #[test]
    fn a_released_slot_is_free_at_once_and_the_minute_still_counts_it() {
        let mut allowance = Allowance::default();
        assert_eq!(admit(&mut allowance, &booking("a", 0)), Admission::Admitted);
        assert_eq!(admit(&mut allowance, &booking("b", 0)), Admission::Admitted);
        release(&mut allowance, "a");
        release(&mut allowance, "never-admitted");
        assert_eq!(admit(&mut allowance, &booking("c", 1)), Admission::Admitted);
        assert_eq!(admit(&mut allowance, &booking("d", 2)), Admission::RateLimited { retry_after_seconds: 58 });
    }

    #[test]
    fn a_withdrawn_admission_frees_its_slot_and_its_place_in_the_window() {
        let mut allowance = Allowance::default();
        assert_eq!(admit(&mut allowance, &booking("a", 0)), Admission::Admitted);
        assert_eq!(admit(&mut allowance, &booking("b", 0)), Admission::Admitted);
        withdraw(&mut allowance, &booking("b", 0));
        withdraw(&mut allowance, &booking("never-admitted", 0));
        assert_eq!((allowance.in_flight.len(), allowance.booked), (1, 1));
        assert_eq!(admit(&mut allowance, &booking("c", 1)), Admission::Admitted);
        assert_eq!(
            admit(&mut allowance, &booking("d", 2)),
            Admission::TooManyCalls { in_flight: allowance.in_flight.clone() }
        );
    }

    #[test]
    fn an_hourly_window_counts_by_the_hour() {
        let mut allowance = Allowance::default();
        let hourly = |call_id: &str, now: i64| Admit {
            max_in_flight: 1,
            per_window: 2,
            window_seconds: 3600,
            ..booking(call_id, now)
        };
        assert_eq!(admit(&mut allowance, &hourly("a", 0)), Admission::Admitted);
        assert!(matches!(admit(&mut allowance, &hourly("b", 10)), Admission::TooManyCalls { .. }), "one live call");
        release(&mut allowance, "a");
        assert_eq!(admit(&mut allowance, &hourly("b", 100)), Admission::Admitted);
        release(&mut allowance, "b");
        assert_eq!(admit(&mut allowance, &hourly("c", 600)), Admission::RateLimited { retry_after_seconds: 3000 });
        assert_eq!(admit(&mut allowance, &hourly("c", 3600)), Admission::Admitted, "the next hour");
    }

    #[test]
    fn the_minute_allowance_resets_with_the_minute() {
        let mut allowance = Allowance::default();
        let roomy = |call_id: &str, now: i64| Admit { max_in_flight: 10, ..booking(call_id, now) };
        for (n, call_id) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(admit(&mut allowance, &roomy(call_id, n as i64)), Admission::Admitted);
        }
        assert_eq!(admit(&mut allowance, &roomy("d", 45)), Admission::RateLimited { retry_after_seconds: 15 });
        assert_eq!(admit(&mut allowance, &roomy("d", 60)), Admission::Admitted, "a new minute");
        assert_eq!((allowance.booked, allowance.in_flight.len()), (1, 4));
        let stored_before_windows = r#"{"in_flight":[],"minute":5,"booked":2}"#;
        let read: Allowance = serde_json::from_str(stored_before_windows).expect("the older form reads");
        assert_eq!((read.window, read.booked), (5, 2));
    }

    #[test]
    fn a_slot_lapses_when_its_call_cannot_be_running_any_more() {
        let mut allowance = Allowance::default();
        assert_eq!(admit(&mut allowance, &booking("a", 0)), Admission::Admitted);
        assert_eq!(admit(&mut allowance, &booking("b", 0)), Admission::Admitted);
        assert!(matches!(admit(&mut allowance, &booking("c", 999)), Admission::TooManyCalls { .. }));
        assert_eq!(admit(&mut allowance, &booking("c", 1_000)), Admission::Admitted, "a and b lapsed");
        assert_eq!(allowance.in_flight.len(), 1);
    }

    #[test]
    fn the_state_and_answers_survive_their_json_form() {
        let mut allowance = Allowance::default();
        admit(&mut allowance, &booking("a", 0));
        let text = serde_json::to_string(&allowance).expect("serializable");
        assert_eq!(serde_json::from_str::<Allowance>(&text).ok(), Some(allowance));
        let refused = Admission::RateLimited { retry_after_seconds: 7 };
        let text = serde_json::to_string(&refused).expect("serializable");
        assert_eq!(text, r#"{"admission":"rate_limited","retry_after_seconds":7}"#);
        let request = booking("b", 5);
        let text = serde_json::to_string(&request).expect("serializable");
        assert_eq!(serde_json::from_str::<Admit>(&text).ok(), Some(request));
    }
}
