//! One XDP program of an embedded object, loaded, attached to one
//! interface at a time or run through `BPF_PROG_TEST_RUN`: what the
//! benchmarks measure `msee` against (`baseline`, `fibfwd`) is each one.
use aya::{
    Ebpf, EbpfLoader,
    maps::{DevMapHash, Map, MapError},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, xdp::XdpLinkId},
};

#[derive(Debug, thiserror::Error)]
pub enum YardstickError {
    #[error(
        "loading the {program} eBPF object failed: {source} (needs root or CAP_BPF+CAP_NET_ADMIN, and a kernel with BTF)"
    )]
    Load {
        program: &'static str,
        #[source]
        source: aya::EbpfError,
    },
    #[error("the {program} object has no {what}: the embedded object and this binary disagree")]
    Missing {
        program: &'static str,
        what: &'static str,
    },
    #[error("the {0} object has no program {0}: the embedded object and this binary disagree")]
    MissingProgram(&'static str),
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
    #[error("devmap {map}: {source}")]
    DevMap {
        map: &'static str,
        #[source]
        source: aya::maps::xdp::XdpMapError,
    },
    #[error("program {program}: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
}

pub(crate) type Result<T> = std::result::Result<T, YardstickError>;

/// The loaded program `program` of an object, and its one attachment.
pub(crate) struct Yardstick {
    ebpf: Ebpf,
    link: Option<XdpLinkId>,
    program: &'static str,
}

impl Yardstick {
    pub(crate) fn load(object: &[u8], program: &'static str) -> Result<Self> {
        let ebpf = EbpfLoader::new()
            .load(object)
            .map_err(|source| YardstickError::Load { program, source })?;
        let mut me = Self {
            ebpf,
            link: None,
            program,
        };
        let program = me.program;
        me.program_mut()?
            .load()
            .map_err(|source| YardstickError::Program { program, source })?;
        Ok(me)
    }

    fn program_mut(&mut self) -> Result<&mut Xdp> {
        let program = self.program;
        self.ebpf
            .program_mut(program)
            .ok_or(YardstickError::MissingProgram(program))?
            .try_into()
            .map_err(|source| YardstickError::Program { program, source })
    }

    pub(crate) fn map(&self, name: &'static str) -> Result<&Map> {
        self.ebpf.map(name).ok_or(YardstickError::Missing {
            program: self.program,
            what: name,
        })
    }

    pub(crate) fn map_mut(&mut self, name: &'static str) -> Result<&mut Map> {
        let program = self.program;
        self.ebpf.map_mut(name).ok_or(YardstickError::Missing {
            program,
            what: name,
        })
    }

    /// Frames the program redirects by `key` through devmap `name` go out
    /// of `ifindex`.
    pub(crate) fn set_devmap(&mut self, name: &'static str, key: u32, ifindex: u32) -> Result<()> {
        let mut tx: DevMapHash<_> = self
            .map_mut(name)?
            .try_into()
            .map_err(|source| YardstickError::Map { map: name, source })?;
        tx.insert(key, ifindex, None, 0)
            .map_err(|source| YardstickError::DevMap { map: name, source })
    }

    /// Attach to `ifindex` (in the caller's network namespace); one
    /// attachment at a time, undone by [`Yardstick::detach`] or on drop.
    pub(crate) fn attach(&mut self, ifindex: u32, mode: dataplane::AttachMode) -> Result<()> {
        self.detach()?;
        let program = self.program;
        let link = self
            .program_mut()?
            .attach_to_if_index(ifindex, mode.into())
            .map_err(|source| YardstickError::Program { program, source })?;
        self.link = Some(link);
        Ok(())
    }

    pub(crate) fn detach(&mut self) -> Result<()> {
        let program = self.program;
        if let Some(link) = self.link.take() {
            self.program_mut()?
                .detach(link)
                .map_err(|source| YardstickError::Program { program, source })?;
        }
        Ok(())
    }

    /// `repeat` runs of `frame` arriving on `ingress_ifindex`, the frame
    /// as the last run left it into `out` if given.
    pub(crate) fn test_run(
        &mut self,
        frame: &[u8],
        ingress_ifindex: u32,
        repeat: u32,
        out: Option<&mut [u8]>,
    ) -> Result<aya::programs::TestRunResult> {
        let ctx = dataplane::xdp_md(frame.len(), ingress_ifindex);
        let program = self.program;
        self.program_mut()?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: out,
                ctx_in: Some(&ctx),
                repeat,
                ..Default::default()
            })
            .map_err(|source| YardstickError::Program { program, source })
    }
}
