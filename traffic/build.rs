//! Build the test tooling's kernel programs (`traffic-ebpf`) for
//! bpfel-unknown-none with the nightly toolchain and bpf-linker, as
//! dataplane's build.rs builds `msee`, so the engine embeds the objects.
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    aya_build::build_ebpf(
        [Package {
            name: "traffic-ebpf",
            root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../traffic-ebpf"),
            // The binaries are behind this feature so that host builds of
            // the workspace leave them out.
            features: &["programs"],
            ..Default::default()
        }],
        Toolchain::default(),
    )
}
