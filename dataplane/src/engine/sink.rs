//! The AF_XDP sink: the `xsk` program (optionally behind `lossy`) on the
//! interface, one socket and thread per rx queue, per-stream statistics.
use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::programs::XdpMode;
use serde::{Deserialize, Serialize};

use super::{
    enter_netns,
    frame::parse,
    now_ns, pin_to_cpu,
    stats::StreamState,
    xsk::{BindMode, Xsk, XskProgram},
};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SinkConfig {
    pub netns: Option<String>,
    pub ifindex: u32,
    pub queues: Vec<u32>,
    pub bind: BindMode,
    /// Native (driver) XDP unless generic is asked for.
    pub generic_xdp: bool,
    /// Put `lossy` in front of `xsk`, dropping every k-th frame.
    pub drop_every: Option<u64>,
    /// Hard upper bound on the sink's run time.
    pub max_duration: Duration,
    pub batch: u32,
    pub cpus: Vec<usize>,
}

/// What the sink saw, before the sender's figures are folded in.
pub struct SinkResult {
    pub streams: BTreeMap<u16, StreamState>,
    /// Frames that were not test frames (ARP, ND, ...).
    pub other: u64,
    pub zero_copy: bool,
    /// (seen, dropped) by `lossy`.
    pub lossy: Option<(u64, u64)>,
    pub t0_ns: u64,
}

struct ThreadOut {
    streams: Vec<StreamState>,
    other: u64,
    zero_copy: bool,
}

pub struct Sink {
    received: Arc<Vec<AtomicU64>>,
    last_rx_ns: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<ThreadOut>>>,
    program: Arc<Mutex<XskProgram>>,
    t0_ns: u64,
}

impl Sink {
    /// Attach the programs and open every socket; returns once all queues are
    /// registered and receiving.
    pub fn start(cfg: SinkConfig) -> Result<Self> {
        if cfg.queues.is_empty() {
            bail!("no rx queue given");
        }
        let mode = if cfg.generic_xdp {
            XdpMode::Skb
        } else {
            XdpMode::Driver
        };
        let (ns, ifindex, drop_every) = (cfg.netns.clone(), cfg.ifindex, cfg.drop_every);
        // Attach from inside the namespace (ifindex is per namespace).
        let program = std::thread::spawn(move || -> Result<XskProgram> {
            enter_netns(ns.as_deref())?;
            XskProgram::attach(ifindex, mode, drop_every)
        })
        .join()
        .map_err(|_| anyhow!("sink setup thread panicked"))??;
        let program = Arc::new(Mutex::new(program));
        let nq = cfg.queues.len();
        let received = Arc::new((0..nq).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        let last_rx_ns = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let t0_ns = now_ns();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let mut threads = Vec::new();
        for (t, &queue) in cfg.queues.iter().enumerate() {
            let cfg = cfg.clone();
            let (received, last, stop, ready, program) = (
                received.clone(),
                last_rx_ns.clone(),
                stop.clone(),
                ready_tx.clone(),
                program.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sink-q{queue}"))
                    .spawn(move || -> Result<ThreadOut> {
                        if !cfg.cpus.is_empty() {
                            pin_to_cpu(cfg.cpus[t % cfg.cpus.len()]);
                        }
                        let setup = (|| -> Result<Xsk> {
                            enter_netns(cfg.netns.as_deref())?;
                            let mut xsk = Xsk::open(cfg.ifindex, queue, true, false, cfg.bind)?;
                            let mut chunks: Vec<u64> = (0..xsk.ring_size).map(Xsk::chunk).collect();
                            xsk.fill(&mut chunks);
                            program
                                .lock()
                                .map_err(|_| anyhow!("xsk program lock poisoned"))?
                                .register(queue, xsk.fd())?;
                            Ok(xsk)
                        })();
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
                        let out = recv_loop(xsk, &cfg, t0_ns, &received[t], &last, &stop);
                        if let Ok(mut p) = program.lock() {
                            p.unregister(queue);
                        }
                        out
                    })
                    .context("spawning a sink thread")?,
            );
        }
        drop(ready_tx);
        let first_err = super::first_setup_error(&ready_rx, nq, "sink");
        let this = Self {
            received,
            last_rx_ns,
            stop,
            threads,
            program,
            t0_ns,
        };
        if let Some(e) = first_err {
            this.stop();
            let _ = this.join();
            return Err(e.context("sink setup"));
        }
        Ok(this)
    }

    pub fn received(&self) -> u64 {
        self.received
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// CLOCK_MONOTONIC of the last batch received (0 = none yet).
    pub fn last_rx_ns(&self) -> u64 {
        self.last_rx_ns.load(Ordering::Relaxed)
    }

    pub fn t0_ns(&self) -> u64 {
        self.t0_ns
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Wait until nothing arrived for `quiet` (or `limit` passed), then stop.
    pub fn settle(&self, quiet: Duration, limit: Duration) {
        let until = now_ns() + limit.as_nanos() as u64;
        let quiet = quiet.as_nanos() as u64;
        loop {
            let now = now_ns();
            if now >= until || now.saturating_sub(self.last_rx_ns()) >= quiet {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop();
    }

    pub fn join(self) -> Result<SinkResult> {
        self.stop();
        let mut streams: BTreeMap<u16, StreamState> = BTreeMap::new();
        let (mut other, mut zero_copy, mut err) = (0, false, None);
        for t in self.threads {
            match t.join() {
                Ok(Ok(o)) => {
                    other += o.other;
                    zero_copy |= o.zero_copy;
                    for s in o.streams {
                        match streams.remove(&s.stream) {
                            Some(mut prev) => {
                                prev.merge(s);
                                streams.insert(prev.stream, prev);
                            }
                            None => {
                                streams.insert(s.stream, s);
                            }
                        }
                    }
                }
                Ok(Err(e)) => {
                    err.get_or_insert(e);
                }
                Err(_) => {
                    err.get_or_insert(anyhow!("a sink thread panicked"));
                }
            }
        }
        if let Some(e) = err {
            return Err(e);
        }
        let lossy = self.program.lock().ok().and_then(|p| p.lossy_counts());
        Ok(SinkResult {
            streams,
            other,
            zero_copy,
            lossy,
            t0_ns: self.t0_ns,
        })
    }
}

fn recv_loop(
    mut xsk: Xsk,
    cfg: &SinkConfig,
    t0_ns: u64,
    progress: &AtomicU64,
    last_rx: &AtomicU64,
    stop: &AtomicBool,
) -> Result<ThreadOut> {
    let mut rx = xsk.rx.take().ok_or_else(|| anyhow!("no rx ring"))?;
    // Chunks not handed to the fill ring at start, plus received ones.
    let mut recycle: Vec<u64> = (xsk.ring_size..2 * xsk.ring_size).map(Xsk::chunk).collect();
    let mut states: Vec<Option<Box<StreamState>>> = (0..=u16::MAX).map(|_| None).collect();
    let deadline = t0_ns + cfg.max_duration.as_nanos() as u64;
    let (mut total, mut other) = (0u64, 0u64);
    let batch = cfg.batch.max(1);
    let mut stopping = false;
    loop {
        let mut r = rx.receive(batch);
        if r.capacity() == 0 {
            drop(r);
            if !recycle.is_empty() {
                xsk.fill(&mut recycle);
            }
            if stopping {
                break;
            }
            // One more pass after stop drains what is in the ring.
            if stop.load(Ordering::Relaxed) || now_ns() >= deadline {
                stopping = true;
                continue;
            }
            xsk.poll_rx(1);
            continue;
        }
        let ts = now_ns();
        let mut n = 0u64;
        while let Some(d) = r.read() {
            // SAFETY: the kernel handed this chunk to us through the rx ring.
            let frame = unsafe { xsk.frame_mut(d.addr, d.len as usize) };
            match parse(frame) {
                Some(p) => states[usize::from(p.stream)]
                    .get_or_insert_with(|| Box::new(StreamState::new(p.stream, t0_ns)))
                    .record(&p, d.len as usize + 4, ts),
                None => other += 1,
            }
            recycle.push(Xsk::chunk_of(d.addr));
            n += 1;
        }
        r.release();
        xsk.fill(&mut recycle);
        total += n;
        progress.store(total, Ordering::Relaxed);
        last_rx.fetch_max(ts, Ordering::Relaxed);
    }
    Ok(ThreadOut {
        streams: states.into_iter().flatten().map(|b| *b).collect(),
        other,
        zero_copy: xsk.zero_copy,
    })
}
