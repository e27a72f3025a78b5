//! Build the kernel side (`xdp-ebpf`) for bpfel-unknown-none with the nightly
//! toolchain and bpf-linker, so the userspace binaries embed the object.
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    aya_build::build_ebpf(
        [Package {
            name: "xdp-ebpf",
            root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../xdp-ebpf"),
            // The programs are behind this feature so that host builds of
            // the workspace leave them out.
            features: &["programs"],
            ..Default::default()
        }],
        Toolchain::default(),
    )
}
