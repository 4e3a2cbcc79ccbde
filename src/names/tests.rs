//! Name validation and subject-pattern matching.

use super::*;

fn m(p: &str, s: &str) -> bool {
    SubjectPattern::new(p).unwrap().matches(s)
}

#[test]
fn star_crosses_dots_and_needs_the_literal_prefix() {
    assert!(m("system.*", "system.time"));
    assert!(m("system.*", "system.statistics.users"));
    assert!(m("system.*", "system."));
    assert!(!m("system.*", "system"));
    assert!(!m("system.*", "other.time"));
    assert!(m("*", "anything at all"));
    assert!(m("**", "x"));
}

#[test]
fn question_mark_is_exactly_one_character() {
    assert!(m("a?c", "abc"));
    assert!(!m("a?c", "ac"));
    assert!(!m("a?c", "abbc"));
    assert!(m("temp.?", "temp.é"));
    assert!(m("??", "éx"));
}

#[test]
fn general_patterns_backtrack() {
    assert!(m("*.time", "system.time"));
    assert!(m("*.time", "a.b.time"));
    assert!(!m("*.time", "system.times"));
    assert!(m("a*b*c", "axxbyyc"));
    assert!(m("a*b*c", "abc"));
    assert!(!m("a*b*c", "acb"));
    assert!(m("*n?", "banana"));
    assert!(!m("*a?", "banana"));
    assert!(m("x*", "x"));
    assert!(!m("exact", "exact."));
    assert!(m("exact", "exact"));
}

#[test]
fn names_are_validated() {
    assert!(ServiceName::new("").unwrap().is_anonymous());
    assert!(ServiceName::new("publisher").is_ok());
    let err = ServiceName::new("bad name").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid service name \"bad name\": contains whitespace at byte 3"
    );
    assert!(matches!(
        ServiceName::new("a\u{7}"),
        Err(InvalidName::BadCharacter {
            what: "a control character",
            ..
        })
    ));
    assert_eq!(
        GroupName::new("").unwrap_err(),
        InvalidName::Empty { kind: "group name" }
    );
    assert!(GroupName::new("tab\there").is_err());
    assert!(Subject::new("with space").is_ok());
    assert!(Subject::new("line\nbreak").is_err());
    assert!(Subject::new("").is_err());
    assert!(SubjectPattern::new("").is_err());
    assert!(SubjectPattern::new("a\nb*").is_err());
}

#[test]
fn audience_spelling_round_trips() {
    assert_eq!(Audience::parse("*").unwrap(), Audience::Everyone);
    assert_eq!(Audience::parse("").unwrap(), Audience::Process);
    assert_eq!(Audience::parse("backend").unwrap().as_str(), "backend");
    assert!(Audience::parse("two words").is_err());
}

#[test]
fn a_group_set_keeps_its_groups_in_order_in_one_pointer() {
    assert_eq!(
        std::mem::size_of::<GroupSet>(),
        std::mem::size_of::<usize>()
    );
    let g = |name: &str| GroupName::new(name).expect("a valid group");
    let mut set = GroupSet::default();
    assert!(!set.remove(&g("a")));
    assert!(set.insert(g("b")));
    assert!(set.insert(g("a")));
    assert!(!set.insert(g("b")));
    set.extend([g("c"), g("a")]);
    let names: Vec<&str> = set.iter().map(GroupName::as_str).collect();
    assert_eq!(names, ["a", "b", "c"]);
    for name in ["a", "b", "c"] {
        assert!(set.remove(&g(name)));
    }
    assert_eq!(set.iter().count(), 0);
    assert!(set.insert(g("a")), "usable again once empty");
}
