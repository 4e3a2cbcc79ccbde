//! The converge smoke in CI: `netsvc-bench converge --quick --json` (1,000 services announced
//! through a hub, learned by a second client) must finish with the watcher holding all of
//! them and every figure measured.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest the quick run may take here (about a second, even unoptimised).
const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn quick_converge_learns_every_service() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netsvc-bench"))
        .args(["converge", "--quick", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netsvc-bench");
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        match child.try_wait().expect("wait for netsvc-bench") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("converge --quick did not finish within {LIMIT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let output = child.wait_with_output().expect("read the output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    let line = stdout.lines().last().expect("one JSON line");
    let v: serde_json::Value = serde_json::from_str(line).expect("the JSON line parses");
    assert_eq!(v["workload"], "registry_converge_1000", "{line}");
    assert_eq!(v["services"], 1000);
    // One announcement per service at least crossed the watcher's link.
    assert!(v["frames"].as_u64().is_some_and(|f| f >= 1000), "{line}");
    for figure in ["converge_s", "raw_s", "kib_per_local_service"] {
        assert!(
            v[figure].as_f64().is_some_and(|x| x > 0.0),
            "{figure}: {line}"
        );
    }
}
