//! The server processes of `gateway`: on the gateway side a calculator service and the
//! gateway, each a netsvc node joined to the hub (compare's `role exchange` process); on the
//! bare side an actix-web server with one handler. Every server is one actix `System`. The
//! gateway serves HTTP on its node's own thread (its default, `workers: 0`); the bare server
//! is actix-web's `HttpServer` with one worker thread, as a user would write it.

use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use netsvc::prelude::*;
use netsvc_gateway::{Gateway, GatewayConfig};
use serde_json::json;

use super::protocol::GatewayRoleArgs;
use crate::mesh::{find, join, probe};
use crate::roles::ready;

/// The calculator: a node with the `calculator` service, until killed.
pub(crate) async fn calculator(args: &GatewayRoleArgs) -> Result<(), String> {
    let node = Node::new("bench-calculator");
    node.spawn(services::Calculator);
    if args.server.is_empty() {
        // `--topology direct`: this node's own exchange, which the gateway joins.
        let exchange = netsvc::Exchange::new(&node);
        let addr = exchange
            .listen(&args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        ready(&addr.to_string());
        std::future::pending::<()>().await;
        return Ok(());
    }
    let _exchange = join(&node, &args.server, None).await?;
    ready("");
    std::future::pending::<()>().await;
    Ok(())
}

/// The gateway: a node joined to `--server` (the hub, or the calculator's own exchange) that
/// waits for the calculator, checks that a call reaches it, then serves `netsvc-gateway`
/// (default configuration: every service exposed, HTTP on the node's own thread) until
/// killed. Prints `READY <addr>`.
pub(crate) async fn gateway(args: &GatewayRoleArgs) -> Result<(), String> {
    let node = Node::new("bench-gateway");
    let exchange = join(&node, &args.server, None).await?;
    let calculator = find(&node, "calculator").await?;
    // The first request may overtake the announcement of this node's agent (see `probe`).
    let prober = node
        .endpoint(&calculator)
        .with_timeout(Duration::from_secs(1));
    probe("the calculator", || {
        prober.call_dynamic("multiply", json!([6, 7]))
    })
    .await?;
    let gateway = Gateway::new(&node, GatewayConfig::default());
    gateway.watch_links(&exchange);
    let addr = gateway
        .listen(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    ready(&addr.to_string());
    std::future::pending::<()>().await;
    Ok(())
}

/// The bare handler: actix-web on the same route pattern as the gateway's calls, reading
/// the body, decoding the two arguments and answering `{"result": a * b}` with
/// `HttpResponse::json`, as the gateway answers. Prints `READY <addr>`.
pub(crate) async fn bare(args: &GatewayRoleArgs) -> Result<(), String> {
    let listener = std::net::TcpListener::bind(&args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server =
        HttpServer::new(|| App::new().route("/call/{service}/{method}", web::post().to(multiply)))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .map_err(|e| format!("cannot serve on {addr}: {e}"))?
            .run();
    ready(&addr.to_string());
    server.await.map_err(|e| format!("the server failed: {e}"))
}

/// `[a, b]` → `{"result": a * b}`.
async fn multiply(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<(i64, i64)>(&body) {
        Ok((a, b)) => HttpResponse::Ok().json(json!({ "result": a.wrapping_mul(b) })),
        Err(e) => HttpResponse::BadRequest().body(format!("malformed arguments: {e}")),
    }
}

/// The netsvc service of the calculator process.
mod services {
    use netsvc::prelude::*;

    /// Multiplies, as the example calculator of the README does.
    #[derive(netsvc::Service)]
    #[service(name = "calculator")]
    pub(crate) struct Calculator;

    impl Service for Calculator {}

    #[netsvc::methods]
    impl Calculator {
        /// The product of its arguments.
        fn multiply(&mut self, a: i64, b: i64) -> i64 {
            a.wrapping_mul(b)
        }
    }
}
