//! Building a node and spawning services on it: the top of the runtime, where the node
//! handle (`node.rs`) and the service runtime (`service/`) meet.

use actix::dev::channel;
use actix::Addr;

use crate::delivery::{Address, Binding, Delivery, Drain, Inbox};
use crate::ids::AgentId;
use crate::names::Audience;
use crate::node::{Node, NodeConfig};
use crate::payload::Payload;
use crate::registry::Register;
use crate::request::{method_unavailable, Reply};
use crate::service::{
    drain, started, stopping, Descriptor, Service, ServiceContext, ServiceOptions,
};

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
        let node = Node::assemble(config);
        // Anonymous but visible to other processes (never announced), so that answers to
        // requests made with `Node::endpoint` can find their way back.
        let options = ServiceOptions {
            audience: Audience::Everyone,
            ..ServiceOptions::anonymous()
        };
        let agent = node.spawn_with(NodeAgent, options);
        node.set_agent(agent.binding);
        node
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
        let inbox = Inbox::new(self.config().inbox_capacity);
        let binding = Binding::new(
            options.name,
            AgentId::random(),
            options.audience,
            self.process(),
            Address::Local(inbox.clone()),
        );
        self.routes().insert(binding.clone());
        self.announcer()
            .service_available(&binding, &options.groups);
        self.registry().do_send(Register {
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
}

/// The node's own anonymous service (see [`Node::endpoint`]).
struct NodeAgent;

impl actix::Actor for NodeAgent {
    type Context = ServiceContext<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        started(self, ctx)
    }
    fn stopping(&mut self, ctx: &mut Self::Context) -> actix::Running {
        stopping(self, ctx)
    }
}

impl actix::Handler<Drain> for NodeAgent {
    type Result = ();
    fn handle(&mut self, _: Drain, ctx: &mut Self::Context) {
        drain(self, ctx)
    }
}

impl Descriptor for NodeAgent {
    fn options() -> ServiceOptions {
        ServiceOptions::anonymous()
    }
    fn dispatch(_: &mut Self, _: &mut ServiceContext<Self>, method: &str, _: Payload) -> Reply {
        Reply::failure(method_unavailable("", method))
    }
}

impl Service for NodeAgent {}
