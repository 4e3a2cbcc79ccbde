//! One run of one side of a cross-process workload: its server and worker processes,
//! started, waited for and killed, and the figure made of what they measured.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::nats_server;
use super::protocol::{PublishOutcome, RequestOutcome, SubscribeOutcome, System};
use super::workloads::{Shape, Workload};
use crate::procs::{self, Proc};
use crate::roles::SETUP;
use crate::stats;

mod burst;
mod fanin;
mod fanout;

pub(crate) use burst::Burst;

/// nats-server's `max_payload` in the payload workloads (its default, 1 MiB headers
/// included, is too small for a 1 MiB body).
const NATS_MAX_PAYLOAD: usize = 8 << 20;
/// Most bytes of reports in flight in the payload workloads: the pacing window, in reports,
/// is at most this ÷ the body. netsvc's default outbound buffer per link is 32 MiB
/// (`ExchangeConfig::outbound_limit`), and a publisher publishing a window in one handler
/// fills it before its writer runs: a window of 64 MiB would drop reports.
const PAYLOAD_WINDOW_BYTES: u64 = 16 << 20;

/// Counts and settings of one invocation.
#[derive(Debug)]
pub(crate) struct Plan {
    /// This executable (re-executed for every role).
    pub(crate) exe: PathBuf,
    /// nats-server, when the NATS side runs.
    pub(crate) nats_server: Option<PathBuf>,
    /// Round trips, 1 in flight.
    pub(crate) round_trips: u64,
    /// Round trips, 64 in flight.
    pub(crate) round_trips_concurrent: u64,
    /// Reports, 1 subscriber.
    pub(crate) reports: u64,
    /// Reports per subscriber, 10 subscribers.
    pub(crate) reports_fanout: u64,
    /// Reports published, many subjects (`Shape::SubjectReports`).
    pub(crate) reports_subjects: u64,
    /// Bytes of bodies per run of a payload workload (`Shape::Payload`).
    pub(crate) payload_bytes: u64,
    /// Measured round trips per requester of the fan-in workload.
    pub(crate) round_trips_fanin: u64,
    /// Reports of the unpaced burst.
    pub(crate) burst_reports: u64,
    /// Time the burst subscriber spends per report, in ns.
    pub(crate) burst_spin_ns: u64,
    /// The burst subscriber's bound: netsvc inbox capacity, NATS subscription capacity.
    pub(crate) burst_capacity: usize,
    /// Warm-up round trips.
    pub(crate) warmup: u64,
    /// Pacing window.
    pub(crate) window: u64,
    /// Acknowledgement interval.
    pub(crate) ack_every: u64,
    /// Longest run.
    pub(crate) limit: Duration,
    /// Print started processes.
    pub(crate) verbose: bool,
    /// The certificates of the TLS workloads (see [`Certificates`]).
    pub(crate) tls_dir: Option<PathBuf>,
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figure {
    /// p50 latency in µs, or a rate per second.
    pub(crate) value: f64,
    /// p50 latency in µs (request workloads: also at 64 in flight, where `value` is a rate).
    pub(crate) p50_us: Option<f64>,
    /// p99 latency in µs (request workloads).
    pub(crate) p99_us: Option<f64>,
    /// Highest latency in µs (request workloads).
    pub(crate) max_us: Option<f64>,
    /// CPU time (user + system) of every process of the run, in µs per message (round trip
    /// or delivery); set by [`once`].
    pub(crate) cpu_us_per_msg: Option<f64>,
    /// Messages per second, where `value` is another rate (bytes/s of the payload
    /// workloads).
    pub(crate) msgs_per_s: Option<f64>,
    /// What the burst subscriber counted (`burst_unpaced`).
    pub(crate) burst: Option<Burst>,
    /// Messages of the run, warm-up included (what its CPU time is divided by).
    messages: u64,
}

impl Figure {
    /// The figure of `runs` by `stat`: the best run (the lowest value when lower is better,
    /// else the highest) with its own p99, or the median value with the median of the p99s;
    /// NaN without runs.
    pub(crate) fn pick(runs: &[Figure], lower_is_better: bool, stat: stats::Stat) -> Figure {
        match stat {
            stats::Stat::Best => stats::best(runs, |f| f.value, lower_is_better)
                .copied()
                .unwrap_or(Figure::none()),
            stats::Stat::Median => {
                let values: Vec<f64> = runs.iter().map(|f| f.value).collect();
                let median_of = |part: fn(&Figure) -> Option<f64>| {
                    let parts: Vec<f64> = runs.iter().filter_map(part).collect();
                    (!parts.is_empty()).then(|| stats::median(&parts))
                };
                let value = stats::median(&values);
                // The burst's counts are those of the run nearest the median.
                let nearest = runs
                    .iter()
                    .min_by(|a, b| (a.value - value).abs().total_cmp(&(b.value - value).abs()));
                Figure {
                    value,
                    p50_us: median_of(|f| f.p50_us),
                    p99_us: median_of(|f| f.p99_us),
                    max_us: median_of(|f| f.max_us),
                    cpu_us_per_msg: median_of(|f| f.cpu_us_per_msg),
                    msgs_per_s: median_of(|f| f.msgs_per_s),
                    burst: nearest.and_then(|f| f.burst),
                    messages: 0,
                }
            }
        }
    }

    /// No figure: NaN.
    fn none() -> Figure {
        Figure {
            value: f64::NAN,
            p50_us: None,
            p99_us: None,
            max_us: None,
            cpu_us_per_msg: None,
            msgs_per_s: None,
            burst: None,
            messages: 0,
        }
    }

    /// A rate: `ops` in `elapsed_ns`, per second, of a run of `messages` in all.
    fn rate(ops: u64, elapsed_ns: u64, messages: u64) -> Figure {
        Figure {
            value: ops as f64 / (elapsed_ns as f64 / 1e9).max(1e-9),
            messages,
            ..Figure::none()
        }
    }
}

/// One run of one side: starts the processes, collects the figures, kills the processes
/// (when their guards drop, in reverse order of starting, on success and on error alike).
pub(crate) fn once(workload: &Workload, plan: &Plan, system: System) -> Result<Figure, String> {
    measured(workload, plan, system, false)
}

/// [`once`] for the netsvc side with its subscription conflated (`burst_unpaced`'s third
/// column).
pub(crate) fn once_conflated(workload: &Workload, plan: &Plan) -> Result<Figure, String> {
    measured(workload, plan, System::Netsvc, true)
}

/// [`once`], `conflate` telling a burst subscriber to conflate.
fn measured(
    workload: &Workload,
    plan: &Plan,
    system: System,
    conflate: bool,
) -> Result<Figure, String> {
    if system == System::Raw && !workload.limit {
        return Err(format!("the raw relay does not run {}", workload.name));
    }
    let before = procs::children_cpu_us()?;
    let mut figure = processes(workload, plan, system, conflate)?;
    // Every process of the run has been killed and reaped by now.
    let cpu = procs::children_cpu_us()?.saturating_sub(before);
    if figure.messages > 0 {
        figure.cpu_us_per_msg = Some(cpu as f64 / figure.messages as f64);
    }
    Ok(figure)
}

/// [`once`]'s processes, from the first started to the last reaped.
fn processes(
    workload: &Workload,
    plan: &Plan,
    system: System,
    conflate: bool,
) -> Result<Figure, String> {
    let tls = if workload.tls {
        Some(
            plan.tls_dir
                .as_deref()
                .ok_or("no certificates for a TLS workload")?,
        )
    } else {
        None
    };
    let side = Side {
        plan,
        system,
        tls,
        spin: workload.spin && system != System::Nats,
    };
    let max_payload = matches!(workload.shape, Shape::Payload { .. }).then_some(NATS_MAX_PAYLOAD);
    let (mut server, addr) = server(&side, max_payload)?;
    match workload.shape {
        Shape::RequestReply { in_flight } => request_reply(&side, &addr, in_flight),
        Shape::Reports { subscribers } => {
            let count = if subscribers == 1 {
                plan.reports
            } else {
                plan.reports_fanout
            };
            let load = Load {
                count,
                window: plan.window,
                ack_every: plan.ack_every,
                body: crate::payload::PAYLOAD_LEN,
            };
            reports(&side, &addr, subscribers, load)
        }
        Shape::SubjectReports {
            processes,
            services,
            subjects,
        } => fanout::reports(&side, &addr, (processes, services), subjects),
        Shape::Payload { body } => reports(&side, &addr, 1, Load::payload(plan, body)),
        Shape::FanIn {
            requesters,
            in_flight,
        } => fanin::request_reply(&side, &addr, requesters, in_flight),
        Shape::Burst { subjects } => {
            burst::reports(&side, (&mut server, &addr), subjects, conflate)
        }
    }
}

/// The counts of one report run: reports, pacing window and acknowledgement interval (in
/// reports), bytes of every body.
#[derive(Debug, Clone, Copy)]
struct Load {
    /// Reports to publish.
    count: u64,
    /// Most reports ahead of the subscriber's acknowledgement.
    window: u64,
    /// The subscriber acknowledges every this many.
    ack_every: u64,
    /// Bytes of every body.
    body: usize,
}

impl Load {
    /// The load of a payload workload of `body`-byte bodies: `plan.payload_bytes` of
    /// bodies (at least 16 reports), a window of at most [`PAYLOAD_WINDOW_BYTES`] (and at
    /// most `--window` reports), acknowledged every quarter window (at most `--ack-every`).
    fn payload(plan: &Plan, body: usize) -> Load {
        let body = body.max(8);
        let count = (plan.payload_bytes / body as u64).max(16);
        let window = (PAYLOAD_WINDOW_BYTES / body as u64).clamp(4, plan.window);
        Load {
            count,
            window,
            ack_every: (window / 4).clamp(1, plan.ack_every),
            body,
        }
    }
}

/// What every process of one run shares: the plan, the system, and the certificates when
/// the workload is over TLS.
struct Side<'a> {
    plan: &'a Plan,
    system: System,
    tls: Option<&'a Path>,
    /// Whether its processes spin when idle (NATS's do not: see `Workload::spin`).
    spin: bool,
}

/// A CA and a server certificate for 127.0.0.1, made for the TLS workloads of one
/// invocation in a directory of their own, removed when dropped.
pub(crate) struct Certificates(PathBuf);

impl Certificates {
    /// Makes them.
    pub(crate) fn new() -> Result<Certificates, String> {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let fail = |e: rcgen::Error| format!("cannot make the TLS certificates: {e}");
        let dir = std::env::temp_dir().join(format!("netsvc-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().map_err(fail)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
        let issuer = Issuer::new(ca, ca_key);
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).map_err(fail)?;
        let server_key = KeyPair::generate().map_err(fail)?;
        let server_cert = server.signed_by(&server_key, &issuer).map_err(fail)?;
        for (name, text) in [
            ("ca.pem", ca_cert.pem()),
            ("server.pem", server_cert.pem()),
            ("server.key", server_key.serialize_pem()),
        ] {
            std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(Certificates(dir))
    }

    /// Their directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A responder and a requester with `in_flight` requests outstanding: the p50 latency in µs
/// for 1 in flight, else the rate of round trips; p50, p99 and max latency either way.
fn request_reply(side: &Side<'_>, addr: &str, in_flight: usize) -> Result<Figure, String> {
    let plan = side.plan;
    let mut responder = role(side, "responder", "responder", &[("--server", addr)])?;
    responder.expect("READY", SETUP)?;
    let count = if in_flight == 1 {
        plan.round_trips
    } else {
        plan.round_trips_concurrent
    };
    let mut requester = role(
        side,
        "requester",
        "requester",
        &[
            ("--server", addr),
            ("--count", &count.to_string()),
            ("--in-flight", &in_flight.to_string()),
            ("--warmup", &plan.warmup.to_string()),
        ],
    )?;
    let outcome: RequestOutcome =
        procs::decode("requester", &requester.expect("RESULT", plan.limit)?)?;
    if outcome.ops != count {
        return Err(format!(
            "{} round trips measured, expected {count}",
            outcome.ops
        ));
    }
    let messages = outcome.ops + plan.warmup;
    let value = if in_flight == 1 {
        outcome.p50_ns as f64 / 1e3
    } else {
        Figure::rate(outcome.ops, outcome.elapsed_ns, messages).value
    };
    Ok(Figure {
        value,
        p50_us: Some(outcome.p50_ns as f64 / 1e3),
        p99_us: Some(outcome.p99_ns as f64 / 1e3),
        max_us: Some(outcome.max_ns as f64 / 1e3),
        messages,
        ..Figure::none()
    })
}

/// `subscribers` subscribers and a publisher of `load`: the rate of deliveries (of bytes,
/// with the rate of deliveries beside it, for bodies of other than 100 bytes), once every
/// subscriber has been checked to have received every report exactly once, in order, every
/// body whole.
fn reports(side: &Side<'_>, addr: &str, subscribers: usize, load: Load) -> Result<Figure, String> {
    let plan = side.plan;
    let count = load.count;
    let count_arg = count.to_string();
    let ack_arg = load.ack_every.to_string();
    let body_arg = load.body.to_string();
    let mut subs = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        subs.push(role(
            side,
            "subscriber",
            &format!("subscriber {i}"),
            &[
                ("--server", addr),
                ("--index", &i.to_string()),
                ("--count", &count_arg),
                ("--ack-every", &ack_arg),
                ("--body-len", &body_arg),
            ],
        )?);
    }
    for sub in &mut subs {
        sub.expect("READY", SETUP)?;
    }
    let mut publisher = role(
        side,
        "publisher",
        "publisher",
        &[
            ("--server", addr),
            ("--count", &count_arg),
            ("--subscribers", &subscribers.to_string()),
            ("--window", &load.window.to_string()),
            ("--ack-every", &ack_arg),
            ("--body-len", &body_arg),
        ],
    )?;
    let outcome: PublishOutcome =
        procs::decode("publisher", &publisher.expect("RESULT", plan.limit)?)?;
    let mut problems = Vec::new();
    for sub in &mut subs {
        let got: SubscribeOutcome = procs::decode("subscriber", &sub.expect("RESULT", SETUP)?)?;
        if got.received != count || got.out_of_order != 0 {
            problems.push(format!(
                "{}: {} reports received ({} out of sequence), expected {count}",
                sub.name(),
                got.received,
                got.out_of_order
            ));
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "reports lost, duplicated or reordered: {}",
            problems.join("; ")
        ));
    }
    let deliveries = Figure::rate(outcome.ops, outcome.elapsed_ns, outcome.ops);
    if load.body == crate::payload::PAYLOAD_LEN {
        return Ok(deliveries);
    }
    Ok(Figure {
        value: deliveries.value * load.body as f64,
        msgs_per_s: Some(deliveries.value),
        ..deliveries
    })
}

/// Starts the server of `system` (for the raw side, the relay; nats-server with
/// `max_payload` if given); returns it and the address clients connect to.
fn server(side: &Side<'_>, max_payload: Option<usize>) -> Result<(Proc, String), String> {
    let plan = side.plan;
    match side.system {
        System::Netsvc => {
            let mut exchange = role(side, "exchange", "exchange", &[("--listen", "127.0.0.1:0")])?;
            let addr = exchange.expect("READY", SETUP)?;
            Ok((exchange, addr))
        }
        System::Nats => {
            let binary = plan
                .nats_server
                .as_ref()
                .ok_or("nats-server was not located")?;
            let (server, url) = nats_server::start(binary, side.tls, max_payload)?;
            if plan.verbose {
                eprintln!("started nats-server (pid {}) at {url}", server.id());
            }
            Ok((server, url))
        }
        System::Raw => {
            let mut relay = role(side, "relay", "relay", &[("--listen", "127.0.0.1:0")])?;
            let addr = relay.expect("READY", SETUP)?;
            Ok((relay, addr))
        }
    }
}

/// Starts `netsvc-bench role <kind> --system <system> <options>`, named `<system> <name>`.
fn role(side: &Side<'_>, kind: &str, name: &str, options: &[(&str, &str)]) -> Result<Proc, String> {
    let system = side.system;
    let tls = side.tls.map(|dir| dir.display().to_string());
    let tls = tls.as_deref().map(|dir| ("--tls-dir", dir));
    let spin = side.spin.then_some(("--spin", "true"));
    let args = ["role", kind, "--system", system.arg()].into_iter().chain(
        options
            .iter()
            .chain(&tls)
            .chain(&spin)
            .flat_map(|&(option, value)| [option, value]),
    );
    Proc::start_role(
        &side.plan.exe,
        format!("{} {name}", system.arg()),
        args,
        side.plan.verbose,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_figure_carries_its_p99() {
        let runs =
            [(3.0, Some(9.0)), (1.0, Some(5.0)), (2.0, None)].map(|(value, p99_us)| Figure {
                value,
                p99_us,
                ..Figure::none()
            });
        let best = stats::Stat::Best;
        assert_eq!(Figure::pick(&runs, true, best).value, 1.0);
        assert_eq!(Figure::pick(&runs, true, best).p99_us, Some(5.0));
        assert_eq!(Figure::pick(&runs, false, best).value, 3.0);
        assert!(Figure::pick(&[], false, best).value.is_nan());
    }

    #[test]
    fn the_median_figure_has_the_median_p99() {
        let runs = [(3.0, 9.0), (1.0, 5.0), (2.0, 7.0), (10.0, 6.0)].map(|(value, p99)| Figure {
            value,
            p99_us: Some(p99),
            cpu_us_per_msg: Some(value / 10.0),
            ..Figure::none()
        });
        let median = Figure::pick(&runs, true, stats::Stat::Median);
        assert_eq!((median.value, median.p99_us), (2.5, Some(6.5)));
        assert_eq!(median.cpu_us_per_msg, Some(0.25));
    }

    #[test]
    fn children_cpu_grows_with_a_busy_child() {
        let before = procs::children_cpu_us().unwrap();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let after = procs::children_cpu_us().unwrap();
        assert!(after > before, "{before} -> {after}");
        assert!(Figure::pick(&[], true, stats::Stat::Median).value.is_nan());
    }
}
