//! Building a node and spawning services on it: the top of the runtime, where the node
//! handle (`node.rs`) and the service runtime (`service/`) meet.

use std::marker::PhantomData;

use actix::Addr;

use crate::delivery::{Address, Binding, Delivery, Drain, Inbox, Link};
use crate::failure::{ErrorCode, Failure};
use crate::ids::AgentId;
use crate::introspection::{
    node_agent_of, NodeInfo, ServiceSummary, SubscriptionInfo, INTROSPECT_METHOD,
    SUBSCRIBERS_METHOD,
};
use crate::names::Audience;
use crate::node::{Node, NodeConfig};
use crate::payload::Payload;
use crate::registry::Register;
use crate::request::{method_unavailable, Reply};
use crate::service::{
    drain, started, stopping, Descriptor, Service, ServiceContext, ServiceOptions,
};

/// A spawned service: its binding, and its actix address on demand.
pub struct Spawned<S: Service> {
    /// The service's binding, for requests and subscriptions by agent.
    pub binding: Binding,
    service: PhantomData<fn() -> S>,
}

impl<S: Service> Clone for Spawned<S> {
    fn clone(&self) -> Self {
        Spawned {
            binding: self.binding.clone(),
            service: PhantomData,
        }
    }
}

impl<S: Service> Spawned<S> {
    /// The service's actix address, for the user's own messages (its `Handler`s).
    ///
    /// The service's actix mailbox is made the first time its address is asked for, here or
    /// with `ctx.address()`: netsvc's own messages never go through it, and most services
    /// are never sent one, so an idle service does not pay for it. Every call gives an
    /// address of the same mailbox, which stays connected while the service lives. Asked for
    /// once the service is withdrawn, the address is closed: every send fails with
    /// `MailboxError::Closed`, as with an actor that has stopped.
    pub fn addr(&self) -> Addr<S> {
        match self.binding.local_inbox() {
            Some(inbox) => crate::service::address(inbox),
            None => crate::service::closed(),
        }
    }

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
        let agent = node.spawn_as(NodeAgent::default(), options, node_agent_of(node.process()));
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
        self.spawn_as(service, options, AgentId::random())
    }

    /// Spawns a service with explicit options and agent identity.
    fn spawn_as<S: Service>(
        &self,
        service: S,
        options: ServiceOptions,
        agent: AgentId,
    ) -> Spawned<S> {
        let inbox = Inbox::new(self.config().inbox_capacity);
        let binding = Binding::new(
            options.name,
            agent,
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
            self.clone(),
            binding.clone(),
            inbox,
            options.groups,
            service,
        );
        Spawned {
            binding,
            service: PhantomData,
        }
    }
}

/// The node's own anonymous service: the requester of [`Node::endpoint`]'s calls, and the
/// one that answers [`INTROSPECT_METHOD`] with the node's [`NodeInfo`] (its agent id is
/// derived from the process id: see [`node_agent_of`]).
///
/// What it tells a requester is what that requester could reach anyway: asked over a link,
/// only the services that link carries (audience `*` or the link's exchange group; never a
/// process-private one), the subscriptions of subscribers it carries, and the links of the
/// same exchange group. At most [`MAX_GATHERS`] answers are in the making at once; more
/// fail at once with `SERVER_RESOURCE_UNAVAILABLE`, so a flood of requests cannot make the
/// node fan out without bound.
#[derive(Default)]
struct NodeAgent {
    /// Answers in the making.
    gathering: std::rc::Rc<std::cell::Cell<usize>>,
}

/// How many introspection answers a node makes at once.
const MAX_GATHERS: usize = 4;

/// Whether `viewer` (the link a request came over; `None`: this process) may see `binding`.
fn visible(viewer: Option<&Link>, binding: &Binding) -> bool {
    viewer.is_none_or(|link| link.carries(binding))
}

impl NodeAgent {
    /// What the node tells `viewer` about itself: built from what its announcer holds (links,
    /// local services), only when asked.
    fn introspect(node: &Node, viewer: Option<&Link>) -> NodeInfo {
        let mut info = NodeInfo::new(node.process(), node.name().to_owned());
        let me = node_agent_of(node.process());
        let announcer = node.announcer();
        info.links = announcer
            .links()
            .iter()
            .filter(|l| viewer.is_none_or(|v| v.group() == l.group()))
            .filter_map(|l| l.info())
            .collect();
        info.services = announcer
            .local_services()
            .into_iter()
            .filter(|(b, _)| b.agent() != me && visible(viewer, b))
            .map(|(b, groups)| {
                ServiceSummary::new(
                    b.name().as_str().to_owned(),
                    b.agent(),
                    b.audience().as_str().to_owned(),
                    groups.iter().map(|g| g.as_str().to_owned()).collect(),
                )
            })
            .collect();
        info
    }

    /// [`NodeAgent::introspect`] and the subscriptions to each local service `viewer` sees,
    /// which each answers itself ([`SUBSCRIBERS_METHOD`]); a service that does not answer
    /// within [`GATHER_TIMEOUT`] (busy, or stopping) is left out.
    async fn gather(node: Node, viewer: Option<Link>) -> NodeInfo {
        let viewer = viewer.as_ref();
        let mut info = NodeAgent::introspect(&node, viewer);
        let calls: Vec<_> = info
            .services
            .iter()
            .filter_map(|s| node.routes().lookup(s.agent))
            .map(|b| {
                node.endpoint(&b)
                    .with_timeout(GATHER_TIMEOUT)
                    .call_reserved::<Vec<SubscriptionInfo>>(SUBSCRIBERS_METHOD)
            })
            .collect();
        for call in calls {
            if let Ok(subscriptions) = call.await {
                info.subscriptions
                    .extend(subscriptions.into_iter().filter(|s| {
                        let subscriber = node.routes().lookup(s.subscriber);
                        subscriber.is_some_and(|b| visible(viewer, &b))
                    }));
            }
        }
        info
    }
}

/// How long the node agent waits for each local service's subscriptions.
const GATHER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

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
    fn dispatch(
        agent: &mut Self,
        ctx: &mut ServiceContext<Self>,
        method: &str,
        _: Payload,
    ) -> Reply {
        match method {
            INTROSPECT_METHOD => {
                let gathering = agent.gathering.clone();
                if gathering.get() >= MAX_GATHERS {
                    return Reply::failure(Failure::netsvc(
                        ErrorCode::SERVER_RESOURCE_UNAVAILABLE,
                        format!("{MAX_GATHERS} introspections already in progress; try again"),
                    ));
                }
                let viewer = ctx.current_request().and_then(|r| r.sender.link().cloned());
                let (responder, _) = ctx.suspend_response::<NodeInfo>();
                let node = ctx.node().clone();
                gathering.set(gathering.get() + 1);
                actix::spawn(async move {
                    let info = NodeAgent::gather(node, viewer).await;
                    gathering.set(gathering.get() - 1);
                    responder.resolve(info);
                });
                Reply::Suspended
            }
            _ => Reply::failure(method_unavailable("", method)),
        }
    }
}

impl Service for NodeAgent {}
