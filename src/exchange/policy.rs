//! Per-peer policy: what a server lets each peer do, decided once its handshake completed.
//!
//! The decision hook ([`ExchangeConfig::admit`](crate::ExchangeConfig::admit)) is told who the
//! peer is ([`PeerInfo`]) and refuses it (`None`) or accepts it with a [`PeerPolicy`]: the
//! service names it may announce, whether it may relay other processes' services, and how
//! many services, groups per service and subscriptions it may hold. A violation is logged with the peer and the name, and refused: the
//! announcement is visible nowhere (the link stays), the group is not joined, the
//! subscription not made. Without a hook every peer may do everything the [`Limits`]
//! allow, as before. A [`PolicyFile`] is such a hook read from JSON.
//!
//! [`Limits`]: crate::Limits

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::ids::ProcessId;
use crate::names::{InvalidName, SubjectPattern};

/// Who a peer is, as its handshake showed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PeerInfo {
    /// Its socket address.
    pub addr: SocketAddr,
    /// The node name it gave.
    pub node: String,
    /// The process identity it claimed.
    pub process: ProcessId,
    /// The DNS names of its TLS client certificate, verified by the CA (empty without one).
    pub certificate_names: Vec<String>,
    /// The subject of that certificate (`CN=sensor-7, O=Example`), if it has one.
    pub certificate_subject: Option<String>,
    /// Whether it proved the shared secret.
    pub secret_proven: bool,
}

/// What one peer may do. The default allows everything.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    /// Patterns (`*` and `?` as in subject patterns) the names of the services it announces
    /// must match; `None`: any name. Anonymous services (no name) are always allowed.
    pub announce: Option<Vec<SubjectPattern>>,
    /// Most services it may announce.
    pub max_services: Option<usize>,
    /// Most groups each of its services may be in.
    pub max_groups: Option<usize>,
    /// Most subscriptions it may request.
    pub max_subscriptions: Option<usize>,
    /// Whether it may announce services of other processes than the one it claimed in its
    /// handshake, as an exchange server does for its clients and a process with exchanges in
    /// two groups does between them (default `true`). Set it to `false` for peers that are
    /// plain clients: a peer that relays a service speaks for it on its link, so a client
    /// allowed to relay could announce another process's agent (agent ids are public) as a
    /// second route to it and then send frames in its name.
    pub relay: bool,
}

impl Default for PeerPolicy {
    fn default() -> Self {
        PeerPolicy {
            announce: None,
            max_services: None,
            max_groups: None,
            max_subscriptions: None,
            relay: true,
        }
    }
}

impl PeerPolicy {
    /// Whether a service of this name may be announced.
    pub fn may_announce(&self, name: &str) -> bool {
        name.is_empty()
            || self
                .announce
                .as_ref()
                .is_none_or(|patterns| patterns.iter().any(|p| p.matches(name)))
    }
}

/// The decision hook: `None` refuses the peer.
pub type Admit = Arc<dyn Fn(&PeerInfo) -> Option<PeerPolicy> + Send + Sync>;

/// Why a policy file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy: {0}")]
pub struct PolicyError(String);

/// A policy read from JSON: rules tried in order, the first whose `node` and `certificate`
/// patterns match the peer gives its policy; a peer no rule matches gets `default`, or is
/// refused when there is none.
///
/// ```json
/// {
///   "peers": [
///     { "certificate": "sensor-*.example", "announce": ["sensor.*"], "max_services": 10 },
///     { "node": "calculator", "announce": ["calculator"], "relay": false },
///     { "certificate": "hub-*.example" }
///   ],
///   "default": { "announce": [], "max_subscriptions": 1000 }
/// }
/// ```
///
/// `node` matches the node name, `certificate` any DNS name of a verified client certificate,
/// `subject` its subject as text (`CN=sensor-7, O=Example`); a rule with several needs all.
/// `announce`, `max_services`, `max_groups`, `max_subscriptions` and `relay` are those of
/// [`PeerPolicy`], each optional.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    rules: Vec<Rule>,
    default: Option<PeerPolicy>,
}

#[derive(Debug, Clone)]
struct Rule {
    node: Option<SubjectPattern>,
    certificate: Option<SubjectPattern>,
    subject: Option<SubjectPattern>,
    policy: PeerPolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRule {
    node: Option<String>,
    certificate: Option<String>,
    subject: Option<String>,
    announce: Option<Vec<String>>,
    max_services: Option<usize>,
    max_groups: Option<usize>,
    max_subscriptions: Option<usize>,
    relay: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePolicy {
    announce: Option<Vec<String>>,
    max_services: Option<usize>,
    max_groups: Option<usize>,
    max_subscriptions: Option<usize>,
    relay: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoot {
    #[serde(default)]
    peers: Vec<FileRule>,
    default: Option<FilePolicy>,
}

fn pattern(text: &str) -> Result<SubjectPattern, PolicyError> {
    SubjectPattern::new(text).map_err(|e: InvalidName| PolicyError(format!("{text:?}: {e}")))
}

impl FilePolicy {
    fn parse(self) -> Result<PeerPolicy, PolicyError> {
        let announce = match self.announce {
            None => None,
            Some(names) => Some(names.iter().map(|n| pattern(n)).collect::<Result<_, _>>()?),
        };
        Ok(PeerPolicy {
            announce,
            max_services: self.max_services,
            max_groups: self.max_groups,
            max_subscriptions: self.max_subscriptions,
            relay: self.relay.unwrap_or(true),
        })
    }
}

impl PolicyFile {
    /// Parses a policy from JSON text.
    pub fn parse(json: &str) -> Result<PolicyFile, PolicyError> {
        let root: FileRoot = serde_json::from_str(json).map_err(|e| PolicyError(e.to_string()))?;
        let rules = root
            .peers
            .into_iter()
            .map(|rule| {
                let policy = FilePolicy {
                    announce: rule.announce,
                    max_services: rule.max_services,
                    max_groups: rule.max_groups,
                    max_subscriptions: rule.max_subscriptions,
                    relay: rule.relay,
                };
                Ok(Rule {
                    node: rule.node.as_deref().map(pattern).transpose()?,
                    certificate: rule.certificate.as_deref().map(pattern).transpose()?,
                    subject: rule.subject.as_deref().map(pattern).transpose()?,
                    policy: policy.parse()?,
                })
            })
            .collect::<Result<_, PolicyError>>()?;
        let default = root.default.map(FilePolicy::parse).transpose()?;
        Ok(PolicyFile { rules, default })
    }

    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<PolicyFile, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError(format!("cannot read {}: {e}", path.display())))?;
        PolicyFile::parse(&text)
    }

    /// The policy of `peer`, or `None` to refuse it.
    pub fn decide(&self, peer: &PeerInfo) -> Option<PeerPolicy> {
        let matching = self.rules.iter().find(|rule| {
            rule.node.as_ref().is_none_or(|p| p.matches(&peer.node))
                && rule
                    .certificate
                    .as_ref()
                    .is_none_or(|p| peer.certificate_names.iter().any(|n| p.matches(n)))
                && rule.subject.as_ref().is_none_or(|p| {
                    peer.certificate_subject
                        .as_deref()
                        .is_some_and(|s| p.matches(s))
                })
        });
        matching
            .map(|rule| rule.policy.clone())
            .or_else(|| self.default.clone())
    }

    /// The policy as a decision hook.
    pub fn into_admit(self) -> Admit {
        Arc::new(move |peer| self.decide(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(node: &str, names: &[&str]) -> PeerInfo {
        PeerInfo {
            addr: "127.0.0.1:1".parse().unwrap(),
            node: node.into(),
            process: ProcessId::random(),
            certificate_names: names.iter().map(|n| n.to_string()).collect(),
            certificate_subject: Some(format!("CN={node}")),
            secret_proven: false,
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_the_default_catches_the_rest() {
        let file = PolicyFile::parse(
            r#"{"peers": [
                {"certificate": "sensor-*.example", "announce": ["sensor.*"], "max_services": 2},
                {"node": "calc", "announce": ["calculator"], "relay": false}
            ], "default": {"announce": []}}"#,
        )
        .unwrap();
        let sensor = file.decide(&peer("x", &["sensor-7.example"])).unwrap();
        assert!(sensor.may_announce("sensor.temperature") && !sensor.may_announce("calculator"));
        assert_eq!(sensor.max_services, Some(2));
        let calc = file.decide(&peer("calc", &[])).unwrap();
        assert!(calc.may_announce("calculator") && calc.may_announce(""));
        assert!(
            !calc.relay && sensor.relay,
            "relaying is allowed unless a rule says not"
        );
        let other = file.decide(&peer("other", &[])).unwrap();
        assert!(!other.may_announce("anything"));
        let by_subject = PolicyFile::parse(r#"{"peers": [{"subject": "CN=gauge*"}]}"#).unwrap();
        assert!(by_subject.decide(&peer("gauge-1", &[])).is_some());
        assert!(by_subject.decide(&peer("meter", &[])).is_none());
        let strict = PolicyFile::parse(r#"{"peers": []}"#).unwrap();
        assert!(
            strict.decide(&peer("other", &[])).is_none(),
            "no rule, no default: refused"
        );
        // Errors are clear at load time.
        assert!(PolicyFile::parse(r#"{"peers": [{"nod": "x"}]}"#).is_err());
        assert!(PolicyFile::parse(r#"{"peers": [{"announce": ["a\nb"]}]}"#).is_err());
        assert!(PolicyFile::parse("not json").is_err());
    }
}
