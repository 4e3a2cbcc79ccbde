//! The short soak in CI: `netsvc-bench soak --quick --json` (20,000 requests + 200,000
//! reports through one hub, three processes) must pass: every report and answer counted and
//! checked, nothing dropped, every process's memory flat.

mod common;

use std::time::Duration;

/// Longest the quick soak may take here (it takes a few seconds, even unoptimised).
const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn quick_soak_passes() {
    let result = common::last_json_line(&["soak", "--quick", "--json"], LIMIT);
    let line = &result.to_string();
    assert_eq!(result["workload"], "soak");
    assert_eq!(result["passed"], true, "{line}");
    assert_eq!(result["reports"], 200_000);
    assert_eq!(result["requests"], 20_000);
    let consumer = &result["consumer"];
    assert_eq!(consumer["received"], 200_000, "{line}");
    assert_eq!(consumer["answered"], 20_000, "{line}");
    for count in ["lost", "late", "corrupt", "failed"] {
        assert_eq!(consumer[count], 0, "{count}: {line}");
    }
    for traffic in [
        &consumer["traffic"],
        &consumer["hub"],
        &result["producer"]["traffic"],
    ] {
        assert_eq!(traffic["reports_dropped"], 0, "{line}");
    }
    let rss = result["rss"].as_array().expect("RSS samples");
    assert_eq!(rss.len(), 3, "hub, producer, consumer");
    for process in rss {
        let kib = process["kib"].as_array().expect("samples");
        assert_eq!(kib.len(), 11, "0 %, 10 %, …, 100 %: {process}");
        assert!(
            kib.iter().all(|k| k.as_u64().is_some_and(|k| k > 0)),
            "{process}"
        );
        assert!(
            process["end_over_warm"].as_f64().is_some_and(|r| r <= 1.1),
            "{process}"
        );
    }
}
