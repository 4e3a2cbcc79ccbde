//! The converge smoke in CI: `netsvc-bench converge --quick --json` (1,000 services announced
//! through a hub, learned by a second client) must finish with the watcher holding all of
//! them and every figure measured.

mod common;

use std::time::Duration;

/// Longest the quick run may take here (about a second, even unoptimised).
const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn quick_converge_learns_every_service() {
    let v = common::last_json_line(&["converge", "--quick", "--json"], LIMIT);
    let line = &v.to_string();
    assert_eq!(v["workload"], "registry_converge_1000", "{line}");
    assert_eq!(v["services"], 1000);
    // One announcement per service at least crossed the watcher's link.
    assert!(v["frames"].as_u64().is_some_and(|f| f >= 1000), "{line}");
    for figure in [
        "converge_s",
        "raw_s",
        "kib_per_local_service",
        "kib_per_bare_actor",
    ] {
        assert!(
            v[figure].as_f64().is_some_and(|x| x > 0.0),
            "{figure}: {line}"
        );
    }
}
