//! The VLAN shim's userspace side (see `msee_abi::vlan`): this kernel has no
//! 802.1Q, so the kernel's own traffic on tagged peerings is tagged on its
//! way out by [`VlanShim`] (the `vlan_push` TC program on a port's egress,
//! tcx). `msee` pops the tags of frames for the MSEE itself on its own;
//! where no `msee` pops them (the lab's customer router), the test
//! tooling's `traffic::VlanPop` does, with the helpers below.
//!
//! Interfaces are named by ifindex in the calling thread's network
//! namespace, like [`crate::Msee::attach`]. Programs detach when their handle
//! drops; maps can be pinned (`LoadOptions::pin_dir`) and adopted by the
//! next load, like the `msee` maps.
use std::{
    fmt,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{LpmTrie, MapError, PerCpuArray, lpm_trie::Key},
    programs::{
        LinkOrder, ProgramError, SchedClassifier, TcAttachType, TestRun, TestRunOptions,
        tc::{SchedClassifierLinkId, TcAttachOptions},
    },
};
use ipnet::IpNet;
use msee_abi::{
    ETH_P_8021AD, ETH_P_8021Q,
    vlan::{
        self, EgressKeyV4, EgressKeyV6, MAX_VID, PushCounters, VlanTags, counter_row,
        egress_key_v4, egress_key_v6,
    },
};

use crate::LoadOptions;

#[derive(Debug, thiserror::Error)]
pub enum VlanError {
    #[error(
        "loading the {object} eBPF object failed: {source} (needs root or CAP_BPF+CAP_NET_ADMIN, and a kernel with BTF)"
    )]
    Load {
        object: &'static str,
        #[source]
        source: aya::EbpfError,
    },
    #[error("the {object} object has no {what}: the embedded object and this binary disagree")]
    Missing {
        object: &'static str,
        what: &'static str,
    },
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
    #[error("program {program}: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("attaching {program} to {ifname} (ifindex {ifindex}) failed: {source}")]
    Attach {
        program: &'static str,
        ifindex: u32,
        ifname: String,
        #[source]
        source: ProgramError,
    },
    #[error("no interface has ifindex {0} in this thread's network namespace")]
    NoSuchInterface(u32),
    #[error("{program} is already attached to ifindex {ifindex} by this handle")]
    AlreadyAttached { program: &'static str, ifindex: u32 },
    #[error("{program} is not attached to ifindex {ifindex} by this handle")]
    NotAttached { program: &'static str, ifindex: u32 },
    #[error("ifindex 0 names no interface")]
    IfindexZero,
    #[error("{which} VLAN id {vid} is out of range (1 to {MAX_VID})")]
    Vid { which: &'static str, vid: u16 },
    #[error("TPID {0:#06x} is neither 0x8100 (802.1Q) nor 0x88a8 (802.1ad)")]
    Tpid(u16),
    #[error("no egress tags for {prefix} on ifindex {ifindex}")]
    NoEgressTag { ifindex: u32, prefix: IpNet },
    #[error("{tags} is not accepted on ifindex {ifindex}")]
    NotAccepted { ifindex: u32, tags: Tags },
    #[error("creating the pin directory {path}: {source}")]
    PinDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, VlanError>;

/// A tag stack as the user gives it, displayed as `802.1Q 100`,
/// `802.1ad 200 / 802.1Q 10` or `802.1Q 200 / 802.1Q 10`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tags(pub VlanTags);

impl fmt::Display for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.0;
        let outer = if t.outer_tpid == ETH_P_8021AD {
            "802.1ad"
        } else {
            "802.1Q"
        };
        write!(f, "{outer} {}", t.outer_vid)?;
        if t.inner_vid != 0 {
            write!(f, " / 802.1Q {}", t.inner_vid)?;
        }
        Ok(())
    }
}

/// Check a tag stack and return it with its padding cleared.
pub fn validate_tags(tags: VlanTags) -> Result<VlanTags> {
    if tags.outer_tpid != ETH_P_8021Q && tags.outer_tpid != ETH_P_8021AD {
        return Err(VlanError::Tpid(tags.outer_tpid));
    }
    if !(1..=MAX_VID).contains(&tags.outer_vid) {
        return Err(VlanError::Vid {
            which: "outer",
            vid: tags.outer_vid,
        });
    }
    if tags.inner_vid > MAX_VID {
        return Err(VlanError::Vid {
            which: "inner",
            vid: tags.inner_vid,
        });
    }
    Ok(VlanTags { _pad: 0, ..tags })
}

/// Refuse ifindex 0 (no interface has it).
pub fn check_ifindex(ifindex: u32) -> Result<()> {
    if ifindex == 0 {
        return Err(VlanError::IfindexZero);
    }
    Ok(())
}

/// The name of `ifindex` in the calling thread's network namespace.
pub fn ifname(ifindex: u32) -> Result<String> {
    check_ifindex(ifindex)?;
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return Err(VlanError::NoSuchInterface(ifindex));
    }
    // SAFETY: on success if_indextoname wrote a NUL-terminated name into
    // `buf`, which outlives `name`'s use here.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

/// Load `object` (its `bytes`), creating or adopting its pinned `maps` in
/// `opts.pin_dir`: how both halves of the shim load (`vlan_push` here, the
/// test tooling's `vlan_pop` for a customer side).
pub fn load(object: &'static str, bytes: &[u8], maps: &[&str], opts: &LoadOptions) -> Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    let pins: Vec<(&str, PathBuf)> = match &opts.pin_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| VlanError::PinDir {
                path: dir.clone(),
                source,
            })?;
            maps.iter().map(|m| (*m, dir.join(m))).collect()
        }
        None => Vec::new(),
    };
    for (name, path) in &pins {
        loader.map_pin_path(name, path.as_path());
    }
    loader
        .load(bytes)
        .map_err(|source| VlanError::Load { object, source })
}

/// Remove the pinned `maps` from `dir`, and `dir` once empty (it may hold
/// other programs' maps, e.g. the msee instance's).
pub fn unpin(dir: &Path, maps: &[&str]) -> std::io::Result<()> {
    for m in maps {
        match std::fs::remove_file(dir.join(m)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e)
            if e.kind() != std::io::ErrorKind::NotFound
                && e.kind() != std::io::ErrorKind::DirectoryNotEmpty =>
        {
            Err(e)
        }
        _ => Ok(()),
    }
}

/// Whether a map removal failed because the key was not there.
pub fn is_missing(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(e) => e.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

/// Map `name` of `object`'s loaded programs, typed.
pub fn map_in<'a, T>(ebpf: &'a mut Ebpf, object: &'static str, name: &'static str) -> Result<T>
where
    T: TryFrom<&'a mut aya::maps::Map, Error = MapError>,
{
    let map = ebpf
        .map_mut(name)
        .ok_or(VlanError::Missing { object, what: name })?;
    T::try_from(map).map_err(map_err(name))
}

/// Map `name` of `object`'s loaded programs, typed, read-only.
pub fn map_of<'a, T>(ebpf: &'a Ebpf, object: &'static str, name: &'static str) -> Result<T>
where
    T: TryFrom<&'a aya::maps::Map, Error = MapError>,
{
    let map = ebpf
        .map(name)
        .ok_or(VlanError::Missing { object, what: name })?;
    T::try_from(map).map_err(map_err(name))
}

/// A map error of `map`, named.
pub fn map_err(map: &'static str) -> impl FnOnce(MapError) -> VlanError {
    move |source| VlanError::Map { map, source }
}

/// One entry of the egress table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EgressTag {
    pub ifindex: u32,
    pub prefix: IpNet,
    pub tags: VlanTags,
}

/// The `vlan_push` TC egress program and its tables: frames the kernel sends
/// out of an attached port get the tags of the peering subnet their address
/// falls in (ARP: target protocol address; IPv4 and IPv6: destination; ND:
/// the ND target; each falling back to the source), the rest leave untagged.
pub struct VlanShim {
    ebpf: Ebpf,
    links: Vec<(u32, SchedClassifierLinkId)>,
}

impl VlanShim {
    const OBJECT: &'static str = "vlan_push";

    /// Load the embedded object, creating or adopting pinned maps (only
    /// `pin_dir` of the options matters: the program does not log).
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        let ebpf = load(
            Self::OBJECT,
            crate::VLAN_PUSH_OBJECT,
            &vlan::PUSH_MAPS,
            opts,
        )?;
        let mut shim = Self {
            ebpf,
            links: Vec::new(),
        };
        shim.program_mut()?
            .load()
            .map_err(|source| VlanError::Program {
                program: vlan::PUSH_PROGRAM,
                source,
            })?;
        Ok(shim)
    }

    /// Remove this shim's pinned maps from `dir` (after its last user stopped).
    pub fn unpin(dir: &Path) -> std::io::Result<()> {
        unpin(dir, &vlan::PUSH_MAPS)
    }

    fn program_mut(&mut self) -> Result<&mut SchedClassifier> {
        self.ebpf
            .program_mut(vlan::PUSH_PROGRAM)
            .ok_or(VlanError::Missing {
                object: Self::OBJECT,
                what: "vlan_push program",
            })?
            .try_into()
            .map_err(|source| VlanError::Program {
                program: vlan::PUSH_PROGRAM,
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

    /// Attach to `ifindex`'s egress (tcx, after any program already there).
    /// Detached by [`VlanShim::detach_egress`] or when `self` drops.
    pub fn attach_egress(&mut self, ifindex: u32) -> Result<()> {
        if self.links.iter().any(|(i, _)| *i == ifindex) {
            return Err(VlanError::AlreadyAttached {
                program: vlan::PUSH_PROGRAM,
                ifindex,
            });
        }
        let name = ifname(ifindex)?;
        let link = self
            .program_mut()?
            .attach_with_options(
                &name,
                TcAttachType::Egress,
                TcAttachOptions::TcxOrder(LinkOrder::default()),
            )
            .map_err(|source| VlanError::Attach {
                program: vlan::PUSH_PROGRAM,
                ifindex,
                ifname: name,
                source,
            })?;
        self.links.push((ifindex, link));
        Ok(())
    }

    pub fn detach_egress(&mut self, ifindex: u32) -> Result<()> {
        let Some(pos) = self.links.iter().position(|(i, _)| *i == ifindex) else {
            return Err(VlanError::NotAttached {
                program: vlan::PUSH_PROGRAM,
                ifindex,
            });
        };
        let (_, link) = self.links.remove(pos);
        self.program_mut()?
            .detach(link)
            .map_err(|source| VlanError::Program {
                program: vlan::PUSH_PROGRAM,
                source,
            })
    }

    /// The ifindexes this handle is attached to.
    pub fn attached(&self) -> Vec<u32> {
        self.links.iter().map(|(i, _)| *i).collect()
    }

    /// Frames the kernel sends out of `ifindex` for an address in `prefix`
    /// (a peering's /30 or /29, /126 or /125) get `tags`. Replaces the
    /// tags of the same prefix in one map update. Host bits are ignored.
    pub fn set_egress_tag(&mut self, ifindex: u32, prefix: IpNet, tags: VlanTags) -> Result<()> {
        check_ifindex(ifindex)?;
        let tags = validate_tags(tags)?;
        let plen = 32 + u32::from(prefix.prefix_len());
        match prefix.trunc() {
            IpNet::V4(p) => {
                let mut m: LpmTrie<_, EgressKeyV4, VlanTags> = self.map_mut(vlan::EGRESS_V4)?;
                m.insert(
                    &Key::new(plen, egress_key_v4(ifindex, p.addr().octets())),
                    tags,
                    0,
                )
                .map_err(map_err(vlan::EGRESS_V4))
            }
            IpNet::V6(p) => {
                let mut m: LpmTrie<_, EgressKeyV6, VlanTags> = self.map_mut(vlan::EGRESS_V6)?;
                m.insert(
                    &Key::new(plen, egress_key_v6(ifindex, p.addr().octets())),
                    tags,
                    0,
                )
                .map_err(map_err(vlan::EGRESS_V6))
            }
        }
    }

    /// Forget the tags of `prefix` on `ifindex`: its frames leave untagged
    /// (or with the tags of a shorter prefix that covers it).
    pub fn remove_egress_tag(&mut self, ifindex: u32, prefix: IpNet) -> Result<()> {
        check_ifindex(ifindex)?;
        let plen = 32 + u32::from(prefix.prefix_len());
        let missing = |source: MapError, map| {
            if is_missing(&source) {
                VlanError::NoEgressTag { ifindex, prefix }
            } else {
                VlanError::Map { map, source }
            }
        };
        match prefix.trunc() {
            IpNet::V4(p) => {
                let mut m: LpmTrie<_, EgressKeyV4, VlanTags> = self.map_mut(vlan::EGRESS_V4)?;
                m.remove(&Key::new(plen, egress_key_v4(ifindex, p.addr().octets())))
                    .map_err(|e| missing(e, vlan::EGRESS_V4))
            }
            IpNet::V6(p) => {
                let mut m: LpmTrie<_, EgressKeyV6, VlanTags> = self.map_mut(vlan::EGRESS_V6)?;
                m.remove(&Key::new(plen, egress_key_v6(ifindex, p.addr().octets())))
                    .map_err(|e| missing(e, vlan::EGRESS_V6))
            }
        }
    }

    /// Every entry of the egress table, IPv4 first.
    pub fn egress_tags(&self) -> Result<Vec<EgressTag>> {
        let mut out = Vec::new();
        let m: LpmTrie<_, EgressKeyV4, VlanTags> = self.map_ref(vlan::EGRESS_V4)?;
        for entry in m.iter() {
            let (k, tags) = entry.map_err(map_err(vlan::EGRESS_V4))?;
            let d = k.data();
            let ifindex = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            let addr = std::net::Ipv4Addr::new(d[4], d[5], d[6], d[7]);
            let prefix = ipnet::Ipv4Net::new(addr, (k.prefix_len() - 32) as u8)
                .expect("the kernel keeps prefix lengths it was given");
            out.push(EgressTag {
                ifindex,
                prefix: IpNet::V4(prefix),
                tags,
            });
        }
        let m: LpmTrie<_, EgressKeyV6, VlanTags> = self.map_ref(vlan::EGRESS_V6)?;
        for entry in m.iter() {
            let (k, tags) = entry.map_err(map_err(vlan::EGRESS_V6))?;
            let d = k.data();
            let ifindex = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            let mut a = [0u8; 16];
            a.copy_from_slice(&d[4..20]);
            let prefix = ipnet::Ipv6Net::new(a.into(), (k.prefix_len() - 32) as u8)
                .expect("the kernel keeps prefix lengths it was given");
            out.push(EgressTag {
                ifindex,
                prefix: IpNet::V6(prefix),
                tags,
            });
        }
        Ok(out)
    }

    /// What the program did on `ifindex`, summed over CPUs (ifindexes of
    /// 4096 and above share one row).
    pub fn counters(&self, ifindex: u32) -> Result<PushCounters> {
        let m: PerCpuArray<_, PushCounters> = self.map_ref(vlan::PUSH_STATS)?;
        let per_cpu = m
            .get(&counter_row(ifindex), 0)
            .map_err(map_err(vlan::PUSH_STATS))?;
        let mut total = PushCounters::default();
        for c in per_cpu.iter() {
            total.add(c);
        }
        Ok(total)
    }

    /// Run the program once on `frame` as if the kernel sent it out of
    /// `ifindex` (`BPF_PROG_TEST_RUN`; nothing is sent; the ifindex must
    /// exist in this namespace, 1 is `lo`). Returns the TC verdict (-1 =
    /// pass on, 2 = drop) and the frame as the program left it.
    pub fn test_run(&mut self, frame: &[u8], ifindex: u32) -> Result<(i32, Vec<u8>)> {
        // struct __sk_buff up to `ifindex` (offset 40); the rest zero.
        let mut ctx = [0u8; 44];
        ctx[40..44].copy_from_slice(&ifindex.to_ne_bytes());
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
                program: vlan::PUSH_PROGRAM,
                source,
            })?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value as i32, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_validated_and_named() {
        assert_eq!(
            validate_tags(VlanTags::dot1q(100)).unwrap(),
            VlanTags::dot1q(100)
        );
        assert!(validate_tags(VlanTags::qinq(200, 10)).is_ok());
        assert!(validate_tags(VlanTags::double_dot1q(200, 10)).is_ok());
        let err = validate_tags(VlanTags::dot1q(0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "outer VLAN id 0 is out of range (1 to 4094)"
        );
        let err = validate_tags(VlanTags::dot1q(4095)).unwrap_err();
        assert!(matches!(
            err,
            VlanError::Vid {
                which: "outer",
                vid: 4095
            }
        ));
        let err = validate_tags(VlanTags::qinq(200, 5000)).unwrap_err();
        assert!(matches!(
            err,
            VlanError::Vid {
                which: "inner",
                vid: 5000
            }
        ));
        let bad = VlanTags {
            outer_tpid: 0x9100,
            ..VlanTags::dot1q(100)
        };
        assert_eq!(
            validate_tags(bad).unwrap_err().to_string(),
            "TPID 0x9100 is neither 0x8100 (802.1Q) nor 0x88a8 (802.1ad)"
        );
        let padded = VlanTags {
            _pad: 7,
            ..VlanTags::dot1q(100)
        };
        assert_eq!(validate_tags(padded).unwrap()._pad, 0);
        assert_eq!(Tags(VlanTags::dot1q(100)).to_string(), "802.1Q 100");
        assert_eq!(
            Tags(VlanTags::qinq(200, 10)).to_string(),
            "802.1ad 200 / 802.1Q 10"
        );
        assert_eq!(
            Tags(VlanTags::double_dot1q(200, 10)).to_string(),
            "802.1Q 200 / 802.1Q 10"
        );
    }

    #[test]
    fn unknown_interfaces_are_named_in_the_error() {
        assert!(matches!(ifname(0), Err(VlanError::IfindexZero)));
        let err = ifname(0x7fff_fff0).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no interface has ifindex {} in this thread's network namespace",
                0x7fff_fff0u32
            )
        );
    }
}
