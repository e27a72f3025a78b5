//! Small, bounded UDP exchanges between lab namespaces: the evidence that a
//! path forwards. (The AF_XDP packet engine is for rates; this is for truth.)
use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::in_netns;

/// One direction of a test flow.
#[derive(Clone, Debug)]
pub struct Flow {
    pub src_ns: String,
    pub src_addr: Ipv4Addr,
    /// Send through this device (SO_BINDTODEVICE), to pick a link.
    pub src_dev: Option<String>,
    pub dst_ns: String,
    pub dst_addr: Ipv4Addr,
    pub dst_port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowResult {
    pub sent: u64,
    pub received: u64,
}

/// At most this many packets per flow, and never longer than this.
pub const MAX_PACKETS: u64 = 100_000;
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// Send `count` datagrams along `flow` and count how many arrive (each
/// carries its sequence number; duplicates are not counted twice).
pub fn send_and_count(flow: &Flow, count: u64) -> Result<FlowResult> {
    if count > MAX_PACKETS {
        bail!("at most {MAX_PACKETS} packets per flow");
    }
    let dst = SocketAddrV4::new(flow.dst_addr, flow.dst_port);
    let rx = in_netns(&flow.dst_ns, move || UdpSocket::bind(dst))?
        .with_context(|| format!("binding {dst} in {}", flow.dst_ns))?;
    rx.set_read_timeout(Some(Duration::from_millis(200)))?;
    let tx = udp_socket_in(&flow.src_ns, flow.src_addr, flow.src_dev.as_deref())?;

    let receiver = std::thread::spawn(move || {
        let mut seen = vec![false; count as usize];
        let mut received = 0u64;
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + MAX_WAIT;
        let mut idle = Instant::now();
        while received < count
            && Instant::now() < deadline
            && idle.elapsed() < Duration::from_secs(2)
        {
            if let Ok(n) = rx.recv(&mut buf)
                && n >= 8
            {
                idle = Instant::now();
                let seq = u64::from_be_bytes(buf[..8].try_into().unwrap());
                if let Some(slot) = seen.get_mut(seq as usize)
                    && !*slot
                {
                    *slot = true;
                    received += 1;
                }
            }
        }
        received
    });

    let mut sent = 0;
    let mut payload = [0u8; 64];
    for seq in 0..count {
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        tx.send_to(&payload, dst)
            .with_context(|| format!("sending to {dst}"))?;
        sent += 1;
        // Stay well inside socket buffers: this measures forwarding, not rate.
        if seq % 64 == 63 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let received = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))?;
    Ok(FlowResult { sent, received })
}

/// A UDP socket in namespace `ns`, bound to `addr` (any port), optionally to a device.
pub fn udp_socket_in(ns: &str, addr: Ipv4Addr, dev: Option<&str>) -> Result<UdpSocket> {
    let dev = dev.map(str::to_owned);
    in_netns(ns, move || -> Result<UdpSocket> {
        let s = UdpSocket::bind(SocketAddrV4::new(addr, 0))?;
        if let Some(dev) = dev {
            bind_to_device(&s, &dev)?;
        }
        Ok(s)
    })?
}

/// Send and receive only through `dev` (SO_BINDTODEVICE): picks a link.
pub fn bind_to_device(s: &UdpSocket, dev: &str) -> Result<()> {
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            dev.as_ptr().cast(),
            dev.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        bail!("SO_BINDTODEVICE {dev}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}
