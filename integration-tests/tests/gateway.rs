//! `netsvc gateway` against a real `netsvc exchange`, the calculator example and the `shapes`
//! test service, driven by clients nobody here wrote: Python's standard `xmlrpc.client` and
//! `curl` (JSON calls with each status of the map, JSON-RPC, Server-Sent Events). Every
//! process listens on 127.0.0.1 with a free port, is killed by PID when its test ends, and
//! every wait is bounded.
//!
//! The `netsvc` binary and the examples are found next to this crate's `node` binary (one
//! target directory): `cargo test --workspace` builds them all before any test runs.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netsvc_integration_tests::{built_beside, start_gateway, Process};
use serde_json::{json, Value};

const NODE: &str = env!("CARGO_BIN_EXE_node");
const SHAPES: &str = env!("CARGO_BIN_EXE_shapes");
const WAIT: Duration = Duration::from_secs(10);

/// A binary of the workspace's target directory, by its path relative to `node`'s directory.
fn built(relative: &str) -> String {
    built_beside(NODE, relative)
}

/// A mesh with a gateway in front: exchange, calculator, shapes, `netsvc gateway`.
struct Mesh {
    /// `http://127.0.0.1:PORT`.
    url: String,
    exchange: Option<Process>,
    calculator: Option<Process>,
    _shapes: Process,
    gateway: Process,
}

/// `netsvc exchange` on a free port, and the address it printed.
fn start_exchange(netsvc: &str) -> (Process, String) {
    netsvc_integration_tests::start_exchange(netsvc, WAIT)
}

fn mesh() -> Mesh {
    let netsvc = built("netsvc");
    let (mut exchange, addr) = start_exchange(&netsvc);
    let calculator = Process::start(
        &built("examples/calculator"),
        &["--connect", &addr, "--serve"],
    );
    let mut shapes = Process::start(SHAPES, &["--connect", &addr]);
    shapes.expect_line("shapes ready", WAIT);
    exchange.expect_count("connected:", 2, WAIT);
    let (gateway, url) = start_gateway(&netsvc, &addr, &["--body-limit", "4096"], WAIT);
    let mesh = Mesh {
        url,
        exchange: Some(exchange),
        calculator: Some(calculator),
        _shapes: shapes,
        gateway,
    };
    // Until the gateway's node has heard of both services.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, body) = mesh.curl(&["/services"]);
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        let names: Vec<&str> = v["services"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
            .unwrap_or_default();
        if names.contains(&"calculator") && names.contains(&"shapes") {
            return mesh;
        }
        assert!(Instant::now() < deadline, "services never appeared: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Mesh {
    /// `curl -s` with `args` (the first one a path, made a URL), bounded; the status and the
    /// body.
    fn curl(&self, args: &[&str]) -> (u16, String) {
        let mut all: Vec<String> = vec![
            "-s".into(),
            "--max-time".into(),
            "10".into(),
            "-w".into(),
            "\n%{http_code}".into(),
            format!("{}{}", self.url, args[0]),
        ];
        all.extend(args[1..].iter().map(|s| s.to_string()));
        let out = Command::new("curl")
            .args(&all)
            .stdin(Stdio::null())
            .output()
            .expect("curl runs (apt-get install curl)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        (status.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// `curl --json BODY` to `path`: the status and the body as JSON (`null` for none).
    fn json(&self, path: &str, body: &str) -> (u16, Value) {
        let (status, text) = self.curl(&[path, "--json", body]);
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        };
        (status, value)
    }
}

#[test]
fn curl_gets_results_and_each_status_of_the_map() {
    let mesh = mesh();
    assert_eq!(
        mesh.json("/call/calculator/multiply", "[6, 7]"),
        (200, json!({"result": 42}))
    );
    assert_eq!(
        mesh.json("/call/calculator/multiply", r#"{"a": 6, "b": 7}"#),
        (200, json!({"result": 42}))
    );
    let cases = [
        ("/call/nobody/multiply", "[1, 2]", 503, 46),
        (
            "/call/calculator/slow_square?timeout=0.3",
            "[3, 5000]",
            504,
            47,
        ),
        ("/call/calculator/nothing", "[]", 404, 55),
        ("/call/calculator/multiply", r#"["six", 7]"#, 400, 54),
        ("/call/calculator/multiply", "[6]", 400, 56),
        ("/call/calculator/divide", "[1, 0]", 500, 100),
    ];
    for (path, body, status, code) in cases {
        let (got, v) = mesh.json(path, body);
        assert_eq!(got, status, "{path} {body}: {v}");
        assert_eq!(v["error"]["code"], code, "{path} {body}: {v}");
    }
    let (_, v) = mesh.json("/call/calculator/divide", "[1, 0]");
    assert_eq!(
        v["error"],
        json!({"code": 100, "name": "APPLICATION_ERROR", "description": "division by zero",
               "origin": "calculator", "details": "1 / 0"})
    );
    // Bad input: a body over the limit (4096 here), the wrong content type, malformed JSON.
    let big = format!("[{}]", vec!["1"; 3000].join(","));
    assert_eq!(mesh.json("/call/calculator/multiply", &big).0, 413);
    let (status, _) = mesh.curl(&["/call/calculator/multiply", "-d", "[6, 7]"]);
    assert_eq!(
        status, 415,
        "curl -d says application/x-www-form-urlencoded"
    );
    assert_eq!(mesh.json("/call/calculator/multiply", "[6,").0, 400);
    assert_eq!(
        mesh.json("/call/calculator/multiply", "[6, 7]").1,
        json!({"result": 42}),
        "still serving"
    );
}

#[test]
fn curl_speaks_json_rpc() {
    let mesh = mesh();
    let (status, v) = mesh.json(
        "/jsonrpc",
        r#"{"jsonrpc": "2.0", "method": "calculator.multiply", "params": [6, 7], "id": 1}"#,
    );
    assert_eq!(
        (status, v),
        (200, json!({"jsonrpc": "2.0", "result": 42, "id": 1}))
    );
    let (_, v) = mesh.json(
        "/jsonrpc",
        r#"[{"jsonrpc": "2.0", "method": "calculator.multiply", "params": {"a": 2, "b": 3}, "id": "a"},
            {"jsonrpc": "2.0", "method": "calculator.multiply", "params": [1, 1]},
            {"jsonrpc": "2.0", "method": "calculator.divide", "params": [1, 0], "id": "b"}]"#,
    );
    let answers = v.as_array().expect("a batch answer");
    assert_eq!(answers.len(), 2, "{v}");
    assert_eq!(
        answers[0],
        json!({"jsonrpc": "2.0", "result": 6, "id": "a"})
    );
    assert_eq!(answers[1]["error"]["code"], 100, "{v}");
    assert_eq!(answers[1]["error"]["data"]["origin"], "calculator", "{v}");
    let (status, v) = mesh.json(
        "/jsonrpc",
        r#"{"jsonrpc": "2.0", "method": "calculator.multiply", "params": [1, 1]}"#,
    );
    assert_eq!((status, v), (204, Value::Null), "a notification");
    for (body, code) in [
        (
            r#"{"jsonrpc": "2.0", "method": "calculator.multiply", "params": [1, "#,
            -32700,
        ),
        (r#"{"jsonrpc": "2.0", "method": 1, "id": 1}"#, -32600),
        (r#"[1, 2]"#, -32600),
        (
            r#"{"jsonrpc": "2.0", "method": "calculator.nothing", "id": 1}"#,
            -32601,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "calculator.multiply", "params": [1], "id": 1}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "nobody.multiply", "id": 1}"#,
            46,
        ),
    ] {
        let (status, v) = mesh.json("/jsonrpc", body);
        assert_eq!(status, 200, "{body}: {v}");
        let error = if v.is_array() {
            &v[0]["error"]
        } else {
            &v["error"]
        };
        assert_eq!(error["code"], code, "{body}: {v}");
    }
}

#[test]
fn curl_follows_events_cached_first() {
    let mesh = mesh();
    let (status, _) = mesh.curl(&[
        "/publish/weather.today?lifetime=forever",
        "--json",
        r#"{"sky": "blue"}"#,
    ]);
    assert_eq!(status, 200);
    let mut reports = Process::start(
        "curl",
        &[
            "-N",
            "-s",
            "--max-time",
            "20",
            &format!("{}/events/reports/gateway?pattern=weather.*", mesh.url),
        ],
    );
    let line = reports.expect_line("^data:", WAIT);
    assert!(line.contains(r#""content":{"sky":"blue"}"#), "{line}");
    assert!(line.contains(r#""subject":"weather.today""#), "{line}");
    mesh.curl(&["/publish/weather.now?lifetime=none", "--json", r#""rain""#]);
    let line = reports.expect_line("^data:", WAIT);
    assert!(line.contains(r#""content":"rain""#), "{line}");

    let mut registry = Process::start(
        "curl",
        &[
            "-N",
            "-s",
            "--max-time",
            "20",
            &format!("{}/events/registry", mesh.url),
        ],
    );
    let link = registry.expect_line("^data: {\"address\"", WAIT);
    assert!(
        link.contains(r#""peer_node":"exchange""#) && link.contains(r#""state":"up""#),
        "{link}"
    );
    registry.expect_line("\"name\":\"calculator\"", WAIT);
    registry.expect_count("event: available", 3, WAIT);
}

#[test]
fn a_call_pending_when_its_service_dies_fails_at_once() {
    let mut mesh = mesh();
    let url = mesh.url.clone();
    let pending = std::thread::spawn(move || {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "--json", "[3, 8000]"])
            .arg(format!("{url}/call/calculator/slow_square?timeout=9"))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    std::thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    drop(mesh.calculator.take());
    let body = pending.join().unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(3),
        "{:?}",
        killed.elapsed()
    );
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["error"]["code"], 57, "{v}");
    let (status, v) = mesh.json("/call/calculator/multiply", "[6, 7]");
    assert_eq!(status, 503, "no calculator any more: {v}");
}

#[test]
fn sigterm_stops_the_gateway_and_ends_its_event_streams() {
    let mut mesh = mesh();
    let mut registry = Process::start(
        "curl",
        &[
            "-N",
            "-s",
            "--max-time",
            "20",
            &format!("{}/events/registry", mesh.url),
        ],
    );
    registry.expect_line("event: available", WAIT);
    // The exchange goes: its link goes down, live.
    drop(mesh.exchange.take());
    let down = registry.expect_line(r#""state":"down""#, WAIT);
    assert!(down.contains(r#""peer_node":"exchange""#), "{down}");
    mesh.gateway.signal("TERM");
    mesh.gateway.expect_line("gateway stopped", WAIT);
    assert!(mesh.gateway.wait_exit(WAIT).success());
    let status = registry.wait_exit(WAIT);
    assert!(status.success(), "the stream ended cleanly: {status:?}");
    let (status, _) = mesh.curl(&["/services"]);
    assert_eq!(status, 0, "nothing listens any more");
}

/// Runs a Python script with the gateway's URL as its argument; its stdout.
fn python(script: &str, url: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script, url])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const XMLRPC: &str = r#"
import json, sys, xmlrpc.client
url = sys.argv[1]
p = xmlrpc.client.ServerProxy(url + "/RPC2", allow_none=True)
def fault(call):
    try:
        call()
    except xmlrpc.client.Fault as f:
        return "fault %d %r" % (f.faultCode, f.faultString)
    return "no fault"
print("multiply", p.calculator.multiply(6, 7))
print(fault(lambda: p.calculator.divide(1, 0)))
print("i8", p.calculator.multiply(100000, 100000))
print("struct", json.dumps(p.shapes.translate({"x": 1, "y": 2}, 10, 20), sort_keys=True))
print("list", json.dumps(p.shapes.reverse([1, "two", 3.5, True, None])))
print("bytes", p.shapes.echo(xmlrpc.client.Binary(b"hi")))
print(fault(lambda: p.calculator.nothing()))
print("path", xmlrpc.client.ServerProxy(url + "/xmlrpc/calculator").multiply(3, 4))
"#;

#[test]
fn python_xmlrpc_client_calls_through_the_gateway() {
    let mesh = mesh();
    let out = python(XMLRPC, &mesh.url);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "multiply 42", "{out}");
    assert!(
        lines[1].starts_with("fault 100 'calculator -- division by zero"),
        "{out}"
    );
    assert!(
        lines[1].contains(r"\n\n1 / 0"),
        "details after a blank line: {out}"
    );
    assert_eq!(lines[2], "i8 10000000000", "{out}");
    assert_eq!(lines[3], r#"struct {"x": 11, "y": 22}"#, "{out}");
    assert_eq!(lines[4], r#"list [null, true, 3.5, "two", 1]"#, "{out}");
    assert_eq!(lines[5], "bytes [104, 105]", "{out}");
    assert!(lines[6].starts_with("fault 55 "), "{out}");
    assert_eq!(lines[7], "path 12", "{out}");
}

/// A directory of files for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("netsvc-gateway-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `name`; its path.
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `netsvc gateway` with `args` that must stop it at start: its exit status and stderr.
fn refused_at_start(args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["gateway", "--listen", "127.0.0.1:0"];
    all.extend(args);
    let out = Command::new(built("netsvc"))
        .args(&all)
        .stdin(Stdio::null())
        .output()
        .expect("netsvc runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unusable_credential_and_certificate_files_exit_2_with_a_reason() {
    let dir = Scratch::new("bad-files");
    let passwords = dir.write("passwords", "# people\nada:lovelace\nbob\n");
    let empty = dir.write("tokens", "# nobody\n\n");
    let not_pem = dir.write("cert.pem", "not a certificate\n");
    let missing = dir.0.join("missing").display().to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["--basic-auth-file", &passwords], "line 3"),
        (&["--basic-auth-file", &missing], "cannot read"),
        (&["--token-file", &empty], "no entry"),
        (&["--allow-host", "10.0.0.0/33"], "--allow-host"),
        (
            &["--http-tls-cert", &not_pem, "--http-tls-key", &not_pem],
            "--http-tls-cert",
        ),
    ];
    for (args, reason) in cases {
        let (code, stderr) = refused_at_start(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(!stderr.contains("lovelace"), "{args:?}: {stderr}");
    }
}

#[test]
fn curl_calls_over_https_with_basic_auth_and_plain_http_fails() {
    let dir = Scratch::new("https");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = dir.write("gateway.pem", &cert.pem());
    let key_path = dir.write("gateway.key", &key.serialize_pem());
    let passwords = dir.write("passwords", "ada:lovelace\n");
    let netsvc = built("netsvc");
    let (_exchange, addr) = start_exchange(&netsvc);
    let mut gateway = Process::start(
        &netsvc,
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--connect",
            &addr,
            "--http-tls-cert",
            &cert_path,
            "--http-tls-key",
            &key_path,
            "--basic-auth-file",
            &passwords,
        ],
    );
    let line = gateway.expect_line("gateway listening on", WAIT);
    let local = line.rsplit(' ').next().expect("an address").to_owned();
    let curl = |url: String, more: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
            .args(more)
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .expect("curl runs (apt-get install curl)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        (status.trim().parse::<u16>().unwrap_or(0), body.to_owned())
    };
    let https = format!("https://{local}/services");
    let (status, body) = curl(
        https.clone(),
        &["--cacert", &cert_path, "-u", "ada:lovelace"],
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["services"].is_array(), "{body}");
    let (status, body) = curl(https.clone(), &["--cacert", &cert_path, "-u", "ada:wrong"]);
    assert_eq!(status, 401, "{body}");
    let (status, _) = curl(https.clone(), &["--cacert", &cert_path]);
    assert_eq!(status, 401, "no credentials");
    let (status, _) = curl(https, &["-u", "ada:lovelace"]);
    assert_eq!(status, 0, "a client that does not trust the certificate");
    let (status, body) = curl(format!("http://{local}/services"), &["-u", "ada:lovelace"]);
    assert_eq!(status, 0, "plain HTTP to the TLS port: {body}");
}
