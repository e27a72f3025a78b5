//! Policing: a token bucket per (link, direction) in nanobytes, shared by
//! all CPUs, from which each CPU takes credit a chunk at a time and spends
//! it on its own (see `msee_abi::PolicerConfig`).

use msee_abi::PolicerConfig;

/// What a frame of `len` bytes costs the bucket, in nanobytes (see
/// `msee_abi::PolicerConfig`): exact, for frames up to 16 KiB.
#[inline(always)]
pub fn policer_cost_nb(len: u64) -> u64 {
    (len & 0x3fff) * 1_000_000_000
}

/// What `elapsed_ns` refills at `rate` bytes/s, in nanobytes: exact; the
/// interval is capped at `cap_ns` (what fills an empty bucket), which keeps
/// the product within u64.
#[inline(always)]
pub fn policer_refill_nb(elapsed_ns: u64, cap_ns: u64, rate_bytes_per_sec: u64) -> u64 {
    let elapsed = if elapsed_ns > cap_ns {
        cap_ns
    } else {
        elapsed_ns
    };
    elapsed * rate_bytes_per_sec
}

/// One token-bucket decision: add the refill, cap at the burst, take the
/// cost if there is enough. Returns the new credit and whether the frame
/// conforms. (Units are the caller's: nanobytes in `msee`.)
#[inline(always)]
pub fn policer_step(credit: u64, refill: u64, burst: u64, cost: u64) -> (u64, bool) {
    let (next, taken) = policer_take(credit, refill, burst, cost, 0);
    (next, taken != 0)
}

/// The shared bucket's side of a CPU taking credit: add the refill, cap at
/// the burst; if `need` (> 0) is there, take `chunk` (or `need` if more, or
/// what there is if less). Returns the new shared credit and what was taken
/// (0: not enough for the frame, which does not conform).
#[inline(always)]
pub fn policer_take(credit: u64, refill: u64, burst: u64, need: u64, chunk: u64) -> (u64, u64) {
    let mut total = credit.saturating_add(refill);
    if total > burst {
        total = burst;
    }
    if total < need {
        return (total, 0);
    }
    let want = if chunk > need { chunk } else { need };
    let take = if want > total { total } else { want };
    (total - take, take)
}

/// A policer's fast path: spend a frame of `len` bytes from `held`, the
/// credit this CPU holds (`LinkRow::policer_credit_nb`). `None`: it
/// conforms (no policer, or `held` covered it and is charged); else
/// `Some(cost)`, the frame's cost, for which this CPU must take credit
/// from the shared bucket.
#[inline(always)]
pub fn spend_held(cfg: &PolicerConfig, held: &mut u64, len: u64) -> Option<u64> {
    if cfg.rate_bytes_per_sec == 0 {
        return None;
    }
    let cost = policer_cost_nb(len);
    if *held >= cost {
        *held -= cost;
        return None;
    }
    Some(cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_spend_held_credit_first() {
        let cfg = PolicerConfig {
            rate_bytes_per_sec: 125_000_000,
            burst_nb: 125_000 * NB,
            refill_cap_ns: 1_000_000,
            chunk_nb: 10_000 * NB,
        };
        let mut held = 200 * NB;
        assert_eq!(spend_held(&cfg, &mut held, 64), None);
        assert_eq!(held, 136 * NB);
        assert_eq!(spend_held(&cfg, &mut held, 136), None);
        assert_eq!(held, 0);
        // Short: the cost, and nothing spent.
        held = 63 * NB;
        assert_eq!(spend_held(&cfg, &mut held, 64), Some(64 * NB));
        assert_eq!(held, 63 * NB);
        // No policer: everything conforms, nothing held is touched.
        let off = PolicerConfig {
            rate_bytes_per_sec: 0,
            ..cfg
        };
        for len in [64, 1500, 9000] {
            assert_eq!(spend_held(&off, &mut held, len), None);
        }
        assert_eq!(held, 63 * NB);
    }

    const NB: u64 = msee_abi::NB_PER_BYTE;

    /// Simulate offered load at twice the rate (or more) for one second:
    /// what conforms is the rate plus one burst, to within 0.1%, from
    /// 50 Mbit/s to 100 Gbit/s, with the bucket's full range of arithmetic.
    #[test]
    fn policer_is_exact_across_rates() {
        for mbps in [50u64, 200, 300, 1_000, 10_000, 100_000] {
            let rate = mbps * 1_000_000 / 8;
            let burst = rate / 1000 * 1_000_000_000; // 1 ms, in nanobytes
            let cap_ns = burst.div_ceil(rate);
            for len in [64u64, 1500] {
                let cost = policer_cost_nb(len);
                // Offered at twice the rate or faster (whole nanoseconds).
                let gap_ns = (len * 1_000_000_000 / (2 * rate)).max(1);
                let mut credit = burst;
                let mut conformed = 0u64;
                let mut t = 0u64;
                while t < 1_000_000_000 {
                    let refill = policer_refill_nb(gap_ns, cap_ns, rate);
                    let (next, ok) = policer_step(credit, refill, burst, cost);
                    credit = next;
                    if ok {
                        conformed += len;
                    }
                    t += gap_ns;
                }
                let expected = rate + rate / 1000; // one second plus the 1 ms burst
                let err = (conformed as f64 - expected as f64).abs() / expected as f64;
                assert!(
                    err < 1e-3,
                    "{mbps} Mbit/s, {len} B: conformed {conformed}, expected {expected}"
                );
            }
        }
        assert_eq!(policer_cost_nb(64), 64_000_000_000);
        assert_eq!(policer_step(5, 0, 100, 5), (0, true));
        assert_eq!(policer_step(4, 0, 100, 5), (4, false));
        // An idle hour refills no more than a full bucket's interval.
        assert_eq!(
            policer_refill_nb(3_600_000_000_000, 1_000_000, 12_500_000_000),
            12_500_000_000_000_000
        );
    }

    /// CPUs that take chunks of credit into their own slots (as `msee`
    /// does) let through what the shared bucket alone would, within the
    /// eighth of a burst they may hold: at twice the rate for a simulated
    /// second, then, after an idle spell that refills the bucket, a flood
    /// at 5 to 10 times the rate; 1 to 8 CPUs taking turns at random.
    #[test]
    fn per_cpu_credit_keeps_the_rate_and_bounds_the_burst() {
        struct Sim {
            cfg: PolicerConfig,
            cpus: u64,
            local: [u64; 8],
            shared: u64,
            last: u64,
            t: u64,
            rng: u64,
        }
        impl Sim {
            /// Offer 64-byte frames every `gap_ns` for `ns`: bytes conformed.
            fn offer(&mut self, ns: u64, gap_ns: u64) -> u64 {
                let len = 64;
                let end = self.t + ns;
                let mut conformed = 0;
                while self.t < end {
                    self.rng ^= self.rng << 13;
                    self.rng ^= self.rng >> 7;
                    self.rng ^= self.rng << 17;
                    let cpu = (self.rng % self.cpus) as usize;
                    let cfg = &self.cfg;
                    // `police`, then `police_take_chunk` without the atomics.
                    match spend_held(cfg, &mut self.local[cpu], len) {
                        None => conformed += len,
                        Some(cost) => {
                            let refill = policer_refill_nb(
                                self.t - self.last,
                                cfg.refill_cap_ns,
                                cfg.rate_bytes_per_sec,
                            );
                            self.last = self.t;
                            let need = cost - self.local[cpu];
                            let (next, taken) =
                                policer_take(self.shared, refill, cfg.burst_nb, need, cfg.chunk_nb);
                            self.shared = next;
                            if taken != 0 {
                                self.local[cpu] = self.local[cpu] + taken - cost;
                                conformed += len;
                            }
                        }
                    }
                    self.t += gap_ns;
                }
                conformed
            }
        }
        for mbps in [50u64, 1_000, 100_000] {
            let rate = mbps * 1_000_000 / 8;
            let burst = rate / 1000 * 1_000_000_000; // 1 ms
            for cpus in [1u64, 2, 8] {
                let mut sim = Sim {
                    cfg: PolicerConfig {
                        rate_bytes_per_sec: rate,
                        burst_nb: burst,
                        refill_cap_ns: burst.div_ceil(rate),
                        chunk_nb: burst / (8 * cpus),
                    },
                    cpus,
                    local: [0; 8],
                    shared: burst,
                    last: 0,
                    t: 0,
                    rng: 0x9e37_79b9_7f4a_7c15,
                };
                let gap_ns = (64 * 1_000_000_000 / (2 * rate)).max(1);
                let conformed = sim.offer(1_000_000_000, gap_ns);
                let ideal = rate + rate / 1000; // one second plus the burst
                assert!(
                    conformed <= ideal + rate / 8000 && conformed as f64 >= ideal as f64 * 0.999,
                    "{mbps} Mbit/s, {cpus} CPUs: {conformed} conformed in 1 s, ideal {ideal}"
                );
                // 10 ms at half the rate, so CPUs hold unspent chunks; then
                // idle 2 ms: the bucket refills, and CPUs keep what they hold.
                sim.offer(10_000_000, 64 * 2_000_000_000 / rate);
                sim.t += 2_000_000;
                let flood_ns = 1_000_000;
                let gap_ns = (64 * 1_000_000_000 / (10 * rate)).max(1);
                let conformed = sim.offer(flood_ns, gap_ns);
                let bucket = rate / 1000 + rate * flood_ns / 1_000_000_000;
                assert!(
                    conformed <= bucket + rate / 8000 + 64 && conformed + 64 * (cpus + 1) >= bucket,
                    "{mbps} Mbit/s, {cpus} CPUs: {conformed} conformed in the flood, bucket {bucket}"
                );
            }
        }
    }
}
