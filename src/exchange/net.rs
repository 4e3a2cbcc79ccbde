//! The node's routing state shared by every bridge: which agent is reached how, and the
//! requests sent across links that wait for an answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::oneshot;

use crate::binding::Binding;
use crate::names::{AgentId, ConversationId};
use crate::request::{ErrorCode, Failure, Outcome};

struct Pending {
    reply: oneshot::Sender<Outcome>,
    target: AgentId,
}

/// Every agent this node can reach (local ones from spawn to withdrawal, remote ones from
/// their announcement to their withdrawal) and the pending remote requests.
#[derive(Default)]
pub(crate) struct Net {
    table: RwLock<HashMap<AgentId, Binding>>,
    pending: Mutex<HashMap<ConversationId, Pending>>,
}

impl Net {
    pub(crate) fn new() -> Arc<Net> {
        Arc::new(Net::default())
    }

    pub(crate) fn lookup(&self, agent: AgentId) -> Option<Binding> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).get(&agent).cloned()
    }

    /// Adds a binding unless the agent is already known (first route wins). Returns whether
    /// it was added.
    pub(crate) fn insert(&self, binding: Binding) -> bool {
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        if table.contains_key(&binding.agent()) {
            return false;
        }
        table.insert(binding.agent(), binding);
        true
    }

    /// Removes an agent, but only if it is still reached the way `binding` says.
    pub(crate) fn remove(&self, binding: &Binding) -> bool {
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        match table.get(&binding.agent()) {
            Some(known) if same_route(known, binding) => {
                table.remove(&binding.agent());
                true
            }
            _ => false,
        }
    }

    /// Remembers a request sent across a link.
    pub(crate) fn add_pending(&self, conversation: ConversationId, target: AgentId, reply: oneshot::Sender<Outcome>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= 1024 && pending.len().is_power_of_two() {
            // Requesters that gave up (timeouts) leave closed senders behind.
            pending.retain(|_, p| !p.reply.is_closed());
        }
        pending.insert(conversation, Pending { reply, target });
    }

    pub(crate) fn forget_pending(&self, conversation: ConversationId) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&conversation);
    }

    /// Answers a pending request (a response or failure arrived). Unknown or abandoned
    /// conversations are dropped.
    pub(crate) fn complete(&self, conversation: ConversationId, outcome: Outcome) {
        let entry = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&conversation);
        if let Some(p) = entry {
            let _ = p.reply.send(outcome);
        }
    }

    /// Fails every pending request to `agent` (it was withdrawn).
    pub(crate) fn fail_pending_for(&self, agent: &Binding) {
        let failed: Vec<(ConversationId, Pending)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<ConversationId> =
                pending.iter().filter(|(_, p)| p.target == agent.agent()).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| pending.remove(&id).map(|p| (id, p))).collect()
        };
        for (conversation, p) in failed {
            let failure = Failure::netsvc(
                ErrorCode::SERVER_APPLICATION_ERROR,
                format!("service {agent} was withdrawn before responding"),
            )
            .with_conversation(conversation);
            let _ = p.reply.send(Err(failure));
        }
    }
}

fn same_route(a: &Binding, b: &Binding) -> bool {
    match (a.link(), b.link()) {
        (Some(x), Some(y)) => x.same(y),
        (None, None) => true,
        _ => false,
    }
}
