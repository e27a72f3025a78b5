//! Deadline-based pacing. Packet costs accumulate (1 per packet for a pps
//! target, frame bits for a bps target); a packet may leave once the time
//! since start has paid for everything before it. A late thread catches up in batches of at
//! most `batch`, so the count over a run stays exact; waits longer than
//! `SPIN_NS` sleep, shorter ones spin (sleep wakes up ~50-100 us late).
use std::time::Duration;

use serde::{Deserialize, Serialize};

const SPIN_NS: u64 = 10_000;

/// Cut this thread's timer slack from the default 50 us to 1 us, so short
/// sleeps end close to their deadline.
pub fn tight_timers() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the
    // calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000u64, 0u64, 0u64, 0u64) };
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Rate {
    /// As fast as the rings allow.
    Unlimited,
    Pps(f64),
    /// Layer-2 bits per second, frames counted with FCS.
    Bps(f64),
}

impl Rate {
    /// Packets per second this rate means for frames of `mean_frame` bytes.
    pub fn pps(&self, mean_frame: f64) -> Option<f64> {
        match *self {
            Rate::Unlimited => None,
            Rate::Pps(p) => Some(p),
            Rate::Bps(b) => Some(b / (mean_frame * 8.0)),
        }
    }
    /// This rate split over `n` threads.
    pub fn split(&self, n: usize) -> Rate {
        match *self {
            Rate::Unlimited => Rate::Unlimited,
            Rate::Pps(p) => Rate::Pps(p / n as f64),
            Rate::Bps(b) => Rate::Bps(b / n as f64),
        }
    }
}

pub struct Pacer {
    rate: Rate,
    start_ns: u64,
    /// Cost units (packets or bits) already spent.
    spent: f64,
}

impl Pacer {
    pub fn new(rate: Rate, start_ns: u64) -> Self {
        Self {
            rate,
            start_ns,
            spent: 0.0,
        }
    }

    fn per_sec(&self) -> f64 {
        match self.rate {
            Rate::Unlimited => f64::INFINITY,
            Rate::Pps(p) => p,
            Rate::Bps(b) => b,
        }
    }

    fn cost(&self, frame_len: u16) -> f64 {
        match self.rate {
            Rate::Bps(_) => f64::from(frame_len) * 8.0,
            _ => 1.0,
        }
    }

    /// Cost units earned by `now` since the start.
    fn earned(&self, now_ns: u64) -> f64 {
        now_ns.saturating_sub(self.start_ns) as f64 * self.per_sec() / 1e9
    }

    /// How many of the next frames (sizes from `next_len(i)`) may leave now,
    /// at most `max`, and spend their cost. A frame may start once everything
    /// before it is paid for: packet n leaves at n / pps, and at a bps rate a
    /// frame starts when the previous bits have been "serialised".
    pub fn take(
        &mut self,
        now_ns: u64,
        max: usize,
        mut next_len: impl FnMut(usize) -> u16,
    ) -> usize {
        if matches!(self.rate, Rate::Unlimited) {
            return max;
        }
        // The epsilon absorbs float rounding at exact deadlines.
        let earned = self.earned(now_ns) + 1e-6;
        let mut n = 0;
        while n < max && self.spent <= earned {
            self.spent += self.cost(next_len(n));
            n += 1;
        }
        n
    }

    /// Sleep or spin until the next frame is due, or `limit_ns`.
    pub fn wait(&self, limit_ns: u64) {
        if matches!(self.rate, Rate::Unlimited) {
            return;
        }
        let now = msee_sys::monotonic_ns();
        let missing = self.spent - self.earned(now);
        if missing <= 0.0 {
            return;
        }
        let due = (now + (missing * 1e9 / self.per_sec()) as u64).min(limit_ns);
        if due > now + SPIN_NS {
            std::thread::sleep(Duration::from_nanos(due - now - SPIN_NS / 2));
        }
        while msee_sys::monotonic_ns() < due {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pps_releases_on_deadline() {
        let mut p = Pacer::new(Rate::Pps(1000.0), 0);
        assert_eq!(p.take(0, 64, |_| 64), 1); // packet 0 is due at t=0
        assert_eq!(p.take(500_000, 64, |_| 64), 0);
        assert_eq!(p.take(1_000_000, 64, |_| 64), 1);
        // A late caller catches up, bounded by the batch.
        assert_eq!(p.take(100_000_000, 64, |_| 64), 64);
        assert_eq!(p.take(100_000_000, 64, |_| 64), 35);
    }

    #[test]
    fn bps_counts_frame_bits() {
        // 1 Mbit/s, 1000-byte frames: one frame per 8 ms.
        let mut p = Pacer::new(Rate::Bps(1e6), 0);
        assert_eq!(p.take(16_000_000, 64, |_| 1000), 3);
        assert!((Rate::Bps(1e6).pps(1000.0).unwrap() - 125.0).abs() < 1e-9);
    }
}
