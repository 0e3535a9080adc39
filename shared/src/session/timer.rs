//! The session's timers, as data (after quinn-proto's `connection/timer.rs`): one
//! [`Timer`] per deadline the call can have, and a [`TimerTable`] holding when each is
//! due. The session arms and stops them; the shell only asks for the earliest
//! ([`TimerTable::next_timeout`]) and calls back when it passes. A timer that fires is
//! stopped before it is handled, so a deadline that cannot act is never offered again
//! in the past (the shell would re-arm it every turn and spin).

use std::time::Instant;

/// Every deadline of a call. Listed in the order they are handled when several fall
/// due at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The wrap-up's grace is over: hang up regardless.
    MaxDuration = 0,
    /// The call reached its maximum length: ask the agent to wrap up.
    WrapUp = 1,
    /// After `end_call`, the goodbye has had its time to play.
    GoodbyeDrain = 2,
    /// The restaurant picked up but has not spoken: the agent opens.
    Greeting = 3,
    /// Nobody has spoken for a while: nudge once, then hang up.
    Silence = 4,
}

impl Timer {
    pub(crate) const VALUES: [Timer; 5] =
        [Timer::MaxDuration, Timer::WrapUp, Timer::GoodbyeDrain, Timer::Greeting, Timer::Silence];
}

/// When each [`Timer`] is due, if armed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimerTable {
    due: [Option<Instant>; Timer::VALUES.len()],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.due[timer as usize] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.due[timer as usize] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.due = Default::default();
    }

    /// The earliest armed deadline. Allocates nothing.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.due.iter().flatten().min().copied()
    }

    /// Whether `timer` is armed and due at `now`.
    pub(crate) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.due[timer as usize].is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_earliest_armed_timer_is_next_and_a_stopped_one_is_gone() {
        let base = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next_timeout(), None);
        table.set(Timer::Silence, base + Duration::from_secs(15));
        table.set(Timer::Greeting, base + Duration::from_secs(4));
        assert_eq!(table.next_timeout(), Some(base + Duration::from_secs(4)));
        assert!(table.is_expired(Timer::Greeting, base + Duration::from_secs(4)));
        assert!(!table.is_expired(Timer::Silence, base + Duration::from_secs(4)));
        table.stop(Timer::Greeting);
        assert_eq!(table.next_timeout(), Some(base + Duration::from_secs(15)));
        table.stop_all();
        assert_eq!(table.next_timeout(), None);
    }
}
