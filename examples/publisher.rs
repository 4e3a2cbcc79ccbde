//! The seed's publisher: a cached `system.ctime` report published forever at start, and
//! `system.time` every `--interval` seconds on a timer named "heartbeat".
//!
//! ```text
//! cargo run --example publisher -- --connect 127.0.0.1:11111 --interval 2
//! ```
//!
//! With `--connect`, joins the exchange server there (retrying every second, reconnecting
//! after a loss), so subscribers in other processes see it. Runs until Ctrl-C (a second Ctrl-C
//! exits at once).

#[path = "support/tls_args.rs"]
pub(crate) mod tls_args;

use std::time::Duration;

use clap::Parser;
use netsvc::prelude::*;

/// Publishes the current time.
#[derive(Service)]
#[service(name = "publisher")]
pub(crate) struct Publisher {
    /// Time between `system.time` reports.
    pub(crate) interval: Duration,
}

/// Now, as `YYYY-MM-DDThh:mm:ss` (local time), OSE's DateTime text format.
pub(crate) fn now() -> String {
    chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

impl Service for Publisher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("system.ctime", now(), Lifetime::Forever);
        ctx.start_timer("heartbeat", self.interval);
    }

    fn timer(&mut self, _name: &str, ctx: &mut ServiceContext<Self>) {
        let time = now();
        println!("publisher: system.time {time}");
        ctx.publish_report("system.time", time, Lifetime::None);
        ctx.start_timer("heartbeat", self.interval);
    }
}

/// Command line of the publisher example.
#[derive(Parser)]
struct Args {
    /// Seconds between `system.time` reports.
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// An exchange server to join, e.g. 127.0.0.1:11111.
    #[arg(long, value_name = "HOST:PORT")]
    connect: Option<String>,
    /// TLS to the exchange server.
    #[command(flatten)]
    tls: tls_args::TlsArgs,
}

#[allow(dead_code)]
#[actix::main]
async fn main() {
    tls_args::init_logs();
    let args = Args::parse();
    let node = Node::new("publisher");
    node.monitor_signals();
    if let Some(addr) = &args.connect {
        args.tls
            .exchange(&node)
            .connect(addr, Some(Duration::from_secs(1)))
            .forget();
    }
    let publisher = node.spawn(Publisher {
        interval: Duration::from_secs_f64(args.interval.max(0.01)),
    });
    println!("publisher: running as {}", publisher.binding);
    node.shutdown_complete().await;
}
