//! Capture of dropped frames (`msee_abi::capture`): the selection the
//! program reads on its drop path, the ring it copies frames into, and the
//! selected drops it could not copy.
use aya::maps::{Array, MapData, PerCpuArray, RingBuf};
use msee_abi::capture::{self, Config, Record, State};

use super::{Msee, MseeError, Result, map_err};

/// The ring buffer `msee` copies captured frames into.
pub struct CaptureRing(RingBuf<MapData>);

impl CaptureRing {
    /// The next record, if one is waiting (never blocks).
    pub fn next_record(&mut self) -> Option<Record> {
        let item = self.0.next()?;
        if item.len() < size_of::<Record>() {
            return None;
        }
        // SAFETY: `Record` is plain old data of this many bytes, read
        // unaligned from the ring's item.
        Some(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<Record>()) })
    }
}

impl Msee {
    /// Writes the capture selection (`Config::default()`: off).
    pub fn set_capture(&mut self, config: Config) -> Result<()> {
        let mut m: Array<_, Config> = self.map_mut(capture::CONFIG_MAP)?;
        m.set(0, config, 0).map_err(map_err(capture::CONFIG_MAP))
    }

    /// The selection the program reads now.
    pub fn capture(&self) -> Result<Config> {
        let m: Array<_, Config> = self.map_ref(capture::CONFIG_MAP)?;
        m.get(&0, 0).map_err(map_err(capture::CONFIG_MAP))
    }

    /// The ring of captured frames (once per load: the map moves out).
    pub fn take_capture_ring(&mut self) -> Result<CaptureRing> {
        let map = self
            .ebpf
            .take_map(capture::RING_MAP)
            .ok_or(MseeError::Missing(capture::RING_MAP))?;
        Ok(CaptureRing(
            RingBuf::try_from(map).map_err(map_err(capture::RING_MAP))?,
        ))
    }

    /// Selected drops the program could not copy (over the rate, or the
    /// ring full), summed over CPUs.
    pub fn capture_lost(&self) -> Result<u64> {
        let m: PerCpuArray<_, State> = self.map_ref(capture::STATE_MAP)?;
        let per_cpu = m.get(&0, 0).map_err(map_err(capture::STATE_MAP))?;
        Ok(per_cpu.iter().map(|s| s.lost).sum())
    }
}
