//! Silent network faults between real processes, each in a network namespace of its own joined
//! by veth pairs to a bridge namespace (see `netsvc_integration_tests::netns`): a blackholed
//! link (5.5 s, and 11 s to show whether a reconnection attempt is bounded), and one hub of a
//! three-hub mesh partitioned from the other two. The faults are
//! nftables drop rules on the bridge, so nothing tells the endpoints: they must notice the
//! silence themselves (dead_after, 3 s by default) and reconnect once the network is back.
//!
//! Root only: without root, `ip netns` or `nft`, each test prints why and passes (unless
//! `NETSVC_REQUIRE_NETNS=1`, set by CI as root, which makes that a failure). Each lab has
//! unique names and is deleted when its test ends, also on failure; every process is killed by
//! PID; every wait is bounded. The tests of this file run one at a time.

use std::time::{Duration, Instant};

use netsvc_integration_tests::netns::{available, Host, Lab};
use netsvc_integration_tests::{assert_healthy, publisher_binding, serial, Process};

const NODE: &str = env!("CARGO_BIN_EXE_node");
/// Bound of every wait for something that should happen.
const WAIT: Duration = Duration::from_secs(10);
/// The port every hub listens on, inside its own namespace.
const PORT: u16 = 7000;
/// How long a fault lasts: more than dead_after and its 500 ms check.
const FAULT: Duration = Duration::from_millis(5_500);
/// When a lost connection must be noticed, after the fault begins (dead_after is 3 s, checked
/// every 500 ms; traffic every 200 ms at most before the fault).
const DETECTED: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(2_500)..=Duration::from_millis(4_000);
/// When a connection must be back after the fault ends. The first reconnection attempt starts
/// 3.2–4 s into the fault (detection plus the 200 ms retry delay) and sends its SYN into it;
/// the kernel retransmits it 1 s and 3 s later (the lab's hosts use the classic schedule), so
/// with the fault 5.5 s long a SYN goes out at most 1.5 s after the end.
const RECONNECTED: Duration = Duration::from_millis(2_000);
/// When traffic through a connection that came back must flow again, after the fault ends.
const TRAFFIC_BACK: Duration = Duration::from_millis(2_500);

/// `node` with `args`, in `host`'s namespace.
fn node(lab: &Lab, host: &Host, args: &[&str]) -> Process {
    let mut command = lab.command(host, NODE);
    command.args(args);
    Process::spawn(command)
}

/// A hub in `host`'s namespace on [`PORT`], also connected to `peers`, with `extra` arguments.
fn hub(lab: &Lab, host: &Host, name: &str, peers: &[&Host], extra: &[&str]) -> Process {
    let listen = host.addr(PORT);
    let mut args = vec!["--name", name, "--listen", &listen];
    let peers: Vec<String> = peers.iter().map(|p| p.addr(PORT)).collect();
    for peer in &peers {
        args.extend(["--connect", peer]);
    }
    args.extend_from_slice(extra);
    let mut process = node(lab, host, &args);
    let line = process.expect_line("listen", WAIT);
    assert!(line.starts_with("listening default"), "{line}");
    process
}

fn assert_detected(who: &str, at: Instant, fault: Instant) -> Duration {
    let took = at.saturating_duration_since(fault);
    assert!(
        DETECTED.contains(&took),
        "{who} noticed the fault {took:?} after it began (expected {DETECTED:?})"
    );
    took
}

fn assert_back(what: &str, at: Instant, restored: Instant, bound: Duration) -> Duration {
    assert!(at > restored, "{what} before the network was restored");
    let took = at.duration_since(restored);
    assert!(
        took <= bound,
        "{what} {took:?} after the network was restored (bound {bound:?})"
    );
    took
}

/// A hub, a server (publisher and calculator), a client and a witness (both subscribe and
/// ping the calculator), each in its namespace; the client's link is blackholed for
/// `fault_length`.
/// Asserts detection in 3–3.5 s (within [`DETECTED`]), the client back within `back` of the
/// restore (its traffic within `back` and half a second), the witness and the server never
/// affected. Returns a summary for the log.
fn blackhole_scenario(fault_length: Duration, back: Duration) -> String {
    let _serial = serial();
    // Dropped after every process below: they are killed before the namespaces go.
    let mut lab = Lab::new();
    let (hub_host, server_host, client_host, witness_host) = (
        lab.host("hub"),
        lab.host("server"),
        lab.host("client"),
        lab.host("witness"),
    );
    let addr = hub_host.addr(PORT);
    let mut hub = hub(&lab, &hub_host, "hub", &[], &[]);
    let mut server = node(
        &lab,
        &server_host,
        &[
            "--name",
            "server",
            "--connect",
            &addr,
            "--publisher",
            "--interval-ms",
            "100",
            "--responder",
        ],
    );
    let pinging = ["--subscriber", "--ping-every", "200:calculator"];
    let mut client = node(
        &lab,
        &client_host,
        &[&["--name", "client", "--connect", &addr][..], &pinging].concat(),
    );
    let mut witness = node(
        &lab,
        &witness_host,
        &[&["--name", "witness", "--connect", &addr][..], &pinging].concat(),
    );
    let publisher = publisher_binding(&mut server, WAIT);
    for who in [&mut client, &mut witness] {
        who.expect_line(&format!("{publisher} system.time = seq="), WAIT);
        who.expect_line(" ok 1 in ", WAIT);
    }

    let fault = Instant::now();
    lab.blackhole(&client_host);
    let (_, client_lost) = client.expect_nth("^disconnected default hub", 1, WAIT);
    let (_, hub_lost) = hub.expect_nth("^disconnected default client", 1, WAIT);
    let client_detect = assert_detected("the client", client_lost, fault);
    let hub_detect = assert_detected("the hub", hub_lost, fault);
    client.expect_count("subscriber publisher Withdrawn", 1, WAIT);

    std::thread::sleep((fault + fault_length).saturating_duration_since(Instant::now()));
    let restored = Instant::now();
    lab.restore();
    // Waited for longer than the bounds, to tell by how much they are missed.
    let limit = back + WAIT;
    let (_, reconnected) = client.expect_nth("^connected default hub", 2, limit);
    let (_, ping_back) = client.expect_after(" ok 1 in ", restored, limit);
    let (_, report_back) = client.expect_after("system.time = seq=", restored, limit);
    let traffic = back + Duration::from_millis(500);
    let reconnect = assert_back("the client reconnected", reconnected, restored, back);
    let ping = assert_back(
        "the client's pings were answered",
        ping_back,
        restored,
        traffic,
    );
    let report = assert_back("the client's reports came", report_back, restored, traffic);

    // The others never noticed; the client is healthy again.
    let end = Instant::now() + Duration::from_millis(1_000);
    client.expect_after("^ping calculator", end, WAIT);
    let witness_summary = assert_healthy(&mut witness, "calculator", fault, end);
    assert!(
        witness.matching("disconnected").is_empty(),
        "{:#?}",
        witness.seen()
    );
    assert!(
        server.matching("disconnected").is_empty(),
        "{:#?}",
        server.seen()
    );
    let client_summary = assert_healthy(&mut client, "calculator", ping_back.max(report_back), end);
    format!(
        "blackhole {fault_length:?}: noticed after {client_detect:?} (client) and {hub_detect:?} (hub); after the \
         restore the client reconnected after {reconnect:?}, pings answered after {ping:?}, reports after {report:?}; \
         witness throughout: {witness_summary}; client after: {client_summary}"
    )
}

#[test]
fn a_blackholed_link_is_detected_in_3_to_3_5_s_and_traffic_returns_soon_after_it_is_restored() {
    let test =
        "a_blackholed_link_is_detected_in_3_to_3_5_s_and_traffic_returns_soon_after_it_is_restored";
    if available(test) {
        println!("{}", blackhole_scenario(FAULT, RECONNECTED));
    }
}

/// A blackhole long enough that a reconnection attempt left to the kernel has had its SYN
/// retransmitted three times (1, 3 and 7 s after it was first sent, all into the fault) and the
/// next is due 8 s later: 7–8 s after the restore (issue 8, item 8: measured 7.8 s without a
/// connect timeout). A client that bounds each attempt (`ExchangeConfig::connect_timeout`,
/// then the retry delay) sends a fresh SYN sooner; any bound up to the handshake timeout (5 s)
/// plus the retry delay brings it back within [`LONG_FAULT_BACK`].
const LONG_FAULT: Duration = Duration::from_secs(11);
/// When the client must be back after [`LONG_FAULT`] ends.
const LONG_FAULT_BACK: Duration = Duration::from_secs(6);

#[test]
fn after_a_long_blackhole_the_client_reconnects_within_seconds_not_at_the_next_syn_retransmission()
{
    let test = "after_a_long_blackhole_the_client_reconnects_within_seconds_not_at_the_next_syn_retransmission";
    if available(test) {
        println!("{}", blackhole_scenario(LONG_FAULT, LONG_FAULT_BACK));
    }
}

#[test]
fn a_hub_partitioned_from_a_three_hub_mesh_is_withdrawn_and_comes_back_while_the_others_keep_serving(
) {
    let test = "a_hub_partitioned_from_a_three_hub_mesh_is_withdrawn_and_comes_back_while_the_others_keep_serving";
    if !available(test) {
        return;
    }
    let _serial = serial();
    let mut lab = Lab::new();
    let (a_host, b_host, c_host) = (lab.host("hub-a"), lab.host("hub-b"), lab.host("hub-c"));
    let (ca_host, cb_host, cc_host) = (
        lab.host("client-a"),
        lab.host("client-b"),
        lab.host("client-c"),
    );
    // C listens; B listens and connects to C; A listens and connects to B and C. Each hub has
    // a service of its own.
    let mut hub_c = hub(&lab, &c_host, "C", &[], &["--service", "hub-c@*"]);
    let mut hub_b = hub(&lab, &b_host, "B", &[&c_host], &["--service", "hub-b@*"]);
    let mut hub_a = hub(
        &lab,
        &a_host,
        "A",
        &[&b_host, &c_host],
        &["--service", "hub-a@*"],
    );
    let (a_addr, b_addr, c_addr) = (a_host.addr(PORT), b_host.addr(PORT), c_host.addr(PORT));
    let mut client_a = node(
        &lab,
        &ca_host,
        &[
            "--name",
            "client-a",
            "--connect",
            &a_addr,
            "--service",
            "svc-a@*",
            "--ping-every",
            "200:svc-b",
            "--watch",
            "svc-b",
            "--watch",
            "svc-c",
            "--watch",
            "hub-c",
        ],
    );
    let mut client_b = node(
        &lab,
        &cb_host,
        &[
            "--name",
            "client-b",
            "--connect",
            &b_addr,
            "--service",
            "svc-b@*",
            "--ping-every",
            "200:svc-a",
            "--watch",
            "svc-a",
            "--watch",
            "svc-c",
            "--watch",
            "hub-c",
        ],
    );
    let mut client_c = node(
        &lab,
        &cc_host,
        &[
            "--name",
            "client-c",
            "--connect",
            &c_addr,
            "--service",
            "svc-c@*",
            "--ping-every",
            "200:svc-a",
            "--watch",
            "svc-a",
            "--watch",
            "svc-b",
            "--watch",
            "hub-a",
        ],
    );
    for (who, hub) in [("A", &mut hub_a), ("B", &mut hub_b), ("C", &mut hub_c)] {
        let lines = hub.expect_count("^connected default", 3, WAIT);
        assert_eq!(lines.len(), 3, "{who}: {lines:#?}");
    }
    for name in ["svc-b", "svc-c", "hub-c"] {
        client_a.expect_count(&format!("watch {name} Available"), 1, WAIT);
    }
    for name in ["svc-a", "svc-c", "hub-c"] {
        client_b.expect_count(&format!("watch {name} Available"), 1, WAIT);
    }
    for name in ["svc-a", "svc-b", "hub-a"] {
        client_c.expect_count(&format!("watch {name} Available"), 1, WAIT);
    }
    for (client, pinged) in [
        (&mut client_a, "svc-b"),
        (&mut client_b, "svc-a"),
        (&mut client_c, "svc-a"),
    ] {
        let now = Instant::now();
        client.expect_after(&format!("^ping {pinged} "), now, WAIT);
        client.expect_after(" ok 1 in ", now, WAIT);
    }

    // C is cut off from A and B (its client still reaches it).
    let fault = Instant::now();
    lab.cut(&c_host, &a_host);
    lab.cut(&c_host, &b_host);
    let mut detections = Vec::new();
    for (who, hub, peers) in [
        ("A", &mut hub_a, &["C"][..]),
        ("B", &mut hub_b, &["C"][..]),
        ("C", &mut hub_c, &["A", "B"][..]),
    ] {
        for peer in peers {
            let (_, at) = hub.expect_nth(&format!("^disconnected default {peer}"), 1, WAIT);
            let took = assert_detected(&format!("hub {who} (link to {peer})"), at, fault);
            detections.push(format!("{who}-{peer} {took:?}"));
        }
    }
    // What lives behind C is withdrawn from the others' clients, and what lives behind A and B
    // from C's client; nobody else is withdrawn.
    let mut withdrawn = Vec::new();
    for (who, client, names) in [
        ("client-a", &mut client_a, ["svc-c", "hub-c"]),
        ("client-b", &mut client_b, ["svc-c", "hub-c"]),
        ("client-c", &mut client_c, ["svc-a", "svc-b"]),
    ] {
        for name in names {
            let (_, at) = client.expect_nth(&format!("watch {name} Withdrawn"), 1, WAIT);
            let took = at.saturating_duration_since(fault);
            assert!(
                took <= *DETECTED.end() + Duration::from_millis(500),
                "{who}: {name} withdrawn after {took:?}"
            );
            withdrawn.push(format!("{name} at {who} {took:?}"));
        }
    }
    client_c.expect_nth("watch hub-a Withdrawn", 1, WAIT);

    std::thread::sleep((fault + FAULT).saturating_duration_since(Instant::now()));
    let healed = Instant::now();
    lab.restore();
    let mut back = Vec::new();
    for (who, hub, peer) in [("A", &mut hub_a, "C"), ("B", &mut hub_b, "C")] {
        let (_, at) = hub.expect_nth(&format!("^connected default {peer}"), 2, WAIT);
        back.push(format!(
            "{who}-{peer} {:?}",
            assert_back(
                &format!("hub {who} reconnected to {peer}"),
                at,
                healed,
                RECONNECTED
            )
        ));
    }
    for (who, client, names) in [
        ("client-a", &mut client_a, &["svc-c", "hub-c"][..]),
        ("client-b", &mut client_b, &["svc-c", "hub-c"][..]),
        ("client-c", &mut client_c, &["svc-a", "svc-b", "hub-a"][..]),
    ] {
        for name in names {
            let (_, at) = client.expect_nth(&format!("watch {name} Available"), 2, WAIT);
            back.push(format!(
                "{name} at {who} {:?}",
                assert_back(&format!("{who}: {name}"), at, healed, TRAFFIC_BACK)
            ));
        }
    }
    let (line, c_ping_ok) = client_c.expect_after(" ok 1 in ", healed, WAIT);
    assert!(line.starts_with("ping svc-a"), "{line}");
    let c_took = assert_back(
        "client-c's pings of svc-a answered",
        c_ping_ok,
        healed,
        TRAFFIC_BACK,
    );

    // Throughout, A and B served each other's clients; afterwards everything is announced
    // once more and no more (no flapping, no duplicates), and C's client never lost C.
    let end = Instant::now() + Duration::from_millis(1_000);
    client_a.expect_after("^ping svc-b", end, WAIT);
    client_b.expect_after("^ping svc-a", end, WAIT);
    client_c.expect_after("^ping svc-a", end, WAIT);
    let a_summary = assert_healthy(&mut client_a, "svc-b", fault, end);
    let b_summary = assert_healthy(&mut client_b, "svc-a", fault, end);
    let c_summary = assert_healthy(&mut client_c, "svc-a", c_ping_ok, end);
    for (who, client, gone) in [
        ("client-a", &mut client_a, &["svc-c", "hub-c"][..]),
        ("client-b", &mut client_b, &["svc-c", "hub-c"][..]),
        ("client-c", &mut client_c, &["svc-a", "svc-b", "hub-a"][..]),
    ] {
        let lines = client.seen().to_vec();
        let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
        for name in gone {
            assert_eq!(
                count(&format!("watch {name} Available")),
                2,
                "{who}: {lines:#?}"
            );
            assert_eq!(
                count(&format!("watch {name} Withdrawn")),
                1,
                "{who}: {lines:#?}"
            );
        }
        assert_eq!(
            count("Withdrawn"),
            gone.len(),
            "{who}: only what was behind the partition went: {lines:#?}"
        );
        assert!(
            lines.iter().all(|l| !l.starts_with("disconnected")),
            "{who}: {lines:#?}"
        );
    }
    // Each hub lost the links through the partition once, made them once again, and no other
    // link came or went (a duplicate link rejected while healing would show here too).
    for (who, hub, expected) in [
        (
            "A",
            &mut hub_a,
            &[("^connected default C", 2), ("^disconnected default", 1)][..],
        ),
        (
            "B",
            &mut hub_b,
            &[("^connected default C", 2), ("^disconnected default", 1)][..],
        ),
        (
            "C",
            &mut hub_c,
            &[
                ("^connected default A", 2),
                ("^connected default B", 2),
                ("^disconnected default", 2),
            ][..],
        ),
    ] {
        for (needle, count) in expected {
            let lines = hub.matching(needle);
            assert_eq!(
                lines.len(),
                *count,
                "hub {who}, {needle:?}: {:#?}",
                hub.seen()
            );
        }
    }
    println!(
        "partition {FAULT:?} of hub C: noticed {}; withdrawn {}; after healing: {}; client-c's pings answered again \
         after {c_took:?}; throughout: client-a {a_summary}; client-b {b_summary}; client-c after: {c_summary}",
        detections.join(", "),
        withdrawn.join(", "),
        back.join(", ")
    );
}
