//! The exchange between real processes on 127.0.0.1: exchange servers and clients are
//! separate `node` processes (see `src/bin/node.rs`), each killed by PID when its test ends.
//! Every wait is bounded.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use netsvc_integration_tests::{addr_in, free_port, Process};

const NODE: &str = env!("CARGO_BIN_EXE_node");
/// Bound of every wait for something that should happen.
const WAIT: Duration = Duration::from_secs(10);
/// How soon a lost connection must show (a killed process closes its sockets at once).
const PROMPTLY: Duration = Duration::from_secs(3);

fn node(args: &[&str]) -> Process {
    Process::start(NODE, args)
}

/// An exchange server on a free port of the default group, and its address.
fn exchange(name: &str) -> (Process, String) {
    exchange_with(name, &[])
}

/// An exchange server on a free port of the default group, also connected to `peers`.
fn exchange_with(name: &str, peers: &[&str]) -> (Process, String) {
    let mut args = vec!["--name", name, "--listen", "127.0.0.1:0"];
    for peer in peers {
        args.extend(["--connect", peer]);
    }
    let mut process = node(&args);
    let line = process.expect_line("listening default", WAIT);
    (process, addr_in(&line).to_string())
}

/// An exchange server of the default group on `addr` exactly. A port picked free a moment
/// ago can be taken meanwhile (an outgoing connection's ephemeral port); then try again.
fn exchange_on(name: &str, addr: &str) -> Process {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut process = node(&["--name", name, "--listen", addr]);
        let line = process.expect_line("listen", WAIT);
        if line.starts_with("listening default") {
            return process;
        }
        assert!(Instant::now() < deadline, "cannot listen on {addr}: {line}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The publisher's binding (`publisher/<agent>`) and its `system.ctime`, from its first line.
fn publisher_identity(publisher: &mut Process) -> (String, String) {
    let line = publisher.expect_line("ctime", WAIT);
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["publisher", binding, "ctime", ctime] => (binding.to_string(), ctime.to_string()),
        _ => panic!("unexpected publisher line {line:?}"),
    }
}

/// The binding (`name/agent`) in a `watch <name> <status> <binding> <location>` line.
fn watched_binding(line: &str) -> String {
    line.split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("not a watch line: {line:?}"))
        .to_owned()
}

/// The milliseconds in a requester line `TAG ... in <ms> ms...`.
fn elapsed_ms(line: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "in")
        .unwrap_or_else(|| panic!("no elapsed time in {line:?}"));
    words[at + 1]
        .parse()
        .unwrap_or_else(|e| panic!("elapsed time in {line:?}: {e}"))
}

/// The sequence numbers of the `system.time` reports a subscriber printed, in order.
fn time_sequence(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| {
            l.split_once("system.time = seq=")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Asserts that `seq` counts up by one: no report twice, none missing in between.
fn assert_consecutive(who: &str, seq: &[u64]) {
    assert!(!seq.is_empty(), "{who} received no system.time");
    for pair in seq.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{who}: system.time reports out of sequence: {seq:?}"
        );
    }
}

#[test]
fn seed_scenario_across_three_processes() {
    let (mut exchange, addr) = exchange("exchange");
    let mut publisher = node(&[
        "--name",
        "publisher-node",
        "--connect",
        &addr,
        "--publisher",
        "--interval-ms",
        "300",
    ]);
    let mut subscriber = node(&[
        "--name",
        "subscriber-node",
        "--connect",
        &addr,
        "--subscriber",
    ]);

    let (binding, ctime) = publisher_identity(&mut publisher);
    subscriber.expect_line(&format!("subscriber publisher Available {binding}"), WAIT);
    subscriber.expect_line(&format!("{binding} became available at {ctime}"), WAIT);
    let first = subscriber.expect_line(&format!("{binding} system.time = seq="), WAIT);
    let second = subscriber.expect_line(&format!("{binding} system.time = seq="), WAIT);
    let seq = time_sequence(&[first, second]);
    assert_eq!(seq.len(), 2);
    assert_eq!(seq[1], seq[0] + 1, "{seq:?}");

    exchange.expect_count("connected default publisher-node", 1, WAIT);
    exchange.expect_count("connected default subscriber-node", 1, WAIT);
    publisher.expect_line("publisher subscription Requested (anonymous)/", WAIT);
    // The cached report came once, ahead of every system.time.
    let lines = subscriber.seen().to_vec();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("became available at"))
            .count(),
        1,
        "{lines:#?}"
    );
    let ctime_at = lines
        .iter()
        .position(|l| l.contains("became available at"))
        .unwrap();
    assert!(
        lines[..ctime_at].iter().all(|l| !l.contains("system.time")),
        "{lines:#?}"
    );
}

#[test]
fn a_late_subscriber_receives_the_cached_report_at_once() {
    let (mut exchange, addr) = exchange("exchange");
    // system.time only once a minute: whatever the subscriber gets comes from the cache.
    let mut publisher = node(&[
        "--name",
        "publisher-node",
        "--connect",
        &addr,
        "--publisher",
        "--interval-ms",
        "60000",
    ]);
    let (binding, ctime) = publisher_identity(&mut publisher);
    exchange.expect_line("connected default publisher-node", WAIT);
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let mut subscriber = node(&[
        "--name",
        "late-subscriber",
        "--connect",
        &addr,
        "--subscriber",
    ]);
    subscriber.expect_line(&format!("{binding} became available at {ctime}"), WAIT);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the cached report took {took:?}"
    );
    publisher.expect_line("publisher subscription Requested (anonymous)/", WAIT);
    let lines = subscriber.collect_for(Duration::from_millis(300));
    assert!(
        lines.iter().all(|l| !l.contains("system.time")),
        "{lines:#?}"
    );
}

#[test]
fn a_killed_publisher_is_withdrawn_from_its_subscriber() {
    let (_exchange, addr) = exchange("exchange");
    let mut publisher = node(&[
        "--name",
        "publisher-node",
        "--connect",
        &addr,
        "--publisher",
        "--interval-ms",
        "200",
    ]);
    let mut subscriber = node(&[
        "--name",
        "subscriber-node",
        "--connect",
        &addr,
        "--subscriber",
        "--watch",
        "publisher",
    ]);
    let (binding, ctime) = publisher_identity(&mut publisher);
    subscriber.expect_line(&format!("watch publisher Available {binding} Remote"), WAIT);
    subscriber.expect_line(&format!("{binding} became available at {ctime}"), WAIT);
    subscriber.expect_line(&format!("{binding} system.time = seq="), WAIT);

    publisher.kill_hard();
    let killed = Instant::now();
    subscriber.expect_count(
        &format!("subscriber publisher Withdrawn {binding}"),
        1,
        WAIT,
    );
    subscriber.expect_count(&format!("watch publisher Withdrawn {binding}"), 1, WAIT);
    let took = killed.elapsed();
    assert!(took < PROMPTLY, "withdrawal seen {took:?} after the kill");

    // Nothing from the dead publisher after its withdrawal.
    let lines = subscriber.collect_for(Duration::from_millis(500));
    let withdrawn = lines
        .iter()
        .position(|l| l.contains("subscriber publisher Withdrawn"))
        .unwrap();
    assert!(
        lines[withdrawn..]
            .iter()
            .all(|l| !l.contains("system.time")),
        "{lines:#?}"
    );
}

#[test]
fn clients_survive_an_exchange_restart_on_the_same_port() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut exchange = exchange_on("exchange", &addr);
    let server_args = [
        "--name",
        "server-node",
        "--connect",
        &addr,
        "--retry-ms",
        "200",
        "--publisher",
        "--interval-ms",
        "300",
        "--responder",
    ];
    let mut server = node(&server_args);
    let client_args = [
        "--name",
        "client-node",
        "--connect",
        &addr,
        "--retry-ms",
        "200",
        "--subscriber",
        "--requester",
        "--watch",
        "publisher",
        "--watch",
        "calculator",
        "--call-on-available",
        "calculator",
    ];
    let mut client = node(&client_args);

    let (publisher, ctime) = publisher_identity(&mut server);
    let became_available = format!("{publisher} became available at {ctime}");
    client.expect_count(&became_available, 1, WAIT);
    let calculator =
        watched_binding(&client.expect_count("watch calculator Available", 1, WAIT)[0]);
    client.expect_count(&format!("caller {calculator} ok 42"), 1, WAIT);

    // A request left pending across the loss of the exchange fails at once, with 57.
    client.send_line("pending calculator slow 5000");
    server.expect_line("calculator slow 5000 requested", WAIT);
    exchange.kill_hard();
    let killed = Instant::now();
    let failed = client.expect_line("pending failed", WAIT);
    let took = killed.elapsed();
    assert!(
        failed.contains("failed 57 SERVER_APPLICATION_ERROR"),
        "{failed}"
    );
    assert!(
        took < PROMPTLY && elapsed_ms(&failed) < 4_000,
        "failure {took:?} after the kill: {failed}"
    );
    client.expect_count(&format!("watch publisher Withdrawn {publisher}"), 1, WAIT);
    client.expect_count(&format!("watch calculator Withdrawn {calculator}"), 1, WAIT);
    client.expect_count(
        &format!("subscriber publisher Withdrawn {publisher}"),
        1,
        WAIT,
    );
    let took = killed.elapsed();
    assert!(took < PROMPTLY, "withdrawals seen {took:?} after the kill");
    server.expect_count("publisher subscription Withdrawn (anonymous)/", 1, WAIT);
    // While there is no exchange, there is no calculator.
    client.send_line("meanwhile calculator multiply 1 2");
    let line = client.expect_line("meanwhile failed", WAIT);
    assert!(
        line.contains("meanwhile failed 46 CLIENT_SERVICE_UNAVAILABLE"),
        "{line}"
    );

    // The same port again: both clients reconnect, the same agents are announced again, the
    // subscription forms again and the cached report is delivered again.
    let mut exchange = exchange_on("exchange-again", &addr);
    client.expect_count(
        &format!("watch publisher Available {publisher} Remote"),
        2,
        WAIT,
    );
    client.expect_count(
        &format!("watch calculator Available {calculator} Remote"),
        2,
        WAIT,
    );
    client.expect_count(
        &format!("subscriber publisher Available {publisher}"),
        2,
        WAIT,
    );
    client.expect_count(&became_available, 2, WAIT);
    server.expect_count("publisher subscription Requested (anonymous)/", 2, WAIT);
    client.expect_count(&format!("caller {calculator} ok 42"), 2, WAIT);
    client.send_line("after calculator multiply 6 7");
    client.expect_line("after ok 42", WAIT);
    let before = time_sequence(client.seen()).len();
    client.expect_count(&format!("{publisher} system.time = seq="), before + 2, WAIT);
    exchange.expect_count("connected default server-node", 1, WAIT);
    exchange.expect_count("connected default client-node", 1, WAIT);
}

#[test]
fn a_frozen_publisher_is_withdrawn_after_the_silence_limit_and_returns_when_thawed() {
    let (_exchange, addr) = exchange("exchange");
    let mut publisher = node(&[
        "--name",
        "publisher-node",
        "--connect",
        &addr,
        "--publisher",
        "--interval-ms",
        "200",
    ]);
    let mut subscriber = node(&[
        "--name",
        "subscriber-node",
        "--connect",
        &addr,
        "--subscriber",
        "--watch",
        "publisher",
    ]);
    let (binding, ctime) = publisher_identity(&mut publisher);
    let became_available = format!("{binding} became available at {ctime}");
    subscriber.expect_count(&became_available, 1, WAIT);

    // A stopped process keeps its sockets open but says nothing: the exchange gives up on it
    // after its silence limit (3 s by default, checked on every 500 ms heartbeat tick).
    publisher.signal("STOP");
    let stopped = Instant::now();
    subscriber.expect_count(&format!("watch publisher Withdrawn {binding}"), 1, WAIT);
    let took = stopped.elapsed();
    assert!(
        took >= Duration::from_millis(2_500) && took < Duration::from_secs(6),
        "withdrawn {took:?} after the publisher froze"
    );
    subscriber.expect_count(
        &format!("subscriber publisher Withdrawn {binding}"),
        1,
        WAIT,
    );

    // Thawed, it finds its connection closed, reconnects and is announced again.
    publisher.signal("CONT");
    subscriber.expect_count(&format!("watch publisher Available {binding}"), 2, WAIT);
    subscriber.expect_count(&became_available, 2, WAIT);
    let before = time_sequence(subscriber.seen()).len();
    subscriber.expect_count(&format!("{binding} system.time = seq="), before + 1, WAIT);
}

#[test]
fn requests_across_processes_respond_fail_time_out_and_fail_on_withdrawal() {
    let (_exchange, addr) = exchange("exchange");
    let mut responder = node(&[
        "--name",
        "responder-node",
        "--connect",
        &addr,
        "--responder",
    ]);
    let mut requester = node(&[
        "--name",
        "requester-node",
        "--connect",
        &addr,
        "--requester",
        "--watch",
        "calculator",
        "--call-on-available",
        "calculator",
    ]);
    requester.expect_line("watch calculator Available calculator/", WAIT);
    // A call made the moment the calculator is announced is answered.
    requester.expect_count("caller calculator/", 1, WAIT);
    assert_eq!(
        requester.matching(" ok 42 in ").len(),
        1,
        "{:#?}",
        requester.seen()
    );

    requester.send_line("a calculator multiply 6 7");
    requester.expect_line("a ok 42", WAIT);

    requester.send_line("b calculator divide 1 0");
    let line = requester.expect_line("b failed", WAIT);
    assert!(line.contains("b failed 100 origin=calculator"), "{line}");
    assert!(line.ends_with("division by zero"), "{line}");

    requester.send_line("c calculator slow 3000 timeout=200");
    let line = requester.expect_line("c failed", WAIT);
    assert!(
        line.contains("c failed 47 CLIENT_REQUEST_TIMEOUT origin=netsvc"),
        "{line}"
    );
    let ms = elapsed_ms(&line);
    assert!((190..2_000).contains(&ms), "timeout after {ms} ms: {line}");

    requester.send_line("d calculator square_root 2");
    let line = requester.expect_line("d failed", WAIT);
    assert!(
        line.contains("d failed 55 SERVER_METHOD_UNAVAILABLE"),
        "{line}"
    );

    // The responder dies while it holds a delayed response: the request fails at once.
    requester.send_line("e calculator slow 5000");
    responder.expect_line("calculator slow 5000 requested", WAIT);
    responder.kill_hard();
    let killed = Instant::now();
    let line = requester.expect_line("e failed", WAIT);
    let took = killed.elapsed();
    assert!(
        line.contains("e failed 57 SERVER_APPLICATION_ERROR origin=netsvc"),
        "{line}"
    );
    assert!(
        took < PROMPTLY && elapsed_ms(&line) < 4_500,
        "failure {took:?} after the kill: {line}"
    );
    requester.expect_count("watch calculator Withdrawn calculator/", 1, WAIT);

    requester.send_line("f calculator multiply 1 2");
    let line = requester.expect_line("f failed", WAIT);
    assert!(
        line.contains("f failed 46 CLIENT_SERVICE_UNAVAILABLE"),
        "{line}"
    );
}

#[test]
fn exchange_groups_keep_group_services_inside_their_group() {
    // A default-group exchange server; a front end that is its client and also the server of
    // the "backend" exchange group; a back end in that group; a client of the default group.
    let (mut exchange, addr) = exchange("default-exchange");
    let front_args = [
        "--name",
        "front",
        "--connect",
        &addr,
        "--listen",
        "127.0.0.1:0@backend",
        "--service",
        "front-svc@*",
        "--watch",
        "backend-svc",
        "--watch",
        "default-svc",
        "--requester",
    ];
    let mut front = node(&front_args);
    let backend_addr = addr_in(&front.expect_line("listening backend", WAIT)).to_string();
    let back_connect = format!("{backend_addr}@backend");
    let back_args = [
        "--name",
        "back",
        "--connect",
        &back_connect,
        "--service",
        "backend-svc@backend",
        "--watch",
        "front-svc",
        "--watch",
        "default-svc",
        "--requester",
    ];
    let mut back = node(&back_args);
    let client_args = [
        "--name",
        "default-client",
        "--connect",
        &addr,
        "--service",
        "default-svc@*",
        "--watch",
        "backend-svc",
        "--watch",
        "front-svc",
        "--requester",
    ];
    let mut client = node(&client_args);

    front.expect_count("connected default default-exchange", 1, WAIT);
    front.expect_count("connected backend back", 1, WAIT);
    back.expect_count("connected backend front", 1, WAIT);
    exchange.expect_count("connected default front", 1, WAIT);
    exchange.expect_count("connected default default-client", 1, WAIT);

    // The front end sees the back end's group service and can call it.
    front.expect_count("watch backend-svc Available backend-svc/", 1, WAIT);
    front.send_line("p backend-svc ping");
    front.expect_line("p ok 1", WAIT);
    // The back end sees services of audience "*" from the default group, and calls them.
    back.expect_count("watch front-svc Available front-svc/", 1, WAIT);
    back.expect_count("watch default-svc Available default-svc/", 1, WAIT);
    back.send_line("q default-svc ping");
    back.expect_line("q ok 1", WAIT);
    front.expect_count("watch default-svc Available default-svc/", 1, WAIT);

    // A default-group process cannot join the backend group's server.
    let mut stray = node(&[
        "--name",
        "stray",
        "--connect",
        &backend_addr,
        "--retry-ms",
        "5000",
        "--watch",
        "backend-svc",
    ]);

    // The default-group client sees the front end (so everything has had time to arrive) but
    // never the back end's group service.
    client.expect_count("watch front-svc Available front-svc/", 1, WAIT);
    let lines = client.collect_for(Duration::from_secs(1));
    assert!(
        lines.iter().all(|l| !l.contains("watch backend-svc")),
        "{lines:#?}"
    );
    let lines = stray.seen().to_vec();
    assert!(
        lines
            .iter()
            .all(|l| !l.starts_with("connected") && !l.contains("watch")),
        "{lines:#?}"
    );
    assert!(front.matching("stray").is_empty(), "{:#?}", front.seen());
    client.send_line("r backend-svc ping");
    let line = client.expect_line("r failed", WAIT);
    assert!(
        line.contains("r failed 46 CLIENT_SERVICE_UNAVAILABLE"),
        "{line}"
    );
}

#[test]
fn a_mesh_of_three_exchange_servers_has_no_duplicates_and_no_loops() {
    // C listens; B listens and connects to C; A listens and connects to B and C.
    let (mut c, c_addr) = exchange("exchange-c");
    let (mut b, b_addr) = exchange_with("exchange-b", &[&c_addr]);
    let (mut a, a_addr) = exchange_with("exchange-a", &[&b_addr, &c_addr]);
    a.expect_count("connected default", 2, WAIT);
    b.expect_count("connected default", 2, WAIT);
    c.expect_count("connected default", 2, WAIT);

    let mut client_a = node(&[
        "--name",
        "client-a",
        "--connect",
        &a_addr,
        "--publisher",
        "--interval-ms",
        "200",
        "--responder",
    ]);
    let mut client_b = node(&[
        "--name",
        "client-b",
        "--connect",
        &b_addr,
        "--subscriber",
        "--watch",
        "publisher",
        "--watch",
        "calculator",
    ]);
    let (publisher, ctime) = publisher_identity(&mut client_a);
    client_b.expect_count(&format!("{publisher} became available at {ctime}"), 1, WAIT);
    client_b.expect_count(&format!("{publisher} system.time = seq="), 2, WAIT);
    client_b.expect_count("watch calculator Available calculator/", 1, WAIT);

    // C's client comes late: the cached report crosses two servers; a call made the moment
    // the calculator is announced is answered.
    let mut client_c = node(&[
        "--name",
        "client-c",
        "--connect",
        &c_addr,
        "--subscriber",
        "--requester",
        "--watch",
        "publisher",
        "--watch",
        "calculator",
        "--call-on-available",
        "calculator",
    ]);
    client_c.expect_count(&format!("{publisher} became available at {ctime}"), 1, WAIT);
    client_c.expect_count(&format!("{publisher} system.time = seq="), 3, WAIT);
    client_c.expect_count("watch calculator Available calculator/", 1, WAIT);
    let line = client_c
        .expect_count("caller calculator/", 1, WAIT)
        .remove(0);
    assert!(line.contains(" ok 42 in "), "{line}");
    client_c.send_line("m calculator multiply 6 7");
    client_c.expect_line("m ok 42", WAIT);
    client_a.expect_count("publisher subscription Requested", 2, WAIT);

    // Let any duplicate or looping message arrive, then count.
    std::thread::sleep(Duration::from_millis(1500));
    for (who, client) in [("client-b", &mut client_b), ("client-c", &mut client_c)] {
        let lines = client.seen().to_vec();
        let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
        assert_eq!(count("watch publisher Available"), 1, "{who}: {lines:#?}");
        assert_eq!(count("watch calculator Available"), 1, "{who}: {lines:#?}");
        assert_eq!(
            count("subscriber publisher Available"),
            1,
            "{who}: {lines:#?}"
        );
        assert_eq!(count("became available at"), 1, "{who}: {lines:#?}");
        assert_eq!(count("Withdrawn"), 0, "{who}: {lines:#?}");
        assert!(lines
            .iter()
            .any(|l| l.contains(&format!("watch publisher Available {publisher} Remote"))));
        assert_consecutive(who, &time_sequence(&lines));
    }
    let lines = client_a.seen().to_vec();
    let subscribers: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("publisher subscription"))
        .collect();
    assert_eq!(subscribers.len(), 2, "{lines:#?}");
    let distinct: HashSet<&str> = subscribers
        .iter()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(distinct.len(), 2, "{subscribers:#?}");
    // Each server: two peers and one client, never a connection lost.
    for (who, server) in [("A", &mut a), ("B", &mut b), ("C", &mut c)] {
        let lines = server.seen().to_vec();
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("connected default"))
                .count(),
            3,
            "{who}: {lines:#?}"
        );
        assert!(
            lines.iter().all(|l| !l.starts_with("disconnected")),
            "{who}: {lines:#?}"
        );
    }
}
