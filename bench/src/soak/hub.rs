//! The hub process of `soak`: a node whose exchange listens (what `netsvc exchange` does),
//! plus a `soak-hub` service whose `stats` method returns the hub's traffic counters (so the
//! run can check that the hub dropped no report).

use netsvc::prelude::*;
use netsvc::Exchange;

use super::protocol::{SoakRoleArgs, Traffic};
use crate::roles;

/// The hub: listens, serves its counters, relays until killed.
pub(crate) async fn hub(args: &SoakRoleArgs) -> Result<(), String> {
    let node = Node::new("soak-hub");
    let exchange = Exchange::new(&node);
    let addr = exchange
        .listen(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    node.spawn(Hub { exchange });
    roles::ready(&addr.to_string());
    std::future::pending::<()>().await;
    Ok(())
}

/// The hub's counters, on request.
#[derive(netsvc::Service)]
#[service(name = "soak-hub")]
struct Hub {
    /// The hub's exchange.
    exchange: Exchange,
}

impl Service for Hub {}

#[netsvc::methods]
impl Hub {
    /// The hub's traffic counters.
    fn stats(&mut self) -> Traffic {
        self.exchange.stats().into()
    }
}
