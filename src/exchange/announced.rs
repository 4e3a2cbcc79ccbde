//! The services one peer announced: their routes through its link, their groups, and the
//! limits on what it may announce.

use std::collections::{HashMap, HashSet};

use super::config::Limits;
use super::policy::PeerPolicy;
use super::shared::ExchangeShared;
use crate::delivery::{Address, Behind, Binding, GroupChange, Link, RouteRemoved};
use crate::ids::AgentId;
use crate::names::{clip_name, Audience, GroupName, ServiceName};
use crate::registry::{JoinGroup, LeaveGroup, Register, Reroute, Withdraw};
use crate::wire::ServiceInfo;

/// Why the route through a link to an agent goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lost {
    /// The peer withdrew the service: it is gone there, whatever other route is left.
    ServiceWithdrawn,
    /// The link closed: the service may still be reached another way.
    LinkClosed,
}

/// What a group change from a peer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GroupOutcome {
    /// Applied, or left to the agent's current route.
    Applied,
    /// Refused: the agent was not announced over this link.
    Forged,
}

/// The services learned through one link.
#[derive(Default)]
pub(super) struct Announced {
    /// The agents themselves: the only ones the peer may speak for on this link.
    agents: Behind,
    /// Groups of those services, for
    /// [`Limits::groups_per_service`](crate::Limits::groups_per_service).
    groups: HashMap<AgentId, HashSet<GroupName>>,
    /// Those of them the peer's policy refused: announced, but visible nowhere.
    refused: HashSet<AgentId>,
    /// Those of them with a name that were accepted, for the policy's `max_services`
    /// (anonymous services, which answers need, do not count).
    named: HashSet<AgentId>,
}

impl Announced {
    /// Every service learned through the link.
    pub(super) fn agents(&self) -> Vec<AgentId> {
        self.agents.iter().copied().collect()
    }

    /// Why `policy` refuses the announcement of `info` with `groups` groups, if it does;
    /// `relayed`: the service is another process's than the one the peer claimed.
    fn refused_by(
        &self,
        policy: &PeerPolicy,
        info: &ServiceInfo,
        groups: usize,
        relayed: bool,
    ) -> Option<String> {
        if self.agents.contains(&info.agent) && !self.refused.contains(&info.agent) {
            return None;
        }
        if relayed && !policy.relay {
            return Some("another process's service, and it may not relay".to_owned());
        }
        if !policy.may_announce(&info.name) {
            return Some("a name it may not announce".to_owned());
        }
        let counts = !info.name.is_empty() && !self.named.contains(&info.agent);
        if let Some(max) = policy
            .max_services
            .filter(|&max| counts && self.named.len() >= max)
        {
            return Some(format!("more than {max} services"));
        }
        if let Some(max) = policy.max_groups.filter(|&max| groups > max) {
            return Some(format!("in more than {max} groups"));
        }
        None
    }

    /// The agents the peer may speak for on this link.
    pub(super) fn behind(&self) -> &Behind {
        &self.agents
    }

    /// The peer announced a service.
    pub(super) fn available(
        &mut self,
        shared: &ExchangeShared,
        link: &Link,
        info: ServiceInfo,
        (limits, policy): (&Limits, &PeerPolicy),
    ) -> Result<(), String> {
        let name = ServiceName::new(&info.name).map_err(|e| e.to_string())?;
        let audience = Audience::parse(&info.audience).map_err(|e| e.to_string())?;
        let groups = info
            .groups
            .iter()
            .map(GroupName::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let limit = limits.services_per_link;
        if self.agents.len() >= limit && !self.agents.contains(&info.agent) {
            return Err(format!(
                "the peer announced more than {limit} services (the limit per link)"
            ));
        }
        let group_limit = limits.groups_per_service;
        if groups.len() > group_limit {
            return Err(format!(
                "service {} is in more than {group_limit} groups (the limit per service)",
                info.agent
            ));
        }
        if let Some(why) = foreign_claim(shared, &info) {
            // Not recorded as behind this link, so the peer does not get to speak for it: its
            // frames in that agent's name are refused and counted by the source checks. The
            // announcement itself is not counted: a loop of a mesh may echo one honestly.
            let peer = link.peer().map_or("", |p| p.node.as_str());
            tracing::warn!(peer, agent = %info.agent, process = %info.process, "announcement refused: {why}");
            return Ok(());
        }
        if let Some(why) = false_node_agent(&info) {
            tracing::warn!(agent = %info.agent, process = %info.process, "announcement refused: {why}; the service is visible nowhere");
            self.agents.insert(info.agent);
            self.refused.insert(info.agent);
            return Ok(());
        }
        // A service of another process than the one the peer claimed: relayed.
        let relayed = link.peer().is_none_or(|p| p.process != info.process);
        if let Some(why) = self.refused_by(policy, &info, groups.len(), relayed) {
            let peer = link.peer().map_or("", |p| p.node.as_str());
            tracing::warn!(peer, service = %clip_name(&info.name), agent = %info.agent, process = %info.process, "announcement refused by the peer's policy ({why}); the service is visible nowhere");
            // One of the peer's own that is known nowhere else: the peer still speaks for it
            // on this link (its frames are not forgeries), but nothing of it goes further.
            // Another process's, or one known through another route, it does not speak for:
            // that would let a refused announcement open the door the policy closed.
            if !relayed && shared.node.routes().lookup(info.agent).is_none() {
                self.agents.insert(info.agent);
                self.refused.insert(info.agent);
            }
            return Ok(());
        }
        if !groups.is_empty() {
            self.groups
                .insert(info.agent, groups.iter().cloned().collect());
        }
        if !info.name.is_empty() {
            self.named.insert(info.agent);
        }
        let binding = Binding::new(
            name,
            info.agent,
            audience,
            info.process,
            Address::Remote(link.clone()),
        );
        self.agents.insert(info.agent);
        if !shared.node.routes().insert(binding.clone()) {
            tracing::debug!(agent = %info.agent, "service already known through another route; kept as an alternate");
            return Ok(());
        }
        shared.node.announcer().service_available(&binding, &groups);
        shared.node.registry().do_send(Register { binding, groups });
        Ok(())
    }

    /// The binding of `agent` if it is currently reached through this link.
    fn via_here(shared: &ExchangeShared, link: &Link, agent: AgentId) -> Option<Binding> {
        let binding = shared.node.routes().lookup(agent)?;
        binding
            .link()
            .filter(|l| l.same(link))
            .map(|_| binding.clone())
    }

    /// This link no longer leads to `agent`: withdraw it, or switch it to another route.
    /// Returns whether it was learned through this link.
    pub(super) fn withdraw(
        &mut self,
        shared: &ExchangeShared,
        link: &Link,
        agent: AgentId,
        lost: Lost,
    ) -> bool {
        if !self.agents.remove(&agent) {
            return false;
        }
        self.groups.remove(&agent);
        self.named.remove(&agent);
        if self.refused.remove(&agent) {
            return true;
        }
        let net = shared.node.routes();
        match net.remove(agent, Some(link)) {
            RouteRemoved::Gone(binding) => {
                shared.node.announcer().service_withdrawn(agent);
                shared.node.registry().do_send(Withdraw(agent));
                net.fail_pending_for(&binding);
            }
            RouteRemoved::Rerouted(current) => {
                tracing::debug!(%agent, "route lost; another link takes over");
                shared.node.announcer().service_available(&current, &[]);
                shared.node.registry().do_send(Reroute(current.clone()));
                if lost == Lost::ServiceWithdrawn {
                    net.fail_pending_for(&current);
                }
            }
            RouteRemoved::Unchanged => {}
        }
        true
    }

    /// The peer said a service joined or left a group. A change for an agent it did not
    /// announce is a forgery ([`GroupOutcome::Forged`]); one for an agent it announced but
    /// that is reached by another route here is not applied (that route tells).
    pub(super) fn group_change(
        &mut self,
        shared: &ExchangeShared,
        link: &Link,
        agent: AgentId,
        group: &str,
        change: GroupChange,
        policy: &PeerPolicy,
    ) -> Result<GroupOutcome, String> {
        let join = change == GroupChange::Joined;
        let group = GroupName::new(group).map_err(|e| e.to_string())?;
        if !self.agents.contains(&agent) {
            return Ok(GroupOutcome::Forged);
        }
        if let Some(binding) = Self::via_here(shared, link, agent) {
            if binding.name().is_anonymous() {
                return Err(format!("a group change for the anonymous service {agent}"));
            }
            if join {
                let limit = shared.config.limits.groups_per_service;
                let groups = self.groups.entry(agent).or_default();
                if groups.len() >= limit && !groups.contains(&group) {
                    return Err(format!(
                        "service {agent} joined more than {limit} groups (the limit per service)"
                    ));
                }
                if let Some(max) = policy.max_groups {
                    if groups.len() >= max && !groups.contains(&group) {
                        let peer = link.peer().map_or("", |p| p.node.as_str());
                        tracing::warn!(peer, service = %binding, %group, "group join refused by the peer's policy (more than {max} groups)");
                        return Ok(GroupOutcome::Applied);
                    }
                }
                groups.insert(group.clone());
            } else if let Some(groups) = self.groups.get_mut(&agent) {
                groups.remove(&group);
            }
            let announcer = shared.node.announcer();
            announcer.group_changed(agent, &group, change);
            let registry = shared.node.registry();
            if join {
                registry.do_send(JoinGroup(agent, group));
            } else {
                registry.do_send(LeaveGroup(agent, group));
            }
        }
        Ok(GroupOutcome::Applied)
    }
}

/// Why the announcement of `info` claims an agent that is not the announcer's to claim, if
/// it does: an agent of this very node (or of this node's process), or an agent already
/// known here as another process's. Agent ids are public (every announcement carries them),
/// so without this a peer could announce a known agent as a second route and then speak for
/// it on its own link, past every source check. A real second route of a mesh always
/// agrees with the first on the agent's process.
fn foreign_claim(shared: &ExchangeShared, info: &ServiceInfo) -> Option<&'static str> {
    if info.process == shared.node.process() {
        return Some("it claims an agent of this node's own process");
    }
    let known = shared.node.routes().lookup(info.agent)?;
    if known.link().is_none() {
        Some("it claims an agent local to this node")
    } else if known.process() != info.process {
        Some("it claims an agent known here as another process's")
    } else {
        None
    }
}

/// Why `info` may not be announced if it claims a node agent's identity: a version-8 agent
/// id is the node agent of the process it is derived from
/// ([`crate::introspection::node_agent_of`]), so an announcement naming another process is
/// false. (Which link it comes over cannot be checked: a process with exchanges in two groups
/// relays the node agents of one to the other without being a hub. A peer that names the
/// process a node agent is derived from can still announce it before that process does,
/// as with any agent id; what it then answers to introspection is its own word.)
fn false_node_agent(info: &ServiceInfo) -> Option<&'static str> {
    (info.agent.as_uuid().get_version_num() == 8
        && info.agent != crate::introspection::node_agent_of(info.process))
    .then_some("a node agent id that is not its process's")
}
