//! What the daemon keeps in its state directory (`crate::state_dir`) for
//! the operator's reports, and the reports themselves:
//!
//! - `usage.json` ([`ledger`]): bytes and packets per link and direction,
//!   per UTC day, with, per link, the last raw counter value seen and the
//!   identity of the counter it came from (boot, the counters map's kernel
//!   id, the link id). A counter that goes on (maps adopted across a
//!   restart) adds its difference; one that went backwards, or a new
//!   source (new maps, a link made anew), starts a new segment from zero.
//!   So a restart or a counter reset never loses bytes nor counts them
//!   twice;
//! - `history.jsonl` ([`history`]): the daemon's starts and stops, every
//!   change of a link's verdict with its cause, and drains: what the
//!   availability report is computed from.
//!
//! A file that cannot be read is set aside (`NAME.corrupt-UNIXTIME`) and
//! reported in the log and in the reports, never silently reset; nothing
//! here stops forwarding (a write that fails is logged and tried again at
//! the next tick). [`report`] computes the usage (billing) and
//! availability reports; [`zones`] holds the pricing zones.
pub mod history;
pub mod ledger;
pub mod report;
pub mod zones;

/// Unix time now, in milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The UTC day (`YYYY-MM-DD`) of a Unix time in milliseconds.
pub fn utc_day(unix_ms: u64) -> String {
    rfc3339(unix_ms)[..10].to_owned()
}

/// A `--from`/`--to` date: `YYYY-MM-DD` (that UTC day's first instant) or
/// an RFC 3339 time, as Unix milliseconds.
pub fn parse_date(s: &str) -> Result<u64, String> {
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    };
    let t = humantime::parse_rfc3339_weak(&full)
        .map_err(|e| format!("{s:?} is not a date (YYYY-MM-DD) nor an RFC 3339 time ({e})"))?;
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .map_err(|_| format!("{s:?} is before 1970"))
}

/// An RFC 3339 UTC time (seconds) of Unix milliseconds.
pub fn rfc3339(unix_ms: u64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms),
    )
    .to_string()
}

/// An RFC 3339 UTC time, to the millisecond.
pub fn rfc3339_ms(unix_ms: u64) -> String {
    humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms),
    )
    .to_string()
}

/// Reads a state file: `Ok(None)` when there is none; a file that cannot
/// be parsed by `parse` is set aside and reported in the `String`.
pub fn read_state<T>(
    path: &std::path::Path,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> (Option<T>, Option<String>) {
    match std::fs::read(path) {
        Ok(bytes) => match parse(&bytes) {
            Ok(v) => (Some(v), None),
            Err(why) => (None, Some(aside_note(path, &why))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
        Err(e) => (
            None,
            Some(format!(
                "{}: {e}: kept in memory until it can be written",
                path.display()
            )),
        ),
    }
}

/// Sets `path` aside and says so (or why it could not).
pub fn aside_note(path: &std::path::Path, why: &str) -> String {
    match crate::state_dir::set_aside(path) {
        Ok(to) => format!(
            "{} could not be read ({why}): set aside as {}; started anew",
            path.display(),
            to.display()
        ),
        Err(e) => format!(
            "{} could not be read ({why}), nor set aside ({e:#})",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests;
