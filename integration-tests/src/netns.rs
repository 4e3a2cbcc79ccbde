//! Network namespaces for tests that need a network they can break (root only).
//!
//! A [`Lab`] is one bridge namespace holding a Linux bridge, and one namespace per [`Host`],
//! each joined to the bridge by a veth pair whose host end has an address in `10.213.0.0/24`
//! (the subnet exists only inside the lab: every lab has its own bridge, so labs running at
//! the same time do not meet). Faults are nftables rules in the bridge namespace, on the wire
//! between hosts: a [`Lab::blackhole`] drops IPv4 to and from one host, a [`Lab::cut`] drops
//! IPv4 between two hosts. Both are silent (no reset, no ICMP, and ARP still passes): the
//! hosts' own stacks are untouched and learn nothing, so a connection attempt through a fault
//! waits on SYN retransmissions, as with loss beyond a router on a real network. Every host
//! retransmits SYNs on the classic schedule (after 1 s, then doubling: 1, 3, 7, 15 s after the
//! first), also on kernels whose default is otherwise (Linux 6.7 and later retransmit the first
//! four every second, unless `net.ipv4.tcp_syn_linear_timeouts` is 0), so that timings after a
//! fault do not depend on the kernel.
//!
//! Names are unique per lab (namespaces `netsvc-<pid>-<n>-<label>`, veths `nv<pid><n><host><end>`,
//! the table `netsvc_<pid>_<n>`), and dropping the lab — also while unwinding from a failed
//! assertion — kills what still runs in its namespaces (by PID), deletes its table and its
//! namespaces (which deletes the bridge and the veths). Every command is bounded in time. A lab
//! also deletes the namespaces left by labs of test processes that no longer exist.
//!
//! [`available`] says whether this machine can run such tests; a test that cannot run prints
//! why and passes, unless `NETSVC_REQUIRE_NETNS=1` is set (CI as root), which makes it fail.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Bound of every `ip` or `nft` command.
const COMMAND_LIMIT: Duration = Duration::from_secs(10);

/// Labs (and probes) created by this process, for unique names.
static LABS: AtomicU32 = AtomicU32::new(0);

/// Runs a command to completion (at most 10 s, then it is killed); its stdout, or why it
/// failed (with its stderr).
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let shown = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown}: still running after {COMMAND_LIMIT:?}, killed"
                ));
            }
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    };
    // The output of these commands is small: it fits the pipes, so reading after the exit
    // cannot block.
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{shown}: {status}: {}", err.trim()))
    }
}

/// Runs a command that must succeed; panics with its error.
fn must(program: &str, args: &[&str]) -> String {
    run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Why namespace tests cannot run here, or `None` when they can: they need root, `ip` with
/// `netns` support, `nft`, and the right to create a namespace.
pub fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1));
    if uid != Some("0") {
        return Some(format!(
            "not running as root (effective uid {})",
            uid.unwrap_or("unknown")
        ));
    }
    if let Err(e) = run("ip", &["netns", "list"]) {
        return Some(format!("`ip netns` does not work: {e}"));
    }
    if let Err(e) = run("nft", &["--version"]) {
        return Some(format!("`nft` is missing (apt-get install nftables): {e}"));
    }
    let probe = format!(
        "netsvc-{}-probe{}",
        std::process::id(),
        LABS.fetch_add(1, Ordering::Relaxed)
    );
    if let Err(e) = run("ip", &["netns", "add", &probe]) {
        return Some(format!("cannot create a network namespace: {e}"));
    }
    let _ = run("ip", &["netns", "delete", &probe]);
    None
}

/// Whether the test `test` can run: if not, prints why (and panics when
/// `NETSVC_REQUIRE_NETNS=1`, so that CI cannot skip it unnoticed).
pub fn available(test: &str) -> bool {
    let Some(reason) = unavailable() else {
        return true;
    };
    if std::env::var("NETSVC_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
        panic!("{test}: NETSVC_REQUIRE_NETNS=1 but namespace tests cannot run: {reason}");
    }
    // Straight to the standard error, past the test harness's capture: a skip must show.
    let _ = writeln!(std::io::stderr(), "skipping {test}: {reason}");
    false
}

/// One host of a [`Lab`]: a namespace with one address on the lab's bridge.
#[derive(Debug, Clone)]
pub struct Host {
    /// The label given to [`Lab::host`].
    pub label: String,
    /// The namespace.
    pub ns: String,
    /// The host's IPv4 address (in `10.213.0.0/24`).
    pub ip: String,
    /// The bridge's end of the host's veth pair (in the bridge namespace).
    port: String,
}

impl Host {
    /// `<ip>:<port>`.
    pub fn addr(&self, port: u16) -> String {
        format!("{}:{port}", self.ip)
    }
}

/// A bridge namespace and host namespaces; everything is deleted when the lab is dropped.
#[derive(Debug)]
pub struct Lab {
    /// `<pid>-<n>`: unique among the labs of live processes.
    tag: String,
    /// The bridge namespace.
    bridge: String,
    /// Every namespace created, the bridge's first.
    namespaces: Vec<String>,
    hosts: usize,
    /// The nftables table (family `bridge`, in the bridge namespace) while faults are in place.
    table: Option<String>,
}

impl Lab {
    /// A new lab: the bridge namespace with its bridge, no hosts yet.
    pub fn new() -> Lab {
        remove_stale();
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let bridge = format!("netsvc-{tag}-bridge");
        // Filled in as things are created, so that a failure half-way still cleans up.
        let mut lab = Lab {
            tag,
            bridge: bridge.clone(),
            namespaces: Vec::new(),
            hosts: 0,
            table: None,
        };
        must("ip", &["netns", "add", &bridge]);
        lab.namespaces.push(bridge.clone());
        must("ip", &["-n", &bridge, "link", "set", "lo", "up"]);
        must(
            "ip",
            &["-n", &bridge, "link", "add", "br0", "type", "bridge"],
        );
        must("ip", &["-n", &bridge, "link", "set", "br0", "up"]);
        lab
    }

    /// A new host namespace named after `label`, with the next address of the lab
    /// (`10.213.0.1`, `.2`, ...) on a veth joined to the bridge.
    pub fn host(&mut self, label: &str) -> Host {
        assert!(self.hosts < 200, "too many hosts in one lab");
        self.hosts += 1;
        let index = self.hosts;
        let ns = format!("netsvc-{}-{label}", self.tag);
        must("ip", &["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        // Interface names have at most 15 characters: nv + 6 (pid) + 2 (lab) + 2 (host) + 1.
        let n = self
            .tag
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        let stem = format!(
            "nv{:06x}{:02x}{:02x}",
            std::process::id() & 0xff_ffff,
            n & 0xff,
            index & 0xff
        );
        let (inner, port) = (format!("{stem}h"), format!("{stem}b"));
        // Both ends are created inside their namespaces: no name ever appears in the root
        // namespace.
        must(
            "ip",
            &[
                "link",
                "add",
                &inner,
                "netns",
                &ns,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &self.bridge,
            ],
        );
        must(
            "ip",
            &["-n", &self.bridge, "link", "set", &port, "master", "br0"],
        );
        must("ip", &["-n", &self.bridge, "link", "set", &port, "up"]);
        let ip = format!("10.213.0.{index}");
        must(
            "ip",
            &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", &inner],
        );
        must("ip", &["-n", &ns, "link", "set", &inner, "up"]);
        must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        // The classic SYN schedule (the setting is per namespace, and absent before Linux 6.7).
        let linear = "/proc/sys/net/ipv4/tcp_syn_linear_timeouts";
        must(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "sh",
                "-c",
                &format!("[ ! -e {linear} ] || echo 0 > {linear}"),
            ],
        );
        Host {
            label: label.to_owned(),
            ns,
            ip,
            port,
        }
    }

    /// A command running `program` inside `host`'s namespace (`ip netns exec`, which `exec`s
    /// the program: the child's PID is the program's).
    pub fn command(&self, host: &Host, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &host.ns, program]);
        command
    }

    /// The lab's nftables table, created on first use: a `forward` chain in the bridge.
    fn table(&mut self) -> String {
        if let Some(table) = &self.table {
            return table.clone();
        }
        let table = format!("netsvc_{}", self.tag.replace('-', "_"));
        self.nft(&["add", "table", "bridge", &table]);
        self.table = Some(table.clone());
        self.nft(&[
            "add",
            "chain",
            "bridge",
            &table,
            "faults",
            "{ type filter hook forward priority 0; policy accept; }",
        ]);
        table
    }

    fn nft(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.bridge, "nft"];
        all.extend_from_slice(args);
        must("ip", &all);
    }

    /// Drops every IPv4 packet to and from `host` on the bridge, silently. ARP still passes,
    /// as it would with the loss beyond a router: the host's stack learns nothing (no
    /// unreachable neighbour), so a connection attempt waits on SYN retransmissions.
    pub fn blackhole(&mut self, host: &Host) {
        let table = self.table();
        for direction in ["iifname", "oifname"] {
            self.nft(&[
                "add", "rule", "bridge", &table, "faults", direction, &host.port, "ether", "type",
                "ip", "drop",
            ]);
        }
    }

    /// Drops IPv4 between `a` and `b`, both ways, silently; both keep talking to other hosts.
    pub fn cut(&mut self, a: &Host, b: &Host) {
        let table = self.table();
        for (from, to) in [(a, b), (b, a)] {
            self.nft(&[
                "add", "rule", "bridge", &table, "faults", "ip", "saddr", &from.ip, "ip", "daddr",
                &to.ip, "drop",
            ]);
        }
    }

    /// Removes every fault (deletes the table).
    pub fn restore(&mut self) {
        if let Some(table) = self.table.take() {
            self.nft(&["delete", "table", "bridge", &table]);
        }
    }

    /// The PIDs of the processes running in the lab's namespaces.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for ns in &self.namespaces {
            let out = run("ip", &["netns", "pids", ns]).unwrap_or_default();
            pids.extend(out.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
        pids
    }
}

impl Default for Lab {
    fn default() -> Lab {
        Lab::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Whatever still runs in the lab (every process in it was started by its test): kill
        // it by PID and wait (bounded) until it is gone, so that nothing outlives the lab.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() >= deadline {
                break;
            }
            for pid in pids {
                let _ = run("kill", &["-KILL", &pid.to_string()]);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(table) = self.table.take() {
            let _ = run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &self.bridge,
                    "nft",
                    "delete",
                    "table",
                    "bridge",
                    &table,
                ],
            );
        }
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = run("ip", &["netns", "delete", ns]) {
                eprintln!("netns lab cleanup: {e}");
            }
        }
    }
}

/// Deletes the namespaces of labs whose process no longer runs (a test killed before its
/// lab was dropped). Only names of the form `netsvc-<pid>-...` are touched.
fn remove_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix("netsvc-")
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run("ip", &["netns", "delete", name]);
        }
    }
}
