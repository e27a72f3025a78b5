//! Kernel side of the test tooling, apart from the product's `msee`
//! (`xdp-ebpf`): the programs are the binaries under `src/bin/`, built for
//! bpfel-unknown-none by `traffic`'s build.rs and embedded there. This
//! library holds what several of them share; being a library also lets
//! `traffic` name this crate as a build dependency, so cargo rebuilds it
//! when the programs change. Header helpers (`ptr_at`, checksums) come from
//! `xdp-ebpf`'s library rather than being copied.
#![no_std]

#[cfg(target_arch = "bpf")]
pub mod testframe;
