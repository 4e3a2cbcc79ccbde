//! What a node tells about itself when asked: its links with their counters, its local
//! services, and who subscribes to what. Plain values (serde, JSON-friendly): the node
//! builds them only when a request asks ([`crate::Node::introspect`]), so they cost nothing
//! otherwise.

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ProcessId};
use crate::payload::Format;

/// The reserved method a node's own agent answers with its [`NodeInfo`]. Reserved names
/// start with `$`, which no Rust identifier (so no exported method) can.
pub const INTROSPECT_METHOD: &str = "$node";

/// The reserved method every service answers with the subscriptions to its reports, a
/// `Vec<SubscriptionInfo>` (what [`NodeInfo::subscriptions`] gathers from a node's services).
pub const SUBSCRIBERS_METHOD: &str = "$subscribers";

/// The agent id of the node agent of `process`: the agent that answers
/// [`INTROSPECT_METHOD`]. Derived from the process id (a version-8 UUID made of its bits),
/// so a tool that knows a process (from a binding, or from a link's peer) can address its
/// node without any announcement beyond the ones the node makes anyway; random agent ids
/// are version 4, so a derived one never collides with them.
pub fn node_agent_of(process: ProcessId) -> AgentId {
    AgentId::from_uuid(uuid::Builder::from_custom_bytes(*process.as_uuid().as_bytes()).into_uuid())
}

/// One node, as it describes itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Its process identity.
    pub process: ProcessId,
    /// Its node name.
    pub node: String,
    /// Its exchange links that completed the handshake, in the order they came up.
    pub links: Vec<LinkInfo>,
    /// Its own services (named and anonymous, its node agent excluded).
    pub services: Vec<ServiceSummary>,
    /// Who subscribes to its services' reports.
    pub subscriptions: Vec<SubscriptionInfo>,
}

/// Which side opened a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkSide {
    /// This node connected (as an exchange client).
    Connected,
    /// This node accepted the connection (as an exchange server).
    Accepted,
}

/// One exchange link of a node and its traffic since it came up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkInfo {
    /// The peer's process identity.
    pub peer_process: ProcessId,
    /// The peer's node name.
    pub peer_node: String,
    /// Whether the peer is an exchange server.
    pub peer_hub: bool,
    /// The peer's socket address.
    pub address: String,
    /// Which side opened the link.
    pub side: LinkSide,
    /// The exchange group (`""`: the default group).
    pub group: String,
    /// Whether the link is under TLS.
    pub tls: bool,
    /// Whether the peer proved who it is (a shared secret, or a certificate the CA signed).
    pub authenticated: bool,
    /// Milliseconds since the handshake completed.
    pub up_ms: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Frames written to the socket.
    pub frames_out: u64,
    /// Bytes written to the socket.
    pub bytes_out: u64,
    /// Reports dropped because the peer's outbound buffer was full.
    pub reports_dropped: u64,
    /// Reports the full outbound buffer kept aside for a conflated subscription and then
    /// replaced by a later one of the same subject.
    pub reports_conflated: u64,
}

/// One local service of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServiceSummary {
    /// Its name (`""`: anonymous).
    pub name: String,
    /// Its agent identity.
    pub agent: AgentId,
    /// Its audience, in OSE's spelling (`*`, `""` or a group name).
    pub audience: String,
    /// The groups it is in.
    pub groups: Vec<String>,
}

/// One subscription to a local publisher: who listens, to what, in which format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SubscriptionInfo {
    /// The publishing agent.
    pub publisher: AgentId,
    /// The publisher's name.
    pub publisher_name: String,
    /// The subscribing agent.
    pub subscriber: AgentId,
    /// The subscriber's name (`""`: anonymous).
    pub subscriber_name: String,
    /// The subscriber's process.
    pub subscriber_process: ProcessId,
    /// The subject pattern.
    pub pattern: String,
    /// The format the subscriber gets reports in across processes.
    pub format: Format,
    /// Whether the subscriber asked for its reports to be conflated rather than dropped when
    /// it falls behind ([`ServiceContext::conflate_reports`](crate::ServiceContext::conflate_reports)).
    pub conflated: bool,
}

impl NodeInfo {
    /// A node's description (for the node agent and tests).
    pub(crate) fn new(process: ProcessId, node: String) -> Self {
        NodeInfo {
            process,
            node,
            links: Vec::new(),
            services: Vec::new(),
            subscriptions: Vec::new(),
        }
    }
}

impl SubscriptionInfo {
    /// One subscription (for the services answering [`SUBSCRIBERS_METHOD`]).
    pub(crate) fn new(
        publisher: (AgentId, String),
        subscriber: (AgentId, String, ProcessId),
        (pattern, format, conflated): (String, Format, bool),
    ) -> Self {
        SubscriptionInfo {
            publisher: publisher.0,
            publisher_name: publisher.1,
            subscriber: subscriber.0,
            subscriber_name: subscriber.1,
            subscriber_process: subscriber.2,
            pattern,
            format,
            conflated,
        }
    }
}

impl ServiceSummary {
    /// A service's summary (for the node agent).
    pub(crate) fn new(name: String, agent: AgentId, audience: String, groups: Vec<String>) -> Self {
        ServiceSummary {
            name,
            agent,
            audience,
            groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_agent_id_is_derived_from_its_process_and_never_a_random_one() {
        let process = ProcessId::random();
        let agent = node_agent_of(process);
        assert_eq!(agent, node_agent_of(process));
        assert_ne!(agent, node_agent_of(ProcessId::random()));
        assert_eq!(agent.as_uuid().get_version_num(), 8);
        assert_eq!(AgentId::random().as_uuid().get_version_num(), 4);
    }

    #[test]
    fn a_link_side_is_written_in_lower_case() {
        let json = serde_json::to_string(&LinkSide::Accepted).unwrap();
        assert_eq!(json, "\"accepted\"");
    }
}
