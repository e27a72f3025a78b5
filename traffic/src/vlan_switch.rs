//! `vlan_switch`'s userspace side: the lab's provider network, a VLAN
//! cross-connect between each customer link (an access port) and the
//! MSEE's port (a trunk). Loading and errors are the VLAN shim's own
//! (`dataplane::vlan`).
// VlanSwitch returns the shim's own error (`dataplane::VlanError`), as
// VlanShim does.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use lab::estate::EstateLab;

use aya::{
    Ebpf,
    maps::{HashMap, MapError, PerCpuArray},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, xdp::XdpLinkId},
};
use dataplane::{
    AttachMode, LoadOptions, VlanError,
    vlan::{check_ifindex, ifname, load, map_err, map_in, map_of, validate_tags},
};
use msee_abi::vlan::VlanTags;
use traffic_abi::{
    vlan_pop::PopKey,
    vlan_switch::{self, SwitchAccess, SwitchCounters},
};

type Result<T> = std::result::Result<T, VlanError>;

/// The `vlan_switch` XDP program: the lab's provider network, each access
/// port cross-connected to a trunk with a tag stack.
pub struct VlanSwitch {
    ebpf: Ebpf,
    links: Vec<(u32, XdpLinkId)>,
}

impl VlanSwitch {
    const OBJECT: &'static str = "vlan_switch";

    pub fn load() -> Result<Self> {
        let ebpf = load(
            Self::OBJECT,
            crate::VLAN_SWITCH_OBJECT,
            &vlan_switch::MAPS,
            &LoadOptions::default(),
        )?;
        let mut s = Self {
            ebpf,
            links: Vec::new(),
        };
        s.program_mut()?
            .load()
            .map_err(|source| VlanError::Program {
                program: vlan_switch::PROGRAM,
                source,
            })?;
        Ok(s)
    }

    fn program_mut(&mut self) -> Result<&mut Xdp> {
        self.ebpf
            .program_mut(vlan_switch::PROGRAM)
            .ok_or(VlanError::Missing {
                object: Self::OBJECT,
                what: "vlan_switch program",
            })?
            .try_into()
            .map_err(|source| VlanError::Program {
                program: vlan_switch::PROGRAM,
                source,
            })
    }

    /// Attach to `ifindex` (native XDP: the ports are veths).
    pub fn attach(&mut self, ifindex: u32, mode: AttachMode) -> Result<()> {
        if self.links.iter().any(|(i, _)| *i == ifindex) {
            return Ok(());
        }
        let name = ifname(ifindex)?;
        let link = self
            .program_mut()?
            .attach_to_if_index(ifindex, mode.into())
            .map_err(|source| VlanError::Attach {
                program: vlan_switch::PROGRAM,
                ifindex,
                ifname: name,
                source,
            })?;
        self.links.push((ifindex, link));
        Ok(())
    }

    /// Cross-connects `access` to `trunk` with `tags`: frames from the
    /// access port leave the trunk tagged, frames on the trunk with these
    /// tags leave the access port untagged.
    pub fn connect(&mut self, access: u32, trunk: u32, tags: VlanTags) -> Result<()> {
        check_ifindex(access)?;
        check_ifindex(trunk)?;
        let tags = validate_tags(tags)?;
        {
            let mut ports: aya::maps::DevMapHash<_> = self.map_mut(vlan_switch::PORTS)?;
            for i in [access, trunk] {
                ports.insert(i, i, None, 0).map_err(|e| VlanError::Map {
                    map: vlan_switch::PORTS,
                    source: MapError::from(std::io::Error::other(e.to_string())),
                })?;
            }
        }
        let mut a: HashMap<_, u32, SwitchAccess> = self.map_mut(vlan_switch::ACCESS)?;
        a.insert(
            access,
            SwitchAccess {
                trunk,
                _pad: 0,
                tags,
            },
            0,
        )
        .map_err(map_err(vlan_switch::ACCESS))?;
        let mut t: HashMap<_, PopKey, u32> = self.map_mut(vlan_switch::TRUNK)?;
        t.insert(crate::VlanPop::key(trunk, &tags), access, 0)
            .map_err(map_err(vlan_switch::TRUNK))
    }

    fn map_mut<'a, T>(&'a mut self, name: &'static str) -> Result<T>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = MapError>,
    {
        map_in(&mut self.ebpf, Self::OBJECT, name)
    }

    /// What the switch did, summed over CPUs.
    pub fn counters(&self) -> Result<SwitchCounters> {
        let m: PerCpuArray<_, SwitchCounters> =
            map_of(&self.ebpf, Self::OBJECT, vlan_switch::STATS)?;
        let per_cpu = m.get(&0, 0).map_err(map_err(vlan_switch::STATS))?;
        let mut total = SwitchCounters::default();
        for c in per_cpu.iter() {
            total.add(c);
        }
        Ok(total)
    }

    /// Pins every attachment under `dir` (one file per port), so the switch
    /// keeps running after this process ends; removing the files (or the
    /// ports) detaches it.
    pub fn pin_links(mut self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|source| VlanError::PinDir {
            path: dir.to_owned(),
            source,
        })?;
        let links = std::mem::take(&mut self.links);
        let mut pins = Vec::new();
        for (ifindex, id) in links {
            let link = self
                .program_mut()?
                .take_link(id)
                .map_err(|source| VlanError::Program {
                    program: vlan_switch::PROGRAM,
                    source,
                })?;
            let fd: aya::programs::links::FdLink =
                link.try_into()
                    .map_err(|e: aya::programs::links::LinkError| VlanError::Program {
                        program: vlan_switch::PROGRAM,
                        source: ProgramError::IOError(std::io::Error::other(format!(
                            "ifindex {ifindex}: XDP attached without a bpf_link, cannot pin: {e}"
                        ))),
                    })?;
            let path = dir.join(format!("vlan_switch_{ifindex}"));
            fd.pin(&path).map_err(|e| VlanError::PinDir {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            pins.push(path);
        }
        Ok(pins)
    }

    /// Run the program once on `frame` as if it arrived on
    /// `ingress_ifindex`. Returns the XDP action and the frame.
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
                program: vlan_switch::PROGRAM,
                source,
            })?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out))
    }
}

/// Attaches `vlan_switch` to the switch namespace's trunks and access
/// ports, cross-connects each customer link with its peering's tags, and
/// pins it under `dir` so it outlives this process.
pub fn install_estate_switch(lab: &EstateLab, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let lab = lab.clone();
    let pins = dir.to_owned();
    msee_sys::netns::on_thread(
        &lab.switch_ns.clone(),
        move || -> anyhow::Result<Vec<PathBuf>> {
            let mut sw = VlanSwitch::load()?;
            let index = |name: &str| -> anyhow::Result<u32> {
                let c = std::ffi::CString::new(name)?;
                // SAFETY: a valid C string; returns 0 when there is no such interface.
                let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
                if i == 0 {
                    anyhow::bail!("no interface {name} in the switch namespace");
                }
                Ok(i)
            };
            for c in &lab.customers {
                for p in &c.peerings {
                    let pair = &lab.pairs[p.pair];
                    for k in 0..2 {
                        let access = index(&p.access[k])?;
                        let trunk = index(&pair.trunk[k])?;
                        let tags = if p.tags.1 == 0 {
                            VlanTags::dot1q(p.tags.0)
                        } else {
                            VlanTags::double_dot1q(p.tags.0, p.tags.1)
                        };
                        sw.attach(access, AttachMode::Native)?;
                        sw.attach(trunk, AttachMode::Native)?;
                        sw.connect(access, trunk, tags)
                            .map_err(anyhow::Error::from)
                            .with_context(|| format!("{} {}", c.circuit, p.access[k]))?;
                    }
                }
            }
            Ok(sw.pin_links(&pins)?)
        },
    )?
}
