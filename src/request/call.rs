//! Calling a service: the [`Endpoint`] a caller holds and the [`Call`] future of one request.

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix::Addr;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::measure::{CallMetrics, Measured};
use super::RequestTarget;
use crate::delivery::{refusal, Binding, Delivery, IncomingRequest, Location, Outcome, ReplyTo};
use crate::descriptor::{ServiceDescriptor, DESCRIBE_METHOD};
use crate::failure::{ErrorCode, Failure};
use crate::ids::{AgentId, ConversationId, ConversationIds, ProcessId};
use crate::payload::{Content, Format, Payload};
use crate::registry::{Lookup, Registry};

/// What endpoints need to make calls: the registry (to resolve names), the node's
/// conversation ids and its per-call metrics. One per node, shared by its endpoints.
#[derive(Debug)]
pub(crate) struct Calls {
    registry: Addr<Registry>,
    conversations: ConversationIds,
    metrics: CallMetrics,
}

impl Calls {
    pub(crate) fn new(registry: Addr<Registry>, process: ProcessId, node: &str) -> Self {
        Calls {
            registry,
            conversations: ConversationIds::new(process),
            metrics: CallMetrics::new(node),
        }
    }
}

/// A handle for calling one service. Cheap to clone; calls do not borrow it.
#[derive(Clone)]
pub struct Endpoint {
    calls: Arc<Calls>,
    sender: Binding,
    target: RequestTarget,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Endpoint {
    pub(crate) fn new(calls: Arc<Calls>, sender: Binding, target: RequestTarget) -> Self {
        Endpoint {
            calls,
            sender,
            target,
            timeout: None,
        }
    }

    /// The same endpoint with a per-call timeout (`CLIENT_REQUEST_TIMEOUT` when it passes).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The target.
    pub fn target(&self) -> &RequestTarget {
        &self.target
    }

    /// Calls `method` with `args` (a tuple of the method's parameters, `()` for none) and
    /// decodes the response as `R`.
    pub fn call<A: Content, R: DeserializeOwned + Send + Sync + 'static>(
        &self,
        method: impl Into<Cow<'static, str>>,
        args: A,
    ) -> Call<R> {
        self.call_payload(method.into(), Payload::new(args), Format::Bincode)
    }

    /// Calls `method` with JSON arguments (an array, one element per parameter) and returns
    /// the response as JSON. For tools without Rust types.
    pub fn call_dynamic(&self, method: &str, args: serde_json::Value) -> Call<serde_json::Value> {
        self.call_payload(
            Cow::Owned(method.to_owned()),
            Payload::new(args),
            Format::Json,
        )
    }

    /// Asks the target for its [`ServiceDescriptor`]: its exported methods and the subjects it
    /// publishes on. Every service answers, with or without exported methods; the request is
    /// the reserved method [`DESCRIBE_METHOD`], sent like any other (by name or by binding, in
    /// this process or across a link, with this endpoint's timeout).
    ///
    /// The answer is asked for as JSON, so that a descriptor from a node of another version
    /// still reads: fields it does not know are ignored, missing optional ones default.
    pub fn describe(&self) -> Call<ServiceDescriptor> {
        self.call_reserved(DESCRIBE_METHOD)
    }

    /// A call of a reserved method (no arguments), its answer asked for as JSON: fields a
    /// node of another version adds are ignored.
    pub(crate) fn call_reserved<R: DeserializeOwned + Send + Sync + 'static>(
        &self,
        method: &'static str,
    ) -> Call<R> {
        self.call_payload(Cow::Borrowed(method), Payload::new(()), Format::Json)
    }

    fn call_payload<R: DeserializeOwned + Send + Sync + 'static>(
        &self,
        method: Cow<'static, str>,
        args: Payload,
        reply_format: Format,
    ) -> Call<R> {
        let conversation = match &self.target {
            // Answered through a channel of this process: nothing to forge (see
            // `ConversationIds`).
            RequestTarget::Binding(b) if b.location() == Location::Local => {
                self.calls.conversations.next_local()
            }
            _ => self.calls.conversations.next(),
        };
        let service = match &self.target {
            RequestTarget::Binding(binding) => binding.name(),
            RequestTarget::Name(name) => name,
        };
        let measured = self.calls.metrics.start(service.as_str(), &method);
        let timeout = self
            .timeout
            .map(|limit| (limit, Box::pin(tokio::time::sleep(limit))));
        let sender = self.sender.clone();
        let state = match &self.target {
            // The usual, fast case: the request is sent now, nothing is boxed but the timer
            // (and the metrics' start, while they are on).
            RequestTarget::Binding(binding) => {
                send(binding, conversation, method, args, sender, reply_format)
            }
            RequestTarget::Name(name) => {
                let (registry, name) = (self.calls.registry.clone(), name.clone());
                State::Resolving(Box::pin(async move {
                    let found = registry.send(Lookup::Name(name.clone())).await;
                    match found.unwrap_or_default().into_iter().next() {
                        Some(binding) => {
                            send(&binding, conversation, method, args, sender, reply_format)
                        }
                        None => State::Failed(Some(Failure::netsvc(
                            ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
                            format!("no service named {name:?}"),
                        ))),
                    }
                }))
            }
        };
        Call {
            conversation,
            state,
            timeout,
            measured: measured.map(Box::new),
            _response: PhantomData,
        }
    }
}

/// A request sent, waiting for its outcome.
struct Waiting {
    rx: oneshot::Receiver<Outcome>,
    /// The target's identity (not its binding: no reference count to touch per call).
    target: AgentId,
    method: Cow<'static, str>,
}

/// Sends a request to `target`: the call is then waiting, or failed. Takes the request's
/// parts and returns the call's state, so that each is moved once: the parts into the
/// delivery, the state into the call.
#[inline]
fn send(
    target: &Binding,
    conversation: ConversationId,
    method: Cow<'static, str>,
    args: Payload,
    sender: Binding,
    reply_format: Format,
) -> State {
    let (tx, rx) = oneshot::channel();
    let request = IncomingRequest {
        conversation,
        method: method.clone(),
        args,
        sender,
        reply: ReplyTo::Local(tx),
        reply_format,
    };
    match target.push(Delivery::Request(request)) {
        Ok(()) => State::Waiting(Waiting {
            rx,
            target: target.agent(),
            method,
        }),
        Err(refused) => State::Failed(Some(refusal(target, refused).into())),
    }
}

/// Resolving a name, then sending: ends waiting or failed.
type Resolving = Pin<Box<dyn Future<Output = State> + Send>>;

enum State {
    Resolving(Resolving),
    Waiting(Waiting),
    Failed(Option<Failure>),
}

/// The outcome of one request, as a future. A request to a binding is sent when the call is
/// made; a request to a name is sent once the name is resolved, when the call is first
/// polled. Dropping the call abandons the request (its response will be dropped).
#[must_use = "a call's outcome is lost unless it is awaited or spawned"]
pub struct Call<R> {
    conversation: ConversationId,
    state: State,
    /// The limit and its timer.
    timeout: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    /// Set while per-call metrics are on; boxed, so that a call is small to move (it is
    /// moved into whatever awaits it).
    measured: Option<Box<Measured>>,
    _response: PhantomData<fn() -> R>,
}

impl<R> Call<R> {
    /// A call that fails with `failure` when awaited, without sending anything (its
    /// conversation id is 0, which no request sent gets... in all likelihood: see
    /// `ConversationIds`).
    pub(crate) fn failed(failure: Failure) -> Self {
        Call {
            conversation: ConversationId(0),
            state: State::Failed(Some(failure)),
            timeout: None,
            measured: None,
            _response: PhantomData,
        }
    }

    /// The conversation id of this request.
    pub fn conversation(&self) -> ConversationId {
        self.conversation
    }
}

impl<R: DeserializeOwned + Send + Sync + 'static> Future for Call<R> {
    type Output = Result<R, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let conversation = this.conversation;
        let measured = &mut this.measured;
        let mut done = |r: Result<R, Failure>| {
            let r = r.map_err(|f| f.with_conversation(conversation));
            if let Some(measured) = measured.take() {
                measured.finish(&r);
            }
            Poll::Ready(r)
        };
        loop {
            match &mut this.state {
                State::Failed(failure) => {
                    let failure = failure.take().unwrap_or_else(|| {
                        Failure::netsvc(
                            ErrorCode::CLIENT_UNKNOWN_ERROR,
                            "call polled after completion",
                        )
                    });
                    return done(Err(failure));
                }
                State::Resolving(fut) => match fut.as_mut().poll(cx) {
                    Poll::Ready(state) => this.state = state,
                    Poll::Pending => break,
                },
                State::Waiting(waiting) => {
                    let outcome = match Pin::new(&mut waiting.rx).poll(cx) {
                        Poll::Ready(outcome) => outcome,
                        Poll::Pending => break,
                    };
                    let (target, method) = (&waiting.target, &waiting.method);
                    let result = match outcome {
                        Ok(Ok(payload)) => match payload.scalar::<R>() {
                            Some(r) => Ok(r),
                            None => payload.take::<R>().map_err(|e| {
                                Failure::netsvc(
                                    ErrorCode::CLIENT_RESPONSE_DECODING_ERROR,
                                    format!("response of agent {target} to {method}: {e}"),
                                )
                            }),
                        },
                        Ok(Err(failure)) => Err(failure),
                        Err(_) => Err(Failure::netsvc(
                            ErrorCode::SERVER_APPLICATION_ERROR,
                            format!("agent {target} was withdrawn before responding to {method}"),
                        )),
                    };
                    this.state = State::Failed(None);
                    return done(result);
                }
            }
        }
        if let Some((limit, sleep)) = &mut this.timeout {
            if sleep.as_mut().poll(cx).is_ready() {
                let what = match &this.state {
                    State::Waiting(w) => {
                        format!(
                            "no response from agent {} to {} within {limit:?}",
                            w.target, w.method
                        )
                    }
                    _ => format!("no response within {limit:?}"),
                };
                this.state = State::Failed(None);
                return done(Err(Failure::netsvc(
                    ErrorCode::CLIENT_REQUEST_TIMEOUT,
                    what,
                )));
            }
        }
        Poll::Pending
    }
}

impl<R> std::fmt::Debug for Call<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Call({})", self.conversation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_small_to_move() {
        // It is moved into whatever awaits it, once per call: its state, its id, its
        // timeout, and its metrics behind a pointer.
        assert!(std::mem::size_of::<Call<u64>>() <= 11 * std::mem::size_of::<usize>());
    }
}
