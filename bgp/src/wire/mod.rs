//! BGP-4 wire format: the 19-octet header and the five message types.
//!
//! `decode` takes exactly one framed message (use [`frame_len`] to cut a
//! byte stream) and either returns a [`Message`] or a [`DecodeError`] that
//! carries the NOTIFICATION to send. It never panics on any input; the
//! fuzz target and the `no_panic` tests hold it to that.

pub mod as4;
pub mod error;
mod nlri;
pub mod open;
pub mod update;

pub use as4::AsWidth;
pub use error::{DecodeError, EncodeError};
pub use open::{
    AFI_IPV4, AFI_IPV6, AS_TRANS, Capability, GrFamily, GracefulRestart, Open, SAFI_UNICAST,
};
pub use update::{
    AsSegment, AttributeIssue, DecodeOptions, ErrorAction, MpReach, MpUnreach, Origin,
    PathAttribute, Update,
};

use error::header as hsub;

pub const HEADER_LEN: usize = 19;
pub const MAX_MESSAGE_LEN: usize = 4096;
const MARKER: [u8; 16] = [0xff; 16];

/// Message type codes (RFC 4271 §4.1, RFC 2918).
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Self {
            code,
            subcode,
            data,
        }
    }
}

/// ROUTE-REFRESH (RFC 2918 §3). The octet between AFI and SAFI is reserved
/// (a subtype under RFC 7313, which we do not negotiate) and kept as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: u16,
    pub reserved: u8,
    pub safi: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    pub fn type_code(&self) -> u8 {
        match self {
            Message::Open(_) => msg_type::OPEN,
            Message::Update(_) => msg_type::UPDATE,
            Message::Notification(_) => msg_type::NOTIFICATION,
            Message::Keepalive => msg_type::KEEPALIVE,
            Message::RouteRefresh(_) => msg_type::ROUTE_REFRESH,
        }
    }

    /// Encodes header and body for a 4-octet-AS peer; refuses messages
    /// above 4096 octets.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        self.encode_with(AsWidth::Four)
    }

    /// Encodes for a peer whose ASNs are `width` wide (RFC 6793: only
    /// UPDATE's AS_PATH and AGGREGATOR differ).
    pub fn encode_with(&self, width: AsWidth) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MARKER);
        out.extend_from_slice(&[0, 0, self.type_code()]);
        match self {
            Message::Open(o) => o.encode_body(&mut out)?,
            Message::Update(u) => u.encode_body(&mut out, width)?,
            Message::Notification(n) => {
                out.extend_from_slice(&[n.code, n.subcode]);
                out.extend_from_slice(&n.data);
            }
            Message::Keepalive => {}
            Message::RouteRefresh(r) => {
                out.extend_from_slice(&r.afi.to_be_bytes());
                out.extend_from_slice(&[r.reserved, r.safi]);
            }
        }
        if out.len() > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLong(out.len()));
        }
        let len = (out.len() as u16).to_be_bytes();
        out[16..18].copy_from_slice(&len);
        Ok(out)
    }

    /// Decodes one complete message with default options (strict, iBGP
    /// LOCAL_PREF rules).
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        Self::decode_with(buf, DecodeOptions::default())
    }

    pub fn decode_with(buf: &[u8], opts: DecodeOptions) -> Result<Message, DecodeError> {
        let Some(len) = frame_len(buf)? else {
            return Err(DecodeError::bad_length(
                buf.len(),
                "shorter than the BGP header",
            ));
        };
        if len != buf.len() {
            return Err(DecodeError::bad_length(
                len,
                "header length differs from the message",
            ));
        }
        let body = &buf[HEADER_LEN..];
        let bad_len = |reason| Err(DecodeError::bad_length(len, reason));
        match buf[18] {
            msg_type::OPEN => Open::decode_body(body, len).map(Message::Open),
            msg_type::UPDATE => Update::decode_body(body, len, opts).map(Message::Update),
            msg_type::NOTIFICATION => match body {
                [code, subcode, data @ ..] => Ok(Message::Notification(Notification::new(
                    *code,
                    *subcode,
                    data.to_vec(),
                ))),
                _ => bad_len("NOTIFICATION shorter than 21 octets"),
            },
            msg_type::KEEPALIVE if body.is_empty() => Ok(Message::Keepalive),
            msg_type::KEEPALIVE => bad_len("KEEPALIVE longer than 19 octets"),
            msg_type::ROUTE_REFRESH => match body {
                &[a0, a1, reserved, safi] => Ok(Message::RouteRefresh(RouteRefresh {
                    afi: u16::from_be_bytes([a0, a1]),
                    reserved,
                    safi,
                })),
                _ => bad_len("ROUTE-REFRESH length is not 23"),
            },
            t => Err(DecodeError::new(
                error::code::MESSAGE_HEADER,
                hsub::BAD_MESSAGE_TYPE,
                vec![t],
                "unknown message type",
            )),
        }
    }
}

/// Stream framing: `Ok(None)` until a whole header is there, then the total
/// length of the first message once the marker and length are validated
/// (RFC 4271 §6.1). The caller waits until that many octets are buffered.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16] != MARKER {
        return Err(DecodeError::new(
            error::code::MESSAGE_HEADER,
            hsub::CONNECTION_NOT_SYNCHRONIZED,
            vec![],
            "marker is not all ones",
        ));
    }
    let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(DecodeError::bad_length(len, "length outside 19..=4096"));
    }
    Ok(Some(len))
}
