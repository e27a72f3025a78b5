//! Clocks in nanoseconds.
//!
//! CLOCK_MONOTONIC is the one clock of the project: the payload timestamps
//! of the packet engine, `bpf_ktime_get_ns` in the kernel programs, the
//! daemon's link flips and route-install records all use it, so times taken
//! by different processes on one host compare without synchronisation.
use nix::time::{ClockId, clock_gettime};

fn ns(clock: ClockId) -> u64 {
    // Only an invalid clock id fails, and these three always exist.
    let t = clock_gettime(clock).expect("clock_gettime on a clock Linux always has");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// CLOCK_MONOTONIC now.
#[inline]
pub fn monotonic_ns() -> u64 {
    ns(ClockId::CLOCK_MONOTONIC)
}

/// CPU time of this process (all threads, user + system).
pub fn process_cpu_ns() -> u64 {
    ns(ClockId::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread (user + system, which includes softirq
/// work such as a veth peer's NAPI done on its behalf): the honest
/// denominator for "packets per second per core" on a shared machine.
pub fn thread_cpu_ns() -> u64 {
    ns(ClockId::CLOCK_THREAD_CPUTIME_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_advance() {
        let (m, p, t) = (monotonic_ns(), process_cpu_ns(), thread_cpu_ns());
        // Burn a little CPU on this thread so both CPU clocks must move.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        assert!(monotonic_ns() > m);
        assert!(process_cpu_ns() > p);
        assert!(thread_cpu_ns() > t);
        // The process has spent at least what this thread has.
        assert!(process_cpu_ns() >= thread_cpu_ns());
    }
}
