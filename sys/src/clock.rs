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

/// Kernel (system) CPU time of the calling thread, from
/// `getrusage(RUSAGE_THREAD)`: the part of `thread_cpu_ns` spent in
/// syscalls and the softirqs run on the thread's behalf. Split from user
/// time by tick sampling, so it is a share over a run, not an exact figure.
pub fn thread_system_ns() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    // RUSAGE_THREAD of the calling thread cannot fail.
    let t = getrusage(UsageWho::RUSAGE_THREAD)
        .expect("getrusage(RUSAGE_THREAD) of the calling thread")
        .system_time();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_usec() as u64 * 1_000
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

    #[test]
    fn system_time_is_the_kernels_share() {
        use std::io::Read as _;
        // Reading /dev/zero is almost all kernel work (zeroing the user
        // buffer): 100 ms of it must show as system time, within the
        // thread's CPU time.
        let mut zero = std::fs::File::open("/dev/zero").unwrap();
        let mut buf = vec![1u8; 1 << 16];
        let (cpu0, sys0, until) = (
            thread_cpu_ns(),
            thread_system_ns(),
            monotonic_ns() + 2_000_000_000,
        );
        while thread_cpu_ns() - cpu0 < 100_000_000 && monotonic_ns() < until {
            zero.read_exact(&mut buf).unwrap();
        }
        let (cpu, sys) = (thread_cpu_ns() - cpu0, thread_system_ns() - sys0);
        assert!(sys > cpu / 2, "system {sys} ns of {cpu} ns");
        // Tick sampling may round up by a tick (at most 10 ms at 100 Hz).
        assert!(sys <= cpu + 10_000_000, "system {sys} ns of {cpu} ns");
    }
}
