//! `shapes --connect HOST:PORT`: a service named `shapes` whose methods take and return a
//! struct, a list and any JSON value, for the gateway's tests (XML-RPC structs and arrays
//! through Python's `xmlrpc.client`). Prints "shapes ready" once joined; runs until killed.

use std::time::Duration;

use netsvc::prelude::*;
use netsvc::Exchange;
use serde::{Deserialize, Serialize};

/// A point on the plane.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

#[derive(Service)]
#[service(name = "shapes")]
struct Shapes;

impl Service for Shapes {}

#[netsvc::methods]
impl Shapes {
    /// The point moved by (dx, dy).
    fn translate(&mut self, p: Point, dx: i64, dy: i64) -> Point {
        Point {
            x: p.x + dx,
            y: p.y + dy,
        }
    }

    /// The items in reverse order.
    fn reverse(&mut self, mut items: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
        items.reverse();
        items
    }

    /// The value itself.
    fn echo(&mut self, value: serde_json::Value) -> serde_json::Value {
        value
    }
}

#[actix::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = match (args.next().as_deref(), args.next()) {
        (Some("--connect"), Some(addr)) => addr,
        _ => {
            eprintln!("usage: shapes --connect HOST:PORT");
            std::process::exit(2);
        }
    };
    let node = Node::new("shapes");
    node.monitor_signals();
    node.spawn(Shapes);
    let exchange = Exchange::new(&node);
    if let Err(e) = exchange.connect_once(&addr).await {
        eprintln!("shapes: cannot join {addr}: {e}");
        std::process::exit(3);
    }
    exchange
        .connect(&addr, Some(Duration::from_secs(1)))
        .forget();
    println!("shapes ready");
    node.shutdown_complete().await;
}
