//! Watching the mesh without writing a service: reports and registry events as async streams,
//! for tools (the command line, a gateway) and tests.
//!
//! Each stream is fed by an anonymous helper service that the node spawns for it (audience
//! `*`, so that publishers in other processes can send to it; anonymous, so that it is never
//! listed or announced by name). The helper subscribes as any service would, which gives a
//! stream everything a subscription has: cached reports replayed first, subscriptions by name
//! that follow services appearing later, reports from other processes in the format asked for,
//! the current registry replayed before its changes. Dropping the stream stops the helper: it
//! is withdrawn, and publishers see its subscriptions withdrawn
//! ([`SubscriptionStatus::Withdrawn`](crate::SubscriptionStatus::Withdrawn)), across processes
//! too. A stream ends (yields `None`) when its helper stops for another reason: the node shut
//! down.
//!
//! Slow consumers: the helper hands items to the stream through a bounded channel of
//! [`NodeConfig::watch_capacity`](crate::NodeConfig::watch_capacity) items. When it is full,
//! the newest item is dropped and counted ([`ReportStream::dropped`],
//! [`RegistryStream::dropped`]); the publisher and the registry are never held up. A registry
//! stream that dropped events no longer mirrors the registry: watch again for a fresh replay.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix::ActorContext;
use futures_core::Stream;
use tokio::sync::mpsc;

use crate::delivery::{Binding, Delivery, Drain, RegistryEvent, Report};
use crate::names::{Audience, IntoName, InvalidName, SubjectPattern};
use crate::node::Node;
use crate::payload::{Format, Payload};
use crate::report::{IntoTarget, Target};
use crate::request::{method_unavailable, Reply};
use crate::service::{
    drain, started, stopping, Descriptor, Service, ServiceContext, ServiceOptions,
};

impl Node {
    /// Reports matching `pattern` from `target` (a service name: every service of that name,
    /// now and later; or a binding: that agent), as a stream: matching cached reports first,
    /// then live ones, each once per matching pattern as a service receives them. Reports
    /// from another process come with their content in `format` (JSON for a tool that has no
    /// Rust types; see [`ServiceContext::monitor_reports_as`]); from this process, as the
    /// value itself. Dropping the stream ends the subscription. Must be called inside the
    /// node's actix `System`; see [`ReportStream`] for the slow-consumer policy.
    ///
    /// An invalid service name or pattern is returned as an error, and nothing is watched.
    pub fn watch_reports(
        &self,
        target: impl IntoTarget,
        pattern: impl IntoName<SubjectPattern>,
        format: Format,
    ) -> Result<ReportStream, InvalidName> {
        let target = target.into_target()?;
        let pattern = pattern.into_name()?;
        let (tx, rx) = mpsc::channel(self.config().watch_capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let watcher = self.spawn_watcher(Watching::Reports {
            target,
            pattern,
            format,
            tx,
            dropped: dropped.clone(),
        });
        Ok(ReportStream {
            rx,
            dropped,
            watcher,
        })
    }

    /// Registry events as a stream: first the current state (every service available, each
    /// followed by the groups it is in), then every change (services available and
    /// withdrawn, groups joined and left), as a service subscribed to the whole registry sees
    /// them. Dropping the stream unsubscribes. Must be called inside the node's actix
    /// `System`; see [`RegistryStream`] for the slow-consumer policy.
    pub fn watch_registry(&self) -> RegistryStream {
        let (tx, rx) = mpsc::channel(self.config().watch_capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let watcher = self.spawn_watcher(Watching::Registry {
            tx,
            dropped: dropped.clone(),
        });
        RegistryStream {
            rx,
            dropped,
            watcher,
        }
    }

    fn spawn_watcher(&self, what: Watching) -> Binding {
        let options = ServiceOptions {
            audience: Audience::Everyone,
            ..ServiceOptions::anonymous()
        };
        self.spawn_with(Watcher(what), options).binding
    }
}

/// A stream of reports (see [`Node::watch_reports`]).
///
/// Between the subscription and the consumer is a bounded buffer
/// ([`NodeConfig::watch_capacity`](crate::NodeConfig::watch_capacity) reports): when the
/// consumer falls that far behind, newer reports are dropped and counted
/// ([`ReportStream::dropped`]), and the publisher is never held up. The stream ends when the
/// node shuts down; dropping it ends the subscription.
#[derive(Debug)]
pub struct ReportStream {
    rx: mpsc::Receiver<Report>,
    dropped: Arc<AtomicU64>,
    watcher: Binding,
}

impl ReportStream {
    /// How many reports were dropped so far because the consumer was too slow.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The anonymous service that subscribes for this stream (publishers see it as the
    /// subscriber).
    pub fn subscriber(&self) -> &Binding {
        &self.watcher
    }
}

impl Stream for ReportStream {
    type Item = Report;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Report>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for ReportStream {
    fn drop(&mut self) {
        self.watcher.send(Delivery::Stop);
    }
}

/// A stream of registry events (see [`Node::watch_registry`]).
///
/// Between the registry and the consumer is a bounded buffer
/// ([`NodeConfig::watch_capacity`](crate::NodeConfig::watch_capacity) events): when the
/// consumer falls that far behind, newer events are dropped and counted
/// ([`RegistryStream::dropped`]), and the registry is never held up. A stream that dropped
/// events no longer mirrors the registry; watch again for a fresh replay. The stream ends
/// when the node shuts down; dropping it unsubscribes.
#[derive(Debug)]
pub struct RegistryStream {
    rx: mpsc::Receiver<RegistryEvent>,
    dropped: Arc<AtomicU64>,
    watcher: Binding,
}

impl RegistryStream {
    /// How many events were dropped so far because the consumer was too slow.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The anonymous service that subscribes to the registry for this stream.
    pub fn subscriber(&self) -> &Binding {
        &self.watcher
    }
}

impl Stream for RegistryStream {
    type Item = RegistryEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RegistryEvent>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for RegistryStream {
    fn drop(&mut self) {
        self.watcher.send(Delivery::Stop);
    }
}

/// What a watcher subscribes to, and where it hands what arrives.
enum Watching {
    Reports {
        target: Target,
        pattern: SubjectPattern,
        format: Format,
        tx: mpsc::Sender<Report>,
        dropped: Arc<AtomicU64>,
    },
    Registry {
        tx: mpsc::Sender<RegistryEvent>,
        dropped: Arc<AtomicU64>,
    },
}

/// The anonymous service behind a stream.
struct Watcher(Watching);

/// Hands `item` to the stream: dropped and counted when the stream's buffer is full; the
/// watcher stops when the stream is gone.
fn hand_over<T>(
    tx: &mpsc::Sender<T>,
    dropped: &AtomicU64,
    item: T,
    ctx: &mut ServiceContext<Watcher>,
) {
    match tx.try_send(item) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
        Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
    }
}

impl Service for Watcher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        match &self.0 {
            Watching::Reports {
                target,
                pattern,
                format,
                ..
            } => ctx.monitor_reports_as(target.clone(), pattern.clone(), *format),
            Watching::Registry { .. } => ctx.subscribe_registry(),
        }
    }

    fn report(&mut self, report: Report, ctx: &mut ServiceContext<Self>) {
        if let Watching::Reports { tx, dropped, .. } = &self.0 {
            hand_over(tx, dropped, report, ctx);
        }
    }

    fn availability(&mut self, event: RegistryEvent, ctx: &mut ServiceContext<Self>) {
        if let Watching::Registry { tx, dropped } = &self.0 {
            hand_over(tx, dropped, event, ctx);
        }
    }
}

// What `#[derive(Service)]` would generate (as for the node's own agent in `spawn.rs`).

impl actix::Actor for Watcher {
    type Context = ServiceContext<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        started(self, ctx)
    }
    fn stopping(&mut self, ctx: &mut Self::Context) -> actix::Running {
        stopping(self, ctx)
    }
}

impl actix::Handler<Drain> for Watcher {
    type Result = ();
    fn handle(&mut self, _: Drain, ctx: &mut Self::Context) {
        drain(self, ctx)
    }
}

impl Descriptor for Watcher {
    fn options() -> ServiceOptions {
        ServiceOptions::anonymous()
    }
    fn dispatch(_: &mut Self, _: &mut ServiceContext<Self>, method: &str, _: Payload) -> Reply {
        Reply::failure(method_unavailable("", method))
    }
}
