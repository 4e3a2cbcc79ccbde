//! `netsvc bench requests|reports`: load against a live mesh, like `nats bench`.
//!
//! Both sides go through the exchange server at `--connect`: the command brings its own
//! responder (or publisher) in a node of its own on a second thread, joined to the server
//! like any other process, and its clients (or subscribers) in `--clients` nodes on the main
//! thread, each with its own link. `bench requests --service NAME --method M` targets an
//! existing service instead. Figures: throughput, and latency p50/p90/p99/max (for reports,
//! from publication to receipt: both sides share this process's clock).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netsvc::prelude::*;
use netsvc::{ServiceName, ServiceOptions, SubscriptionStatus};
use serde_json::json;

use crate::call::parse_arg;
use crate::client::{CliError, Client, ConnectArgs, Exit};

/// Arguments of `netsvc bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(Subcommand, Debug)]
enum Kind {
    /// Requests and responses: clients call a responder.
    Requests(RequestsArgs),
    /// Reports: a publisher streams to subscribers.
    Reports(ReportsArgs),
}

/// What both kinds take.
#[derive(Args, Debug, Clone)]
struct Load {
    /// Client (or subscriber) nodes, each with its own link to the exchange server.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Bytes of payload per request (echoed back) or report.
    #[arg(long, value_name = "BYTES", default_value_t = 16)]
    size: usize,
    /// Requests in all, or reports published.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// One JSON object with the figures instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Args, Debug)]
struct RequestsArgs {
    #[command(flatten)]
    load: Load,
    /// Requests each client keeps in flight.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Call this existing service instead of the command's own responder.
    #[arg(long, requires = "method")]
    service: Option<String>,
    /// The method of `--service` to call.
    #[arg(long)]
    method: Option<String>,
    /// The arguments of each call of `--service`, a JSON array.
    #[arg(long, default_value = "[]")]
    args: String,
}

#[derive(Args, Debug)]
struct ReportsArgs {
    #[command(flatten)]
    load: Load,
}

/// Runs `netsvc bench`.
pub(crate) async fn run(args: BenchArgs) -> Result<(), CliError> {
    match &args.kind {
        Kind::Requests(a) => check(&a.load)?,
        Kind::Reports(a) => check(&a.load)?,
    }
    match args.kind {
        Kind::Requests(args) => requests(args).await,
        Kind::Reports(args) => reports(args).await,
    }
}

/// The instant report timestamps count from (shared by the threads of this process).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The responder of `bench requests`.
#[derive(Service)]
struct Echo;
impl Service for Echo {}

#[netsvc::methods]
impl Echo {
    /// Returns its argument.
    fn echo(&mut self, body: String) -> String {
        body
    }
}

/// The publisher of `bench reports`: once `subscribers` have subscribed, publishes `count`
/// reports as fast as the node lets it (1,024 per turn of its actor, so links get written
/// between), then says how many it published.
#[derive(Service)]
struct Source {
    subscribers: usize,
    count: u64,
    sent: u64,
    body: String,
    done: Option<std::sync::mpsc::Sender<u64>>,
}

impl Service for Source {
    fn subscription(&mut self, notice: SubscriptionNotice, ctx: &mut ServiceContext<Self>) {
        if notice.status == SubscriptionStatus::Requested
            && self.sent == 0
            && ctx.subscribers().len() >= self.subscribers
        {
            self.burst(ctx);
        }
    }
}

impl Source {
    fn burst(&mut self, ctx: &mut ServiceContext<Self>) {
        let until = (self.sent + 1024).min(self.count);
        while self.sent < until {
            let at = u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX);
            ctx.publish_report("bench.data", (at, self.body.clone()), Lifetime::None);
            self.sent += 1;
        }
        if self.sent < self.count {
            ctx.run_later(Duration::ZERO, |source, ctx| source.burst(ctx));
        } else if let Some(done) = self.done.take() {
            let _ = done.send(self.sent);
        }
    }
}

/// A subscriber of `bench reports`.
#[derive(Service)]
struct Sink {
    publisher: ServiceName,
    seen: Arc<Mutex<Samples>>,
    progress: ProgressBar,
}

impl Service for Sink {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports(self.publisher.clone(), "bench.*");
    }

    fn report(&mut self, report: Report, _: &mut ServiceContext<Self>) {
        let now = epoch().elapsed();
        if let Ok((at, _)) = report.decode::<(u64, String)>() {
            let latency = now.saturating_sub(Duration::from_nanos(at));
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.add(latency);
            self.progress.inc(1);
        }
    }
}

/// Latencies and when the first and the last of them were taken.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Samples {
    fn add(&mut self, latency: Duration) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.latencies.push(latency);
    }
}

/// The percentiles of a run, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

/// The p50, p90, p99 and max of `latencies` (nearest rank); `None` without any.
pub(crate) fn percentiles(latencies: &mut [Duration]) -> Option<Percentiles> {
    if latencies.is_empty() {
        return None;
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1].as_secs_f64() * 1e6
    };
    Some(Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: at(1.0),
    })
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}") {
        bar.set_style(style);
    }
    bar
}

/// A node of its own on a second thread, joined to the exchange server, running `setup`
/// on it; it stops when the returned sender is dropped or sent to.
fn side_node(
    connect: &ConnectArgs,
    name: &'static str,
    setup: impl FnOnce(&Node) + Send + 'static,
) -> Result<tokio::sync::oneshot::Sender<()>, CliError> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let connect = connect.clone();
    std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            match connect.join(name).await {
                Ok(client) => {
                    setup(&client.node);
                    let _ = ready_tx.send(Ok(()));
                    let _ = stop_rx.await;
                    drop(client);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(stop_tx),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(CliError {
            exit: Exit::Failed,
            message: format!("the {name} thread ended before it was ready"),
        }),
    }
}

/// The largest `--size`: a body and its frame must fit the exchange's default frame cap.
const MAX_SIZE: usize = 8 << 20;
/// The most clients or subscribers.
const MAX_CLIENTS: usize = 1000;

/// Checks the load's bounds (before anything joins the mesh).
fn check(load: &Load) -> Result<(), CliError> {
    if load.clients == 0 || load.clients > MAX_CLIENTS {
        return Err(CliError::usage(format!(
            "--clients must be 1 to {MAX_CLIENTS}"
        )));
    }
    if load.size > MAX_SIZE {
        return Err(CliError::usage(format!(
            "--size must be at most {MAX_SIZE} bytes"
        )));
    }
    if load.count == 0 {
        return Err(CliError::usage("--count must be at least 1"));
    }
    Ok(())
}

/// `clients` nodes on this thread, each joined to the exchange server.
async fn client_nodes(load: &Load) -> Result<Vec<Client>, CliError> {
    let mut clients = Vec::with_capacity(load.clients);
    for _ in 0..load.clients {
        clients.push(load.connect.join("netsvc-bench").await?);
    }
    Ok(clients)
}

/// The first service named `name` that `node` knows, waiting for it (at most 5 s).
async fn find(node: &Node, name: &ServiceName) -> Result<Binding, CliError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(b) = node.lookup_name(name.clone()).await.into_iter().next() {
            return Ok(b);
        }
        if Instant::now() >= deadline {
            return Err(CliError {
                exit: Exit::Code(46),
                message: format!("no service named {:?} appeared", name.as_str()),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn requests(args: RequestsArgs) -> Result<(), CliError> {
    let load = args.load;
    if args.in_flight == 0 {
        return Err(CliError::usage("--in-flight must be at least 1"));
    }
    let (name, method, call_args, _responder) = match (&args.service, &args.method) {
        (Some(service), Some(method)) => {
            let name = crate::client::service_name("--service", service)?;
            let call_args = parse_arg(&args.args)?;
            if !call_args.is_array() {
                return Err(CliError::usage("--args must be a JSON array"));
            }
            (name, method.clone(), Some(call_args), None)
        }
        _ => {
            let name = ServiceName::new(format!("netsvc-bench-{}", std::process::id()))
                .map_err(|e| CliError::usage(e.to_string()))?;
            let options = ServiceOptions::named(name.clone());
            let stop = side_node(&load.connect, "netsvc-bench-responder", move |node| {
                node.spawn_with(Echo, options);
            })?;
            (name, "echo".to_owned(), None, Some(stop))
        }
    };
    let clients = client_nodes(&load).await?;
    let body = "x".repeat(load.size);
    let next = Rc::new(Cell::new(0u64));
    let failures = Rc::new(Cell::new(0u64));
    let first_failure = Rc::new(RefCell::new(None::<Failure>));
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(
        load.count.min(1 << 24) as usize
    )));
    let bar = progress(load.count);
    let mut tasks = Vec::new();
    let mut targets = Vec::with_capacity(clients.len());
    for client in &clients {
        targets.push(find(&client.node, &name).await?);
    }
    let started = Instant::now();
    for (client, target) in clients.iter().zip(&targets) {
        for _ in 0..args.in_flight {
            let endpoint = client.node.endpoint(target);
            let (next, failures, first_failure, latencies, bar) = (
                next.clone(),
                failures.clone(),
                first_failure.clone(),
                latencies.clone(),
                bar.clone(),
            );
            let (method, call_args, body, count) =
                (method.clone(), call_args.clone(), body.clone(), load.count);
            tasks.push(actix::spawn(async move {
                loop {
                    let n = next.get();
                    if n >= count {
                        return;
                    }
                    next.set(n + 1);
                    let t0 = Instant::now();
                    let outcome = match &call_args {
                        Some(a) => endpoint.call_dynamic(&method, a.clone()).await.map(drop),
                        None => endpoint
                            .call::<_, String>("echo", (body.clone(),))
                            .await
                            .map(drop),
                    };
                    latencies.borrow_mut().push(t0.elapsed());
                    bar.inc(1);
                    if let Err(f) = outcome {
                        failures.set(failures.get() + 1);
                        first_failure.borrow_mut().get_or_insert(f);
                    }
                }
            }));
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let mut latencies = latencies.take();
    let done = latencies.len() as u64;
    let figures = percentiles(&mut latencies);
    let rate = done as f64 / elapsed.as_secs_f64();
    if load.json {
        println!(
            "{}",
            json!({
                "kind": "requests",
                "requests": done,
                "failures": failures.get(),
                "seconds": elapsed.as_secs_f64(),
                "rate": rate,
                "clients": load.clients,
                "in_flight": args.in_flight,
                "size": load.size,
                "latency_us": figures.map(|p| json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "max": p.max})),
            })
        );
    } else {
        println!(
            "requests: {done} in {:.2} s = {rate:.0} requests/s ({} client(s) x {} in flight, {} B bodies)",
            elapsed.as_secs_f64(),
            load.clients,
            args.in_flight,
            load.size,
        );
        print_latency(figures);
    }
    if let Some(failure) = first_failure.take() {
        let mut error = CliError::from(failure);
        error.message = format!(
            "{} of {done} requests failed; first: {}",
            failures.get(),
            error.message
        );
        return Err(error);
    }
    Ok(())
}

async fn reports(args: ReportsArgs) -> Result<(), CliError> {
    let load = args.load;
    let name = ServiceName::new(format!("netsvc-bench-{}", std::process::id()))
        .map_err(|e| CliError::usage(e.to_string()))?;
    let clients = client_nodes(&load).await?;
    let expected = load.count.saturating_mul(load.clients as u64);
    let bar = progress(expected);
    let mut samples = Vec::new();
    for client in &clients {
        let seen = Arc::new(Mutex::new(Samples::default()));
        samples.push(seen.clone());
        client.node.spawn(Sink {
            publisher: name.clone(),
            seen,
            progress: bar.clone(),
        });
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let source = Source {
        subscribers: load.clients,
        count: load.count,
        sent: 0,
        body: "x".repeat(load.size),
        done: Some(done_tx),
    };
    let options = ServiceOptions::named(name);
    let _publisher = side_node(&load.connect, "netsvc-bench-publisher", move |node| {
        node.spawn_with(source, options);
    })?;
    let started = Instant::now();
    let delivered = || -> u64 {
        samples
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.latencies.len() as u64))
            .sum()
    };
    // Until every subscriber has every report, or the publisher is done and a second passes
    // without a delivery (reports dropped on the way), or 60 s pass without any.
    let mut published = None;
    let (mut last_count, mut last_change) = (0, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if published.is_none() {
            published = done_rx.try_recv().ok();
        }
        let now = delivered();
        if now != last_count {
            (last_count, last_change) = (now, Instant::now());
        }
        let quiet = last_change.elapsed();
        if now >= expected
            || (published.is_some() && quiet > Duration::from_secs(1))
            || quiet > Duration::from_secs(60)
        {
            break;
        }
    }
    bar.finish_and_clear();
    let mut all = Vec::new();
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for s in &samples {
        let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
        all.append(&mut s.latencies);
        first = match (first, s.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        last = last.max(s.last);
    }
    let delivered = all.len() as u64;
    let span = match (first, last) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => started.elapsed(),
    };
    let rate = delivered as f64 / span.as_secs_f64();
    let figures = percentiles(&mut all);
    if load.json {
        println!(
            "{}",
            json!({
                "kind": "reports",
                "published": published.unwrap_or(0),
                "delivered": delivered,
                "expected": expected,
                "seconds": span.as_secs_f64(),
                "rate": rate,
                "subscribers": load.clients,
                "size": load.size,
                "latency_us": figures.map(|p| json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "max": p.max})),
            })
        );
    } else {
        println!(
            "reports: {delivered} of {expected} delivered in {:.2} s = {rate:.0} reports/s ({} subscriber(s), {} B bodies)",
            span.as_secs_f64(),
            load.clients,
            load.size,
        );
        print_latency(figures);
    }
    if delivered == 0 {
        return Err(CliError {
            exit: Exit::Failed,
            message: "no report was delivered".into(),
        });
    }
    Ok(())
}

fn print_latency(figures: Option<Percentiles>) {
    if let Some(p) = figures {
        println!(
            "latency: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            p.p50, p.p90, p.p99, p.max
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut l: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        l.reverse();
        let p = percentiles(&mut l).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        let mut one = vec![Duration::from_micros(7)];
        assert_eq!(percentiles(&mut one).unwrap().p99, 7.0);
        assert!(percentiles(&mut []).is_none());
    }
}
