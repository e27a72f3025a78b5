//! Forward the lab's stream through one configuration for a while, for a
//! profiler (`perf record -a`) to sample: the baseline, or an msee with a
//! number of routes, policed or not. Prints the forwarded pps of each
//! window.
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use dataplane::AttachMode;
use msee_abi::Direction;
use msee_sys::netns;
use traffic::Baseline;

use crate::{
    fixture::{PROBE_DST, Write, msee_with_routes},
    lab::{LAB_IN_LINK, LAB_OUT_LINK, lab_program, lab_sample, spread_destinations},
    throughput::LabBench,
};

/// Forward the lab's stream through one configuration for `seconds`, for a
/// profiler (`perf record -a`) to sample: `routes` 0 is the baseline, else an
/// msee with that many routes, policed (100 Gbit/s) or not. Prints the
/// forwarded pps of each 1 s window.
pub fn run(routes: usize, police: bool, seconds: u64, destinations: u32) -> Result<()> {
    let prefix = format!("b{}s", std::process::id() % 100_000);
    let lb = LabBench::up(&prefix, PROBE_DST, 1).context("lab for --spin")?;
    let ns = lb.ns_msee();
    let mut baseline = None;
    let mut msee = None;
    if routes == 0 {
        let mut b = Baseline::load().context("loading baseline")?;
        netns::within(&ns, || -> Result<()> {
            b.set_redirect(lb.primary_ifindex, lb.azure_ifindex)?;
            Ok(b.attach(lb.primary_ifindex, AttachMode::Native)?)
        })??;
        baseline = Some(b);
    } else {
        let (mut m, _) = msee_with_routes(routes, Write::Batch)?;
        lab_program(&mut m, &lb)?;
        if !police {
            for link in [LAB_IN_LINK, LAB_OUT_LINK] {
                for dir in Direction::ALL {
                    m.set_policer(link, dir, 0, None)?;
                }
            }
        }
        netns::within(&ns, || m.attach(lb.primary_ifindex, AttachMode::Native))??;
        msee = Some(m);
    }
    eprintln!(
        "msee-bench: spinning routes {routes} (0: baseline), policing {police}, {destinations} destinations, {seconds} s..."
    );
    // Spread over msee's table (the baseline's: the 10,000 routes').
    let to = if destinations > 1 {
        let table = if routes == 0 { 10_000 } else { routes };
        spread_destinations(table, destinations as usize)
    } else {
        Vec::new()
    };
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        let s = lab_sample(&lb, &to)?;
        eprintln!(
            "msee-bench:   {:.0} pps forwarded ({:.0} sent)",
            s.rx_pps, s.tx_pps
        );
    }
    netns::within(&ns, || -> Result<()> {
        if let Some(b) = baseline.as_mut() {
            b.detach()?;
        }
        if let Some(m) = msee.as_mut() {
            m.detach_all()?;
        }
        Ok(())
    })?
}
