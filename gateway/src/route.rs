//! From a service name and a method to an answer: which services the gateway exposes, which
//! of several of the same name a call goes to, arguments by name mapped to positions through
//! the service's descriptor, and the timeout. Every protocol (JSON, JSON-RPC, XML-RPC) calls
//! through here, so they all reach the same services the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netsvc::{
    AgentId, Binding, ErrorCode, Failure, GroupName, Node, ProcessId, ServiceDescriptor,
    ServiceName,
};
use serde_json::Value;

use crate::error::gateway_failure;

/// Most descriptors kept (by agent); the cache is emptied when it is full, which costs one
/// `$describe` per service afterwards.
const DESCRIPTOR_CACHE: usize = 4096;

/// A call's arguments as a client sent them.
#[derive(Debug, Clone)]
pub(crate) enum Args {
    /// In the method's parameter order.
    Positional(Vec<Value>),
    /// By parameter name.
    Named(serde_json::Map<String, Value>),
}

impl Args {
    /// Arguments from a JSON body: an array (positional) or an object (by name); `null`
    /// counts as no argument. Anything else is refused (56).
    pub(crate) fn from_json(value: Value) -> Result<Args, Failure> {
        match value {
            Value::Array(items) => Ok(Args::Positional(items)),
            Value::Object(map) => Ok(Args::Named(map)),
            Value::Null => Ok(Args::Positional(Vec::new())),
            other => Err(gateway_failure(
                ErrorCode::SERVER_PARAMETERS_INCORRECT,
                format!(
                    "arguments must be a JSON array (by position) or object (by name), not {}",
                    kind_of(&other)
                ),
            )),
        }
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What every handler shares: the node, what is exposed, and the caches.
pub(crate) struct Router {
    pub(crate) node: Node,
    /// The exposed group; `None`: every visible service.
    group: Option<GroupName>,
    /// The gateway's own publisher, always exposed.
    own: AgentId,
    descriptors: Mutex<HashMap<AgentId, Arc<ServiceDescriptor>>>,
    node_names: Mutex<HashMap<ProcessId, String>>,
    /// The exposed services of each name called lately, as of one registry generation
    /// ([`Node::registry_generation`]): a call then needs no round trip to the node's
    /// registry (two thread wake-ups) while nothing changed there.
    exposed: Mutex<Exposed>,
}

/// [`Router::exposed`]'s answers while the registry stays the same.
#[derive(Default)]
struct Exposed {
    generation: u64,
    by_name: HashMap<ServiceName, Vec<Binding>>,
}

/// Most names [`Exposed`] keeps (then it forgets them all): callers choose the names.
const EXPOSED_NAMES: usize = 1024;

impl Router {
    pub(crate) fn new(node: Node, group: Option<GroupName>, own: AgentId) -> Self {
        Router {
            node,
            group,
            own,
            descriptors: Mutex::new(HashMap::new()),
            node_names: Mutex::new(HashMap::new()),
            exposed: Mutex::new(Exposed::default()),
        }
    }

    /// The services of this name that the gateway exposes, in the order calls try them: a
    /// local one first, then the one known longest (the registry's order).
    pub(crate) async fn exposed(&self, name: &str) -> Vec<Binding> {
        let Ok(name) = ServiceName::new(name) else {
            return Vec::new();
        };
        if name.is_anonymous() {
            return Vec::new();
        }
        let generation = self.node.registry_generation();
        if let Some(hit) = self.kept(&name, generation) {
            return hit;
        }
        let found = self.node.lookup_name(name.clone()).await;
        let exposed = self.filter(found).await;
        let mut kept = self.exposed.lock().unwrap_or_else(|p| p.into_inner());
        if kept.generation != generation || kept.by_name.len() >= EXPOSED_NAMES {
            kept.by_name.clear();
            kept.generation = generation;
        }
        kept.by_name.insert(name, exposed.clone());
        exposed
    }

    /// The exposed services of `name` as kept from a lookup at `generation` of the registry,
    /// if any.
    fn kept(&self, name: &ServiceName, generation: u64) -> Option<Vec<Binding>> {
        let kept = self.exposed.lock().unwrap_or_else(|p| p.into_inner());
        kept.by_name
            .get(name)
            .filter(|_| kept.generation == generation)
            .cloned()
    }

    /// Every exposed service.
    pub(crate) async fn all_exposed(&self) -> Vec<Binding> {
        let all = self.node.services().await;
        self.filter(all).await
    }

    async fn filter(&self, mut bindings: Vec<Binding>) -> Vec<Binding> {
        bindings.retain(|b| !b.name().is_anonymous());
        if let Some(group) = &self.group {
            let members = self.node.lookup_group(group.clone()).await;
            bindings.retain(|b| b.agent() == self.own || members.iter().any(|m| m == b));
        }
        bindings
    }

    /// Whether one agent is exposed now.
    pub(crate) async fn is_exposed(&self, agent: AgentId) -> bool {
        match &self.group {
            None => true,
            Some(_) if agent == self.own => true,
            Some(group) => self.node.groups_of(agent).await.contains(group),
        }
    }

    /// The exposed group, if any.
    pub(crate) fn group(&self) -> Option<&GroupName> {
        self.group.as_ref()
    }

    /// The gateway's own publisher.
    pub(crate) fn own(&self) -> AgentId {
        self.own
    }

    /// Calls `method` of the exposed service `service` with `args`, within `timeout` (the
    /// descriptor lookup for arguments by name included). Reserved methods (`$…`) are not
    /// callable from outside (55); a service that is not exposed looks like no service (46).
    /// When the chosen service is withdrawn before the request reaches it, the next of the
    /// same name is tried; once it has reached it, a withdrawal fails the call at once (the
    /// core answers pending requests of a withdrawn service), and it is not retried: it may
    /// have run.
    pub(crate) async fn call(
        &self,
        service: &str,
        method: &str,
        args: Args,
        timeout: Duration,
    ) -> Result<Value, Failure> {
        // One deadline for every step. The call itself is bounded by its endpoint's own
        // timeout; the steps before it (a registry lookup the router has not kept, a
        // descriptor) by a timer of their own, so that the usual call arms one timer.
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || {
            gateway_failure(
                ErrorCode::CLIENT_REQUEST_TIMEOUT,
                format!("no response from {service} to {method} within {timeout:?}"),
            )
        };
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        if method.starts_with('$') {
            return Err(gateway_failure(
                ErrorCode::SERVER_METHOD_UNAVAILABLE,
                format!("{method} is reserved: it is not callable through the gateway"),
            ));
        }
        let kept = ServiceName::new(service)
            .ok()
            .and_then(|name| self.kept(&name, self.node.registry_generation()));
        let candidates = match kept {
            Some(kept) => kept,
            None => tokio::time::timeout_at(deadline, self.exposed(service))
                .await
                .map_err(|_| timed_out())?,
        };
        if candidates.is_empty() {
            return Err(gateway_failure(
                ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
                format!("no service named {service:?} is available through this gateway"),
            ));
        }
        let mut last = None;
        let mut args = args;
        let count = candidates.len();
        for (i, binding) in candidates.into_iter().enumerate() {
            let positional = match &mut args {
                // The last candidate takes the arguments rather than a copy.
                Args::Positional(items) if i + 1 == count => std::mem::take(items),
                Args::Positional(items) => items.clone(),
                Args::Named(map) => {
                    let descriptor =
                        tokio::time::timeout_at(deadline, self.descriptor(&binding, left()))
                            .await
                            .map_err(|_| timed_out())??;
                    by_name(&descriptor, method, map)?
                }
            };
            let left = left();
            if left.is_zero() {
                return Err(timed_out());
            }
            let outcome = self
                .node
                .endpoint(&binding)
                .with_timeout(left)
                .call_dynamic(method, Value::Array(positional))
                .await;
            match outcome {
                // Refused before delivery (the service stopped meanwhile): the next one.
                Err(f) if f.code == ErrorCode::CLIENT_SERVICE_UNAVAILABLE => last = Some(f),
                outcome => return outcome,
            }
        }
        Err(last.unwrap_or_else(|| {
            gateway_failure(
                ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
                format!("no service named {service:?} is available"),
            )
        }))
    }

    /// The descriptor of one service (cached by agent: what a service exports does not
    /// change while it runs).
    pub(crate) async fn descriptor(
        &self,
        binding: &Binding,
        timeout: Duration,
    ) -> Result<Arc<ServiceDescriptor>, Failure> {
        let agent = binding.agent();
        if let Some(d) = lock(&self.descriptors).get(&agent) {
            return Ok(d.clone());
        }
        let descriptor = Arc::new(
            self.node
                .endpoint(binding)
                .with_timeout(timeout)
                .describe()
                .await?,
        );
        let mut cache = lock(&self.descriptors);
        if cache.len() >= DESCRIPTOR_CACHE {
            cache.clear();
        }
        cache.insert(agent, descriptor.clone());
        Ok(descriptor)
    }

    /// The node name of a process: this node's, or asked of that node once.
    pub(crate) async fn node_name(&self, process: ProcessId) -> String {
        if process == self.node.process() {
            return self.node.name().to_owned();
        }
        if let Some(name) = lock(&self.node_names).get(&process) {
            return name.clone();
        }
        let call = self.node.introspect(process);
        match tokio::time::timeout(Duration::from_secs(2), call).await {
            Ok(Ok(info)) => {
                let mut names = lock(&self.node_names);
                if names.len() >= DESCRIPTOR_CACHE {
                    names.clear();
                }
                names.insert(process, info.node.clone());
                info.node
            }
            _ => String::new(),
        }
    }
}

/// A mutex's guard, also after a panic elsewhere (the maps stay consistent: each update is
/// one insert or clear).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Arguments by name put in the method's parameter order. A parameter left out is `null`
/// when its type is an `Option`, and an error otherwise; a name the method does not have is
/// an error (56); a method the service does not export is 55.
pub(crate) fn by_name(
    descriptor: &ServiceDescriptor,
    method: &str,
    map: &serde_json::Map<String, Value>,
) -> Result<Vec<Value>, Failure> {
    let Some(m) = descriptor.method(method) else {
        return Err(gateway_failure(
            ErrorCode::SERVER_METHOD_UNAVAILABLE,
            format!("{} exports no method {method:?}", descriptor.name),
        ));
    };
    if let Some(unknown) = map.keys().find(|k| !m.params.iter().any(|p| &p.name == *k)) {
        return Err(gateway_failure(
            ErrorCode::SERVER_PARAMETERS_INCORRECT,
            format!("{} has no parameter {unknown:?}", m.signature()),
        ));
    }
    m.params
        .iter()
        .map(|p| match map.get(&p.name) {
            Some(v) => Ok(v.clone()),
            None if p.ty.starts_with("Option<") => Ok(Value::Null),
            None => Err(gateway_failure(
                ErrorCode::SERVER_PARAMETERS_INCORRECT,
                format!("{} needs the argument {:?}", m.signature(), p.name),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn descriptor() -> ServiceDescriptor {
        serde_json::from_value(json!({
            "name": "rpc",
            "methods": [{"name": "subtract", "returns": "i64",
                         "params": [{"name": "minuend", "type": "i64"},
                                    {"name": "subtrahend", "type": "i64"},
                                    {"name": "note", "type": "Option<String>"}]}]
        }))
        .unwrap()
    }

    #[test]
    fn named_arguments_follow_the_parameter_order() {
        let map = json!({"subtrahend": 23, "minuend": 42});
        let args = by_name(&descriptor(), "subtract", map.as_object().unwrap()).unwrap();
        assert_eq!(args, vec![json!(42), json!(23), Value::Null]);
    }

    #[test]
    fn a_missing_or_unknown_name_is_56_and_an_unknown_method_55() {
        let d = descriptor();
        let missing = by_name(&d, "subtract", json!({"minuend": 1}).as_object().unwrap());
        assert_eq!(
            missing.unwrap_err().code,
            ErrorCode::SERVER_PARAMETERS_INCORRECT
        );
        let unknown = by_name(&d, "subtract", json!({"x": 1}).as_object().unwrap());
        let unknown = unknown.unwrap_err();
        assert_eq!(unknown.code, ErrorCode::SERVER_PARAMETERS_INCORRECT);
        assert!(
            unknown.description.contains("\"x\""),
            "{}",
            unknown.description
        );
        let method = by_name(&d, "add", &serde_json::Map::new()).unwrap_err();
        assert_eq!(method.code, ErrorCode::SERVER_METHOD_UNAVAILABLE);
    }

    #[test]
    fn arguments_are_an_array_an_object_or_nothing() {
        assert!(matches!(Args::from_json(json!([1])), Ok(Args::Positional(v)) if v.len() == 1));
        assert!(matches!(Args::from_json(json!({})), Ok(Args::Named(_))));
        assert!(matches!(Args::from_json(Value::Null), Ok(Args::Positional(v)) if v.is_empty()));
        let e = Args::from_json(json!("x")).unwrap_err();
        assert_eq!(e.code, ErrorCode::SERVER_PARAMETERS_INCORRECT);
    }
}
