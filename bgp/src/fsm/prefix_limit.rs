//! Per-AFI maximum-prefix enforcement (RFC 4486 §4). Counts distinct
//! prefixes currently announced by the peer (its Adj-RIB-In keys), so a
//! re-announcement does not count twice and a withdrawal frees room.

use crate::wire::{AFI_IPV4, AFI_IPV6, Notification, SAFI_UNICAST, Update, error};
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::HashSet;

#[derive(Debug, Clone, Default)]
pub(crate) struct PrefixTable {
    v4: HashSet<Ipv4Net>,
    v6: HashSet<Ipv6Net>,
}

/// The limit that was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixLimitExceeded {
    pub afi: u16,
    pub safi: u8,
    pub limit: u32,
}

impl PrefixLimitExceeded {
    /// Cease / Maximum Number of Prefixes Reached; data = AFI, SAFI, limit.
    pub fn notification(&self) -> Notification {
        let mut data = self.afi.to_be_bytes().to_vec();
        data.push(self.safi);
        data.extend_from_slice(&self.limit.to_be_bytes());
        Notification::new(error::code::CEASE, error::cease::MAX_PREFIXES_REACHED, data)
    }
}

impl PrefixTable {
    pub(crate) fn count(&self, afi: u16) -> usize {
        match afi {
            AFI_IPV4 => self.v4.len(),
            AFI_IPV6 => self.v6.len(),
            _ => 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }

    /// Applies withdrawals then announcements, then checks the limits.
    pub(crate) fn apply(
        &mut self,
        u: &Update,
        max_v4: Option<u32>,
        max_v6: Option<u32>,
    ) -> Result<(), PrefixLimitExceeded> {
        u.withdrawn.iter().for_each(|p| {
            self.v4.remove(p);
        });
        u.withdrawn_v6().iter().for_each(|p| {
            self.v6.remove(p);
        });
        self.v4.extend(u.nlri.iter().copied());
        self.v6.extend(u.announced_v6().iter().copied());
        self.check(max_v4, max_v6)
    }

    /// Whether the prefixes held now fit the limits.
    pub(crate) fn check(
        &self,
        max_v4: Option<u32>,
        max_v6: Option<u32>,
    ) -> Result<(), PrefixLimitExceeded> {
        for (afi, n, max) in [
            (AFI_IPV4, self.v4.len(), max_v4),
            (AFI_IPV6, self.v6.len(), max_v6),
        ] {
            if let Some(limit) = max
                && n > limit as usize
            {
                return Err(PrefixLimitExceeded {
                    afi,
                    safi: SAFI_UNICAST,
                    limit,
                });
            }
        }
        Ok(())
    }
}
