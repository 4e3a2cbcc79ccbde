//! Replays the fuzz targets' corpora and regressions (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the checks the targets run, so that a plain
//! `cargo test` on stable keeps every past finding fixed, without cargo-fuzz or nightly. See
//! `fuzz/README.md` for running the fuzzers themselves.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use netsvc::fuzzing::{check_chunks, check_frame_body, check_payload, check_stream};

#[path = "../fuzz/session.rs"]
mod session;

/// Every input of one kind (`corpus` or `regressions`) of a target, sorted by name; panics if
/// there are none, so that a moved or emptied folder cannot pass unnoticed.
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, data)
        })
        .collect()
}

/// Runs `check` on each input; a failure names the file.
fn replay(inputs: &[(PathBuf, Vec<u8>)], check: impl Fn(&[u8])) {
    for (path, data) in inputs {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(data))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{} fails: {message}", path.display());
        }
    }
}

fn replay_all(target: &str, check: fn(&[u8])) {
    for kind in ["corpus", "regressions"] {
        replay(&inputs(kind, target), check);
    }
}

#[test]
fn frame_body_corpus_and_regressions_pass() {
    replay_all("frame_body", check_frame_body);
}

#[test]
fn stream_corpus_and_regressions_pass() {
    replay_all("stream", check_stream);
}

#[test]
fn chunks_corpus_and_regressions_pass() {
    replay_all("chunks", check_chunks);
}

#[test]
fn payload_corpus_and_regressions_pass() {
    replay_all("payload", check_payload);
}

/// The crash inputs must be among the regressions, in every target's form.
#[test]
fn the_issue_8_crash_inputs_are_kept_as_regressions() {
    for target in ["frame_body", "stream", "chunks", "payload", "session"] {
        let names: Vec<String> = inputs("regressions", target)
            .into_iter()
            .map(|(path, _)| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for crash in [
            "goodbye-huge-reason",
            "string-capacity-overflow",
            "refused-huge-reason",
        ] {
            assert!(
                names.iter().any(|n| n.starts_with(crash)),
                "{target}: no regression {crash}*"
            );
        }
    }
}

/// Session inputs against one in-process hub: every regression, every seed and a sample of
/// the rest of the corpus; after each, a fresh client's call must be answered correctly, and
/// at the end the long-lived client node's too.
#[test]
fn session_regressions_and_corpus_sample_against_a_hub() {
    const SAMPLE: usize = 48;
    let regressions = inputs("regressions", "session");
    let corpus = inputs("corpus", "session");
    let (seeds, rest): (Vec<_>, Vec<_>) = corpus.into_iter().partition(|(path, _)| {
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
    });
    let stride = rest.len().div_ceil(SAMPLE).max(1);
    let sample: Vec<_> = rest.into_iter().step_by(stride).collect();
    let hub = session::hub();
    for set in [&regressions, &seeds, &sample] {
        replay(set, |data| {
            session::run(data);
            session::check_raw(hub);
        });
    }
    session::check_node(hub);
}
