//! Requests: calls of exported methods, answered by a response or a [`Failure`].
//!
//! A client holds an [`Endpoint`] (a target by name or by binding, plus an optional timeout)
//! and calls it; the outcome is a future that does not borrow the caller, so a service can
//! spawn it on its own context without blocking its mailbox. `#[netsvc::methods]` generates a
//! typed client per service whose methods read like `calculator.multiply(2, 3).await`.
//!
//! What can go wrong, and the code the caller sees:
//!
//! | situation | code |
//! |---|---|
//! | no service of that name / the binding's service has stopped | `CLIENT_SERVICE_UNAVAILABLE` |
//! | no response within the call's timeout (the late response is dropped) | `CLIENT_REQUEST_TIMEOUT` |
//! | the response is not of the type the client expects | `CLIENT_RESPONSE_DECODING_ERROR` |
//! | the method is not exported | `SERVER_METHOD_UNAVAILABLE` |
//! | wrong number of arguments | `SERVER_PARAMETERS_INCORRECT` |
//! | arguments of the wrong type | `SERVER_REQUEST_DECODING_ERROR` |
//! | the target's inbox is full | `SERVER_RESOURCE_UNAVAILABLE` |
//! | the method panicked (the service keeps running) | `SERVER_APPLICATION_ERROR` |
//! | the target was withdrawn before answering | `SERVER_APPLICATION_ERROR` |
//! | a delayed response was dropped unanswered | `SERVER_RESPONSE_ABORTED` |
//! | the method returned an error | the error's own code |

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::failure::{ErrorCode, Failure};

use crate::binding::Binding;
use crate::ids::ConversationId;
use crate::inbox::{Delivery, Refused};
use crate::names::ServiceName;
use crate::node::Node;
use crate::payload::{Content, Format, Payload};

/// The outcome of a request as it travels back to its requester. The failure is boxed: an
/// outcome is moved several times per call, and a response should move a few words, not
/// the dozen of a `Failure`.
pub(crate) type Outcome = Result<Payload, Box<Failure>>;

/// Where a reply goes.
pub(crate) enum ReplyTo {
    /// The requester is in this process.
    Local(oneshot::Sender<Outcome>),
    /// The requester is behind a link; the answer is routed to it by agent.
    Remote {
        requester: Binding,
        conversation: u64,
        format: Format,
    },
}

impl ReplyTo {
    pub(crate) fn send(self, outcome: Outcome) {
        match self {
            // The requester may have given up (timeout): a late response is dropped.
            ReplyTo::Local(tx) => drop(tx.send(outcome)),
            ReplyTo::Remote {
                requester,
                conversation,
                format,
            } => crate::exchange::send_outcome(
                &requester,
                conversation,
                format,
                outcome.map_err(|f| *f),
            ),
        }
    }

    pub(crate) fn fail(self, failure: Failure) {
        self.send(Err(Box::new(failure)))
    }
}

/// A request as it sits in the target's inbox.
pub(crate) struct IncomingRequest {
    pub(crate) conversation: ConversationId,
    pub(crate) method: Cow<'static, str>,
    pub(crate) args: Payload,
    pub(crate) sender: Binding,
    pub(crate) reply: ReplyTo,
    /// The format a remote requester wants the response in (JSON for dynamic calls).
    pub(crate) reply_format: Format,
}

/// What the requester's side knows while a request is being served.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The conversation id.
    pub conversation: ConversationId,
    /// The method name.
    pub method: Cow<'static, str>,
    /// The requesting service.
    pub sender: Binding,
}

/// The target of a request: a service name (resolved at each call: local first, else the
/// one known longest) or one agent's binding.
#[derive(Debug, Clone)]
pub enum RequestTarget {
    /// Resolved through the registry at each call.
    Name(ServiceName),
    /// One agent; fastest, no registry hop.
    Binding(Binding),
}

/// Conversion into a [`RequestTarget`]: a service name (`&str`, `String`, [`ServiceName`],
/// validated) or a [`Binding`].
pub trait IntoRequestTarget {
    /// Converts, or explains why the name is invalid.
    fn into_request_target(self) -> Result<RequestTarget, crate::names::InvalidName>;
}

impl<T: crate::names::IntoName<ServiceName>> IntoRequestTarget for T {
    fn into_request_target(self) -> Result<RequestTarget, crate::names::InvalidName> {
        self.into_name().map(RequestTarget::Name)
    }
}
impl IntoRequestTarget for Binding {
    fn into_request_target(self) -> Result<RequestTarget, crate::names::InvalidName> {
        Ok(RequestTarget::Binding(self))
    }
}
impl IntoRequestTarget for &Binding {
    fn into_request_target(self) -> Result<RequestTarget, crate::names::InvalidName> {
        Ok(RequestTarget::Binding(self.clone()))
    }
}

/// A handle for calling one service. Cheap to clone; calls do not borrow it.
#[derive(Clone)]
pub struct Endpoint {
    node: Node,
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
    pub(crate) fn new(node: Node, sender: Binding, target: RequestTarget) -> Self {
        Endpoint {
            node,
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

    fn call_payload<R: DeserializeOwned + Send + Sync + 'static>(
        &self,
        method: Cow<'static, str>,
        args: Payload,
        reply_format: Format,
    ) -> Call<R> {
        let conversation = self.node.next_conversation();
        let timeout = self
            .timeout
            .map(|limit| (limit, Box::pin(tokio::time::sleep(limit))));
        let state = match &self.target {
            // The usual, fast case: the request is sent now, nothing is boxed but the timer.
            RequestTarget::Binding(binding) => {
                let request = Outgoing {
                    conversation,
                    method,
                    args,
                    sender: self.sender.clone(),
                    reply_format,
                };
                match request.send(binding) {
                    Ok(waiting) => State::Waiting(waiting),
                    Err(failure) => State::Failed(Some(failure)),
                }
            }
            RequestTarget::Name(name) => {
                let (node, name) = (self.node.clone(), name.clone());
                let request = Outgoing {
                    conversation,
                    method,
                    args,
                    sender: self.sender.clone(),
                    reply_format,
                };
                State::Resolving(Box::pin(async move {
                    match node.lookup_name(name.clone()).await.into_iter().next() {
                        Some(binding) => request.send(&binding),
                        None => Err(Failure::netsvc(
                            ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
                            format!("no service named {name:?}"),
                        )),
                    }
                }))
            }
        };
        Call {
            conversation,
            state,
            timeout,
            _response: PhantomData,
        }
    }
}

/// A request about to be sent.
struct Outgoing {
    conversation: ConversationId,
    method: Cow<'static, str>,
    args: Payload,
    sender: Binding,
    reply_format: Format,
}

/// A request sent, waiting for its outcome.
struct Waiting {
    rx: oneshot::Receiver<Outcome>,
    /// The target's identity (not its binding: no reference count to touch per call).
    target: crate::ids::AgentId,
    method: Cow<'static, str>,
}

impl Outgoing {
    fn send(self, target: &Binding) -> Result<Waiting, Failure> {
        let Outgoing {
            conversation,
            method,
            args,
            sender,
            reply_format,
        } = self;
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
            Ok(()) => Ok(Waiting {
                rx,
                target: target.agent(),
                method,
            }),
            Err(refused) => Err(refusal_failure(target, refused)),
        }
    }
}

/// The failure answering a request its target's inbox (or link) refused.
pub(crate) fn refusal_failure(target: &Binding, refused: Refused) -> Failure {
    match refused {
        Refused::Closed => Failure::netsvc(
            ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
            format!("service {target} is no longer available"),
        ),
        Refused::Full => Failure::netsvc(
            ErrorCode::SERVER_RESOURCE_UNAVAILABLE,
            format!("service {target} is overloaded: its inbox is full"),
        ),
    }
}

type Resolving = Pin<Box<dyn Future<Output = Result<Waiting, Failure>> + Send>>;

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
    timeout: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    _response: PhantomData<fn() -> R>,
}

impl<R> Call<R> {
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
        let done =
            |r: Result<R, Failure>| Poll::Ready(r.map_err(|f| f.with_conversation(conversation)));
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
                    Poll::Ready(Ok(waiting)) => this.state = State::Waiting(waiting),
                    Poll::Ready(Err(failure)) => this.state = State::Failed(Some(failure)),
                    Poll::Pending => break,
                },
                State::Waiting(waiting) => {
                    let outcome = match Pin::new(&mut waiting.rx).poll(cx) {
                        Poll::Ready(outcome) => outcome,
                        Poll::Pending => break,
                    };
                    let (target, method) = (&waiting.target, &waiting.method);
                    let result = match outcome {
                        Ok(Ok(payload)) => payload.take::<R>().map_err(|e| {
                            Failure::netsvc(
                                ErrorCode::CLIENT_RESPONSE_DECODING_ERROR,
                                format!("response of agent {target} to {method}: {e}"),
                            )
                        }),
                        Ok(Err(failure)) => Err(*failure),
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

/// The shared slot of a suspended response: held by the [`Responder`] and by the serving
/// service, so whichever acts first answers and a stopping service can fail what is left.
pub(crate) type ReplySlot = Arc<Mutex<Option<ReplyTo>>>;

pub(crate) fn take_slot(slot: &ReplySlot) -> Option<ReplyTo> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Answers a suspended (delayed) request later, from anywhere: `resolve` or `fail`.
/// Dropping it unanswered fails the request with `SERVER_RESPONSE_ABORTED`; if the serving
/// service stops first, the request fails with `SERVER_APPLICATION_ERROR`.
pub struct Responder<T> {
    slot: ReplySlot,
    conversation: ConversationId,
    origin: String,
    _type: PhantomData<fn(T)>,
}

/// Returned by a method that suspended its response (see
/// [`ServiceContext::suspend_response`](crate::ServiceContext::suspend_response)).
pub struct Delayed<T>(PhantomData<fn() -> T>);

impl<T> std::fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Delayed")
    }
}

impl<T: Content> Responder<T> {
    pub(crate) fn new(
        slot: ReplySlot,
        conversation: ConversationId,
        origin: String,
    ) -> (Self, Delayed<T>) {
        (
            Responder {
                slot,
                conversation,
                origin,
                _type: PhantomData,
            },
            Delayed(PhantomData),
        )
    }

    /// The conversation id of the suspended request.
    pub fn conversation(&self) -> ConversationId {
        self.conversation
    }

    /// Sends `value` as the response.
    pub fn resolve(self, value: T) {
        if let Some(reply) = take_slot(&self.slot) {
            reply.send(Ok(Payload::new(value)));
        }
    }

    /// Answers with a failure instead.
    pub fn fail(self, failure: impl Into<Failure>) {
        if let Some(reply) = take_slot(&self.slot) {
            let failure = failure
                .into()
                .with_default_origin(&self.origin)
                .with_conversation(self.conversation);
            reply.fail(failure);
        }
    }

    /// Sends `Ok` as the response and `Err` as a failure.
    pub fn complete<E: Into<Failure>>(self, outcome: Result<T, E>) {
        match outcome {
            Ok(v) => self.resolve(v),
            Err(e) => self.fail(e),
        }
    }
}

impl<T> Drop for Responder<T> {
    fn drop(&mut self) {
        if let Some(reply) = take_slot(&self.slot) {
            reply.fail(
                Failure::netsvc(
                    ErrorCode::SERVER_RESPONSE_ABORTED,
                    "the delayed response was dropped without an answer",
                )
                .with_conversation(self.conversation),
            );
        }
    }
}

impl<T> std::fmt::Debug for Responder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Responder({})", self.conversation)
    }
}

/// How a dispatched method answered.
#[doc(hidden)]
pub enum Reply {
    /// Answer now.
    Now(Outcome),
    /// The method suspended its response.
    Suspended,
}

impl Reply {
    /// Answer now with `failure`.
    pub fn failure(failure: Failure) -> Self {
        Reply::Now(Err(Box::new(failure)))
    }
}

/// Turns a method's return value into a reply (used by `#[netsvc::methods]`).
#[doc(hidden)]
pub trait IntoReply {
    fn into_reply(self) -> Reply;
}

/// Wraps a plain (infallible) return value.
#[doc(hidden)]
pub struct Plain<T>(pub T);

impl<T: Content> IntoReply for Plain<T> {
    fn into_reply(self) -> Reply {
        Reply::Now(Ok(Payload::new(self.0)))
    }
}

impl<T: Content, E: Into<Failure>> IntoReply for Result<T, E> {
    fn into_reply(self) -> Reply {
        Reply::Now(self.map(Payload::new).map_err(|e| Box::new(e.into())))
    }
}

impl<T> IntoReply for Delayed<T> {
    fn into_reply(self) -> Reply {
        Reply::Suspended
    }
}

/// Decodes a method's arguments (used by `#[netsvc::methods]`): checks the count of a JSON
/// argument array, then the types.
#[doc(hidden)]
pub fn decode_args<A: DeserializeOwned + Send + Sync + 'static>(
    args: Payload,
    arity: usize,
    method: &str,
) -> Result<A, Failure> {
    // The usual case, a typed client in this process: the tuple itself, moved out.
    if args.get::<A>().is_some() {
        return args.take::<A>().map_err(|e| {
            Failure::netsvc(
                ErrorCode::SERVER_REQUEST_DECODING_ERROR,
                format!("arguments of {method}: {e}"),
            )
        });
    }
    // JSON arguments that crossed a link arrive as bytes: view them as a JSON value first so
    // the argument count can be checked.
    let args = if args.get::<serde_json::Value>().is_none()
        && args.wire_format() == crate::payload::Format::Json
    {
        match args.to_json() {
            Ok(value) => Payload::new(value),
            Err(e) => {
                return Err(Failure::netsvc(
                    ErrorCode::SERVER_REQUEST_DECODING_ERROR,
                    format!("arguments of {method}: {e}"),
                ))
            }
        }
    } else {
        args
    };
    if let Some(serde_json::Value::Array(items)) = args.get::<serde_json::Value>() {
        if items.len() != arity {
            return Err(Failure::netsvc(
                ErrorCode::SERVER_PARAMETERS_INCORRECT,
                format!(
                    "{method} expects {arity} argument(s), received {}",
                    items.len()
                ),
            ));
        }
        if arity == 0 {
            // `()` decodes from JSON `null`, not from `[]`.
            return args_from_json(serde_json::Value::Null, method);
        }
    }
    args.take::<A>().map_err(|e| {
        Failure::netsvc(
            ErrorCode::SERVER_REQUEST_DECODING_ERROR,
            format!("arguments of {method}: {e}"),
        )
    })
}

fn args_from_json<A: DeserializeOwned>(
    value: serde_json::Value,
    method: &str,
) -> Result<A, Failure> {
    serde_json::from_value(value).map_err(|e| {
        Failure::netsvc(
            ErrorCode::SERVER_REQUEST_DECODING_ERROR,
            format!("arguments of {method}: {e}"),
        )
    })
}

/// The failure for a method name that is not exported.
#[doc(hidden)]
pub fn method_unavailable(service: &str, method: &str) -> Failure {
    Failure::netsvc(
        ErrorCode::SERVER_METHOD_UNAVAILABLE,
        format!("service {service:?} exports no method {method:?}"),
    )
}
