//! The seed's subscriber: monitors `system.*` on every service named "publisher" and prints
//! `<publisher> became available at <time>` when it receives `system.ctime`.
//!
//! ```text
//! cargo run --example subscriber -- --connect 127.0.0.1:11111
//! ```
//!
//! With `--connect`, joins the exchange server there and finds publishers in other processes.
//! Without it, the publisher of `examples/publisher.rs` runs in this same process (started a
//! second after the subscriber, so the subscription by name is seen to be sticky and the
//! cached `system.ctime` reaches the late pair).

#[path = "publisher.rs"]
mod publisher;

use std::time::Duration;

use clap::Parser;
use netsvc::prelude::*;

/// Prints when publishers become available and what they report.
#[derive(Service)]
struct Subscriber;

impl Service for Subscriber {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("publisher", "system.*");
    }

    fn report(&mut self, report: Report, _ctx: &mut ServiceContext<Self>) {
        let publisher = report.publisher();
        let who = format!("({:?}/{})", publisher.name().as_str(), publisher.agent());
        match report.subject().as_str() {
            "system.ctime" => println!("{who} became available at {}", publisher::now()),
            subject => match report.decode::<String>() {
                Ok(time) => println!("{who} {subject} = {time}"),
                Err(e) => eprintln!("{e}"),
            },
        }
    }

    fn publisher(&mut self, notice: PublisherNotice, _ctx: &mut ServiceContext<Self>) {
        if notice.status == Status::Withdrawn {
            println!(
                "({:?}/{}) withdrawn",
                notice.publisher.name().as_str(),
                notice.publisher.agent()
            );
        }
    }
}

/// Command line of the subscriber example.
#[derive(Parser)]
struct Args {
    /// Seconds between the in-process publisher's `system.time` reports.
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// An exchange server to join, e.g. 127.0.0.1:11111.
    #[arg(long, value_name = "HOST:PORT")]
    connect: Option<String>,
    /// TLS to the exchange server.
    #[command(flatten)]
    tls: publisher::tls_args::TlsArgs,
}

#[actix::main]
async fn main() {
    publisher::tls_args::init_logs();
    let args = Args::parse();
    let node = Node::new("subscriber");
    node.monitor_signals();
    node.spawn(Subscriber);
    match &args.connect {
        Some(addr) => args
            .tls
            .exchange(&node)
            .connect(addr, Some(Duration::from_secs(1)))
            .forget(),
        None => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            node.spawn(publisher::Publisher {
                interval: Duration::from_secs_f64(args.interval.max(0.01)),
            });
        }
    }
    node.shutdown_complete().await;
}
