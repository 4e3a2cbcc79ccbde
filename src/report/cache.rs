//! The publisher's cache of last reports, one per subject. Pure: time is passed in.
//!
//! Expired entries are removed lazily (when their subject is published again or a matching
//! subscription reads them) or explicitly by [`ReportCache::purge`] and
//! [`ReportCache::expire`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Lifetime;
use crate::names::{Subject, SubjectPattern};
use crate::payload::Payload;

struct Cached {
    content: Payload,
    posted: Instant,
    expires: Option<Instant>,
}

impl Cached {
    fn alive(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| now < at)
    }
}

/// Last report per subject, with its expiry.
#[derive(Default)]
pub(crate) struct ReportCache {
    entries: HashMap<Subject, Cached>,
}

impl ReportCache {
    /// Records a report just published with `Lifetime::None`: the subject's entry goes.
    pub(crate) fn forget(&mut self, subject: &Subject) {
        if !self.entries.is_empty() {
            self.entries.remove(subject.as_str());
        }
    }

    /// Records a report just published: replaces the subject's entry, or removes it for
    /// `Lifetime::None`. The clock (`now`) is read only for a report that is kept: most
    /// reports are not, and a clock read per publish showed in profiles.
    pub(crate) fn post(
        &mut self,
        subject: &Subject,
        content: &Payload,
        lifetime: Lifetime,
        now: impl FnOnce() -> Instant,
    ) {
        let (now, expires) = match lifetime {
            Lifetime::None => return self.forget(subject),
            Lifetime::For(d) => {
                let now = now();
                (
                    now,
                    Some(
                        now.checked_add(d)
                            .unwrap_or(now + Duration::from_secs(u32::MAX as u64)),
                    ),
                )
            }
            Lifetime::Forever => (now(), None),
        };
        self.entries.insert(
            subject.clone(),
            Cached {
                content: content.clone(),
                posted: now,
                expires,
            },
        );
    }

    /// Unexpired cached reports matching `pattern`; expired matching entries are dropped.
    pub(crate) fn matching(
        &mut self,
        pattern: &SubjectPattern,
        now: Instant,
    ) -> Vec<(Subject, Payload)> {
        let mut found = Vec::new();
        self.entries.retain(|subject, cached| {
            if !pattern.matches(subject.as_str()) {
                return true;
            }
            if cached.alive(now) {
                found.push((subject.clone(), cached.content.clone()));
                true
            } else {
                false
            }
        });
        found
    }

    /// The subjects of unexpired cached reports.
    pub(crate) fn subjects(&self, now: Instant) -> impl Iterator<Item = &Subject> {
        self.entries
            .iter()
            .filter(move |(_, cached)| cached.alive(now))
            .map(|(subject, _)| subject)
    }

    /// Drops every expired entry.
    pub(crate) fn purge(&mut self, now: Instant) {
        self.entries.retain(|_, c| c.alive(now));
    }

    /// Drops entries whose subject matches `pattern` (all when `None`) and that were posted
    /// at least `age` ago; `age` zero drops them all.
    pub(crate) fn expire(&mut self, pattern: Option<&SubjectPattern>, age: Duration, now: Instant) {
        self.entries.retain(|subject, c| {
            let matches = pattern.is_none_or(|p| p.matches(subject.as_str()));
            !(matches && now.saturating_duration_since(c.posted) >= age)
        });
    }

    /// Number of entries, expired or not.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(s: &str) -> Subject {
        Subject::new(s).unwrap()
    }
    fn pattern(s: &str) -> SubjectPattern {
        SubjectPattern::new(s).unwrap()
    }
    fn subjects(found: Vec<(Subject, Payload)>) -> Vec<String> {
        let mut v: Vec<String> = found.into_iter().map(|(s, _)| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn only_the_last_report_per_subject_is_kept() {
        let mut cache = ReportCache::default();
        let t0 = Instant::now();
        cache.post(&subject("a"), &Payload::new(1u32), Lifetime::Forever, || t0);
        cache.post(&subject("a"), &Payload::new(2u32), Lifetime::Forever, || t0);
        let found = cache.matching(&pattern("*"), t0);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.get::<u32>(), Some(&2));
    }

    #[test]
    fn lifetime_none_is_not_cached_and_clears_the_subject() {
        let mut cache = ReportCache::default();
        let t0 = Instant::now();
        cache.post(&subject("a"), &Payload::new(1u32), Lifetime::Forever, || t0);
        cache.post(&subject("a"), &Payload::new(2u32), Lifetime::None, || t0);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn timed_lifetime_expires_lazily() {
        let mut cache = ReportCache::default();
        let t0 = Instant::now();
        cache.post(
            &subject("a.x"),
            &Payload::new(1u32),
            Lifetime::secs(10),
            || t0,
        );
        cache.post(
            &subject("b.x"),
            &Payload::new(1u32),
            Lifetime::secs(10),
            || t0,
        );
        assert_eq!(
            subjects(cache.matching(&pattern("a.*"), t0 + Duration::from_secs(9))),
            ["a.x"]
        );
        assert!(cache
            .matching(&pattern("a.*"), t0 + Duration::from_secs(10))
            .is_empty());
        // The expired "a.x" was dropped by the read; "b.x" stays until purged, unlisted.
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.subjects(t0 + Duration::from_secs(10)).count(), 0);
        cache.purge(t0 + Duration::from_secs(11));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn expire_by_pattern_and_age() {
        let mut cache = ReportCache::default();
        let t0 = Instant::now();
        cache.post(
            &subject("sys.old"),
            &Payload::new(1u32),
            Lifetime::Forever,
            || t0,
        );
        cache.post(
            &subject("sys.new"),
            &Payload::new(1u32),
            Lifetime::Forever,
            || t0 + Duration::from_secs(50),
        );
        cache.post(
            &subject("app.old"),
            &Payload::new(1u32),
            Lifetime::Forever,
            || t0,
        );
        let now = t0 + Duration::from_secs(60);
        cache.expire(Some(&pattern("sys.*")), Duration::from_secs(30), now);
        assert_eq!(
            subjects(cache.matching(&pattern("*"), now)),
            ["app.old", "sys.new"]
        );
        cache.expire(None, Duration::from_secs(30), now);
        assert_eq!(subjects(cache.matching(&pattern("*"), now)), ["sys.new"]);
        cache.expire(None, Duration::ZERO, now);
        assert_eq!(cache.len(), 0);
    }
}
