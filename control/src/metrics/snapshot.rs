//! What the daemon's main loop publishes once a second for readers that
//! must never wait on it: the Prometheus endpoint.
//! Plain data, cheap to clone behind an `Arc`.
use std::collections::BTreeMap;

/// One (link, direction)'s counters, as the dataplane has them now.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DirCounters {
    pub packets: u64,
    pub bytes: u64,
    /// By `msee_abi::DropReason::name`.
    pub drops: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinkSample {
    /// e.g. `er-ams/AzurePrivatePeering/primary`.
    pub name: String,
    pub ifname: String,
    /// Empty for an Azure-side or Microsoft-edge port.
    pub circuit: String,
    pub peering: String,
    /// primary, secondary or azure.
    pub role: String,
    pub carries: bool,
    /// Link verdict changes by their cause ("BFD down", "carrier up"...).
    pub flips: BTreeMap<String, u64>,
    /// Into the MSEE on this link (Azure Monitor's "in" for a customer link).
    pub rx: DirCounters,
    /// Out of the MSEE on this link ("out": toward the customer).
    pub tx: DirCounters,
    /// Frames handed to the kernel (the MSEE's own ARP, BGP, BFD...).
    pub to_kernel: u64,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionSample {
    pub name: String,
    pub circuit: String,
    pub peering: String,
    pub link: String,
    pub family: String,
    pub peer: String,
    pub peer_as: u32,
    pub established: bool,
    /// Prefixes the peer announced, each announcement counted (a counter).
    pub prefixes_received: u64,
    /// Announced prefixes refused, by reason (`Refusal::label`).
    pub prefixes_refused: BTreeMap<String, u64>,
    /// Prefixes accepted into the session's Adj-RIB-In now.
    pub prefixes_accepted: u64,
    pub prefixes_advertised: u64,
    /// Established sessions that went down (seen by the main loop).
    pub flaps: u64,
    /// Unix seconds of the last change to Established or Down.
    pub last_change_unix: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BfdSample {
    pub name: String,
    pub peer: String,
    pub state: String,
    pub detection_time_us: Option<u64>,
    pub packets_in: u64,
    pub packets_out: u64,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DaemonSample {
    pub version: String,
    pub routes_upserted: u64,
    pub routes_removed: u64,
    pub fib_batches: u64,
    pub fib_write_errors: u64,
    /// Routes and next-hop groups in the dataplane now.
    pub routes: u64,
    pub groups: u64,
    /// The forwarding table in front of the LPM tries.
    #[serde(default)]
    pub fib_table: FibTableSample,
}

/// The forwarding table's occupancy (`dataplane::FibStats`) and the lookups
/// it left to the LPM tries; per family, IPv4 then IPv6.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FibTableSample {
    /// Packets whose route the LPM trie gave (the domain had no table of
    /// the family), summed over CPUs: a counter.
    pub fallback_lookups: [u64; 2],
    /// Pool nodes in use and in all.
    pub nodes_in_use: [u64; 2],
    pub nodes: [u64; 2],
    /// Bytes of a node.
    pub node_bytes: [u64; 2],
    /// Domain slots (tables), and domains holding one.
    pub slots: u64,
    pub slots_used: u64,
    /// Domains with routes of the family that the table does not hold.
    pub domains_on_trie: [u64; 2],
    /// Bytes of the table's maps (allocated whole at load).
    pub map_bytes: u64,
}

/// Everything at one instant.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Unix milliseconds when the main loop took it.
    pub at_unix_ms: u64,
    pub links: Vec<LinkSample>,
    pub sessions: Vec<SessionSample>,
    pub bfd: Vec<BfdSample>,
    pub daemon: DaemonSample,
}

/// The main loop's outbox: readers take the latest snapshot's `Arc` and
/// never hold a lock while they encode or send it. A reader that wants
/// fresher figures (a scrape) asks for a refresh and waits a bounded time
/// for it; the main loop takes one when it gets to it, so a reader never
/// holds the loop up, and the loop never waits for a reader.
#[derive(Clone, Debug)]
pub struct Published {
    tx: std::sync::Arc<tokio::sync::watch::Sender<std::sync::Arc<Snapshot>>>,
    want: std::sync::Arc<tokio::sync::Notify>,
}

impl Default for Published {
    fn default() -> Self {
        Self {
            tx: std::sync::Arc::new(tokio::sync::watch::Sender::new(Default::default())),
            want: Default::default(),
        }
    }
}

impl Published {
    pub fn set(&self, s: Snapshot) {
        self.tx.send_replace(std::sync::Arc::new(s));
    }

    pub fn get(&self) -> std::sync::Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    /// A snapshot taken after this call, or the latest one if the main loop
    /// does not publish one within `wait`.
    pub async fn fresh(&self, wait: std::time::Duration) -> std::sync::Arc<Snapshot> {
        let mut rx = self.tx.subscribe();
        rx.mark_unchanged();
        self.want.notify_one();
        let _ = tokio::time::timeout(wait, rx.changed()).await;
        self.get()
    }

    /// Resolves when a reader asked for a fresh snapshot (the main loop's
    /// side of [`Published::fresh`]).
    pub async fn wanted(&self) {
        self.want.notified().await;
    }
}
