//! # netsvc — a service-agent mesh on actix
//!
//! netsvc brings the model of OSE's `netsvc` to Rust. Every service is an actix actor whose
//! mailbox receives reports, requests, availability announcements, notices and timer ticks.
//! Services find each other through a per-node **registry** that announces when services
//! become available or are withdrawn and which groups they are in; they talk by publishing
//! **reports** on subjects (with wildcard subscriptions and cached last values for late
//! subscribers) and by sending **requests** to exported methods (responses, failures with
//! OSE's numeric codes, timeouts, delayed replies).
//!
//! ```no_run
//! use std::time::Duration;
//! use netsvc::prelude::*;
//!
//! #[derive(Service)]
//! #[service(name = "publisher")]
//! struct Publisher;
//!
//! impl Service for Publisher {
//!     fn started(&mut self, ctx: &mut ServiceContext<Self>) {
//!         ctx.publish_report("system.ctime", "now".to_string(), Lifetime::Forever);
//!         ctx.start_timer("heartbeat", Duration::from_secs(10));
//!     }
//!     fn timer(&mut self, _name: &str, ctx: &mut ServiceContext<Self>) {
//!         ctx.publish_report("system.time", "later".to_string(), Lifetime::None);
//!         ctx.start_timer("heartbeat", Duration::from_secs(10));
//!     }
//! }
//!
//! #[derive(Service)]
//! #[service(name = "calculator")]
//! struct Calculator;
//! impl Service for Calculator {}
//!
//! #[netsvc::methods]
//! impl Calculator {
//!     fn multiply(&mut self, a: i64, b: i64) -> i64 {
//!         a * b
//!     }
//! }
//!
//! #[actix::main]
//! async fn main() {
//!     let node = Node::new("example");
//!     node.spawn(Publisher);
//!     let calc = node.spawn(Calculator);
//!     let client = CalculatorClient::new(node.endpoint(&calc.binding));
//!     assert_eq!(client.multiply(6, 7).await.unwrap(), 42);
//!     node.monitor_signals();
//!     node.shutdown_complete().await;
//! }
//! ```
//!
//! ## Architecture: layers
//!
//! The crate is built in layers, each using only its own and lower ones (a test,
//! `tests/layers.rs`, parses every `crate::` path of `src/` and fails on an upward one):
//!
//! | layer | modules | what |
//! |---|---|---|
//! | L0 values | `names`, `ids`, `payload`, `failure`, `schedule`, `descriptor`, `introspection`, `error` | [`ServiceName`], [`SubjectPattern`], [`AgentId`], [`Payload`], [`Failure`] (what it says: [`FailureInfo`]) and [`ErrorCode`] (with the one table of netsvc's own failures), [`Schedule`], [`ServiceDescriptor`], [`NodeInfo`], [`Error`] |
//! | L1 | [`wire`] | frames ↔ bytes, pure |
//! | L2 | `transport` | a link's outbound buffer and write loop, the chunked reader, plaintext or TLS connections ([`Tls`]): bytes, no meaning |
//! | L3 | `delivery` | who gets a message and how: [`Binding`], inboxes, routes and pending calls, announcements per link, deliveries ↔ frames, the one path of every answer |
//! | L4 | `registry`, `report`, `request` | what messages mean: the registry actor ([`RegistryEvent`]), reports ([`Report`], [`Lifetime`], cache, fan-out), requests ([`Endpoint`], [`Responder`]) |
//! | L5 | `node`, `shutdown`, `service`, `spawn`, `watch`, `telemetry` | the runtime: [`Node`], [`ShutdownPhase`], [`Service`] and [`ServiceContext`]; streams of reports and registry events for tools ([`ReportStream`], [`RegistryStream`]); metrics through the `metrics` facade ([`telemetry`]) |
//! | L6 | `exchange` | [`Exchange`]: listen, connect, one bridge actor per connection |
//!
//! Where this departs from a strict reading of the plan: the delivery layer names failures
//! (it must answer a request it cannot pass on), but the code and the wording of each are
//! chosen in one table of L0 (`failure.rs`), not where the situation is detected; the message
//! types a service receives ([`Report`], [`RegistryEvent`], [`ShutdownPhase`]) are defined in
//! the delivery layer that carries them, and their behaviour stays with the layers above;
//! and building a [`Node`] and spawning services is in `spawn.rs`, above both the node handle
//! and the service runtime, because each service holds its node.
//!
//! In-process, nothing is serialized: report content travels as a shared value, request
//! arguments and responses move as values. Across processes (see [`Exchange`]) a remote
//! service is just a binding whose route is a link: the service API is the same. Every netsvc
//! message to a service goes through its inbox (a FIFO drained by the actor), so messages
//! from one service to another arrive in the order sent.
//!
//! Formats matter only across processes: there, typed traffic is bincode, and a request or a
//! subscription may ask for its answer or its reports in JSON instead, for tools without the
//! sender's Rust types ([`ServiceContext::monitor_reports_as`], [`Node::watch_reports`]); a
//! subscriber in the publisher's own process gets the value itself, whatever it asked for.
//!
//! ## Decisions where OSE left things open
//!
//! * Report callbacks receive a [`Report`] carrying the publisher's binding, the subject, the
//!   matched pattern and the content.
//! * Requests by name go to a local service first, else the one known longest.
//! * A panic in a hook is caught and logged; the service keeps running. A panic in an exported
//!   method fails that request with `SERVER_APPLICATION_ERROR`.
//! * Every service answers the reserved method [`DESCRIBE_METHOD`] (`$describe`, a name no
//!   Rust method can have) with its [`ServiceDescriptor`], before its own dispatch; see
//!   [`Endpoint::describe`].
//! * Invalid names, groups, subjects and patterns given as strings to fire-and-forget
//!   operations are logged as errors naming the service and nothing is done; build them with
//!   [`ServiceName::new`], [`Subject::new`], [`SubjectPattern::new`] to get the error value.

mod delivery;
mod descriptor;
mod error;
mod exchange;
mod failure;
#[doc(hidden)]
pub mod fuzzing;
mod ids;
mod introspection;
mod names;
mod node;
mod payload;
mod registry;
mod report;
mod request;
mod schedule;
mod service;
mod shutdown;
mod spawn;
pub mod telemetry;
mod transport;
mod watch;
pub mod wire;

pub use delivery::{
    Binding, Location, PublisherNotice, RegistryEvent, Report, ReportTypeError, ShutdownPhase,
    Status, Watch,
};
pub use descriptor::{
    MethodDescriptor, ParamDescriptor, ServiceDescriptor, SubjectInfo, DESCRIBE_METHOD,
    MAX_DESCRIBED_SUBJECTS,
};
pub use error::Error;
pub use exchange::{
    Admit, Authorise, ClientAuth, ConnectionEvent, ConnectionState, Connector, Exchange,
    ExchangeConfig, ExchangeError, ExchangeStats, Limits, PeerInfo, PeerPolicy, PolicyError,
    PolicyFile, Secret, SecretError, Tls, TlsError, TlsPem, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DEAD_AFTER, DEFAULT_HANDSHAKE_FRAME, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HEARTBEAT,
    DEFAULT_OUTBOUND_LIMIT, MIN_SECRET_LEN,
};
pub use failure::{ErrorCode, Failure, FailureInfo, NETSVC_ORIGIN};
pub use ids::{AgentId, ConversationId, ProcessId};
pub use introspection::{
    node_agent_of, LinkInfo, LinkSide, NodeInfo, ServiceSummary, SubscriptionInfo,
    INTROSPECT_METHOD, SUBSCRIBERS_METHOD,
};
pub use names::{
    Audience, GroupName, IntoName, InvalidName, ServiceName, Subject, SubjectPattern, MAX_NAME_LEN,
};
pub use netsvc_derive::{methods, Service};
pub use node::{
    Node, NodeConfig, DEFAULT_INBOX_CAPACITY, DEFAULT_SHUTDOWN_DELAY, DEFAULT_WATCH_CAPACITY,
};
pub use payload::{Content, Format, Payload, PayloadError};
pub use report::{IntoTarget, Lifetime, SubscriptionNotice, SubscriptionStatus, Target};
pub use request::{
    Call, Delayed, Endpoint, IntoRequestTarget, RequestInfo, RequestTarget, Responder,
};
pub use schedule::{CronSchedule, Schedule};
pub use service::{Service, ServiceContext, ServiceOptions};
pub use spawn::Spawned;
pub use transport::{spin_when_idle, SpinError};
pub use watch::{RegistryStream, ReportStream};

/// The usual imports: `use netsvc::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Binding, Delayed, Endpoint, ErrorCode, Failure, Lifetime, Node, PublisherNotice,
        RegistryEvent, Report, Responder, Schedule, Service, ServiceContext, ShutdownPhase, Status,
        SubscriptionNotice, SubscriptionStatus,
    };
    pub use actix::{ActorContext, AsyncContext};
    pub use netsvc_derive::methods;
}

/// Paths used by the macros. Not public API: re-exports only.
#[doc(hidden)]
pub mod __private {
    pub use crate::delivery::Drain;
    pub use crate::descriptor::MethodSpec;
    pub use crate::request::{decode_args, method_unavailable, IntoReply, Plain, Reply};
    pub use crate::service::ServiceOptions;
    pub use crate::service::{
        audience, drain, group_name, service_name, started, stopping, Descriptor, DispatchFn,
        Exports, Tag, ViaExports, ViaNothing,
    };
    pub use crate::{Audience, Endpoint, GroupName, Payload, ServiceContext, ServiceName};
    pub use actix;
}
