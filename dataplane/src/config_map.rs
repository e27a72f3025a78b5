//! Userspace's mapping of `msee`'s `CONFIG` map (`msee_abi::MseeConfig`):
//! the program reads links, link state, policers, DSCP policy and the route
//! epoch from its one element, and userspace writes them there in place.
//!
//! Why a mapping rather than map updates: a map update rewrites a whole
//! value, and this value holds every link. Written through the mapping, a
//! link flip or an epoch bump is one atomic store that no other write can
//! undo (the link switch flips state from other threads while the owner
//! rewrites a link's MACs), and a link or policer rewrite copies just that
//! entry, as a map update of the entry did before.
use std::{
    os::fd::{AsRawFd as _, BorrowedFd},
    ptr::{NonNull, addr_of, addr_of_mut},
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};

use msee_abi::{Link, MAX_LINKS, MseeConfig, PEERING_KINDS, PolicerConfig};

/// A shared, writable mapping of the `CONFIG` map's value.
pub(crate) struct ConfigMap {
    ptr: NonNull<MseeConfig>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access below is a
// volatile or atomic access to one field, so threads sharing it race no
// worse than they would through map syscalls.
unsafe impl Send for ConfigMap {}
// SAFETY: as for Send: shared access is to single fields, volatile or atomic.
unsafe impl Sync for ConfigMap {}

impl ConfigMap {
    /// Map the value of the `CONFIG` map behind `fd` (created with
    /// `BPF_F_MMAPABLE`, one element of `MseeConfig`).
    pub(crate) fn new(fd: BorrowedFd<'_>) -> std::io::Result<Self> {
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
        })
    }

    fn base(&self) -> *mut MseeConfig {
        self.ptr.as_ptr()
    }

    /// Index checked by the callers (`check_range`); asserted here because
    /// an index past the table would write past the mapping.
    fn link_index(id: u32) -> usize {
        assert!(id < MAX_LINKS, "link id {id} checked by the caller");
        id as usize
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

    pub(crate) fn set_link(&self, id: u32, link: Link) {
        let i = Self::link_index(id);
        // SAFETY: in bounds; the program only reads it.
        unsafe { addr_of_mut!((*self.base()).links[i]).write_volatile(link) }
    }

    pub(crate) fn link(&self, id: u32) -> Link {
        let i = Self::link_index(id);
        // SAFETY: in bounds.
        unsafe { addr_of!((*self.base()).links[i]).read_volatile() }
    }

    /// `index` is a `link_dir_index`.
    pub(crate) fn set_policer(&self, index: u32, cfg: PolicerConfig) {
        assert!(index < 2 * MAX_LINKS, "policer index {index}");
        // SAFETY: in bounds; the program only reads it.
        unsafe { addr_of_mut!((*self.base()).policers[index as usize]).write_volatile(cfg) }
    }

    pub(crate) fn policer(&self, index: u32) -> PolicerConfig {
        assert!(index < 2 * MAX_LINKS, "policer index {index}");
        // SAFETY: in bounds.
        unsafe { addr_of!((*self.base()).policers[index as usize]).read_volatile() }
    }

    pub(crate) fn set_dscp_policy(&self, policy: [[u8; 64]; PEERING_KINDS]) {
        // SAFETY: in bounds; the program only reads it.
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

impl Drop for ConfigMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
}
