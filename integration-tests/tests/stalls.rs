//! A process that was itself stalled is not a dead peer's victim: a hub and its two clients,
//! real processes on 127.0.0.1, are stopped together with SIGSTOP for longer than the
//! exchange's silence limit (`dead_after`, 3 s by default), then continued. None of them may
//! blame the others for its own stall: every link stays up, nothing is withdrawn, and traffic
//! goes on where it stopped. (A peer that is stopped alone is still given up on: see
//! `faults.rs` and `exchange.rs`.) Every process is a child killed by PID when the test ends;
//! every wait is bounded.

use std::time::{Duration, Instant};

use netsvc_integration_tests::{
    addr_in, assert_consecutive, assert_healthy, listen_on, publisher_binding, time_sequence,
    Process,
};

const NODE: &str = env!("CARGO_BIN_EXE_node");
/// Bound of every wait for something that should happen.
const WAIT: Duration = Duration::from_secs(10);
/// The exchange's default silence limit, which the stall outlasts.
const DEAD_AFTER: Duration = Duration::from_secs(3);

fn node(args: &[&str]) -> Process {
    Process::start(NODE, args)
}

#[test]
fn a_hub_and_its_clients_stopped_together_longer_than_dead_after_keep_their_links() {
    const STALL: Duration = Duration::from_secs(4);
    let mut hub = listen_on(NODE, "hub", "127.0.0.1:0", &[], WAIT);
    let addr = addr_in(&hub.timed("listening default")[0].0).to_string();
    let mut server = node(&[
        "--name",
        "server",
        "--connect",
        &addr,
        "--publisher",
        "--interval-ms",
        "50",
        "--responder",
    ]);
    let client_args = [
        "--name",
        "client",
        "--connect",
        &addr,
        "--subscriber",
        "--ping-every",
        "100:calculator",
    ];
    let mut client = node(
        &[
            &client_args[..],
            &["--watch", "publisher", "--watch", "calculator"],
        ]
        .concat(),
    );
    let publisher = publisher_binding(&mut server, WAIT);
    client.expect_line(&format!("{publisher} system.time = seq="), WAIT);
    let flowing = Instant::now();
    client.expect_after(" ok 1 in ", flowing, WAIT);

    // The hub first, then its clients; continued the other way round, so that no process
    // finds anything from its peers waiting when it runs again.
    let stopped = Instant::now();
    for process in [&hub, &server, &client] {
        process.signal("STOP");
    }
    std::thread::sleep(STALL);
    for process in [&client, &server, &hub] {
        process.signal("CONT");
    }
    let thawed = Instant::now();
    assert!(thawed.duration_since(stopped) > DEAD_AFTER + Duration::from_millis(500));

    // Past the silence limit again after the stall: any link that was to be closed for it
    // has been by then.
    let until = thawed + DEAD_AFTER + Duration::from_millis(1_000);
    client.expect_after("^ping calculator", until, WAIT);
    for (who, process) in [
        ("hub", &mut hub),
        ("server", &mut server),
        ("client", &mut client),
    ] {
        let lines = process.seen().to_vec();
        assert!(
            lines.iter().all(|l| !l.starts_with("disconnected")),
            "{who} lost a link: {lines:#?}"
        );
        let connected = lines.iter().filter(|l| l.starts_with("connected")).count();
        assert_eq!(
            connected,
            if who == "hub" { 2 } else { 1 },
            "{who}: {lines:#?}"
        );
    }
    let lines = client.seen().to_vec();
    assert!(
        lines.iter().all(|l| !l.contains(" Withdrawn ")),
        "{lines:#?}"
    );
    // Not a report lost: the links stayed up.
    assert_consecutive("the client", &time_sequence(&lines));
    // Calls made during the stall may have timed out (their 1 s passed while the caller was
    // stopped too); from a second after it, every call is answered at once.
    let summary = assert_healthy(
        &mut client,
        "calculator",
        thawed + Duration::from_secs(1),
        until,
    );
    println!(
        "stopped {STALL:?} together (dead_after {DEAD_AFTER:?}): no link lost; then {summary}"
    );
}
