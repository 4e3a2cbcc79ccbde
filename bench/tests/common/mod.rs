//! What the benchmarks' smoke tests share: running `netsvc-bench` with a bounded wait.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `netsvc-bench ARGS` and returns the last line of its output, parsed as JSON (see
/// [`json_lines`]).
#[allow(dead_code)]
pub(crate) fn last_json_line(args: &[&str], limit: Duration) -> serde_json::Value {
    json_lines(args, limit)
        .pop()
        .expect("one JSON line at least")
}

/// Runs `netsvc-bench ARGS` and returns every line of its output that is JSON. Fails the
/// test if it exits unsuccessfully or runs past `limit` (then it is killed; its own
/// processes exit when their pipes to it close).
pub(crate) fn json_lines(args: &[&str], limit: Duration) -> Vec<serde_json::Value> {
    let what = args.join(" ");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netsvc-bench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netsvc-bench");
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().expect("wait for netsvc-bench") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {limit:?}");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let output = child
        .wait_with_output()
        .expect("read netsvc-bench's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "{what} failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
