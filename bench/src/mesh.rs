//! The netsvc side of a role process finding its way: joining the exchange server, waiting
//! for a service to be known, and probing it until it answers.

use std::future::Future;
use std::time::{Duration, Instant};

use netsvc::prelude::*;
use netsvc::{ConnectionState, Exchange};

use crate::roles::SETUP;

/// Connects `node` to the exchange server at `server` and waits until the link is active.
pub(crate) async fn join(
    node: &Node,
    server: &str,
    tls: Option<netsvc::Tls>,
) -> Result<Exchange, String> {
    let config = netsvc::ExchangeConfig {
        tls,
        ..netsvc::ExchangeConfig::default()
    };
    let exchange = Exchange::with_config(node, config).map_err(|e| e.to_string())?;
    let mut events = exchange.connections();
    exchange
        .connect(server, Some(Duration::from_millis(100)))
        .forget();
    let deadline = tokio::time::Instant::now() + SETUP;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if event.state == ConnectionState::Active => return Ok(exchange),
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => return Err(format!("connection events ended: {e}")),
            Err(_) => {
                return Err(format!(
                    "no connection to the exchange at {server} within {SETUP:?}"
                ))
            }
        }
    }
}

/// Waits until a service named `name` is known to `node`.
pub(crate) async fn find(node: &Node, name: &str) -> Result<Binding, String> {
    let deadline = Instant::now() + SETUP;
    loop {
        if let Some(binding) = node.lookup_name(name).await.into_iter().next() {
            return Ok(binding);
        }
        if Instant::now() >= deadline {
            return Err(format!("service {name} did not appear within {SETUP:?}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Calls `call` until it succeeds, for at most [`SETUP`], and returns its answer; `what`
/// names the service in the error. The first request may overtake the announcement of this
/// node's agent to the service's process (which then drops it), so `call` should carry a
/// short timeout.
pub(crate) async fn probe<T, E, Fut>(what: &str, call: impl Fn() -> Fut) -> Result<T, String>
where
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline = Instant::now() + SETUP;
    loop {
        match call().await {
            Ok(answer) => return Ok(answer),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("{what} never answered: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
