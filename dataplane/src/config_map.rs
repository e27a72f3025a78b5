//! Userspace's mapping of `msee`'s `CONFIG` map (`msee_abi::MseeConfig`):
//! the program reads links, link state, policers, DSCP policy and the route
//! epoch from its one element, and userspace writes them there in place.
//!
//! Why a mapping rather than map updates: a map update rewrites a whole
//! value, and this value holds every link. Written through the mapping, a
//! link flip or an epoch bump is one atomic store that no other write can
//! undo (the link switch flips state from other threads while the owner
//! rewrites a link's MACs), and a link or policer rewrite touches just that
//! entry.
//!
//! Links and policers are read by the program while they are rewritten, so
//! they are `DoubleBuffered`: a rewrite goes to the copy the program does not
//! read, then one store of the entry's index publishes it. The copy just
//! retired may still be read by a program run that started before the flip;
//! it is written again only after an RCU grace period (`GracePeriod`), when
//! every such run has ended. Writes to other entries, or to the same entry
//! after a grace period passed anyway, do not wait.
use std::{
    os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
    ptr::{NonNull, addr_of, addr_of_mut},
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
};

use crate::bpf_sys::bpf;
use msee_abi::{DoubleBuffered, Link, MAX_LINKS, MseeConfig, PEERING_KINDS, PolicerConfig};

/// A shared, writable mapping of the `CONFIG` map's value.
pub(crate) struct ConfigMap {
    ptr: NonNull<MseeConfig>,
    len: usize,
    /// Serialises rewrites of the double-buffered entries (and reads of them:
    /// a reader outside the kernel is not covered by grace periods).
    writes: Mutex<Writes>,
}

// SAFETY: the mapping is plain shared memory; every access below is a
// volatile or atomic access to one field, or a copy of an entry that no
// one writes meanwhile (`writes`, grace periods), so threads sharing it
// race no worse than they would through map syscalls.
unsafe impl Send for ConfigMap {}
// SAFETY: as for Send: shared access is to single fields, volatile or
// atomic, or to entries under `writes`.
unsafe impl Sync for ConfigMap {}

/// Which idle copies of the double-buffered entries may still be read by a
/// program run.
struct Writes {
    flips: Flips,
    /// Per link, then per policer: the flip that retired its idle copy.
    links: Box<[u64]>,
    policers: Box<[u64]>,
}

/// Flips of double-buffered entries, and the grace periods between them.
struct Flips {
    grace: GracePeriod,
    /// Flips made so far (of any entry).
    count: u64,
    /// Every flip up to this one came before a grace period that has ended:
    /// the copies those flips retired are read by no one.
    settled: u64,
    /// Grace periods waited for (for tests).
    waits: u64,
}

impl Writes {
    fn new(grace: GracePeriod) -> Self {
        // The map may be adopted from another process, which may have
        // flipped any entry an instant ago: every idle copy counts as
        // retired by a flip that no grace period has covered yet, so the
        // first rewrite waits once (and that covers all entries).
        Self {
            flips: Flips {
                grace,
                count: 1,
                settled: 0,
                waits: 0,
            },
            links: vec![1; MAX_LINKS as usize].into_boxed_slice(),
            policers: vec![1; 2 * MAX_LINKS as usize].into_boxed_slice(),
        }
    }
}

impl Flips {
    /// Publish `value` in `entry`, whose idle copy was retired by flip
    /// `*retired` (updated to this flip).
    ///
    /// # Safety
    /// `entry` points into the mapping, and the caller holds the map's
    /// `writes` (no one else writes the entry).
    unsafe fn publish<T: Copy>(
        &mut self,
        entry: *mut DoubleBuffered<T>,
        retired: &mut u64,
        value: T,
    ) -> std::io::Result<()> {
        if *retired > self.settled {
            let upto = self.count;
            self.grace.wait()?;
            self.waits += 1;
            self.settled = upto;
        }
        // SAFETY: in the mapping (caller), 4-aligned (the layout test), and
        // only ever written by us, under `writes`; the program only reads it.
        let active = unsafe { AtomicU32::from_ptr(addr_of_mut!((*entry).active)) };
        let idle = (active.load(Ordering::Relaxed) & 1) ^ 1;
        // SAFETY: in the mapping; the idle copy is read by no program run
        // (the grace period above) and written by no one else (`writes`).
        unsafe { addr_of_mut!((*entry).copies[idle as usize]).write_volatile(value) };
        // Release: the copy is written before a program can see it named.
        active.store(idle, Ordering::Release);
        self.count += 1;
        *retired = self.count;
        Ok(())
    }
}

/// `synchronize_rcu()` from userspace: an update of an array-of-maps waits,
/// before it returns, for every running non-sleepable BPF program (the
/// kernel's `maybe_wait_bpf_programs`), so that the caller knows no program
/// still uses what the update replaced. XDP programs run inside RCU
/// read-side sections (so does `BPF_PROG_TEST_RUN`): once this returns,
/// every program run that started before it has ended.
pub(crate) struct GracePeriod {
    outer: OwnedFd,
    inner: OwnedFd,
}

/// `union bpf_attr` for `BPF_MAP_CREATE` (include/uapi/linux/bpf.h), as
/// far as used; the kernel zero-fills the rest.
#[repr(C)]
#[derive(Default)]
struct CreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
}

/// `union bpf_attr` for `BPF_MAP_UPDATE_ELEM`.
#[repr(C)]
#[derive(Default)]
struct UpdateAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;

impl GracePeriod {
    pub(crate) fn new() -> std::io::Result<Self> {
        let create = |map_type, inner_map_fd| {
            let mut attr = CreateAttr {
                map_type,
                key_size: 4,
                value_size: 4,
                max_entries: 1,
                inner_map_fd,
                ..Default::default()
            };
            // SAFETY: `attr` is `bpf_attr`'s prefix for BPF_MAP_CREATE and
            // holds no pointers.
            let fd = unsafe { bpf(BPF_MAP_CREATE, &mut attr) }?;
            // SAFETY: BPF_MAP_CREATE returned a new file descriptor, ours alone.
            Ok::<_, std::io::Error>(unsafe { OwnedFd::from_raw_fd(fd as i32) })
        };
        let inner = create(BPF_MAP_TYPE_ARRAY, 0)?;
        let outer = create(BPF_MAP_TYPE_ARRAY_OF_MAPS, inner.as_raw_fd() as u32)?;
        Ok(Self { outer, inner })
    }

    /// Wait until every BPF program run that started before this call has
    /// ended (a few milliseconds).
    pub(crate) fn wait(&self) -> std::io::Result<()> {
        let key = 0u32;
        let value = self.inner.as_raw_fd() as u32;
        let mut attr = UpdateAttr {
            map_fd: self.outer.as_raw_fd() as u32,
            key: &raw const key as u64,
            value: &raw const value as u64,
            ..Default::default()
        };
        // SAFETY: `attr` is `bpf_attr`'s prefix for BPF_MAP_UPDATE_ELEM; its
        // key and value point at the two u32 locals above, the outer map's
        // key and value sizes, which outlive the call.
        unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }.map(drop)
    }
}

impl ConfigMap {
    /// Map the value of the `CONFIG` map behind `fd` (created with
    /// `BPF_F_MMAPABLE`, one element of `MseeConfig`).
    pub(crate) fn new(fd: BorrowedFd<'_>) -> std::io::Result<Self> {
        let grace = GracePeriod::new()?;
        // SAFETY: sysconf reads a constant of the system; no memory is passed.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let len = size_of::<MseeConfig>().div_ceil(page) * page;
        // SAFETY: a fresh shared mapping of the map's value area; the kernel
        // checks the length and that the map is mmapable.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            ptr: NonNull::new(p as *mut MseeConfig).expect("mmap returned a null mapping"),
            len,
            writes: Mutex::new(Writes::new(grace)),
        })
    }

    fn base(&self) -> *mut MseeConfig {
        self.ptr.as_ptr()
    }

    fn writes(&self) -> MutexGuard<'_, Writes> {
        // The bookkeeping is updated only after a write succeeded: a panic
        // elsewhere leaves it as valid as it was.
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Index checked by the callers (`check_range`); asserted here because
    /// an index past the table would write past the mapping.
    fn link_index(id: u32) -> usize {
        assert!(id < MAX_LINKS, "link id {id} checked by the caller");
        id as usize
    }

    fn policer_index(index: u32) -> usize {
        assert!(index < 2 * MAX_LINKS, "policer index {index}");
        index as usize
    }

    fn link_up_word(&self, id: u32) -> &AtomicU32 {
        let i = Self::link_index(id);
        // SAFETY: in bounds, 4-aligned (layout test), and only ever accessed
        // atomically from userspace.
        unsafe { AtomicU32::from_ptr(addr_of_mut!((*self.base()).link_up[i])) }
    }

    pub(crate) fn set_link_up(&self, id: u32, state: u32) {
        self.link_up_word(id).store(state, Ordering::Release);
    }

    pub(crate) fn link_up(&self, id: u32) -> u32 {
        self.link_up_word(id).load(Ordering::Acquire)
    }

    /// Publish link `id`'s new entry (may wait for a grace period).
    pub(crate) fn set_link(&self, id: u32, link: Link) -> std::io::Result<()> {
        let i = Self::link_index(id);
        let w = &mut *self.writes();
        // SAFETY: in bounds, and `w` is the guard of `writes`.
        unsafe {
            w.flips
                .publish(addr_of_mut!((*self.base()).links[i]), &mut w.links[i], link)
        }
    }

    pub(crate) fn link(&self, id: u32) -> Link {
        let i = Self::link_index(id);
        let _w = self.writes();
        // SAFETY: in bounds; the current copy is written by no one while we
        // hold `writes` (writers write only the idle copy, under it).
        unsafe { read_current(addr_of!((*self.base()).links[i])) }
    }

    /// Publish the policer config at `index` (a `link_dir_index`; may wait
    /// for a grace period).
    pub(crate) fn set_policer(&self, index: u32, cfg: PolicerConfig) -> std::io::Result<()> {
        let i = Self::policer_index(index);
        let w = &mut *self.writes();
        // SAFETY: in bounds, and `w` is the guard of `writes`.
        unsafe {
            w.flips.publish(
                addr_of_mut!((*self.base()).policers[i]),
                &mut w.policers[i],
                cfg,
            )
        }
    }

    pub(crate) fn policer(&self, index: u32) -> PolicerConfig {
        let i = Self::policer_index(index);
        let _w = self.writes();
        // SAFETY: as in `link`.
        unsafe { read_current(addr_of!((*self.base()).policers[i])) }
    }

    /// Grace periods the writes have waited for so far.
    #[cfg(test)]
    pub(crate) fn grace_periods(&self) -> u64 {
        self.writes().flips.waits
    }

    pub(crate) fn set_dscp_policy(&self, policy: [[u8; 64]; PEERING_KINDS]) {
        // SAFETY: in bounds; the program only reads it, a byte at a time
        // (see `MseeConfig`).
        unsafe { addr_of_mut!((*self.base()).dscp).write_volatile(policy) }
    }

    fn epoch_word(&self) -> &AtomicU64 {
        // SAFETY: at offset 0 of a page-aligned mapping; only ever accessed
        // atomically from userspace.
        unsafe { AtomicU64::from_ptr(addr_of_mut!((*self.base()).route_epoch)) }
    }

    /// Bump the route epoch (never to 0, which turns the caches off).
    /// One writer (the `Msee` owner), so load-increment-store is enough.
    pub(crate) fn bump_route_epoch(&self) {
        let e = self.epoch_word();
        let next = e.load(Ordering::Acquire).wrapping_add(1).max(1);
        e.store(next, Ordering::Release);
    }
}

/// The current copy of `entry`.
///
/// # Safety
/// `entry` points into the mapping, and the caller holds `writes`.
unsafe fn read_current<T: Copy>(entry: *const DoubleBuffered<T>) -> T {
    // SAFETY: in the mapping (caller), 4-aligned; only ever written
    // atomically, by us.
    let active = unsafe { AtomicU32::from_ptr(addr_of!((*entry).active) as *mut u32) };
    let i = active.load(Ordering::Acquire) & 1;
    // SAFETY: in the mapping; written by no one while the caller holds
    // `writes`.
    unsafe { addr_of!((*entry).copies[i as usize]).read_volatile() }
}

impl Drop for ConfigMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
}
