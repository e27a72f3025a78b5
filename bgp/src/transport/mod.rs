//! Thin tokio glue: runs a sans-IO [`Session`](crate::fsm::Session) over a
//! TCP connection, and opens TCP-MD5 (RFC 2385) sockets bound to a chosen
//! local address. All protocol decisions stay in the FSM; this module only
//! moves octets, keeps timer deadlines and reports upward.

mod driver;
mod socket;

pub use driver::{Input, PeerConfig, SessionEvent, run};
pub use socket::{PeerTable, accept_loop, connect, listen, set_md5sig};

/// The BGP port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;
