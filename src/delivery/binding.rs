//! Service bindings: the immutable description of one service agent.

use std::fmt;
use std::sync::Arc;

use super::inbox::{Inbox, Refused};
use super::link::Link;
use super::messages::Delivery;
use super::outbound;
use crate::ids::{AgentId, ByAgent, ProcessId};
use crate::names::{Audience, ServiceName};

/// Where a service lives, seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// In this process.
    Local,
    /// In another process, reached through an exchange bridge.
    Remote,
}

/// The route to a service from this node: its inbox, or the link it was learned through.
/// The service API never looks inside; its [`Location`] follows from it.
#[derive(Clone)]
pub(crate) enum Address {
    Local(Inbox),
    Remote(Link),
}

/// Immutable description of one service: name, agent identity, audience, process identity
/// and the route to reach it (and so its location). Cheap to clone; compares and hashes by agent identity.
///
/// A binding may outlive its service: messages sent along a stale binding fail cleanly.
#[derive(Clone)]
pub struct Binding(Arc<BindingInner>);

struct BindingInner {
    name: ServiceName,
    agent: AgentId,
    audience: Audience,
    process: ProcessId,
    address: Address,
}

impl Binding {
    pub(crate) fn new(
        name: ServiceName,
        agent: AgentId,
        audience: Audience,
        process: ProcessId,
        address: Address,
    ) -> Self {
        Binding(Arc::new(BindingInner {
            name,
            agent,
            audience,
            process,
            address,
        }))
    }

    /// The service name (empty for an anonymous service).
    pub fn name(&self) -> &ServiceName {
        &self.0.name
    }

    /// The unique, stable identity of this agent.
    pub fn agent(&self) -> AgentId {
        self.0.agent
    }

    /// Who may see this service.
    pub fn audience(&self) -> &Audience {
        &self.0.audience
    }

    /// The identity of the process hosting the service.
    pub fn process(&self) -> ProcessId {
        self.0.process
    }

    /// Local or remote, seen from this node.
    pub fn location(&self) -> Location {
        match self.0.address {
            Address::Local(_) => Location::Local,
            Address::Remote(_) => Location::Remote,
        }
    }

    /// The local inbox, when the service lives in this process.
    pub(crate) fn local_inbox(&self) -> Option<&Inbox> {
        match &self.0.address {
            Address::Local(inbox) => Some(inbox),
            Address::Remote(_) => None,
        }
    }

    /// The link the service is reached through, when it is remote.
    pub(crate) fn link(&self) -> Option<&Link> {
        match &self.0.address {
            Address::Local(_) => None,
            Address::Remote(link) => Some(link),
        }
    }

    /// Delivers to the service: into its inbox, or across its link.
    #[inline]
    pub(crate) fn push(&self, delivery: Delivery) -> Result<(), Refused> {
        match &self.0.address {
            Address::Local(inbox) => inbox.push(delivery),
            Address::Remote(link) if !link.is_closed() => outbound::deliver(link, self, delivery),
            // The route this binding was made with went down: use the agent's current route.
            Address::Remote(link) => match link.reroute(self.agent()) {
                Some(current) => current.push(delivery),
                None => Err(Refused::Closed),
            },
        }
    }

    /// Delivers when refusal needs no handling (the service is gone or slow).
    pub(crate) fn send(&self, delivery: Delivery) {
        let _ = self.push(delivery);
    }
}

impl ByAgent for Binding {
    fn agent_key(&self) -> AgentId {
        self.0.agent
    }
}

impl PartialEq for Binding {
    fn eq(&self, other: &Self) -> bool {
        self.0.agent == other.0.agent
    }
}
impl Eq for Binding {}
impl std::hash::Hash for Binding {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.agent.hash(state)
    }
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding")
            .field("name", &self.0.name)
            .field("agent", &self.0.agent)
            .field("audience", &self.0.audience)
            .field("location", &self.location())
            .finish()
    }
}

impl fmt::Display for Binding {
    /// `name/agent`, or `(anonymous)/agent`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.name.is_anonymous() {
            write!(f, "(anonymous)/{}", self.0.agent)
        } else {
            write!(f, "{}/{}", self.0.name, self.0.agent)
        }
    }
}
