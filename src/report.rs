//! Reports: publish/subscribe on subjects, with cached last values for late subscribers.
//!
//! The operations live on [`ServiceContext`](crate::ServiceContext) (`publish_report`,
//! `monitor_reports`, `ignore_reports`, `send_report`, `expire_reports`, ...); this module holds
//! the types a service receives and the pure cache.

mod cache;

use std::time::Duration;

use serde::de::DeserializeOwned;

pub(crate) use cache::ReportCache;

use crate::binding::Binding;
use crate::names::{ServiceName, Subject, SubjectPattern};
use crate::payload::{Payload, PayloadError};
use crate::registry::Status;

/// How long a published report stays cached for subscribers that arrive later.
///
/// Only the last report per subject is cached; publishing with `Lifetime::None` also clears
/// the cached report of that subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Not cached: only current subscribers receive it.
    None,
    /// Cached for this long.
    For(Duration),
    /// Cached until replaced or expired explicitly.
    Forever,
}

impl Lifetime {
    /// A lifetime in whole seconds.
    pub fn secs(secs: u64) -> Self {
        Lifetime::For(Duration::from_secs(secs))
    }
}

/// Whom to subscribe to: every service of a name (present and future), or one agent.
#[derive(Debug, Clone)]
pub enum Target {
    /// Every service with this name, including those that appear later (sticky).
    Name(ServiceName),
    /// One agent; the subscription follows its identity.
    Binding(Binding),
}

impl From<Binding> for Target {
    fn from(b: Binding) -> Self {
        Target::Binding(b)
    }
}
impl From<&Binding> for Target {
    fn from(b: &Binding) -> Self {
        Target::Binding(b.clone())
    }
}
impl From<ServiceName> for Target {
    fn from(n: ServiceName) -> Self {
        Target::Name(n)
    }
}

/// Conversion of a user-given target; a `&str` is validated as a service name.
pub trait IntoTarget {
    /// Converts, or explains why the name is invalid.
    fn into_target(self) -> Result<Target, crate::names::InvalidName>;
}
impl<T: Into<Target>> IntoTarget for T {
    fn into_target(self) -> Result<Target, crate::names::InvalidName> {
        Ok(self.into())
    }
}
impl IntoTarget for &str {
    fn into_target(self) -> Result<Target, crate::names::InvalidName> {
        ServiceName::new(self).map(Target::Name)
    }
}
impl IntoTarget for &String {
    fn into_target(self) -> Result<Target, crate::names::InvalidName> {
        ServiceName::new(self).map(Target::Name)
    }
}

/// What every delivery of one report shares. Not behind its own `Arc`: every field is a
/// cheap clone already, and a received report then costs one allocation fewer.
#[derive(Clone)]
pub(crate) struct ReportData {
    pub(crate) publisher: Binding,
    pub(crate) subject: Subject,
    pub(crate) content: Payload,
    pub(crate) targeted: bool,
}

/// A report as a subscriber receives it: one delivery per matching subscription pattern.
#[derive(Clone)]
pub struct Report {
    pub(crate) data: ReportData,
    pub(crate) pattern: Option<SubjectPattern>,
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
        &self.data.publisher
    }

    /// The report's subject.
    pub fn subject(&self) -> &Subject {
        &self.data.subject
    }

    /// The subscription pattern this delivery matched; `None` for a targeted report that
    /// matched none of the subscriber's patterns.
    pub fn pattern(&self) -> Option<&SubjectPattern> {
        self.pattern.as_ref()
    }

    /// Whether the publisher sent this report to this subscriber only.
    pub fn is_targeted(&self) -> bool {
        self.data.targeted
    }

    /// The content, type-erased.
    ///
    /// A report received from another process may share the buffer its frame was read into
    /// (a connection whose traffic is mostly for local subscribers hands out slices rather
    /// than copies), so keeping a `Report` can keep that read buffer alive: 256 KiB usually,
    /// up to the largest frame the connection carried. To keep a value for long, keep what
    /// [`Report::decode`] returns.
    pub fn content(&self) -> &Payload {
        &self.data.content
    }

    /// The content as a `T` (a clone in-process, decoded otherwise). A type mismatch is an
    /// error naming the publisher, the subject and both types.
    pub fn decode<T: DeserializeOwned + Clone + 'static>(&self) -> Result<T, ReportTypeError> {
        self.data.content.decode().map_err(|error| ReportTypeError {
            publisher: self.data.publisher.to_string(),
            subject: self.data.subject.to_string(),
            error,
        })
    }
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("publisher", &self.data.publisher)
            .field("subject", &self.data.subject)
            .field("pattern", &self.pattern)
            .field("content", &self.data.content)
            .field("targeted", &self.data.targeted)
            .finish()
    }
}

/// Requested or withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    /// A subscriber asked for reports matching a pattern.
    Requested,
    /// The subscription ended (explicitly, or the subscriber went away).
    Withdrawn,
}

/// Told to a publisher when a (subscriber, pattern) subscription forms or ends.
#[derive(Debug, Clone)]
pub struct SubscriptionNotice {
    /// The subscribing service.
    pub subscriber: Binding,
    /// The subscriber's pattern.
    pub pattern: SubjectPattern,
    /// Requested or withdrawn.
    pub status: SubscriptionStatus,
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
