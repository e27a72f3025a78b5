//! IdleHold delay before an automatic restart: exponential so a peer that
//! keeps failing (bad OPEN, prefix limit, flapping link) is retried less and
//! less often, and reset once a session has proven stable.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// Delay to use for this restart. A session that stayed Established for
    /// at least `max` counts as stable and starts again from `initial`.
    pub(crate) fn next_delay(&mut self, established_at: Option<Instant>, now: Instant) -> Duration {
        if established_at.is_some_and(|t| now.saturating_duration_since(t) >= self.max) {
            self.next = self.initial;
        }
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_max_and_resets_after_stable_session() {
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(5), s(60));
        let now = Instant::now();
        let seq: Vec<_> = (0..6).map(|_| b.next_delay(None, now)).collect();
        assert_eq!(seq, [s(5), s(10), s(20), s(40), s(60), s(60)]);
        // Up for less than max: keeps backing off.
        assert_eq!(b.next_delay(Some(now), now + s(59)), s(60));
        // Up for max or more: stable, start over.
        assert_eq!(b.next_delay(Some(now), now + s(60)), s(5));
        assert_eq!(b.next_delay(None, now), s(10));
    }
}
