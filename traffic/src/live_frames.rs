//! The in-kernel generator: `txgen` run by BPF_PROG_TEST_RUN with
//! BPF_F_TEST_XDP_LIVE_FRAMES. The kernel builds each frame from `data_in`,
//! runs `txgen` (which stamps stream = base + CPU, a per-CPU sequence and
//! bpf_ktime_get_ns) and transmits the XDP_REDIRECT out of the devmap's
//! interface, never crossing to userspace.
//!
//! One thread per CPU, each with its own copy of the object (no shared
//! program handle to lock), pinned, so each CPU's sequence is one stream.
//! Pacing sends what is due at each wake-up (~1 ms apart): exact in count,
//! bursty below a millisecond; unpaced is the point of this mode.
use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    EbpfLoader,
    maps::{Array, DevMap, PerCpuArray},
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
};
use traffic_abi::{
    MAX_TXGEN_DESTINATIONS, TXGEN_CONFIG, TXGEN_DESTINATIONS, TXGEN_PRISTINE, TXGEN_PRISTINE_LEN,
    TXGEN_PROGRAM, TXGEN_SEQ, TXGEN_TX, TxgenConfig, TxgenDestination,
};

use super::{
    enter_netns,
    frame::{Destinations, Template},
    generator::{GenReport, GenThreadReport},
    pin_to_cpu,
};
use msee_sys::monotonic_ns;

#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub netns: Option<String>,
    pub ifindex: u32,
    /// The frame every run starts from (the stamp is rewritten in the kernel).
    pub template: Template,
    /// The template's destination address.
    pub template_dst: IpAddr,
    pub stream_base: u16,
    pub count: u64,
    pub duration: Duration,
    /// Total target pps, or as fast as possible.
    pub pps: Option<f64>,
    /// CPUs to generate on, one thread each.
    pub cpus: Vec<usize>,
    /// Frames per live-frames batch inside the kernel.
    pub batch: u32,
    /// Destinations to spread the frames over, frame n to entry
    /// n % len per CPU (see `TxgenConfig::destinations`); `None` sends
    /// every frame to the template's.
    pub destinations: Option<Destinations>,
}

/// `txgen`'s destination settings and table for frames to `template_dst`
/// spread over `d` (none: the template's own destination).
fn destination_spread(
    d: Option<&Destinations>,
    template_dst: IpAddr,
) -> Result<(u32, u32, u32, Vec<TxgenDestination>)> {
    let Some(d) = d.filter(|d| d.addrs.len() > 1) else {
        return Ok((1, 0, 0, Vec::new()));
    };
    let n = u32::try_from(d.addrs.len())
        .ok()
        .filter(|&n| n <= MAX_TXGEN_DESTINATIONS)
        .ok_or_else(|| {
            anyhow!(
                "{} destinations: txgen spreads over at most {MAX_TXGEN_DESTINATIONS}",
                d.addrs.len()
            )
        })?;
    Ok((
        n,
        d.addr_off as u32,
        d.ip_csum_off.unwrap_or(0) as u32,
        d.txgen_entries(template_dst),
    ))
}

/// Run to completion (count or duration). `progress` counts frames handed
/// to the kernel so far.
pub fn run(cfg: &LiveConfig, progress: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Result<GenReport> {
    if cfg.cpus.is_empty() {
        bail!("live frames need at least one CPU");
    }
    if cfg.count == 0 || cfg.duration.is_zero() {
        bail!("both a packet count and a duration are needed, and must be > 0");
    }
    let (payload_off, csum_off) = cfg.template.offsets();
    let mut frame = vec![0u8; cfg.template.len];
    cfg.template.write(&mut frame, 0, 0, true);
    let (destinations, dst_off, ip_csum_off, table) =
        destination_spread(cfg.destinations.as_ref(), cfg.template_dst)?;
    let dst_len = cfg.destinations.as_ref().map_or(4, |d| d.addr_len() as u32);
    let vlan_off = cfg
        .destinations
        .as_ref()
        .filter(|d| destinations > 1 && !d.vlans.is_empty())
        .map_or(0, |d| d.vlan_off as u32);
    let table = Arc::new(table);
    let frame = Arc::new(frame);
    let n = cfg.cpus.len();
    let start = monotonic_ns();
    let mut handles = Vec::new();
    for (t, &cpu) in cfg.cpus.iter().enumerate() {
        let cfg = cfg.clone();
        let (frame, progress, stop) = (frame.clone(), progress.clone(), stop.clone());
        let table = table.clone();
        let count = cfg.count / n as u64 + u64::from((t as u64) < cfg.count % n as u64);
        handles.push(std::thread::spawn(
            move || -> Result<(GenThreadReport, u16, u64)> {
                pin_to_cpu(cpu);
                enter_netns(cfg.netns.as_deref())?;
                let mut ebpf = EbpfLoader::new()
                    .map_max_entries(TXGEN_DESTINATIONS, destinations.max(1))
                    .load(crate::TXGEN_OBJECT)
                    .context("loading the txgen object")?;
                if !table.is_empty() {
                    let mut dests: Array<_, TxgenDestination> = Array::try_from(
                        ebpf.map_mut(TXGEN_DESTINATIONS)
                            .ok_or_else(|| anyhow!("txgen object has no {TXGEN_DESTINATIONS}"))?,
                    )?;
                    for (i, d) in table.iter().enumerate() {
                        dests.set(i as u32, d, 0)?;
                    }
                }
                let mut conf: Array<_, TxgenConfig> = Array::try_from(
                    ebpf.map_mut(TXGEN_CONFIG)
                        .ok_or_else(|| anyhow!("txgen object has no {TXGEN_CONFIG}"))?,
                )?;
                conf.set(
                    0,
                    TxgenConfig {
                        payload_off: payload_off as u32,
                        // IPv4 and IPv6 both get a real UDP checksum.
                        csum_off: csum_off as u32,
                        stream_base: u32::from(cfg.stream_base),
                        destinations,
                        dst_off,
                        dst_len,
                        ip_csum_off,
                        vlan_off,
                    },
                    0,
                )?;
                // The frame as generated, for txgen to restore every run.
                let mut pristine = [0u8; TXGEN_PRISTINE_LEN];
                let head = frame.len().min(TXGEN_PRISTINE_LEN);
                pristine[..head].copy_from_slice(&frame[..head]);
                let mut pristine_map: Array<_, [u8; TXGEN_PRISTINE_LEN]> = Array::try_from(
                    ebpf.map_mut(TXGEN_PRISTINE)
                        .ok_or_else(|| anyhow!("txgen object has no {TXGEN_PRISTINE}"))?,
                )?;
                pristine_map.set(0, pristine, 0)?;
                let mut tx = DevMap::try_from(
                    ebpf.map_mut(TXGEN_TX)
                        .ok_or_else(|| anyhow!("txgen object has no {TXGEN_TX}"))?,
                )?;
                tx.set(0, cfg.ifindex, None, 0)
                    .with_context(|| format!("devmap slot for ifindex {}", cfg.ifindex))?;
                let seq: PerCpuArray<_, u64> = PerCpuArray::try_from(
                    ebpf.take_map(TXGEN_SEQ)
                        .ok_or_else(|| anyhow!("txgen object has no {TXGEN_SEQ}"))?,
                )?;
                let prog: &mut Xdp = ebpf
                    .program_mut(TXGEN_PROGRAM)
                    .ok_or_else(|| anyhow!("txgen object has no program {TXGEN_PROGRAM}"))?
                    .try_into()?;
                prog.load().context("loading txgen")?;
                // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
                // rx_queue_index, egress_ifindex.
                let md: [u32; 6] = [0, frame.len() as u32, 0, cfg.ifindex, 0, 0];
                let ctx: Vec<u8> = md.iter().flat_map(|w| w.to_ne_bytes()).collect();
                let per_thread_pps = cfg.pps.map(|p| p / n as f64);
                let begin = monotonic_ns();
                let cpu_start = msee_sys::clock::thread_cpu_ns();
                let system_start = msee_sys::clock::thread_system_ns();
                let deadline = begin + cfg.duration.as_nanos() as u64;
                let mut sent = 0u64;
                let mut rate_seen: Option<f64> = None;
                while sent < count && !stop.load(Ordering::Relaxed) {
                    let now = monotonic_ns();
                    if now >= deadline {
                        break;
                    }
                    // Paced: send all frames due by now in one call (each call
                    // has a fixed setup cost, so catching up keeps the count
                    // exact); unpaced: large calls.
                    let due = match per_thread_pps {
                        Some(p) => {
                            let due = ((now - begin) as f64 * p / 1e9) as u64 + 1;
                            if due <= sent {
                                let next = begin + ((sent as f64) * 1e9 / p) as u64;
                                std::thread::sleep(Duration::from_nanos(
                                    next.saturating_sub(now).clamp(1_000, 1_000_000),
                                ));
                                continue;
                            }
                            due - sent
                        }
                        // Unpaced: each call with repeat > 1 costs a fixed
                        // setup of milliseconds (the kernel swaps the XDP
                        // dispatcher), so size calls to last about 200 ms
                        // at the rate seen so far, within the time left.
                        None => {
                            let left = deadline.saturating_sub(now) as f64 / 1e9;
                            match rate_seen {
                                Some(r) => ((r * left.min(0.2)) as u64).max(1 << 12),
                                None => 1 << 16,
                            }
                        }
                    };
                    let repeat = due.min(count - sent).min(1 << 24) as u32;
                    let call_start = monotonic_ns();
                    prog.test_run(TestRunOptions {
                        data_in: Some(&frame),
                        ctx_in: Some(&ctx),
                        repeat,
                        attrs: TestRunAttrs::new().xdp_live_frames(cfg.batch),
                        ..Default::default()
                    })
                    .context("BPF_PROG_TEST_RUN (live frames)")?;
                    let took = (monotonic_ns() - call_start).max(1) as f64 / 1e9;
                    rate_seen = Some(f64::from(repeat) / took);
                    sent += u64::from(repeat);
                    progress.fetch_add(u64::from(repeat), Ordering::Relaxed);
                }
                // The program ran on `cpu` only: its sequence is this stream's count.
                let stamped = seq.get(&0, 0)?.get(cpu).copied().unwrap_or(0);
                Ok((
                    GenThreadReport {
                        queue: 0,
                        sent,
                        zero_copy: false,
                        wakeups: 0,
                        cpu_s: (msee_sys::clock::thread_cpu_ns() - cpu_start) as f64 / 1e9,
                        system_s: (msee_sys::clock::thread_system_ns() - system_start) as f64 / 1e9,
                    },
                    cfg.stream_base + cpu as u16,
                    stamped,
                ))
            },
        ));
    }
    let mut report = GenReport {
        mode: "live_frames".into(),
        ..Default::default()
    };
    let mut err = None;
    for h in handles {
        match h.join() {
            Ok(Ok((t, stream, stamped))) => {
                report.sent += t.sent;
                report.cpu_s += t.cpu_s;
                report.bytes += t.sent * (cfg.template.len as u64 + 4);
                report.per_stream.push((stream, stamped));
                report.threads.push(t);
            }
            Ok(Err(e)) => {
                err.get_or_insert(e);
            }
            Err(_) => {
                err.get_or_insert(anyhow!("a live-frames thread panicked"));
            }
        }
    }
    if let Some(e) = err {
        return Err(e);
    }
    report.per_stream.sort();
    report.duration_s = (monotonic_ns() - start) as f64 / 1e9;
    report.pps = report.sent as f64 / report.duration_s.max(1e-9);
    report.pps_per_cpu_s = report.sent as f64 / report.cpu_s.max(1e-9);
    if let Some(p) = cfg.pps {
        report.offered_pps = report
            .per_stream
            .iter()
            .map(|(s, _)| (*s, p / n as f64))
            .collect();
    }
    Ok(report)
}
