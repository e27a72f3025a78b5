//! The customers' routers an estate's lab can start, each configured from
//! the file: FRR (zebra, bfdd, bgpd), BIRD 2, or GoBGP. Each speaks eBGP
//! to both MSEE links of every peering of its circuit (peer AS 12076, MD5
//! from the peering's key), announces its on-premises network on private
//! peering and its registered public prefixes on Microsoft peering, and
//! installs what it learns into its namespace's kernel (GoBGP, which has no
//! kernel side, gets a default route toward the primary MSEE instead).
use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use circuit::model::PeeringType;
use ipnet::IpNet;

use super::plan::{Customer, CustomerPeering};

/// Who plays a customer's router.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerRouter {
    /// FRR (zebra, bfdd, bgpd).
    Frr,
    /// BIRD 2, with BFD.
    Bird,
    /// GoBGP (no BFD, no kernel routes: a default route instead).
    Gobgp,
    /// Nothing: the user brings their own.
    None,
}

impl std::str::FromStr for CustomerRouter {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "frr" => Self::Frr,
            "bird" => Self::Bird,
            "gobgp" => Self::Gobgp,
            "none" => Self::None,
            other => bail!("customer router {other:?}: one of frr, bird, gobgp, none"),
        })
    }
}

/// Which router each circuit's customer gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customers {
    pub default: CustomerRouter,
    pub per_circuit: BTreeMap<String, CustomerRouter>,
}

impl Customers {
    pub fn all(router: CustomerRouter) -> Self {
        Self {
            default: router,
            per_circuit: BTreeMap::new(),
        }
    }

    pub fn of(&self, circuit: &str) -> CustomerRouter {
        self.per_circuit
            .get(circuit)
            .copied()
            .unwrap_or(self.default)
    }
}

pub const ZEBRA: &str = "/usr/lib/frr/zebra";
pub const BFDD: &str = "/usr/lib/frr/bfdd";
pub const BGPD: &str = "/usr/lib/frr/bgpd";
pub const BIRD: &str = "/usr/sbin/bird";
pub const GOBGPD: &str = "/usr/bin/gobgpd";
pub const GOBGP: &str = "/usr/bin/gobgp";

fn short(t: PeeringType) -> &'static str {
    match t {
        PeeringType::AzurePrivatePeering => "private",
        PeeringType::MicrosoftPeering => "microsoft",
    }
}

/// Every MSEE address of a peering: (address, is IPv6, link index).
fn neighbours(p: &CustomerPeering) -> Vec<(IpAddr, bool, usize)> {
    let mut out: Vec<(IpAddr, bool, usize)> = p
        .msee
        .iter()
        .enumerate()
        .map(|(k, a)| (IpAddr::V4(*a), false, k))
        .collect();
    if let Some(m6) = p.msee6 {
        out.extend(
            m6.iter()
                .enumerate()
                .map(|(k, a)| (IpAddr::V6(*a), true, k)),
        );
    }
    out
}

/// FRR's bgpd and bfdd configurations (a BFD profile per peering with BFD,
/// at its timers; prefix lists choose what each peering announces).
pub fn frr_configs(c: &Customer, log_dir: &Path) -> (String, String) {
    let mut bgp = format!(
        "frr defaults traditional\nhostname {name}\nlog file {log}\n!\n",
        name = c.circuit,
        log = log_dir.join("bgpd.log").display()
    );
    let mut bfd = format!("log file {}\nbfd\n", log_dir.join("bfdd.log").display());
    let mut lists = String::new();
    for p in &c.peerings {
        let name = short(p.peering_type);
        if let Some((ms, mult)) = p.bfd {
            bfd += &format!(
                " profile {name}\n  transmit-interval {ms}\n  receive-interval {ms}\n  detect-multiplier {mult}\n !\n"
            );
        }
        for (family, v6) in [("ip", false), ("ipv6", true)] {
            let mut any = false;
            for (seq, a) in p
                .announce
                .iter()
                .filter(|a| a.addr().is_ipv6() == v6)
                .enumerate()
            {
                lists += &format!(
                    "{family} prefix-list {name}-out seq {} permit {a}\n",
                    (seq + 1) * 5
                );
                any = true;
            }
            if !any {
                lists += &format!("{family} prefix-list {name}-out seq 5 deny any\n");
            }
        }
    }
    bgp += &lists;
    let router_id = c.peerings[0].customer[0].0;
    bgp += &format!(
        "!\nrouter bgp {}\n bgp router-id {router_id}\n no bgp ebgp-requires-policy\n no bgp network import-check\n",
        c.asn
    );
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for p in &c.peerings {
        let name = short(p.peering_type);
        for (n, is6, _) in neighbours(p) {
            bgp += &format!(" neighbor {n} remote-as 12076\n neighbor {n} timers connect 5\n");
            if let Some(k) = &p.md5 {
                bgp += &format!(" neighbor {n} password {k}\n");
            }
            if p.bfd.is_some() && !is6 {
                bgp += &format!(" neighbor {n} bfd profile {name}\n");
            }
            if is6 { &mut v6 } else { &mut v4 }.push((n, name));
        }
    }
    bgp += " !\n address-family ipv4 unicast\n";
    for a in c.peerings.iter().flat_map(|p| &p.announce) {
        if let IpNet::V4(a) = a {
            bgp += &format!("  network {a}\n");
        }
    }
    for (n, name) in &v4 {
        bgp += &format!("  neighbor {n} prefix-list {name}-out out\n");
    }
    for (n, _) in &v6 {
        bgp += &format!("  no neighbor {n} activate\n");
    }
    bgp += " exit-address-family\n !\n address-family ipv6 unicast\n";
    for a in c.peerings.iter().flat_map(|p| &p.announce) {
        if let IpNet::V6(a) = a {
            bgp += &format!("  network {a}\n");
        }
    }
    for (n, name) in &v6 {
        bgp += &format!("  neighbor {n} activate\n  neighbor {n} prefix-list {name}-out out\n");
    }
    bgp += " exit-address-family\n!\n";
    (bgp, bfd)
}

/// BIRD 2's configuration: a static protocol per family holding what the
/// customer announces (blackholes: its hosts are on the loopback), one
/// `protocol bgp` per MSEE address exporting its peering's prefixes, BFD
/// per peering interface at its timers, and learned routes into the kernel.
pub fn bird_config(c: &Customer, log_dir: &Path) -> String {
    let mut out = format!(
        "log \"{}\" all;\nrouter id {};\nprotocol device {{ scan time 10; }}\n\
         protocol kernel {{ ipv4 {{ export where source = RTS_BGP; }}; }}\n\
         protocol kernel {{ ipv6 {{ export where source = RTS_BGP; }}; }}\n",
        log_dir.join("bird.log").display(),
        c.peerings[0].customer[0].0
    );
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        out += &format!("protocol static announced_{family} {{\n  {family};\n");
        for a in c
            .peerings
            .iter()
            .flat_map(|p| &p.announce)
            .filter(|a| a.addr().is_ipv6() == v6)
        {
            out += &format!("  route {a} blackhole;\n");
        }
        out += "}\n";
    }
    let bfd: Vec<String> = c
        .peerings
        .iter()
        .filter_map(|p| {
            let (ms, mult) = p.bfd?;
            Some(
                p.ifnames
                    .iter()
                    .map(|i| {
                        format!("  interface \"{i}\" {{ interval {ms} ms; multiplier {mult}; }};\n")
                    })
                    .collect::<String>(),
            )
        })
        .collect();
    if !bfd.is_empty() {
        out += &format!("protocol bfd {{\n{}}}\n", bfd.concat());
    }
    for p in &c.peerings {
        for (n, is6, k) in neighbours(p) {
            let family = if is6 { "ipv6" } else { "ipv4" };
            let nets: Vec<String> = p
                .announce
                .iter()
                .filter(|a| a.addr().is_ipv6() == is6)
                .map(ToString::to_string)
                .collect();
            let export = if nets.is_empty() {
                "none".to_owned()
            } else {
                format!("where net ~ [ {} ]", nets.join(", "))
            };
            out += &format!(
                "protocol bgp {name}_{k}{suffix} {{\n  local as {asn};\n  neighbor {n} as 12076;\n  \
                 connect retry time 2;\n  error wait time 1, 2;\n",
                name = short(p.peering_type),
                suffix = if is6 { "_v6" } else { "" },
                asn = c.asn,
            );
            if let Some(key) = &p.md5 {
                out += &format!("  password \"{key}\";\n");
            }
            if p.bfd.is_some() && !is6 {
                out += "  bfd on;\n";
            }
            out += &format!("  {family} {{ import all; export {export}; }};\n}}\n");
        }
    }
    out
}

/// GoBGP's configuration: a neighbour per MSEE address, each with its
/// family; the announcements are added through its API once it runs.
pub fn gobgp_config(c: &Customer) -> String {
    let mut out = format!(
        "[global.config]\n  as = {}\n  router-id = \"{}\"\n",
        c.asn, c.peerings[0].customer[0].0
    );
    for p in &c.peerings {
        for (n, is6, _) in neighbours(p) {
            out += &format!(
                "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{n}\"\n    peer-as = 12076\n"
            );
            if let Some(key) = &p.md5 {
                out += &format!("    auth-password = \"{key}\"\n");
            }
            out += &format!(
                "  [neighbors.timers.config]\n    connect-retry = 2\n    idle-hold-time-after-reset = 1\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{}\"\n",
                if is6 { "ipv6-unicast" } else { "ipv4-unicast" }
            );
        }
    }
    out
}

fn wait_file(path: &Path, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        if Instant::now() > deadline {
            bail!("{what}: {} did not appear", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn read_pid(path: &Path, what: &str) -> Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            bail!("{what} wrote no pid file {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `program args` in `ns` to completion (a daemon that forks).
fn run_in(ns: &str, program: &str, args: &[String], stderr: &Path) -> Result<()> {
    if !Path::new(program).exists() {
        bail!("{program} is missing: `cargo xtask setup` installs it");
    }
    let status = Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr)?)
        .status()
        .with_context(|| format!("starting {program} in {ns}"))?;
    if !status.success() {
        bail!(
            "{program} in {ns} did not start ({status}): {}",
            std::fs::read_to_string(stderr).unwrap_or_default()
        );
    }
    Ok(())
}

/// Starts `router` for customer `c` in its namespace, its files in `dir`
/// (which the daemons must be able to write: FRR's drop to `frr`). Returns
/// the processes started.
pub fn start(router: CustomerRouter, c: &Customer, dir: &Path) -> Result<Vec<(String, i32)>> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))?;
    match router {
        CustomerRouter::None => Ok(Vec::new()),
        CustomerRouter::Frr => start_frr(c, dir),
        CustomerRouter::Bird => {
            let conf = dir.join("bird.conf");
            std::fs::write(&conf, bird_config(c, dir))?;
            let pid = dir.join("bird.pid");
            run_in(
                &c.ns,
                BIRD,
                &[
                    "-c".into(),
                    conf.display().to_string(),
                    "-s".into(),
                    dir.join("bird.ctl").display().to_string(),
                    "-P".into(),
                    pid.display().to_string(),
                ],
                &dir.join("bird.stderr"),
            )?;
            Ok(vec![("bird".into(), read_pid(&pid, "bird")?)])
        }
        CustomerRouter::Gobgp => start_gobgp(c, dir),
    }
}

fn start_frr(c: &Customer, dir: &Path) -> Result<Vec<(String, i32)>> {
    let (bgp, bfd) = frr_configs(c, dir);
    let zserv = dir.join("zserv.api").display().to_string();
    let zebra_conf = format!(
        "hostname {}\nlog file {}\n",
        c.circuit,
        dir.join("zebra.log").display()
    );
    let bfdctl = dir.join("bfdd.sock").display().to_string();
    let mut out = Vec::new();
    for (daemon, bin, conf, extra) in [
        (
            "zebra",
            ZEBRA,
            zebra_conf,
            vec!["-z".to_owned(), zserv.clone()],
        ),
        (
            "bfdd",
            BFDD,
            bfd,
            vec![
                "-z".to_owned(),
                zserv.clone(),
                "--bfdctl".into(),
                bfdctl.clone(),
            ],
        ),
        (
            "bgpd",
            BGPD,
            bgp,
            vec!["-z".to_owned(), zserv.clone(), "-S".into()],
        ),
    ] {
        let conf_path = dir.join(format!("{daemon}.conf"));
        std::fs::write(&conf_path, conf)?;
        let pid_path = dir.join(format!("{daemon}.pid"));
        let mut args = vec![
            "-d".to_owned(),
            "-f".into(),
            conf_path.display().to_string(),
            "-i".into(),
            pid_path.display().to_string(),
            "--vty_socket".into(),
            dir.display().to_string(),
        ];
        args.extend(extra);
        run_in(&c.ns, bin, &args, &dir.join(format!("{daemon}.stderr")))?;
        out.push((daemon.to_owned(), read_pid(&pid_path, daemon)?));
        if daemon == "zebra" {
            wait_file(&dir.join("zserv.api"), "zebra")?;
        }
    }
    Ok(out)
}

/// The lab's GoBGP API port for a customer: one per namespace, so any
/// fixed port will do.
pub const GOBGP_API_PORT: u16 = 50051;

fn start_gobgp(c: &Customer, dir: &Path) -> Result<Vec<(String, i32)>> {
    use std::os::unix::process::CommandExt as _;
    if !Path::new(GOBGPD).exists() {
        bail!("{GOBGPD} is missing: `cargo xtask setup` installs it");
    }
    let conf = dir.join("gobgpd.toml");
    std::fs::write(&conf, gobgp_config(c))?;
    let child = Command::new("ip")
        .args(["netns", "exec", &c.ns, GOBGPD, "-f"])
        .arg(&conf)
        .args([
            "--api-hosts",
            &format!("127.0.0.1:{GOBGP_API_PORT}"),
            "--log-plain",
            "--pprof-disable",
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("gobgpd.log"))?)
        .stderr(std::fs::File::create(dir.join("gobgpd.stderr"))?)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting gobgpd in {}", c.ns))?;
    let pid = child.id() as i32;
    // Runs until `lab down` stops it by PID (`ip netns exec` execs it).
    std::mem::forget(child);
    let gobgp = |args: &[&str]| -> Result<String> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &c.ns,
                GOBGP,
                "-p",
                &GOBGP_API_PORT.to_string(),
            ])
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!("gobgp {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while gobgp(&["global"]).is_err() {
        if Instant::now() > deadline {
            bail!("gobgpd in {} did not answer on its API", c.ns);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for a in c.peerings.iter().flat_map(|p| &p.announce) {
        let family = if a.addr().is_ipv6() { "ipv6" } else { "ipv4" };
        gobgp(&["global", "rib", "add", &a.to_string(), "-a", family])?;
    }
    // GoBGP installs nothing in the kernel: its way to Azure is the
    // primary MSEE of its first peering.
    let p = &c.peerings[0];
    crate::ip_ns(
        &c.ns,
        &["route", "add", "default", "via", &p.msee[0].to_string()],
    )?;
    if let Some(m6) = p.msee6 {
        crate::ip_ns(
            &c.ns,
            &["-6", "route", "add", "default", "via", &m6[0].to_string()],
        )?;
    }
    Ok(vec![("gobgpd".into(), pid)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estate::plan::{Pools, plan};

    fn example_customer() -> Customer {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../circuit/examples/lab.toml"
        ))
        .unwrap();
        let model = circuit::load_toml(&text).unwrap();
        plan(&model, "t3", &Pools::default(), &[])
            .unwrap()
            .customers
            .remove(0)
    }

    #[test]
    fn frr_speaks_to_every_msee_link_with_the_peerings_settings() {
        let ams = example_customer();
        let (bgp, bfd) = frr_configs(&ams, Path::new("/tmp/x"));
        assert!(bgp.contains("router bgp 65010"), "{bgp}");
        for n in [
            "192.168.100.130",
            "192.168.100.134",
            "203.0.113.2",
            "203.0.113.6",
        ] {
            assert!(
                bgp.contains(&format!(" neighbor {n} remote-as 12076")),
                "{n}: {bgp}"
            );
        }
        assert!(
            bgp.contains("neighbor 192.168.100.130 password s3cret-md5"),
            "{bgp}"
        );
        assert!(
            bgp.contains("neighbor 192.168.100.130 bfd profile private"),
            "{bgp}"
        );
        assert!(bgp.contains("network 172.16.0.0/24") && bgp.contains("network 198.51.100.0/24"));
        assert!(
            bgp.contains("ip prefix-list microsoft-out seq 5 permit 198.51.100.0/24"),
            "{bgp}"
        );
        assert!(bgp.contains("neighbor 2001:db8:100::2 activate"), "{bgp}");
        assert!(
            bfd.contains("profile private\n  transmit-interval 300"),
            "{bfd}"
        );
    }

    #[test]
    fn bird_and_gobgp_get_the_same_sessions() {
        let ams = example_customer();
        let bird = bird_config(&ams, Path::new("/tmp/x"));
        assert!(
            bird.contains("neighbor 192.168.100.130 as 12076;"),
            "{bird}"
        );
        assert!(bird.contains("password \"s3cret-md5\";"), "{bird}");
        assert!(
            bird.contains("export where net ~ [ 172.16.0.0/24 ];"),
            "{bird}"
        );
        assert!(
            bird.contains("export where net ~ [ 198.51.100.0/24 ];"),
            "{bird}"
        );
        assert!(bird.contains("interface \"pri-private\" { interval 300 ms; multiplier 3; };"));
        assert!(
            bird.contains("neighbor 2001:db8:100::2 as 12076;"),
            "{bird}"
        );
        let gobgp = gobgp_config(&ams);
        assert!(gobgp.contains("as = 65010"), "{gobgp}");
        assert_eq!(gobgp.matches("[[neighbors]]").count(), 6, "{gobgp}");
        assert!(gobgp.contains("auth-password = \"s3cret-md5\""), "{gobgp}");
        assert!("bird".parse::<CustomerRouter>().unwrap() == CustomerRouter::Bird);
        assert!("quagga".parse::<CustomerRouter>().is_err());
    }
}
