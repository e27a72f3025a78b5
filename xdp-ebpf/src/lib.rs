//! Shared pieces of the XDP programs (the programs are the binaries under
//! `src/bin/`). Being a library also lets userspace name this crate as a build
//! dependency, so cargo rebuilds userspace when the kernel side changes.
#![no_std]

pub mod msee;
pub mod net;

#[cfg(target_arch = "bpf")]
use aya_ebpf::programs::XdpContext;

/// A pointer to a `T` at `offset` bytes into the frame, or `None` if the frame
/// is too short. The comparison against `data_end` is what the verifier needs.
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}
