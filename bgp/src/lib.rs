//! BGP-4 speaker core of the emulated MSEE (AS 12076).
//!
//! * [`wire`]: codec for OPEN, UPDATE, NOTIFICATION, KEEPALIVE and
//!   ROUTE-REFRESH with RFC 4271 §6 / RFC 7606 error handling;
//! * [`fsm`]: the RFC 4271 session state machine, sans-IO;
//! * [`transport`]: a thin tokio driver with TCP-MD5 (RFC 2385) sockets.
//!
//! # Why our own codec
//!
//! Evaluated (Rust 1.95, crates.io as of this commit):
//! * `netgauze-bgp-pkt` 0.13: complete, but ~32k lines plus `netgauze-iana`,
//!   `strum` and mandatory `serde`; no MSRV declared; heavy for a crate that
//!   must stay fast to build and fuzz.
//! * `zettabgp` 0.6: ~12k lines, depends on `log`, no RFC 7606
//!   dispositions, so a malformed attribute can't be told from a reset.
//! * `rustbgpd-wire` 0.27: the closest fit (MSRV 1.95, RFC 7606
//!   dispositions, 4-octet AS, MP-BGP, route refresh), but ~30k lines, a
//!   0.x API that has changed 27 times, one maintainer, and a NOTIFICATION
//!   mapping we would still have to adapt to our FSM.
//!
//! What the MSEE needs is small: IPv4/IPv6 unicast, 4-octet AS, route
//! refresh, communities, and exact NOTIFICATIONs. About a thousand lines
//! we own, fuzz and test against the RFCs cost less than tracking a large
//! dependency, so the codec is written here.

pub mod fsm;
#[cfg(feature = "transport")]
pub mod transport;
pub mod wire;

/// Microsoft's AS, the MSEE side of every ExpressRoute BGP session.
pub const MSEE_ASN: u32 = 12076;
