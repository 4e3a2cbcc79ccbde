//! What `#[netsvc::methods]` generates calls into: turning arguments into a method's
//! parameters and its return value into a reply.

use serde::de::DeserializeOwned;

use super::responder::Delayed;
use crate::delivery::Outcome;
use crate::failure::{ErrorCode, Failure};
use crate::payload::{Content, Payload};

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
        Reply::Now(Err(failure))
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
        Reply::Now(self.map(Payload::new).map_err(Into::into))
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
    // The usual case, a typed client in this process: a tuple of scalars copied out, or
    // the tuple itself moved out.
    if let Some(args) = args.scalar::<A>() {
        return Ok(args);
    }
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
