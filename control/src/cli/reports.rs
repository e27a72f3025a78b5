//! The usage (billing) and availability reports as text.
use super::table;
use crate::usage::report::{AvailabilityView, UsageView};

/// Bytes with a decimal unit (as billed: 1 GB = 10^9 bytes).
fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.3} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.3} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

pub fn usage(u: &UsageView) -> String {
    let mut out = format!(
        "{}: {} {} at {} ({}), UTC days {} to {}\n",
        u.circuit,
        u.sku_tier,
        u.sku_family,
        u.peering_location,
        u.zone
            .map_or("no pricing zone".to_owned(), |z| format!("zone {z}")),
        u.from.as_deref().unwrap_or("-"),
        u.to.as_deref().unwrap_or("-"),
    );
    let mut rows = Vec::new();
    for p in &u.peerings {
        for l in &p.links {
            rows.push(vec![
                p.peering_type.clone(),
                l.path.clone(),
                l.ingress_bytes.to_string(),
                l.egress_bytes.to_string(),
                bytes(l.ingress_bytes),
                bytes(l.egress_bytes),
            ]);
        }
    }
    rows.push(vec![
        "total".into(),
        String::new(),
        u.ingress_bytes.to_string(),
        u.egress_bytes.to_string(),
        bytes(u.ingress_bytes),
        bytes(u.egress_bytes),
    ]);
    out += &table(
        &[
            "Peering",
            "Path",
            "IngressBytes",
            "EgressBytes",
            "Ingress",
            "Egress",
        ],
        rows,
    );
    out += &format!(
        "billed: outbound {:.6} GB, inbound {:.6} GB ({})\n",
        u.billed_outbound_gb, u.billed_inbound_gb, u.billing
    );
    for n in &u.notes {
        out += &format!("note: {n}\n");
    }
    out
}

pub fn availability(a: &AvailabilityView) -> String {
    let mut out = a.line() + "\n";
    out += &format!(
        "period: {} to {}\n",
        a.from.as_deref().unwrap_or("the first record"),
        a.to
    );
    if a.outages.is_empty() {
        out += "no outage\n";
    } else {
        out += &table(
            &[
                "Scope", "Peering", "Start", "End", "Seconds", "Cause", "Detail",
            ],
            a.outages
                .iter()
                .map(|o| {
                    vec![
                        o.scope.clone(),
                        o.peering_type.clone(),
                        o.start.clone(),
                        o.end.clone().unwrap_or_else(|| "(ongoing)".into()),
                        format!("{:.3}", o.duration_secs),
                        o.cause.clone(),
                        o.detail.clone(),
                    ]
                })
                .collect(),
        );
    }
    for n in &a.notes {
        out += &format!("note: {n}\n");
    }
    out
}
