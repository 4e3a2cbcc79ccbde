//! The gateway workload's smoke in CI: `netsvc-bench gateway --quick --json` (one run per
//! side of 2,000 calls from 16 keep-alive clients, through the gateway and to the bare
//! handler) must pass: every call answered `200 {"result":42}` (the client checks each one
//! and the run fails on any other answer), both sides measured. No figure is checked: this
//! is an unoptimised build on a shared machine.

mod common;

use std::time::Duration;

/// Longest the quick run may take here (a few seconds, even unoptimised).
const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn quick_gateway_run_passes() {
    let result = common::last_json_line(&["gateway", "--quick", "--json"], LIMIT);
    let line = &result.to_string();
    assert_eq!(result["workload"], "gateway_json_calls");
    assert_eq!(result["clients"], 16, "{line}");
    assert_eq!(result["calls"], 2000, "{line}");
    assert_eq!(result["repetitions"], 1, "{line}");
    assert_eq!(result["topology"], "hub", "{line}");
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

#[test]
fn quick_gateway_run_over_a_direct_link_passes() {
    let args = [
        "gateway",
        "--quick",
        "--json",
        "--side",
        "gateway",
        "--topology",
        "direct",
    ];
    let result = common::last_json_line(&args, LIMIT);
    let line = &result.to_string();
    assert_eq!(result["topology"], "direct", "{line}");
    assert!(
        result["netsvc"].as_f64().is_some_and(|x| x > 0.0),
        "the gateway side not measured: {line}"
    );
}
