//! The policer's reference: what an exact token bucket lets through, and a
//! sender that offers a steady rate for it to police.
use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use msee_abi::NB_PER_BYTE;
use xdp_ebpf::msee::police::{policer_cost_nb, policer_refill_nb, policer_step};

/// What an exact token bucket (the same arithmetic as the kernel's) lets
/// through of frames offered at `times`: the reference the kernel's policer
/// is held to, whatever pauses the sender had.
pub fn ideal_policer(times: &[Instant], frame_bytes: u64, rate_bps: u64, burst_bytes: u64) -> u64 {
    let rate = rate_bps / 8;
    let burst = burst_bytes * NB_PER_BYTE;
    let cap_ns = burst.div_ceil(rate);
    let cost = policer_cost_nb(frame_bytes);
    let mut credit = burst;
    let mut last = times[0];
    let mut conformed = 0;
    for t in times {
        let refill = policer_refill_nb(t.duration_since(last).as_nanos() as u64, cap_ns, rate);
        last = *t;
        let (next, ok) = policer_step(credit, refill, burst, cost);
        credit = next;
        conformed += u64::from(ok);
    }
    conformed
}

/// One stream a sender offers: a socket, where to, at what layer-2 rate.
pub struct Stream<'a> {
    pub tx: &'a UdpSocket,
    pub dst: SocketAddr,
    pub bps: u64,
}

/// Sends `payload` to `dst` at `bps` (layer 2, with `frame_bytes` per
/// frame) for `secs`. Returns when each frame left.
pub fn offer(
    tx: &UdpSocket,
    dst: SocketAddr,
    payload: &[u8],
    frame_bytes: u64,
    bps: u64,
    secs: u64,
) -> Vec<Instant> {
    offer_streams(&[Stream { tx, dst, bps }], payload, frame_bytes, secs)
        .pop()
        .expect("one stream")
}

/// Offers every stream at once from this one thread, in 100 us slices,
/// spinning rather than sleeping (a millisecond of silence lets a 1 ms
/// bucket overflow and wastes refill); one thread leaves the other CPU to
/// the kernel's forwarding. Returns, per stream, when each frame left.
pub fn offer_streams(
    streams: &[Stream],
    payload: &[u8],
    frame_bytes: u64,
    secs: u64,
) -> Vec<Vec<Instant>> {
    let slice = Duration::from_micros(100);
    // Frames per slice as a running quota, so the rate is exact on average.
    let per_ns: Vec<f64> = streams
        .iter()
        .map(|s| s.bps as f64 / 8.0 / frame_bytes as f64 / 1e9)
        .collect();
    let start = Instant::now();
    let mut next = start;
    let end = start + Duration::from_secs(secs);
    let mut times: Vec<Vec<Instant>> = streams
        .iter()
        .zip(&per_ns)
        .map(|(_, r)| Vec::with_capacity((r * 1e9 * secs as f64) as usize + 16))
        .collect();
    while next < end {
        let due_ns = (next - start).as_nanos() as f64;
        for (i, s) in streams.iter().enumerate() {
            let due = (per_ns[i] * due_ns) as usize;
            while times[i].len() < due {
                if s.tx.send_to(payload, s.dst).is_ok() {
                    times[i].push(Instant::now());
                } else {
                    break;
                }
            }
        }
        next += slice;
        while Instant::now() < next {
            std::hint::spin_loop();
        }
    }
    times
}
