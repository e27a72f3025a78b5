//! Shared memory the forwarding table lives in: the value area of an
//! mmapable BPF array, or (host tests) a memory file of the same shape.
//! Only ever accessed atomically: the program reads it concurrently.
use std::{
    os::fd::{AsRawFd as _, BorrowedFd},
    ptr::NonNull,
    sync::atomic::AtomicU32,
};

#[cfg(test)]
use std::os::fd::{FromRawFd as _, OwnedFd};

pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    /// The memory file behind a test region, to map it again.
    #[cfg(test)]
    memfd: Option<OwnedFd>,
}

// SAFETY: plain shared memory, accessed only through atomics.
unsafe impl Send for Region {}
// SAFETY: as for Send.
unsafe impl Sync for Region {}

fn page_round(bytes: usize) -> usize {
    // SAFETY: sysconf reads a constant of the system; no memory is passed.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    bytes.max(1).div_ceil(page) * page
}

impl Region {
    /// Map the values of the mmapable array behind `fd`, `bytes` long
    /// (the kernel refuses a length past the map's values).
    pub(crate) fn of_map(fd: BorrowedFd<'_>, bytes: usize) -> std::io::Result<Self> {
        Self::map(bytes, fd.as_raw_fd())
    }

    /// Zeroed memory of `bytes` in a memory file (tests of the table
    /// alone), which [`Region::again`] maps a second time.
    #[cfg(test)]
    pub(crate) fn anonymous(bytes: usize) -> std::io::Result<Self> {
        // SAFETY: a plain syscall; the fd returned is ours.
        let fd = unsafe { libc::memfd_create(c"fib".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: just created, owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sizes the file we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), page_round(bytes) as libc::off_t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut r = Self::map(bytes, fd.as_raw_fd())?;
        r.memfd = Some(fd);
        Ok(r)
    }

    /// A second mapping of a test region's memory (a concurrent reader).
    #[cfg(test)]
    pub(crate) fn again(&self) -> std::io::Result<Self> {
        let fd = self.memfd.as_ref().expect("a memory-file region");
        Self::map(self.len, fd.as_raw_fd())
    }

    fn map(bytes: usize, fd: i32) -> std::io::Result<Self> {
        let len = page_round(bytes);
        // SAFETY: a fresh shared mapping; the kernel checks the length
        // against the map and that it is mmapable. MAP_POPULATE: the pages
        // exist already (BPF arrays are allocated whole), and faulting
        // them in one by one would cost every first write to a node.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            ptr: NonNull::new(p as *mut u8).expect("mmap returned a null mapping"),
            len,
            #[cfg(test)]
            memfd: None,
        })
    }

    pub(crate) fn words(&self) -> &[AtomicU32] {
        // SAFETY: page-aligned, `len` bytes long, alive as long as `self`,
        // and only ever accessed atomically (here and by the program,
        // which reads aligned u32s).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr() as *const AtomicU32, self.len / 4) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
}
