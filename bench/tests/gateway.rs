//! The gateway workload's smoke in CI: `netsvc-bench gateway --quick --json` (one run per
//! side of 2,000 calls from 16 keep-alive clients, through the gateway and to the bare
//! handler) must pass: every call answered `200 {"result":42}` (the client checks each one
//! and the run fails on any other answer), both sides measured. No figure is checked: this
//! is an unoptimised build on a shared machine.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest the quick run may take here (a few seconds, even unoptimised).
const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn quick_gateway_run_passes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netsvc-bench"))
        .args(["gateway", "--quick", "--json"])
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
                // Its own processes exit when their pipes to it close.
                let _ = child.kill();
                let _ = child.wait();
                panic!("gateway --quick did not finish within {LIMIT:?}");
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
        "gateway --quick failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let line = stdout.lines().last().expect("one JSON line");
    let result: serde_json::Value = serde_json::from_str(line).expect("the JSON line parses");
    assert_eq!(result["workload"], "gateway_json_calls");
    assert_eq!(result["clients"], 16, "{line}");
    assert_eq!(result["calls"], 2000, "{line}");
    assert_eq!(result["repetitions"], 1, "{line}");
    for field in [
        "netsvc",
        "baseline",
        "ratio",
        "netsvc_p99_us",
        "baseline_p99_us",
        "netsvc_cpu_us_per_msg",
        "baseline_cpu_us_per_msg",
    ] {
        assert!(
            result[field].as_f64().is_some_and(|x| x > 0.0),
            "{field}: {line}"
        );
    }
}
