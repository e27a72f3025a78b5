//! Per-port counters as the operator reads them: a table and JSON.
use msee_abi::{DropReason, LinkCounters};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortReport {
    /// The link's name, e.g. `er-ams/AzurePrivatePeering/primary`.
    pub port: String,
    pub ifname: String,
    /// The circuit and peering of a customer link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peering: Option<String>,
    /// primary, secondary or azure.
    #[serde(default)]
    pub role: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub pass_packets: u64,
    /// ICMP time exceeded replies sent back on this link.
    pub icmp_errors: u64,
    pub drops: std::collections::BTreeMap<String, u64>,
    /// Policer rates in bit/s, toward the MSEE (rx) and out of it (tx);
    /// `None` where the link is not policed.
    pub police_rx_bps: Option<u64>,
    pub police_tx_bps: Option<u64>,
}

impl PortReport {
    /// A link's report from its rx and tx counter rows; drops of both
    /// directions are added up by reason.
    pub fn new(port: &str, ifname: &str, rx: &LinkCounters, tx: &LinkCounters) -> Self {
        Self {
            port: port.to_owned(),
            ifname: ifname.to_owned(),
            circuit: None,
            peering: None,
            role: String::new(),
            rx_packets: rx.packets,
            rx_bytes: rx.bytes,
            tx_packets: tx.packets,
            tx_bytes: tx.bytes,
            pass_packets: rx.to_kernel,
            icmp_errors: rx.icmp_errors,
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.name().to_owned(), rx.dropped(*r) + tx.dropped(*r)))
                .collect(),
            police_rx_bps: None,
            police_tx_bps: None,
        }
    }

    /// With the link's policer rates (bytes/s in the maps; 0 = off).
    pub fn with_policers(mut self, rx_bytes_per_sec: u64, tx_bytes_per_sec: u64) -> Self {
        let bps = |b: u64| (b > 0).then_some(b * 8);
        self.police_rx_bps = bps(rx_bytes_per_sec);
        self.police_tx_bps = bps(tx_bytes_per_sec);
        self
    }
}

pub fn table(reports: &[PortReport]) -> String {
    let w = reports
        .iter()
        .map(|r| r.port.len())
        .max()
        .unwrap_or(0)
        .max(10);
    let mut out = format!(
        "{:<w$} {:<10} {:>10} {:>12} {:>10} {:>12} {:>8}  drops\n",
        "port", "ifname", "rx_pkts", "rx_bytes", "tx_pkts", "tx_bytes", "to_kern"
    );
    for r in reports {
        let drops: Vec<String> = r
            .drops
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        out += &format!(
            "{:<w$} {:<10} {:>10} {:>12} {:>10} {:>12} {:>8}  {}\n",
            r.port,
            r.ifname,
            r.rx_packets,
            r.rx_bytes,
            r.tx_packets,
            r.tx_bytes,
            r.pass_packets,
            if drops.is_empty() {
                "-".to_owned()
            } else {
                drops.join(" ")
            }
        );
    }
    out
}
