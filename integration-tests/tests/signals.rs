//! Shutdown by signal, in a real process: the first SIGINT/SIGTERM runs the two-phase
//! shutdown; a second signal exits at once.

use std::time::Duration;

use netsvc_integration_tests::Process;

const NODE: &str = env!("CARGO_BIN_EXE_shutdown_node");
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn sigterm_runs_pending_then_arrived_then_exits_cleanly() {
    let mut node = Process::start(NODE, &["200"]);
    node.expect_line("ready", WAIT);
    node.signal("TERM");
    node.expect_line("shutdown Pending", WAIT);
    node.expect_line("shutdown Arrived", WAIT);
    node.expect_line("stopping", WAIT);
    node.expect_line("complete", WAIT);
    let status = node.wait_exit(WAIT);
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_second_sigint_exits_at_once_without_waiting_for_the_delay() {
    let mut node = Process::start(NODE, &["30000"]);
    node.expect_line("ready", WAIT);
    node.signal("INT");
    node.expect_line("shutdown Pending", WAIT);
    node.signal("INT");
    let status = node.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(130));
    let output = node.rest_of_output(Duration::from_millis(200));
    assert!(!output.iter().any(|l| l.contains("Arrived")), "{output:?}");
}
