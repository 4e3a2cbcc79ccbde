//! The `netsvc` command line against a real `netsvc exchange` with the examples connected:
//! every client verb as a user types it. Each process is killed by PID when its test ends
//! and every wait is bounded.
//!
//! The `netsvc` binary and the examples are found next to this crate's `node` binary (one
//! target directory): `cargo test --workspace` builds them all before any test runs.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use netsvc_integration_tests::Process;

const NODE: &str = env!("CARGO_BIN_EXE_node");
const WAIT: Duration = Duration::from_secs(10);

/// A binary of the workspace's target directory, by its path relative to `node`'s directory.
fn built(relative: &str) -> String {
    let dir = PathBuf::from(NODE);
    let path = dir.parent().expect("a directory").join(relative);
    assert!(
        path.exists(),
        "{} is not built: run `cargo test --workspace` (it builds the netsvc binary and the examples)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

fn netsvc() -> String {
    built("netsvc")
}

fn example(name: &str) -> String {
    built(&format!("examples/{name}"))
}

/// What a finished command printed, and how it ended.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `netsvc ARGS` to its end (killed after `limit`), with colour forced off by nothing:
/// stderr is a pipe here.
fn cli(args: &[&str], limit: Duration) -> Output {
    let started = Instant::now();
    let mut child = Command::new(netsvc())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netsvc starts");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netsvc {args:?} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
        took: started.elapsed(),
    }
}

/// The address in `netsvc exchange`'s "exchange listening on ADDR (group …)" line.
fn listening_addr(line: &str) -> String {
    let rest = line.split("listening on ").nth(1).expect("an address");
    rest.split_whitespace()
        .next()
        .expect("an address")
        .to_owned()
}

/// Each line of `text` as a JSON value (what `--json` prints).
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// A running mesh: an exchange server and the calculator, publisher and subscriber examples.
struct Mesh {
    addr: String,
    exchange: Process,
    subscriber: Process,
    publisher: Process,
    _calculator: Process,
}

fn mesh() -> Mesh {
    // The hub spins when idle (50 µs after each read or write): every command-line test
    // goes through a spinning exchange server.
    let mut exchange = Process::start(
        &netsvc(),
        &["exchange", "--listen", "127.0.0.1:0", "--spin-us", "50"],
    );
    let line = exchange.expect_line("exchange listening on", WAIT);
    let addr = listening_addr(&line);
    let calculator = Process::start(&example("calculator"), &["--connect", &addr, "--serve"]);
    let publisher = Process::start(
        &example("publisher"),
        &["--connect", &addr, "--interval", "0.2"],
    );
    let mut subscriber = Process::start(&example("subscriber"), &["--connect", &addr]);
    subscriber.expect_line("became available", WAIT);
    exchange.expect_count("connected:", 3, WAIT);
    Mesh {
        addr,
        exchange,
        subscriber,
        publisher,
        _calculator: calculator,
    }
}

impl Mesh {
    fn cli(&self, verb: &[&str], limit: Duration) -> Output {
        let mut args = verb.to_vec();
        args.extend(["--connect", &self.addr]);
        cli(&args, limit)
    }
}

#[test]
fn list_shows_the_services_with_their_nodes_and_the_nodes_with_their_links() {
    let mesh = mesh();
    let out = mesh.cli(&["list"], WAIT);
    assert!(out.status.success(), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0]
        .split_whitespace()
        .eq(["NAME", "AGENT", "GROUPS", "AUDIENCE", "PROCESS", "NODE", "LOCATION"]));
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["calculator", "publisher"], "{}", out.stdout);
    let calculator = lines[1].split_whitespace().collect::<Vec<_>>();
    assert_eq!(calculator[2], "arithmetic", "{}", out.stdout);
    assert_eq!(calculator[3], "*", "{}", out.stdout);
    assert_eq!(calculator[5], "calculator", "node name: {}", out.stdout);
    assert!(calculator[6].starts_with("127.0.0.1:"), "{}", out.stdout);

    // By group, and the groups with their members.
    let out = mesh.cli(&["list", "--group", "arithmetic", "--json"], WAIT);
    let objects: Vec<serde_json::Value> = json_lines(&out.stdout);
    assert_eq!(objects.len(), 1, "{}", out.stdout);
    assert_eq!(objects[0]["name"], "calculator");
    assert_eq!(objects[0]["groups"], serde_json::json!(["arithmetic"]));
    let out = mesh.cli(&["list", "groups"], WAIT);
    assert!(out.status.success(), "{}", out.stderr);
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["GROUP", "MEMBERS", "SERVICES"],
            vec!["arithmetic", "1", "calculator"]
        ]
    );

    // --json: one object per line, full identities.
    let out = mesh.cli(&["list", "--name", "publisher", "--json"], WAIT);
    assert!(out.status.success(), "{}", out.stderr);
    let objects: Vec<serde_json::Value> = json_lines(&out.stdout);
    assert_eq!(objects.len(), 1, "{}", out.stdout);
    assert_eq!(objects[0]["name"], "publisher");
    assert_eq!(objects[0]["node"], "publisher");
    assert_eq!(objects[0]["agent"].as_str().map(str::len), Some(36));

    // The nodes: the exchange with a link to each example and to the tool, counters > 0.
    let out = mesh.cli(&["list", "nodes", "--json"], WAIT);
    assert!(out.status.success(), "{}", out.stderr);
    let nodes: Vec<serde_json::Value> = json_lines(&out.stdout);
    let hub = nodes
        .iter()
        .find(|n| n["node"] == "exchange")
        .expect("the exchange");
    let mut peers: Vec<&str> = hub["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["peer_node"].as_str().unwrap())
        .collect();
    peers.sort();
    assert_eq!(
        peers,
        ["calculator", "netsvc-list", "publisher", "subscriber"],
        "{}",
        out.stdout
    );
    assert!(hub["links"][0]["frames_in"].as_u64() > Some(0));
    assert_eq!(
        nodes.len(),
        4,
        "exchange and three examples: {}",
        out.stdout
    );
}

#[test]
fn call_prints_results_and_failures_with_their_exit_codes() {
    let mesh = mesh();
    let out = mesh.cli(&["call", "calculator", "multiply", "6", "7"], WAIT);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "42");

    let out = mesh.cli(&["call", "calculator", "divide", "1", "0"], WAIT);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let line = out.stderr.trim();
    for part in [
        "100",
        "APPLICATION_ERROR",
        "division by zero",
        "calculator",
        "1 / 0",
    ] {
        assert!(line.contains(part), "{part:?} in {line:?}");
    }

    let out = mesh.cli(&["call", "nosuch", "x"], WAIT);
    assert_eq!(out.status.code(), Some(46), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(1), "{:?}", out.took);
    assert!(
        out.stderr.contains("no service named \"nosuch\""),
        "{}",
        out.stderr
    );

    let cases: [(&[&str], i32, &str); 5] = [
        (&["call", "calculator", "nosuch"], 55, "exports no method"),
        (&["call", "calculator", "multiply", "1"], 56, "expects 2"),
        (
            &["call", "calculator", "multiply", "a", "b"],
            54,
            "invalid type",
        ),
        (
            &["call", "calculator", "multiply", "[1,"],
            2,
            "not valid JSON",
        ),
        (
            &[
                "call",
                "calculator",
                "slow_square",
                "3",
                "5000",
                "--timeout",
                "0.2",
            ],
            47,
            "within",
        ),
    ];
    for (args, code, text) in cases {
        let out = mesh.cli(args, WAIT);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(text), "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "one line: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains('\x1b'),
            "no colour in a pipe: {}",
            out.stderr
        );
    }

    // JSON arguments of every kind reach a typed method.
    let out = mesh.cli(
        &["call", "calculator", "multiply", "-3", "7", "--json"],
        WAIT,
    );
    assert_eq!(out.stdout.trim(), r#"{"result":-21}"#);
}

#[test]
fn a_missing_or_refusing_exchange_is_a_clear_error_and_its_own_exit_code() {
    // Nothing listens on a port that was free a moment ago.
    let port = netsvc_integration_tests::free_port();
    let addr = format!("127.0.0.1:{port}");
    let out = cli(&["list", "--connect", &addr], WAIT);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot join the exchange at {addr}")),
        "{}",
        out.stderr
    );

    // Something that accepts connections but never speaks: the connect timeout, then 3.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let out = cli(
        &["list", "--connect", &addr, "--connect-timeout", "0.5"],
        WAIT,
    );
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains("no handshake within 0.5 s"),
        "{}",
        out.stderr
    );
    assert!(out.took < Duration::from_secs(3), "{:?}", out.took);
    drop(silent);

    // An exchange that requires a shared secret refuses a client without it.
    let dir = std::env::temp_dir().join(format!("netsvc-cli-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "a shared secret of the mesh\n").unwrap();
    let mut exchange = Process::start(
        &netsvc(),
        &[
            "exchange",
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            secret.to_str().unwrap(),
        ],
    );
    let addr = listening_addr(&exchange.expect_line("exchange listening on", WAIT));
    let out = cli(
        &[
            "call",
            "calculator",
            "multiply",
            "1",
            "2",
            "--connect",
            &addr,
        ],
        WAIT,
    );
    assert_eq!(out.status.code(), Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("cannot join"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    // With it, the tool is in: no calculator there, so 46.
    let out = cli(
        &[
            "call",
            "calculator",
            "multiply",
            "1",
            "2",
            "--connect",
            &addr,
            "--secret-file",
            secret.to_str().unwrap(),
        ],
        WAIT,
    );
    assert_eq!(out.status.code(), Some(46), "{}", out.stderr);
    exchange.kill_hard();
    let _ = std::fs::remove_dir_all(&dir);

    // Bad input never reaches the network.
    for (args, text) in [
        (&["publish", "--as", "p", "", "1"][..], "invalid subject"),
        (
            &["publish", "--as", "p", "s", "1", "--lifetime", "soon"][..],
            "--lifetime",
        ),
        (&["list", "--name", "two words"][..], "invalid --name"),
        (&["call", "", "x"][..], "needs a name"),
        (&["watch", "reports", "", "*"][..], "needs a name"),
        (&["watch", "registry", "--duration=-1"][..], "--duration"),
        (
            &["bench", "requests", "--size", "99999999999"][..],
            "--size",
        ),
    ] {
        let out = cli(args, WAIT);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(text), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn publish_reaches_a_typed_rust_subscriber() {
    let mut mesh = mesh();
    let out = mesh.cli(
        &[
            "publish",
            "--as",
            "publisher",
            "system.note",
            "\"from the command line\"",
            "--linger",
            "0.5",
        ],
        WAIT,
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("published system.note"),
        "{}",
        out.stdout
    );
    mesh.subscriber
        .expect_line("system.note = from the command line", WAIT);
}

#[test]
fn bench_prints_figures_for_requests_and_reports() {
    let mesh = mesh();
    let out = mesh.cli(
        &[
            "bench",
            "requests",
            "--count",
            "2000",
            "--clients",
            "2",
            "--in-flight",
            "4",
        ],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("requests: 2000 in "),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("latency: p50 "), "{}", out.stdout);

    let out = mesh.cli(
        &[
            "bench",
            "reports",
            "--count",
            "5000",
            "--clients",
            "2",
            "--json",
        ],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let figures: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(figures["expected"], 10_000);
    assert!(figures["delivered"].as_u64() > Some(0), "{figures}");
    assert!(figures["rate"].as_f64() > Some(0.0), "{figures}");
    assert!(figures["latency_us"]["p99"].as_f64().is_some(), "{figures}");

    let out = mesh.cli(
        &[
            "bench",
            "requests",
            "--service",
            "calculator",
            "--method",
            "multiply",
            "--args",
            "[6, 7]",
            "--count",
            "500",
        ],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("requests: 500 in "),
        "{}",
        out.stdout
    );
}

#[test]
fn describe_lists_methods_and_subjects_and_list_subscriptions_who_listens() {
    let mesh = mesh();
    let out = mesh.cli(&["describe", "calculator"], WAIT);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("calculator (agent "),
        "{}",
        out.stdout
    );
    let multiply = out
        .stdout
        .lines()
        .find(|l| l.contains("multiply("))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        multiply.contains("multiply(a: i64, b: i64) -> i64"),
        "{multiply}"
    );
    assert!(
        out.stdout.contains("divide(a: i64, b: i64) -> Result<i64>"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("subjects: none"), "{}", out.stdout);

    // The publisher: system.ctime cached, system.time not, each with its one subscriber.
    let out = mesh.cli(&["describe", "publisher", "--json"], WAIT);
    assert!(out.status.success(), "{}", out.stderr);
    let d: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let subjects = d["subjects"].as_array().unwrap();
    let ctime = subjects
        .iter()
        .find(|s| s["subject"] == "system.ctime")
        .unwrap();
    assert_eq!(
        (&ctime["cached"], &ctime["subscribers"]),
        (&true.into(), &1.into())
    );
    let time = subjects
        .iter()
        .find(|s| s["subject"] == "system.time")
        .unwrap();
    assert_eq!(
        (&time["cached"], &time["subscribers"]),
        (&false.into(), &1.into())
    );

    let out = mesh.cli(&["describe", "nosuch"], WAIT);
    assert_eq!(out.status.code(), Some(46), "{}", out.stderr);

    let out = mesh.cli(&["list", "subscriptions", "--json"], WAIT);
    assert!(out.status.success(), "{}", out.stderr);
    let rows: Vec<serde_json::Value> = json_lines(&out.stdout);
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    assert_eq!(rows[0]["publisher"], "publisher");
    assert_eq!(rows[0]["publisher_node"], "publisher");
    assert_eq!(rows[0]["subscriber_node"], "subscriber");
    assert_eq!(rows[0]["pattern"], "system.*");
    assert_eq!(rows[0]["format"], "bincode");
    assert_eq!(rows[0]["conflated"], false);
    let out = mesh.cli(&["list", "subscriptions"], WAIT);
    assert!(out.status.success(), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].trim_end().ends_with("FORMAT   CONFLATED"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].trim_end().ends_with("bincode  no"),
        "{}",
        out.stdout
    );
}

#[test]
fn watch_reports_gives_the_cached_report_then_live_ones_as_json() {
    let mesh = mesh();
    let out = mesh.cli(
        &[
            "watch",
            "reports",
            "publisher",
            "system.*",
            "--count",
            "2",
            "--json",
        ],
        WAIT,
    );
    assert!(out.status.success(), "{}", out.stderr);
    let reports: Vec<serde_json::Value> = json_lines(&out.stdout);
    assert_eq!(reports.len(), 2, "{}", out.stdout);
    assert_eq!(reports[0]["subject"], "system.ctime");
    assert_eq!(reports[1]["subject"], "system.time");
    for r in &reports {
        assert_eq!(r["publisher"], "publisher");
        assert_eq!(r["pattern"], "system.*");
        // The publisher's String, as JSON: a date and time.
        assert_eq!(r["content"].as_str().map(str::len), Some(19), "{r}");
    }

    // While a watch runs, its JSON subscription is listed next to the typed one.
    let mut args = vec![
        "watch",
        "reports",
        "publisher",
        "system.t*",
        "--duration",
        "10",
    ];
    args.extend(["--connect", &mesh.addr]);
    let mut watch = Process::start(&netsvc(), &args);
    watch.expect_line("system.time", WAIT);
    let out = mesh.cli(&["list", "subscriptions", "--json"], WAIT);
    let mut rows: Vec<(String, String)> = json_lines(&out.stdout)
        .into_iter()
        .map(|r| {
            (
                r["pattern"].as_str().unwrap().to_owned(),
                r["format"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("system.*".to_owned(), "bincode".to_owned()),
            ("system.t*".to_owned(), "json".to_owned())
        ],
        "{}",
        out.stdout
    );
    watch.kill_hard();

    let out = mesh.cli(&["watch", "reports", "publisher", "", "--count", "1"], WAIT);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("invalid pattern"), "{}", out.stderr);
}

#[test]
fn watch_registry_shows_the_state_then_a_killed_publisher_withdrawn() {
    let mut mesh = mesh();
    let mut args = vec!["watch", "registry", "--duration", "20"];
    args.extend(["--connect", &mesh.addr]);
    let mut watch = Process::start(&netsvc(), &args);
    // The current state, in whatever order the registry holds it.
    watch.expect_count("available calculator", 1, WAIT);
    let line = watch.expect_count("available publisher", 1, WAIT).remove(0);
    assert!(line.contains("node publisher"), "{line}");
    mesh.publisher.kill_hard();
    let line = watch.expect_line("withdrawn publisher", WAIT);
    assert!(line.contains("node publisher"), "{line}");
    // This tool does not reconnect: when the exchange goes, the watch ends, with status 3.
    mesh.exchange.kill_hard();
    assert_eq!(watch.wait_exit(WAIT).code(), Some(3));
}
