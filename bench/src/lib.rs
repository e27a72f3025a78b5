//! The benchmarks behind `cargo xtask bench` and BENCHMARKS.md, one module
//! per subject, each with what it measures (JSON, printed by `msee-bench`)
//! and its part of the report (rendered from that JSON by
//! `msee-bench report`):
//!
//! - [`per_packet`]: `msee` against the `baseline` forwarder per packet
//!   through `BPF_PROG_TEST_RUN`, and where msee's time goes;
//! - [`destinations`]: the same to many destinations (msee's caches);
//! - [`install_api`], [`install_bgp`]: route installation through the
//!   dataplane API and from a real BGP peer;
//! - [`lab`]: forwarded packets per second through the lab;
//! - [`generators`]: the packet engine's generator rates;
//! - [`failover`]: the failover rehearsals;
//! - [`scale`]: one daemon running 100 circuits: start, memory, per packet;
//! - [`spin`]: one configuration forwarding for a profiler (no report).
//!
//! [`fixture`] is the msee the per-packet and install benchmarks time,
//! [`throughput`] the rig on real interfaces, [`bird`] the BGP peer of the
//! install, [`report`] the document and [`stats`] the summaries.
#![forbid(unsafe_code)]
pub mod bird;
pub mod destinations;
pub mod failover;
pub mod faults;
pub mod fixture;
pub mod generators;
pub mod install_api;
pub mod install_bgp;
pub mod kernel_routes;
pub mod lab;
pub mod per_packet;
pub mod report;
pub mod scale;
pub mod spin;
pub mod stats;
pub mod throughput;

use std::path::PathBuf;

/// `msee-bench dataplane`: what it measures and how long.
#[derive(clap::Args, Debug)]
pub struct DataplaneArgs {
    /// Recorded rounds of interleaved baseline/msee samples.
    #[arg(long, default_value_t = 10, value_parser = at_least_one())]
    pub rounds: usize,
    /// BPF_PROG_TEST_RUN calls (of 250 runs each) per sample.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub calls: u32,
    /// Rounds of the lab and generator throughput samples (0: skip them).
    #[arg(long, default_value_t = 15)]
    pub lab_rounds: usize,
    /// Route installation only (`install`: through the API and from a BGP
    /// peer; `bgp-install`: from a BGP peer), or the per-packet sections
    /// only (`per-packet`: no lab, no installation).
    #[arg(long, value_enum)]
    pub only: Option<Only>,
    /// Runs per table size of the install from a BGP peer (0: skip it).
    #[arg(long, default_value_t = 3)]
    pub install_runs: usize,
    /// Table sizes of the install from a BGP peer, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = [10_000, 1_000_000],
        value_parser = at_least_one(),
    )]
    pub install_prefixes: Vec<usize>,
    /// The daemon's forwarding table slots in the install from a BGP peer
    /// (0: none, the LPM trie alone, to compare with).
    #[arg(long)]
    pub install_fib_slots: Option<u32>,
    /// Another build of the msee object, loaded next to the embedded one
    /// and measured in the same rounds.
    #[arg(long)]
    pub compare_object: Option<PathBuf>,
    /// Calls of one run each per sample of the many-destinations figures
    /// (0: skip them).
    #[arg(long, default_value_t = 4 * msee_abi::ROUTE_CACHE_V4_SLOTS)]
    pub cold_calls: u32,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Only {
    Install,
    BgpInstall,
    PerPacket,
}

/// A count that must be at least 1.
pub fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}
