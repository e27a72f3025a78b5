//! Bounds-checked reads of a frame's bytes: from the XDP context in the
//! program, from a byte slice in tests, so that parsing code is written once
//! for both.

/// A frame whose bytes can be read at an offset, within its end.
pub trait Frame {
    /// The `N` bytes at `offset`, or `None` if the frame ends before them.
    fn bytes<const N: usize>(&self, offset: usize) -> Option<&[u8; N]>;
}

/// The program's frame: `ptr_at`'s comparison against `data_end` is the
/// one the verifier needs.
#[cfg(target_arch = "bpf")]
impl Frame for aya_ebpf::programs::XdpContext {
    #[inline(always)]
    fn bytes<const N: usize>(&self, offset: usize) -> Option<&[u8; N]> {
        let p = crate::ptr_at::<[u8; N]>(self, offset)?;
        // Packet data never sits at address 0. Said, it spares the check
        // for null that the `Option<&_>` would otherwise cost each read.
        unsafe { core::hint::assert_unchecked(!p.is_null()) };
        Some(unsafe { &*p })
    }
}

impl Frame for [u8] {
    #[inline(always)]
    fn bytes<const N: usize>(&self, offset: usize) -> Option<&[u8; N]> {
        self.get(offset..)?.first_chunk::<N>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_read_within_their_end() {
        let b: &[u8] = &[1, 2, 3, 4];
        assert_eq!(b.bytes::<2>(2), Some(&[3, 4]));
        assert_eq!(b.bytes::<4>(0), Some(&[1, 2, 3, 4]));
        assert_eq!(b.bytes::<2>(3), None);
        assert_eq!(b.bytes::<1>(usize::MAX), None);
    }
}
