//! bpf(2) itself, for the commands aya 0.14 does not wrap: batch updates
//! and deletes of the route tries, and the array-of-maps the config map's
//! grace periods are waited for through.

/// One bpf(2) call: `cmd` with `attr` (the kernel may write results back
/// into it). Returns the call's non-negative result.
///
/// # Safety
///
/// `attr` must be a valid prefix of `union bpf_attr` for `cmd`, and every
/// pointer in it must point at live memory of the sizes the kernel reads
/// or writes for `cmd`, for the duration of the call.
pub(crate) unsafe fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> std::io::Result<libc::c_long> {
    // SAFETY: the caller vouches for `attr` and what it points at; `attr`
    // itself is a live exclusive reference of `size_of::<A>()` bytes.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut A,
            size_of::<A>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
