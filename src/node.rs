//! The node: one process's netsvc runtime — its registry, its services, its shutdown.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::dev::channel;
use actix::{Actor, Addr};
use tokio::sync::watch;

use crate::binding::{Address, Binding, Location};
use crate::exchange::{Net, Router};
use crate::ids::{AgentId, ConversationId, ConversationIds, ProcessId};
use crate::inbox::{Delivery, Inbox};
use crate::names::IntoName;
use crate::names::{GroupName, ServiceName};
use crate::registry::{Groups, Lookup, LookupAgent, Register, Registry};
use crate::service::{Service, ServiceContext, ServiceOptions};
use crate::shutdown::{ShutdownControl, ShutdownCoordinator};

/// Default capacity of a service's inbox (see [`crate::NodeConfig::inbox_capacity`]).
pub const DEFAULT_INBOX_CAPACITY: usize = 1 << 20;
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
    /// Delay between `Pending` and `Arrived` when shutdown is scheduled without one.
    pub shutdown_delay: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "netsvc".to_owned(),
            inbox_capacity: DEFAULT_INBOX_CAPACITY,
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
    shutdown: Addr<ShutdownCoordinator>,
    shutdown_done: watch::Receiver<bool>,
    conversations: ConversationIds,
    /// The node's own anonymous service: the requester of calls made with [`Node::endpoint`].
    agent: OnceLock<Binding>,
    /// Every agent this node can reach, and requests waiting for remote answers.
    net: Arc<Net>,
    /// Decides what is announced on which exchange link.
    router: Arc<Router>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.0.config.name)
            .field("process", &self.0.process)
            .finish()
    }
}

/// A spawned service: its actix address and its binding.
pub struct Spawned<S: Service> {
    /// The actix address, for the user's own messages.
    pub addr: Addr<S>,
    /// The service's binding, for requests and subscriptions by agent.
    pub binding: Binding,
}

impl<S: Service> Clone for Spawned<S> {
    fn clone(&self) -> Self {
        Spawned {
            addr: self.addr.clone(),
            binding: self.binding.clone(),
        }
    }
}

impl<S: Service> Spawned<S> {
    /// Asks the service to stop (after what is already in its inbox): left-group notices,
    /// then withdrawn; pending requests to it fail.
    pub fn stop(&self) {
        self.binding.send(Delivery::Stop);
    }
}

impl Node {
    /// A node with default settings and this name.
    pub fn new(name: impl Into<String>) -> Node {
        Node::with_config(NodeConfig {
            name: name.into(),
            ..NodeConfig::default()
        })
    }

    /// A node with the given settings. Must be called inside a running actix `System`.
    pub fn with_config(config: NodeConfig) -> Node {
        let registry = Registry::new().start();
        let (coordinator, shutdown_done) =
            ShutdownCoordinator::new(registry.clone(), config.shutdown_delay);
        let shutdown = coordinator.start();
        let process = ProcessId::random();
        let node = Node(Arc::new(NodeInner {
            config,
            process,
            registry,
            shutdown,
            shutdown_done,
            conversations: ConversationIds::new(process),
            agent: OnceLock::new(),
            net: Net::new(),
            router: Arc::new(Router::new(process)),
        }));
        // Anonymous but visible to other processes (never announced), so that answers to
        // requests made with `Node::endpoint` can find their way back.
        let options = ServiceOptions {
            audience: crate::Audience::Everyone,
            ..ServiceOptions::anonymous()
        };
        let agent = node.spawn_with(NodeAgent, options);
        let _ = node.0.agent.set(agent.binding);
        node
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.0.config.name
    }

    /// The identity of this process.
    pub fn process(&self) -> ProcessId {
        self.0.process
    }

    pub(crate) fn registry(&self) -> &Addr<Registry> {
        &self.0.registry
    }

    pub(crate) fn net(&self) -> &Arc<Net> {
        &self.0.net
    }

    pub(crate) fn router(&self) -> &Router {
        &self.0.router
    }

    /// A handle on the router that does not keep the node alive (for links).
    pub(crate) fn router_handle(&self) -> std::sync::Weak<Router> {
        Arc::downgrade(&self.0.router)
    }

    pub(crate) fn next_conversation(&self) -> ConversationId {
        self.0.conversations.next()
    }

    /// Spawns a service on the current arbiter with the name, audience and groups of its
    /// `#[service(...)]` attribute. It is announced at once, before it has started.
    pub fn spawn<S: Service>(&self, service: S) -> Spawned<S> {
        self.spawn_with(service, S::options())
    }

    /// Spawns a service with explicit options (for names chosen at run time).
    pub fn spawn_with<S: Service>(&self, service: S, options: ServiceOptions) -> Spawned<S> {
        let (tx, rx) = channel::channel::<S>(16);
        let addr = Addr::new(tx);
        let inbox = Inbox::new(self.0.config.inbox_capacity);
        let binding = Binding::new(
            options.name,
            AgentId::random(),
            options.audience,
            self.0.process,
            Location::Local,
            Address::Local(inbox.clone()),
        );
        self.0.net.insert(binding.clone());
        self.0.router.service_available(&binding, &options.groups);
        self.0.registry.do_send(Register {
            binding: binding.clone(),
            groups: options.groups.clone(),
        });
        ServiceContext::start(
            rx,
            self.clone(),
            binding.clone(),
            inbox,
            options.groups,
            service,
        );
        Spawned { addr, binding }
    }

    /// An endpoint for calling a service from outside any service (from `main`, a test, a
    /// tool); the requester is the node's own anonymous agent.
    pub fn endpoint(&self, target: impl crate::request::IntoRequestTarget) -> crate::Endpoint {
        let sender = self
            .0
            .agent
            .get()
            .cloned()
            .expect("the node agent is set when the node is built");
        let target = target.into_request_target().unwrap_or_else(|e| {
            tracing::error!("endpoint: {e}");
            crate::request::RequestTarget::Name(ServiceName::anonymous())
        });
        crate::Endpoint::new(self.clone(), sender, target)
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

/// The node's own anonymous service (see [`Node::endpoint`]).
struct NodeAgent;

impl Actor for NodeAgent {
    type Context = ServiceContext<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        crate::service::started(self, ctx)
    }
    fn stopping(&mut self, ctx: &mut Self::Context) -> actix::Running {
        crate::service::stopping(self, ctx)
    }
}

impl actix::Handler<crate::inbox::Drain> for NodeAgent {
    type Result = ();
    fn handle(&mut self, _: crate::inbox::Drain, ctx: &mut Self::Context) {
        crate::service::drain(self, ctx)
    }
}

impl crate::__private::Descriptor for NodeAgent {
    fn options() -> ServiceOptions {
        ServiceOptions::anonymous()
    }
    fn dispatch(
        _: &mut Self,
        _: &mut ServiceContext<Self>,
        method: &str,
        _: crate::Payload,
    ) -> crate::request::Reply {
        crate::request::Reply::failure(crate::request::method_unavailable("", method))
    }
}

impl Service for NodeAgent {}
