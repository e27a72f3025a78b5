//! `cargo xtask demo`: the main job, end to end.
use anyhow::{Context as _, Result, bail};
use lab::{
    IF_PRIMARY, IF_SECONDARY, Lab, Topology,
    daemon::{Daemon, lab_args},
    traffic::{Flow, send_and_count},
};

pub fn run(prefix: &str, packets: u64) -> Result<()> {
    let topo = Topology::new(prefix)?;
    println!("== lab {prefix}: onprem ==primary/secondary== msee ==azure== azure");
    let lab = Lab::up(topo.clone())?;
    let dir = std::env::temp_dir().join(format!("msee-demo-{prefix}"));
    std::fs::create_dir_all(&dir)?;

    println!("== msee-daemon attaches the msee XDP program to the MSEE's three ports");
    let mut daemon = Daemon::start(&lab_args(&topo), &dir).context("starting the daemon")?;

    let (onprem, azure) = (topo.ns_onprem(), topo.ns_azure());
    let flows = [
        (
            "onprem -> azure  over primary  ",
            onprem.clone(),
            topo.primary.customer,
            Some(IF_PRIMARY),
            azure.clone(),
            topo.vnet_host,
            5001,
        ),
        (
            "onprem -> azure  over secondary",
            onprem.clone(),
            topo.secondary.customer,
            Some(IF_SECONDARY),
            azure.clone(),
            topo.vnet_host,
            5002,
        ),
        (
            "azure  -> onprem over primary  ",
            azure.clone(),
            topo.vnet_host,
            None,
            onprem.clone(),
            topo.primary.customer,
            6001,
        ),
        (
            "azure  -> onprem over secondary",
            azure.clone(),
            topo.vnet_host,
            None,
            onprem.clone(),
            topo.secondary.customer,
            6002,
        ),
    ];
    println!("== traffic: {packets} UDP datagrams per flow");
    let mut failed = false;
    for (what, src_ns, src, dev, dst_ns, dst, port) in flows {
        let flow = Flow {
            src_ns,
            src_addr: src.into(),
            src_dev: dev.map(str::to_owned),
            dst_ns,
            dst_addr: dst.into(),
            dst_port: port,
        };
        let r = send_and_count(&flow, packets)?;
        println!(
            "  {what}: {src} -> {dst}: sent {}, received {}",
            r.sent, r.received
        );
        failed |= r.received != r.sent;
    }

    daemon.stop()?;
    println!("== msee counters (XDP program, per port)");
    for line in daemon.output() {
        println!("  {line}");
    }
    drop(daemon);
    lab.down()?;
    std::fs::remove_dir_all(&dir).ok();
    println!("== lab {prefix} removed");
    if failed {
        bail!("some datagrams were lost: see the counters above");
    }
    Ok(())
}
