//! Per-stream receive statistics: sequence tracking with a bitmap window
//! (loss, reordering, duplicates), one-way latency in an HDR histogram,
//! received packets in 1 ms bins, the longest gap between packets, loss
//! events (where sequence numbers went missing), and which receive
//! interface carried the stream when (per interface and as a path of
//! segments). A stream that moves between interfaces is one sequence
//! space: the sink feeds every packet, from every interface, in receive-time
//! order into one `StreamState`.
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::frame::Probe;

/// Sequence numbers remembered behind the highest one seen.
pub const WINDOW: u64 = 1 << 16;
const WORDS: usize = (WINDOW / 64) as usize;
/// Width of a rate bin.
pub const BIN_NS: u64 = 1_000_000;
/// Loss events kept per stream (the count of lost packets is always exact).
pub const MAX_LOSS_EVENTS: usize = 4096;
/// Latencies above this are clamped (the histogram's range).
const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Path segments kept per stream (a stream sprayed packet by packet over
/// several links would otherwise grow one per packet).
pub const MAX_SEGMENTS: usize = 1024;

/// A run of missing sequence numbers seen when a later one arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossEvent {
    /// First missing sequence number.
    pub first_seq: u64,
    pub count: u64,
    /// When the packet after the gap arrived, ns since the sink started.
    pub at_ns: u64,
}

/// Packets of a stream on one receive interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RxShare {
    /// Index of the interface in the sink's (and the run's) rx list.
    pub rx: usize,
    pub ifname: String,
    pub received: u64,
    /// First and last packet on this interface, ns since the sink started.
    pub first_rx_ns: u64,
    pub last_rx_ns: u64,
}

/// A run of consecutive packets of a stream (in receive order) on one
/// interface: the stream's path is a list of these.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathSegment {
    pub rx: usize,
    pub received: u64,
    /// ns since the sink started.
    pub first_rx_ns: u64,
    pub last_rx_ns: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct RxState {
    received: u64,
    first_rx_ns: u64,
    last_rx_ns: u64,
}

pub struct StreamState {
    pub stream: u16,
    pub received: u64,
    pub bytes: u64,
    /// Distinct sequence numbers received.
    pub unique: u64,
    pub duplicated: u64,
    /// Arrived after a higher sequence number.
    pub reordered: u64,
    /// Older than the window (counted as reordered too; duplicates among them
    /// cannot be told apart).
    pub late: u64,
    pub max_seq: Option<u64>,
    window: Box<[u64; WORDS]>,
    pub first_rx_ns: u64,
    pub last_rx_ns: u64,
    pub longest_gap_ns: u64,
    /// When the longest gap ended (ns since sink start).
    pub longest_gap_end_ns: u64,
    pub latency: Histogram<u64>,
    /// Received packets per 1 ms since the sink started.
    pub bins: Vec<u32>,
    pub loss_events: Vec<LossEvent>,
    pub loss_events_dropped: u64,
    /// Per receive interface (index = rx), absolute times.
    per_rx: Vec<RxState>,
    /// Absolute times; capped at MAX_SEGMENTS.
    path: Vec<PathSegment>,
    pub path_truncated: bool,
    t0_ns: u64,
}

impl StreamState {
    pub fn new(stream: u16, t0_ns: u64) -> Self {
        Self {
            stream,
            received: 0,
            bytes: 0,
            unique: 0,
            duplicated: 0,
            reordered: 0,
            late: 0,
            max_seq: None,
            window: Box::new([0; WORDS]),
            first_rx_ns: 0,
            last_rx_ns: 0,
            longest_gap_ns: 0,
            longest_gap_end_ns: 0,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("static histogram bounds are valid"),
            bins: Vec::new(),
            loss_events: Vec::new(),
            loss_events_dropped: 0,
            per_rx: Vec::new(),
            path: Vec::new(),
            path_truncated: false,
            t0_ns,
        }
    }

    #[inline]
    fn bit(&mut self, seq: u64) -> (usize, u64) {
        let i = (seq % WINDOW) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    /// Record one packet of `len` bytes received at `rx_ns` on receive
    /// interface `rx` (an index into the sink's interfaces).
    #[inline]
    pub fn record(&mut self, p: &Probe, len: usize, rx_ns: u64, rx: usize) {
        self.attribute(p.seq, rx_ns, rx);
        self.received += 1;
        self.bytes += len as u64;
        if self.received == 1 {
            self.first_rx_ns = rx_ns;
        } else {
            let gap = rx_ns.saturating_sub(self.last_rx_ns);
            if gap > self.longest_gap_ns {
                self.longest_gap_ns = gap;
                self.longest_gap_end_ns = rx_ns.saturating_sub(self.t0_ns);
            }
        }
        self.last_rx_ns = self.last_rx_ns.max(rx_ns);
        let lat = rx_ns.saturating_sub(p.tx_ns).clamp(1, MAX_LATENCY_NS);
        // In range by the clamp, so this cannot fail.
        let _ = self.latency.record(lat);
        let bin = (rx_ns.saturating_sub(self.t0_ns) / BIN_NS) as usize;
        if bin >= self.bins.len() {
            self.bins.resize(bin + 1, 0);
        }
        self.bins[bin] += 1;
        self.sequence(p.seq, rx_ns);
    }

    #[inline]
    fn attribute(&mut self, seq: u64, rx_ns: u64, rx: usize) {
        if rx >= self.per_rx.len() {
            self.per_rx.resize(rx + 1, RxState::default());
        }
        let r = &mut self.per_rx[rx];
        if r.received == 0 {
            r.first_rx_ns = rx_ns;
        }
        r.received += 1;
        r.last_rx_ns = r.last_rx_ns.max(rx_ns);
        if let Some(seg) = self.path.last_mut()
            && seg.rx == rx
        {
            seg.received += 1;
            seg.last_rx_ns = seg.last_rx_ns.max(rx_ns);
            seg.last_seq = seq;
        } else if self.path.len() >= MAX_SEGMENTS {
            self.path_truncated = true;
        } else {
            self.path.push(PathSegment {
                rx,
                received: 1,
                first_rx_ns: rx_ns,
                last_rx_ns: rx_ns,
                first_seq: seq,
                last_seq: seq,
            });
        }
    }

    #[inline]
    fn sequence(&mut self, seq: u64, rx_ns: u64) {
        let expected = self.max_seq.map_or(0, |m| m + 1);
        if seq >= expected {
            if seq > expected {
                self.loss_event(expected, seq - expected, rx_ns);
            }
            // Forget the slots the window slides over.
            if seq - expected >= WINDOW {
                self.window.fill(0);
            } else {
                for s in expected..seq {
                    let (w, b) = self.bit(s);
                    self.window[w] &= !b;
                }
            }
            let (w, b) = self.bit(seq);
            self.window[w] |= b;
            self.max_seq = Some(seq);
            self.unique += 1;
            return;
        }
        let max = self.max_seq.unwrap_or(0);
        if max - seq >= WINDOW {
            self.late += 1;
            self.reordered += 1;
            return;
        }
        let (w, b) = self.bit(seq);
        if self.window[w] & b != 0 {
            self.duplicated += 1;
        } else {
            self.window[w] |= b;
            self.unique += 1;
            self.reordered += 1;
        }
    }

    fn loss_event(&mut self, first_seq: u64, count: u64, rx_ns: u64) {
        if self.loss_events.len() < MAX_LOSS_EVENTS {
            self.loss_events.push(LossEvent {
                first_seq,
                count,
                at_ns: rx_ns.saturating_sub(self.t0_ns),
            });
        } else {
            self.loss_events_dropped += 1;
        }
    }

    /// The report, given how many packets the sender says it sent on this
    /// stream and at what rate (unknown to a bare sink: then the highest
    /// sequence seen + 1 and the receive rate stand in).
    /// `rx_names` names the receive interfaces by index.
    pub fn report(
        &self,
        sent: Option<u64>,
        offered_pps: Option<f64>,
        rx_names: &[String],
    ) -> StreamReport {
        let expected = sent.unwrap_or_else(|| self.max_seq.map_or(0, |m| m + 1));
        let lost = expected.saturating_sub(self.unique);
        let active_ns = self.last_rx_ns.saturating_sub(self.first_rx_ns);
        let offered = offered_pps.or_else(|| {
            (active_ns > 0).then(|| (self.unique + lost) as f64 * 1e9 / active_ns as f64)
        });
        let h = &self.latency;
        let latency = (!h.is_empty()).then(|| LatencyReport {
            count: h.len(),
            min_ns: h.min(),
            mean_ns: h.mean(),
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        });
        StreamReport {
            stream: self.stream,
            sent,
            received: self.received,
            unique: self.unique,
            bytes: self.bytes,
            lost,
            duplicated: self.duplicated,
            reordered: self.reordered,
            late: self.late,
            max_seq: self.max_seq,
            longest_gap_ns: self.longest_gap_ns,
            longest_gap_end_ns: self.longest_gap_end_ns,
            // RFC 6201 loss-derived outage: lost packets at the offered rate.
            outage_ms: offered.map(|r| if r > 0.0 { lost as f64 / r * 1e3 } else { 0.0 }),
            offered_pps: offered,
            latency,
            loss_events: self.loss_events.clone(),
            rate_bins_1ms: self.bins.clone(),
            per_rx: self
                .per_rx
                .iter()
                .enumerate()
                .filter(|(_, r)| r.received > 0)
                .map(|(i, r)| RxShare {
                    rx: i,
                    ifname: rx_names.get(i).cloned().unwrap_or_default(),
                    received: r.received,
                    first_rx_ns: r.first_rx_ns.saturating_sub(self.t0_ns),
                    last_rx_ns: r.last_rx_ns.saturating_sub(self.t0_ns),
                })
                .collect(),
            path: self
                .path
                .iter()
                .map(|seg| PathSegment {
                    first_rx_ns: seg.first_rx_ns.saturating_sub(self.t0_ns),
                    last_rx_ns: seg.last_rx_ns.saturating_sub(self.t0_ns),
                    ..seg.clone()
                })
                .collect(),
            path_truncated: self.path_truncated,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    pub count: u64,
    pub min_ns: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    pub stream: u16,
    /// From the generator, when known.
    pub sent: Option<u64>,
    pub received: u64,
    pub unique: u64,
    pub bytes: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub late: u64,
    pub max_seq: Option<u64>,
    pub longest_gap_ns: u64,
    pub longest_gap_end_ns: u64,
    pub offered_pps: Option<f64>,
    pub outage_ms: Option<f64>,
    pub latency: Option<LatencyReport>,
    pub loss_events: Vec<LossEvent>,
    pub rate_bins_1ms: Vec<u32>,
    /// Which receive interfaces carried the stream: counts and first/last
    /// receive times on each.
    #[serde(default)]
    pub per_rx: Vec<RxShare>,
    /// The stream's path in receive order: one segment per stay on an
    /// interface (a move to another interface starts a new one).
    #[serde(default)]
    pub path: Vec<PathSegment>,
    /// More than MAX_SEGMENTS moves: the path stops early.
    #[serde(default)]
    pub path_truncated: bool,
}

impl StreamReport {
    /// The interface (rx index) that received this stream's last packet
    /// before `at_ns` (ns since the sink started), if any.
    pub fn carrier_before(&self, at_ns: u64) -> Option<usize> {
        self.path
            .iter()
            .rev()
            .find(|seg| seg.first_rx_ns < at_ns)
            .map(|seg| seg.rx)
    }

    /// The interface that received this stream's first packet at or after
    /// `at_ns`, if any.
    pub fn carrier_after(&self, at_ns: u64) -> Option<usize> {
        self.path
            .iter()
            .find(|seg| seg.last_rx_ns >= at_ns)
            .map(|seg| seg.rx)
    }

    /// Packets lost in sequence holes that closed at or after `at_ns` (ns
    /// since the sink started), plus the tail (sent but beyond the highest
    /// sequence received), which no later packet closed. Holes later filled
    /// by reordered packets are not subtracted, and loss events past
    /// MAX_LOSS_EVENTS are not seen: `lost` stays the exact total.
    pub fn lost_after(&self, at_ns: u64) -> u64 {
        let holes: u64 = self
            .loss_events
            .iter()
            .filter(|e| e.at_ns >= at_ns)
            .map(|e| e.count)
            .sum();
        let tail = self
            .sent
            .map_or(0, |s| s.saturating_sub(self.max_seq.map_or(0, |m| m + 1)));
        (holes + tail).min(self.lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(s: &mut StreamState, seqs: &[u64]) {
        for (i, &seq) in seqs.iter().enumerate() {
            let p = Probe {
                stream: 1,
                seq,
                tx_ns: 1_000,
            };
            s.record(&p, 60, 2_000 + i as u64 * 1_000, 0);
        }
    }

    /// A report written as JSON reads back to the same figures, to the last
    /// bit of every float (the value below is one the default parser got
    /// wrong in its last digit, failing an engine test).
    #[test]
    fn latency_report_round_trips_through_json() {
        for mean_ns in [9460.048599999991, 0.1 + 0.2, 1e-300, 123456.789e10] {
            let r = LatencyReport {
                count: 5000,
                min_ns: 1039,
                mean_ns,
                p50_ns: 3557,
                p90_ns: 10911,
                p99_ns: 229759,
                p999_ns: 274943,
                max_ns: 280831,
            };
            let back: LatencyReport =
                serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(back.mean_ns.to_bits(), mean_ns.to_bits(), "{mean_ns}");
            assert_eq!(back, r);
        }
    }

    #[test]
    fn in_order_has_no_loss() {
        let mut s = StreamState::new(1, 0);
        feed(&mut s, &(0..1000).collect::<Vec<_>>());
        let r = s.report(Some(1000), None, &[]);
        assert_eq!(
            (r.received, r.lost, r.reordered, r.duplicated),
            (1000, 0, 0, 0)
        );
        assert!(r.loss_events.is_empty());
        assert_eq!(r.latency.unwrap().min_ns, 1_000);
    }

    #[test]
    fn loss_reorder_duplicate() {
        let mut s = StreamState::new(1, 0);
        // 3 and 4 missing, 6 late (after 7), 7 twice.
        feed(&mut s, &[0, 1, 2, 5, 7, 6, 7, 8]);
        let r = s.report(Some(10), None, &[]);
        assert_eq!(r.received, 8);
        assert_eq!(r.unique, 7);
        assert_eq!(r.duplicated, 1);
        assert_eq!(r.reordered, 1);
        // 3, 4 and the tail 9.
        assert_eq!(r.lost, 3);
        assert_eq!(
            r.loss_events
                .iter()
                .map(|e| (e.first_seq, e.count))
                .collect::<Vec<_>>(),
            vec![(3, 2), (6, 1)]
        );
        // Outage at 1000 pps: 3 lost = 3 ms.
        assert_eq!(s.report(Some(10), Some(1000.0), &[]).outage_ms, Some(3.0));
    }

    #[test]
    fn window_slides_and_old_is_late() {
        let mut s = StreamState::new(1, 0);
        feed(&mut s, &[0, WINDOW + 10, 5, WINDOW + 10]);
        let r = s.report(None, None, &[]);
        assert_eq!(r.late, 1);
        assert_eq!(r.duplicated, 1);
        assert_eq!(r.unique, 2);
    }

    /// A stream that moves from interface 0 to 1 and back, with a hole in
    /// the sequence while it moves: one sequence space, a path of three
    /// segments, carriers before and after each move, loss after a time.
    #[test]
    fn a_stream_moving_between_interfaces_is_one_sequence_space() {
        let t0 = 1_000_000;
        let mut s = StreamState::new(3, t0);
        let names = vec!["p".to_owned(), "s".to_owned()];
        let mut rec = |seq: u64, at_ms: u64, rx: usize| {
            let p = Probe {
                stream: 3,
                seq,
                tx_ns: t0,
            };
            s.record(&p, 64, t0 + at_ms * BIN_NS, rx);
        };
        // 0..10 on p at 0..9 ms; 10..13 lost; 13..20 on s at 13..19 ms;
        // 20..30 back on p at 20..29 ms (nothing lost).
        for q in 0..10 {
            rec(q, q, 0);
        }
        for q in 13..20 {
            rec(q, q, 1);
        }
        for q in 20..30 {
            rec(q, q, 0);
        }
        let r = s.report(Some(30), Some(1000.0), &names);
        assert_eq!((r.received, r.lost, r.reordered), (27, 3, 0));
        assert_eq!(r.outage_ms, Some(3.0));
        // The longest gap (9 ms -> 13 ms) ended at 13 ms.
        assert_eq!(r.longest_gap_ns, 4 * BIN_NS);
        assert_eq!(r.longest_gap_end_ns, 13 * BIN_NS);
        let on = |rx: usize| r.per_rx.iter().find(|x| x.rx == rx).unwrap().clone();
        assert_eq!(
            on(0),
            RxShare {
                rx: 0,
                ifname: "p".into(),
                received: 20,
                first_rx_ns: 0,
                last_rx_ns: 29 * BIN_NS,
            }
        );
        assert_eq!((on(1).received, on(1).first_rx_ns), (7, 13 * BIN_NS));
        let segs: Vec<_> = r
            .path
            .iter()
            .map(|g| (g.rx, g.received, g.first_seq, g.last_seq))
            .collect();
        assert_eq!(segs, vec![(0, 10, 0, 9), (1, 7, 13, 19), (0, 10, 20, 29)]);
        let ms = |m: u64| m * BIN_NS;
        assert_eq!(r.carrier_before(ms(11)), Some(0));
        assert_eq!(r.carrier_after(ms(11)), Some(1));
        assert_eq!(r.carrier_before(ms(20)), Some(1));
        assert_eq!(r.carrier_after(ms(20)), Some(0));
        assert_eq!(r.carrier_before(0), None);
        assert_eq!(r.carrier_after(ms(30)), None);
        // The hole closed at 13 ms: lost after 11 ms, nothing after 14 ms.
        assert_eq!(r.lost_after(ms(11)), 3);
        assert_eq!(r.lost_after(ms(14)), 0);
        // Bins count the stream on both interfaces.
        assert_eq!(r.rate_bins_1ms.iter().sum::<u32>(), 27);
    }

    #[test]
    fn path_is_capped() {
        let mut s = StreamState::new(1, 0);
        for seq in 0..(2 * MAX_SEGMENTS as u64) {
            let p = Probe {
                stream: 1,
                seq,
                tx_ns: 0,
            };
            s.record(&p, 64, seq + 1, (seq % 2) as usize);
        }
        let r = s.report(None, None, &[]);
        assert_eq!(r.path.len(), MAX_SEGMENTS);
        assert!(r.path_truncated);
        assert_eq!(r.per_rx.iter().map(|x| x.received).sum::<u64>(), r.received);
    }
}
