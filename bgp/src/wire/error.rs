//! NOTIFICATION codes (RFC 4271 §4.5, RFC 4486, RFC 6608) and the decode error.
//!
//! Every decode failure that resets the session carries the exact
//! NOTIFICATION to send, so the FSM never has to re-derive codes from prose.

use super::Notification;

/// Error codes (RFC 4271 §4.5).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
}

/// Message Header Error subcodes (RFC 4271 §6.1).
pub mod header {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492).
pub mod open {
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
}

/// UPDATE Message Error subcodes (RFC 4271 §6.3).
pub mod update {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const INVALID_NEXT_HOP: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Finite State Machine Error subcodes (RFC 6608).
pub mod fsm {
    pub const UNSPECIFIED: u8 = 0;
    pub const UNEXPECTED_IN_OPENSENT: u8 = 1;
    pub const UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
}

/// Cease subcodes (RFC 4486, RFC 9384).
pub mod cease {
    pub const MAX_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    /// RFC 9384: the session's BFD went down.
    pub const BFD_DOWN: u8 = 10;
}

/// A message that cannot be accepted: the session must be reset with
/// `notification` (RFC 4271 §6 "session reset" / RFC 7606 §2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (NOTIFICATION {c}/{s})", c = .notification.code, s = .notification.subcode)]
pub struct DecodeError {
    /// The NOTIFICATION to send before closing.
    pub notification: Notification,
    /// Human-readable cause, for logs.
    pub reason: &'static str,
}

impl DecodeError {
    pub(crate) fn new(code: u8, subcode: u8, data: Vec<u8>, reason: &'static str) -> Self {
        Self {
            notification: Notification {
                code,
                subcode,
                data,
            },
            reason,
        }
    }

    /// Message Header Error / Bad Message Length; the data is the offending length.
    pub(crate) fn bad_length(len: usize, reason: &'static str) -> Self {
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        Self::new(
            code::MESSAGE_HEADER,
            header::BAD_MESSAGE_LENGTH,
            len.to_be_bytes().to_vec(),
            reason,
        )
    }

    pub(crate) fn open(subcode: u8, data: Vec<u8>, reason: &'static str) -> Self {
        Self::new(code::OPEN_MESSAGE, subcode, data, reason)
    }

    pub(crate) fn update(subcode: u8, data: Vec<u8>, reason: &'static str) -> Self {
        Self::new(code::UPDATE_MESSAGE, subcode, data, reason)
    }
}

/// Encoding refused: BGP messages are capped at 4096 octets (RFC 4271 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {0} octets exceeds the 4096-octet BGP maximum")]
    TooLong(usize),
    #[error("{0} does not fit its length field")]
    FieldTooLong(&'static str),
}
