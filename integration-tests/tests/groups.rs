//! Exchange groups between real processes on 127.0.0.1, in OSE's two front-end/back-end
//! layouts (reference §6.8): a public hub of the default group with a public client, a front
//! end in both groups, and a back end in the private group `private`, either behind a private
//! hub of which the front end is a client, or behind the front end itself as the private
//! group's server:
//!
//! ```text
//! client of the private hub:   public-client ─▶ public-hub ◀─ front ─▶ private-hub ◀─ back
//! server of the private group: public-client ─▶ public-hub ◀─ front ◀─ back
//! ```
//!
//! (`a ─▶ b`: `a` is a client of the exchange server `b`.) Every process is a `node` (see
//! `src/bin/node.rs`), killed by PID when its test ends; every wait is bounded.

use std::time::Duration;

use netsvc_integration_tests::{addr_in, Process};

const NODE: &str = env!("CARGO_BIN_EXE_node");
/// Bound of every wait for something that should happen.
const WAIT: Duration = Duration::from_secs(10);

fn node(args: &[&str]) -> Process {
    Process::start(NODE, args)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// The front end is a client of the public hub and of a private hub.
    FrontClientOfPrivateHub,
    /// The front end is a client of the public hub and the server of the private group.
    FrontServerOfPrivateGroup,
}

/// The processes of one layout. Each has a `*` service and, in the two groups, a `private`
/// one: `public-svc` (the public client), `front-star` and `front-private` (the front end),
/// `back-star` and `back-private` (the back end), all exporting `ping`; each watches the
/// services of the others and reads requests from stdin.
struct Mesh {
    public_hub: Process,
    private_hub: Option<Process>,
    front: Process,
    back: Process,
    client: Process,
}

const SERVICES: [&str; 5] = [
    "public-svc",
    "front-star",
    "front-private",
    "back-star",
    "back-private",
];

/// `--watch NAME` for every service but `own`.
fn watches(own: &[&str]) -> Vec<&'static str> {
    SERVICES
        .iter()
        .filter(|s| !own.contains(s))
        .flat_map(|s| ["--watch", s])
        .collect()
}

/// Starts a layout and waits until every process is connected and sees what it should.
fn start(layout: Layout) -> Mesh {
    let hub_args = [
        &["--name", "public-hub", "--listen", "127.0.0.1:0"][..],
        &watches(&[]),
    ]
    .concat();
    let mut public_hub = node(&hub_args);
    let public_addr = addr_in(&public_hub.expect_line("listening default", WAIT)).to_string();

    // The private hub, if the layout has one, and its address.
    let private_hub = (layout == Layout::FrontClientOfPrivateHub).then(|| {
        let args = [
            &["--name", "private-hub", "--listen", "127.0.0.1:0@private"][..],
            &watches(&[]),
        ]
        .concat();
        let mut hub = node(&args);
        let addr = format!(
            "{}@private",
            addr_in(&hub.expect_line("listening private", WAIT))
        );
        (hub, addr)
    });
    let mut front_args = vec!["--name", "front", "--connect", &public_addr];
    match &private_hub {
        Some((_, addr)) => front_args.extend(["--connect", addr]),
        None => front_args.extend(["--listen", "127.0.0.1:0@private"]),
    }
    front_args.extend([
        "--service",
        "front-star@*",
        "--service",
        "front-private@private",
        "--requester",
    ]);
    let mut front = node(&[&front_args[..], &watches(&["front-star", "front-private"])].concat());
    let (mut private_hub, private_addr) = match private_hub {
        Some((hub, addr)) => (Some(hub), addr),
        None => (
            None,
            format!(
                "{}@private",
                addr_in(&front.expect_line("listening private", WAIT))
            ),
        ),
    };

    let own = ["back-star", "back-private"];
    let back_args = ["--name", "back", "--connect", &private_addr, "--requester"];
    let services = [
        "--service",
        "back-star@*",
        "--service",
        "back-private@private",
    ];
    let back = node(&[&back_args[..], &services, &watches(&own)].concat());
    let client_args = [
        "--name",
        "public-client",
        "--connect",
        &public_addr,
        "--service",
        "public-svc@*",
        "--requester",
    ];
    let client = node(&[&client_args[..], &watches(&["public-svc"])].concat());

    public_hub.expect_count("^connected default front", 1, WAIT);
    public_hub.expect_count("^connected default public-client", 1, WAIT);
    match &mut private_hub {
        Some(hub) => {
            hub.expect_count("^connected private front", 1, WAIT);
            hub.expect_count("^connected private back", 1, WAIT);
        }
        None => {
            front.expect_count("^connected private back", 1, WAIT);
        }
    }
    let mut mesh = Mesh {
        public_hub,
        private_hub,
        front,
        back,
        client,
    };
    // What each process sees: everything of audience `*`, and in the private group the
    // private services too.
    for (_, process, sees) in mesh.processes() {
        for service in sees {
            process.expect_count(&format!("watch {service} Available {service}/"), 1, WAIT);
        }
    }
    mesh
}

impl Mesh {
    /// Each process with the services it must see (all but its own of audience `*`, and the
    /// private ones only inside the private group).
    fn processes(&mut self) -> Vec<(&'static str, &mut Process, Vec<&'static str>)> {
        let mut all = vec![
            (
                "public-hub",
                &mut self.public_hub,
                vec!["public-svc", "front-star", "back-star"],
            ),
            (
                "front",
                &mut self.front,
                vec!["public-svc", "back-star", "back-private"],
            ),
            (
                "back",
                &mut self.back,
                vec!["public-svc", "front-star", "front-private"],
            ),
            (
                "public-client",
                &mut self.client,
                vec!["front-star", "back-star"],
            ),
        ];
        if let Some(hub) = &mut self.private_hub {
            all.push(("private-hub", hub, SERVICES.to_vec()));
        }
        all
    }

    /// After things have had time to settle: each process saw each service it must see
    /// announced exactly once, never one it must not see, nothing withdrawn and no
    /// connection lost.
    fn assert_settled(&mut self, layout: Layout) {
        std::thread::sleep(Duration::from_secs(1));
        for (who, process, sees) in self.processes() {
            let lines = process.seen().to_vec();
            for service in SERVICES {
                let announced = lines
                    .iter()
                    .filter(|l| l.starts_with(&format!("watch {service} Available")))
                    .count();
                let expected = usize::from(sees.contains(&service));
                assert_eq!(
                    announced, expected,
                    "{layout:?}: {who} saw {service} announced {announced} time(s): {lines:#?}"
                );
            }
            assert!(
                lines.iter().all(|l| !l.contains(" Withdrawn ")),
                "{layout:?}: {who}: {lines:#?}"
            );
            assert!(
                lines.iter().all(|l| !l.starts_with("disconnected")),
                "{layout:?}: {who}: {lines:#?}"
            );
        }
    }
}

/// Sends `TAG TARGET ping [as=SENDER]` to `process` and returns its outcome line.
fn ping(process: &mut Process, tag: &str, target: &str, sender: Option<&str>) -> String {
    let sender = sender.map(|s| format!(" as={s}")).unwrap_or_default();
    process.send_line(&format!("{tag} {target} ping{sender}"));
    process.expect_line(&format!("{tag} sent"), WAIT);
    process.expect_line(&format!("^{tag} "), WAIT)
}

fn assert_ok(line: &str) {
    assert!(line.contains(" ok 1 in "), "{line}");
}

/// `*` services cross between the groups both ways and are called across; `private` ones
/// stay in the private group and the front end; nothing is announced twice or loops.
fn star_services_cross_both_ways(layout: Layout) {
    let mut mesh = start(layout);
    // Public → back end and back end → public, through the front end (and the private hub).
    assert_ok(&ping(&mut mesh.client, "a", "back-star", None));
    assert_ok(&ping(&mut mesh.back, "b", "public-svc", None));
    assert_ok(&ping(&mut mesh.back, "c", "front-star", None));
    // The private group's own services, inside it.
    assert_ok(&ping(&mut mesh.front, "d", "back-private", None));
    assert_ok(&ping(&mut mesh.back, "e", "front-private", None));
    // A public client cannot reach them: it never heard of them.
    let line = ping(&mut mesh.client, "f", "back-private", None);
    assert!(
        line.contains("f failed 46 CLIENT_SERVICE_UNAVAILABLE"),
        "{line}"
    );
    mesh.assert_settled(layout);
}

#[test]
fn star_services_cross_between_the_groups_with_the_front_end_a_client_of_the_private_hub() {
    star_services_cross_both_ways(Layout::FrontClientOfPrivateHub);
}

#[test]
fn star_services_cross_between_the_groups_with_the_front_end_the_server_of_the_private_group() {
    star_services_cross_both_ways(Layout::FrontServerOfPrivateGroup);
}

/// A requester of audience `private` calling a public service is answered 45 by the hop that
/// cannot pass the request on into the default group, at once, not left waiting (these calls
/// have no timeout); a `*` requester of the same process is answered.
#[test]
fn a_request_whose_requester_cannot_be_seen_beyond_a_hop_is_answered_45_by_that_hop() {
    for layout in [
        Layout::FrontServerOfPrivateGroup,
        Layout::FrontClientOfPrivateHub,
    ] {
        let mut mesh = start(layout);
        // Relayed by the front end (and the private hub before it): refused there.
        let line = ping(&mut mesh.back, "x", "public-svc", Some("back-private"));
        assert!(
            line.contains("x failed 45 CLIENT_SERVICE_ADDRESS_INVALID origin=netsvc"),
            "{layout:?}: {line}"
        );
        assert!(
            line.contains("back-private/") && line.contains("in the default exchange group"),
            "{line}"
        );
        // From the front end itself: refused at the first hop, as before.
        let line = ping(&mut mesh.front, "y", "public-svc", Some("front-private"));
        assert!(
            line.contains("y failed 45 CLIENT_SERVICE_ADDRESS_INVALID origin=netsvc"),
            "{layout:?}: {line}"
        );
        // The same calls from requesters that can be seen: answered.
        assert_ok(&ping(&mut mesh.back, "z", "public-svc", Some("back-star")));
        assert_ok(&ping(
            &mut mesh.back,
            "w",
            "front-private",
            Some("back-private"),
        ));
        assert_ok(&ping(
            &mut mesh.client,
            "v",
            "back-star",
            Some("public-svc"),
        ));
        mesh.assert_settled(layout);
    }
}
