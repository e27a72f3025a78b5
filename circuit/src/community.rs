//! BGP standard communities (RFC 1997) written `ASN:value`, as Azure documents them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A standard BGP community such as `12076:51002` (West Europe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community {
    pub asn: u16,
    pub value: u16,
}

impl Community {
    pub const fn new(asn: u16, value: u16) -> Self {
        Self { asn, value }
    }

    /// The 32-bit wire form (high 16 bits ASN, low 16 bits value).
    pub const fn to_u32(self) -> u32 {
        ((self.asn as u32) << 16) | self.value as u32
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.asn, self.value)
    }
}

/// Why a string is not a community.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a BGP community; expected ASN:value with both parts in 0-65535, e.g. 12076:5010"
)]
pub struct ParseCommunityError(pub String);

impl FromStr for Community {
    type Err = ParseCommunityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseCommunityError(s.to_string());
        let (a, v) = s.trim().split_once(':').ok_or_else(err)?;
        Ok(Self {
            asn: a.parse().map_err(|_| err())?,
            value: v.parse().map_err(|_| err())?,
        })
    }
}

impl Serialize for Community {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Community {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let c: Community = "12076:51002".parse().unwrap();
        assert_eq!(c, Community::new(12076, 51002));
        assert_eq!(c.to_string(), "12076:51002");
        assert_eq!(c.to_u32(), (12076 << 16) | 51002);
    }

    #[test]
    fn refuses_garbage() {
        assert!("12076".parse::<Community>().is_err());
        assert!("12076:70000".parse::<Community>().is_err());
        assert!("x:1".parse::<Community>().is_err());
    }
}
