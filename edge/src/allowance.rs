//! One API key's allowance: at most `MAX_CALLS_IN_FLIGHT` calls at once and
//! `BOOKINGS_PER_MINUTE` bookings per calendar minute. Sans-IO: [`admit`] takes the
//! key's state and a booking and decides. The store applies it atomically (in the
//! key's own Durable Object in a Worker), so simultaneous bookings cannot overshoot
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

/// What the store keeps per API key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    pub in_flight: Vec<Slot>,
    /// Minutes since the Unix epoch, and the bookings admitted in it.
    pub minute: i64,
    pub booked: u32,
}

/// A booking asking for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admit {
    pub call_id: String,
    /// Calls of this key the edge found ended since it last asked.
    pub ended: Vec<String>,
    pub max_in_flight: u32,
    pub per_minute: u32,
    pub now: DateTime<Utc>,
    pub slot_until: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "admission", rename_all = "snake_case")]
pub enum Admission {
    /// The call holds a slot and is counted in this minute.
    Admitted,
    /// Every slot is held, by these calls (which the edge may find ended).
    TooManyCalls { in_flight: Vec<Slot> },
    /// This minute's bookings are used up.
    RateLimited { retry_after_seconds: u32 },
}

/// Decides `request` and updates `allowance`. Refusals change nothing but dropping
/// ended and lapsed slots, so they do not count against the minute.
pub fn admit(allowance: &mut Allowance, request: &Admit) -> Admission {
    let Admit { call_id, ended, max_in_flight, per_minute, now, slot_until } = request;
    allowance.in_flight.retain(|slot| slot.until > *now && !ended.contains(&slot.call_id));
    let minute = now.timestamp().div_euclid(60);
    if allowance.minute != minute {
        allowance.minute = minute;
        allowance.booked = 0;
    }
    if allowance.booked >= *per_minute {
        let retry_after_seconds = u32::try_from(60 - now.timestamp().rem_euclid(60)).unwrap_or(60);
        return Admission::RateLimited { retry_after_seconds };
    }
    if allowance.in_flight.len() >= *max_in_flight as usize {
        return Admission::TooManyCalls { in_flight: allowance.in_flight.clone() };
    }
    allowance.in_flight.push(Slot { call_id: call_id.clone(), since: *now, until: *slot_until });
    allowance.booked += 1;
    Admission::Admitted
}

/// Gives back the slot of a call that has ended (nothing if it holds none).
pub fn release(allowance: &mut Allowance, call_id: &str) {
    allowance.in_flight.retain(|slot| slot.call_id != call_id);
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
            per_minute: 3,
            now: at(now),
            slot_until: at(now + 1_000),
        }
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
    fn the_minute_allowance_resets_with_the_minute() {
        let mut allowance = Allowance::default();
        let roomy = |call_id: &str, now: i64| Admit { max_in_flight: 10, ..booking(call_id, now) };
        for (n, call_id) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(admit(&mut allowance, &roomy(call_id, n as i64)), Admission::Admitted);
        }
        assert_eq!(admit(&mut allowance, &roomy("d", 45)), Admission::RateLimited { retry_after_seconds: 15 });
        assert_eq!(admit(&mut allowance, &roomy("d", 60)), Admission::Admitted, "a new minute");
        assert_eq!((allowance.booked, allowance.in_flight.len()), (1, 4));
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
