//! The az-shaped tables: what `az network express-route get-stats`,
//! `list-route-tables`, `list-route-tables-summary` and `list-arp-tables`
//! print with `--output table`, from the ARM-shaped answers.
use super::table;
use crate::api::az::*;

pub fn stats(s: &CircuitStats) -> String {
    table(
        &["Path", "BytesIn", "BytesOut"],
        vec![
            vec![
                "primary".into(),
                s.primary_bytes_in.to_string(),
                s.primary_bytes_out.to_string(),
            ],
            vec![
                "secondary".into(),
                s.secondary_bytes_in.to_string(),
                s.secondary_bytes_out.to_string(),
            ],
        ],
    )
}

pub fn route_table(l: &List<RoutesTableEntry>) -> String {
    table(
        &["Network", "NextHop", "LocPrf", "Weight", "Path"],
        l.value
            .iter()
            .map(|r| {
                vec![
                    r.network.clone(),
                    r.next_hop.clone(),
                    r.loc_prf.clone(),
                    r.weight.to_string(),
                    r.path.clone(),
                ]
            })
            .collect(),
    )
}

pub fn route_table_summary(l: &List<RoutesTableSummaryEntry>) -> String {
    table(
        &["Neighbor", "V", "As", "UpDown", "StatePfxRcd"],
        l.value
            .iter()
            .map(|r| {
                vec![
                    r.neighbor.clone(),
                    r.v.to_string(),
                    r.asn.to_string(),
                    r.up_down.clone(),
                    r.state_pfx_rcd.clone(),
                ]
            })
            .collect(),
    )
}

pub fn arp_table(l: &List<ArpTableEntry>) -> String {
    table(
        &["Age", "Interface", "IpAddress", "MacAddress"],
        l.value
            .iter()
            .map(|r| {
                vec![
                    r.age.to_string(),
                    r.interface.clone(),
                    r.ip_address.clone(),
                    r.mac_address.clone(),
                ]
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture of `control/tests/fixtures/az` (our own figures, in the
    /// field names and nesting of the ARM API's examples).
    fn fixture(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/tests/fixtures/az/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// Each answer type reads its fixture and writes it back unchanged: no
    /// field missing, renamed or added.
    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str) -> T {
        let v = fixture(name);
        let typed: T = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), v, "{name}");
        typed
    }

    #[test]
    fn get_stats_reads_and_prints() {
        let s: CircuitStats = round_trip("get-stats");
        assert_eq!(
            (
                s.primary_bytes_in,
                s.primary_bytes_out,
                s.secondary_bytes_out
            ),
            (1534000, 912640, 128)
        );
        assert_eq!(
            stats(&s),
            "Path       BytesIn  BytesOut\n\
             primary    1534000  912640\n\
             secondary  0        128\n"
        );
    }

    #[test]
    fn route_tables_read_and_print() {
        let r: List<RoutesTableEntry> = round_trip("list-route-tables");
        assert_eq!(r.value[1].path, "65010 65020 65020");
        assert_eq!(
            route_table(&r),
            "Network        NextHop          LocPrf  Weight  Path\n\
             10.20.0.0/16   192.168.100.129          0       65010\n\
             172.16.8.0/24  192.168.100.129          0       65010 65020 65020\n"
        );
        let s: List<RoutesTableSummaryEntry> = round_trip("list-route-tables-summary");
        assert_eq!(
            (s.value[0].asn, s.value[1].state_pfx_rcd.as_str()),
            (65010, "Idle")
        );
        assert_eq!(
            route_table_summary(&s),
            "Neighbor         V  As     UpDown    StatePfxRcd\n\
             192.168.100.129  4  65010  01:02:03  2\n\
             192.168.100.133  4  65010  never     Idle\n"
        );
    }

    #[test]
    fn arp_tables_read_and_print() {
        let a: List<ArpTableEntry> = round_trip("list-arp-tables");
        assert_eq!(a.value[1].interface, "On-Prem");
        assert_eq!(
            arp_table(&a),
            "Age  Interface  IpAddress        MacAddress\n\
             0    Microsoft  192.168.100.130  02:4d:53:45:45:01\n\
             12   On-Prem    192.168.100.129  02:6f:6e:70:72:01\n"
        );
    }
}
