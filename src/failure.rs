//! Failures and OSE's numeric error codes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::ConversationId;

/// A numeric failure code. netsvc uses OSE's codes: 40–48 for client-side and 50–58 for
/// server-side errors; applications may use any other value for their own failures.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ErrorCode(pub u32);

macro_rules! codes {
    ($($name:ident = $value:literal, $message:literal;)*) => {
        impl ErrorCode {
            $(
                #[doc = $message]
                pub const $name: ErrorCode = ErrorCode($value);
            )*

            /// OSE's name of the code (`CLIENT_REQUEST_TIMEOUT`), if it is one of OSE's.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// OSE's standard description of the code, if it is one of OSE's.
            pub fn message(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($message),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    CLIENT_UNKNOWN_ERROR = 40, "Unknown client error";
    CLIENT_RESOURCE_UNAVAILABLE = 41, "Client resource unavailable";
    CLIENT_REQUEST_ENCODING_ERROR = 42, "Request encoding error";
    CLIENT_RESPONSE_HEADERS_INVALID = 43, "Response headers invalid";
    CLIENT_RESPONSE_DECODING_ERROR = 44, "Response decoding error";
    CLIENT_SERVICE_ADDRESS_INVALID = 45, "Service address invalid";
    CLIENT_SERVICE_UNAVAILABLE = 46, "Service unavailable";
    CLIENT_REQUEST_TIMEOUT = 47, "Request timeout";
    CLIENT_REQUEST_ABORTED = 48, "Request aborted";
    SERVER_UNKNOWN_ERROR = 50, "Unknown server error";
    SERVER_RESOURCE_UNAVAILABLE = 51, "Server resource unavailable";
    SERVER_RESPONSE_ENCODING_ERROR = 52, "Response encoding error";
    SERVER_REQUEST_HEADERS_INVALID = 53, "Request headers invalid";
    SERVER_REQUEST_DECODING_ERROR = 54, "Request decoding error";
    SERVER_METHOD_UNAVAILABLE = 55, "Method unavailable";
    SERVER_PARAMETERS_INCORRECT = 56, "Parameters incorrect";
    SERVER_APPLICATION_ERROR = 57, "Application error";
    SERVER_RESPONSE_ABORTED = 58, "Response aborted";
}

impl ErrorCode {
    /// Whether the code is one of OSE's client-side codes (40–48).
    pub fn is_client(self) -> bool {
        (40..=48).contains(&self.0)
    }

    /// Whether the code is one of OSE's server-side codes (50–58).
    pub fn is_server(self) -> bool {
        (50..=58).contains(&self.0)
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({})", self.0),
            None => write!(f, "ErrorCode({})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} {name}", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The origin of failures that netsvc itself produces.
pub const NETSVC_ORIGIN: &str = "netsvc";

/// A request that failed: a code, a description, who produced it (`"netsvc"` for the
/// framework, the service name for application failures) and free-form details.
///
/// The fields are those of [`FailureInfo`], read and written through `Deref`
/// (`failure.code`, `failure.description`). They sit behind one box, so that a
/// `Result<T, Failure>` is no wider than `T` and a pointer: every call returns one, and the
/// success of a call should not move a failure's hundred bytes through each future that
/// passes it on. A failure is the rare case; its one allocation is paid there.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
#[error("request failed ({}): {}", .0.code, .0.description)]
pub struct Failure(Box<FailureInfo>);

/// What a [`Failure`] says; a failure derefs to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureInfo {
    /// The numeric code.
    pub code: ErrorCode,
    /// Short human-readable description.
    pub description: String,
    /// Who produced the failure.
    pub origin: String,
    /// Further details (a panic message, for instance).
    pub details: String,
    /// The conversation this failure answers, once known.
    pub conversation: Option<ConversationId>,
}

impl std::ops::Deref for Failure {
    type Target = FailureInfo;
    fn deref(&self) -> &FailureInfo {
        &self.0
    }
}

impl std::ops::DerefMut for Failure {
    fn deref_mut(&mut self) -> &mut FailureInfo {
        &mut self.0
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<FailureInfo> for Failure {
    fn from(info: FailureInfo) -> Failure {
        Failure(Box::new(info))
    }
}

impl Failure {
    /// An application failure; its origin is filled in with the service name when it is
    /// returned from a method.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Failure::from(FailureInfo {
            code,
            description: description.into(),
            origin: String::new(),
            details: String::new(),
            conversation: None,
        })
    }

    /// A failure produced by netsvc itself.
    pub(crate) fn netsvc(code: ErrorCode, description: impl Into<String>) -> Self {
        Failure::new(code, description).with_origin(NETSVC_ORIGIN)
    }

    /// What it says, unboxed.
    pub fn into_info(self) -> FailureInfo {
        *self.0
    }

    /// The same failure with `details`.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The same failure with `origin`.
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = origin.into();
        self
    }

    pub(crate) fn with_default_origin(mut self, origin: &str) -> Self {
        self.set_default_origin(origin);
        self
    }

    pub(crate) fn set_default_origin(&mut self, origin: &str) {
        if self.origin.is_empty() {
            self.origin = origin.to_owned();
        }
    }

    pub(crate) fn with_conversation(mut self, conversation: ConversationId) -> Self {
        self.set_conversation(conversation);
        self
    }

    pub(crate) fn set_conversation(&mut self, conversation: ConversationId) {
        self.conversation.get_or_insert(conversation);
    }
}

/// The situations in which netsvc itself refuses or fails a request, and the code each one
/// gets: the one table of netsvc's own failures. The layers that detect a situation (the
/// delivery layer, a bridge, the request layer) name it; the code and the wording are chosen
/// here, once.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The requester cannot be seen beyond the next link (its audience), so its answer could
    /// never come back.
    RequesterHidden {
        /// `name/agent` of the requester.
        requester: String,
        /// The requester's audience.
        audience: String,
        /// Where it cannot be answered: "from another process", "in exchange group …".
        beyond: String,
        /// `name/agent` of the target.
        target: String,
    },
    /// The requester is not known on the way to the target.
    RequesterUnknown {
        /// The requester's agent.
        requester: String,
    },
    /// No service of that identity is known here.
    TargetUnknown {
        /// The target's agent.
        target: String,
    },
    /// The target has stopped, or its route went down.
    TargetGone {
        /// `name/agent` of the target.
        target: String,
    },
    /// The target's inbox is full.
    InboxFull {
        /// `name/agent` of the target.
        target: String,
    },
    /// A request or answer is over a link's frame size cap.
    TooLarge {
        /// What was too large.
        what: Oversized,
        /// The link's cap, in bytes.
        max: usize,
    },
    /// A request or answer could not be encoded.
    Unencodable {
        /// What could not be encoded.
        what: Oversized,
        /// Why.
        error: String,
    },
    /// No method has a name this long.
    MethodNameTooLong {
        /// The name's length, in bytes.
        len: usize,
    },
    /// The target was withdrawn before it answered.
    WithdrawnBeforeResponse {
        /// `name/agent` of the target.
        target: String,
    },
    /// The link a request went out on went down before its answer came back.
    ConnectionLost,
}

/// What a [`Refusal::TooLarge`] or [`Refusal::Unencodable`] was about.
#[derive(Debug)]
pub(crate) enum Oversized {
    /// A request sent by a service of this process.
    Request {
        /// The method called.
        method: String,
        /// `name/agent` of the target.
        target: String,
    },
    /// A request being relayed.
    RelayedRequest {
        /// `name/agent` of the target.
        target: String,
    },
    /// The answer of a service of this process.
    Response,
    /// An answer being relayed.
    RelayedResponse,
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        use Oversized::*;
        let max_text = |max: usize| format!("over the link's frame size limit of {max} bytes");
        let (code, description) = match refusal {
            Refusal::RequesterHidden {
                requester,
                audience,
                beyond,
                target,
            } => (
                ErrorCode::CLIENT_SERVICE_ADDRESS_INVALID,
                format!(
                    "{requester} has audience {audience:?} and cannot be answered {beyond}; \
                     give it audience \"*\" to call {target}"
                ),
            ),
            Refusal::RequesterUnknown { requester } => (
                ErrorCode::CLIENT_SERVICE_ADDRESS_INVALID,
                format!(
                    "requester {requester} is not known on the way to the target, \
                     so it could not be answered"
                ),
            ),
            Refusal::TargetUnknown { target } => (
                ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
                format!("service {target} is not available"),
            ),
            Refusal::TargetGone { target } => (
                ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
                format!("service {target} is no longer available"),
            ),
            Refusal::InboxFull { target } => (
                ErrorCode::SERVER_RESOURCE_UNAVAILABLE,
                format!("service {target} is overloaded: its inbox is full"),
            ),
            Refusal::TooLarge { what, max } => match what {
                Request { method, target } => (
                    ErrorCode::CLIENT_REQUEST_ENCODING_ERROR,
                    format!(
                        "request {method} to {target} is too large: {}",
                        max_text(max)
                    ),
                ),
                RelayedRequest { target } => (
                    ErrorCode::SERVER_RESOURCE_UNAVAILABLE,
                    format!("request too large to relay to {target}: {}", max_text(max)),
                ),
                Response => (
                    ErrorCode::SERVER_RESPONSE_ENCODING_ERROR,
                    format!("response too large: {}", max_text(max)),
                ),
                RelayedResponse => (
                    ErrorCode::SERVER_RESPONSE_ENCODING_ERROR,
                    format!("response too large to relay: {}", max_text(max)),
                ),
            },
            Refusal::Unencodable { what, error } => match what {
                Request { method, .. } => (
                    ErrorCode::CLIENT_REQUEST_ENCODING_ERROR,
                    format!("arguments of {method}: {error}"),
                ),
                RelayedRequest { .. } => (ErrorCode::SERVER_RESOURCE_UNAVAILABLE, error),
                Response | RelayedResponse => (ErrorCode::SERVER_RESPONSE_ENCODING_ERROR, error),
            },
            Refusal::MethodNameTooLong { len } => (
                ErrorCode::SERVER_METHOD_UNAVAILABLE,
                format!(
                    "no method has a name of {len} bytes (the maximum is {})",
                    crate::names::MAX_NAME_LEN
                ),
            ),
            Refusal::WithdrawnBeforeResponse { target } => (
                ErrorCode::SERVER_APPLICATION_ERROR,
                format!("service {target} was withdrawn before responding"),
            ),
            Refusal::ConnectionLost => (
                ErrorCode::SERVER_APPLICATION_ERROR,
                "the connection to the service was lost before it responded".to_owned(),
            ),
        };
        Failure::netsvc(code, description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_ose_values_and_names() {
        assert_eq!(ErrorCode::CLIENT_UNKNOWN_ERROR.0, 40);
        assert_eq!(ErrorCode::CLIENT_SERVICE_UNAVAILABLE.0, 46);
        assert_eq!(ErrorCode::CLIENT_REQUEST_TIMEOUT.0, 47);
        assert_eq!(ErrorCode::CLIENT_REQUEST_ABORTED.0, 48);
        assert_eq!(ErrorCode::SERVER_UNKNOWN_ERROR.0, 50);
        assert_eq!(ErrorCode::SERVER_REQUEST_DECODING_ERROR.0, 54);
        assert_eq!(ErrorCode::SERVER_METHOD_UNAVAILABLE.0, 55);
        assert_eq!(ErrorCode::SERVER_PARAMETERS_INCORRECT.0, 56);
        assert_eq!(ErrorCode::SERVER_APPLICATION_ERROR.0, 57);
        assert_eq!(ErrorCode::SERVER_RESPONSE_ABORTED.0, 58);
        assert_eq!(ErrorCode(47).name(), Some("CLIENT_REQUEST_TIMEOUT"));
        assert_eq!(ErrorCode(55).message(), Some("Method unavailable"));
        assert_eq!(ErrorCode(49).name(), None);
        assert!(ErrorCode(44).is_client() && !ErrorCode(44).is_server());
        assert!(ErrorCode(58).is_server() && !ErrorCode(59).is_server());
        assert_eq!(ErrorCode(57).to_string(), "57 SERVER_APPLICATION_ERROR");
        assert_eq!(ErrorCode(1001).to_string(), "1001");
    }

    #[test]
    fn application_failures_take_the_service_as_origin_unless_given() {
        let f = Failure::new(ErrorCode(100), "out of range").with_default_origin("calculator");
        assert_eq!(f.origin, "calculator");
        let f = Failure::new(ErrorCode(100), "x")
            .with_origin("mine")
            .with_default_origin("calculator");
        assert_eq!(f.origin, "mine");
        let f = Failure::netsvc(ErrorCode::CLIENT_REQUEST_TIMEOUT, "slow").with_details("1s");
        assert_eq!((f.origin.as_str(), f.details.as_str()), ("netsvc", "1s"));
        assert_eq!(
            f.to_string(),
            "request failed (47 CLIENT_REQUEST_TIMEOUT): slow"
        );
    }

    #[test]
    fn a_failure_is_one_pointer_and_reads_as_its_fields() {
        assert_eq!(std::mem::size_of::<Failure>(), std::mem::size_of::<usize>());
        // What every call returns is no wider than its answer and a pointer.
        assert_eq!(
            std::mem::size_of::<Result<u64, Failure>>(),
            2 * std::mem::size_of::<usize>()
        );
        let mut f = Failure::new(ErrorCode(100), "out of range");
        f.details = "at 7".into();
        assert_eq!((f.code, f.details.as_str()), (ErrorCode(100), "at 7"));
        // The same encodings as the fields themselves, in JSON and bincode.
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["description"], "out of range");
        assert_eq!(serde_json::from_value::<Failure>(json).unwrap(), f.clone());
        let info = f.clone().into_info();
        let config = bincode::config::standard();
        assert_eq!(
            bincode::serde::encode_to_vec(&f, config).unwrap(),
            bincode::serde::encode_to_vec(&info, config).unwrap()
        );
        assert_eq!(Failure::from(info), f);
    }
}
