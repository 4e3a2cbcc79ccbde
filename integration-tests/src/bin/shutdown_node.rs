//! A node for the shutdown tests: one service that prints each shutdown phase; signals are
//! monitored. Usage: `shutdown_node DELAY_MS`.

use std::time::Duration;

use netsvc::prelude::*;
use netsvc::NodeConfig;

#[derive(Service)]
#[service(name = "sentinel")]
struct Sentinel;

impl Service for Sentinel {
    fn started(&mut self, _ctx: &mut ServiceContext<Self>) {
        println!("ready");
    }
    fn shutdown(&mut self, phase: ShutdownPhase, _ctx: &mut ServiceContext<Self>) {
        println!("shutdown {phase:?}");
    }
    fn stopping(&mut self, _ctx: &mut ServiceContext<Self>) {
        println!("stopping");
    }
}

#[actix::main]
async fn main() {
    let delay = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let node = Node::with_config(NodeConfig {
        name: "shutdown-node".into(),
        shutdown_delay: Duration::from_millis(delay),
        ..NodeConfig::default()
    });
    node.monitor_signals();
    node.spawn(Sentinel);
    node.shutdown_complete().await;
    println!("complete");
}
