//! The core's layers hold: every file of `src/` imports only modules of its own layer or of
//! lower ones, never through the crate root's re-exports, and the top-level modules import
//! each other without a cycle.
//!
//! The layers (see the crate docs, "Architecture"):
//!
//! | layer | modules |
//! |---|---|
//! | L0 values | `error`, `ids`, `names`, `payload`, `failure`, `schedule`, `introspection`, `descriptor` |
//! | L1 wire | `wire` |
//! | L2 transport | `transport` |
//! | L3 delivery | `delivery` |
//! | L4 meaning | `registry`, `report`, `request` |
//! | L5 runtime | `node`, `shutdown`, `service`, `spawn`, `watch`, `telemetry` |
//! | L6 exchange | `exchange` |
//! | crate root | `lib.rs` and its hidden `fuzzing` checks, which may import anything |

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of each top-level module of `src/`.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("ids", 0),
    ("names", 0),
    ("payload", 0),
    ("failure", 0),
    ("schedule", 0),
    ("introspection", 0),
    ("descriptor", 0),
    ("wire", 1),
    ("transport", 2),
    ("delivery", 3),
    ("registry", 4),
    ("report", 4),
    ("request", 4),
    ("node", 5),
    ("shutdown", 5),
    ("service", 5),
    ("spawn", 5),
    ("watch", 5),
    ("telemetry", 5),
    ("exchange", 6),
];

/// Files above every layer: the crate root and what only it uses.
const ROOT: &[&str] = &["lib", "fuzzing"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/delivery/inbox.rs`: `delivery`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("a file under src/");
    let first = relative.components().next().expect("a path");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// The top-level modules a file names through `crate::…`, whether in a `use` or in a path;
/// `crate::Name` (a re-export of the crate root) counts as `lib`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            if rest.starts_with('{') {
                // `use crate::{a::X, b::Y}`: each item's first segment.
                let inner = &rest[1..rest.find('}').unwrap_or(rest.len())];
                for item in inner.split(',') {
                    let segment = item.trim().split("::").next().unwrap_or("").trim();
                    if !segment.is_empty() {
                        found.insert(classify(segment));
                    }
                }
                continue;
            }
            let segment: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !segment.is_empty() {
                found.insert(classify(&segment));
            }
        }
    }
    found
}

/// A module name as is; an item of the crate root (`crate::Payload`) as `lib`.
fn classify(segment: &str) -> String {
    if segment.starts_with(|c: char| c.is_uppercase()) || segment == "__private" {
        "lib".to_owned()
    } else {
        segment.to_owned()
    }
}

#[test]
fn every_file_imports_its_own_layer_or_lower_ones_and_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let text = std::fs::read_to_string(file).expect("a source file");
        if ROOT.contains(&module.as_str()) {
            continue;
        }
        let Some(&layer) = layers.get(module.as_str()) else {
            panic!(
                "{} is in no layer: add its module to LAYERS",
                file.display()
            );
        };
        for imported in imports(&text) {
            if imported == module {
                continue;
            }
            match layers.get(imported.as_str()) {
                None if imported == "lib" => upward.push(format!(
                    "{} (L{layer}) names an item through the crate root (`crate::Name`): \
                     name the module it is defined in",
                    file.display()
                )),
                Some(&to) if to <= layer => {
                    graph.entry(module.clone()).or_default().insert(imported);
                }
                Some(&to) => upward.push(format!(
                    "{} (L{layer}) imports {imported} (L{to})",
                    file.display()
                )),
                None => upward.push(format!(
                    "{} (L{layer}) imports `crate::{imported}`, a module in no layer",
                    file.display()
                )),
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );

    // No cycle between top-level modules (a depth-first search for a back edge).
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|m| m == module) {
            panic!("import cycle: {} -> {module}", path[at..].join(" -> "));
        }
        if !done.insert(module.to_owned()) {
            return;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_check_sees_imports_in_every_form_it_must_refuse() {
    let seen = imports(
        "use crate::delivery::{Binding, Inbox};\n\
         use crate::{names::X, Payload};\n\
         let x = crate::registry::Lookup::All; // crate::node::Node in a comment\n\
         pub(crate) use crate::ids::AgentId;\n",
    );
    let expected: BTreeSet<String> = ["delivery", "names", "lib", "registry", "ids"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(seen, expected);
}
