use std::collections::BTreeMap;

use super::*;
use crate::{
    estate::{IdBook, Inputs, PortMap},
    netlink::Interface,
};

const LAB: &str = r#"
[[circuits]]
name = "er-lab"
serviceKey = "6f1c2c7e-0d55-4a3c-9b4e-1a2b3c4d5e01"
serviceProviderProvisioningState = "Provisioned"
serviceProviderProperties = { serviceProviderName = "Equinix", peeringLocation = "Amsterdam", bandwidthInMbps = 1000 }
sku = { tier = "Standard", family = "MeteredData" }

[[circuits.peerings]]
peeringType = "AzurePrivatePeering"
peerASN = 65010
primaryPeerAddressPrefix = "192.168.100.128/30"
secondaryPeerAddressPrefix = "192.168.100.132/30"
vlanId = 100
sharedKey = "s3cret"
ipv6PeeringConfig = { primaryPeerAddressPrefix = "fd00:100::/126", secondaryPeerAddressPrefix = "fd00:100::4/126" }

[[circuits.peerings]]
peeringType = "MicrosoftPeering"
peerASN = 65010
peerAddressPrefix = "203.0.113.0/29"
vlanId = 200
microsoftPeeringConfig = { advertisedPublicPrefixes = ["198.51.100.0/24"] }
"#;

fn iface(name: &str, ifindex: u32) -> Interface {
    Interface {
        name: name.into(),
        ifindex,
        mac: [2, 0, 0, 0, 0, ifindex as u8],
        addrs: Vec::new(),
        addrs6: Vec::new(),
        carrier: true,
        xdp_prog: None,
    }
}

#[test]
fn sessions_per_peering_link_and_family_from_the_model() {
    let model = circuit::load_toml(LAB).unwrap();
    let ifaces: BTreeMap<String, Interface> = [iface("primary", 2), iface("secondary", 3)]
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    let ports = PortMap {
        provider: Some(["primary".into(), "secondary".into()]),
        ..Default::default()
    };
    let plan = crate::estate::plan(
        &Inputs {
            model: Some(&model),
            ports: &ports,
            ifaces: &ifaces,
            tagged: true,
            only: &[],
            routes: &[],
            bandwidth_override_bps: None,
        },
        &mut IdBook::default(),
    )
    .unwrap();
    let specs = plan_sessions(&model, &plan, None);
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "er-lab/AzurePrivatePeering/primary",
            "er-lab/AzurePrivatePeering/primary/ipv6",
            "er-lab/AzurePrivatePeering/secondary",
            "er-lab/AzurePrivatePeering/secondary/ipv6",
            "er-lab/MicrosoftPeering/primary",
            "er-lab/MicrosoftPeering/secondary",
        ]
    );
    let p = &specs[0];
    assert_eq!(
        p.link,
        plan.peering("er-lab", PeeringType::AzurePrivatePeering)
            .unwrap()
            .links[0]
    );
    assert_eq!(
        (p.local, p.peer),
        (
            "192.168.100.130".parse().unwrap(),
            "192.168.100.129".parse().unwrap()
        )
    );
    assert_eq!(p.router_id, Ipv4Addr::new(192, 168, 100, 130));
    assert_eq!(
        p.md5_key.as_ref().map(circuit::Secret::expose),
        Some("s3cret")
    );
    assert_eq!((p.max_prefixes, p.max_advertised), (4000, Some(1000)));
    assert_eq!(p.bfd.map(|b| b.interval_ms), Some(300));
    let v6 = &specs[1];
    assert_eq!(v6.local, "fd00:100::2".parse::<IpAddr>().unwrap());
    assert_eq!(v6.router_id, Ipv4Addr::new(192, 168, 100, 130));
    assert_eq!(
        (v6.max_prefixes, v6.bfd),
        (100, None),
        "ExpressRoute's IPv6 limit, BFD IPv4 only"
    );
    let ms = &specs[4];
    assert_eq!((ms.max_prefixes, ms.max_advertised), (200, None));
    assert_eq!(ms.local, "203.0.113.2".parse::<IpAddr>().unwrap());
    // A limit override applies to every session.
    assert!(
        plan_sessions(&model, &plan, Some(5))
            .iter()
            .all(|s| s.max_prefixes == 5)
    );
    // What restarts a session and what does not.
    let mut other = p.clone();
    other.max_prefixes = 9;
    other.bfd = None;
    assert!(!p.needs_restart(&other));
    other.md5_key = None;
    assert!(p.needs_restart(&other));
}

/// Issue 21: a Down queued behind more route events than the daemon's
/// queue holds reaches the hook (the link flip) and the daemon at once,
/// and the routes sent before it are recognisably stale.
#[test]
fn a_down_never_waits_behind_queued_routes() {
    use bgp::fsm::DownReason;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (to_fwd, from) = mpsc::channel(256);
        let (state_tx, mut state_rx) = mpsc::unbounded_channel();
        // The daemon's route queue: small, and nobody reads it yet.
        let (routes_tx, mut routes_rx) = mpsc::channel(4);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let hook_seen = seen.clone();
        let fwd = tokio::spawn(forward(
            7,
            3,
            from,
            move |e| hook_seen.lock().unwrap().push(is_state_event(e)),
            state_tx,
            routes_tx,
        ));
        let update = |n: u8| {
            SessionEvent::Routes(Update {
                nlri: vec![format!("10.{n}.0.0/16").parse().unwrap()],
                ..Default::default()
            })
        };
        for n in 0..200 {
            to_fwd.send(update(n)).await.unwrap();
        }
        to_fwd
            .send(SessionEvent::Down(DownReason::HoldTimerExpired))
            .await
            .unwrap();
        let down = tokio::time::timeout(Duration::from_secs(2), state_rx.recv())
            .await
            .expect("the Down is not held behind 200 route events")
            .unwrap();
        assert!(matches!(down.2, SessionEvent::Down(_)), "{down:?}");
        assert_eq!(down.0, 7);
        assert_eq!(
            down.1,
            Tag {
                generation: 3,
                epoch: 1
            }
        );
        assert_eq!(
            seen.lock().unwrap().iter().filter(|s| **s).count(),
            1,
            "the hook saw the Down"
        );
        // Every route still arrives, in order, tagged with the epoch of
        // the session run they belong to (0: before the Down).
        drop(to_fwd);
        for n in 0..200u8 {
            let (i, tag, e) = routes_rx.recv().await.unwrap();
            assert_eq!((i, tag.epoch), (7, 0));
            let SessionEvent::Routes(u) = e else {
                panic!("a route event")
            };
            assert_eq!(u.nlri[0].to_string(), format!("10.{n}.0.0/16"));
        }
        fwd.await.unwrap();
    });
}

/// Issue 21: the daemon's sends to a session whose task takes nothing
/// (blocked writing to a peer that never reads) return at once, and
/// arrive in order once the task reads again.
#[test]
fn sends_to_a_stuck_session_never_wait() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (to_task, mut task_inbox) = mpsc::channel(2);
        let inbox = relay(to_task);
        // Sending is synchronous: nothing here can wait on the task.
        for _ in 0..1000 {
            inbox.send(Input::Event(bgp::fsm::Event::BfdDown)).unwrap();
        }
        inbox
            .send(Input::Event(bgp::fsm::Event::ManualStop))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(task_inbox.len(), 2, "the task's own inbox stays bounded");
        drop(inbox);
        let mut n = 0;
        while let Some(Input::Event(e)) = task_inbox.recv().await {
            n += 1;
            if n <= 1000 {
                assert!(matches!(e, bgp::fsm::Event::BfdDown), "{e:?}");
            } else {
                assert!(matches!(e, bgp::fsm::Event::ManualStop), "{e:?}");
            }
        }
        assert_eq!(n, 1001, "all handed over, then the inbox closed");
    });
}
