//! What a service exports, as data: its [`ServiceDescriptor`], the answer to the reserved
//! request [`DESCRIBE_METHOD`]. Plain serde values (JSON for tools); `#[netsvc::methods]` records
//! the methods as [`MethodSpec`]s, static text, turned into descriptors only when asked.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::AgentId;
use crate::names::{ServiceName, Subject};

/// The reserved method name that every service answers with its [`ServiceDescriptor`].
///
/// Rust identifiers cannot start with `$`, so no exported method can take this name. The
/// request takes no arguments (any it carries are ignored). It is answered before the
/// service's own dispatch, by netsvc, for every service, whether it exports methods or not.
pub const DESCRIBE_METHOD: &str = "$describe";

/// What one service exports and publishes, as data: the answer to [`DESCRIBE_METHOD`].
///
/// Every service answers it: its methods are those `#[netsvc::methods]` exports (name,
/// parameters with their Rust types as written, result type, whether the call can fail,
/// whether the answer is delayed, the first line of the doc comment), and its subjects are
/// those it publishes on, each with its subscribers and whether a report on it is cached.
/// Tools without Rust types (the command line, the gateway, a web console) list and call
/// methods from it; Rust code gets it with [`Endpoint::describe`](crate::Endpoint::describe) or
/// [`Node::describe`](crate::Node::describe).
///
/// Its JSON form:
///
/// ```json
/// {
///   "name": "calculator",
///   "agent": "6f0c1f3e-8f7e-4b9a-9d4c-0a4f3b1f2c11",
///   "methods": [
///     {"name": "multiply", "params": [{"name": "a", "type": "i64"}, {"name": "b", "type": "i64"}],
///      "returns": "i64", "fallible": false, "delayed": false, "doc": "Multiplies two integers."}
///   ],
///   "subjects": [{"subject": "system.ctime", "cached": true, "subscribers": 1}]
/// }
/// ```
///
/// Types are the Rust types as written in the method's signature, as token text without spaces
/// around `<`, `>` and `::` (`Vec<String>`, `Option<(u8, String)>`,
/// `std::collections::HashMap<String, i64>`): they tell a person what to send; they are not
/// resolved (an alias stays an alias, a path stays as short or long as written). Fields a reader
/// does not know are ignored and missing optional ones take their defaults, so descriptors from
/// nodes of other versions still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServiceDescriptor {
    /// The service's name (empty for an anonymous service).
    pub name: ServiceName,
    /// The agent that answered; `None` only in a descriptor not made by a running service.
    #[serde(default)]
    pub agent: Option<AgentId>,
    /// Its exported methods, in the order written; empty without `#[netsvc::methods]`.
    #[serde(default)]
    pub methods: Vec<MethodDescriptor>,
    /// The subjects it publishes on, sorted: every subject with a cached report, and the
    /// (at most 256) distinct subjects it has recorded publishing on, cached or not; at most
    /// [`MAX_DESCRIBED_SUBJECTS`] of them (the first in order).
    #[serde(default)]
    pub subjects: Vec<SubjectInfo>,
    /// How many more subjects there were beyond [`MAX_DESCRIBED_SUBJECTS`].
    #[serde(default)]
    pub subjects_left_out: usize,
}

/// The most subjects a descriptor lists: a publisher caching a report per device may hold far
/// more, and describing them all would be a cost any peer could make it pay at will.
pub const MAX_DESCRIBED_SUBJECTS: usize = 1000;

impl ServiceDescriptor {
    /// The exported method named `name`, if there is one.
    pub fn method(&self, name: &str) -> Option<&MethodDescriptor> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// One exported method.
///
/// Its [`Display`](fmt::Display) is its signature, as [`MethodDescriptor::signature`] gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MethodDescriptor {
    /// The name it is called by.
    pub name: String,
    /// Its parameters, in order (the service's context, if taken, is not one).
    #[serde(default)]
    pub params: Vec<ParamDescriptor>,
    /// The type of the value the caller gets: `T` for `T`, `Result<T, E>` and `Delayed<T>`;
    /// `()` when the method returns nothing.
    pub returns: String,
    /// Whether it returns a `Result`, that is, may answer with an application failure.
    #[serde(default)]
    pub fallible: bool,
    /// Whether it returns `Delayed<T>`, answering later. To a caller it is like any other
    /// method, only slower.
    #[serde(default)]
    pub delayed: bool,
    /// The first line of its doc comment, trimmed; `None` without one.
    #[serde(default)]
    pub doc: Option<String>,
}

impl MethodDescriptor {
    /// The method's signature as the command line prints it: `multiply(a: i64, b: i64) -> i64`;
    /// `divide(a: i64, b: i64) -> Result<i64>` for a fallible one (the error is always a
    /// failure, so it is not named); `reset()` for one that returns nothing (`reset() ->
    /// Result<()>` if it can fail). Whether the method is delayed does not show: the caller
    /// sees no difference.
    pub fn signature(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for MethodDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, param) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", param.name, param.ty)?;
        }
        f.write_str(")")?;
        if self.fallible {
            write!(f, " -> Result<{}>", self.returns)
        } else if self.returns != "()" {
            write!(f, " -> {}", self.returns)
        } else {
            Ok(())
        }
    }
}

/// One parameter of an exported method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParamDescriptor {
    /// Its name as written (`argN`, counting from 0, for a pattern that is not a name).
    pub name: String,
    /// Its Rust type as written; `"type"` in JSON.
    #[serde(rename = "type")]
    pub ty: String,
}

/// One subject a service publishes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SubjectInfo {
    /// The subject.
    pub subject: Subject,
    /// Whether a report on it is cached now (a late subscriber gets it at once).
    pub cached: bool,
    /// How many subscribers have a pattern that matches it now.
    pub subscribers: usize,
}

impl SubjectInfo {
    /// A subject with its cache state and subscriber count.
    pub(crate) fn new(subject: Subject, cached: bool, subscribers: usize) -> Self {
        SubjectInfo {
            subject,
            cached,
            subscribers,
        }
    }
}

/// An exported method as `#[netsvc::methods]` records it: static text, so that describing a
/// service allocates only when asked to. Not public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct MethodSpec {
    /// The method's name.
    pub name: &'static str,
    /// Its parameters: name and type.
    pub params: &'static [(&'static str, &'static str)],
    /// The type of the value the caller gets.
    pub returns: &'static str,
    /// Whether it returns a `Result`.
    pub fallible: bool,
    /// Whether it returns `Delayed<T>`.
    pub delayed: bool,
    /// The first line of its doc comment.
    pub doc: Option<&'static str>,
}

impl MethodSpec {
    /// The method's descriptor.
    pub fn describe(&self) -> MethodDescriptor {
        MethodDescriptor {
            name: self.name.to_owned(),
            params: self
                .params
                .iter()
                .map(|(name, ty)| ParamDescriptor {
                    name: (*name).to_owned(),
                    ty: (*ty).to_owned(),
                })
                .collect(),
            returns: self.returns.to_owned(),
            fallible: self.fallible,
            delayed: self.delayed,
            doc: self.doc.map(str::to_owned),
        }
    }
}

impl ServiceDescriptor {
    /// The descriptor of the service `name`, agent `agent`, exporting `methods`, publishing on
    /// `subjects`.
    pub(crate) fn new(
        name: ServiceName,
        agent: AgentId,
        methods: &[MethodSpec],
        (subjects, subjects_left_out): (Vec<SubjectInfo>, usize),
    ) -> Self {
        ServiceDescriptor {
            name,
            agent: Some(agent),
            methods: methods.iter().map(MethodSpec::describe).collect(),
            subjects,
            subjects_left_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIVIDE: MethodSpec = MethodSpec {
        name: "divide",
        params: &[("a", "i64"), ("b", "i64")],
        returns: "i64",
        fallible: true,
        delayed: false,
        doc: Some("Divides."),
    };

    fn method(name: &'static str, returns: &'static str, fallible: bool) -> MethodDescriptor {
        MethodSpec {
            name,
            params: &[],
            returns,
            fallible,
            delayed: false,
            doc: None,
        }
        .describe()
    }

    #[test]
    fn signatures_read_like_rust() {
        assert_eq!(
            DIVIDE.describe().signature(),
            "divide(a: i64, b: i64) -> Result<i64>"
        );
        assert_eq!(
            method("now", "String", false).signature(),
            "now() -> String"
        );
        assert_eq!(method("reset", "()", false).signature(), "reset()");
        assert_eq!(
            method("reset", "()", true).signature(),
            "reset() -> Result<()>"
        );
    }

    #[test]
    fn the_json_form_names_the_type_and_reads_back() {
        let descriptor = ServiceDescriptor::new(
            ServiceName::new("calculator").unwrap(),
            AgentId::random(),
            &[DIVIDE],
            (
                vec![SubjectInfo::new(Subject::new("a.b").unwrap(), true, 2)],
                0,
            ),
        );
        let json = serde_json::to_value(&descriptor).unwrap();
        assert_eq!(json["methods"][0]["params"][1]["type"], "i64");
        assert_eq!(json["methods"][0]["doc"], "Divides.");
        assert_eq!(json["subjects"][0]["subject"], "a.b");
        let back: ServiceDescriptor = serde_json::from_value(json).unwrap();
        assert_eq!(back, descriptor);
    }

    #[test]
    fn unknown_fields_are_ignored_and_optional_ones_default() {
        let json = serde_json::json!({
            "name": "x",
            "methods": [{"name": "f", "returns": "()", "since": "0.2"}],
            "groups": ["later"],
        });
        let read: ServiceDescriptor = serde_json::from_value(json).unwrap();
        assert_eq!(read.agent, None);
        assert!(read.subjects.is_empty());
        assert_eq!(read.method("f").unwrap().signature(), "f()");
    }
}
