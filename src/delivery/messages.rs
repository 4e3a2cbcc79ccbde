//! The messages a service receives, as its inbox carries them: reports, requests,
//! availability events, notices and shutdown phases. What they mean is decided by the layers
//! above (the registry, reports, requests, the service runtime); here is only their shape.

use std::borrow::Cow;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::answer::ReplyTo;
use super::binding::Binding;
use crate::ids::{AgentId, ConversationId};
use crate::names::{GroupName, ServiceName, Subject, SubjectPattern};
use crate::payload::{Format, Payload, PayloadError};

/// What an inbox carries: every netsvc message to a service.
pub(crate) enum Delivery {
    /// A report matching one of the service's subscriptions.
    Report(Report),
    /// A call of one of its methods.
    Request(IncomingRequest),
    /// An availability event of one of its registry subscriptions.
    Registry {
        /// The event.
        event: RegistryEvent,
        /// Who took the subscription: the service itself or its broker.
        by: WatchedBy,
    },
    /// A subscriber asks for the service's reports matching `pattern`, their content in
    /// `format` when they cross to another process.
    SubscriptionRequested {
        /// The subscriber.
        subscriber: Binding,
        /// Its pattern.
        pattern: SubjectPattern,
        /// The format it wants the content in across processes.
        format: Format,
        /// Whether its reports are conflated, not dropped, at full link buffers on their way
        /// (it crosses links as a `SubscriptionConflated` frame, which each link on the way
        /// notes; the publisher's broker takes it as any other request).
        conflated: bool,
    },
    /// A subscriber no longer wants the reports matching `pattern`.
    SubscriptionWithdrawn {
        /// The subscriber.
        subscriber: AgentId,
        /// Its pattern.
        pattern: SubjectPattern,
    },
    /// A publisher accepted the service's first subscription, or its last one ended.
    Publisher(PublisherNotice),
    /// The node's shutdown reached a phase.
    Shutdown(ShutdownPhase),
    /// The service is asked to stop.
    Stop,
}

/// Who took a registry subscription of a service, and so handles its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchedBy {
    /// The service: events go to its `availability` hook.
    Service,
    /// Its broker, following the publishers it subscribed to by name or agent.
    Broker,
}

/// What every delivery of one report shares: how a publisher's fan-out, or a relay, is
/// handed one report.
#[derive(Clone)]
pub(crate) struct ReportData {
    pub(crate) publisher: Binding,
    pub(crate) subject: Subject,
    pub(crate) content: Payload,
    pub(crate) targeted: bool,
}

/// The part of a delivery that repeats from report to report of one stream: who published
/// it, on which subject, and the subscriber's pattern it matched. It is made once per
/// (publisher, subject, pattern) by whoever hands out the stream (a publisher's fan-out, a
/// connection's routing) and shared by every report of it, so that a delivery costs one
/// reference count for the three, not three.
pub(crate) struct ReportHead {
    pub(crate) publisher: Binding,
    pub(crate) subject: Subject,
    pub(crate) pattern: Option<SubjectPattern>,
}

impl ReportHead {
    /// A head for reports of `publisher` on `subject`, for a subscriber whose `pattern` they
    /// matched.
    pub(crate) fn new(
        publisher: &Binding,
        subject: &Subject,
        pattern: Option<SubjectPattern>,
    ) -> Arc<Self> {
        Arc::new(ReportHead {
            publisher: publisher.clone(),
            subject: subject.clone(),
            pattern,
        })
    }

    /// Whether this is the head of reports of `publisher` on `subject`.
    pub(crate) fn is_for(&self, publisher: &Binding, subject: &Subject) -> bool {
        self.publisher.agent() == publisher.agent() && self.subject == *subject
    }
}

/// A report as a subscriber receives it: one delivery per matching subscription pattern.
#[derive(Clone)]
pub struct Report {
    pub(crate) head: Arc<ReportHead>,
    pub(crate) content: Payload,
    pub(crate) targeted: bool,
    /// Earlier reports on the same subject, publisher and pattern this one replaced in a
    /// full inbox (a conflated subscription's; see [`Report::conflated`]).
    pub(crate) conflated: u64,
}

impl Report {
    /// The parts every delivery of this report shares, for sending it on.
    pub(crate) fn data(&self) -> ReportData {
        ReportData {
            publisher: self.head.publisher.clone(),
            subject: self.head.subject.clone(),
            content: self.content.clone(),
            targeted: self.targeted,
        }
    }
}

/// A report whose content is not of the type the subscriber asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("report {subject:?} from {publisher}: {error}")]
pub struct ReportTypeError {
    /// `name/agent` of the publisher.
    pub publisher: String,
    /// The report's subject.
    pub subject: String,
    /// Both types and what went wrong.
    pub error: PayloadError,
}

impl Report {
    /// The publishing service.
    pub fn publisher(&self) -> &Binding {
        &self.head.publisher
    }

    /// The report's subject.
    pub fn subject(&self) -> &Subject {
        &self.head.subject
    }

    /// The subscription pattern this delivery matched; `None` for a targeted report that
    /// matched none of the subscriber's patterns.
    pub fn pattern(&self) -> Option<&SubjectPattern> {
        self.head.pattern.as_ref()
    }

    /// Whether the publisher sent this report to this subscriber only.
    pub fn is_targeted(&self) -> bool {
        self.targeted
    }

    /// How many earlier reports on this subject (from this publisher, for this pattern) this
    /// one replaced, unseen, because the subscriber's inbox was full and the subscription is
    /// conflated ([`ServiceContext::conflate_reports`](crate::ServiceContext::conflate_reports)):
    /// 0 for a report that replaced none.
    pub fn conflated(&self) -> u64 {
        self.conflated
    }

    /// The content, type-erased.
    ///
    /// A report received from another process may share the buffer its frame was read into
    /// (a connection whose traffic is mostly for local subscribers hands out slices rather
    /// than copies), so keeping a `Report` can keep that read buffer alive: 256 KiB usually,
    /// up to the largest frame the connection carried. To keep a value for long, keep what
    /// [`Report::decode`] returns, except as a [`bytes::Bytes`]: decoded as one, received
    /// bytes share that buffer too (see [`Payload::decode`]); take a `Vec<u8>` to keep them
    /// apart.
    pub fn content(&self) -> &Payload {
        &self.content
    }

    /// The content as a `T` (a clone in-process, decoded otherwise). A type mismatch is an
    /// error naming the publisher, the subject and both types.
    pub fn decode<T: DeserializeOwned + Clone + 'static>(&self) -> Result<T, ReportTypeError> {
        self.content.decode().map_err(|error| ReportTypeError {
            publisher: self.head.publisher.to_string(),
            subject: self.head.subject.to_string(),
            error,
        })
    }
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("publisher", &self.head.publisher)
            .field("subject", &self.head.subject)
            .field("pattern", &self.head.pattern)
            .field("content", &self.content)
            .field("targeted", &self.targeted)
            .finish()
    }
}

/// Told to a subscriber when a publisher accepted its first subscription (`Available`), when
/// its last subscription to that publisher was withdrawn, or when the publisher was withdrawn
/// (`Withdrawn`).
#[derive(Debug, Clone)]
pub struct PublisherNotice {
    /// The publishing service.
    pub publisher: Binding,
    /// The subscribing service (the receiver of this notice).
    pub subscriber: Binding,
    /// Available or withdrawn.
    pub status: Status,
}

/// Available or withdrawn (for a group event: joined or left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The service is available, or joined the group.
    Available,
    /// The service was withdrawn, or left the group.
    Withdrawn,
}

/// What a registry subscription watches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Watch {
    /// Every service and every group change.
    Registry,
    /// Services with this name (service events only, never group events).
    Name(ServiceName),
    /// One agent: its service events and its group events.
    Agent(AgentId),
    /// Services joining and leaving this group (a withdrawal implies leaving).
    Group(GroupName),
}

/// An availability announcement delivered to a subscriber.
#[derive(Debug, Clone)]
pub struct RegistryEvent {
    /// The service concerned.
    pub binding: Binding,
    /// `None` for a service event, the group for a join or leave event.
    pub group: Option<GroupName>,
    /// Available / joined, or withdrawn / left.
    pub status: Status,
    /// Which subscription produced this event.
    pub watch: Watch,
}

/// The phase a shutdown notice announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownPhase {
    /// Shutdown has started; finish up (holds may delay the next phase).
    Pending,
    /// Shutdown is happening now; the service will be stopped right after this notice.
    Arrived,
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
