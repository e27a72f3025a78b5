//! Capture of dropped frames (`msee-cli capture`): the daemon turns the
//! dataplane's capture on with a selection (reasons, link, sampling, rate,
//! snap length), moves the records `msee` copies into its ring buffer to
//! the capture (when the CLI reads, and each tick), and the CLI polls
//! (`capture-read`) until it has its count. One capture at a time; it ends
//! when its count is reached, when it is stopped, or when no one has read
//! it for [`ABANDONED`]; the dataplane stops copying at once.
use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use msee_abi::{DropReason, UNATTRIBUTED_ROW, capture};
use tracing::{info, warn};

use crate::{
    api::types::{CaptureBatch, CapturedFrame},
    daemon::Daemon,
};

/// Frames handed over per read, at most (an answer stays small).
const PER_READ: usize = 64;
/// Frames one capture may ask for.
const MAX_COUNT: u64 = 100_000;
/// A capture no one read for this long is ended (its CLI went away).
const ABANDONED: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(in crate::daemon) struct Captures {
    next_id: u64,
    ring: Option<dataplane::CaptureRing>,
    active: Option<Active>,
}

struct Active {
    id: u64,
    want: u64,
    taken: u64,
    frames: VecDeque<CapturedFrame>,
    done: bool,
    /// The dataplane's count of selected drops not copied, at the start.
    lost_at_start: u64,
    last_read: Instant,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Daemon {
    pub(in crate::daemon) fn capture_start(
        &mut self,
        reasons: &[String],
        link: Option<&str>,
        count: u64,
        sample: u32,
        rate: u32,
        snap: u32,
    ) -> Result<CaptureBatch, String> {
        if let Some(a) = &self.ops.capture.active
            && !a.done
        {
            return Err(format!("a capture (id {}) is running: one at a time", a.id));
        }
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(format!("--count must be from 1 to {MAX_COUNT}"));
        }
        if sample == 0 || rate == 0 || snap == 0 {
            return Err("--sample, --rate and --snap must be at least 1".into());
        }
        let mut mask = 0u32;
        for r in reasons {
            let reason = DropReason::ALL
                .iter()
                .find(|x| x.name().eq_ignore_ascii_case(r))
                .ok_or_else(|| {
                    format!(
                        "unknown drop reason {r:?} (valid: {})",
                        DropReason::ALL.map(DropReason::name).join(", ")
                    )
                })?;
            mask |= 1 << (*reason as u32);
        }
        if reasons.is_empty() {
            mask = (1 << msee_abi::DROP_REASONS) - 1;
        }
        let link_id = match link {
            None => capture::ANY_LINK,
            Some(name) => self
                .links
                .by_id
                .values()
                .find(|l| l.spec.name == name)
                .map(|l| l.spec.id)
                .ok_or_else(|| {
                    let names: Vec<&str> = self
                        .links
                        .by_id
                        .values()
                        .map(|l| l.spec.name.as_str())
                        .collect();
                    format!("unknown link {name:?} (valid: {})", names.join(", "))
                })?,
        };
        if self.ops.capture.ring.is_none() {
            self.ops.capture.ring = Some(
                self.msee
                    .take_capture_ring()
                    .map_err(|e| format!("opening the capture ring: {e}"))?,
            );
        }
        // What an earlier capture left in the ring is not this one's.
        let ring = self.ops.capture.ring.as_mut().expect("opened");
        while ring.next_record().is_some() {}
        let lost_at_start = self.msee.capture_lost().unwrap_or(0);
        self.msee
            .set_capture(capture::Config {
                on: 1,
                reasons: mask,
                link: link_id,
                sample,
                rate_per_sec: rate,
                snap: snap.min(capture::SNAP_LEN as u32),
            })
            .map_err(|e| format!("turning capture on: {e}"))?;
        self.ops.capture.next_id += 1;
        let id = self.ops.capture.next_id;
        self.ops.capture.active = Some(Active {
            id,
            want: count,
            taken: 0,
            frames: VecDeque::new(),
            done: false,
            lost_at_start,
            last_read: Instant::now(),
        });
        info!(
            id,
            count,
            ?reasons,
            link,
            sample,
            rate,
            "capture of dropped frames on"
        );
        Ok(CaptureBatch {
            id,
            ..Default::default()
        })
    }

    /// Each tick: records into the capture; a capture no one reads ends.
    pub(in crate::daemon) fn capture_tick(&mut self) {
        self.capture_poll();
        if let Some(a) = &self.ops.capture.active
            && !a.done
            && a.last_read.elapsed() > ABANDONED
        {
            let id = a.id;
            warn!(id, "capture not read for {ABANDONED:?}: ended");
            let _ = self.capture_stop(id);
        }
    }

    /// Moves records from the ring to the active capture; turns capture
    /// off once it has its count.
    fn capture_poll(&mut self) {
        let (Some(ring), Some(active)) = (
            self.ops.capture.ring.as_mut(),
            self.ops.capture.active.as_mut(),
        ) else {
            return;
        };
        if active.done {
            return;
        }
        // CLOCK_MONOTONIC to wall-clock time.
        let realtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let offset = realtime.saturating_sub(msee_sys::monotonic_ns());
        while active.taken < active.want {
            let Some(r) = ring.next_record() else { break };
            let caplen = (r.caplen as usize).min(capture::SNAP_LEN);
            let link = if r.row == UNATTRIBUTED_ROW {
                "unattributed".to_owned()
            } else {
                self.links
                    .by_id
                    .get(&(r.row / 2))
                    .map_or_else(|| format!("link {}", r.row / 2), |l| l.spec.name.clone())
            };
            active.frames.push_back(CapturedFrame {
                at_unix_ns: r.ktime_ns + offset,
                len: r.len,
                data: hex(&r.data[..caplen]),
                reason: DropReason::ALL
                    .get(r.reason as usize)
                    .map_or("unknown", |x| x.name())
                    .to_owned(),
                link,
                direction: if r.row % 2 == 0 { "in" } else { "out" }.to_owned(),
            });
            active.taken += 1;
        }
        if active.taken >= active.want {
            active.done = true;
            if let Err(e) = self.msee.set_capture(capture::Config::default()) {
                warn!("turning capture off: {e}");
            }
            info!(id = active.id, frames = active.taken, "capture done: off");
        }
    }

    pub(in crate::daemon) fn capture_read(&mut self, id: u64) -> Result<CaptureBatch, String> {
        self.capture_poll();
        let lost_now = self.msee.capture_lost().unwrap_or(0);
        let a = match &mut self.ops.capture.active {
            Some(a) if a.id == id => a,
            _ => return Err(format!("no capture {id} here")),
        };
        a.last_read = Instant::now();
        let n = a.frames.len().min(PER_READ);
        let frames: Vec<CapturedFrame> = a.frames.drain(..n).collect();
        Ok(CaptureBatch {
            id,
            frames,
            lost: lost_now.saturating_sub(a.lost_at_start),
            done: a.done && a.frames.is_empty(),
        })
    }

    pub(in crate::daemon) fn capture_stop(&mut self, id: u64) -> Result<CaptureBatch, String> {
        match &mut self.ops.capture.active {
            Some(a) if a.id == id => {
                a.done = true;
                a.frames.clear();
            }
            _ => return Err(format!("no capture {id} here")),
        }
        self.msee
            .set_capture(capture::Config::default())
            .map_err(|e| format!("turning capture off: {e}"))?;
        info!(id, "capture stopped");
        Ok(CaptureBatch {
            id,
            done: true,
            ..Default::default()
        })
    }
}
