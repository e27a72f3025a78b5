//! Route installation through the dataplane API: one `upsert_route` (one
//! syscall) per route, `upsert_routes` (batched) in random and in address
//! order, and `remove_routes` of the whole table, each into a fresh msee.
use std::{fmt::Write as _, net::IpAddr, time::Instant};

use anyhow::{Result, ensure};
use ipnet::IpNet;
use serde_json::{Value, json};

use crate::{
    fixture::{DOMAIN, PROBE_DST, Write, msee_with_routes, route_table},
    report::{num, thousands},
};

// ---- Route installation.

/// Install rates through the dataplane API into an empty table: one
/// `upsert_route` (one syscall) per route, then `upsert_routes` (batched),
/// then removing the whole table with `remove_routes`; each into a fresh
/// msee, timed from the first to the last call.
pub fn measure() -> Result<serde_json::Value> {
    let mut out = Vec::new();
    for routes in [10_000usize, 1_000_000] {
        let mut removal = None;
        for write in [Write::Single, Write::Batch, Write::BatchSorted] {
            let (mut m, install) = msee_with_routes(routes, write)?;
            let (method, order) = match write {
                Write::Single => ("upsert_route", "random"),
                Write::Batch => ("upsert_routes", "random"),
                Write::BatchSorted => ("upsert_routes", "by address"),
            };
            let rate = routes as f64 / install.as_secs_f64();
            eprintln!(
                "msee-bench: {routes} routes with {method}, {order} order: {:.3} s ({rate:.0} routes/s)",
                install.as_secs_f64()
            );
            out.push(json!({
                "routes": routes,
                "method": method,
                "order": order,
                "seconds": install.as_secs_f64(),
                "routes_per_sec": rate,
            }));
            if write == Write::Batch {
                let table: Vec<(u32, IpNet)> = route_table(routes)
                    .into_iter()
                    .map(|p| (DOMAIN, IpNet::V4(p)))
                    .collect();
                let start = Instant::now();
                m.remove_routes(&table)?;
                let took = start.elapsed();
                ensure!(
                    m.lookup_route(DOMAIN, IpAddr::V4(PROBE_DST))?.is_none(),
                    "the probe's route survived remove_routes"
                );
                let rate = routes as f64 / took.as_secs_f64();
                eprintln!(
                    "msee-bench: {routes} routes removed with remove_routes: {:.3} s ({rate:.0} routes/s)",
                    took.as_secs_f64()
                );
                removal = Some(json!({
                    "routes": routes,
                    "method": "remove_routes",
                    "order": "random",
                    "seconds": took.as_secs_f64(),
                    "routes_per_sec": rate,
                }));
            }
        }
        out.extend(removal);
    }
    Ok(json!(out))
}

/// The install through the dataplane API's section.
pub fn render(w: &mut String, r: &Value) -> Result<()> {
    let Some(installs) = r["install"].as_array() else {
        writeln!(w, "Not measured on this run.\n")?;
        return Ok(());
    };
    writeln!(w, "| IPv4 routes | method | order | seconds | routes/s |")?;
    writeln!(w, "|---|---|---|---|---|")?;
    for i in installs {
        let method = i["method"].as_str().unwrap_or("?");
        writeln!(
            w,
            "| {} | `{method}` | {} | {:.3} | {} |",
            thousands(num(i, &["routes"])? as u64),
            i["order"].as_str().unwrap_or("random"),
            num(i, &["seconds"])?,
            thousands(num(i, &["routes_per_sec"])?.round() as u64)
        )?;
    }
    writeln!(
        w,
        "\nInto an empty table of a fresh msee, timed from the first to the \
         last call: `Msee::upsert_route` one route at a time (one \
         `BPF_MAP_UPDATE_ELEM` each); `Msee::upsert_routes`, the same routes \
         in one call (`BPF_MAP_UPDATE_BATCH`, {} routes per syscall), in the \
         table's random order and sorted by address; then \
         `Msee::remove_routes` (`BPF_MAP_DELETE_BATCH`) removing the whole \
         table. Internet-shaped prefixes (the per-packet table: /8../24, \
         about 60 % /24). Each route \
         is written twice: into the kernel's LPM trie (which keeps every \
         route) and, through a shared mapping, into the routing domain's \
         forwarding table (a route longer than /16 writes its /16's ranges \
         afresh: a few words, then the root entry). At a million \
         routes the inserts, not the syscalls, are the cost: batching saves \
         little in random order, while each insert that follows its \
         neighbour in address order finds its path down the trie and the \
         table in cache.\n",
        r["route_batch"].as_u64().unwrap_or(8192)
    )?;
    Ok(())
}
