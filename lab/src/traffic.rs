//! Small, bounded UDP exchanges between lab namespaces: the evidence that a
//! path forwards. (The AF_XDP packet engine is for rates; this is for truth.)
use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use msee_sys::netns;
use nix::sys::socket::{setsockopt, sockopt};

/// One direction of a test flow.
#[derive(Clone, Debug)]
pub struct Flow {
    pub src_ns: String,
    pub src_addr: IpAddr,
    /// Send through this device (SO_BINDTODEVICE), to pick a link.
    pub src_dev: Option<String>,
    pub dst_ns: String,
    pub dst_addr: IpAddr,
    pub dst_port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowResult {
    pub sent: u64,
    pub received: u64,
    /// The longest time between two datagrams received (an outage on the
    /// way shows here even when nothing was lost, e.g. queued).
    pub longest_gap: Duration,
}

/// At most this many packets per flow, and never longer than this after
/// the flow's paced duration.
pub const MAX_PACKETS: u64 = 100_000;
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// Datagrams in flight at most (veth rings hold 256 frames).
const WINDOW: u64 = 64;
/// How long the sender waits for the receiver's progress before sending on.
const STALL: Duration = Duration::from_millis(300);

/// Send `count` datagrams along `flow` and count how many arrive (each
/// carries its sequence number; duplicates are not counted twice).
pub fn send_and_count(flow: &Flow, count: u64) -> Result<FlowResult> {
    send_and_count_at(flow, count, None)
}

/// [`send_and_count`] at `pps` datagrams per second at most (a stream that
/// lasts while something else happens), or as fast as the window allows.
pub fn send_and_count_at(flow: &Flow, count: u64, pps: Option<u32>) -> Result<FlowResult> {
    if count > MAX_PACKETS {
        bail!("at most {MAX_PACKETS} packets per flow");
    }
    let dst = SocketAddr::new(flow.dst_addr, flow.dst_port);
    let rx = netns::on_thread(&flow.dst_ns, move || UdpSocket::bind(dst))?
        .with_context(|| format!("binding {dst} in {}", flow.dst_ns))?;
    rx.set_read_timeout(Some(Duration::from_millis(200)))?;
    // A frame redirected by XDP into a veth arrives as a whole page: the
    // default receive buffer holds only ~50 of them, and the receiving
    // thread may wait for a busy CPU. Give it room for a whole burst.
    set_rcvbuf(&rx, 32 << 20)?;
    let tx = udp_socket_in(&flow.src_ns, flow.src_addr, flow.src_dev.as_deref())?;

    // What the receiver has counted so far: the sender keeps at most WINDOW
    // datagrams in flight, so no ring or queue on the way can overflow when
    // a receiving CPU is busy (veth drops what does not fit its ring).
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = progress.clone();
    // The receiver gives up after 2 s without a datagram only once the
    // sender is done: an outage on the way (a restart without graceful
    // restart) is measured, not mistaken for the end.
    let sender_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = sender_done.clone();
    // Bounded in time whatever the path does: the paced duration, plus
    // MAX_WAIT for a path that stalls (the sender's bound too).
    let paced = pps.map_or(Duration::ZERO, |p| {
        Duration::from_secs_f64(count as f64 / f64::from(p.max(1)))
    });
    let receiver = std::thread::spawn(move || {
        let mut seen = vec![false; count as usize];
        let mut received = 0u64;
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + paced + MAX_WAIT;
        let mut idle = Instant::now();
        let mut last: Option<Instant> = None;
        let mut longest = Duration::ZERO;
        while received < count
            && Instant::now() < deadline
            && !(done.load(std::sync::atomic::Ordering::Relaxed)
                && idle.elapsed() >= Duration::from_secs(2))
        {
            if let Ok(n) = rx.recv(&mut buf)
                && n >= 8
            {
                idle = Instant::now();
                if let Some(last) = last {
                    longest = longest.max(idle - last);
                }
                last = Some(idle);
                let seq = u64::from_be_bytes(buf[..8].try_into().unwrap());
                if let Some(slot) = seen.get_mut(seq as usize)
                    && !*slot
                {
                    *slot = true;
                    received += 1;
                    counted.store(received, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        (received, longest)
    });

    let mut sent = 0;
    let mut payload = [0u8; 64];
    let started = Instant::now();
    let give_up = started + paced + MAX_WAIT;
    let mut assumed_lost = 0u64;
    let mut silent_since: Option<u64> = None;
    for seq in 0..count {
        if Instant::now() > give_up {
            break;
        }
        if let Some(pps) = pps {
            let due = started + Duration::from_secs_f64(seq as f64 / f64::from(pps.max(1)));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        // The first datagram may wait for address resolution (ARP or ND) on
        // the way; later ones wait for room in the window. Either wait ends
        // when the receiver makes no progress for a while: the path may
        // legitimately lose packets.
        // A paced flow, after a wait that ended without progress, takes
        // what was in flight for lost (`assumed_lost`) and keeps its pace
        // without waiting again until the receiver counts something: an
        // outage on the way is measured at the offered rate, not at one
        // datagram per stall. (An unpaced flow keeps waiting: a receiver
        // that is only slow must not meet a burst.)
        let limit = if seq == 0 { 0 } else { WINDOW };
        let mut last = progress.load(std::sync::atomic::Ordering::Relaxed);
        if silent_since != Some(last) {
            silent_since = None;
            let mut stalled = Instant::now();
            while seq.saturating_sub(last + assumed_lost) > limit && stalled.elapsed() < STALL {
                std::thread::sleep(Duration::from_micros(200));
                let now = progress.load(std::sync::atomic::Ordering::Relaxed);
                if now != last {
                    (last, stalled) = (now, Instant::now());
                }
            }
            if pps.is_some() && seq.saturating_sub(last + assumed_lost) > limit {
                assumed_lost = seq - last;
                silent_since = Some(last);
            }
        }
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        match tx.send_to(&payload, dst) {
            Ok(_) => {}
            // No route at the source (a router withdrew it): offered, lost.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH)
                ) => {}
            Err(e) => {
                sender_done.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(e).with_context(|| format!("sending to {dst}"));
            }
        }
        sent += 1;
    }
    sender_done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (received, longest_gap) = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))?;
    Ok(FlowResult {
        sent,
        received,
        longest_gap,
    })
}

/// A UDP socket in namespace `ns`, bound to `addr` (any port), optionally to a device.
pub fn udp_socket_in(ns: &str, addr: impl Into<IpAddr>, dev: Option<&str>) -> Result<UdpSocket> {
    let dev = dev.map(str::to_owned);
    let addr = addr.into();
    netns::on_thread(ns, move || -> Result<UdpSocket> {
        let s = UdpSocket::bind(SocketAddr::new(addr, 0))?;
        if let Some(dev) = dev {
            bind_to_device(&s, &dev)?;
        }
        Ok(s)
    })?
}

/// Receive buffer of `bytes` (SO_RCVBUFFORCE: above rmem_max, as root).
pub fn set_rcvbuf(s: &UdpSocket, bytes: libc::c_int) -> Result<()> {
    let bytes = usize::try_from(bytes).context("a negative buffer size")?;
    setsockopt(s, sockopt::RcvBufForce, &bytes).context("SO_RCVBUFFORCE")
}

/// Send and receive only through `dev` (SO_BINDTODEVICE): picks a link.
pub fn bind_to_device(s: &UdpSocket, dev: &str) -> Result<()> {
    setsockopt(s, sockopt::BindToDevice, &std::ffi::OsString::from(dev))
        .with_context(|| format!("SO_BINDTODEVICE {dev}"))
}
