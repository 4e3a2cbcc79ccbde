//! A netsvc process for the exchange tests: an exchange server, an exchange client, or both,
//! with any mix of test roles. Everything it observes is printed on stdout, one event a line.
//!
//! ```text
//! node [--name NAME]
//!      [--listen HOST:PORT[@GROUP]]...     serve an exchange group (port 0: a free port)
//!      [--connect HOST:PORT[@GROUP]]...    join an exchange server (retrying, reconnecting)
//!      [--retry-ms MS]                     delay between connection attempts (default 200)
//!      [--handshake-timeout-ms MS]         time a connection has to complete its handshake
//!      [--max-pending N]                   most connections in their handshake at once (in all
//!                                          and per address)
//!      [--max-per-address N]               most connections from one address
//!      [--publisher] [--interval-ms MS]    "publisher": cached system.ctime, system.time on a timer
//!      [--subscriber]                      monitors system.* on every "publisher"
//!      [--responder]                       "calculator": multiply, divide, slow (delayed), ping
//!      [--requester]                       requests read from stdin (see below)
//!      [--watch NAME]...                   prints availability events of services named NAME
//!      [--call-on-available NAME]...       calls multiply(6, 7) on each NAME when it appears
//!      [--service NAME@AUDIENCE]...        a service exporting `ping`, with that audience
//!      [--ping-every MS:NAME]...           calls `ping` on the service NAME every MS ms
//! ```
//!
//! Printed lines:
//!
//! * `listening <group> <addr>` (group `default` for the default group), then
//!   `connected <group> <node> <addr>` and `disconnected <group> <node> <addr>`;
//! * publisher: `publisher <binding> ctime <ctime>`, `publisher published system.time seq=N at=T`,
//!   `publisher subscription <Requested|Withdrawn> <subscriber> <pattern>`;
//! * subscriber: `<publisher> became available at <ctime>` on `system.ctime`,
//!   `<publisher> system.time = seq=N at=T`, `subscriber publisher <Available|Withdrawn> <publisher>`;
//! * responder: `calculator slow <ms> requested`;
//! * watch: `watch <name> <Available|Withdrawn> <binding> <Local|Remote>`;
//! * call on available: `caller <binding> ok <value> in <ms> ms` or
//!   `caller <binding> failed <code> <CODE_NAME> origin=<origin> in <ms> ms: <description>`;
//! * ping every: `ping <name> <seq> ok <value> in <ms> ms` or
//!   `ping <name> <seq> failed <code> origin=<origin> in <ms> ms: <description>` (each call has a
//!   1 s timeout; calls overlap when answers take longer than the period);
//! * requester: for a stdin line `TAG TARGET METHOD [INT]... [timeout=MS] [as=NAME]` (integers
//!   are the arguments, the response is an integer; the requester is the node's own anonymous
//!   agent of audience `*`, or with `as=NAME` the `--service` of that name, with its audience)
//!   it prints `TAG sent`, then `TAG ok <value> in <ms> ms` or
//!   `TAG failed <code> <CODE_NAME> origin=<origin> in <ms> ms: <description>`.
//!
//! Logs go to stderr (`RUST_LOG`, default `error`).

use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netsvc::prelude::*;
use netsvc::{Audience, ConnectionState, Exchange, ExchangeConfig, ServiceName, ServiceOptions};

/// Unix time with milliseconds, e.g. `1764077202.123`.
fn now() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", t.as_secs(), t.subsec_millis())
}

#[derive(Service)]
#[service(name = "publisher")]
struct Publisher {
    interval: Duration,
    seq: u64,
}

impl Service for Publisher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        let ctime = now();
        ctx.publish_report("system.ctime", ctime.clone(), Lifetime::Forever);
        println!("publisher {} ctime {ctime}", ctx.binding());
        ctx.start_timer("heartbeat", self.interval);
    }

    fn timer(&mut self, _name: &str, ctx: &mut ServiceContext<Self>) {
        self.seq += 1;
        let content = format!("seq={} at={}", self.seq, now());
        println!("publisher published system.time {content}");
        ctx.publish_report("system.time", content, Lifetime::None);
        ctx.start_timer("heartbeat", self.interval);
    }

    fn subscription(&mut self, notice: SubscriptionNotice, _ctx: &mut ServiceContext<Self>) {
        println!(
            "publisher subscription {:?} {} {}",
            notice.status, notice.subscriber, notice.pattern
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
        let content = report
            .decode::<String>()
            .unwrap_or_else(|e| format!("<{e}>"));
        match report.subject().as_str() {
            "system.ctime" => println!("{} became available at {content}", report.publisher()),
            subject => println!("{} {subject} = {content}", report.publisher()),
        }
    }

    fn publisher(&mut self, notice: PublisherNotice, _ctx: &mut ServiceContext<Self>) {
        println!(
            "subscriber publisher {:?} {}",
            notice.status, notice.publisher
        );
    }
}

#[derive(Service)]
struct Watcher {
    name: String,
}

impl Service for Watcher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.subscribe_name(self.name.as_str());
    }

    fn availability(&mut self, event: RegistryEvent, _ctx: &mut ServiceContext<Self>) {
        if event.group.is_none() {
            println!(
                "watch {} {:?} {} {:?}",
                self.name,
                event.status,
                event.binding,
                event.binding.location()
            );
        }
    }
}

/// Calls `multiply(6, 7)` on every service of a name as soon as it becomes available.
#[derive(Service)]
struct Caller {
    name: String,
}

impl Service for Caller {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.subscribe_name(self.name.as_str());
    }

    fn availability(&mut self, event: RegistryEvent, ctx: &mut ServiceContext<Self>) {
        if event.group.is_some() || event.status != Status::Available {
            return;
        }
        let endpoint = ctx
            .endpoint(&event.binding)
            .with_timeout(Duration::from_secs(3));
        let start = Instant::now();
        let target = event.binding.to_string();
        ctx.on_response(
            endpoint.call::<_, i64>("multiply", (6i64, 7i64)),
            move |_, outcome, _| {
                let ms = start.elapsed().as_millis();
                match outcome {
                    Ok(value) => println!("caller {target} ok {value} in {ms} ms"),
                    Err(f) => {
                        println!(
                            "caller {target} failed {} origin={} in {ms} ms: {}",
                            f.code, f.origin, f.description
                        )
                    }
                }
            },
        );
    }
}

#[derive(Service)]
#[service(name = "calculator")]
struct Calculator;

impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }

    fn divide(&mut self, a: i64, b: i64) -> Result<i64, Failure> {
        if b == 0 {
            return Err(Failure::new(ErrorCode(100), "division by zero"));
        }
        Ok(a / b)
    }

    /// Answers `millis` after `millis` milliseconds.
    fn slow(&mut self, ctx: &mut ServiceContext<Self>, millis: i64) -> Delayed<i64> {
        println!("calculator slow {millis} requested");
        let (responder, delayed) = ctx.suspend_response();
        ctx.run_later(Duration::from_millis(millis.max(0) as u64), move |_, _| {
            responder.resolve(millis)
        });
        delayed
    }

    fn ping(&mut self) -> i64 {
        1
    }
}

/// A service whose name and audience are given on the command line.
#[derive(Service)]
struct Plain;

impl Service for Plain {}

#[netsvc::methods]
impl Plain {
    fn ping(&mut self) -> i64 {
        1
    }
}

/// Asks a `--service` for an endpoint to the service of this name with itself as the
/// requester (a request line's `as=NAME`).
#[derive(actix::Message)]
#[rtype(result = "netsvc::Endpoint")]
struct EndpointFor(String);

impl actix::Handler<EndpointFor> for Plain {
    type Result = actix::MessageResult<EndpointFor>;
    fn handle(&mut self, msg: EndpointFor, ctx: &mut ServiceContext<Self>) -> Self::Result {
        actix::MessageResult(ctx.endpoint(msg.0.as_str()))
    }
}

/// The `--service` services by name, for `as=NAME`.
type Services = std::rc::Rc<Vec<(String, actix::Addr<Plain>)>>;

/// Calls `ping` on the service `name` every `period`, each call with a 1 s timeout, and
/// prints each outcome.
fn pinger(node: &Node, period: Duration, name: String) {
    let node = node.clone();
    actix::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for seq in 1u64.. {
            ticks.tick().await;
            let endpoint = node
                .endpoint(name.as_str())
                .with_timeout(Duration::from_secs(1));
            let name = name.clone();
            actix::spawn(async move {
                let start = Instant::now();
                let outcome: Result<i64, Failure> = endpoint.call("ping", ()).await;
                let ms = start.elapsed().as_millis();
                match outcome {
                    Ok(value) => println!("ping {name} {seq} ok {value} in {ms} ms"),
                    Err(f) => {
                        println!(
                            "ping {name} {seq} failed {} origin={} in {ms} ms: {}",
                            f.code, f.origin, f.description
                        )
                    }
                }
            });
        }
    });
}

/// One request read from stdin.
async fn request(node: Node, services: Services, line: String) {
    let mut words = line.split_whitespace();
    let (Some(tag), Some(target), Some(method)) = (words.next(), words.next(), words.next()) else {
        println!("bad request line {line:?}");
        return;
    };
    let mut timeout = None;
    let mut sender = None;
    let mut ints = Vec::new();
    for word in words {
        if let Some(ms) = word.strip_prefix("timeout=") {
            timeout = Some(Duration::from_millis(ms.parse().unwrap_or(1000)));
        } else if let Some(name) = word.strip_prefix("as=") {
            sender = Some(name);
        } else {
            ints.push(word.parse::<i64>().unwrap_or_default());
        }
    }
    let mut endpoint = match sender {
        None => node.endpoint(target),
        Some(name) => {
            let Some((_, service)) = services.iter().find(|(n, _)| n == name) else {
                println!("{tag} no service {name:?} to send as");
                return;
            };
            match service.send(EndpointFor(target.to_owned())).await {
                Ok(endpoint) => endpoint,
                Err(e) => {
                    println!("{tag} service {name:?} cannot send: {e}");
                    return;
                }
            }
        }
    };
    if let Some(timeout) = timeout {
        endpoint = endpoint.with_timeout(timeout);
    }
    let method = method.to_owned();
    let start = Instant::now();
    println!("{tag} sent");
    let outcome: Result<i64, Failure> = match ints.as_slice() {
        [] => endpoint.call(method, ()).await,
        [a] => endpoint.call(method, (*a,)).await,
        [a, b] => endpoint.call(method, (*a, *b)).await,
        _ => endpoint.call(method, ints.clone()).await,
    };
    let ms = start.elapsed().as_millis();
    match outcome {
        Ok(value) => println!("{tag} ok {value} in {ms} ms"),
        Err(f) => println!(
            "{tag} failed {} origin={} in {ms} ms: {}",
            f.code, f.origin, f.description
        ),
    }
}

/// Reads request lines from stdin and runs each as it comes.
fn requester(node: &Node, services: Services) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let node = node.clone();
    actix::spawn(async move {
        while let Some(line) = rx.recv().await {
            actix::spawn(request(node.clone(), services.clone(), line));
        }
    });
}

/// `HOST:PORT[@GROUP]`.
fn split_group(arg: &str) -> (String, String) {
    match arg.split_once('@') {
        Some((addr, group)) => (addr.to_owned(), group.to_owned()),
        None => (arg.to_owned(), String::new()),
    }
}

fn show(group: &str) -> &str {
    if group.is_empty() {
        "default"
    } else {
        group
    }
}

#[derive(Default)]
struct Args {
    name: Option<String>,
    listen: Vec<(String, String)>,
    connect: Vec<(String, String)>,
    retry: Option<Duration>,
    handshake_timeout: Option<Duration>,
    max_pending: Option<usize>,
    max_per_address: Option<usize>,
    interval: Option<Duration>,
    publisher: bool,
    subscriber: bool,
    responder: bool,
    requester: bool,
    watch: Vec<String>,
    call: Vec<String>,
    services: Vec<(String, String)>,
    pings: Vec<(Duration, String)>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    tls_ca: Option<String>,
    require_client_cert: bool,
    secret_file: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    let millis = |v: Option<String>| {
        Duration::from_millis(v.and_then(|v| v.parse().ok()).expect("milliseconds"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--name" => args.name = it.next(),
            "--listen" => args
                .listen
                .push(split_group(&it.next().expect("--listen HOST:PORT[@GROUP]"))),
            "--connect" => args.connect.push(split_group(
                &it.next().expect("--connect HOST:PORT[@GROUP]"),
            )),
            "--retry-ms" => args.retry = Some(millis(it.next())),
            "--handshake-timeout-ms" => args.handshake_timeout = Some(millis(it.next())),
            "--max-pending" => args.max_pending = it.next().and_then(|v| v.parse().ok()),
            "--max-per-address" => args.max_per_address = it.next().and_then(|v| v.parse().ok()),
            "--ping-every" => {
                let spec = it.next().expect("--ping-every MS:NAME");
                let (ms, name) = spec.split_once(':').expect("--ping-every MS:NAME");
                args.pings
                    .push((millis(Some(ms.to_owned())), name.to_owned()));
            }
            "--interval-ms" => args.interval = Some(millis(it.next())),
            "--tls-cert" => args.tls_cert = it.next(),
            "--tls-key" => args.tls_key = it.next(),
            "--tls-ca" => args.tls_ca = it.next(),
            "--require-client-cert" => args.require_client_cert = true,
            "--secret-file" => args.secret_file = it.next(),
            "--publisher" => args.publisher = true,
            "--subscriber" => args.subscriber = true,
            "--responder" => args.responder = true,
            "--requester" => args.requester = true,
            "--watch" => args.watch.push(it.next().expect("--watch NAME")),
            "--call-on-available" => args.call.push(it.next().expect("--call-on-available NAME")),
            "--service" => {
                let spec = it.next().expect("--service NAME@AUDIENCE");
                let (name, audience) = spec.split_once('@').unwrap_or((spec.as_str(), "*"));
                args.services.push((name.to_owned(), audience.to_owned()));
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    args
}

#[actix::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = parse_args();
    let node = Node::new(args.name.clone().unwrap_or_else(|| "node".to_owned()));
    node.monitor_signals();

    for name in &args.watch {
        node.spawn(Watcher { name: name.clone() });
    }
    for name in &args.call {
        node.spawn(Caller { name: name.clone() });
    }
    if args.publisher {
        node.spawn(Publisher {
            interval: args.interval.unwrap_or(Duration::from_millis(300)),
            seq: 0,
        });
    }
    if args.subscriber {
        node.spawn(Subscriber);
    }
    if args.responder {
        node.spawn(Calculator);
    }
    let mut services = Vec::new();
    for (name, audience) in &args.services {
        let options = ServiceOptions {
            name: ServiceName::new(name).expect("a valid service name"),
            audience: Audience::parse(audience).expect("a valid audience"),
            groups: Vec::new(),
        };
        services.push((name.clone(), node.spawn_with(Plain, options).addr()));
    }
    if args.requester {
        requester(&node, std::rc::Rc::new(services));
    }
    for (period, name) in &args.pings {
        pinger(&node, *period, name.clone());
    }

    let path = |p: &Option<String>| p.as_ref().map(std::path::PathBuf::from);
    let client_auth = if args.require_client_cert {
        netsvc::ClientAuth::Required
    } else {
        netsvc::ClientAuth::Optional
    };
    let (cert, key, ca) = (
        path(&args.tls_cert),
        path(&args.tls_key),
        path(&args.tls_ca),
    );
    let tls = netsvc::Tls::from_files(cert.as_deref(), key.as_deref(), ca.as_deref(), client_auth)
        .unwrap_or_else(|e| {
            // On stdout, where the tests read.
            println!("tls error: {e}");
            std::process::exit(2)
        });

    let secret = path(&args.secret_file)
        .map(|p| netsvc::Secret::from_file(&p))
        .transpose()
        .unwrap_or_else(|e| {
            println!("secret error: {e}");
            std::process::exit(2)
        });

    // One exchange per exchange group; every listener is started before any connection so
    // that the handshake tells peers this node is a server.
    let mut exchanges: Vec<(String, Exchange)> = Vec::new();
    let mut exchange_for = |group: &str| -> Exchange {
        if let Some((_, x)) = exchanges.iter().find(|(g, _)| g == group) {
            return x.clone();
        }
        let mut config = ExchangeConfig {
            group: group.to_owned(),
            tls: tls.clone(),
            secret: secret.clone(),
            ..ExchangeConfig::default()
        };
        if let Some(timeout) = args.handshake_timeout {
            config.handshake_timeout = timeout;
        }
        if let Some(n) = args.max_pending {
            config.limits.pending_handshakes = n;
            config.limits.pending_per_address = n;
            config.limits.connections = config.limits.connections.max(n + 64);
        }
        if let Some(n) = args.max_per_address {
            config.limits.connections_per_address = n;
        }
        let exchange = Exchange::with_config(&node, config).expect("a valid exchange group");
        let mut events = exchange.connections();
        actix::spawn(async move {
            while let Ok(event) = events.recv().await {
                let verb = match event.state {
                    ConnectionState::Active => "connected",
                    ConnectionState::Inactive => "disconnected",
                };
                println!(
                    "{verb} {} {} {}",
                    show(&event.group),
                    event.remote_node,
                    event.remote_addr
                );
            }
        });
        exchanges.push((group.to_owned(), exchange.clone()));
        exchange
    };
    for (addr, group) in &args.listen {
        let exchange = exchange_for(group);
        match exchange.listen(addr).await {
            Ok(local) => println!("listening {} {local}", show(group)),
            Err(e) => {
                println!("cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        }
    }
    let retry = args.retry.unwrap_or(Duration::from_millis(200));
    for (addr, group) in &args.connect {
        exchange_for(group).connect(addr, Some(retry)).forget();
    }

    node.shutdown_complete().await;
    println!("stopped");
}
