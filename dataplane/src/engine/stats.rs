//! Per-stream receive statistics: sequence tracking with a bitmap window
//! (loss, reordering, duplicates), one-way latency in an HDR histogram,
//! received packets in 1 ms bins, the longest gap between packets, and loss
//! events (where sequence numbers went missing).
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

/// A run of missing sequence numbers seen when a later one arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossEvent {
    /// First missing sequence number.
    pub first_seq: u64,
    pub count: u64,
    /// When the packet after the gap arrived, ns since the sink started.
    pub at_ns: u64,
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
            t0_ns,
        }
    }

    #[inline]
    fn bit(&mut self, seq: u64) -> (usize, u64) {
        let i = (seq % WINDOW) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    /// Record one packet of `len` bytes received at `rx_ns`.
    #[inline]
    pub fn record(&mut self, p: &Probe, len: usize, rx_ns: u64) {
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

    /// Fold in the state of the same stream seen by another queue's thread
    /// (RSS keeps a flow on one queue, so this is rare; counts stay exact,
    /// sequence-derived figures become approximate).
    pub fn merge(&mut self, o: StreamState) {
        self.received += o.received;
        self.bytes += o.bytes;
        self.unique += o.unique;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.late += o.late;
        self.max_seq = self.max_seq.max(o.max_seq);
        self.first_rx_ns = if self.received == o.received {
            o.first_rx_ns
        } else {
            self.first_rx_ns.min(o.first_rx_ns)
        };
        self.last_rx_ns = self.last_rx_ns.max(o.last_rx_ns);
        if o.longest_gap_ns > self.longest_gap_ns {
            self.longest_gap_ns = o.longest_gap_ns;
            self.longest_gap_end_ns = o.longest_gap_end_ns;
        }
        let _ = self.latency.add(&o.latency);
        if o.bins.len() > self.bins.len() {
            self.bins.resize(o.bins.len(), 0);
        }
        for (a, b) in self.bins.iter_mut().zip(o.bins) {
            *a += b;
        }
        self.loss_events.extend(o.loss_events);
        self.loss_events.sort_by_key(|e| e.first_seq);
    }

    /// The report, given how many packets the sender says it sent on this
    /// stream and at what rate (unknown to a bare sink: then the highest
    /// sequence seen + 1 and the receive rate stand in).
    pub fn report(&self, sent: Option<u64>, offered_pps: Option<f64>) -> StreamReport {
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
            s.record(&p, 60, 2_000 + i as u64 * 1_000);
        }
    }

    #[test]
    fn in_order_has_no_loss() {
        let mut s = StreamState::new(1, 0);
        feed(&mut s, &(0..1000).collect::<Vec<_>>());
        let r = s.report(Some(1000), None);
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
        let r = s.report(Some(10), None);
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
        assert_eq!(s.report(Some(10), Some(1000.0)).outage_ms, Some(3.0));
    }

    #[test]
    fn window_slides_and_old_is_late() {
        let mut s = StreamState::new(1, 0);
        feed(&mut s, &[0, WINDOW + 10, 5, WINDOW + 10]);
        let r = s.report(None, None);
        assert_eq!(r.late, 1);
        assert_eq!(r.duplicated, 1);
        assert_eq!(r.unique, 2);
    }
}
