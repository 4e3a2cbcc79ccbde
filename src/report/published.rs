//! The subjects a publisher published on lately, for its descriptor. Pure.
//!
//! Bounded: the last [`PUBLISHED_SUBJECTS`] distinct subjects are kept, the one recorded first
//! goes first. A publisher records a subject only when it differs from the one it published
//! last, so repeating one subject costs nothing here.

use std::collections::{HashSet, VecDeque};

use crate::names::Subject;

/// How many distinct subjects a publisher keeps for its descriptor (the docs of
/// `ServiceDescriptor::subjects` say this number).
pub(crate) const PUBLISHED_SUBJECTS: usize = 256;

/// Distinct subjects published on, oldest first, at most [`PUBLISHED_SUBJECTS`].
#[derive(Default)]
pub(crate) struct PublishedSubjects {
    order: VecDeque<Subject>,
    known: HashSet<Subject>,
}

impl PublishedSubjects {
    /// Records that a report was published on `subject`; one already known keeps its place.
    pub(crate) fn record(&mut self, subject: &Subject) {
        if self.known.contains(subject) {
            return;
        }
        if self.order.len() == PUBLISHED_SUBJECTS {
            if let Some(oldest) = self.order.pop_front() {
                self.known.remove(&oldest);
            }
        }
        self.order.push_back(subject.clone());
        self.known.insert(subject.clone());
    }

    /// The subjects recorded, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Subject> {
        self.order.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(s: impl AsRef<str>) -> Subject {
        Subject::new(s).unwrap()
    }

    fn recorded(published: &PublishedSubjects) -> Vec<String> {
        published.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_subject_is_kept_once_in_the_order_first_published() {
        let mut published = PublishedSubjects::default();
        for s in ["a", "b", "a", "c", "b"] {
            published.record(&subject(s));
        }
        assert_eq!(recorded(&published), ["a", "b", "c"]);
    }

    #[test]
    fn the_oldest_goes_when_the_bound_is_reached() {
        assert_eq!(PUBLISHED_SUBJECTS, 256, "the descriptor's docs say 256");
        let mut published = PublishedSubjects::default();
        for i in 0..=PUBLISHED_SUBJECTS {
            published.record(&subject(format!("s.{i}")));
        }
        let kept = recorded(&published);
        assert_eq!(kept.len(), PUBLISHED_SUBJECTS);
        assert_eq!(kept[0], "s.1");
        assert_eq!(
            kept[PUBLISHED_SUBJECTS - 1],
            format!("s.{PUBLISHED_SUBJECTS}")
        );
        // The one that went is new again.
        published.record(&subject("s.0"));
        assert_eq!(recorded(&published)[0], "s.2");
        assert_eq!(published.known.len(), PUBLISHED_SUBJECTS);
    }
}
