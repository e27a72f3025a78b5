use which::which;

/// Rebuild the eBPF object when bpf-linker changes (e.g. after `cargo xtask setup`
/// installed a different build of it).
fn main() {
    match which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(_) => println!("cargo:warning=bpf-linker not found: run `cargo xtask setup`"),
    }
}
