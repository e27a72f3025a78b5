//! The AF_XDP generator: one thread and one socket per tx queue. Flows are
//! dealt round-robin to threads, so each stream's sequence comes from one
//! thread and rises by one per packet.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use xdpilone::xdp::XdpDesc;

use super::{
    enter_netns,
    frame::{Destinations, Template, TrafficSpec},
    pacing::{Pacer, Rate},
    pin_to_cpu,
    xsk::{BindMode, Xsk},
};
use msee_sys::monotonic_ns;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenConfig {
    pub netns: Option<String>,
    pub ifindex: u32,
    pub queues: Vec<u32>,
    pub spec: TrafficSpec,
    pub rate: Rate,
    /// Both bounds apply: stop at whichever comes first.
    pub count: u64,
    pub duration: Duration,
    pub batch: u32,
    pub bind: BindMode,
    /// Pin thread i to cpus[i % len].
    pub cpus: Vec<usize>,
    /// Spread the frames over these destinations: a thread's frame n goes
    /// to entry n % len (rewritten in place, checksums updated); `None`:
    /// the spec's own.
    #[serde(default)]
    pub destinations: Option<Destinations>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GenThreadReport {
    pub queue: u32,
    pub sent: u64,
    pub zero_copy: bool,
    pub wakeups: u64,
    /// CPU time this thread used while sending (see `thread_cpu_ns`).
    pub cpu_s: f64,
    /// The kernel's part of it (system time, `thread_system_ns`): the
    /// share a generator's own code cannot win back.
    #[serde(default)]
    pub system_s: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GenReport {
    pub mode: String,
    /// Packets handed to the kernel and completed.
    pub sent: u64,
    pub bytes: u64,
    /// (stream, packets sent) per stream.
    pub per_stream: Vec<(u16, u64)>,
    pub duration_s: f64,
    pub pps: f64,
    /// CPU seconds of all sending threads, and packets per CPU second: the
    /// per-core rate, independent of how much CPU other load left us.
    pub cpu_s: f64,
    pub pps_per_cpu_s: f64,
    /// (stream, target pps) when paced: a thread's share of the rate split
    /// over the flows it carries.
    pub offered_pps: Vec<(u16, f64)>,
    pub threads: Vec<GenThreadReport>,
}

impl GenReport {
    pub fn sent_on(&self, stream: u16) -> Option<u64> {
        self.per_stream
            .iter()
            .find(|(s, _)| *s == stream)
            .map(|(_, n)| *n)
    }

    /// The stream's target rate if paced, else the rate it was sent at.
    pub fn offered_on(&self, stream: u16) -> Option<f64> {
        self.offered_pps
            .iter()
            .find(|(s, _)| *s == stream)
            .map(|(_, p)| *p)
            .or_else(|| {
                self.sent_on(stream)
                    .map(|n| n as f64 / self.duration_s.max(1e-9))
            })
    }
}

struct ThreadOut {
    report: GenThreadReport,
    bytes: u64,
    per_stream: Vec<(u16, u64)>,
    offered: Vec<(u16, f64)>,
    start_ns: u64,
    end_ns: u64,
}

/// A running generator.
pub struct Generator {
    sent: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<ThreadOut>>>,
}

impl Generator {
    /// Open every socket, then start sending; an error in any setup stops
    /// all threads before a frame leaves.
    pub fn start(cfg: GenConfig) -> Result<Self> {
        cfg.spec.validate()?;
        let nq = cfg.queues.len();
        if nq == 0 {
            bail!("no tx queue given");
        }
        if usize::from(cfg.spec.flows) < nq {
            bail!(
                "{} flows for {nq} queues: every queue needs a flow",
                cfg.spec.flows
            );
        }
        if cfg.count == 0 || cfg.duration.is_zero() {
            bail!("both a packet count and a duration are needed, and must be > 0");
        }
        let templates = Arc::new(cfg.spec.templates());
        let sent = Arc::new((0..nq).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        let stop = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let mut threads = Vec::new();
        for (t, &queue) in cfg.queues.iter().enumerate() {
            let cfg = cfg.clone();
            let templates = templates.clone();
            let (sent, stop, go, ready) =
                (sent.clone(), stop.clone(), go.clone(), ready_tx.clone());
            let flows: Vec<u16> = (0..cfg.spec.flows)
                .filter(|f| usize::from(*f) % nq == t)
                .collect();
            // Share of the count: the first threads take the remainder.
            let count = cfg.count / nq as u64 + u64::from((t as u64) < cfg.count % nq as u64);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("gen-q{queue}"))
                    .spawn(move || -> Result<ThreadOut> {
                        if !cfg.cpus.is_empty() {
                            pin_to_cpu(cfg.cpus[t % cfg.cpus.len()]);
                        }
                        let setup = enter_netns(cfg.netns.as_deref())
                            .and_then(|_| Xsk::open(cfg.ifindex, queue, false, true, cfg.bind));
                        let xsk = match setup {
                            Ok(x) => {
                                let _ = ready.send(Ok(()));
                                x
                            }
                            Err(e) => {
                                let _ = ready.send(Err(anyhow!("queue {queue}: {e:#}")));
                                return Err(e);
                            }
                        };
                        while !go.load(Ordering::Acquire) {
                            if stop.load(Ordering::Relaxed) {
                                bail!("aborted before start");
                            }
                            std::thread::sleep(Duration::from_micros(100));
                        }
                        let rate = cfg.rate.split(nq);
                        send_loop(xsk, &cfg, rate, count, &templates, &flows, &sent[t], &stop)
                    })
                    .context("spawning a generator thread")?,
            );
        }
        drop(ready_tx);
        let first_err = super::first_setup_error(&ready_rx, nq, "generator");
        let this = Self {
            sent,
            stop,
            threads,
        };
        if let Some(e) = first_err {
            this.stop.store(true, Ordering::Relaxed);
            let _ = this.join();
            return Err(e.context("generator setup"));
        }
        go.store(true, Ordering::Release);
        Ok(this)
    }

    /// Packets sent so far (all threads).
    pub fn sent(&self) -> u64 {
        self.sent.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The flag `stop` sets, for a guard that stops the generator when
    /// its owner goes away.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.threads
            .iter()
            .all(std::thread::JoinHandle::is_finished)
    }

    pub fn join(self) -> Result<GenReport> {
        let mut r = GenReport {
            mode: "af_xdp".into(),
            ..Default::default()
        };
        let (mut start, mut end) = (u64::MAX, 0);
        let mut err = None;
        for t in self.threads {
            match t.join() {
                Ok(Ok(o)) => {
                    r.sent += o.report.sent;
                    r.cpu_s += o.report.cpu_s;
                    r.bytes += o.bytes;
                    r.per_stream.extend(o.per_stream);
                    r.offered_pps.extend(o.offered);
                    r.threads.push(o.report);
                    start = start.min(o.start_ns);
                    end = end.max(o.end_ns);
                }
                Ok(Err(e)) => {
                    err.get_or_insert(e);
                }
                Err(_) => {
                    err.get_or_insert(anyhow!("a generator thread panicked"));
                }
            }
        }
        if let Some(e) = err {
            return Err(e);
        }
        r.per_stream.sort();
        r.offered_pps.sort_by_key(|(s, _)| *s);
        r.pps_per_cpu_s = r.sent as f64 / r.cpu_s.max(1e-9);
        r.duration_s = end.saturating_sub(start) as f64 / 1e9;
        r.pps = if r.duration_s > 0.0 {
            r.sent as f64 / r.duration_s
        } else {
            0.0
        };
        Ok(r)
    }
}

#[allow(clippy::too_many_arguments)]
fn send_loop(
    mut xsk: Xsk,
    cfg: &GenConfig,
    rate: Rate,
    count: u64,
    templates: &[Vec<Template>],
    flows: &[u16],
    progress: &AtomicU64,
    stop: &AtomicBool,
) -> Result<ThreadOut> {
    let nf = flows.len() as u64;
    let np = templates[0].len() as u64;
    // A chunk may hold a longer frame from before only if sizes vary.
    let zero = np > 1;
    let mut free: Vec<u64> = (0..2 * xsk.ring_size).map(Xsk::chunk).collect();
    let mut seqs = vec![0u64; flows.len()];
    let tmpl = |n: u64| -> &Template {
        &templates[usize::from(flows[(n % nf) as usize])][((n / nf) % np) as usize]
    };
    super::pacing::tight_timers();
    let start = monotonic_ns();
    let cpu_start = msee_sys::clock::thread_cpu_ns();
    let system_start = msee_sys::clock::thread_system_ns();
    let deadline = start + cfg.duration.as_nanos() as u64;
    let mut pacer = Pacer::new(rate, start);
    let (mut queued, mut completed, mut bytes, mut wakeups) = (0u64, 0u64, 0u64, 0u64);
    let batch = cfg.batch.max(1);
    let mut tx = xsk.tx.take().ok_or_else(|| anyhow!("no tx ring"))?;
    loop {
        let now = monotonic_ns();
        if queued >= count || now >= deadline || stop.load(Ordering::Relaxed) {
            break;
        }
        // Reap completions first: they free chunks.
        {
            let mut r = xsk.device.complete(batch * 2);
            while let Some(a) = r.read() {
                free.push(a);
                completed += 1;
            }
            r.release();
        }
        let max = (batch as usize)
            .min(free.len())
            .min((count - queued) as usize);
        let mut w = tx.transmit(max as u32);
        let cap = w.capacity() as usize;
        let n = pacer.take(now, cap, |i| tmpl(queued + i as u64).len as u16 + 4);
        if n == 0 {
            drop(w);
            if cap == 0 || max == 0 {
                // Rings full: let the kernel drain them.
                if tx.needs_wakeup() {
                    tx.wake();
                    wakeups += 1;
                }
            } else {
                pacer.wait(deadline);
            }
            continue;
        }
        // One stamp per batch: the batch leaves together at commit.
        let ts = monotonic_ns();
        for i in 0..n as u64 {
            let k = queued + i;
            let t = tmpl(k);
            let fi = (k % nf) as usize;
            let addr = free.pop().expect("n <= free chunks");
            // SAFETY: the chunk came off the free list, so we own it.
            let buf = unsafe { xsk.frame_mut(addr, t.len) };
            t.write(buf, seqs[fi], ts, zero);
            if let Some(d) = &cfg.destinations {
                d.apply(buf, k as usize);
            }
            seqs[fi] += 1;
            bytes += t.len as u64 + 4;
            w.insert_once(XdpDesc {
                addr,
                len: t.len as u32,
                options: 0,
            });
        }
        w.commit();
        drop(w);
        queued += n as u64;
        progress.store(queued, Ordering::Relaxed);
        if tx.needs_wakeup() {
            tx.wake();
            wakeups += 1;
        }
    }
    let end = monotonic_ns();
    let cpu_s = (msee_sys::clock::thread_cpu_ns() - cpu_start) as f64 / 1e9;
    let system_s = (msee_sys::clock::thread_system_ns() - system_start) as f64 / 1e9;
    // Drain: wait (bounded) for the kernel to complete what was queued.
    let drain_until = monotonic_ns() + 200_000_000;
    while completed < queued && monotonic_ns() < drain_until {
        if tx.needs_wakeup() {
            tx.wake();
        }
        let mut r = xsk.device.complete(batch * 2);
        while r.read().is_some() {
            completed += 1;
        }
        r.release();
        std::hint::spin_loop();
    }
    if completed < queued {
        log::warn!(
            "queue {}: {} of {queued} frames never completed",
            xsk.queue,
            queued - completed
        );
    }
    let per_stream = flows
        .iter()
        .zip(&seqs)
        .map(|(&f, &n)| (cfg.spec.stream_base + f, n))
        .collect();
    // The thread's rate is shared evenly by its flows (round robin).
    let offered = rate
        .pps(cfg.spec.sizes.mean())
        .map(|p| {
            flows
                .iter()
                .map(|&f| (cfg.spec.stream_base + f, p / nf as f64))
                .collect()
        })
        .unwrap_or_default();
    Ok(ThreadOut {
        report: GenThreadReport {
            queue: xsk.queue,
            sent: queued,
            zero_copy: xsk.zero_copy,
            wakeups,
            cpu_s,
            system_s,
        },
        bytes,
        per_stream,
        offered,
        start_ns: start,
        end_ns: end,
    })
}
