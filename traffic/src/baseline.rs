//! Loader for the `baseline` XDP program: swap MACs, redirect through a
//! devmap. Only used to measure `msee` against (`cargo xtask bench`).
use std::time::Duration;

use aya::{
    Ebpf, EbpfLoader,
    maps::{DevMapHash, MapError},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, xdp::XdpLinkId},
};
use traffic_abi::baseline::{PROGRAM, TX};

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

/// A loaded `baseline` program: run through `BPF_PROG_TEST_RUN`, or attached
/// to an interface for the lab throughput benchmark.
pub struct Baseline {
    ebpf: Ebpf,
    link: Option<XdpLinkId>,
}

impl Baseline {
    pub fn load() -> Result<Self> {
        let ebpf = EbpfLoader::new()
            .load(crate::BASELINE_OBJECT)
            .map_err(BaselineError::Load)?;
        let mut baseline = Self { ebpf, link: None };
        baseline
            .program_mut()?
            .load()
            .map_err(BaselineError::Program)?;
        Ok(baseline)
    }

    fn program_mut(&mut self) -> Result<&mut Xdp> {
        self.ebpf
            .program_mut(PROGRAM)
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

    /// Frames arriving on `ingress` are redirected out of `egress` (both
    /// ifindexes in the caller's network namespace).
    pub fn set_redirect(&mut self, ingress: u32, egress: u32) -> Result<()> {
        let map = self.ebpf.map_mut(TX).ok_or(BaselineError::Missing(TX))?;
        let mut tx: DevMapHash<_> = map.try_into().map_err(BaselineError::Map)?;
        tx.insert(ingress, egress, None, 0)
            .map_err(BaselineError::DevMap)
    }

    /// Attach to `ifindex` (in the caller's network namespace); one
    /// attachment at a time, undone by [`Baseline::detach`] or on drop.
    pub fn attach(&mut self, ifindex: u32, mode: dataplane::AttachMode) -> Result<()> {
        self.detach()?;
        let link = self
            .program_mut()?
            .attach_to_if_index(ifindex, mode.into())
            .map_err(BaselineError::Program)?;
        self.link = Some(link);
        Ok(())
    }

    pub fn detach(&mut self) -> Result<()> {
        if let Some(link) = self.link.take() {
            self.program_mut()?
                .detach(link)
                .map_err(BaselineError::Program)?;
        }
        Ok(())
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
        let ctx = dataplane::xdp_md(frame.len(), ingress_ifindex);
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
