//! Live events as Server-Sent Events: `GET /events/registry` and
//! `GET /events/reports/{service}?pattern=…`.
//!
//! Each response is fed by a watch of the node ([`netsvc::Node::watch_registry`],
//! [`netsvc::Node::watch_reports`] in JSON), made on the node's own arbiter, and a small task
//! that turns what the watch yields into SSE events and hands them to the response body
//! through a bounded channel of [`GatewayConfig::sse_buffer`](crate::GatewayConfig) events.
//!
//! The slow-client policy: actix-web stops taking events from the body when the client's
//! socket does not keep up; once the channel is full too, the client is dropped — logged
//! with its address and how many events were waiting, its subscription ended, its
//! connection closed — rather than buffering without bound or holding up the node (whose
//! watch drops and counts what its own bounded buffer cannot hold). A client that
//! disconnects ends its subscription the same way, at the next event or keep-alive. A
//! keep-alive comment goes out every [`KEEP_ALIVE`] so that proxies keep the connection and
//! a vanished client is noticed.
//!
//! Registry events: first a `link` event for each exchange link of the gateway's node (`state`
//! `up`, `peer_node`, `peer_process`, `address`), then `link` events as links come up and go
//! down when the gateway was given its exchange ([`Gateway::watch_links`](crate::Gateway));
//! and `available`, `withdrawn`, `joined`, `left`, each with the service's
//! `name`, `agent`, `process` and `node` (and the `group` for the last two), the current state
//! first. With an exposed group, the stream shows the exposed view: a service appears
//! (`available`) when it is in the group and disappears (`withdrawn`) when it leaves it or is
//! withdrawn. Report events: `report`, with `publisher`, `agent`, `subject`, `pattern` and
//! `content` (JSON), cached reports first.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_core::Stream;
use netsvc::{
    AgentId, Binding, Format, RegistryEvent, Report, ServiceName, Status, SubjectPattern,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::body::next;
use crate::error::HttpFailure;
use crate::http::{query, refuse};
use crate::Shared;

/// How often a keep-alive comment is sent on an idle event stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a report stream trusts what it learnt about a publisher's exposure.
const EXPOSURE_TTL: Duration = Duration::from_secs(1);

/// One SSE event.
fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The body of an event stream: what the pump hands over, until it gives up on the client.
struct Body {
    rx: mpsc::Receiver<Bytes>,
    aborted: Arc<AtomicBool>,
}

impl Stream for Body {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.aborted.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(std::io::Error::other("client too slow: dropped"))));
        }
        self.rx.poll_recv(cx).map(|item| item.map(Ok))
    }
}

/// The sending end of an event stream, for the pump.
struct Sink {
    tx: mpsc::Sender<Bytes>,
    aborted: Arc<AtomicBool>,
    who: String,
}

impl Sink {
    /// Hands one event over; `false` when the client is gone or was dropped for being slow.
    fn send(&self, bytes: Bytes) -> bool {
        match self.tx.try_send(bytes) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    "{}: client dropped: it reads too slowly ({} events waiting)",
                    self.who,
                    self.tx.max_capacity()
                );
                self.aborted.store(true, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::info!("{}: client disconnected", self.who);
                false
            }
        }
    }
}

/// A streaming SSE response and the sink that feeds it.
fn stream(req: &HttpRequest, capacity: usize) -> (HttpResponse, Sink) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let aborted = Arc::new(AtomicBool::new(false));
    let who = format!(
        "{} {}",
        req.peer_addr()
            .map_or_else(|| "?".to_owned(), |a| a.to_string()),
        req.path()
    );
    let response = HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(Body {
            rx,
            aborted: aborted.clone(),
        });
    (response, Sink { tx, aborted, who })
}

/// Runs `make` on the node's own arbiter (watches are services of the node: they belong
/// there, not on an HTTP worker) and hands back what it made.
async fn at_home<T: Send + 'static>(
    shared: &Shared,
    make: impl FnOnce(&netsvc::Node) -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    let node = shared.router.node.clone();
    if !shared.home.spawn(async move {
        let _ = tx.send(make(&node));
    }) {
        return None;
    }
    rx.await.ok()
}

/// What woke a pump: an item of its watch (`None`: the watch ended), or the keep-alive tick.
enum Next<T> {
    Item(Option<T>),
    Tick,
}

/// Waits for the next item of `stream` or the keep-alive tick.
async fn next_or_tick<S: Stream + Unpin>(
    stream: &mut S,
    tick: &mut tokio::time::Interval,
) -> Next<S::Item> {
    tokio::select! {
        item = next(stream) => Next::Item(item),
        _ = tick.tick() => Next::Tick,
    }
}

fn keep_alive() -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// A link's state as an event's data.
fn link_json(up: bool, node: &str, process: &netsvc::ProcessId, address: &str) -> Value {
    json!({
        "state": if up { "up" } else { "down" },
        "peer_node": node,
        "peer_process": process.to_string(),
        "address": address,
    })
}

/// The gateway node's links now, as `link` events (from its own introspection).
async fn current_links(shared: &Shared) -> Vec<Bytes> {
    let node = &shared.router.node;
    let call = node.introspect(node.process());
    match tokio::time::timeout(Duration::from_secs(2), call).await {
        Ok(Ok(info)) => info
            .links
            .iter()
            .map(|l| {
                event(
                    "link",
                    &link_json(true, &l.peer_node, &l.peer_process, &l.address),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The next link change, or never without an exchange to watch.
async fn next_link(
    links: &mut Option<tokio::sync::broadcast::Receiver<netsvc::ConnectionEvent>>,
) -> Option<netsvc::ConnectionEvent> {
    let Some(rx) = links else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(event) => return Some(event),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                *links = None;
                return std::future::pending().await;
            }
        }
    }
}

/// `GET /events/registry`.
pub(crate) async fn registry(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let Some(mut watch) = at_home(&shared, |node| node.watch_registry()).await else {
        return refuse(&req, stopped());
    };
    let mut links = shared.exchange.get().map(netsvc::Exchange::connections);
    let (response, sink) = stream(&req, shared.config.sse_buffer);
    let shared = shared.into_inner();
    actix_rt::spawn(async move {
        for link in current_links(&shared).await {
            if !sink.send(link) {
                return;
            }
        }
        let mut tick = keep_alive();
        // With an exposed group: every service known, and those in the group (shown).
        let mut known: HashMap<AgentId, Binding> = HashMap::new();
        let mut shown: HashSet<AgentId> = HashSet::new();
        loop {
            let item = tokio::select! {
                next = next_or_tick(&mut watch, &mut tick) => next,
                Some(link) = next_link(&mut links) => {
                    let up = link.state == netsvc::ConnectionState::Active;
                    let data = link_json(
                        up,
                        &link.remote_node,
                        &link.remote_process,
                        &link.remote_addr.to_string(),
                    );
                    if !sink.send(event("link", &data)) {
                        return;
                    }
                    continue;
                }
            };
            let item = match item {
                Next::Tick => {
                    if !sink.send(Bytes::from_static(b": keep-alive\n\n")) {
                        return;
                    }
                    continue;
                }
                Next::Item(None) => return,
                Next::Item(Some(item)) => item,
            };
            if watch.dropped() > 0 {
                tracing::warn!(
                    "{}: registry events were dropped; ending the stream",
                    sink.who
                );
                sink.send(event(
                    "error",
                    &json!({ "error": "events were dropped: reconnect for a fresh state" }),
                ));
                return;
            }
            for (name, binding, group) in exposed_view(&shared, item, &mut known, &mut shown) {
                let mut data = json!({
                    "name": binding.name().as_str(),
                    "agent": binding.agent().to_string(),
                    "process": binding.process().to_string(),
                    "node": shared.router.node_name(binding.process()).await,
                });
                if let Some(group) = group {
                    data["group"] = json!(group);
                }
                if !sink.send(event(name, &data)) {
                    return;
                }
            }
        }
    });
    response
}

/// The events a client sees for one registry event: all of them without an exposed group;
/// with one, services appear when in the group and disappear when they leave it.
fn exposed_view(
    shared: &Shared,
    event: RegistryEvent,
    known: &mut HashMap<AgentId, Binding>,
    shown: &mut HashSet<AgentId>,
) -> Vec<(&'static str, Binding, Option<String>)> {
    let RegistryEvent {
        binding,
        group,
        status,
        ..
    } = event;
    if binding.name().is_anonymous() {
        return Vec::new();
    }
    let agent = binding.agent();
    let Some(exposed) = shared.router.group() else {
        let name = match (&group, status) {
            (None, Status::Available) => "available",
            (None, _) => "withdrawn",
            (Some(_), Status::Available) => "joined",
            (Some(_), _) => "left",
        };
        return vec![(name, binding, group.map(|g| g.as_str().to_owned()))];
    };
    let own = agent == shared.router.own();
    match (group, status) {
        (None, Status::Available) => {
            known.insert(agent, binding.clone());
            if own && shown.insert(agent) {
                return vec![("available", binding, None)];
            }
            Vec::new()
        }
        (None, _) => {
            known.remove(&agent);
            if shown.remove(&agent) {
                return vec![("withdrawn", binding, None)];
            }
            Vec::new()
        }
        (Some(g), status) if &g == exposed => {
            let available = status == Status::Available;
            if available && shown.insert(agent) {
                let binding = known.get(&agent).cloned().unwrap_or(binding);
                vec![
                    ("available", binding.clone(), None),
                    ("joined", binding, Some(g.as_str().to_owned())),
                ]
            } else if !available && !own && shown.remove(&agent) {
                vec![
                    ("left", binding.clone(), Some(g.as_str().to_owned())),
                    ("withdrawn", binding, None),
                ]
            } else {
                Vec::new()
            }
        }
        (Some(g), status) if shown.contains(&agent) => {
            let name = if status == Status::Available {
                "joined"
            } else {
                "left"
            };
            vec![(name, binding, Some(g.as_str().to_owned()))]
        }
        _ => Vec::new(),
    }
}

/// `GET /events/reports/{service}?pattern=…` (default `*`).
pub(crate) async fn reports(
    req: HttpRequest,
    service: web::Path<String>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let query = match query(&req) {
        Ok(q) => q,
        Err(f) => return refuse(&req, f),
    };
    let name = match ServiceName::new(service.as_str()) {
        Ok(n) if !n.is_anonymous() => n,
        Ok(_) => return refuse(&req, HttpFailure::bad_request("a service name is needed")),
        Err(e) => {
            return refuse(
                &req,
                HttpFailure::bad_request(format!("invalid service name {:?}: {e}", *service)),
            )
        }
    };
    let text = query.get("pattern").map_or("*", String::as_str);
    let pattern = match SubjectPattern::new(text) {
        Ok(p) => p,
        Err(e) => {
            return refuse(
                &req,
                HttpFailure::bad_request(format!("invalid pattern {text:?}: {e}")),
            )
        }
    };
    let watch = at_home(&shared, move |node| {
        node.watch_reports(name, pattern, Format::Json)
    })
    .await;
    let mut watch = match watch {
        Some(Ok(w)) => w,
        Some(Err(e)) => return refuse(&req, HttpFailure::bad_request(e.to_string())),
        None => return refuse(&req, stopped()),
    };
    let (response, sink) = stream(&req, shared.config.sse_buffer);
    let shared = shared.into_inner();
    actix_rt::spawn(async move {
        let mut tick = keep_alive();
        let mut exposure: HashMap<AgentId, (bool, Instant)> = HashMap::new();
        let mut dropped = 0;
        loop {
            let report = match next_or_tick(&mut watch, &mut tick).await {
                Next::Tick => {
                    if !sink.send(Bytes::from_static(b": keep-alive\n\n")) {
                        return;
                    }
                    continue;
                }
                Next::Item(None) => return,
                Next::Item(Some(report)) => report,
            };
            if watch.dropped() > dropped {
                dropped = watch.dropped();
                tracing::warn!(
                    "{}: {dropped} reports dropped so far (slow stream)",
                    sink.who
                );
            }
            let agent = report.publisher().agent();
            let fresh = exposure
                .get(&agent)
                .filter(|(_, at)| at.elapsed() < EXPOSURE_TTL)
                .map(|(e, _)| *e);
            let exposed = match fresh {
                Some(e) => e,
                None => {
                    let e = shared.router.is_exposed(agent).await;
                    if exposure.len() > 1024 {
                        exposure.clear();
                    }
                    exposure.insert(agent, (e, Instant::now()));
                    e
                }
            };
            if exposed && !sink.send(event("report", &report_json(&report))) {
                return;
            }
        }
    });
    response
}

/// A report as its event's data.
fn report_json(report: &Report) -> Value {
    let mut data = json!({
        "publisher": report.publisher().name().as_str(),
        "agent": report.publisher().agent().to_string(),
        "subject": report.subject().as_str(),
        "pattern": report.pattern().map(|p| p.as_str()),
    });
    match report.content().to_json() {
        Ok(content) => data["content"] = content,
        Err(e) => {
            data["content"] = Value::Null;
            data["error"] = json!(e.to_string());
        }
    }
    data
}

fn stopped() -> HttpFailure {
    crate::error::gateway_failure(
        netsvc::ErrorCode::SERVER_RESOURCE_UNAVAILABLE,
        "the gateway's node is stopping",
    )
    .into()
}
