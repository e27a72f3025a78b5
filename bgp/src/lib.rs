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
//!   (RFC 4271 §6.8), IdleHold exponential backoff, per-AFI prefix
//!   limits (RFC 4486) and graceful restart in both roles (RFC 4724, see
//!   below);
//! * [`transport`] (feature `transport`, on by default): a thin tokio driver
//!   and TCP-MD5 (RFC 2385) listener/connector. The fuzz build turns the
//!   feature off, so codec and FSM build without tokio or libc.
//!
//! The crate does not depend on the XDP dataplane: it builds and fuzzes in
//! seconds.
//!
//! # Graceful restart: what the owner (the RIB) does
//!
//! One daemon runs both MSEEs of a circuit, so its restart drops both
//! sessions at once; only graceful restart keeps the customer forwarding
//! through it. [`fsm::Config::graceful_restart`] (`None` by default)
//! turns it on for a session: the Graceful Restart capability goes in our
//! OPEN with its Restart Time ([`fsm::GracefulRestartConfig`]: 120 s by
//! default, as common routers use; at most 4095). The owner's part:
//!
//! * **As the restarting speaker.** A daemon that comes back and finds its
//!   forwarding state in place sets `forwarding_preserved`: its first OPEN
//!   then carries the Restart State bit and each family's Forwarding State
//!   bit, and the peer keeps forwarding to us. After sending its initial
//!   UPDATEs on [`fsm::Action::Established`] the owner sends
//!   [`fsm::Event::InitialUpdateDone`]: an End-of-RIB follows for each
//!   negotiated family. Before it exits for an upgrade it sends
//!   [`fsm::Event::StopForRestart`], which closes the connection without a
//!   NOTIFICATION (a Cease would make the peer drop our routes). Until a
//!   peer's End-of-RIB arrives ([`transport::SessionEvent::EndOfRib`]),
//!   routes found in the preserved forwarding state and not yet
//!   re-learned should be kept, not withdrawn (RFC 4724 §4.1).
//! * **As the helper**, per session ([`transport::SessionEvent`], from the
//!   FSM's [`fsm::Action`] of the same names):
//!   - `Down(reason)`: withdraw every route of the peer, stale ones
//!     included. A NOTIFICATION sent or received, BFD down, carrier loss
//!     and a manual stop always end up here.
//!   - `DownStale { families, restart_time, .. }`: the peer (GR-capable)
//!     lost its connection or let our hold timer expire. Keep its routes
//!     of `families` in the FIB, marked stale; withdraw those of any
//!     other family. Seen again while already stale (a failed attempt to
//!     come back), it changes nothing.
//!   - `Established`, then `Routes(update)`: each route the peer
//!     announces again replaces its stale copy and is no longer stale.
//!   - `PurgeStale { afi, safi, reason }`: withdraw the peer's routes of
//!     that family that are still stale: its End-of-RIB came, its Restart
//!     Time ran out while it was away, the stale time
//!     ([`fsm::GracefulRestartConfig::stale_time`], 360 s) ran out after
//!     it came back without an End-of-RIB, it came back without that
//!     family's Forwarding State bit, or it was lost again before its
//!     End-of-RIB (then a `DownStale` follows for the routes it announced
//!     since).
//!   - `EndOfRib { afi, safi }`: the peer's initial table for the family
//!     is complete (reported with or without graceful restart).
//!
//! The session's link stays usable for forwarding between `DownStale` and
//! the last `PurgeStale`; the FSM meanwhile waits in Active for the peer,
//! so a restarting peer is taken at once.
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
