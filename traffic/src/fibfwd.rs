//! Loader for the `fibfwd` XDP program: forwarding by the kernel's FIB
//! (`bpf_fib_lookup`), as xdp-tools' `xdp-forward` does. Only used to
//! measure `msee` against (`cargo xtask bench`). The routes and neighbours
//! are the kernel's: the caller installs them in the namespace of the
//! interfaces, with forwarding on.
use std::time::Duration;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, DevMapHash, MapError},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, xdp::XdpLinkId},
};
use traffic_abi::fibfwd::{CONFIG, FibfwdConfig, PROGRAM, TX};

#[derive(Debug, thiserror::Error)]
pub enum FibFwdError {
    #[error(
        "loading the fibfwd eBPF object failed: {0} (needs root or CAP_BPF+CAP_NET_ADMIN, and a kernel with BTF)"
    )]
    Load(#[source] aya::EbpfError),
    #[error("the fibfwd object has no {0}: the embedded object and this binary disagree")]
    Missing(&'static str),
    #[error("map {0}: {1}")]
    Map(&'static str, #[source] MapError),
    #[error("devmap {TX}: {0}")]
    DevMap(#[source] aya::maps::xdp::XdpMapError),
    #[error("program fibfwd: {0}")]
    Program(#[source] ProgramError),
}

type Result<T> = std::result::Result<T, FibFwdError>;

/// A loaded `fibfwd` program: run through `BPF_PROG_TEST_RUN`, or attached
/// to an interface for the lab throughput benchmark.
pub struct FibFwd {
    ebpf: Ebpf,
    link: Option<XdpLinkId>,
}

impl FibFwd {
    pub fn load() -> Result<Self> {
        let ebpf = EbpfLoader::new()
            .load(crate::FIBFWD_OBJECT)
            .map_err(FibFwdError::Load)?;
        let mut me = Self { ebpf, link: None };
        me.program_mut()?.load().map_err(FibFwdError::Program)?;
        Ok(me)
    }

    fn program_mut(&mut self) -> Result<&mut Xdp> {
        self.ebpf
            .program_mut(PROGRAM)
            .ok_or(FibFwdError::Missing("fibfwd program"))?
            .try_into()
            .map_err(FibFwdError::Program)
    }

    /// Frames the kernel routes out of `ifindex` (in the caller's network
    /// namespace) may be redirected there; others go to the kernel.
    pub fn add_port(&mut self, ifindex: u32) -> Result<()> {
        let map = self.ebpf.map_mut(TX).ok_or(FibFwdError::Missing(TX))?;
        let mut tx: DevMapHash<_> = map.try_into().map_err(|e| FibFwdError::Map(TX, e))?;
        tx.insert(ifindex, ifindex, None, 0)
            .map_err(FibFwdError::DevMap)
    }

    /// Look routes up in routing table `table` alone (0: the kernel's
    /// usual lookup through the policy rules).
    pub fn set_table(&mut self, table: u32) -> Result<()> {
        let map = self
            .ebpf
            .map_mut(CONFIG)
            .ok_or(FibFwdError::Missing(CONFIG))?;
        let mut cfg: Array<_, FibfwdConfig> =
            map.try_into().map_err(|e| FibFwdError::Map(CONFIG, e))?;
        cfg.set(0, FibfwdConfig { table }, 0)
            .map_err(|e| FibFwdError::Map(CONFIG, e))
    }

    /// Attach to `ifindex` (in the caller's network namespace); one
    /// attachment at a time, undone by [`FibFwd::detach`] or on drop.
    pub fn attach(&mut self, ifindex: u32, mode: dataplane::AttachMode) -> Result<()> {
        self.detach()?;
        let link = self
            .program_mut()?
            .attach_to_if_index(ifindex, mode.into())
            .map_err(FibFwdError::Program)?;
        self.link = Some(link);
        Ok(())
    }

    pub fn detach(&mut self) -> Result<()> {
        if let Some(link) = self.link.take() {
            self.program_mut()?
                .detach(link)
                .map_err(FibFwdError::Program)?;
        }
        Ok(())
    }

    /// One run of `frame` arriving on `ingress_ifindex` (in the caller's
    /// network namespace): the XDP action, the frame as the program left
    /// it, and the run's time.
    pub fn run(&mut self, frame: &[u8], ingress_ifindex: u32) -> Result<(u32, Vec<u8>, Duration)> {
        let ctx = dataplane::xdp_md(frame.len(), ingress_ifindex);
        let mut out = vec![0u8; frame.len() + 256];
        let result = self
            .program_mut()?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                repeat: 1,
                ..Default::default()
            })
            .map_err(FibFwdError::Program)?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out, result.duration))
    }
}
