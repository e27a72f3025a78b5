//! The BFD Control packet (RFC 5880 §4.1): the 24-octet mandatory section.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! ```
//!
//! [`ControlPacket::decode`] applies every check of RFC 5880 §6.8.6 that
//! needs no session state (version, length, detect multiplier, multipoint,
//! discriminators) and says which one failed; the session applies the rest
//! (discriminator match, authentication). An authentication section, when
//! the A bit is set, is length-checked and otherwise ignored: this
//! implementation configures no authentication, so such packets are
//! discarded by the session.

use thiserror::Error;

/// The protocol version this implementation speaks.
pub const VERSION: u8 = 1;
/// Octets of the mandatory section, and of every packet we send.
pub const PACKET_LEN: usize = 24;
/// Smallest Length with the A bit set: the mandatory section plus the
/// authentication section's type and length octets.
pub const MIN_AUTH_LEN: usize = PACKET_LEN + 2;

const P_BIT: u8 = 0x20;
const F_BIT: u8 = 0x10;
const C_BIT: u8 = 0x08;
const A_BIT: u8 = 0x04;
const D_BIT: u8 = 0x02;
const M_BIT: u8 = 0x01;

/// Session state (RFC 5880 §4.1 "Sta"), as carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    /// From the two-bit field (higher bits are ignored).
    pub fn from_bits(b: u8) -> Self {
        match b & 0x3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    pub fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Diagnostic code (RFC 5880 §4.1 "Diag"): the reason for the sender's
/// last state change. Codes 9-31 are reserved and kept as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Diag {
    None,
    ControlDetectionTimeExpired,
    EchoFailed,
    NeighborSignaledDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdminDown,
    ReverseConcatenatedPathDown,
    Unknown(u8),
}

impl Diag {
    /// From the five-bit field (higher bits are ignored).
    pub fn from_code(c: u8) -> Self {
        match c & 0x1f {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFailed,
            3 => Diag::NeighborSignaledDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdminDown,
            8 => Diag::ReverseConcatenatedPathDown,
            c => Diag::Unknown(c),
        }
    }

    /// The wire code (an `Unknown` code keeps its low five bits).
    pub fn code(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFailed => 2,
            Diag::NeighborSignaledDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdminDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Unknown(c) => c & 0x1f,
        }
    }
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// The mandatory section of a BFD Control packet. Intervals are in
/// microseconds, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    pub version: u8,
    pub diag: Diag,
    pub state: State,
    pub poll: bool,
    pub fin: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub cpi: bool,
    /// A: an authentication section follows.
    pub auth: bool,
    pub demand: bool,
    pub multipoint: bool,
    pub detect_mult: u8,
    pub my_disc: u32,
    pub your_disc: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

impl Default for ControlPacket {
    /// Version 1, Down, no flags, detect multiplier 3, everything else zero
    /// (so `my_disc` must still be set for the packet to be valid).
    fn default() -> Self {
        Self {
            version: VERSION,
            diag: Diag::None,
            state: State::Down,
            poll: false,
            fin: false,
            cpi: false,
            auth: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_disc: 0,
            your_disc: 0,
            desired_min_tx_us: 0,
            required_min_rx_us: 0,
            required_min_echo_rx_us: 0,
        }
    }
}

/// Why a received packet is not a valid BFD Control packet. Each variant is
/// one rule of RFC 5880 §6.8.6 (or a datagram too short to hold the
/// mandatory section at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("{len} octets: shorter than the 24-octet mandatory section")]
    Truncated { len: usize },
    #[error("version {0}, not 1")]
    Version(u8),
    #[error("Length {length} is below the minimum ({min} with the A bit {auth})")]
    LengthTooSmall { length: u8, auth: bool, min: usize },
    #[error("Length {length} exceeds the {payload}-octet UDP payload")]
    LengthExceedsPayload { length: u8, payload: usize },
    #[error("Detect Mult is zero")]
    DetectMultZero,
    #[error("the Multipoint (M) bit is set")]
    Multipoint,
    #[error("My Discriminator is zero")]
    MyDiscriminatorZero,
    #[error("Your Discriminator is zero in state {0}")]
    YourDiscriminatorZero(State),
}

impl ControlPacket {
    /// The 24-octet mandatory section. The Length field is always 24: no
    /// authentication section is ever written (the A bit is copied as is,
    /// which only tests use).
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[0] = (self.version & 0x7) << 5 | self.diag.code();
        b[1] = self.state.bits() << 6
            | if self.poll { P_BIT } else { 0 }
            | if self.fin { F_BIT } else { 0 }
            | if self.cpi { C_BIT } else { 0 }
            | if self.auth { A_BIT } else { 0 }
            | if self.demand { D_BIT } else { 0 }
            | if self.multipoint { M_BIT } else { 0 };
        b[2] = self.detect_mult;
        b[3] = PACKET_LEN as u8;
        b[4..8].copy_from_slice(&self.my_disc.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_disc.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx_us.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx_us.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx_us.to_be_bytes());
        b
    }

    /// Decodes a UDP payload and applies the stateless reception checks of
    /// RFC 5880 §6.8.6, in the RFC's order. Never panics.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < PACKET_LEN {
            return Err(DecodeError::Truncated { len: b.len() });
        }
        let version = b[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let flags = b[1];
        let auth = flags & A_BIT != 0;
        let length = b[3];
        let min = if auth { MIN_AUTH_LEN } else { PACKET_LEN };
        if usize::from(length) < min {
            return Err(DecodeError::LengthTooSmall { length, auth, min });
        }
        if usize::from(length) > b.len() {
            return Err(DecodeError::LengthExceedsPayload {
                length,
                payload: b.len(),
            });
        }
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let p = Self {
            version,
            diag: Diag::from_code(b[0]),
            state: State::from_bits(flags >> 6),
            poll: flags & P_BIT != 0,
            fin: flags & F_BIT != 0,
            cpi: flags & C_BIT != 0,
            auth,
            demand: flags & D_BIT != 0,
            multipoint: flags & M_BIT != 0,
            detect_mult: b[2],
            my_disc: word(4),
            your_disc: word(8),
            desired_min_tx_us: word(12),
            required_min_rx_us: word(16),
            required_min_echo_rx_us: word(20),
        };
        p.check()?;
        Ok(p)
    }

    /// The field rules of RFC 5880 §6.8.6 that need no session state:
    /// version, Detect Mult, M bit, My Discriminator, and Your
    /// Discriminator zero only in Down or AdminDown. [`decode`] applies
    /// them; the session applies them again to packets handed to it
    /// already decoded.
    ///
    /// [`decode`]: ControlPacket::decode
    pub fn check(&self) -> Result<(), DecodeError> {
        if self.version != VERSION {
            return Err(DecodeError::Version(self.version));
        }
        if self.detect_mult == 0 {
            return Err(DecodeError::DetectMultZero);
        }
        if self.multipoint {
            return Err(DecodeError::Multipoint);
        }
        if self.my_disc == 0 {
            return Err(DecodeError::MyDiscriminatorZero);
        }
        if self.your_disc == 0 && !matches!(self.state, State::Down | State::AdminDown) {
            return Err(DecodeError::YourDiscriminatorZero(self.state));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ControlPacket {
        ControlPacket {
            diag: Diag::NeighborSignaledDown,
            state: State::Up,
            poll: true,
            detect_mult: 3,
            my_disc: 0x0102_0304,
            your_disc: 0x0506_0708,
            desired_min_tx_us: 300_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 50_000,
            ..ControlPacket::default()
        }
    }

    #[test]
    fn layout_matches_rfc_5880_section_4_1() {
        let b = valid().encode();
        assert_eq!(
            b,
            [
                0x23, 0xe0, 3, 24, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0x04, 0x93, 0xe0, 0, 0x04, 0x93,
                0xe0, 0, 0, 0xc3, 0x50
            ]
        );
        let all_flags = ControlPacket {
            state: State::Down,
            your_disc: 0,
            poll: true,
            fin: true,
            cpi: true,
            auth: true,
            demand: true,
            multipoint: true,
            ..valid()
        };
        assert_eq!(all_flags.encode()[1], 0x40 | 0x3f);
    }

    #[test]
    fn state_and_diag_codes() {
        for b in 0..4 {
            assert_eq!(State::from_bits(b).bits(), b);
        }
        for c in 0..32 {
            let d = Diag::from_code(c);
            assert_eq!(d.code(), c);
            assert_eq!(matches!(d, Diag::Unknown(_)), c > 8);
        }
        assert_eq!(Diag::from_code(1), Diag::ControlDetectionTimeExpired);
        assert_eq!(Diag::from_code(3), Diag::NeighborSignaledDown);
        assert_eq!(Diag::from_code(7), Diag::AdminDown);
    }

    #[test]
    fn every_reception_rule_is_named() {
        let ok = valid().encode();
        assert_eq!(ControlPacket::decode(&ok), Ok(valid()));
        assert_eq!(
            ControlPacket::decode(&ok[..23]),
            Err(DecodeError::Truncated { len: 23 })
        );
        let with = |f: &dyn Fn(&mut [u8; 24])| {
            let mut b = ok;
            f(&mut b);
            ControlPacket::decode(&b)
        };
        assert_eq!(
            with(&|b| b[0] = 2 << 5),
            Err(DecodeError::Version(2)),
            "version 2"
        );
        assert_eq!(with(&|b| b[0] = 0), Err(DecodeError::Version(0)));
        assert_eq!(
            with(&|b| b[3] = 23),
            Err(DecodeError::LengthTooSmall {
                length: 23,
                auth: false,
                min: 24
            })
        );
        assert_eq!(
            with(&|b| b[3] = 25),
            Err(DecodeError::LengthExceedsPayload {
                length: 25,
                payload: 24
            })
        );
        // The A bit needs room for the auth type and length.
        assert_eq!(
            with(&|b| b[1] |= A_BIT),
            Err(DecodeError::LengthTooSmall {
                length: 24,
                auth: true,
                min: 26
            })
        );
        assert_eq!(with(&|b| b[2] = 0), Err(DecodeError::DetectMultZero));
        assert_eq!(with(&|b| b[1] |= M_BIT), Err(DecodeError::Multipoint));
        assert_eq!(
            with(&|b| b[4..8].fill(0)),
            Err(DecodeError::MyDiscriminatorZero)
        );
        assert_eq!(
            with(&|b| b[8..12].fill(0)),
            Err(DecodeError::YourDiscriminatorZero(State::Up))
        );
        assert_eq!(
            with(&|b| {
                b[8..12].fill(0);
                b[1] = (b[1] & 0x3f) | 2 << 6;
            }),
            Err(DecodeError::YourDiscriminatorZero(State::Init))
        );
        // Your Discriminator zero is fine in Down and AdminDown.
        for state in [State::Down, State::AdminDown] {
            let p = ControlPacket {
                state,
                your_disc: 0,
                ..valid()
            };
            assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
        }
    }

    #[test]
    fn longer_payloads_and_auth_sections() {
        // Octets past Length are ignored; a Length short of the payload is fine.
        let mut b = valid().encode().to_vec();
        b.extend_from_slice(&[0xaa; 8]);
        assert_eq!(ControlPacket::decode(&b), Ok(valid()));
        // With the A bit and a 2-octet auth header the packet decodes (the
        // session discards it: no authentication is configured).
        b[1] |= A_BIT;
        b[3] = 26;
        let p = ControlPacket::decode(&b).unwrap();
        assert!(p.auth);
        assert_eq!(
            ControlPacket { auth: false, ..p },
            valid(),
            "fields other than A unchanged"
        );
    }
}
