//! `netsvc demo` as a user runs it: the seed scenario and the requests, then a clean exit.

use std::time::Duration;

use netsvc_integration_tests::Process;

const NETSVC: &str = env!("CARGO_BIN_EXE_netsvc");
const WAIT: Duration = Duration::from_secs(15);

#[test]
fn demo_runs_the_seed_scenario_and_requests_then_exits_after_its_duration() {
    let mut demo = Process::start(NETSVC, &["demo", "--duration", "2", "--interval", "0.5"]);
    demo.expect_line("publisher   published system.ctime", WAIT);
    demo.expect_line("became available at", WAIT);
    demo.expect_line("multiply(6, 7) = 42", WAIT);
    demo.expect_line(
        "divide(1, 0) failed: 100 — division by zero (origin \"calculator\")",
        WAIT,
    );
    demo.expect_line("square_root(2) failed: 55 SERVER_METHOD_UNAVAILABLE", WAIT);
    demo.expect_line(
        "slow_square(3) with a 50 ms timeout failed: 47 CLIENT_REQUEST_TIMEOUT",
        WAIT,
    );
    demo.expect_line("slow_square(12), answered after 100 ms, = 144", WAIT);
    demo.expect_line("system.time = ", WAIT);
    demo.expect_line("time is up", WAIT);
    demo.expect_line("calculator left group \"arithmetic\"", WAIT);
    demo.expect_line("calculator was withdrawn", WAIT);
    demo.expect_line("shutdown Arrived", WAIT);
    demo.expect_line("bye", WAIT);
    assert!(demo.wait_exit(WAIT).success());
}

#[test]
fn demo_stops_cleanly_on_ctrl_c() {
    let mut demo = Process::start(NETSVC, &["demo"]);
    demo.expect_line("became available at", WAIT);
    demo.signal("INT");
    demo.expect_line("shutdown Pending", WAIT);
    demo.expect_line("bye", WAIT);
    assert!(demo.wait_exit(WAIT).success());
}

#[test]
fn demo_refuses_a_bad_duration_with_a_clear_message() {
    for bad in ["--duration=-1", "--duration=0", "--duration=NaN"] {
        let out = std::process::Command::new(NETSVC)
            .args(["demo", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--duration must be a positive number of seconds"),
            "{bad}: {stderr}"
        );
    }
}
