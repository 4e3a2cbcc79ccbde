//! The compare smoke in CI: `netsvc-bench compare --quick --json` runs every cross-process
//! workload once per side (netsvc, NATS, and the raw relay where it applies) with small
//! counts. Each run checks its own counts and order and fails the invocation on a miss; this
//! test checks that every workload ran and was measured on both sides. No figure is judged:
//! this is an unoptimised build on a shared machine. (As root, `compare` installs Debian's
//! nats-server when it is missing.)

mod common;

use std::time::Duration;

/// Longest the quick run may take here.
const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn quick_compare_runs_every_workload_on_both_sides() {
    let lines = common::json_lines(&["compare", "--quick", "--json"], LIMIT);
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["workload"].as_str())
        .collect();
    for expected in [
        "request_reply_1_in_flight",
        "request_reply_64_in_flight",
        "reports_1_to_1",
        "reports_1_to_10",
        "reports_1_to_100",
        "reports_payload_1k",
        "reports_payload_64k",
        "reports_payload_1m",
        "request_reply_fanin",
        "burst_unpaced",
        "request_reply_1_in_flight_spin",
        "request_reply_64_in_flight_spin",
        "request_reply_64_in_flight_tls",
        "reports_1_to_1_tls",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for line in &lines {
        for side in ["netsvc", "baseline"] {
            assert!(
                line[side].as_f64().is_some_and(|v| v > 0.0),
                "{side} not measured: {line}"
            );
        }
    }
    let burst = lines
        .iter()
        .find(|l| l["workload"] == "burst_unpaced")
        .expect("burst_unpaced ran");
    assert_eq!(
        burst["netsvc_conflating_last_value_of_every_subject"],
        serde_json::Value::Bool(true),
        "conflating, netsvc must end with every subject's last report: {burst}"
    );
    for side in ["netsvc", "baseline", "netsvc_conflating"] {
        let count = |field: &str| burst[format!("{side}_{field}")].as_u64().unwrap_or(0);
        assert_eq!(
            count("delivered") + count("dropped") + count("conflated"),
            count("published"),
            "{side}: delivered + dropped + conflated is not what was published: {burst}"
        );
        assert!(count("peak_rss_kib") > 0, "{side}: no peak RSS: {burst}");
    }
}
