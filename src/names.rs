//! Newtypes for names and identities, with validation.
//!
//! Names are cheap to clone (`Arc<str>` inside) because they travel with every report and
//! request. Validation rules (decided here, the reference only says "avoid whitespace and
//! non-printable characters"):
//!
//! * service names may be empty (an anonymous service), otherwise they must not contain
//!   whitespace or control characters;
//! * group names must be non-empty and contain no whitespace or control characters;
//! * subjects must be non-empty and contain no control characters (a newline in particular);
//! * subject patterns follow the subject rules; `*` and `?` are wildcards;
//! * none is longer than [`MAX_NAME_LEN`] bytes (255), so that what a peer announces or
//!   sends is small however it was made: the same check runs in the constructors and on
//!   everything received, and a node name or a type name longer than that is cut short
//!   (at a character boundary) before it is sent.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why a name, group, subject or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// The value is empty where a value is required.
    #[error("invalid {kind}: must not be empty")]
    Empty {
        /// What kind of name it was (`service name`, `group name`, `subject`, ...).
        kind: &'static str,
    },
    /// The value is longer than [`MAX_NAME_LEN`] bytes (the value itself is not kept: it may
    /// be large).
    #[error("invalid {kind}: {len} bytes long, more than the maximum of {max}")]
    TooLong {
        /// What kind of name it was.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The maximum, [`MAX_NAME_LEN`].
        max: usize,
    },
    /// The value contains a character that is not allowed.
    #[error("invalid {kind} {value:?}: contains {what} at byte {at}")]
    BadCharacter {
        /// What kind of name it was.
        kind: &'static str,
        /// The offending value.
        value: String,
        /// `whitespace` or `a control character`.
        what: &'static str,
        /// Byte offset of the offending character.
        at: usize,
    },
}

/// The longest name of any kind, in bytes: service, group, subject, pattern, node and type
/// names, and the exchange group.
pub const MAX_NAME_LEN: usize = 255;

/// `text` cut to at most [`MAX_NAME_LEN`] bytes, at a character boundary: for names this side
/// sends but does not validate (a node name, a Rust type name), so a peer never refuses them.
pub(crate) fn clip_name(text: &str) -> &str {
    if text.len() <= MAX_NAME_LEN {
        return text;
    }
    let at = (0..=MAX_NAME_LEN)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[..at]
}

fn check(
    kind: &'static str,
    value: &str,
    allow_empty: bool,
    allow_space: bool,
) -> Result<(), InvalidName> {
    if value.is_empty() && !allow_empty {
        return Err(InvalidName::Empty { kind });
    }
    if value.len() > MAX_NAME_LEN {
        return Err(InvalidName::TooLong {
            kind,
            len: value.len(),
            max: MAX_NAME_LEN,
        });
    }
    for (at, c) in value.char_indices() {
        let what = if c.is_control() {
            "a control character"
        } else if c.is_whitespace() && !allow_space {
            "whitespace"
        } else {
            continue;
        };
        return Err(InvalidName::BadCharacter {
            kind,
            value: value.to_owned(),
            what,
            at,
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, allow_empty = $empty:expr, allow_space = $space:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn new(value: impl AsRef<str>) -> Result<Self, InvalidName> {
                let value = value.as_ref();
                check($kind, value, $empty, $space)?;
                Ok(Self(Arc::from(value)))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidName;
            fn try_from(value: &str) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }

        impl TryFrom<&String> for $name {
            type Error = InvalidName;
            fn try_from(value: &String) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }

        impl TryFrom<&$name> for $name {
            type Error = InvalidName;
            fn try_from(value: &$name) -> Result<Self, InvalidName> {
                Ok(value.clone())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0.to_string()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }
    };
}

name_type!(
    /// A service name. Not unique; empty for an anonymous service.
    ServiceName, "service name", allow_empty = true, allow_space = false
);
name_type!(
    /// A service group name (never empty).
    GroupName, "group name", allow_empty = false, allow_space = false
);
name_type!(
    /// The subject of a report. Free-form; dots have no special meaning.
    Subject, "subject", allow_empty = false, allow_space = true
);

impl ServiceName {
    /// The empty name of an anonymous service.
    pub fn anonymous() -> Self {
        Self(Arc::from(""))
    }

    /// Whether this is the empty name of an anonymous service.
    pub fn is_anonymous(&self) -> bool {
        self.0.is_empty()
    }
}

/// Who may see a service: everyone (`*`), this process only (`""`), or one exchange group.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Audience {
    /// `*`: as widely as possible.
    Everyone,
    /// `""`: this process only.
    Process,
    /// One exchange group, by name.
    Group(GroupName),
}

impl Audience {
    /// Parses OSE's spelling: `*`, the empty string, or an exchange-group name.
    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        match value {
            "*" => Ok(Audience::Everyone),
            "" => Ok(Audience::Process),
            other => Ok(Audience::Group(GroupName::new(other)?)),
        }
    }

    /// OSE's spelling of this audience.
    pub fn as_str(&self) -> &str {
        match self {
            Audience::Everyone => "*",
            Audience::Process => "",
            Audience::Group(g) => g.as_str(),
        }
    }
}

impl fmt::Debug for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subject pattern: `*` matches any run of characters (including dots), `?` exactly one
/// character, everything else matches itself.
///
/// The pattern is analysed once when it is built, so matching the common shapes
/// (`*`, `prefix*`, an exact subject) is a single comparison.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubjectPattern {
    text: Arc<str>,
    #[serde(skip)]
    shape: Shape,
}

#[derive(Clone, Copy, Debug, Default)]
enum Shape {
    #[default]
    General,
    Any,
    Exact,
    Prefix,
}

impl SubjectPattern {
    /// An identity of this pattern's text: the same for its clones, different from that of
    /// any other pattern alive (a pattern made again from the same string has another).
    pub(crate) fn id(&self) -> usize {
        self.text.as_ptr() as usize
    }

    /// Validates `pattern` and analyses its shape.
    pub fn new(pattern: impl AsRef<str>) -> Result<Self, InvalidName> {
        let text = pattern.as_ref();
        check("subject pattern", text, false, true)?;
        let wild = |c: char| c == '*' || c == '?';
        let shape = if text.chars().all(|c| c == '*') {
            Shape::Any
        } else if !text.contains(wild) {
            Shape::Exact
        } else if text.ends_with('*') && !text[..text.len() - 1].contains(wild) {
            Shape::Prefix
        } else {
            Shape::General
        };
        Ok(Self {
            text: Arc::from(text),
            shape,
        })
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `subject` matches this pattern.
    pub fn matches(&self, subject: &str) -> bool {
        match self.shape {
            Shape::Any => true,
            Shape::Exact => subject == &*self.text,
            Shape::Prefix => subject.starts_with(&self.text[..self.text.len() - 1]),
            Shape::General => glob_match(&self.text, subject),
        }
    }
}

/// Matches `subject` against a glob with `*` and `?`, iteratively with one backtrack point
/// (no recursion, no allocation for ASCII). `?` consumes one character, not one byte.
fn glob_match(pattern: &str, subject: &str) -> bool {
    if pattern.is_ascii() && subject.is_ascii() {
        glob(pattern.as_bytes(), subject.as_bytes())
    } else {
        let p: Vec<char> = pattern.chars().collect();
        let s: Vec<char> = subject.chars().collect();
        glob(&p, &s)
    }
}

trait GlobUnit: Copy + PartialEq {
    const STAR: Self;
    const ONE: Self;
}
impl GlobUnit for u8 {
    const STAR: u8 = b'*';
    const ONE: u8 = b'?';
}
impl GlobUnit for char {
    const STAR: char = '*';
    const ONE: char = '?';
}

fn glob<T: GlobUnit>(p: &[T], s: &[T]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == T::ONE || (p[pi] != T::STAR && p[pi] == s[si])) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == T::STAR {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == T::STAR {
        pi += 1;
    }
    pi == p.len()
}

impl PartialEq for SubjectPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for SubjectPattern {}
impl AsRef<str> for SubjectPattern {
    fn as_ref(&self) -> &str {
        &self.text
    }
}
impl std::hash::Hash for SubjectPattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state)
    }
}
impl PartialOrd for SubjectPattern {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SubjectPattern {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}
impl fmt::Display for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
impl fmt::Debug for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}
impl TryFrom<String> for SubjectPattern {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, InvalidName> {
        Self::new(value)
    }
}
impl TryFrom<&str> for SubjectPattern {
    type Error = InvalidName;
    fn try_from(value: &str) -> Result<Self, InvalidName> {
        Self::new(value)
    }
}
impl TryFrom<&SubjectPattern> for SubjectPattern {
    type Error = InvalidName;
    fn try_from(value: &SubjectPattern) -> Result<Self, InvalidName> {
        Ok(value.clone())
    }
}
impl From<SubjectPattern> for String {
    fn from(value: SubjectPattern) -> String {
        value.text.to_string()
    }
}

/// A value that can be turned into a validated name: the name type itself (infallible), or a
/// string (validated). Lets operations take `"system.*"` or a pre-validated
/// [`SubjectPattern`] alike.
pub trait IntoName<T> {
    /// Converts, or explains why the value is invalid.
    fn into_name(self) -> Result<T, InvalidName>;

    /// The string to be validated, for a caller that can reuse an equal name it validated
    /// before (`None`: the value is a name already).
    #[doc(hidden)]
    fn unvalidated(&self) -> Option<&str> {
        None
    }
}

macro_rules! into_name {
    ($($t:ty),*) => {$(
        impl IntoName<$t> for $t {
            fn into_name(self) -> Result<$t, InvalidName> {
                Ok(self)
            }
        }
        impl IntoName<$t> for &$t {
            fn into_name(self) -> Result<$t, InvalidName> {
                Ok(self.clone())
            }
        }
        impl IntoName<$t> for &str {
            fn into_name(self) -> Result<$t, InvalidName> {
                <$t>::new(self)
            }
            fn unvalidated(&self) -> Option<&str> {
                Some(self)
            }
        }
        impl IntoName<$t> for String {
            fn into_name(self) -> Result<$t, InvalidName> {
                <$t>::new(self)
            }
            fn unvalidated(&self) -> Option<&str> {
                Some(self)
            }
        }
        impl IntoName<$t> for &String {
            fn into_name(self) -> Result<$t, InvalidName> {
                <$t>::new(self)
            }
            fn unvalidated(&self) -> Option<&str> {
                Some(self)
            }
        }
    )*};
}

into_name!(ServiceName, GroupName, Subject, SubjectPattern);

/// The groups of one service, in order, as the registry and the announcer keep them for
/// every service they know: one pointer while empty, which most services are (a node may
/// know a hundred thousand services; a `BTreeSet` inline is three words).
#[derive(Debug, Clone, Default)]
// The box is the point: one word inline instead of a `BTreeSet`'s three.
#[allow(clippy::box_collection)]
pub(crate) struct GroupSet(Option<Box<std::collections::BTreeSet<GroupName>>>);

impl GroupSet {
    /// Adds `group`; whether it was new.
    pub(crate) fn insert(&mut self, group: GroupName) -> bool {
        self.0.get_or_insert_default().insert(group)
    }

    /// Removes `group`; whether it was there. The last one gone, the set is one pointer again.
    pub(crate) fn remove(&mut self, group: &GroupName) -> bool {
        let Some(set) = &mut self.0 else {
            return false;
        };
        let removed = set.remove(group);
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }

    /// The groups, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &GroupName> {
        self.0.iter().flat_map(|set| set.iter())
    }
}

impl Extend<GroupName> for GroupSet {
    fn extend<I: IntoIterator<Item = GroupName>>(&mut self, groups: I) {
        for group in groups {
            self.insert(group);
        }
    }
}

#[cfg(test)]
mod tests;
