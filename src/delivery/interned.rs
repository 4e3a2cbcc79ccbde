//! Names received on one connection, validated once and kept: the subjects, patterns and
//! type names repeated in every report are checked and allocated once, not per frame.

use std::hash::BuildHasher as _;
use std::sync::Arc;

use crate::ids::RecentTable;
use crate::names::{Subject, SubjectPattern, MAX_NAME_LEN};
use crate::wire::Text;

/// Validated names seen on this connection, so that the subjects, patterns and type names
/// repeated in every report are checked and allocated once, not per frame. The last name of
/// each kind is checked first: a stream of reports usually repeats it. A name is kept once
/// (the map's key is the validated name itself), only after the frame carrying it was found
/// to be for a known agent, and the whole cache is bounded in bytes
/// (`Limits::interned_bytes`): over it, it starts over.
pub(crate) struct Names {
    subjects: Interned<Subject>,
    patterns: Interned<SubjectPattern>,
    types: Interned<Arc<str>>,
    /// Bytes of names kept, all kinds together, and the cap.
    bytes: usize,
    max_bytes: usize,
}

impl Names {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Names {
            subjects: Interned::default(),
            patterns: Interned::default(),
            types: Interned::default(),
            bytes: 0,
            max_bytes,
        }
    }
}

/// What one cached name costs besides its text (its slot in the map, its allocation): counted
/// against the limit with the text, so that many short names are bounded as well as long ones.
const ENTRY_COST: usize = 64;

/// One kind of name, kept once each, found by its received bytes: keyed SipHash, seeded at
/// random per table, so that a peer cannot choose names that collide, even one timing its
/// frames (a faster seeded hash, foldhash, does not claim to resist that); the table is
/// bounded as the whole cache is. The name returned last is checked first, without hashing.
struct Interned<T>(RecentTable<T>);

impl<T> Default for Interned<T> {
    fn default() -> Self {
        Interned(RecentTable::default())
    }
}

impl<T: AsRef<str>> Interned<T> {
    /// The name for `text`: checked (length, UTF-8, then `make`) the first time it is seen
    /// only; `bytes` counts what the connection's caches hold, up to `max`.
    fn get(
        &mut self,
        text: Text<'_>,
        bytes: &mut usize,
        make: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<&T, String> {
        let key = text.0;
        let table = &mut self.0;
        let at = match table.find(key, |v| v.as_ref().as_bytes() == key) {
            Some(at) => at,
            None => {
                if key.len() > MAX_NAME_LEN {
                    return Err(format!(
                        "a name of {} bytes (the maximum is {MAX_NAME_LEN})",
                        key.len()
                    ));
                }
                let s = text.to_str().map_err(|e| text.utf8_error(e))?;
                let v = make(s)?;
                *bytes += key.len() + ENTRY_COST;
                table.insert(table.hash(key), v, |h, v| h.hash_one(v.as_ref().as_bytes()))
            }
        };
        Ok(table.get(at))
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

impl Names {
    /// Makes room for one more name: when the caches could go over their limit, all of them
    /// start over.
    fn room(&mut self) {
        if self.bytes + MAX_NAME_LEN + ENTRY_COST > self.max_bytes {
            tracing::info!(
                max = self.max_bytes,
                "names cached for this connection at their limit (Limits::interned_bytes); starting over"
            );
            self.subjects.clear();
            self.patterns.clear();
            self.types.clear();
            self.bytes = 0;
        }
    }

    pub(crate) fn subject(&mut self, s: Text<'_>) -> Result<&Subject, String> {
        self.room();
        self.subjects.get(s, &mut self.bytes, |s| {
            Subject::new(s).map_err(|e| e.to_string())
        })
    }
    pub(crate) fn pattern(&mut self, s: Text<'_>) -> Result<&SubjectPattern, String> {
        self.room();
        self.patterns.get(s, &mut self.bytes, |s| {
            SubjectPattern::new(s).map_err(|e| e.to_string())
        })
    }
    pub(crate) fn type_name(&mut self, s: Text<'_>) -> Result<&Arc<str>, String> {
        self.room();
        self.types.get(s, &mut self.bytes, |s| Ok(Arc::from(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_names_are_checked_and_bad_ones_refused_every_time() {
        let mut names = Names::new(1 << 20);
        assert_eq!(names.subject(Text(b"a.b")).unwrap().as_str(), "a.b");
        // A repeated name is the same interned value.
        let first = names.type_name(Text(b"T")).unwrap().clone();
        assert!(Arc::ptr_eq(&first, names.type_name(Text(b"T")).unwrap()));
        for _ in 0..2 {
            let err = names.subject(Text(&[b'a', 0xff])).unwrap_err();
            assert!(err.contains("invalid UTF-8"), "{err}");
            assert!(names.subject(Text(b"a\nb")).is_err());
            assert!(names.pattern(Text(b"")).is_err());
            assert!(names.type_name(Text(&[0xc3])).is_err());
        }
        assert_eq!(names.pattern(Text(b"a.*")).unwrap().as_str(), "a.*");
        assert_eq!(names.subject(Text(b"a.b")).unwrap().as_str(), "a.b");
        // Over the length limit: refused, and nothing is kept.
        let long = vec![b'a'; MAX_NAME_LEN + 1];
        let before = names.bytes;
        assert!(names
            .type_name(Text(&long))
            .unwrap_err()
            .contains("256 bytes"));
        assert_eq!(names.bytes, before);
    }

    #[test]
    fn the_name_cache_is_bounded_in_bytes() {
        let mut names = Names::new(64 * 1024);
        for i in 0..10_000 {
            let name = format!("{i:0255}");
            // All three kinds share the limit.
            match i % 3 {
                0 => assert_eq!(
                    names.type_name(Text(name.as_bytes())).unwrap().as_ref(),
                    name
                ),
                1 => assert_eq!(names.subject(Text(name.as_bytes())).unwrap().as_str(), name),
                _ => assert_eq!(names.pattern(Text(name.as_bytes())).unwrap().as_str(), name),
            }
            assert!(names.bytes <= 64 * 1024);
            let cost = |len: usize| len + ENTRY_COST;
            let kept: usize = names
                .types
                .0
                .values()
                .map(|k| cost(k.as_ref().len()))
                .sum::<usize>()
                + names
                    .subjects
                    .0
                    .values()
                    .map(|k| cost(k.as_ref().len()))
                    .sum::<usize>()
                + names
                    .patterns
                    .0
                    .values()
                    .map(|k| cost(k.as_ref().len()))
                    .sum::<usize>();
            assert_eq!(kept, names.bytes, "each name is kept once and counted");
        }
    }
}
