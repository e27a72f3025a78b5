//! BGP-4 speaker core of the emulated MSEE (AS 12076).
//!
//! * [`wire`]: codec for OPEN, UPDATE, NOTIFICATION, KEEPALIVE and
//!   ROUTE-REFRESH, in 4-octet or 2-octet ASNs (AS_TRANS and AS4_PATH,
//!   RFC 6793), the Graceful Restart capability and End-of-RIB markers
//!   (RFC 4724), with RFC 4271 §6 / RFC 7606 error handling: every
//!   session-reset error carries the exact NOTIFICATION to send, and
//!   treat-as-withdraw / attribute-discard cases decode into an
//!   [`wire::Update`] that says what was done and why;
//! * [`fsm`]: the RFC 4271 session state machine, sans-IO
//!   (`Session::handle(event, now) -> Vec<Action>`), with OPEN negotiation
//!   (2-octet-AS peers included, RFC 6793), connection collision detection
//!   (RFC 4271 §6.8), IdleHold exponential backoff and per-AFI prefix
//!   limits (RFC 4486);
//! * [`transport`] (feature `transport`, on by default): a thin tokio driver
//!   and TCP-MD5 (RFC 2385) listener/connector. The fuzz build turns the
//!   feature off, so codec and FSM build without tokio or libc.
//!
//! The crate does not depend on the XDP dataplane: it builds and fuzzes in
//! seconds.
//!
//! # Why our own codec
//!
//! Evaluated against Rust 1.95 from each crate's published manifest and
//! source (`cargo info`, the downloaded crate):
//! * `netgauze-bgp-pkt` 0.13: complete, but ~32k lines plus `netgauze-iana`,
//!   `strum` and (by default) `serde`; no MSRV declared; heavy for a crate
//!   that must stay fast to build and fuzz.
//! * `zettabgp` 0.6: ~12k lines, depends on `log`, and has no RFC 7606
//!   dispositions, so a malformed attribute can't be told from a reset.
//! * `rustbgpd-wire` 0.27: the closest fit (MSRV 1.95, RFC 7606
//!   dispositions, 4-octet AS, MP-BGP, route refresh), but ~30k lines, a
//!   0.x API on its 27th minor release, one maintainer, and a NOTIFICATION
//!   mapping we would still have to adapt to our FSM.
//!
//! What the MSEE needs is small: IPv4/IPv6 unicast, 4-octet AS, route
//! refresh, communities and exact NOTIFICATIONs. About 1,200 lines that we
//! own, fuzz and test against the RFCs cost less than tracking a large
//! dependency, so the codec is written here. Prefixes use `ipnet`, already
//! a workspace dependency.

pub mod fsm;
#[cfg(feature = "transport")]
pub mod transport;
pub mod wire;

/// Microsoft's AS, the MSEE side of every ExpressRoute BGP session.
pub const MSEE_ASN: u32 = 12076;
