//! The node's routes, shared by every bridge: which agent is reached how, and the calls sent
//! across links that wait for an answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::oneshot;

use super::answer::Outcome;
use super::binding::Binding;
use super::link::Link;
use crate::failure::{Failure, Refusal};
use crate::ids::{AgentId, AgentTable, ConversationId, ConversationMap, IdMap};

struct PendingCall {
    reply: oneshot::Sender<Outcome>,
    target: AgentId,
    /// The link the request went out on.
    link: Link,
}

/// What an answer received for a local requester did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completed {
    /// It completed the call.
    Answered,
    /// No call of that conversation waits (it timed out, or never was).
    NotWaiting,
    /// The call waits for an answer from another agent, its target (given): refused.
    NotTheTarget(AgentId),
}

/// What removing one route of an agent did.
pub(crate) enum RouteRemoved {
    /// That was the agent's only route: it is gone from this node (its last binding).
    Gone(Binding),
    /// Another route took over; here is the new binding.
    Rerouted(Binding),
    /// The route was not the one in use (an alternate, or unknown): nothing visible changed.
    Unchanged,
}

/// Every agent this node can reach (local ones from spawn to withdrawal, remote ones from
/// their announcement to their withdrawal) and the pending remote requests.
///
/// A remote agent announced through several links (a client of two servers, a link being
/// replaced by a duplicate) has one route in use and alternates; when the route in use goes
/// down an alternate takes over without the agent being withdrawn.
#[derive(Default)]
pub(crate) struct Routes {
    table: RwLock<Table>,
    /// Changes with every change of `table` (see [`Routes::generation`]).
    generation: AtomicU64,
    pending: Mutex<ConversationMap<PendingCall>>,
}

#[derive(Default)]
struct Table {
    current: AgentTable<Binding>,
    alternates: IdMap<AgentId, Vec<Binding>>,
}

impl Routes {
    pub(crate) fn new() -> Arc<Routes> {
        Arc::new(Routes::default())
    }

    /// A number that changes whenever the route in use of some agent changes (it appears, is
    /// gone, or moves to another link): lookups made while it stays the same would give the
    /// same answers (bridges and publishers cache theirs on it). Alternates coming and going
    /// change nothing a lookup sees, so they leave it alone.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a change of a route in use; called with the table still locked, after the change.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn lookup(&self, agent: AgentId) -> Option<Binding> {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .current
            .get(&agent)
            .cloned()
    }

    /// Adds a route. Returns `true` when the agent was not known (it is new to this node);
    /// a further remote route of a known agent becomes an alternate.
    pub(crate) fn insert(&self, binding: Binding) -> bool {
        let mut routes = self.write();
        let agent = binding.agent();
        match routes.current.get(&agent) {
            None => {
                routes.current.insert(binding);
                self.changed();
                true
            }
            // A local agent is never reached through a link.
            Some(current) if current.link().is_none() => false,
            Some(current) => {
                if !is_via(current, binding.link()) {
                    let alternates = routes.alternates.entry(agent).or_default();
                    if !alternates.iter().any(|b| is_via(b, binding.link())) {
                        alternates.push(binding);
                    }
                }
                false
            }
        }
    }

    /// Removes the route to `agent` through `via` (`None`: the agent is local).
    pub(crate) fn remove(&self, agent: AgentId, via: Option<&Link>) -> RouteRemoved {
        let mut routes = self.write();
        if !routes.current.get(&agent).is_some_and(|c| is_via(c, via)) {
            if let Some(alternates) = routes.alternates.get_mut(&agent) {
                alternates.retain(|b| !is_via(b, via));
                if alternates.is_empty() {
                    routes.alternates.remove(&agent);
                }
            }
            return RouteRemoved::Unchanged;
        }
        let mut alternates = routes.alternates.remove(&agent).unwrap_or_default();
        if alternates.is_empty() {
            let gone = routes.current.remove(&agent);
            self.changed();
            return gone.map_or(RouteRemoved::Unchanged, RouteRemoved::Gone);
        }
        let next = alternates.remove(0);
        if !alternates.is_empty() {
            routes.alternates.insert(agent, alternates);
        }
        routes.current.insert(next.clone());
        self.changed();
        RouteRemoved::Rerouted(next)
    }

    /// Remembers a request sent across a link.
    pub(crate) fn add_pending(
        &self,
        conversation: ConversationId,
        target: AgentId,
        link: &Link,
        reply: oneshot::Sender<Outcome>,
    ) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= 1024 && pending.len().is_power_of_two() {
            // Requesters that gave up (timeouts) leave closed senders behind.
            pending.retain(|_, p| !p.reply.is_closed());
        }
        pending.insert(
            conversation,
            PendingCall {
                reply,
                target,
                link: link.clone(),
            },
        );
    }

    pub(crate) fn forget_pending(&self, conversation: ConversationId) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&conversation);
    }

    /// Answers a pending request with an answer received from `responder`: only the call's
    /// target may answer it (the entry stays when another agent tries). The caller checked
    /// that the responder is behind the link the answer came over.
    pub(crate) fn complete_from(
        &self,
        conversation: ConversationId,
        outcome: Outcome,
        responder: AgentId,
    ) -> Completed {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = pending.get(&conversation) else {
            return Completed::NotWaiting;
        };
        if entry.target != responder {
            return Completed::NotTheTarget(entry.target);
        }
        let entry = pending.remove(&conversation).expect("looked up above");
        drop(pending);
        let _ = entry.reply.send(outcome);
        Completed::Answered
    }

    /// Answers a pending request (a failure decided here). Unknown or abandoned
    /// conversations are dropped.
    pub(crate) fn complete(&self, conversation: ConversationId, outcome: Outcome) {
        let entry = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&conversation);
        if let Some(p) = entry {
            let _ = p.reply.send(outcome);
        }
    }

    /// Fails every pending request to `agent` (it was withdrawn).
    pub(crate) fn fail_pending_for(&self, agent: &Binding) {
        let refusal = || Refusal::WithdrawnBeforeResponse {
            target: agent.to_string(),
        };
        self.fail_pending(|p| p.target == agent.agent(), refusal);
    }

    /// Fails every pending request sent on `link` (it went down; answers cannot come back).
    pub(crate) fn fail_pending_via(&self, link: &Link) {
        self.fail_pending(|p| p.link.same(link), || Refusal::ConnectionLost);
    }

    fn fail_pending(&self, which: impl Fn(&PendingCall) -> bool, refusal: impl Fn() -> Refusal) {
        let failed: Vec<(ConversationId, PendingCall)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<ConversationId> = pending
                .iter()
                .filter(|(_, p)| which(p))
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id).map(|p| (id, p)))
                .collect()
        };
        for (conversation, p) in failed {
            let failure = Failure::from(refusal()).with_conversation(conversation);
            let _ = p.reply.send(Err(failure));
        }
    }
}

/// Whether `binding` is the route through `via` (`None`: the local one).
fn is_via(binding: &Binding, via: Option<&Link>) -> bool {
    match (binding.link(), via) {
        (Some(x), Some(y)) => x.same(y),
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::binding::Address;
    use crate::delivery::link::tests::link;
    use crate::ids::ProcessId;
    use crate::names::{Audience, ServiceName};

    fn via(link: &Link, agent: AgentId) -> Binding {
        let name = ServiceName::new("s").unwrap();
        Binding::new(
            name,
            agent,
            Audience::Everyone,
            ProcessId::random(),
            Address::Remote(link.clone()),
        )
    }

    #[test]
    fn a_call_completes_only_with_an_answer_from_its_target() {
        let net = Routes::new();
        let link = link(&net, "", false);
        let (target, other) = (AgentId::random(), AgentId::random());
        let (tx, mut rx) = oneshot::channel();
        let id = ConversationId(7);
        net.add_pending(id, target, &link, tx);
        let answer = || Ok(crate::payload::Payload::new(1u8));
        assert_eq!(
            net.complete_from(id, answer(), other),
            Completed::NotTheTarget(target)
        );
        assert!(rx.try_recv().is_err(), "still waiting");
        assert_eq!(net.complete_from(id, answer(), target), Completed::Answered);
        assert!(rx.try_recv().unwrap().is_ok());
        assert_eq!(
            net.complete_from(id, answer(), target),
            Completed::NotWaiting
        );
    }

    #[test]
    fn the_generation_changes_with_the_routes_in_use_only() {
        let net = Routes::new();
        let (a, b) = (link(&net, "", false), link(&net, "", false));
        let agent = AgentId::random();
        let start = net.generation();
        assert!(net.insert(via(&a, agent)));
        let known = net.generation();
        assert_ne!(known, start, "a new agent");
        assert!(!net.insert(via(&b, agent)));
        assert!(matches!(
            net.remove(AgentId::random(), Some(&a)),
            RouteRemoved::Unchanged
        ));
        assert_eq!(
            net.generation(),
            known,
            "an alternate, an unknown agent: lookups see nothing new"
        );
        assert!(matches!(
            net.remove(agent, Some(&a)),
            RouteRemoved::Rerouted(_)
        ));
        let moved = net.generation();
        assert_ne!(moved, known, "moved to the alternate");
        assert!(matches!(net.remove(agent, Some(&b)), RouteRemoved::Gone(_)));
        assert_ne!(net.generation(), moved, "gone");
    }
}
