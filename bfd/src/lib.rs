//! Single-hop asynchronous BFD (RFC 5880, RFC 5881) for the emulated MSEE.
//!
//! ExpressRoute runs BFD on every peering (300 ms x 3 by default). The
//! daemon runs one session per customer link: a session going Down flips
//! the link in the dataplane and brings its BGP session down.
//!
//! * [`wire`]: the Control packet codec with the stateless reception
//!   checks of RFC 5880 §6.8.6, each failure named by [`wire::DecodeError`];
//! * [`session`]: one session, sans-IO (`Session::handle(event, now) ->
//!   Vec<Action>`): three-way handshake, detection, AdminDown, Poll/Final,
//!   jittered transmission, discard counters;
//! * [`transport`] (feature `transport`, on by default): every session on
//!   one tokio task, UDP port 3784 with TTL 255 both ways (RFC 5881),
//!   timers on `Instant` deadlines. The fuzz build turns it off, so codec
//!   and session build without tokio.
//!
//! The codec is 24 octets with no authentication: small enough to own and
//! fuzz, as the `bgp` crate does with its codec.
#![forbid(unsafe_code)]

pub mod session;
#[cfg(feature = "transport")]
pub mod transport;
pub mod wire;

pub use session::{Action, Config, Event, Session, Status, Timer};
pub use wire::{ControlPacket, DecodeError, Diag, State};

/// UDP destination port of single-hop BFD Control packets (RFC 5881 §4).
pub const CONTROL_PORT: u16 = 3784;
/// Source ports of single-hop BFD Control packets (RFC 5881 §4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
