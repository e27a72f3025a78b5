//! OPEN message and capabilities (RFC 4271 §4.2, RFC 5492, RFC 4760,
//! RFC 6793, RFC 2918, RFC 4724).

use super::error::{DecodeError, EncodeError, open as sub};
use std::net::Ipv4Addr;

/// The 2-octet "My Autonomous System" placeholder when the real AS does not
/// fit (RFC 6793 §9).
pub const AS_TRANS: u16 = 23456;

/// Address family identifiers we speak (RFC 4760, IANA).
pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
pub const SAFI_UNICAST: u8 = 1;

/// Capability codes (IANA "Capability Codes").
pub mod cap {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
}

/// The largest Restart Time the capability can carry (12 bits, seconds).
pub const MAX_RESTART_TIME: u16 = 0x0fff;

/// Restart Flags bit "R" (RFC 4724 §3): the sender has restarted.
const RESTART_STATE: u8 = 0x80;
/// Per-family flags bit "F": forwarding state was preserved.
const FORWARDING_STATE: u8 = 0x80;

/// One address family of the Graceful Restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrFamily {
    pub afi: u16,
    pub safi: u8,
    /// "F": the forwarding state of this family was preserved across the
    /// sender's previous restart.
    pub forwarding_state: bool,
}

/// The Graceful Restart capability (RFC 4724 §3). Reserved bits are sent
/// as zero and ignored on receipt, so they are not kept; that includes
/// RFC 8538's "N" bit, which we do not implement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestart {
    /// "R": the sender has restarted; its peer must not wait for its
    /// End-of-RIB before advertising to it.
    pub restart_state: bool,
    /// Seconds the sender expects to take to re-establish the session
    /// (12 bits: at most [`MAX_RESTART_TIME`]).
    pub restart_time: u16,
    pub families: Vec<GrFamily>,
}

impl GracefulRestart {
    /// The family entry for `afi`/`safi`, if the sender listed it.
    pub fn family(&self, afi: u16, safi: u8) -> Option<&GrFamily> {
        self.families
            .iter()
            .find(|f| f.afi == afi && f.safi == safi)
    }
}

/// The only optional parameter defined today (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Multiprotocol extensions for one AFI/SAFI (RFC 4760 §8).
    Multiprotocol { afi: u16, safi: u8 },
    /// Route refresh (RFC 2918).
    RouteRefresh,
    /// Support for 4-octet AS numbers, carrying the real AS (RFC 6793).
    FourOctetAs(u32),
    /// Graceful restart (RFC 4724).
    GracefulRestart(GracefulRestart),
    /// Anything else, kept verbatim so a peer's offer can be logged.
    Unknown { code: u8, value: Vec<u8> },
}

impl Capability {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Capability::Multiprotocol { afi, safi } => {
                out.extend_from_slice(&[cap::MULTIPROTOCOL, 4]);
                out.extend_from_slice(&afi.to_be_bytes());
                out.extend_from_slice(&[0, *safi]);
            }
            Capability::RouteRefresh => out.extend_from_slice(&[cap::ROUTE_REFRESH, 0]),
            Capability::FourOctetAs(asn) => {
                out.extend_from_slice(&[cap::FOUR_OCTET_AS, 4]);
                out.extend_from_slice(&asn.to_be_bytes());
            }
            Capability::GracefulRestart(gr) => {
                if gr.restart_time > MAX_RESTART_TIME {
                    return Err(EncodeError::FieldTooLong("graceful restart time"));
                }
                let len = u8::try_from(2 + 4 * gr.families.len())
                    .map_err(|_| EncodeError::FieldTooLong("graceful restart capability"))?;
                out.extend_from_slice(&[cap::GRACEFUL_RESTART, len]);
                let flags = if gr.restart_state { RESTART_STATE } else { 0 };
                out.extend_from_slice(&(u16::from(flags) << 8 | gr.restart_time).to_be_bytes());
                for f in &gr.families {
                    out.extend_from_slice(&f.afi.to_be_bytes());
                    let fl = if f.forwarding_state {
                        FORWARDING_STATE
                    } else {
                        0
                    };
                    out.extend_from_slice(&[f.safi, fl]);
                }
            }
            Capability::Unknown { code, value } => {
                let len = u8::try_from(value.len())
                    .map_err(|_| EncodeError::FieldTooLong("capability value"))?;
                out.extend_from_slice(&[*code, len]);
                out.extend_from_slice(value);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// Always 4 once decoded (other versions are refused at decode time).
    pub version: u8,
    /// The 2-octet AS field as sent: the real AS or [`AS_TRANS`].
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// Builds our OPEN: 4-octet AS capability always, AS_TRANS in the
    /// 2-octet field when `asn` does not fit, route refresh, and one
    /// multiprotocol capability per family.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, families: &[(u16, u8)]) -> Self {
        let mut capabilities: Vec<Capability> = families
            .iter()
            .map(|&(afi, safi)| Capability::Multiprotocol { afi, safi })
            .collect();
        capabilities.push(Capability::RouteRefresh);
        capabilities.push(Capability::FourOctetAs(asn));
        Open {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The real AS of the sender: the 4-octet capability wins (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    pub fn supports_family(&self, afi: u16, safi: u8) -> bool {
        self.capabilities
            .contains(&Capability::Multiprotocol { afi, safi })
    }

    /// Whether the sender advertised any multiprotocol capability; without
    /// one, RFC 4760 §8 implies IPv4 unicast only.
    pub fn has_multiprotocol(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { .. }))
    }

    pub fn supports_route_refresh(&self) -> bool {
        self.capabilities.contains(&Capability::RouteRefresh)
    }

    /// The Graceful Restart capability: the last one when several were
    /// sent (RFC 4724 §3).
    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().rev().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr),
            _ => None,
        })
    }

    /// Body (after the header). Each capability travels in its own optional
    /// parameter, which RFC 5492 §4 allows and keeps every length < 256.
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let len_at = out.len();
        out.push(0);
        for c in &self.capabilities {
            out.extend_from_slice(&[PARAM_CAPABILITIES, 0]);
            let start = out.len();
            c.encode(out)?;
            out[start - 1] = u8::try_from(out.len() - start)
                .map_err(|_| EncodeError::FieldTooLong("optional parameter"))?;
        }
        out[len_at] = u8::try_from(out.len() - len_at - 1)
            .map_err(|_| EncodeError::FieldTooLong("optional parameters length"))?;
        Ok(())
    }

    /// Syntax checks only; AS, hold time and identifier are judged by the
    /// FSM, which knows the configuration.
    pub(crate) fn decode_body(body: &[u8], msg_len: usize) -> Result<Open, DecodeError> {
        if body.len() < 10 {
            return Err(DecodeError::bad_length(
                msg_len,
                "OPEN shorter than 29 octets",
            ));
        }
        let version = body[0];
        if version != 4 {
            // Data: the largest version we support (RFC 4271 §6.2).
            return Err(DecodeError::open(
                sub::UNSUPPORTED_VERSION,
                vec![0, 4],
                "BGP version is not 4",
            ));
        }
        let my_as = u16::from_be_bytes([body[1], body[2]]);
        let hold_time = u16::from_be_bytes([body[3], body[4]]);
        let bgp_id = Ipv4Addr::new(body[5], body[6], body[7], body[8]);
        let opt_len = usize::from(body[9]);
        let mut params = &body[10..];
        if params.len() != opt_len {
            return Err(DecodeError::open(
                sub::UNSPECIFIC,
                Vec::new(),
                "optional parameters length disagrees with message length",
            ));
        }
        let mut capabilities = Vec::new();
        while !params.is_empty() {
            if params.len() < 2 || params.len() < 2 + usize::from(params[1]) {
                return Err(DecodeError::open(
                    sub::UNSPECIFIC,
                    Vec::new(),
                    "optional parameter overruns the parameters field",
                ));
            }
            let (ptype, plen) = (params[0], usize::from(params[1]));
            let value = &params[2..2 + plen];
            if ptype != PARAM_CAPABILITIES {
                return Err(DecodeError::open(
                    sub::UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                    "optional parameter other than capabilities",
                ));
            }
            decode_capabilities(value, &mut capabilities)?;
            params = &params[2 + plen..];
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }
}

fn decode_capabilities(mut buf: &[u8], out: &mut Vec<Capability>) -> Result<(), DecodeError> {
    let malformed = |reason| DecodeError::open(sub::UNSPECIFIC, Vec::new(), reason);
    while !buf.is_empty() {
        if buf.len() < 2 || buf.len() < 2 + usize::from(buf[1]) {
            return Err(malformed("capability overruns its parameter"));
        }
        let (code, len) = (buf[0], usize::from(buf[1]));
        let v = &buf[2..2 + len];
        out.push(match code {
            cap::MULTIPROTOCOL if len == 4 => Capability::Multiprotocol {
                afi: u16::from_be_bytes([v[0], v[1]]),
                safi: v[3],
            },
            cap::MULTIPROTOCOL => {
                return Err(malformed("multiprotocol capability length is not 4"));
            }
            cap::ROUTE_REFRESH if len == 0 => Capability::RouteRefresh,
            cap::ROUTE_REFRESH => return Err(malformed("route refresh capability has a value")),
            cap::FOUR_OCTET_AS if len == 4 => {
                Capability::FourOctetAs(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
            }
            cap::FOUR_OCTET_AS => return Err(malformed("4-octet AS capability length is not 4")),
            cap::GRACEFUL_RESTART if len >= 2 && (len - 2).is_multiple_of(4) => {
                let word = u16::from_be_bytes([v[0], v[1]]);
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: v[0] & RESTART_STATE != 0,
                    restart_time: word & MAX_RESTART_TIME,
                    families: v[2..]
                        .chunks_exact(4)
                        .map(|f| GrFamily {
                            afi: u16::from_be_bytes([f[0], f[1]]),
                            safi: f[2],
                            forwarding_state: f[3] & FORWARDING_STATE != 0,
                        })
                        .collect(),
                })
            }
            cap::GRACEFUL_RESTART => {
                return Err(malformed(
                    "graceful restart capability length is not 2 + 4 per family",
                ));
            }
            _ => Capability::Unknown {
                code,
                value: v.to_vec(),
            },
        });
        buf = &buf[2 + len..];
    }
    Ok(())
}
