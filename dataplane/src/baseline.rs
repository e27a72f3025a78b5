//! Loader for the `baseline` XDP program: swap MACs, redirect through a
//! devmap. Only used to measure `msee` against (`cargo xtask bench`).
use std::time::Duration;

use aya::{
    Ebpf, EbpfLoader,
    maps::{DevMapHash, MapError},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp},
};

/// Program and map names inside the `baseline` object.
pub const BASELINE_PROGRAM: &str = "baseline";
const TX: &str = "TX";

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error(
        "loading the baseline eBPF object failed: {0} (needs root or CAP_BPF+CAP_NET_ADMIN, and a kernel with BTF)"
    )]
    Load(#[source] aya::EbpfError),
    #[error("the baseline object has no {0}: the embedded object and this binary disagree")]
    Missing(&'static str),
    #[error("map {TX}: {0}")]
    Map(#[source] MapError),
    #[error("devmap {TX}: {0}")]
    DevMap(#[source] aya::maps::xdp::XdpMapError),
    #[error("program baseline: {0}")]
    Program(#[source] ProgramError),
}

type Result<T> = std::result::Result<T, BaselineError>;

/// A loaded `baseline` program (not attached anywhere: it is run through
/// `BPF_PROG_TEST_RUN` only).
pub struct Baseline {
    ebpf: Ebpf,
}

impl Baseline {
    pub fn load() -> Result<Self> {
        let ebpf = EbpfLoader::new()
            .load(crate::BASELINE_OBJECT)
            .map_err(BaselineError::Load)?;
        let mut baseline = Self { ebpf };
        baseline
            .program_mut()?
            .load()
            .map_err(BaselineError::Program)?;
        Ok(baseline)
    }

    fn program_mut(&mut self) -> Result<&mut Xdp> {
        self.ebpf
            .program_mut(BASELINE_PROGRAM)
            .ok_or(BaselineError::Missing("baseline program"))?
            .try_into()
            .map_err(BaselineError::Program)
    }

    /// Frames arriving on `ifindex` are redirected back out of it.
    pub fn set_port(&mut self, ifindex: u32) -> Result<()> {
        let map = self.ebpf.map_mut(TX).ok_or(BaselineError::Missing(TX))?;
        let mut tx: DevMapHash<_> = map.try_into().map_err(BaselineError::Map)?;
        tx.insert(ifindex, ifindex, None, 0)
            .map_err(BaselineError::DevMap)
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
        let ctx = crate::msee::xdp_md(frame.len(), ingress_ifindex);
        let result = self
            .program_mut()?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ctx_in: Some(&ctx),
                repeat,
                ..Default::default()
            })
            .map_err(BaselineError::Program)?;
        Ok((result.return_value, result.duration))
    }
}
