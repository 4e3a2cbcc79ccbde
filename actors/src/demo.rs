//! `netsvc demo`: the seed scenario and a round of requests, in one process.
//!
//! Services: "publisher" (a cached `system.ctime` at start, `system.time` on a heartbeat
//! timer), an anonymous subscriber monitoring `system.*` on "publisher", a registry watcher
//! that narrates availability, "calculator" with exported methods, and an anonymous client
//! that makes one round of requests (a response, an application failure, a delayed response,
//! a timeout) once the calculator is available.

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clap::Args;
use netsvc::prelude::*;

/// Arguments of `netsvc demo`.
#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Seconds between the publisher's `system.time` reports.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    interval: f64,
}

static START: OnceLock<Instant> = OnceLock::new();

/// Prints one line of the demo's narrative, stamped with the time since start.
fn say(who: &str, what: impl std::fmt::Display) {
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    println!("[{t:7.3}s] {who:<11} {what}");
}

fn now() -> String {
    chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn seconds(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{what} must be a positive number of seconds, got {value}"))
}

#[derive(Service)]
#[service(name = "publisher", groups = ["time-sources"])]
struct Publisher {
    interval: Duration,
    beats: u64,
}

impl Service for Publisher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        let ctime = now();
        ctx.publish_report("system.ctime", ctime.clone(), Lifetime::Forever);
        say(
            "publisher",
            format!("published system.ctime = {ctime} (cached forever)"),
        );
        ctx.start_timer("heartbeat", self.interval);
    }

    fn timer(&mut self, _name: &str, ctx: &mut ServiceContext<Self>) {
        self.beats += 1;
        ctx.publish_report("system.time", now(), Lifetime::None);
        ctx.start_timer("heartbeat", self.interval);
    }

    fn subscription(&mut self, notice: SubscriptionNotice, _ctx: &mut ServiceContext<Self>) {
        let verb = match notice.status {
            SubscriptionStatus::Requested => "subscribed to",
            SubscriptionStatus::Withdrawn => "unsubscribed from",
        };
        say(
            "publisher",
            format!("{} {verb} {:?}", notice.subscriber, notice.pattern.as_str()),
        );
    }

    fn shutdown(&mut self, phase: ShutdownPhase, _ctx: &mut ServiceContext<Self>) {
        say(
            "publisher",
            format!("shutdown {phase:?} after {} heartbeat(s)", self.beats),
        );
    }
}

#[derive(Service)]
struct Subscriber;

impl Service for Subscriber {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("publisher", "system.*");
    }

    fn report(&mut self, report: Report, _ctx: &mut ServiceContext<Self>) {
        let publisher = report.publisher();
        let who = format!("({:?}/{})", publisher.name().as_str(), publisher.agent());
        match (report.subject().as_str(), report.decode::<String>()) {
            ("system.ctime", Ok(_)) => {
                say("subscriber", format!("{who} became available at {}", now()))
            }
            (subject, Ok(time)) => say("subscriber", format!("{subject} = {time}")),
            (_, Err(e)) => say("subscriber", format!("unexpected content: {e}")),
        }
    }

    fn publisher(&mut self, notice: PublisherNotice, _ctx: &mut ServiceContext<Self>) {
        let what = match notice.status {
            Status::Available => "accepted our subscription",
            Status::Withdrawn => "is gone",
        };
        say("subscriber", format!("{} {what}", notice.publisher));
    }
}

#[derive(Service)]
struct Watcher;

impl Service for Watcher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.subscribe_registry();
    }

    fn availability(&mut self, event: RegistryEvent, _ctx: &mut ServiceContext<Self>) {
        let what = match (&event.group, event.status) {
            (None, Status::Available) => "is available".to_owned(),
            (None, Status::Withdrawn) => "was withdrawn".to_owned(),
            (Some(g), Status::Available) => format!("joined group {g:?}"),
            (Some(g), Status::Withdrawn) => format!("left group {g:?}"),
        };
        say("registry", format!("{} {what}", event.binding.name()));
    }
}

#[derive(Service)]
#[service(name = "calculator", groups = ["arithmetic"])]
struct Calculator;

impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }

    fn divide(&mut self, a: i64, b: i64) -> Result<i64, Failure> {
        if b == 0 {
            return Err(
                Failure::new(ErrorCode(100), "division by zero").with_details(format!("{a} / {b}"))
            );
        }
        Ok(a / b)
    }

    fn slow_square(&mut self, ctx: &mut ServiceContext<Self>, x: i64, millis: u64) -> Delayed<i64> {
        let (responder, delayed) = ctx.suspend_response();
        ctx.run_later(Duration::from_millis(millis), move |_, _| {
            responder.resolve(x * x)
        });
        delayed
    }
}

fn outcome<T: std::fmt::Debug>(r: Result<T, Failure>) -> String {
    match r {
        Ok(v) => format!("= {v:?}"),
        Err(f) => format!(
            "failed: {} — {} (origin {:?})",
            f.code, f.description, f.origin
        ),
    }
}

#[derive(Service)]
struct Client {
    done: bool,
}

impl Service for Client {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.subscribe_name("calculator");
    }

    fn availability(&mut self, event: RegistryEvent, ctx: &mut ServiceContext<Self>) {
        if event.status != Status::Available || self.done {
            return;
        }
        self.done = true;
        let calc = CalculatorClient::new(ctx.endpoint(&event.binding));
        ctx.on_response(calc.multiply(6, 7), |_, r, _| {
            say("client", format!("multiply(6, 7) {}", outcome(r)))
        });
        ctx.on_response(calc.divide(1, 0), |_, r, _| {
            say("client", format!("divide(1, 0) {}", outcome(r)))
        });
        ctx.on_response(calc.slow_square(12, 100), |_, r, _| {
            say(
                "client",
                format!("slow_square(12), answered after 100 ms, {}", outcome(r)),
            )
        });
        let impatient = CalculatorClient::new(
            ctx.endpoint(&event.binding)
                .with_timeout(Duration::from_millis(50)),
        );
        ctx.on_response(impatient.slow_square(3, 500), |_, r, _| {
            say(
                "client",
                format!("slow_square(3) with a 50 ms timeout {}", outcome(r)),
            )
        });
        let unknown = ctx
            .endpoint("calculator")
            .call_dynamic("square_root", serde_json::json!([2]));
        ctx.on_response(unknown, |_, r, _| {
            say("client", format!("square_root(2) {}", outcome(r)))
        });
    }
}

/// Runs the demo until `--duration` passes or a signal arrives.
pub(crate) async fn run(args: DemoArgs) -> ExitCode {
    let interval = match seconds(args.interval, "interval") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("netsvc demo: {e}");
            return ExitCode::from(2);
        }
    };
    let duration = match args.duration.map(|d| seconds(d, "duration")).transpose() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("netsvc demo: {e}");
            return ExitCode::from(2);
        }
    };
    START.get_or_init(Instant::now);
    let node = Node::new("demo");
    node.monitor_signals();
    say(
        "demo",
        format!("node {:?}, process {}", node.name(), node.process()),
    );
    match duration {
        Some(d) => say("demo", format!("running for {:.1} s", d.as_secs_f64())),
        None => say("demo", "running until Ctrl-C (twice to exit at once)"),
    }
    node.spawn(Watcher);
    node.spawn(Subscriber);
    node.spawn(Publisher { interval, beats: 0 });
    let calculator = node.spawn(Calculator);
    node.spawn(Client { done: false });
    if let Some(d) = duration {
        let node = node.clone();
        actix::spawn(async move {
            tokio::time::sleep(d).await;
            say(
                "demo",
                "time is up: the calculator retires, then the node shuts down",
            );
            calculator.stop();
            tokio::time::sleep(Duration::from_millis(50)).await;
            node.schedule_shutdown(Some(Duration::from_millis(200)));
        });
    }
    node.shutdown_complete().await;
    say("demo", "all services stopped; bye");
    ExitCode::SUCCESS
}
