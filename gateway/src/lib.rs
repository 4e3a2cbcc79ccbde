//! # netsvc-gateway — netsvc over HTTP
//!
//! An HTTP front door for a netsvc node (OSE's `HttpDaemon` and `RpcGateway(group)`): tools
//! without Rust types, scripts and other languages call the mesh's services, watch its
//! registry and reports, and publish into it. The gateway's node joins the mesh like any
//! other; the gateway is actix-web on the node's own actix System.
//!
//! ```no_run
//! use netsvc::Node;
//! use netsvc_gateway::{Gateway, GatewayConfig};
//!
//! #[actix::main]
//! async fn main() -> std::io::Result<()> {
//!     let node = Node::new("gateway");
//!     // ... join an exchange, spawn services ...
//!     let gateway = Gateway::new(&node, GatewayConfig::default());
//!     let addr = gateway.listen("127.0.0.1:8080").await?;
//!     println!("gateway listening on {addr}");
//!     node.monitor_signals();
//!     node.shutdown_complete().await; // the gateway stops with the node
//!     gateway.stop().await;
//!     Ok(())
//! }
//! ```
//!
//! ## Endpoints
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /call/{service}/{method}` | a JSON array (by position) or object (by parameter name) of arguments → `200 {"result": …}`, or a failure with the status map below and `{"error": {"code", "name", "description", "origin", "details"}}`; `?timeout=SECONDS` |
//! | `POST /jsonrpc` | JSON-RPC 2.0, method `service.method`: see [`jsonrpc`](crate#json-rpc-20) below |
//! | `POST /RPC2`, `POST /xmlrpc/{service}` | XML-RPC, methodName `service.method`, or the service from the path and methodName = method |
//! | `GET /events/registry` | Server-Sent Events: the node's links and the exposed services, the current state first, then changes (links too with [`Gateway::watch_links`]) |
//! | `GET /events/reports/{service}?pattern=P` | Server-Sent Events: reports of every service of that name matching `P` (default `*`), cached ones first, content as JSON |
//! | `POST /publish/{subject}?lifetime=forever\|none\|SECONDS` | the JSON body published by the gateway's own service ([`GatewayConfig::publisher`]) |
//! | `GET /services`, `GET /services/{name}` | the exposed services (name, agent, groups, audience, process, node, location); one name's bindings and descriptor |
//! | `GET /nodes` | the introspection of every node reachable by links, as `netsvc list nodes` walks them |
//! | `GET /metrics` | Prometheus text: the gateway node's links (frames, bytes, drops), its registry size, and the calls made through it (per method: count, latency histogram, failures by code); see [`netsvc::telemetry`] |
//! | `GET /` (and `/console.css`, `/console.js`) | the web console: the services live, a form per method, a subscription, the nodes and links with their counters |
//!
//! The status map (DESIGN §5): 46 no such service → 503, 47 timeout → 504, 55 no such method
//! → 404, 54 / 56 undecodable or wrong arguments → 400, an application's code and other
//! server failures → 500 (the code is in the body). The HTTP layer adds 413 for a body over
//! [`GatewayConfig::body_limit`], 415 for a content type other than JSON (XML for
//! XML-RPC), and 405 with `Allow` for a method an endpoint does not take; a request without a
//! content type is taken as the endpoint's. An unknown path is 404.
//!
//! ## Security at the door
//!
//! Checked before any endpoint runs (event streams and unknown paths included), in this
//! order:
//!
//! - [`GatewayConfig::authorise_host`] decides by the client's socket address (OSE's host
//!   authorisation; [`HostList`] from addresses and networks such as `10.0.0.0/8`): a
//!   refused host gets 403.
//! - [`GatewayConfig::authorise_user`] checks HTTP Basic credentials (OSE's
//!   `authorise(login, password)`; [`Passwords`] from a `login:password` file) and
//!   [`GatewayConfig::authorise_token`] bearer tokens ([`Tokens`]). With either, missing or
//!   wrong credentials get 401 with a `WWW-Authenticate` challenge (realm [`REALM`]) per
//!   configured scheme.
//!
//! Refusals carry the `{"error": …}` body (code 53, origin `gateway`) and a log line naming
//! the client's address, never a password or token. [`Passwords`] and [`Tokens`] keep keyed
//! tags of the secrets, not the secrets, and compare in constant time; a hook of your own
//! should too. [`GatewayConfig::tls`] serves HTTPS (rustls, from [`netsvc::Tls::server_config`]
//! for PEM files); a plain HTTP request to such an address gets no HTTP answer. Without any
//! of these the gateway serves every host in plain HTTP: meant for 127.0.0.1.
//!
//! ## What is reachable
//!
//! Only the services of the exposed group ([`GatewayConfig::group`]; `None`: every service
//! the node sees), and the gateway's own publisher. A service outside it looks like no
//! service at all (46). Reserved methods (names starting with `$`, such as `$describe`) are
//! not callable: their answers come through the dedicated endpoints. Of several services of
//! one name, a call goes to a local one first, else to the one known longest; when that one
//! is withdrawn the next call goes to the next. A call whose service is withdrawn while it
//! is pending fails at once (`SERVER_APPLICATION_ERROR`, from the core), and is not retried
//! elsewhere (it may have run).
//!
//! ## JSON-RPC 2.0
//!
//! See the `jsonrpc` module: reserved codes −32700, −32600, −32601 (netsvc's 55), −32602 (54,
//! 56), −32603; every other failure has `error.code` = the netsvc code and `{"name", "origin",
//! "details"}` in `error.data`. Batches run concurrently and answer in order; notifications
//! are run and never answered (`204` for a single one or a batch of only notifications).
//!
//! ## XML-RPC
//!
//! dxr as a codec only (its types are not part of this crate's API); values mapped to and
//! from JSON by hand: `i4` and `i8` integers (an integer that fits `i4` is sent as one),
//! doubles, booleans, strings, `base64` (a JSON array of byte values, as serde writes a
//! `Vec<u8>`), `dateTime.iso8601` (a string, `20261202T06:10:00`), arrays, structs, `nil`
//! (`null`); a value with no XML-RPC equivalent (an integer beyond `i8`) as a string, as OSE
//! did. Faults carry `faultCode` = the netsvc code and `faultString` =
//! `"origin -- description"`, then a blank line and the details when there are any. A call's
//! failure is a fault with `200`; a body that is not an XML-RPC call is `400` with a fault.
//!
//! ## Architecture
//!
//! | module | what |
//! |---|---|
//! | `lib.rs` | [`Gateway`], [`GatewayConfig`], the routes, start and stop |
//! | `route` | what is exposed, which binding a call goes to, arguments by name, timeouts: the one path of every call |
//! | `door` | security at the door: host authorisation, Basic and bearer authentication |
//! | `body` | request bodies: content type, size limit |
//! | `error` | failures at the door: the status map, the `{"error": …}` body |
//! | `http` | the plain JSON endpoints, the registry and introspection |
//! | `jsonrpc`, `xmlrpc` | the two RPC protocols over the same calls |
//! | `events` | Server-Sent Events and the slow-client policy |
//! | `console` | the web console at `GET /`: one embedded page (`console/`: HTML, CSS, plain JavaScript) over the endpoints above |
//! | `publisher` | the gateway's own service behind `POST /publish` |
//! | `prometheus` | `GET /metrics`: the process's Prometheus recorder |
//! | `serve` | serving HTTP/1.1 on the node's own arbiter (no worker threads) |
//!
//! Threads: by default ([`GatewayConfig::workers`] = 0) the gateway serves HTTP on the arbiter
//! that calls [`Gateway::listen`], the node's, so that a call goes from its socket to the
//! node's link and back on one thread (`serve`). With workers, actix-web's workers are
//! arbiters of the node's System; handlers talk to the node through its thread-safe handles,
//! and the watches behind event streams are made on the arbiter that built the gateway (the
//! node's), so that HTTP workers own no netsvc service.

mod body;
mod console;
mod door;
mod error;
mod events;
mod http;
mod jsonrpc;
mod prometheus;
mod publisher;
mod route;
mod serve;
mod xmlrpc;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use actix_rt::ArbiterHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use netsvc::{Binding, ErrorCode, GroupName, Node, ServiceName, ServiceOptions};

pub use door::{
    AuthoriseHost, AuthoriseToken, AuthoriseUser, DoorError, HostList, Network, Passwords, Tokens,
    REALM,
};
pub use error::{code_name, failure_json, status_of, GATEWAY_ORIGIN};
pub use events::KEEP_ALIVE;
pub use jsonrpc::MAX_BATCH;

/// Default per-request timeout (see [`GatewayConfig::timeout`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit of a request body, in bytes (see [`GatewayConfig::body_limit`]).
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// Default name of the gateway's own publisher (see [`GatewayConfig::publisher`]).
pub const DEFAULT_PUBLISHER: &str = "gateway";
/// Default number of events an event stream buffers for a slow client before it is dropped
/// (see [`GatewayConfig::sse_buffer`]).
pub const DEFAULT_SSE_BUFFER: usize = 256;
/// Default number of HTTP worker threads (see [`GatewayConfig::workers`]): none, HTTP is
/// served on the node's own arbiter.
pub const DEFAULT_WORKERS: usize = 0;

/// Tunables of a gateway.
#[derive(Clone)]
pub struct GatewayConfig {
    /// The exposed group (OSE's `RpcGateway(group)`); `None`: every service the node sees.
    pub group: Option<GroupName>,
    /// Timeout of a request that does not say `?timeout=SECONDS`.
    pub timeout: Duration,
    /// Largest request body accepted (413 beyond).
    pub body_limit: usize,
    /// Name of the gateway's own service, the publisher of `POST /publish/{subject}`.
    pub publisher: ServiceName,
    /// Events an event stream holds for a client that reads too slowly; when they are all
    /// waiting, the client is dropped.
    pub sse_buffer: usize,
    /// HTTP worker threads (each an arbiter of the node's System, as actix-web's
    /// `HttpServer` runs them); 0 (the default): none, the connections are served on the
    /// arbiter that calls [`Gateway::listen`] (the node's), so that a call never crosses
    /// threads inside the gateway process (HTTP/1.1 only, as with workers).
    pub workers: usize,
    /// Decides by the client's socket address whether it is served (OSE's host
    /// authorisation); a refused host gets 403. `None`: every host ([`HostList`] builds one
    /// from addresses and networks).
    pub authorise_host: Option<AuthoriseHost>,
    /// Checks HTTP Basic credentials (login, password; OSE's `authorise`). With this or
    /// [`GatewayConfig::authorise_token`], every endpoint requires valid credentials (401
    /// otherwise). [`Passwords`] builds one from a file.
    pub authorise_user: Option<AuthoriseUser>,
    /// Checks bearer tokens (`Authorization: Bearer T`); see
    /// [`GatewayConfig::authorise_user`]. [`Tokens`] builds one from a file.
    pub authorise_token: Option<AuthoriseToken>,
    /// Serve HTTPS with these settings (rustls; `None`: plain HTTP). A plain HTTP request
    /// to a TLS address gets no answer. [`netsvc::Tls::server_config`] gives one from PEM.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("group", &self.group)
            .field("timeout", &self.timeout)
            .field("body_limit", &self.body_limit)
            .field("publisher", &self.publisher)
            .field("sse_buffer", &self.sse_buffer)
            .field("workers", &self.workers)
            .field("authorise_host", &self.authorise_host.is_some())
            .field("authorise_user", &self.authorise_user.is_some())
            .field("authorise_token", &self.authorise_token.is_some())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            group: None,
            timeout: DEFAULT_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
            publisher: ServiceName::new(DEFAULT_PUBLISHER).expect("a valid name"),
            sse_buffer: DEFAULT_SSE_BUFFER,
            workers: DEFAULT_WORKERS,
            authorise_host: None,
            authorise_user: None,
            authorise_token: None,
            tls: None,
        }
    }
}

/// What every handler shares.
pub(crate) struct Shared {
    router: route::Router,
    config: GatewayConfig,
    publisher: Addr<publisher::Publisher>,
    /// The arbiter the gateway was built on (the node's): watches are made there.
    home: ArbiterHandle,
    /// The exchange whose links `/events/registry` follows, once given.
    exchange: std::sync::OnceLock<netsvc::Exchange>,
}

/// An HTTP gateway of one node. Build it inside the node's actix System; it serves on every
/// address given to [`Gateway::listen`] and stops when the node's shutdown completes (or on
/// [`Gateway::stop`]).
#[derive(Clone)]
pub struct Gateway {
    shared: web::Data<Shared>,
    publisher: Binding,
    servers: Arc<Mutex<Vec<Server>>>,
}

/// A running server of [`Gateway::listen`], to stop it.
#[derive(Clone)]
enum Server {
    /// actix-web's, on worker threads.
    Workers(actix_web::dev::ServerHandle),
    /// On the node's arbiter (`serve`).
    Here(serve::StopHandle),
}

impl Server {
    /// Stops it gracefully (requests in progress finish, for at most a second).
    async fn stop(&self) {
        match self {
            Server::Workers(handle) => handle.stop(true).await,
            Server::Here(handle) => handle.stop().await,
        }
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Gateway {
    /// A gateway for `node`: spawns its publisher service on the current arbiter, and
    /// installs the process's metrics recorder unless one is installed (see `GET /metrics`).
    /// Must be called inside the node's actix System.
    pub fn new(node: &Node, config: GatewayConfig) -> Gateway {
        // The metrics recorder, before any call is made through the gateway.
        prometheus::handle();
        let spawned = node.spawn_with(
            publisher::Publisher,
            ServiceOptions::named(config.publisher.clone()),
        );
        let router =
            route::Router::new(node.clone(), config.group.clone(), spawned.binding.agent());
        Gateway {
            shared: web::Data::new(Shared {
                router,
                config,
                publisher: spawned.addr(),
                home: actix_rt::Arbiter::current(),
                exchange: std::sync::OnceLock::new(),
            }),
            publisher: spawned.binding,
            servers: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Follows the links of `exchange` (the gateway node's): `/events/registry` then tells
    /// when they come up and go down. Without it, the stream tells only the links there are
    /// when it starts. Only the first exchange given is followed.
    pub fn watch_links(&self, exchange: &netsvc::Exchange) {
        let _ = self.shared.exchange.set(exchange.clone());
    }

    /// The gateway's settings.
    pub fn config(&self) -> &GatewayConfig {
        &self.shared.config
    }

    /// The gateway's own service, the publisher of `POST /publish/{subject}`.
    pub fn publisher(&self) -> &Binding {
        &self.publisher
    }

    /// Serves on `addr` (port 0: a free port) and returns the address bound. The server
    /// runs on the current System until the node's shutdown completes or [`Gateway::stop`];
    /// actix-web's signal handling is off (the node's [`Node::monitor_signals`] owns signals).
    /// With [`GatewayConfig::tls`] it serves HTTPS only on every address.
    pub async fn listen(&self, addr: impl ToSocketAddrs) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let config = &self.shared.config;
        let server = if config.workers == 0 {
            Server::Here(serve::serve(listener, self.shared.clone(), config.tls.clone()).await?)
        } else {
            let shared = self.shared.clone();
            let server = HttpServer::new(move || {
                routes(App::new().app_data(shared.clone()))
                    .wrap(actix_web::middleware::from_fn(door::check))
            })
            .workers(config.workers)
            .disable_signals()
            .shutdown_timeout(1);
            let server = match &config.tls {
                Some(tls) => server.listen_rustls_0_23(listener, (**tls).clone())?,
                None => server.listen(listener)?,
            }
            .run();
            let handle = server.handle();
            actix_rt::spawn(async move {
                if let Err(e) = server.await {
                    tracing::error!("gateway on {local}: {e}");
                }
            });
            Server::Workers(handle)
        };
        self.servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(server.clone());
        let node = self.shared.router.node.clone();
        actix_rt::spawn(async move {
            node.shutdown_complete().await;
            server.stop().await;
            tracing::info!("gateway on {local} stopped with its node");
        });
        let scheme = if self.shared.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!("gateway listening on {scheme}://{local}");
        Ok(local)
    }

    /// Stops serving on every address (gracefully: requests in progress finish, for at most
    /// a second) and waits for it.
    pub async fn stop(&self) {
        let servers: Vec<_> =
            std::mem::take(&mut *self.servers.lock().unwrap_or_else(|e| e.into_inner()));
        for server in servers {
            server.stop().await;
        }
    }
}

/// The gateway's routes on `app`.
fn routes<T>(app: App<T>) -> App<T>
where
    T: actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Error = actix_web::Error,
        InitError = (),
    >,
{
    // Each endpoint answers the methods it does not take with 405 and an error body.
    let post = |path: &str| web::resource(path).default_service(web::to(not_allowed::<true>));
    let get = |path: &str| web::resource(path).default_service(web::to(not_allowed::<false>));
    app.service(get("/").route(web::get().to(console::index)))
        .service(get("/console.css").route(web::get().to(console::css)))
        .service(get("/console.js").route(web::get().to(console::js)))
        // A prefix, not the pattern `/call/{service}/{method}`: the hottest route is then
        // found by comparing strings, not by running a regular expression (`http::call`
        // splits the rest of the path itself).
        .service(web::scope("/call").default_service(web::to(http::call)))
        .service(post("/jsonrpc").route(web::post().to(jsonrpc::handle)))
        .service(post("/RPC2").route(web::post().to(xmlrpc::rpc2)))
        .service(post("/xmlrpc/{service}").route(web::post().to(xmlrpc::by_service)))
        .service(get("/events/registry").route(web::get().to(events::registry)))
        .service(get("/events/reports/{service}").route(web::get().to(events::reports)))
        .service(post("/publish/{subject}").route(web::post().to(http::publish)))
        .service(get("/services").route(web::get().to(http::services)))
        .service(get("/services/{name}").route(web::get().to(http::service)))
        .service(get("/nodes").route(web::get().to(http::nodes)))
        .service(get("/metrics").route(web::get().to(prometheus::render)))
        .default_service(web::to(unknown))
}

/// A method an endpoint does not take: 405 with `Allow` and an error body.
pub(crate) async fn not_allowed<const POST: bool>(req: HttpRequest) -> HttpResponse {
    let allow = if POST { "POST" } else { "GET" };
    let failure = error::HttpFailure {
        status: actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        failure: error::gateway_failure(
            ErrorCode::SERVER_METHOD_UNAVAILABLE,
            format!("{} takes {allow}, not {}", req.path(), req.method()),
        ),
    };
    let mut response = http::refuse(&req, failure);
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allow),
    );
    response
}

/// Any other path: 404 with an error body naming it.
pub(crate) async fn unknown(req: HttpRequest) -> HttpResponse {
    let failure = error::HttpFailure {
        status: actix_web::http::StatusCode::NOT_FOUND,
        failure: error::gateway_failure(
            ErrorCode::SERVER_METHOD_UNAVAILABLE,
            format!("no endpoint {} {}", req.method(), req.path()),
        ),
    };
    http::refuse(&req, failure)
}

#[cfg(test)]
mod tests;
