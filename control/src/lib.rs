//! The MSEE control plane: preflight checks, port discovery and neighbour
//! resolution over netlink, link health (carrier, BGP, BFD) and failover,
//! the BGP speaker with its RIB and FIB programming, the local API, and the
//! daemon that drives the dataplane.
pub mod api;
pub mod cli;
pub mod daemon;
pub mod detectors;
pub mod estate;
pub mod health;
pub mod linkmon;
pub mod metrics;
pub mod netlink;
pub mod preflight;
pub mod rib;
pub mod speaker;
pub mod state_dir;
pub mod stats;
pub mod usage;
