//! The node: one process's netsvc runtime — its registry, its routes, its shutdown — and
//! the questions a program asks it. Building a node and spawning services on it are in
//! `spawn.rs`: they need the service runtime, which itself holds a `Node`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::{Actor, Addr};
use tokio::sync::watch;

use crate::delivery::{Address, Announcer, Binding, Routes};
use crate::descriptor::ServiceDescriptor;
use crate::failure::{ErrorCode, Failure};
use crate::ids::{AgentId, ProcessId};
use crate::introspection::{node_agent_of, NodeInfo, INTROSPECT_METHOD};
use crate::names::{Audience, GroupName, IntoName, ServiceName};
use crate::registry::{Groups, Lookup, LookupAgent, Registry};
use crate::request::{Call, Calls, Endpoint, IntoRequestTarget, RequestTarget};
use crate::shutdown::{ShutdownControl, ShutdownCoordinator};

/// Default capacity of a service's inbox (see [`crate::NodeConfig::inbox_capacity`]).
pub const DEFAULT_INBOX_CAPACITY: usize = 1 << 20;
/// Default capacity of the buffer between a watch and its stream (see
/// [`crate::NodeConfig::watch_capacity`]).
pub const DEFAULT_WATCH_CAPACITY: usize = 1024;
/// Default delay between the two phases of shutdown.
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::from_secs(1);

/// Tunables of a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// A human-readable name for logs and, later, the exchange handshake.
    pub name: String,
    /// Most deliveries a service's inbox holds before reports are dropped and requests
    /// refused (the slow-consumer policy, see the `inbox` docs in the crate overview).
    pub inbox_capacity: usize,
    /// Most reports or registry events a stream of [`Node::watch_reports`] or
    /// [`Node::watch_registry`] holds for its consumer before newer ones are dropped (and
    /// counted).
    pub watch_capacity: usize,
    /// Delay between `Pending` and `Arrived` when shutdown is scheduled without one.
    pub shutdown_delay: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "netsvc".to_owned(),
            inbox_capacity: DEFAULT_INBOX_CAPACITY,
            watch_capacity: DEFAULT_WATCH_CAPACITY,
            shutdown_delay: DEFAULT_SHUTDOWN_DELAY,
        }
    }
}

/// One process's netsvc runtime. Cheap to clone; pass it explicitly (there are no globals,
/// so two nodes can live in one test). Create it inside a running actix `System`.
#[derive(Clone)]
pub struct Node(Arc<NodeInner>);

struct NodeInner {
    config: NodeConfig,
    process: ProcessId,
    registry: Addr<Registry>,
    /// Changes after every change of what the registry's lookups answer.
    registry_generation: Arc<std::sync::atomic::AtomicU64>,
    shutdown: Addr<ShutdownCoordinator>,
    shutdown_done: watch::Receiver<bool>,
    /// What an endpoint needs to make calls: the registry and the conversation ids.
    calls: Arc<Calls>,
    /// The node's own anonymous service: the requester of calls made with [`Node::endpoint`].
    agent: OnceLock<Binding>,
    /// Every agent this node can reach, and requests waiting for remote answers.
    routes: Arc<Routes>,
    /// Decides what is announced on which exchange link.
    announcer: Arc<Announcer>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.0.config.name)
            .field("process", &self.0.process)
            .finish()
    }
}

impl Node {
    /// Everything of a node but its own agent, which `spawn.rs` adds.
    pub(crate) fn assemble(config: NodeConfig) -> Node {
        let registry = Registry::new();
        let registry_generation = registry.generation();
        let registry = registry.start();
        let (coordinator, shutdown_done) =
            ShutdownCoordinator::new(registry.clone(), config.shutdown_delay);
        let shutdown = coordinator.start();
        let process = ProcessId::random();
        let calls = Arc::new(Calls::new(registry.clone(), process, &config.name));
        Node(Arc::new(NodeInner {
            config,
            process,
            calls,
            registry,
            registry_generation,
            shutdown,
            shutdown_done,
            agent: OnceLock::new(),
            routes: Routes::new(),
            announcer: Arc::new(Announcer::new(process)),
        }))
    }

    /// Sets the node's own agent, once.
    pub(crate) fn set_agent(&self, agent: Binding) {
        let _ = self.0.agent.set(agent);
    }

    /// The node's settings.
    pub(crate) fn config(&self) -> &NodeConfig {
        &self.0.config
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.0.config.name
    }

    /// The identity of this process.
    pub fn process(&self) -> ProcessId {
        self.0.process
    }

    /// The node's registry.
    pub(crate) fn registry(&self) -> &Addr<Registry> {
        &self.0.registry
    }

    /// Every agent this node can reach.
    pub(crate) fn routes(&self) -> &Arc<Routes> {
        &self.0.routes
    }

    /// What decides the announcements on each link.
    pub(crate) fn announcer(&self) -> &Announcer {
        &self.0.announcer
    }

    /// A handle on the announcer that does not keep the node alive (for links).
    pub(crate) fn announcer_handle(&self) -> std::sync::Weak<Announcer> {
        Arc::downgrade(&self.0.announcer)
    }

    /// What endpoints need to make calls.
    pub(crate) fn calls(&self) -> &Arc<Calls> {
        &self.0.calls
    }

    /// An endpoint for calling a service from outside any service (from `main`, a test, a
    /// tool); the requester is the node's own anonymous agent.
    pub fn endpoint(&self, target: impl IntoRequestTarget) -> Endpoint {
        let sender = self
            .0
            .agent
            .get()
            .cloned()
            .expect("the node agent is set when the node is built");
        let target = target.into_request_target().unwrap_or_else(|e| {
            tracing::error!("endpoint: {e}");
            RequestTarget::Name(ServiceName::anonymous())
        });
        Endpoint::new(self.0.calls.clone(), sender, target)
    }

    /// A number that changes after every change of what this node's lookups answer
    /// ([`Node::lookup_name`], [`Node::lookup_group`], [`Node::services`] and the rest): a
    /// service known, withdrawn or moved to another route, a group joined or left. A cache of
    /// lookups made after reading `g` holds for as long as this still reads `g`; reading it is
    /// one atomic load, from any thread.
    pub fn registry_generation(&self) -> u64 {
        self.0
            .registry_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Asks the node of `process` (this one, or any process whose node agent this node has
    /// heard of through its links) for its [`NodeInfo`]: its links with their counters, its
    /// services, and who subscribes to them. The request goes to that node's agent (see
    /// [`node_agent_of`]) as [`INTROSPECT_METHOD`]. A direct peer is reached by its link as
    /// soon as the handshake is done; an unknown process fails at once with
    /// `CLIENT_SERVICE_UNAVAILABLE`.
    pub fn introspect(&self, process: ProcessId) -> Call<NodeInfo> {
        let agent = node_agent_of(process);
        let target = self.0.routes.lookup(agent).or_else(|| {
            // A direct peer whose node agent's announcement is still on its way (it follows
            // the handshake): by the link to it.
            let link =
                self.0.announcer.links().into_iter().find(|l| {
                    l.peer().is_some_and(|p| p.process == process) && !l.is_duplicate()
                })?;
            Some(Binding::new(
                ServiceName::anonymous(),
                agent,
                Audience::Everyone,
                process,
                Address::Remote(link),
            ))
        });
        match target {
            Some(agent) => self.endpoint(agent).call_reserved(INTROSPECT_METHOD),
            None => Call::failed(Failure::netsvc(
                ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
                format!("no node of process {process} is known here"),
            )),
        }
    }

    /// Asks a service (by name or binding) for its [`ServiceDescriptor`], with the node's own
    /// agent as requester: `node.endpoint(target).describe()` (see [`Endpoint::describe`]).
    pub fn describe(&self, target: impl IntoRequestTarget) -> Call<ServiceDescriptor> {
        self.endpoint(target).describe()
    }

    /// Services with this name (local first, then the one known longest). An invalid name
    /// finds nothing.
    pub async fn lookup_name(&self, name: impl IntoName<ServiceName>) -> Vec<Binding> {
        match name.into_name() {
            Ok(name) => self
                .0
                .registry
                .send(Lookup::Name(name))
                .await
                .unwrap_or_default(),
            Err(e) => {
                tracing::error!("lookup_name: {e}");
                Vec::new()
            }
        }
    }

    /// Current members of a group.
    pub async fn lookup_group(&self, group: impl IntoName<GroupName>) -> Vec<Binding> {
        match group.into_name() {
            Ok(group) => self
                .0
                .registry
                .send(Lookup::Group(group))
                .await
                .unwrap_or_default(),
            Err(e) => {
                tracing::error!("lookup_group: {e}");
                Vec::new()
            }
        }
    }

    /// The binding of one agent, if it is still known.
    pub async fn lookup_agent(&self, agent: AgentId) -> Option<Binding> {
        self.0
            .registry
            .send(LookupAgent(agent))
            .await
            .ok()
            .flatten()
    }

    /// Every announced service.
    pub async fn services(&self) -> Vec<Binding> {
        self.0.registry.send(Lookup::All).await.unwrap_or_default()
    }

    /// Every group with at least one member.
    pub async fn groups(&self) -> Vec<GroupName> {
        self.0.registry.send(Groups(None)).await.unwrap_or_default()
    }

    /// The groups one agent is in.
    pub async fn groups_of(&self, agent: AgentId) -> Vec<GroupName> {
        self.0
            .registry
            .send(Groups(Some(agent)))
            .await
            .unwrap_or_default()
    }

    /// Starts the shutdown sequence (see [`crate::ShutdownPhase`]); `None` or zero uses the
    /// configured default delay. Ignored while a shutdown is in progress.
    pub fn schedule_shutdown(&self, delay: Option<Duration>) {
        self.0.shutdown.do_send(ShutdownControl::Schedule(delay));
    }

    /// Takes a hold on shutdown: `Arrived` waits until every hold is released.
    pub fn suspend_shutdown(&self) {
        self.0.shutdown.do_send(ShutdownControl::Hold);
    }

    /// Releases one hold taken with [`Node::suspend_shutdown`].
    pub fn resume_shutdown(&self) {
        self.0.shutdown.do_send(ShutdownControl::Release);
    }

    /// Resolves when the shutdown sequence has completed (every local service stopped).
    pub async fn shutdown_complete(&self) {
        let mut rx = self.0.shutdown_done.clone();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Turns SIGINT and SIGTERM into an orderly shutdown; a second signal while shutting
    /// down exits the process at once (status 130). Call once, inside the System.
    pub fn monitor_signals(&self) {
        let node = self.clone();
        actix_rt::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::error!(
                    "cannot install signal handlers; Ctrl-C will not shut down cleanly"
                );
                return;
            };
            let mut seen = 0;
            loop {
                let name = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                };
                seen += 1;
                if seen == 1 {
                    tracing::info!("{name} received: shutting down (send again to exit at once)");
                    node.schedule_shutdown(None);
                } else {
                    tracing::warn!("{name} received again: exiting now");
                    std::process::exit(130);
                }
            }
        });
    }
}
