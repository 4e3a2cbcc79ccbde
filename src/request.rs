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

mod call;
mod dispatch;
mod measure;
mod responder;

use std::borrow::Cow;

pub(crate) use call::Calls;
pub use call::{Call, Endpoint};
pub use dispatch::{decode_args, method_unavailable, IntoReply, Plain, Reply};
pub(crate) use measure::enable as enable_call_metrics;
pub(crate) use responder::{take_slot, ReplySlot};
pub use responder::{Delayed, Responder};

use crate::delivery::Binding;
use crate::ids::ConversationId;
use crate::names::ServiceName;

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
