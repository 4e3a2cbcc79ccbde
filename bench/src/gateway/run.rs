//! One run of one side of `gateway`: its processes started, the client's outcome checked,
//! every process killed and reaped, and the figure made of it.

use std::path::PathBuf;
use std::time::Duration;

use super::protocol::CallOutcome;
use crate::procs::{self, Proc};
use crate::roles::SETUP;
use crate::stats;

/// Counts and settings of one invocation.
#[derive(Debug)]
pub(crate) struct Plan {
    /// This executable (re-executed for every process).
    pub(crate) exe: PathBuf,
    /// Concurrent keep-alive connections.
    pub(crate) clients: usize,
    /// Measured calls per run.
    pub(crate) calls: u64,
    /// Unmeasured calls per run, first.
    pub(crate) warmup: u64,
    /// Longest run.
    pub(crate) limit: Duration,
    /// Print started processes.
    pub(crate) verbose: bool,
    /// How the gateway reaches the calculator.
    pub(crate) topology: super::Topology,
}

/// The two sides of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Through `netsvc-gateway` to the calculator in another process, via the hub.
    Gateway,
    /// The bare actix-web handler.
    Bare,
}

/// What one run (or, picked, several) measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figure {
    /// Calls per second.
    pub(crate) rate: f64,
    /// Latencies of the calls, in µs.
    pub(crate) p50_us: f64,
    /// 99th percentile.
    pub(crate) p99_us: f64,
    /// Longest call.
    pub(crate) max_us: f64,
    /// CPU time (user + system) of every process of the run, client included, per call
    /// (warm-up calls included, start-up too), in µs.
    pub(crate) cpu_us_per_call: f64,
    /// The same without the client's own CPU: the servers' share.
    pub(crate) server_cpu_us_per_call: f64,
}

impl Figure {
    /// The figure of `runs` by `stat`: the run with the highest rate, its own latencies and
    /// CPU; or the median of each field over the runs. NaN without runs.
    pub(crate) fn pick(runs: &[Figure], stat: stats::Stat) -> Figure {
        match stat {
            stats::Stat::Best => stats::best(runs, |f| f.rate, false)
                .copied()
                .unwrap_or(Figure::none()),
            stats::Stat::Median => {
                let median = |field: fn(&Figure) -> f64| {
                    stats::median(&runs.iter().map(field).collect::<Vec<_>>())
                };
                Figure {
                    rate: median(|f| f.rate),
                    p50_us: median(|f| f.p50_us),
                    p99_us: median(|f| f.p99_us),
                    max_us: median(|f| f.max_us),
                    cpu_us_per_call: median(|f| f.cpu_us_per_call),
                    server_cpu_us_per_call: median(|f| f.server_cpu_us_per_call),
                }
            }
        }
    }

    /// No figure: NaN everywhere.
    fn none() -> Figure {
        Figure {
            rate: f64::NAN,
            p50_us: f64::NAN,
            p99_us: f64::NAN,
            max_us: f64::NAN,
            cpu_us_per_call: f64::NAN,
            server_cpu_us_per_call: f64::NAN,
        }
    }
}

/// One run of `side`: starts its processes, checks the client's outcome (every call made,
/// every answer right), kills them, and measures their CPU time once they are reaped.
pub(crate) fn once(plan: &Plan, side: Side) -> Result<Figure, String> {
    let before = procs::children_cpu_us()?;
    let outcome = processes(plan, side)?;
    // Every process of the run has been killed and reaped by now.
    let cpu = procs::children_cpu_us()?.saturating_sub(before) as f64;
    if outcome.calls != plan.calls {
        return Err(format!(
            "{} calls measured, expected {}",
            outcome.calls, plan.calls
        ));
    }
    if outcome.errors > 0 {
        return Err(format!(
            "{} of {} answers were not 200 with {}; the first: {}",
            outcome.errors,
            plan.calls + plan.warmup,
            super::protocol::EXPECTED,
            outcome.first_error.as_deref().unwrap_or("?")
        ));
    }
    let all_calls = (plan.calls + plan.warmup) as f64;
    let us = |ns: u64| ns as f64 / 1e3;
    Ok(Figure {
        rate: outcome.calls as f64 / (outcome.elapsed_ns as f64 / 1e9).max(1e-9),
        p50_us: us(outcome.p50_ns),
        p99_us: us(outcome.p99_ns),
        max_us: us(outcome.max_ns),
        cpu_us_per_call: cpu / all_calls,
        server_cpu_us_per_call: (cpu - outcome.client_cpu_us as f64).max(0.0) / all_calls,
    })
}

/// [`once`]'s processes: the servers of `side`, then the client; all killed and reaped when
/// this returns (their guards drop), on success and on error alike.
fn processes(plan: &Plan, side: Side) -> Result<CallOutcome, String> {
    let mut servers = Vec::new();
    let target = match side {
        Side::Gateway => {
            // The exchange the gateway joins: the hub's, or the calculator's own.
            let server = match plan.topology {
                super::Topology::Hub => {
                    let mut hub = start(
                        plan,
                        "hub",
                        &[
                            "role",
                            "exchange",
                            "--system",
                            "netsvc",
                            "--listen",
                            "127.0.0.1:0",
                        ],
                    )?;
                    let hub_addr = hub.expect("READY", SETUP)?;
                    servers.push(hub);
                    let mut calculator = start(
                        plan,
                        "calculator",
                        &["gateway-role", "calculator", "--server", &hub_addr],
                    )?;
                    calculator.expect("READY", SETUP)?;
                    servers.push(calculator);
                    hub_addr
                }
                super::Topology::Direct => {
                    let mut calculator =
                        start(plan, "calculator", &["gateway-role", "calculator"])?;
                    let addr = calculator.expect("READY", SETUP)?;
                    servers.push(calculator);
                    addr
                }
            };
            let mut gateway = start(
                plan,
                "gateway",
                &["gateway-role", "gateway", "--server", &server],
            )?;
            let addr = gateway.expect("READY", SETUP)?;
            servers.push(gateway);
            addr
        }
        Side::Bare => {
            let mut bare = start(plan, "bare actix-web", &["gateway-role", "bare"])?;
            let addr = bare.expect("READY", SETUP)?;
            servers.push(bare);
            addr
        }
    };
    let mut client = start(
        plan,
        "client",
        &[
            "gateway-role",
            "client",
            "--target",
            &target,
            "--clients",
            &plan.clients.to_string(),
            "--calls",
            &plan.calls.to_string(),
            "--warmup",
            &plan.warmup.to_string(),
        ],
    )?;
    procs::decode("client", &client.expect("RESULT", plan.limit)?)
}

/// Starts this executable with `args` as the process `name`.
fn start(plan: &Plan, name: &str, args: &[&str]) -> Result<Proc, String> {
    Proc::start_role(&plan.exe, name.to_owned(), args, plan.verbose)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(rate: f64, p99_us: f64) -> Figure {
        Figure {
            rate,
            p99_us,
            ..Figure::none()
        }
    }

    #[test]
    fn the_best_run_is_the_fastest_with_its_own_latencies() {
        let runs = [figure(10.0, 5.0), figure(30.0, 9.0), figure(20.0, 1.0)];
        let best = Figure::pick(&runs, stats::Stat::Best);
        assert_eq!((best.rate, best.p99_us), (30.0, 9.0));
        let median = Figure::pick(&runs, stats::Stat::Median);
        assert_eq!((median.rate, median.p99_us), (20.0, 5.0));
        assert!(Figure::pick(&[], stats::Stat::Median).rate.is_nan());
        assert!(Figure::pick(&[], stats::Stat::Best).rate.is_nan());
    }
}
