//! What `gateway` prints: a readable table, or one `--json` line.

use super::run::{Figure, Plan};
use super::TARGET;
use crate::fmt::{range, thousands, JsonLine};
use crate::stats::Stat;

/// The workload's name in the `--json` line.
const WORKLOAD: &str = "gateway_json_calls";

/// The table's heading.
pub(crate) fn header(plan: &Plan, reps: usize, stat: Stat) {
    println!(
        "netsvc-bench gateway: POST {} {} -> {}, {} keep-alive HTTP/1.1 clients, {} calls per run \
         after {} warm-up calls; {} of {reps} runs per side (after a warm-up run unless --quick), \
         in a random order per round",
        super::protocol::PATH,
        super::protocol::BODY,
        super::protocol::EXPECTED,
        plan.clients,
        thousands(plan.calls as f64),
        thousands(plan.warmup as f64),
        stat.describe()
    );
    println!(
        "gateway: {} + netsvc-gateway processes (HTTP on the node's thread); bare: one \
         actix-web process (one worker), the same answer; cpu: every process of a run, client \
         included (server: without the client)",
        match plan.topology {
            super::Topology::Hub => "hub + calculator",
            super::Topology::Direct => "calculator (its own exchange, linked directly)",
        }
    );
    println!();
    println!(
        "{:<10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>11}  {:<16}",
        "side", "calls/s", "p50 us", "p99 us", "max us", "cpu us", "server cpu", "calls/s range"
    );
}

/// The table's rows: each side, then the ratio and the target.
pub(crate) fn rows(runs: &[Vec<Figure>; 2], stat: Stat) {
    let [gateway, bare] = pick(runs, stat);
    for (name, figure, runs) in [("gateway", gateway, &runs[0]), ("bare", bare, &runs[1])] {
        println!(
            "{:<10} {:>10} {:>9.1} {:>9.1} {:>9.1} {:>8.2} {:>11.2}  {:<16}",
            name,
            thousands(figure.rate),
            figure.p50_us,
            figure.p99_us,
            figure.max_us,
            figure.cpu_us_per_call,
            figure.server_cpu_us_per_call,
            range(runs.iter().map(|f| f.rate)),
        );
    }
    let ratio = gateway.rate / bare.rate;
    let met = if ratio.is_nan() {
        "-"
    } else if ratio >= TARGET {
        "yes"
    } else {
        "NO"
    };
    println!();
    println!(
        "gateway / bare: {ratio:.2} (target >= {TARGET:.2}: {met}); cpu per call {:.2}x bare",
        gateway.cpu_us_per_call / bare.cpu_us_per_call
    );
}

/// The extra fields of the `--json` line, after those `compare` prints.
#[derive(Debug, serde::Serialize)]
struct GatewayLine {
    /// The fields every `--json` line has (`netsvc` = the gateway, `baseline` = bare).
    #[serde(flatten)]
    line: JsonLine,
    /// Concurrent keep-alive connections.
    clients: usize,
    /// Measured calls per run.
    calls: u64,
    /// How the gateway reached the calculator (`hub` or `direct`).
    topology: super::Topology,
    /// p50 latencies, µs.
    netsvc_p50_us: f64,
    baseline_p50_us: f64,
    /// Longest calls, µs.
    netsvc_max_us: f64,
    baseline_max_us: f64,
    /// CPU per call without the client's, µs.
    netsvc_server_cpu_us_per_call: f64,
    baseline_server_cpu_us_per_call: f64,
    /// The target of `ratio` and whether it is met.
    target: f64,
    met: bool,
}

/// The `--json` line.
pub(crate) fn json(plan: &Plan, runs: &[Vec<Figure>; 2], stat: Stat) -> Result<(), String> {
    let [gateway, bare] = pick(runs, stat);
    let defined = |x: f64| (!x.is_nan()).then_some(x);
    let ratio = gateway.rate / bare.rate;
    let line = GatewayLine {
        line: JsonLine {
            workload: WORKLOAD,
            netsvc: gateway.rate,
            baseline: bare.rate,
            unit: "calls/s",
            ratio,
            lower_is_better: false,
            netsvc_p50_us: None,
            baseline_p50_us: None,
            netsvc_p99_us: defined(gateway.p99_us),
            baseline_p99_us: defined(bare.p99_us),
            netsvc_max_us: None,
            baseline_max_us: None,
            netsvc_cpu_us_per_msg: defined(gateway.cpu_us_per_call),
            baseline_cpu_us_per_msg: defined(bare.cpu_us_per_call),
            repetitions: runs.iter().map(Vec::len).max().unwrap_or(0),
            statistic: stat.describe(),
            limit: None,
        },
        clients: plan.clients,
        calls: plan.calls,
        topology: plan.topology,
        netsvc_p50_us: gateway.p50_us,
        baseline_p50_us: bare.p50_us,
        netsvc_max_us: gateway.max_us,
        baseline_max_us: bare.max_us,
        netsvc_server_cpu_us_per_call: gateway.server_cpu_us_per_call,
        baseline_server_cpu_us_per_call: bare.server_cpu_us_per_call,
        target: TARGET,
        met: ratio >= TARGET,
    };
    let text =
        serde_json::to_string(&line).map_err(|e| format!("cannot encode the result: {e}"))?;
    println!("{text}");
    Ok(())
}

/// Each side's figure by `stat`.
fn pick(runs: &[Vec<Figure>; 2], stat: Stat) -> [Figure; 2] {
    [0, 1].map(|i| Figure::pick(&runs[i], stat))
}
