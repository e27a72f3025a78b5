use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use bgp::wire::{AsSegment, Origin, PathAttribute, Update};
use ipnet::IpNet;
use msee_abi::{GroupMember, PeeringKind};

use super::*;

const P: u32 = 0; // primary link
const S: u32 = 1; // secondary link
const P4: SessionId = (P, Family::Ipv4);
const S4: SessionId = (S, Family::Ipv4);
const P6: SessionId = (P, Family::Ipv6);
const S6: SessionId = (S, Family::Ipv6);
const DOMAIN: u32 = 7;

/// A dataplane stand-in that records every write and checks, after each
/// one, that no installed route points at a group that was never written.
#[derive(Default)]
struct FakeDataplane {
    groups: HashMap<u32, Vec<GroupMember>>,
    routes: BTreeMap<(u32, IpNet), u32>,
    link_up: HashMap<u32, bool>,
    log: Vec<String>,
    fail_route_writes: bool,
}

impl FibSink for FakeDataplane {
    fn set_group(&mut self, id: u32, members: &[GroupMember]) -> anyhow::Result<()> {
        self.log.push(format!("group {id}"));
        self.groups.insert(id, members.to_vec());
        Ok(())
    }
    fn upsert_route(&mut self, domain: u32, prefix: IpNet, group: u32) -> anyhow::Result<()> {
        if self.fail_route_writes {
            anyhow::bail!("injected failure");
        }
        assert!(self.groups.contains_key(&group), "route to unwritten group");
        self.log.push(format!("route {prefix} -> {group}"));
        self.routes.insert((domain, prefix), group);
        Ok(())
    }
    fn remove_route(&mut self, domain: u32, prefix: IpNet) -> anyhow::Result<()> {
        self.log.push(format!("remove {prefix}"));
        assert!(self.routes.remove(&(domain, prefix)).is_some());
        Ok(())
    }
    fn set_link_state(&mut self, link: u32, up: bool) -> anyhow::Result<()> {
        self.log
            .push(format!("link {link} {}", if up { "up" } else { "down" }));
        self.link_up.insert(link, up);
        Ok(())
    }
}

impl FakeDataplane {
    fn members(&self, prefix: &str) -> Option<Vec<(u32, u32)>> {
        let g = self.routes.get(&(DOMAIN, net(prefix)))?;
        Some(
            self.groups[g]
                .iter()
                .map(|m| (m.link, m.preference))
                .collect(),
        )
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn announce(prefixes: &[&str], path: &[u32]) -> Update {
    let mut u = Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![AsSegment::Sequence(path.to_vec())]),
            PathAttribute::NextHop(Ipv4Addr::new(192, 168, 100, 129)),
            PathAttribute::Communities(vec![0xfde8_0001]),
        ],
        ..Default::default()
    };
    u.nlri = prefixes.iter().map(|p| p.parse().unwrap()).collect();
    u
}

fn withdraw(prefixes: &[&str]) -> Update {
    Update {
        withdrawn: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        ..Default::default()
    }
}

/// A RIB with both sessions up, its FIB and a fake dataplane.
struct Harness {
    rib: Rib,
    fib: Fib,
    dp: FakeDataplane,
}

impl Harness {
    fn new(kind: PeeringKind) -> Self {
        let mut rib = Rib::new(DOMAIN, kind, &[P, S]);
        for session in [P4, S4, P6, S6] {
            rib.session_up(session).unwrap();
        }
        Self {
            rib,
            fib: Fib::new(10),
            dp: FakeDataplane::default(),
        }
    }
    /// An UPDATE on `link`'s session of the family of its prefixes.
    fn recv(&mut self, link: u32, u: Update) -> FibStats {
        let family = if u.nlri.is_empty() && !u.announced_v6().is_empty()
            || u.withdrawn.is_empty() && !u.withdrawn_v6().is_empty() && u.nlri.is_empty()
        {
            Family::Ipv6
        } else {
            Family::Ipv4
        };
        let out = self.rib.update((link, family), &u).unwrap();
        let batch = self.rib.changes(&out.changed);
        self.fib.apply(&mut self.dp, &batch).unwrap()
    }
}

#[test]
fn equal_paths_on_both_links_share_one_group_at_equal_preference() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["172.16.0.0/16", "172.17.0.0/16"], &[65010]));
    assert_eq!(h.dp.members("172.16.0.0/16"), Some(vec![(P, 1)]));
    h.recv(S, announce(&["172.16.0.0/16", "172.17.0.0/16"], &[65010]));
    assert_eq!(h.dp.members("172.16.0.0/16"), Some(vec![(P, 1), (S, 1)]));
    // Deduplicated: both prefixes share the one group; the primary-only
    // group was released.
    assert_eq!(
        h.dp.routes[&(DOMAIN, net("172.16.0.0/16"))],
        h.dp.routes[&(DOMAIN, net("172.17.0.0/16"))]
    );
    assert_eq!(h.fib.group_count(), 1);
    assert_eq!(h.fib.route_count(), 2);
}

#[test]
fn prepended_path_keeps_the_link_as_a_worse_backup() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["172.16.0.0/16"], &[65010]));
    h.recv(S, announce(&["172.16.0.0/16"], &[65010, 65010, 65010]));
    assert_eq!(h.dp.members("172.16.0.0/16"), Some(vec![(P, 1), (S, 3)]));
    // The customer stops prepending: back to equal preference.
    h.recv(S, announce(&["172.16.0.0/16"], &[65010]));
    assert_eq!(h.dp.members("172.16.0.0/16"), Some(vec![(P, 1), (S, 1)]));
}

#[test]
fn a_drained_link_becomes_the_last_resort_and_undrain_restores_it() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["172.16.0.0/16", "172.18.0.0/16"], &[65010]));
    h.recv(S, announce(&["172.16.0.0/16"], &[65010, 65010]));
    let changed = h.rib.set_drained(P, true).unwrap();
    assert_eq!(changed.len(), 2);
    let batch = h.rib.changes(&changed);
    h.dp.log.clear();
    h.fib.apply(&mut h.dp, &batch).unwrap();
    // Even a prepended path on the other link now wins; the drained link
    // stays in the group as the backup, so nothing is lost meanwhile.
    assert_eq!(
        h.dp.members("172.16.0.0/16"),
        Some(vec![(P, 1 + DRAIN_PENALTY), (S, 2)])
    );
    // A prefix only the drained link has stays on it.
    assert_eq!(
        h.dp.members("172.18.0.0/16"),
        Some(vec![(P, 1 + DRAIN_PENALTY)])
    );
    // Make-before-break: new groups first, then routes repointed, no
    // route ever removed.
    let first_route =
        h.dp.log
            .iter()
            .position(|l| l.starts_with("route"))
            .unwrap();
    assert!(
        h.dp.log[..first_route]
            .iter()
            .all(|l| l.starts_with("group"))
    );
    assert!(!h.dp.log.iter().any(|l| l.starts_with("remove")));
    assert!(h.rib.is_drained(P));
    assert!(h.rib.set_drained(P, true).unwrap().is_empty(), "idempotent");
    // New paths learned while drained are drained too.
    h.recv(P, announce(&["172.19.0.0/16"], &[65010]));
    assert_eq!(
        h.dp.members("172.19.0.0/16"),
        Some(vec![(P, 1 + DRAIN_PENALTY)])
    );
    let changed = h.rib.set_drained(P, false).unwrap();
    let batch = h.rib.changes(&changed);
    h.fib.apply(&mut h.dp, &batch).unwrap();
    assert_eq!(h.dp.members("172.16.0.0/16"), Some(vec![(P, 1), (S, 2)]));
    assert_eq!(h.dp.members("172.19.0.0/16"), Some(vec![(P, 1)]));
    assert!(h.rib.set_drained(9, true).is_err());
}

#[test]
fn as_set_counts_as_one() {
    let mut u = announce(&["172.16.0.0/16"], &[]);
    u.attributes[1] = PathAttribute::AsPath(vec![
        AsSegment::Sequence(vec![65010, 65011]),
        AsSegment::Set(vec![1, 2, 3]),
    ]);
    assert_eq!(as_path_len(&u), 3);
}

#[test]
fn route_on_one_link_only_uses_that_link_and_withdrawal_removes_it() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["172.16.0.0/16"], &[65010]));
    h.recv(S, announce(&["172.16.0.0/16"], &[65010]));
    h.recv(P, withdraw(&["172.16.0.0/16"]));
    assert_eq!(h.dp.members("172.16.0.0/16"), Some(vec![(S, 1)]));
    let stats = h.recv(S, withdraw(&["172.16.0.0/16"]));
    assert_eq!(stats.routes_removed, 1);
    assert_eq!(stats.groups_freed, 1);
    assert_eq!(h.dp.members("172.16.0.0/16"), None);
    assert_eq!(h.fib.group_count(), 0);
    // Withdrawing what is not there changes nothing.
    let stats = h.recv(S, withdraw(&["172.16.0.0/16"]));
    assert_eq!(stats, FibStats::default());
}

#[test]
fn make_before_break_writes_new_group_then_route_then_frees_old() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["172.16.0.0/16"], &[65010]));
    h.dp.log.clear();
    let stats = h.recv(S, announce(&["172.16.0.0/16"], &[65010]));
    assert_eq!(h.dp.log, vec!["group 11", "route 172.16.0.0/16 -> 11"]);
    assert_eq!(
        stats,
        FibStats {
            groups_added: 1,
            groups_freed: 1,
            routes_upserted: 1,
            routes_removed: 0
        }
    );
    // The freed id is reused by the next new member set.
    h.recv(P, withdraw(&["172.16.0.0/16"]));
    assert_eq!(h.fib.route(DOMAIN, net("172.16.0.0/16")), Some(10));
    assert_eq!(h.fib.group_members(10).unwrap()[0].link, S);
}

#[test]
fn batch_installs_all_groups_before_any_route() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["10.0.0.0/24"], &[65010]));
    h.dp.log.clear();
    let batch = vec![
        FibChange {
            domain: DOMAIN,
            prefix: net("10.0.0.0/24"),
            members: Some(vec![GroupMember {
                link: S,
                preference: 2,
            }]),
        },
        FibChange {
            domain: DOMAIN,
            prefix: net("10.0.1.0/24"),
            members: Some(vec![
                GroupMember {
                    link: P,
                    preference: 1,
                },
                GroupMember {
                    link: S,
                    preference: 1,
                },
            ]),
        },
    ];
    h.fib.apply(&mut h.dp, &batch).unwrap();
    let first_route =
        h.dp.log
            .iter()
            .position(|l| l.starts_with("route"))
            .unwrap();
    assert!(
        h.dp.log[..first_route]
            .iter()
            .all(|l| l.starts_with("group"))
    );
    assert_eq!(first_route, 2);
}

#[test]
fn session_down_is_one_link_write_then_lazy_withdrawal() {
    let mut h = Harness::new(PeeringKind::Private);
    let many: Vec<String> = (0..50).map(|i| format!("172.16.{i}.0/24")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    h.recv(P, announce(&many, &[65010]));
    h.recv(S, announce(&many, &[65010]));
    h.dp.log.clear();
    h.rib.session_down(P4).unwrap();
    h.dp.set_link_state(P, false).unwrap();
    assert_eq!(h.dp.log, vec!["link 0 down"]);
    assert!(h.rib.is_stale(P4));
    // Routes still name both links until the stale paths are flushed.
    assert_eq!(h.dp.members("172.16.3.0/24"), Some(vec![(P, 1), (S, 1)]));
    let changed = h.rib.flush_stale(P4).unwrap();
    assert_eq!(changed.len(), 50);
    let batch = h.rib.changes(&changed);
    let stats = h.fib.apply(&mut h.dp, &batch).unwrap();
    assert_eq!(stats.routes_upserted, 50);
    assert_eq!(h.dp.members("172.16.3.0/24"), Some(vec![(S, 1)]));
    assert_eq!(h.fib.group_count(), 1);
    // Updates on a down session are refused.
    assert!(
        h.rib
            .update(P4, &announce(&["1.0.0.0/8"], &[65010]))
            .is_err()
    );
}

#[test]
fn session_back_before_flush_drops_the_stale_paths() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["172.16.0.0/16", "172.18.0.0/16"], &[65010]));
    h.rib.session_down(P4).unwrap();
    let changed = h.rib.session_up(P4).unwrap();
    assert_eq!(changed.len(), 2);
    let batch = h.rib.changes(&changed);
    h.fib.apply(&mut h.dp, &batch).unwrap();
    assert_eq!(h.fib.route_count(), 0);
    assert!(!h.rib.is_stale(P4));
    // Flushing again is a no-op.
    assert!(h.rib.flush_stale(P4).unwrap().is_empty());
}

#[test]
fn microsoft_peering_refuses_default_and_rfc1918() {
    let mut h = Harness::new(PeeringKind::Microsoft);
    let out = h
        .rib
        .update(
            P4,
            &announce(
                &[
                    "0.0.0.0/0",
                    "10.1.0.0/16",
                    "172.20.0.0/16",
                    "192.168.0.0/16",
                    "8.0.0.0/6",
                    "198.51.100.0/24",
                ],
                &[65010],
            ),
        )
        .unwrap();
    let refused: Vec<(String, Refusal)> = out
        .refused
        .iter()
        .map(|(p, r)| (p.to_string(), *r))
        .collect();
    assert_eq!(
        refused,
        vec![
            ("0.0.0.0/0".into(), Refusal::DefaultRoute),
            ("10.1.0.0/16".into(), Refusal::Rfc1918),
            ("172.20.0.0/16".into(), Refusal::Rfc1918),
            ("192.168.0.0/16".into(), Refusal::Rfc1918),
            // A supernet of 10/8 covers private space too.
            ("8.0.0.0/6".into(), Refusal::Rfc1918),
        ]
    );
    assert_eq!(out.changed.len(), 1);
    assert_eq!(h.rib.adj_rib_in_len(P4), 1);
    assert!(import_check(PeeringKind::Microsoft, net("::/0")).is_err());
    assert!(import_check(PeeringKind::Microsoft, net("2001:db8::/32")).is_ok());
}

#[test]
fn microsoft_peering_takes_only_the_registered_public_prefixes() {
    let mut h = Harness::new(PeeringKind::Microsoft);
    h.rib
        .set_registered(vec![net("198.51.100.0/24"), net("2001:db8:5::/48")]);
    let out = h
        .rib
        .update(
            P4,
            &announce(
                &["198.51.100.0/24", "198.51.100.128/25", "203.0.113.0/24"],
                &[65010],
            ),
        )
        .unwrap();
    assert_eq!(
        out.refused,
        [(net("203.0.113.0/24"), Refusal::NotRegistered)]
    );
    assert_eq!(out.changed.len(), 2, "the prefix and a more specific of it");
    let out = h
        .rib
        .update(
            P6,
            &announce6(&["2001:db8:5:1::/64", "2001:db8:6::/48"], &[65010]),
        )
        .unwrap();
    assert_eq!(
        out.refused,
        [(net("2001:db8:6::/48"), Refusal::NotRegistered)]
    );
    // The registration shrinks (a reload): what falls outside goes at once.
    let changed = h.rib.set_registered(vec![net("198.51.100.0/25")]);
    assert_eq!(
        changed.into_iter().collect::<Vec<_>>(),
        [
            net("198.51.100.0/24"),
            net("198.51.100.128/25"),
            net("2001:db8:5:1::/64")
        ]
    );
    assert_eq!(h.rib.adj_rib_in_len(P4), 0);
}

#[test]
fn private_peering_accepts_default_and_ignores_communities() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["0.0.0.0/0", "10.0.0.0/8"], &[65010]));
    assert_eq!(h.dp.members("0.0.0.0/0"), Some(vec![(P, 1)]));
    // Same path with other communities: no change at all.
    let mut u = announce(&["10.0.0.0/8"], &[65010]);
    u.attributes[3] = PathAttribute::Communities(vec![0x2f2c_c350]);
    assert_eq!(h.recv(P, u), FibStats::default());
}

#[test]
fn treat_as_withdraw_removes_the_announced_prefixes() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["172.16.0.0/16"], &[65010]));
    let mut u = announce(&["172.16.0.0/16"], &[65010]);
    u.treat_as_withdraw(2, "test");
    h.recv(P, u);
    assert_eq!(h.dp.members("172.16.0.0/16"), None);
}

fn announce6(prefixes: &[&str], path: &[u32]) -> Update {
    Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(vec![AsSegment::Sequence(path.to_vec())]),
            PathAttribute::MpReach(bgp::wire::MpReach {
                next_hop: "2001:db8:100::1".parse().unwrap(),
                link_local: None,
                nlri: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
            }),
        ],
        ..Default::default()
    }
}

#[test]
fn ipv6_prefixes_go_through_the_same_path() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(S, announce6(&["2001:db8:1::/48"], &[65010, 65011]));
    assert_eq!(h.dp.members("2001:db8:1::/48"), Some(vec![(S, 2)]));
}

#[test]
fn a_links_ipv6_session_is_separate_from_its_ipv4_session() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["172.16.0.0/16"], &[65010]));
    h.recv(P, announce6(&["2001:db8:1::/48"], &[65010]));
    assert_eq!(h.rib.adj_rib_in_len(P4), 1);
    assert_eq!(h.rib.adj_rib_in_len(P6), 1);
    // The IPv6 session fails: only its routes go stale and are withdrawn.
    h.rib.session_down(P6).unwrap();
    assert!(h.rib.is_stale(P6) && !h.rib.is_stale(P4));
    let changed = h.rib.flush_stale(P6).unwrap();
    assert_eq!(
        changed.into_iter().collect::<Vec<_>>(),
        [net("2001:db8:1::/48")]
    );
    assert_eq!(h.rib.best(net("172.16.0.0/16")).unwrap()[0].link, P);
    // An UPDATE still in flight for the down session is refused.
    assert!(
        h.rib
            .update(P6, &announce6(&["2001:db8:2::/48"], &[65010]))
            .is_err()
    );
    // A prefix of the other family on a session is refused, not installed.
    let out = h
        .rib
        .update(S6, &announce(&["172.17.0.0/16"], &[65010]))
        .unwrap();
    assert_eq!(out.refused, [(net("172.17.0.0/16"), Refusal::WrongFamily)]);
    assert!(out.changed.is_empty());
    let out = h
        .rib
        .update(S4, &announce6(&["2001:db8:3::/48"], &[65010]))
        .unwrap();
    assert_eq!(out.refused.len(), 1);
    // Draining a link drains both of its sessions.
    h.recv(S, announce6(&["2001:db8:1::/48"], &[65010]));
    let changed = h.rib.set_drained(S, true).unwrap();
    assert!(changed.contains(&net("2001:db8:1::/48")));
    assert_eq!(
        h.rib.best(net("2001:db8:1::/48")).unwrap()[0].preference,
        1 + DRAIN_PENALTY
    );
}

#[test]
fn failed_write_leaves_fib_consistent_and_retry_succeeds() {
    let mut h = Harness::new(PeeringKind::Private);
    let out = h
        .rib
        .update(P4, &announce(&["172.16.0.0/16"], &[65010]))
        .unwrap();
    let batch = h.rib.changes(&out.changed);
    h.dp.fail_route_writes = true;
    let e = h.fib.apply(&mut h.dp, &batch).unwrap_err();
    assert!(
        format!("{e:#}").contains("installing 172.16.0.0/16"),
        "{e:#}"
    );
    assert_eq!(h.fib.route_count(), 0);
    assert_eq!(h.fib.group_count(), 0, "unused group released");
    h.dp.fail_route_writes = false;
    h.fib.apply(&mut h.dp, &batch).unwrap();
    assert_eq!(h.dp.members("172.16.0.0/16"), Some(vec![(P, 1)]));
}

#[test]
fn unknown_link_is_an_error_naming_it() {
    let mut rib = Rib::new(DOMAIN, PeeringKind::Private, &[P, S]);
    let e = rib.session_up((9, Family::Ipv4)).unwrap_err().to_string();
    assert!(e.contains("link 9"), "{e}");
}

#[test]
fn routes_with_our_own_as_in_the_path_are_refused() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["10.1.0.0/16"], &[65010]));
    // The customer reflects our VNet route back: refused, and it replaces
    // what was accepted before.
    let out = h
        .rib
        .update(P4, &announce(&["10.1.0.0/16"], &[65010, 12076]))
        .unwrap();
    assert_eq!(out.refused, vec![(net("10.1.0.0/16"), Refusal::AsLoop)]);
    assert_eq!(h.rib.adj_rib_in_len(P4), 0);
    assert_eq!(h.rib.best(net("10.1.0.0/16")), None);
}

/// A sink that takes route writes in batches (as the dataplane does),
/// records each call, and refuses entry `fail_at` of the next batch.
#[derive(Default)]
struct BatchDataplane {
    dp: FakeDataplane,
    calls: Vec<String>,
    fail_at: Option<usize>,
}

impl BatchDataplane {
    fn refuse(&mut self, i: usize) -> Result<(), SinkBatchError> {
        if self.fail_at == Some(i) {
            self.fail_at = None;
            return Err(SinkBatchError {
                applied: i,
                failed: i,
                error: anyhow::anyhow!("injected failure"),
            });
        }
        Ok(())
    }
}

impl FibSink for BatchDataplane {
    fn set_group(&mut self, id: u32, members: &[GroupMember]) -> anyhow::Result<()> {
        self.calls.push(format!("group {id}"));
        self.dp.set_group(id, members)
    }
    fn upsert_route(&mut self, _: u32, _: IpNet, _: u32) -> anyhow::Result<()> {
        unreachable!("the FIB writes routes in batches")
    }
    fn remove_route(&mut self, _: u32, _: IpNet) -> anyhow::Result<()> {
        unreachable!("the FIB writes routes in batches")
    }
    fn set_link_state(&mut self, link: u32, up: bool) -> anyhow::Result<()> {
        self.dp.set_link_state(link, up)
    }
    fn upsert_routes(&mut self, routes: &[(u32, IpNet, u32)]) -> Result<(), SinkBatchError> {
        self.calls.push(format!("upsert {}", routes.len()));
        for (i, (domain, prefix, group)) in routes.iter().enumerate() {
            self.refuse(i)?;
            self.dp.upsert_route(*domain, *prefix, *group).unwrap();
        }
        Ok(())
    }
    fn remove_routes(&mut self, routes: &[(u32, IpNet)]) -> Result<(), SinkBatchError> {
        self.calls.push(format!("remove {}", routes.len()));
        for (i, (domain, prefix)) in routes.iter().enumerate() {
            self.refuse(i)?;
            self.dp.remove_route(*domain, *prefix).unwrap();
        }
        Ok(())
    }
}

fn change(prefix: &str, members: &[(u32, u32)]) -> FibChange {
    FibChange {
        domain: DOMAIN,
        prefix: net(prefix),
        members: (!members.is_empty()).then(|| {
            members
                .iter()
                .map(|&(link, preference)| GroupMember { link, preference })
                .collect()
        }),
    }
}

#[test]
fn a_batch_goes_to_the_sink_in_runs_after_its_groups() {
    let mut fib = Fib::new(10);
    let mut dp = BatchDataplane::default();
    let on_p = [(P, 1)];
    let both = [(P, 1), (S, 1)];
    let batch: Vec<FibChange> = ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]
        .iter()
        .map(|p| change(p, &on_p))
        .collect();
    fib.apply(&mut dp, &batch).unwrap();
    assert_eq!(dp.calls, vec!["group 10", "upsert 3"]);
    dp.calls.clear();
    let stats = fib
        .apply(
            &mut dp,
            &[
                change("10.0.0.0/24", &both),
                change("10.0.1.0/24", &both),
                change("10.0.2.0/24", &[]),
                change("10.0.3.0/24", &[]), // not routed: nothing to do
                change("10.0.4.0/24", &both),
            ],
        )
        .unwrap();
    // The new group first, then the routes in order, in runs of one kind.
    assert_eq!(
        dp.calls,
        vec!["group 11", "upsert 2", "remove 1", "upsert 1"]
    );
    assert_eq!(
        stats,
        FibStats {
            groups_added: 1,
            groups_freed: 1,
            routes_upserted: 3,
            routes_removed: 1
        }
    );
    assert_eq!(dp.dp.members("10.0.1.0/24"), Some(vec![(P, 1), (S, 1)]));
    assert_eq!(dp.dp.members("10.0.2.0/24"), None);
    assert_eq!(
        fib.group_count(),
        1,
        "group 10 released after its last route moved"
    );
}

#[test]
fn a_batch_refused_part_way_leaves_the_fib_as_written_and_retries() {
    let mut fib = Fib::new(10);
    let mut dp = BatchDataplane::default();
    let prefixes: Vec<String> = (0..5).map(|i| format!("10.0.{i}.0/24")).collect();
    let to = |members: &[(u32, u32)]| -> Vec<FibChange> {
        prefixes.iter().map(|p| change(p, members)).collect()
    };
    // A fresh install refused at its fourth route.
    dp.fail_at = Some(3);
    let e = fib.apply(&mut dp, &to(&[(P, 1)])).unwrap_err();
    assert!(format!("{e:#}").contains("installing 10.0.3.0/24"), "{e:#}");
    assert!(format!("{e:#}").contains("injected failure"), "{e:#}");
    assert_eq!(fib.route_count(), 3);
    assert_eq!(fib.route(DOMAIN, net("10.0.2.0/24")), Some(10));
    assert_eq!(fib.route(DOMAIN, net("10.0.3.0/24")), None);
    assert_eq!(dp.dp.routes.len(), 3, "the FIB matches the dataplane");
    let stats = fib.apply(&mut dp, &to(&[(P, 1)])).unwrap();
    assert_eq!(stats.routes_upserted, 2, "the retry writes what is missing");
    assert_eq!(dp.dp.routes.len(), 5);
    // A move to a new group refused at its second route: the moved route is
    // on the new group, the others still on the old one, both alive.
    dp.fail_at = Some(1);
    fib.apply(&mut dp, &to(&[(P, 1), (S, 1)])).unwrap_err();
    assert_eq!(fib.route(DOMAIN, net("10.0.0.0/24")), Some(11));
    assert_eq!(fib.route(DOMAIN, net("10.0.1.0/24")), Some(10));
    assert_eq!(fib.group_count(), 2);
    assert_eq!(dp.dp.members("10.0.1.0/24"), Some(vec![(P, 1)]));
    let stats = fib.apply(&mut dp, &to(&[(P, 1), (S, 1)])).unwrap();
    assert_eq!((stats.routes_upserted, stats.groups_freed), (4, 1));
    assert_eq!(fib.group_count(), 1);
    // A withdrawal refused part way.
    dp.fail_at = Some(2);
    fib.apply(&mut dp, &to(&[])).unwrap_err();
    assert_eq!(fib.route_count(), 3);
    assert_eq!(dp.dp.routes.len(), 3);
    fib.apply(&mut dp, &to(&[])).unwrap();
    assert_eq!((fib.route_count(), fib.group_count()), (0, 0));
}

#[test]
fn a_prefix_twice_in_a_batch_ends_with_its_last_change() {
    let mut fib = Fib::new(10);
    let mut dp = BatchDataplane::default();
    fib.apply(
        &mut dp,
        &[
            change("10.0.0.0/24", &[(P, 1)]),
            change("10.0.0.0/24", &[(S, 1)]),
            change("10.0.1.0/24", &[(P, 1)]),
            change("10.0.1.0/24", &[]),
        ],
    )
    .unwrap();
    assert_eq!(dp.dp.members("10.0.0.0/24"), Some(vec![(S, 1)]));
    assert_eq!(dp.dp.members("10.0.1.0/24"), None);
    assert_eq!((fib.route_count(), fib.group_count()), (1, 1));
}

fn hops(members: &[(u32, u32)]) -> Option<NextHops> {
    (!members.is_empty()).then(|| {
        NextHops::new(
            &members
                .iter()
                .map(|&(link, preference)| GroupMember { link, preference })
                .collect::<Vec<_>>(),
        )
    })
}

#[test]
fn pending_changes_come_out_in_address_order_once_each_with_their_last_best_path() {
    let mut pending = PendingChanges::default();
    assert!(pending.is_empty());
    let (p, both) = (hops(&[(P, 1)]), hops(&[(P, 1), (S, 1)]));
    pending.add(
        0,
        [("10.0.2.0/24", p), ("10.0.0.0/24", p)].map(|(n, h)| (net(n), h)),
    );
    pending.add(1, [(net("192.0.2.0/24"), p)]);
    pending.add(
        0,
        [
            ("10.0.1.0/24", both),
            ("10.0.2.0/24", None),
            ("2001:db8::/32", p),
            ("10.0.0.0/8", p),
            ("2001:db8::/32", both),
        ]
        .map(|(n, h)| (net(n), h)),
    );
    assert_eq!(pending.len(), 8);
    assert!(!pending.is_full());
    let taken = pending.take();
    assert!(pending.is_empty());
    assert_eq!(taken.len(), 2);
    assert_eq!(taken[0].0, 0);
    let got: Vec<(String, Option<NextHops>)> = taken[0]
        .1
        .iter()
        .map(|(p, h)| (p.to_string(), h.copied()))
        .collect();
    assert_eq!(
        got,
        [
            ("10.0.0.0/8", p),
            ("10.0.0.0/24", p),
            ("10.0.1.0/24", both),
            ("10.0.2.0/24", None),
            ("2001:db8::/32", both),
        ]
        .map(|(n, h)| (n.to_string(), h))
    );
    // Each distinct set once.
    assert_eq!(taken[0].1.sets.len(), 3);
    assert_eq!(taken[1].0, 1);
    assert_eq!(
        taken[1]
            .1
            .iter()
            .map(|(p, h)| (p, h.copied()))
            .collect::<Vec<_>>(),
        [(net("192.0.2.0/24"), p)]
    );
    assert!(pending.take().is_empty());
}

#[test]
fn pending_changes_keep_the_last_of_many_repeats() {
    // More repeats than fit the arrival positions of one compaction window
    // would be too slow to test; a few thousand over few prefixes checks
    // that the last always wins, in and across compactions.
    let mut pending = PendingChanges::default();
    let sets = [
        hops(&[(P, 1)]),
        hops(&[(S, 2)]),
        None,
        hops(&[(P, 1), (S, 1)]),
    ];
    let mut expected = BTreeMap::new();
    for i in 0..5000u32 {
        let prefix = net(&format!("10.{}.0.0/16", i % 7));
        let set = sets[(i as usize * 7 / 3) % sets.len()];
        pending.add(0, [(prefix, set)]);
        expected.insert(prefix, set);
    }
    let taken = pending.take();
    let got: BTreeMap<IpNet, Option<NextHops>> =
        taken[0].1.iter().map(|(p, h)| (p, h.copied())).collect();
    assert_eq!(got, expected);
}

#[test]
fn next_hops_are_sorted_sets_and_count_what_does_not_fit() {
    let mut h = NextHops::default();
    assert!(h.is_empty());
    h.push(S, 1);
    h.push(P, 3);
    h.push(S, 1);
    assert_eq!(h, hops(&[(P, 3), (S, 1)]).unwrap());
    assert_eq!(h.count(), 2);
    for link in 10..14 {
        h.push(link, 1);
    }
    assert_eq!((h.count(), h.members().len()), (6, 4));
    // Too many links for a group: the prefix is not installed, the error
    // names it.
    let mut fib = Fib::new(10);
    let mut dp = FakeDataplane::default();
    let batch = ChangeBatch {
        changes: vec![(net("10.0.0.0/24"), 0)],
        sets: vec![Some(h)],
    };
    let e = fib.apply_batch(&mut dp, DOMAIN, &batch).unwrap_err();
    assert!(
        format!("{e:#}").contains("10.0.0.0/24: 6 next-hop links"),
        "{e:#}"
    );
    assert_eq!((fib.route_count(), fib.group_count()), (0, 0));
}

/// The daemon's path: each UPDATE's changes wait with their best path at
/// that moment, then go to the FIB in one batch; the result is what one
/// batch per UPDATE would have written.
#[test]
fn pending_batches_end_where_one_batch_per_update_does() {
    let updates: Vec<(u32, Update)> = vec![
        (
            P,
            announce(&["172.16.0.0/16", "172.17.0.0/16", "10.0.0.0/8"], &[65010]),
        ),
        (S, announce(&["172.16.0.0/16"], &[65010, 65010])),
        (P, withdraw(&["172.17.0.0/16"])),
        (S, announce(&["172.17.0.0/16", "10.0.0.0/8"], &[65010])),
        (P, announce(&["172.16.0.0/16"], &[65010, 65010, 65010])),
        (S, withdraw(&["10.0.0.0/8"])),
        (P, announce6(&["2001:db8:1::/48"], &[65010])),
    ];
    let mut one_by_one = Harness::new(PeeringKind::Private);
    for (link, u) in &updates {
        one_by_one.recv(*link, u.clone());
    }
    let mut h = Harness::new(PeeringKind::Private);
    let mut pending = PendingChanges::default();
    for (link, u) in &updates {
        let family = if u.announced_v6().is_empty() {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        let out = h.rib.update((*link, family), u).unwrap();
        pending.add(0, out.changed.iter().map(|p| (*p, h.rib.best_hops(*p))));
    }
    for (_, batch) in pending.take() {
        h.fib.apply_batch(&mut h.dp, DOMAIN, &batch).unwrap();
    }
    assert_eq!(h.dp.routes.len(), one_by_one.dp.routes.len());
    for prefix in one_by_one.dp.routes.keys() {
        let p = prefix.1.to_string();
        assert_eq!(h.dp.members(&p), one_by_one.dp.members(&p), "{p}");
    }
    assert_eq!(h.fib.group_count(), one_by_one.fib.group_count());
}

#[test]
fn the_install_record_times_the_first_update_and_the_last_write() {
    let mut record = InstallRecord::default();
    record.update_received(&announce(&["10.0.0.0/24", "10.0.1.0/24"], &[65010]));
    record.update_received(&withdraw(&["10.0.1.0/24"]));
    let first = record.first_update_ns.unwrap();
    assert!(record.last_update_ns.unwrap() >= first);
    assert_eq!(
        (
            record.updates,
            record.prefixes_announced,
            record.prefixes_withdrawn
        ),
        (2, 2, 1)
    );
    assert_eq!(record.last_write_ns, None);
    // A batch that wrote nothing does not move the write clock.
    record.batch_applied(&Ok(FibStats::default()));
    assert_eq!((record.batches, record.last_write_ns), (0, None));
    record.batch_applied(&Ok(FibStats {
        groups_added: 1,
        routes_upserted: 2,
        ..Default::default()
    }));
    record.batch_applied(&Err(anyhow::anyhow!("refused")));
    assert!(record.last_write_ns.unwrap() >= first);
    assert_eq!(
        (
            record.batches,
            record.routes_upserted,
            record.failed_batches
        ),
        (1, 2, 1)
    );
}

#[test]
fn graceful_restart_keeps_routes_until_the_peer_sends_them_again() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(
        P,
        announce(
            &["172.16.0.0/16", "172.17.0.0/16", "172.18.0.0/16"],
            &[65010],
        ),
    );
    h.recv(S, announce(&["172.16.0.0/16"], &[65010, 65010]));
    h.dp.log.clear();
    // The primary's peer restarts: nothing changes in the FIB.
    h.rib.session_restarting(P4).unwrap();
    assert_eq!(h.rib.restart_stale_count(P4), Some(3));
    assert!(!h.rib.is_stale(P4), "not for the lazy flush");
    assert!(h.rib.flush_stale(P4).unwrap().is_empty());
    assert_eq!(h.dp.members("172.17.0.0/16"), Some(vec![(P, 1)]));
    assert_eq!(h.dp.members("172.16.0.0/16"), Some(vec![(P, 1), (S, 2)]));
    assert!(h.dp.log.is_empty(), "{:?}", h.dp.log);
    // Back: coming up withdraws nothing.
    assert!(h.rib.session_up(P4).unwrap().is_empty());
    // It announces two of its three prefixes again (one with a new path)
    // and withdraws one it never had.
    h.recv(P, announce(&["172.16.0.0/16"], &[65010]));
    h.recv(P, announce(&["172.17.0.0/16"], &[65010, 65020]));
    h.recv(P, withdraw(&["10.0.0.0/8"]));
    assert_eq!(h.rib.restart_stale_count(P4), Some(1));
    assert_eq!(h.dp.members("172.17.0.0/16"), Some(vec![(P, 2)]));
    // End-of-RIB: the one it did not send again goes.
    let changed = h.rib.purge_restart_stale(P4).unwrap();
    assert_eq!(changed, BTreeSet::from([net("172.18.0.0/16")]));
    let batch = h.rib.changes(&changed);
    h.fib.apply(&mut h.dp, &batch).unwrap();
    assert_eq!(h.dp.members("172.18.0.0/16"), None);
    assert_eq!(h.dp.members("172.16.0.0/16"), Some(vec![(P, 1), (S, 2)]));
    assert_eq!(h.rib.restart_stale_count(P4), None);
    // A second purge has nothing left to do.
    assert!(h.rib.purge_restart_stale(P4).unwrap().is_empty());
}

#[test]
fn graceful_restart_purge_without_coming_back_withdraws_every_route() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["172.16.0.0/16", "172.17.0.0/16"], &[65010]));
    h.rib.session_restarting(P4).unwrap();
    // UPDATEs while it is away are refused, as for any down session.
    assert!(
        h.rib
            .update(P4, &announce(&["1.0.0.0/8"], &[65010]))
            .is_err()
    );
    // Its restart time runs out.
    let changed = h.rib.purge_restart_stale(P4).unwrap();
    assert_eq!(changed.len(), 2);
    let batch = h.rib.changes(&changed);
    h.fib.apply(&mut h.dp, &batch).unwrap();
    assert_eq!(h.fib.route_count(), 0);
}

#[test]
fn an_ordinary_loss_during_a_graceful_restart_drops_the_stale_routes_too() {
    let mut h = Harness::new(PeeringKind::Private);
    h.recv(P, announce(&["172.16.0.0/16", "172.17.0.0/16"], &[65010]));
    h.rib.session_restarting(P4).unwrap();
    // BFD (or a NOTIFICATION) ends it: the usual stale flush, all routes.
    h.rib.session_down(P4).unwrap();
    assert_eq!(h.rib.restart_stale_count(P4), None);
    assert!(h.rib.is_stale(P4));
    assert_eq!(h.rib.flush_stale(P4).unwrap().len(), 2);
    // Lost again after coming back: what it holds now is marked afresh.
    h.rib.session_up(P4).unwrap();
    h.recv(P, announce(&["172.16.0.0/16"], &[65010]));
    h.rib.session_restarting(P4).unwrap();
    h.rib.session_up(P4).unwrap();
    assert_eq!(
        h.rib.purge_restart_stale(P4).unwrap(),
        BTreeSet::from([net("172.16.0.0/16")])
    );
}

/// A restart adopts what the previous instance wrote: routes the new
/// instance gives the same next hops are not written again (no moment
/// without them), a new next-hop set takes an id no adopted group holds,
/// and removing the adopted routes frees their groups.
#[test]
fn adopted_routes_are_kept_until_changed_and_their_groups_are_not_reused() {
    let m = |link, preference| GroupMember { link, preference };
    let mut dp = FakeDataplane::default();
    // What the previous instance left: group 3 (both links) and 5 (the
    // secondary), the out-of-reach marker.
    dp.groups.insert(3, vec![m(P, 1), m(S, 1)]);
    dp.groups.insert(5, vec![m(S, 1)]);
    let mut fib = Fib::new(0);
    fib.adopt(DOMAIN, net("10.0.0.0/24"), 3, Some(&[m(P, 1), m(S, 1)]))
        .unwrap();
    fib.adopt(DOMAIN, net("10.0.1.0/24"), 3, Some(&[m(S, 1), m(P, 1)]))
        .unwrap();
    fib.adopt(DOMAIN, net("10.0.2.0/24"), 5, Some(&[m(S, 1)]))
        .unwrap();
    fib.adopt(DOMAIN, net("10.9.0.0/16"), 0, None).unwrap();
    fib.adopted();
    for (p, g) in [("10.0.0.0/24", 3), ("10.0.1.0/24", 3), ("10.0.2.0/24", 5)] {
        dp.routes.insert((DOMAIN, net(p)), g);
    }
    assert_eq!(fib.route_count(), 4);
    assert_eq!(fib.group_count(), 2);
    assert!(
        fib.adopt(DOMAIN, net("10.0.3.0/24"), 3, Some(&[m(P, 2)]))
            .is_err()
    );

    // The same next hops: nothing written.
    let same = [FibChange {
        domain: DOMAIN,
        prefix: net("10.0.0.0/24"),
        members: Some(vec![m(S, 1), m(P, 1)]),
    }];
    let stats = fib.apply(&mut dp, &same).unwrap();
    assert_eq!(stats, FibStats::default());
    assert!(dp.log.is_empty(), "{:?}", dp.log);

    // New next hops: a fresh group, neither 3 nor 5.
    let new = [FibChange {
        domain: DOMAIN,
        prefix: net("10.0.4.0/24"),
        members: Some(vec![m(P, 3)]),
    }];
    fib.apply(&mut dp, &new).unwrap();
    let id = fib.route(DOMAIN, net("10.0.4.0/24")).unwrap();
    assert!(id != 3 && id != 5, "{id}");

    // The adopted routes of group 5 and 3 removed: their groups are freed.
    let gone: Vec<FibChange> = ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]
        .iter()
        .map(|p| FibChange {
            domain: DOMAIN,
            prefix: net(p),
            members: None,
        })
        .collect();
    let stats = fib.apply(&mut dp, &gone).unwrap();
    assert_eq!(stats.routes_removed, 3);
    assert_eq!(stats.groups_freed, 2);
    assert_eq!(fib.group_count(), 1);
}
