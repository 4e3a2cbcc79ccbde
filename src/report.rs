//! Reports: publish/subscribe on subjects, with cached last values for late subscribers.
//!
//! The operations live on [`ServiceContext`](crate::ServiceContext) (`publish_report`,
//! `monitor_reports`, `monitor_reports_as`, `ignore_reports`, `send_report`, `expire_reports`,
//! ...); this module holds the types a service receives, the pure cache, the publisher's
//! record of its subjects and the fan-out (who gets a report, and in which format across
//! processes).

mod cache;
mod fanout;
mod published;

use std::time::Duration;

pub(crate) use cache::ReportCache;
pub(crate) use fanout::ReportFanout;
pub(crate) use published::PublishedSubjects;

use crate::delivery::Binding;
use crate::names::{ServiceName, SubjectPattern};
use crate::payload::Format;

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
    /// The format the subscriber asked the content in. It matters across processes only:
    /// in-process, every subscriber gets the value itself.
    pub format: Format,
    /// Requested or withdrawn.
    pub status: SubscriptionStatus,
}
