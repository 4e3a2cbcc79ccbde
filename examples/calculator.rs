//! Requests: a calculator service, a client service describing it and calling it from inside
//! its own hooks, a failure with an application code, a delayed response and a timeout.
//!
//! ```text
//! cargo run --example calculator                                        # both in one process
//! cargo run --example calculator -- --connect 127.0.0.1:11111 --serve  # the service only
//! cargo run --example calculator -- --connect 127.0.0.1:11111           # the client only
//! ```
//!
//! The client runs its round of requests when a calculator becomes available (here or in
//! another process), then shuts down. `--serve` runs until Ctrl-C.

#[path = "support/tls_args.rs"]
mod tls_args;

use std::time::Duration;

use netsvc::prelude::*;

/// Exports arithmetic.
#[derive(Service)]
#[service(name = "calculator", groups = ["arithmetic"])]
struct Calculator;

impl Service for Calculator {}

/// An application failure code of the calculator's own.
const DIVISION_BY_ZERO: ErrorCode = ErrorCode(100);

#[netsvc::methods]
impl Calculator {
    /// Multiplies two integers.
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }

    /// Divides `a` by `b`; fails with code 100 when `b` is zero.
    fn divide(&mut self, a: i64, b: i64) -> Result<i64, Failure> {
        if b == 0 {
            return Err(Failure::new(DIVISION_BY_ZERO, "division by zero")
                .with_details(format!("{a} / {b}")));
        }
        Ok(a / b)
    }

    /// Answers after `millis` milliseconds, without blocking the calculator meanwhile.
    fn slow_square(&mut self, ctx: &mut ServiceContext<Self>, x: i64, millis: u64) -> Delayed<i64> {
        let (responder, delayed) = ctx.suspend_response();
        ctx.run_later(Duration::from_millis(millis), move |_, _| {
            responder.resolve(x * x)
        });
        delayed
    }
}

/// Calls the calculator when it becomes available, then shuts the node down.
#[derive(Service)]
struct Client;

impl Service for Client {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.subscribe_name("calculator");
    }

    fn availability(&mut self, event: RegistryEvent, ctx: &mut ServiceContext<Self>) {
        if event.status != Status::Available {
            return;
        }
        // What it exports, as any tool sees it (the descriptor of every service).
        let describe = ctx.endpoint(&event.binding).describe();
        ctx.on_response(describe, |_, r, _| match r {
            Ok(descriptor) => {
                for method in &descriptor.methods {
                    println!("calculator exports {method}");
                }
            }
            Err(f) => println!("describe failed: {} {}", f.code, f.description),
        });
        let calculator = CalculatorClient::new(ctx.endpoint(&event.binding));
        ctx.on_response(calculator.multiply(6, 7), |_, r, _| {
            println!("multiply(6, 7) -> {r:?}")
        });
        ctx.on_response(calculator.divide(1, 0), |_, r, _| match r {
            Ok(v) => println!("divide(1, 0) -> {v}"),
            Err(f) => println!(
                "divide(1, 0) failed: {} {} (origin {}, details {:?})",
                f.code, f.description, f.origin, f.details
            ),
        });
        ctx.on_response(calculator.slow_square(9, 50), |_, r, _| {
            println!("slow_square(9) -> {r:?}")
        });
        let impatient = CalculatorClient::new(
            ctx.endpoint(&event.binding)
                .with_timeout(Duration::from_millis(100)),
        );
        ctx.on_response(impatient.slow_square(3, 1_000), |_, r, ctx| {
            match r {
                Ok(v) => println!("slow_square(3) with a 100 ms timeout -> {v}"),
                Err(f) => println!(
                    "slow_square(3) with a 100 ms timeout failed: {} {}",
                    f.code, f.description
                ),
            }
            ctx.schedule_shutdown(Some(Duration::from_millis(100)));
        });
    }
}

/// Command line of the calculator example.
#[derive(clap::Parser)]
struct Args {
    /// An exchange server to join, e.g. 127.0.0.1:11111.
    #[arg(long, value_name = "HOST:PORT")]
    connect: Option<String>,
    /// TLS to the exchange server.
    #[command(flatten)]
    tls: tls_args::TlsArgs,
    /// Run only the calculator service (until Ctrl-C); with `--connect` and without this flag,
    /// only the client runs.
    #[arg(long)]
    serve: bool,
}

#[actix::main]
async fn main() {
    use clap::Parser;
    tls_args::init_logs();
    let args = Args::parse();
    let node = Node::new("calculator");
    node.monitor_signals();
    if let Some(addr) = &args.connect {
        args.tls
            .exchange(&node)
            .connect(addr, Some(Duration::from_secs(1)))
            .forget();
    }
    if args.serve || args.connect.is_none() {
        node.spawn(Calculator);
    }
    if !args.serve {
        node.spawn(Client);
    }
    node.shutdown_complete().await;
}
