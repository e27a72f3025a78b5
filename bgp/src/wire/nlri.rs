//! Prefix encoding shared by the UPDATE NLRI/withdrawn fields and
//! MP_REACH/MP_UNREACH (RFC 4271 §4.3, RFC 4760 §5): a length octet followed
//! by the minimum number of octets holding that many bits.

use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a prefix list could not be parsed (the caller picks the NOTIFICATION).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NlriError {
    /// Prefix length above 32 (IPv4) or 128 (IPv6).
    BadLength,
    /// The prefix octets run past the end of the field.
    Overrun,
}

fn decode<const N: usize>(mut buf: &[u8]) -> Result<Vec<([u8; N], u8)>, NlriError> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = buf.split_first() {
        if usize::from(len) > N * 8 {
            return Err(NlriError::BadLength);
        }
        let n = usize::from(len).div_ceil(8);
        if rest.len() < n {
            return Err(NlriError::Overrun);
        }
        let mut addr = [0u8; N];
        addr[..n].copy_from_slice(&rest[..n]);
        out.push((addr, len));
        buf = &rest[n..];
    }
    Ok(out)
}

fn encode(octets: &[u8], len: u8, out: &mut Vec<u8>) {
    out.push(len);
    out.extend_from_slice(&octets[..usize::from(len).div_ceil(8)]);
}

/// Decodes IPv4 prefixes; bits past the prefix length are cleared (they are
/// "irrelevant" per RFC 4271 and must not make two equal routes differ).
pub(crate) fn decode_v4(buf: &[u8]) -> Result<Vec<Ipv4Net>, NlriError> {
    Ok(decode::<4>(buf)?
        .into_iter()
        .map(|(a, l)| {
            Ipv4Net::new(Ipv4Addr::from(a), l)
                .expect("length checked")
                .trunc()
        })
        .collect())
}

pub(crate) fn decode_v6(buf: &[u8]) -> Result<Vec<Ipv6Net>, NlriError> {
    Ok(decode::<16>(buf)?
        .into_iter()
        .map(|(a, l)| {
            Ipv6Net::new(Ipv6Addr::from(a), l)
                .expect("length checked")
                .trunc()
        })
        .collect())
}

pub(crate) fn encode_v4(prefixes: &[Ipv4Net], out: &mut Vec<u8>) {
    for p in prefixes {
        encode(&p.network().octets(), p.prefix_len(), out);
    }
}

pub(crate) fn encode_v6(prefixes: &[Ipv6Net], out: &mut Vec<u8>) {
    for p in prefixes {
        encode(&p.network().octets(), p.prefix_len(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bits_are_masked() {
        // 10.1.255.0/17 on the wire with junk in the host bits of the last octet.
        let v = decode_v4(&[17, 10, 1, 0xff]).unwrap();
        assert_eq!(v, vec!["10.1.128.0/17".parse::<Ipv4Net>().unwrap()]);
    }

    #[test]
    fn default_route_and_host_routes() {
        let v = decode_v4(&[0, 32, 1, 2, 3, 4]).unwrap();
        assert_eq!(
            v,
            vec![
                "0.0.0.0/0".parse::<Ipv4Net>().unwrap(),
                "1.2.3.4/32".parse().unwrap()
            ]
        );
        let mut out = Vec::new();
        encode_v4(&v, &mut out);
        assert_eq!(out, [0, 32, 1, 2, 3, 4]);
    }

    #[test]
    fn errors() {
        assert_eq!(decode_v4(&[33, 1, 2, 3, 4, 5]), Err(NlriError::BadLength));
        assert_eq!(decode_v4(&[24, 1, 2]), Err(NlriError::Overrun));
        assert_eq!(decode_v6(&[129]), Err(NlriError::BadLength));
        assert_eq!(decode_v6(&[64, 0x20, 0x01]), Err(NlriError::Overrun));
    }
}
