//! Loader for the `fibfwd` XDP program: forwarding by the kernel's FIB
//! (`bpf_fib_lookup`), as xdp-tools' `xdp-forward` does. Only used to
//! measure `msee` against (`cargo xtask bench`). The routes and neighbours
//! are the kernel's: the caller installs them in the namespace of the
//! interfaces, with forwarding on.
use std::time::Duration;

use aya::maps::{Array, PerCpuArray};
use traffic_abi::fibfwd::{CONFIG, FORWARDED, FibfwdConfig, PASSED, PROGRAM, STATS, TX};

use crate::yardstick::{Result, Yardstick, YardstickError};

/// A loaded `fibfwd` program: run through `BPF_PROG_TEST_RUN`, or attached
/// to an interface for the lab throughput benchmark.
pub struct FibFwd(Yardstick);

impl FibFwd {
    pub fn load() -> Result<Self> {
        Yardstick::load(crate::FIBFWD_OBJECT, PROGRAM).map(Self)
    }

    /// Frames the kernel routes out of `ifindex` (in the caller's network
    /// namespace) may be redirected there; others go to the kernel.
    pub fn add_port(&mut self, ifindex: u32) -> Result<()> {
        self.0.set_devmap(TX, ifindex, ifindex)
    }

    /// Look routes up in routing table `table` alone (0: the kernel's
    /// usual lookup through the policy rules).
    pub fn set_table(&mut self, table: u32) -> Result<()> {
        let map_err = |source| YardstickError::Map {
            map: CONFIG,
            source,
        };
        let mut cfg: Array<_, FibfwdConfig> =
            self.0.map_mut(CONFIG)?.try_into().map_err(map_err)?;
        cfg.set(0, FibfwdConfig { table }, 0).map_err(map_err)
    }

    /// Frames redirected and frames handed to the kernel so far (summed
    /// over CPUs): a benchmark of this forwarder counts on the second
    /// staying 0.
    pub fn stats(&self) -> Result<(u64, u64)> {
        let map_err = |source| YardstickError::Map { map: STATS, source };
        let m: PerCpuArray<_, u64> = self.0.map(STATS)?.try_into().map_err(map_err)?;
        let row = |i: u32| -> Result<u64> { Ok(m.get(&i, 0).map_err(map_err)?.iter().sum()) };
        Ok((row(FORWARDED)?, row(PASSED)?))
    }

    /// Attach to `ifindex` (in the caller's network namespace); one
    /// attachment at a time, undone by [`FibFwd::detach`] or on drop.
    pub fn attach(&mut self, ifindex: u32, mode: dataplane::AttachMode) -> Result<()> {
        self.0.attach(ifindex, mode)
    }

    pub fn detach(&mut self) -> Result<()> {
        self.0.detach()
    }

    /// One run of `frame` arriving on `ingress_ifindex` (in the caller's
    /// network namespace): the XDP action, the frame as the program left
    /// it, and the run's time.
    pub fn run(&mut self, frame: &[u8], ingress_ifindex: u32) -> Result<(u32, Vec<u8>, Duration)> {
        let mut out = vec![0u8; frame.len() + 256];
        let result = self.0.test_run(frame, ingress_ifindex, 1, Some(&mut out))?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out, result.duration))
    }
}
