//! The MSEE control plane. For now: preflight checks, port discovery and
//! neighbour resolution over netlink, and the daemon that drives the
//! dataplane. (BGP, BFD, the circuit model and the CLI grow here.)
pub mod api;
pub mod daemon;
pub mod linkmon;
pub mod netlink;
pub mod preflight;
pub mod rib;
pub mod speaker;
pub mod stats;
