//! Loader for the `baseline` XDP program: swap MACs, redirect through a
//! devmap. Only used to measure `msee` against (`cargo xtask bench`).
use std::time::Duration;

use traffic_abi::baseline::{PROGRAM, TX};

use crate::yardstick::{Result, Yardstick};

/// A loaded `baseline` program: run through `BPF_PROG_TEST_RUN`, or attached
/// to an interface for the lab throughput benchmark.
pub struct Baseline(Yardstick);

impl Baseline {
    pub fn load() -> Result<Self> {
        Yardstick::load(crate::BASELINE_OBJECT, PROGRAM).map(Self)
    }

    /// Frames arriving on `ifindex` are redirected back out of it.
    pub fn set_port(&mut self, ifindex: u32) -> Result<()> {
        self.0.set_devmap(TX, ifindex, ifindex)
    }

    /// Frames arriving on `ingress` are redirected out of `egress` (both
    /// ifindexes in the caller's network namespace).
    pub fn set_redirect(&mut self, ingress: u32, egress: u32) -> Result<()> {
        self.0.set_devmap(TX, ingress, egress)
    }

    /// Attach to `ifindex` (in the caller's network namespace); one
    /// attachment at a time, undone by [`Baseline::detach`] or on drop.
    pub fn attach(&mut self, ifindex: u32, mode: dataplane::AttachMode) -> Result<()> {
        self.0.attach(ifindex, mode)
    }

    pub fn detach(&mut self) -> Result<()> {
        self.0.detach()
    }

    /// Mean time per run over `repeat` runs of `frame` arriving on
    /// `ingress_ifindex`, and the last run's XDP action. The program swaps
    /// the MACs in place, so every repeated run does the same work.
    pub fn time_run(
        &mut self,
        frame: &[u8],
        ingress_ifindex: u32,
        repeat: u32,
    ) -> Result<(u32, Duration)> {
        let result = self.0.test_run(frame, ingress_ifindex, repeat, None)?;
        Ok((result.return_value, result.duration))
    }
}
