//! BFD timers of a peering.

use super::errors::Validator;
use crate::config;
use crate::model::BfdTimers;

/// BFD intervals accepted, in milliseconds (FRR's bfdd takes the same range).
pub const BFD_INTERVAL_MS: std::ops::RangeInclusive<u32> = 10..=60_000;
/// BFD detection multipliers accepted: below 2 one lost packet is an outage.
pub const BFD_MULTIPLIER: std::ops::RangeInclusive<u8> = 2..=255;

/// The timers if BFD is on. They are checked even when it is off: turning
/// it on must not reveal an error later.
pub(super) fn timers(v: &mut Validator, pp: &str, bfd: &config::Bfd) -> Option<BfdTimers> {
    if !BFD_INTERVAL_MS.contains(&bfd.interval_ms) {
        v.err(
            format!("{pp}.bfd.intervalMs"),
            format!(
                "must be {} to {} ms (ExpressRoute uses 300), not {}",
                BFD_INTERVAL_MS.start(),
                BFD_INTERVAL_MS.end(),
                bfd.interval_ms
            ),
        );
    }
    if !BFD_MULTIPLIER.contains(&bfd.multiplier) {
        v.err(
            format!("{pp}.bfd.multiplier"),
            format!(
                "must be {} to {} (ExpressRoute uses 3), not {}",
                BFD_MULTIPLIER.start(),
                BFD_MULTIPLIER.end(),
                bfd.multiplier
            ),
        );
    }
    bfd.enabled.then_some(BfdTimers {
        interval_ms: bfd.interval_ms,
        multiplier: bfd.multiplier,
    })
}
