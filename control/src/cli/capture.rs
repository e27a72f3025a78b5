//! `msee-cli capture`: starts a capture of dropped frames in the daemon,
//! polls it until it has its count (or the time is up), and writes the
//! frames to a pcapng file, each with a comment naming its drop reason,
//! link and direction (tcpdump reads the file; Wireshark and `tshark`
//! show the comments as `frame.comment`).
use std::{borrow::Cow, path::Path, time::Duration};

use anyhow::{Context as _, Result, bail};
use pcap_file::{
    DataLink,
    pcapng::{
        PcapNgWriter,
        blocks::{
            enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption},
            interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
        },
    },
};

use crate::api::{
    self, Request,
    types::{CaptureBatch, CapturedFrame},
};

/// Records per second per CPU at most, by default.
pub const DEFAULT_RATE: u32 = 1000;
/// Bytes kept of each frame, by default (and at most).
pub const DEFAULT_SNAP: u32 = msee_abi::capture::SNAP_LEN as u32;

pub struct CaptureArgs {
    pub reasons: Vec<String>,
    pub link: Option<String>,
    pub count: u64,
    pub sample: u32,
    pub rate: u32,
    pub snap: u32,
    pub timeout: Duration,
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        bail!("odd hex length");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("not hex"))
        .collect()
}

/// The comment of a frame in the file.
pub fn comment(f: &CapturedFrame) -> String {
    format!(
        "msee drop: reason={} link={} direction={}",
        f.reason, f.link, f.direction
    )
}

/// Writes `frames` to a pcapng file: one Ethernet interface with
/// nanosecond timestamps, each frame with its comment.
pub fn write_pcapng(path: &Path, frames: &[CapturedFrame], snap: u32) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = PcapNgWriter::new(std::io::BufWriter::new(file))?;
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: snap,
        options: vec![
            InterfaceDescriptionOption::IfName(Cow::Borrowed("msee-drops")),
            InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                "frames msee-daemon dropped (msee-cli capture)",
            )),
            InterfaceDescriptionOption::IfTsResol(9),
        ],
    })?;
    for f in frames {
        let data = unhex(&f.data).context("a captured frame's bytes")?;
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(f.at_unix_ns),
            original_len: f.len,
            data: Cow::Owned(data),
            options: vec![EnhancedPacketOption::Comment(Cow::Owned(comment(f)))],
        })?;
    }
    use std::io::Write as _;
    w.into_inner()
        .flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// Runs a capture; returns the frames taken and the selected drops not
/// recorded.
pub fn run(socket: &Path, a: &CaptureArgs) -> Result<(Vec<CapturedFrame>, u64)> {
    let t = Duration::from_secs(5);
    let start: CaptureBatch = serde_json::from_value(api::query(
        socket,
        &Request::CaptureStart {
            reasons: a.reasons.clone(),
            link: a.link.clone(),
            count: a.count,
            sample: a.sample,
            rate: a.rate,
            snap: a.snap,
        },
        t,
    )?)?;
    let id = start.id;
    let deadline = std::time::Instant::now() + a.timeout;
    let mut frames = Vec::new();
    let mut lost;
    loop {
        let b: CaptureBatch =
            serde_json::from_value(api::query(socket, &Request::CaptureRead { id }, t)?)?;
        lost = b.lost;
        let got = !b.frames.is_empty();
        frames.extend(b.frames);
        if b.done {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = api::query(socket, &Request::CaptureStop { id }, t);
            break;
        }
        if !got {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok((frames, lost))
}
