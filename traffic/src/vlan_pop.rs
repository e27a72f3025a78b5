//! `vlan_pop`'s userspace side: the customer side's half of the VLAN shim
//! (see `dataplane::vlan`). On a side without 802.1Q and without `msee`
//! (the lab's customer router), frames arriving with an accepted tag stack
//! have their tags popped and reach the kernel as plain Ethernet; with the
//! product's `VlanShim` on the same port's egress, a routing daemon on one
//! untagged interface speaks to several peerings, each on its own VLAN.
//!
//! Loading, pinning and errors are the shim's own (`dataplane::vlan`), so
//! both halves behave alike.
// VlanPop returns the shim's own error (`dataplane::VlanError`, which names
// the object, map or interface at fault), as VlanShim does.
#![allow(clippy::result_large_err)]

use std::path::Path;

use aya::{
    Ebpf,
    maps::{HashMap, MapError, PerCpuArray},
    programs::{TestRun, TestRunOptions, Xdp, xdp::XdpLinkId},
};
use dataplane::{
    AttachMode, LoadOptions, VlanError,
    vlan::{
        Tags, check_ifindex, ifname, is_missing, load, map_err, map_in, map_of, unpin,
        validate_tags,
    },
};
use msee_abi::vlan::{VlanTags, counter_row};
use traffic_abi::vlan_pop::{self, PopCounters, PopKey};

type Result<T> = std::result::Result<T, VlanError>;

/// The `vlan_pop` XDP program and its table of accepted tag stacks.
pub struct VlanPop {
    ebpf: Ebpf,
    links: Vec<(u32, XdpLinkId)>,
}

impl VlanPop {
    const OBJECT: &'static str = "vlan_pop";

    /// Load the embedded object, creating or adopting pinned maps (only
    /// `pin_dir` of the options matters).
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        let ebpf = load(Self::OBJECT, crate::VLAN_POP_OBJECT, &vlan_pop::MAPS, opts)?;
        let mut pop = Self {
            ebpf,
            links: Vec::new(),
        };
        pop.program_mut()?
            .load()
            .map_err(|source| VlanError::Program {
                program: vlan_pop::PROGRAM,
                source,
            })?;
        Ok(pop)
    }

    /// Remove this program's pinned maps from `dir`.
    pub fn unpin(dir: &Path) -> std::io::Result<()> {
        unpin(dir, &vlan_pop::MAPS)
    }

    fn program_mut(&mut self) -> Result<&mut Xdp> {
        self.ebpf
            .program_mut(vlan_pop::PROGRAM)
            .ok_or(VlanError::Missing {
                object: Self::OBJECT,
                what: "vlan_pop program",
            })?
            .try_into()
            .map_err(|source| VlanError::Program {
                program: vlan_pop::PROGRAM,
                source,
            })
    }

    fn map_mut<'a, T>(&'a mut self, name: &'static str) -> Result<T>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = MapError>,
    {
        map_in(&mut self.ebpf, Self::OBJECT, name)
    }

    fn map_ref<'a, T>(&'a self, name: &'static str) -> Result<T>
    where
        T: TryFrom<&'a aya::maps::Map, Error = MapError>,
    {
        map_of(&self.ebpf, Self::OBJECT, name)
    }

    /// Attach to `ifindex` (XDP). Detached by [`VlanPop::detach`] or on drop.
    pub fn attach(&mut self, ifindex: u32, mode: AttachMode) -> Result<()> {
        if self.links.iter().any(|(i, _)| *i == ifindex) {
            return Err(VlanError::AlreadyAttached {
                program: vlan_pop::PROGRAM,
                ifindex,
            });
        }
        let name = ifname(ifindex)?;
        let link = self
            .program_mut()?
            .attach_to_if_index(ifindex, mode.into())
            .map_err(|source| VlanError::Attach {
                program: vlan_pop::PROGRAM,
                ifindex,
                ifname: name,
                source,
            })?;
        self.links.push((ifindex, link));
        Ok(())
    }

    pub fn detach(&mut self, ifindex: u32) -> Result<()> {
        let Some(pos) = self.links.iter().position(|(i, _)| *i == ifindex) else {
            return Err(VlanError::NotAttached {
                program: vlan_pop::PROGRAM,
                ifindex,
            });
        };
        let (_, link) = self.links.remove(pos);
        self.program_mut()?
            .detach(link)
            .map_err(|source| VlanError::Program {
                program: vlan_pop::PROGRAM,
                source,
            })
    }

    /// The `VLAN_ACCEPT` key of `tags` on `ifindex` (also `vlan_switch`'s
    /// trunk key).
    pub(crate) fn key(ifindex: u32, tags: &VlanTags) -> PopKey {
        PopKey {
            ifindex,
            outer_vid: tags.outer_vid,
            inner_vid: tags.inner_vid,
        }
    }

    /// Frames arriving on `ifindex` with exactly this tag stack (outer TPID
    /// included) are popped and passed to the kernel.
    pub fn accept(&mut self, ifindex: u32, tags: VlanTags) -> Result<()> {
        check_ifindex(ifindex)?;
        let tags = validate_tags(tags)?;
        let mut m: HashMap<_, PopKey, VlanTags> = self.map_mut(vlan_pop::ACCEPT)?;
        m.insert(Self::key(ifindex, &tags), tags, 0)
            .map_err(map_err(vlan_pop::ACCEPT))
    }

    /// Stop accepting a tag stack: its frames are dropped (and counted) again.
    pub fn refuse(&mut self, ifindex: u32, tags: VlanTags) -> Result<()> {
        check_ifindex(ifindex)?;
        let mut m: HashMap<_, PopKey, VlanTags> = self.map_mut(vlan_pop::ACCEPT)?;
        m.remove(&Self::key(ifindex, &tags)).map_err(|source| {
            if is_missing(&source) {
                VlanError::NotAccepted {
                    ifindex,
                    tags: Tags(tags),
                }
            } else {
                VlanError::Map {
                    map: vlan_pop::ACCEPT,
                    source,
                }
            }
        })
    }

    /// Every accepted (ifindex, tag stack).
    pub fn accepted(&self) -> Result<Vec<(u32, VlanTags)>> {
        let m: HashMap<_, PopKey, VlanTags> = self.map_ref(vlan_pop::ACCEPT)?;
        m.iter()
            .map(|r| {
                r.map(|(k, v)| (k.ifindex, v))
                    .map_err(map_err(vlan_pop::ACCEPT))
            })
            .collect()
    }

    /// What the program did on `ifindex`, summed over CPUs.
    pub fn counters(&self, ifindex: u32) -> Result<PopCounters> {
        let m: PerCpuArray<_, PopCounters> = self.map_ref(vlan_pop::STATS)?;
        let per_cpu = m
            .get(&counter_row(ifindex), 0)
            .map_err(map_err(vlan_pop::STATS))?;
        let mut total = PopCounters::default();
        for c in per_cpu.iter() {
            total.add(c);
        }
        Ok(total)
    }

    /// Run the program once on `frame` as if it arrived on `ingress_ifindex`
    /// (`BPF_PROG_TEST_RUN`). Returns the XDP action and the frame.
    pub fn test_run(&mut self, frame: &[u8], ingress_ifindex: u32) -> Result<(u32, Vec<u8>)> {
        let ctx = dataplane::xdp_md(frame.len(), ingress_ifindex);
        let mut out = vec![0u8; frame.len() + 64];
        let result = self
            .program_mut()?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ..Default::default()
            })
            .map_err(|source| VlanError::Program {
                program: vlan_pop::PROGRAM,
                source,
            })?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out))
    }
}
