//! The gateway through real sockets on 127.0.0.1, with a small HTTP/1.1 client written here
//! (no HTTP client crate): each endpoint, the status map, the JSON-RPC 2.0 specification's
//! examples, XML-RPC, event streams, a slow event client, and bad input. Every wait is
//! bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netsvc::prelude::*;
use netsvc::GroupName;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const WAIT: Duration = Duration::from_secs(10);

/// The JSON-RPC specification's example service (its methods under the name `spec`).
#[derive(Service)]
#[service(name = "spec", groups = ["public"])]
struct Spec;
impl Service for Spec {}

#[netsvc::methods]
impl Spec {
    fn subtract(&mut self, minuend: i64, subtrahend: i64) -> i64 {
        minuend - subtrahend
    }
    fn sum(&mut self, a: i64, b: i64, c: i64) -> i64 {
        a + b + c
    }
    fn update(&mut self, _a: i64, _b: i64, _c: i64, _d: i64, _e: i64) {}
    fn notify_hello(&mut self, _x: i64) {}
    fn get_data(&mut self) -> (String, i64) {
        ("hello".to_owned(), 5)
    }
}

/// A calculator like the example's, not in the `public` group.
#[derive(Service)]
#[service(name = "calculator")]
struct Calculator(&'static str);
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }
    fn divide(&mut self, a: i64, b: i64) -> Result<i64, Failure> {
        if b == 0 {
            return Err(
                Failure::new(ErrorCode(100), "division by zero").with_details(format!("{a} / {b}"))
            );
        }
        Ok(a / b)
    }
    fn slow(&mut self, ctx: &mut ServiceContext<Self>, millis: u64) -> Delayed<i64> {
        let (responder, delayed) = ctx.suspend_response();
        ctx.run_later(Duration::from_millis(millis), move |_, _| {
            responder.resolve(1)
        });
        delayed
    }
    fn who(&mut self) -> String {
        self.0.to_owned()
    }
    fn echo(&mut self, value: Value) -> Value {
        value
    }
}

/// A finished HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// Sends one request (`Connection: close`) and reads the whole response.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    ctype: Option<&str>,
    body: &[u8],
) -> Response {
    http_with(addr, method, path, ctype, &[], body).await
}

/// One request's bytes, with more header lines (`Name: value`).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    ctype: Option<&str>,
    headers: &[&str],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = ctype {
        head.push_str(&format!("Content-Type: {t}\r\n"));
    }
    for h in headers {
        head.push_str(&format!("{h}\r\n"));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// [`http`] with more header lines.
async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    ctype: Option<&str>,
    headers: &[&str],
    body: &[u8],
) -> Response {
    let go = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&request(addr, method, path, ctype, headers, body))
            .await
            .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(WAIT, go)
        .await
        .expect("a response in time");
    parse(&raw)
}

/// A whole response's bytes, parsed.
fn parse(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        head: head.to_owned(),
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

async fn post_json(addr: SocketAddr, path: &str, body: &str) -> Response {
    http(
        addr,
        "POST",
        path,
        Some("application/json"),
        body.as_bytes(),
    )
    .await
}

async fn rpc(addr: SocketAddr, body: &str) -> Response {
    post_json(addr, "/jsonrpc", body).await
}

/// A node with the services and a gateway listening on a free port.
async fn start(config: GatewayConfig) -> (Node, Gateway, SocketAddr) {
    let (node, gateway, addr, _) = start_with(config).await;
    (node, gateway, addr)
}

/// [`start`], also returning the calculator.
async fn start_with(
    config: GatewayConfig,
) -> (Node, Gateway, SocketAddr, netsvc::Spawned<Calculator>) {
    let node = Node::new("gateway-test");
    node.spawn(Spec);
    let calculator = node.spawn(Calculator("first"));
    let gateway = Gateway::new(&node, config);
    let addr = gateway.listen("127.0.0.1:0").await.unwrap();
    (node, gateway, addr, calculator)
}

/// An open event stream: reads until a needle appears.
struct Events {
    stream: TcpStream,
    seen: String,
}

impl Events {
    async fn open(addr: SocketAddr, path: &str) -> Events {
        Events::open_with(addr, path, "X-Nothing: here").await
    }

    /// [`Events::open`] with one more header line.
    async fn open_with(addr: SocketAddr, path: &str, header: &str) -> Events {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{header}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        Events {
            stream,
            seen: String::new(),
        }
    }

    /// Waits for `needle` after what earlier calls consumed; returns the text up to it.
    async fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self.seen.find(needle) {
                let upto = self.seen[..at + needle.len()].to_owned();
                self.seen.drain(..at + needle.len());
                return upto;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) => panic!("stream ended before {needle:?}; saw {}", self.seen),
                Ok(Ok(n)) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Ok(Err(e)) => panic!("{e}; saw {}", self.seen),
                Err(_) => panic!("no {needle:?} within {WAIT:?}; saw {}", self.seen),
            }
        }
    }
}

#[actix::test]
async fn worker_threads_serve_the_same_endpoints_as_the_nodes_arbiter() {
    // workers = 0 (the default, every other test) serves on the node's arbiter; workers = 2
    // is actix-web's HttpServer on threads of its own.
    let config = GatewayConfig {
        workers: 2,
        ..GatewayConfig::default()
    };
    let (_node, gateway, addr) = start(config).await;
    let r = post_json(addr, "/call/calculator/multiply", "[6, 7]").await;
    assert_eq!((r.status, r.json()), (200, json!({"result": 42})));
    let r = http(addr, "GET", "/call/calculator/multiply", None, b"").await;
    assert_eq!(r.status, 405, "{}", r.body);
    let r = post_json(addr, "/call/calculator", "[]").await;
    assert_eq!(r.status, 404, "{}", r.body);
    gateway.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after stop"
    );
}

#[actix::test]
async fn a_stopped_gateway_on_the_nodes_arbiter_accepts_no_more() {
    let (_node, gateway, addr) = start(GatewayConfig::default()).await;
    let r = post_json(addr, "/call/calculator/multiply", "[6, 7]").await;
    assert_eq!(r.status, 200, "{}", r.body);
    tokio::time::timeout(std::time::Duration::from_secs(5), gateway.stop())
        .await
        .expect("stopped within the grace period");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after stop"
    );
}

#[actix::test]
async fn json_calls_answer_results_and_each_status_of_the_map() {
    let (node, _gateway, addr) = start(GatewayConfig::default()).await;
    let r = post_json(addr, "/call/calculator/multiply", "[6, 7]").await;
    assert_eq!((r.status, r.json()), (200, json!({"result": 42})));
    let r = post_json(addr, "/call/calculator/multiply", r#"{"b": 7, "a": 6}"#).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"result": 42})),
        "by name"
    );
    let r = post_json(addr, "/call/spec/get_data", "").await;
    assert_eq!(
        r.json(),
        json!({"result": ["hello", 5]}),
        "no body: no argument"
    );

    let cases: [(&str, &str, u16, u32); 9] = [
        ("/call/nobody/multiply", "[1, 2]", 503, 46),
        ("/call/calculator/slow?timeout=0.2", "[5000]", 504, 47),
        ("/call/calculator/nothing", "[]", 404, 55),
        ("/call/calculator/%24describe", "[]", 404, 55),
        ("/call/calculator/multiply", r#"["six", 7]"#, 400, 54),
        ("/call/calculator/multiply", "[6]", 400, 56),
        ("/call/calculator/multiply", r#"{"a": 6}"#, 400, 56),
        ("/call/calculator/multiply", "7", 400, 56),
        ("/call/calculator/divide", "[1, 0]", 500, 100),
    ];
    for (path, body, status, code) in cases {
        let r = post_json(addr, path, body).await;
        assert_eq!(r.status, status, "{path} {body}: {}", r.body);
        let error = &r.json()["error"];
        assert_eq!(error["code"], code, "{path} {body}: {}", r.body);
        for field in ["name", "description", "origin", "details"] {
            assert!(error[field].is_string(), "{field} in {}", r.body);
        }
    }
    let r = post_json(addr, "/call/calculator/divide", "[1, 0]").await;
    let error = &r.json()["error"];
    assert_eq!(error["name"], "APPLICATION_ERROR");
    assert_eq!(error["origin"], "calculator");
    assert_eq!(error["details"], "1 / 0");
    node.schedule_shutdown(Some(Duration::from_millis(1)));
    node.shutdown_complete().await;
}

#[actix::test]
async fn bad_input_gets_a_precise_status_and_the_gateway_keeps_serving() {
    let config = GatewayConfig {
        body_limit: 1000,
        ..GatewayConfig::default()
    };
    let (_node, _gateway, addr) = start(config).await;
    let r = post_json(addr, "/call/calculator/multiply", "[6, 7").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"]["description"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
    let r = http(
        addr,
        "POST",
        "/call/calculator/multiply",
        Some("text/plain"),
        b"[6, 7]",
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);
    let big = format!("[{}]", vec!["1"; 1000].join(","));
    let r = post_json(addr, "/call/calculator/multiply", &big).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"]["origin"], GATEWAY_ORIGIN);
    let r = http(addr, "POST", "/call/calculator/multiply", None, b"[2, 3]").await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"result": 6})),
        "no content type: JSON"
    );
    let r = post_json(addr, "/call/calculator/multiply?timeout=soon", "[1, 2]").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = http(addr, "GET", "/nowhere", None, b"").await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = post_json(addr, "/RPC2", "<methodCall><methodName>x").await;
    assert_eq!(r.status, 415, "JSON to XML-RPC: {}", r.body);
    let r = http(
        addr,
        "POST",
        "/RPC2",
        Some("text/xml"),
        b"<methodCall><methodName>x",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("<fault>"), "{}", r.body);
    // A client that sends half a request and goes away.
    {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /call/calculator/multiply HTTP/1.1\r\nContent-Length: 100\r\n\r\n[6,")
            .await
            .unwrap();
    }
    let r = post_json(addr, "/call/calculator/multiply", "[6, 7]").await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"result": 42})),
        "still serving"
    );
}

#[actix::test]
async fn json_rpc_answers_the_specifications_examples() {
    let (_node, _gateway, addr) = start(GatewayConfig::default()).await;
    let r = rpc(
        addr,
        r#"{"jsonrpc": "2.0", "method": "spec.subtract", "params": [42, 23], "id": 1}"#,
    )
    .await;
    assert_eq!(r.json(), json!({"jsonrpc": "2.0", "result": 19, "id": 1}));
    let r = rpc(
        addr,
        r#"{"jsonrpc": "2.0", "method": "spec.subtract", "params": [23, 42], "id": 2}"#,
    )
    .await;
    assert_eq!(r.json(), json!({"jsonrpc": "2.0", "result": -19, "id": 2}));
    let r = rpc(addr, r#"{"jsonrpc": "2.0", "method": "spec.subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#).await;
    assert_eq!(r.json(), json!({"jsonrpc": "2.0", "result": 19, "id": 3}));
    let r = rpc(addr, r#"{"jsonrpc": "2.0", "method": "spec.subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#).await;
    assert_eq!(r.json(), json!({"jsonrpc": "2.0", "result": 19, "id": 4}));
    // Notifications: no answer.
    let r = rpc(
        addr,
        r#"{"jsonrpc": "2.0", "method": "spec.update", "params": [1,2,3,4,5]}"#,
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    let r = rpc(addr, r#"{"jsonrpc": "2.0", "method": "foobar"}"#).await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    // A method that does not exist (the specification's `foobar` has no service part).
    let r = rpc(addr, r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#).await;
    assert_eq!(r.json()["error"]["code"], -32601);
    assert_eq!(r.json()["id"], "1");
    let r = rpc(
        addr,
        r#"{"jsonrpc": "2.0", "method": "spec.foobar", "id": "1"}"#,
    )
    .await;
    assert_eq!(r.json()["error"]["code"], -32601);
    assert_eq!(r.json()["error"]["message"], "Method not found");
    let r = rpc(
        addr,
        r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
    )
    .await;
    assert_eq!(r.json()["error"]["code"], -32700);
    assert_eq!(r.json()["id"], Value::Null);
    let r = rpc(addr, r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#).await;
    assert_eq!(r.json()["error"]["code"], -32600);
    let r = rpc(addr, r#"[{"jsonrpc": "2.0", "method": "spec.sum", "params": [1,2,4], "id": "1"}, {"jsonrpc": "2.0", "method""#).await;
    assert_eq!(r.json()["error"]["code"], -32700);
    let r = rpc(addr, "[]").await;
    assert_eq!(
        r.json()["error"]["code"],
        -32600,
        "an empty batch is one error"
    );
    let r = rpc(addr, "[1]").await;
    let answers = r.json();
    assert_eq!(answers.as_array().unwrap().len(), 1);
    assert_eq!(answers[0]["error"]["code"], -32600);
    let r = rpc(addr, "[1,2,3]").await;
    let answers = r.json();
    assert_eq!(answers.as_array().unwrap().len(), 3);
    assert!(answers
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["error"]["code"] == -32600 && a["id"].is_null()));
    let r = rpc(
        addr,
        r#"[
        {"jsonrpc": "2.0", "method": "spec.sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "spec.notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "spec.subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "spec.foo_get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "spec.get_data", "id": "9"}
    ]"#,
    )
    .await;
    let answers = r.json();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 5, "{answers:?}");
    assert_eq!(
        answers[0],
        json!({"jsonrpc": "2.0", "result": 7, "id": "1"})
    );
    assert_eq!(
        answers[1],
        json!({"jsonrpc": "2.0", "result": 19, "id": "2"})
    );
    assert_eq!(
        (
            answers[2]["error"]["code"].clone(),
            answers[2]["id"].clone()
        ),
        (json!(-32600), Value::Null)
    );
    assert_eq!(
        (
            answers[3]["error"]["code"].clone(),
            answers[3]["id"].clone()
        ),
        (json!(-32601), json!("5"))
    );
    assert_eq!(
        answers[4],
        json!({"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"})
    );
    let r = rpc(
        addr,
        r#"[{"jsonrpc": "2.0", "method": "spec.sum", "params": [1,2,4]},
            {"jsonrpc": "2.0", "method": "spec.notify_hello", "params": [7]}]"#,
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (204, ""),
        "a batch of notifications"
    );
    // Invalid params, and netsvc's own codes with origin and details in data.
    let r = rpc(
        addr,
        r#"{"jsonrpc": "2.0", "method": "spec.subtract", "params": [1], "id": 7}"#,
    )
    .await;
    assert_eq!(r.json()["error"]["code"], -32602);
    let r = rpc(
        addr,
        r#"{"jsonrpc": "2.0", "method": "calculator.divide", "params": [1, 0], "id": 8}"#,
    )
    .await;
    let error = &r.json()["error"];
    assert_eq!(error["code"], 100);
    assert_eq!(error["message"], "division by zero");
    assert_eq!(error["data"]["origin"], "calculator");
    assert_eq!(error["data"]["details"], "1 / 0");
    let r = rpc(addr, r#"{"jsonrpc": "2.0", "method": "nobody.x", "id": 9}"#).await;
    assert_eq!(r.json()["error"]["code"], 46);
    let r = rpc(
        addr,
        r#"{"jsonrpc": "2.0", "method": "rpc.discover", "id": 10}"#,
    )
    .await;
    assert_eq!(r.json()["error"]["code"], -32601, "rpc. is reserved");
    let r = rpc(
        addr,
        r#"{"jsonrpc": "1.0", "method": "spec.sum", "id": 11}"#,
    )
    .await;
    assert_eq!(
        (r.json()["error"]["code"].clone(), r.json()["id"].clone()),
        (json!(-32600), json!(11))
    );
}

#[actix::test]
async fn xml_rpc_calls_and_faults() {
    let (_node, _gateway, addr) = start(GatewayConfig::default()).await;
    let call = |name: &str, params: &str| {
        format!("<?xml version='1.0'?>\n<methodCall><methodName>{name}</methodName><params>{params}</params></methodCall>")
    };
    let int = |i: i64| format!("<param><value><int>{i}</int></value></param>");
    let body = call("calculator.multiply", &(int(6) + &int(7)));
    let r = http(addr, "POST", "/RPC2", Some("text/xml"), body.as_bytes()).await;
    assert_eq!(r.status, 200);
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains("content-type: text/xml"),
        "{}",
        r.head
    );
    let response =
        dxr::MethodResponse::from_xml(r.body.trim_start_matches("<?xml version=\"1.0\"?>\n"))
            .unwrap();
    assert_eq!(response.value, dxr::Value::Integer(42));
    let body = call("multiply", &(int(100_000) + &int(100_000)));
    let r = http(
        addr,
        "POST",
        "/xmlrpc/calculator",
        Some("text/xml"),
        body.as_bytes(),
    )
    .await;
    assert!(r.body.contains("<i8>10000000000</i8>"), "{}", r.body);
    let body = call("calculator.divide", &(int(1) + &int(0)));
    let r = http(addr, "POST", "/RPC2", Some("text/xml"), body.as_bytes()).await;
    assert_eq!(r.status, 200);
    let fault =
        dxr::FaultResponse::from_xml(r.body.trim_start_matches("<?xml version=\"1.0\"?>\n"))
            .unwrap();
    assert_eq!(fault.fault.code(), 100);
    assert_eq!(
        fault.fault.string(),
        "calculator -- division by zero\n\n1 / 0"
    );
    let body = call("calculator.nothing", "");
    let r = http(addr, "POST", "/RPC2", Some("text/xml"), body.as_bytes()).await;
    assert!(r.body.contains("<i4>55</i4>"), "{}", r.body);
    let body = call("nodot", "");
    let r = http(addr, "POST", "/RPC2", Some("text/xml"), body.as_bytes()).await;
    assert!(r.body.contains("<i4>55</i4>"), "{}", r.body);
}

#[actix::test]
async fn only_the_exposed_group_is_reachable() {
    let config = GatewayConfig {
        group: Some(GroupName::new("public").unwrap()),
        ..GatewayConfig::default()
    };
    let (_node, _gateway, addr) = start(config).await;
    let r = post_json(addr, "/call/spec/subtract", "[3, 1]").await;
    assert_eq!((r.status, r.json()), (200, json!({"result": 2})));
    let r = post_json(addr, "/call/calculator/multiply", "[6, 7]").await;
    assert_eq!(r.status, 503, "not in the group: {}", r.body);
    let r = http(addr, "GET", "/services", None, b"").await;
    let names: Vec<String> = r.json()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["gateway", "spec"], "{}", r.body);
    let r = http(addr, "GET", "/services/calculator", None, b"").await;
    assert_eq!(r.status, 503);
    let r = http(addr, "GET", "/services/spec", None, b"").await;
    let v = r.json();
    assert_eq!(v["bindings"][0]["groups"], json!(["public"]));
    assert_eq!(
        v["descriptor"]["methods"][0]["signature"],
        "subtract(minuend: i64, subtrahend: i64) -> i64"
    );
    let mut events = Events::open(addr, "/events/registry").await;
    events.expect("event: available").await;
    let text = events.expect("\"name\":\"spec\"").await;
    assert!(!text.contains("calculator"), "{text}");
}

#[actix::test]
async fn duplicates_go_to_the_first_and_fall_back_and_a_withdrawal_fails_at_once() {
    let (node, _gateway, addr, first) = start_with(GatewayConfig::default()).await;
    node.spawn(Calculator("second"));
    let r = post_json(addr, "/call/calculator/who", "[]").await;
    assert_eq!(r.json(), json!({"result": "first"}));
    // A call pending when its service is withdrawn fails at once.
    let pending =
        actix_rt::spawn(async move { post_json(addr, "/call/calculator/slow", "[5000]").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    first.stop();
    let r = pending.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], 57, "{}", r.body);
    let deadline = Instant::now() + WAIT;
    loop {
        let r = post_json(addr, "/call/calculator/who", "[]").await;
        if r.json() == json!({"result": "second"}) {
            break;
        }
        assert!(Instant::now() < deadline, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix::test]
async fn published_reports_stream_cached_first_then_live() {
    let (_node, _gateway, addr) = start(GatewayConfig::default()).await;
    let r = post_json(addr, "/publish/weather.today", r#"{"sky": "blue"}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_json(addr, "/publish/weather.today?lifetime=later", "1").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let mut events = Events::open(addr, "/events/reports/gateway?pattern=weather.*").await;
    let head = events.expect("\r\n\r\n").await;
    assert!(
        head.contains("200 OK") && head.to_ascii_lowercase().contains("text/event-stream"),
        "{head}"
    );
    let cached = events.expect("\n\n").await;
    assert!(cached.contains("event: report"), "{cached}");
    assert!(cached.contains(r#""content":{"sky":"blue"}"#), "{cached}");
    assert!(cached.contains(r#""subject":"weather.today""#), "{cached}");
    let r = post_json(addr, "/publish/weather.now?lifetime=none", r#""rain""#).await;
    assert_eq!(r.status, 200);
    let live = events.expect("\n\n").await;
    assert!(live.contains(r#""content":"rain""#), "{live}");
    let r = http(addr, "GET", "/events/reports/gateway?pattern=", None, b"").await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[actix::test]
async fn a_slow_event_client_is_dropped_and_the_others_are_served() {
    let config = GatewayConfig {
        sse_buffer: 4,
        ..GatewayConfig::default()
    };
    let (node, gateway, addr) = start(config).await;
    // Opens a stream and never reads it.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        format!("GET /events/reports/gateway?pattern=big.* HTTP/1.1\r\nHost: {addr}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let subscribers = || async {
        let d = node.describe(gateway.publisher()).await.unwrap();
        d.subjects
            .iter()
            .find(|s| s.subject.as_str() == "big.x")
            .map_or(0, |s| s.subscribers)
    };
    let chunk = json!("x".repeat(64 * 1024));
    let deadline = Instant::now() + WAIT;
    let mut subscribed = false;
    loop {
        for _ in 0..50 {
            gateway.shared.publisher.do_send(publisher::Publish {
                subject: netsvc::Subject::new("big.x").unwrap(),
                content: chunk.clone(),
                lifetime: Lifetime::None,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = subscribers().await;
        subscribed |= now > 0;
        if subscribed && now == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow client was never dropped"
        );
    }
    let r = post_json(addr, "/call/calculator/multiply", "[6, 7]").await;
    assert_eq!((r.status, r.json()), (200, json!({"result": 42})));
    drop(slow);
}

#[actix::test]
async fn nodes_and_services_describe_the_mesh() {
    let (node, _gateway, addr) = start(GatewayConfig::default()).await;
    let r = http(addr, "GET", "/nodes", None, b"").await;
    let v = r.json();
    assert_eq!(v["nodes"][0]["node"], "gateway-test", "{}", r.body);
    assert_eq!(v["gateway"], node.process().to_string());
    let r = http(addr, "GET", "/services", None, b"").await;
    let services = r.json();
    let calc = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "calculator")
        .unwrap()
        .clone();
    assert_eq!(calc["node"], "gateway-test");
    assert_eq!(calc["location"], "local");
}

#[actix::test]
async fn the_gateway_stops_with_its_node() {
    let (node, _gateway, addr) = start(GatewayConfig::default()).await;
    let mut events = Events::open(addr, "/events/registry").await;
    events.expect("event: available").await;
    node.schedule_shutdown(Some(Duration::from_millis(1)));
    tokio::time::timeout(WAIT, node.shutdown_complete())
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET path` with these header lines.
async fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Response {
    http_with(addr, "GET", path, None, headers, b"").await
}

/// `Authorization: Basic …` of a login and password.
fn basic(login: &str, password: &str) -> String {
    use base64::Engine;
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"));
    format!("Authorization: Basic {pair}")
}

/// A 401 or 403 as the door answers it: the JSON error body, with code 53.
fn assert_refused(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_eq!(r.json()["error"]["code"], 53, "{what}: {}", r.body);
    assert_eq!(r.json()["error"]["origin"], GATEWAY_ORIGIN, "{what}");
}

#[actix::test]
async fn basic_and_bearer_credentials_guard_every_endpoint() {
    let config = GatewayConfig {
        authorise_user: Some(
            Passwords::parse("# who\nada:lovelace\n", "test")
                .unwrap()
                .into_hook(),
        ),
        authorise_token: Some(Tokens::parse("t0ken\n", "test").unwrap().into_hook()),
        ..GatewayConfig::default()
    };
    let (_node, _gateway, addr) = start(config).await;
    for path in ["/", "/services", "/nodes", "/events/registry", "/nowhere"] {
        let r = get(addr, path, &[]).await;
        assert_refused(&r, 401, path);
        let head = r.head.to_ascii_lowercase();
        assert!(
            head.contains("www-authenticate: basic realm=\"netsvc\""),
            "{path}: {}",
            r.head
        );
        assert!(
            head.contains("www-authenticate: bearer realm=\"netsvc\""),
            "{path}: {}",
            r.head
        );
    }
    let ada = basic("ada", "lovelace");
    let r = get(addr, "/services", &[&ada]).await;
    assert_eq!(r.status, 200, "right password: {}", r.body);
    let r = http_with(
        addr,
        "POST",
        "/call/calculator/multiply",
        Some("application/json"),
        &[&ada],
        b"[6, 7]",
    )
    .await;
    assert_eq!((r.status, r.json()), (200, json!({"result": 42})));
    let wrong: [(&str, String); 6] = [
        ("wrong password", basic("ada", "lovelacE")),
        ("wrong login", basic("bob", "lovelace")),
        ("no colon", "Authorization: Basic YWRh".to_owned()),
        ("not base64", "Authorization: Basic !!!".to_owned()),
        ("wrong token", "Authorization: Bearer t0ke".to_owned()),
        ("unknown scheme", "Authorization: Digest x".to_owned()),
    ];
    for (what, header) in &wrong {
        let r = get(addr, "/services", &[header]).await;
        assert_refused(&r, 401, what);
        assert!(!r.body.contains("lovelace"), "{what}: {}", r.body);
    }
    let r = get(addr, "/services", &["Authorization: Bearer t0ken"]).await;
    assert_eq!(r.status, 200, "right token: {}", r.body);
    let r = post_json(
        addr,
        "/jsonrpc",
        r#"{"jsonrpc": "2.0", "method": "x", "id": 1}"#,
    )
    .await;
    assert_refused(&r, 401, "JSON-RPC without credentials");
    // An event stream with credentials opens.
    let mut events =
        Events::open_with(addr, "/events/registry", "Authorization: Bearer t0ken").await;
    events.expect("200 OK").await;
}

#[actix::test]
async fn basic_alone_challenges_with_basic_only() {
    let config = GatewayConfig {
        authorise_user: Some(Arc::new(|login: &str, password: &str| {
            login == "u" && password == "p"
        })),
        ..GatewayConfig::default()
    };
    let (_node, _gateway, addr) = start(config).await;
    let r = get(addr, "/services", &["Authorization: Bearer p"]).await;
    assert_refused(&r, 401, "a token where none is configured");
    assert!(
        !r.head.to_ascii_lowercase().contains("bearer"),
        "{}",
        r.head
    );
    let r = get(addr, "/services", &[&basic("u", "p")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[actix::test]
async fn a_host_not_allowed_gets_403() {
    let config = GatewayConfig {
        authorise_host: Some(HostList::parse(&["10.0.0.0/8", "::1"]).unwrap().into_hook()),
        ..GatewayConfig::default()
    };
    let (_node, _gateway, addr) = start(config).await;
    for path in ["/services", "/", "/events/registry"] {
        let r = get(addr, path, &[]).await;
        assert_refused(&r, 403, path);
        assert!(
            r.json()["error"]["description"]
                .as_str()
                .unwrap()
                .contains("127.0.0.1"),
            "names the host: {}",
            r.body
        );
    }
    let config = GatewayConfig {
        authorise_host: Some(HostList::parse(&["127.0.0.0/8"]).unwrap().into_hook()),
        ..GatewayConfig::default()
    };
    let (_node, _gateway, addr) = start(config).await;
    let r = get(addr, "/services", &[]).await;
    assert_eq!(r.status, 200, "an allowed host: {}", r.body);
}

#[actix::test]
async fn every_post_endpoint_caps_its_body() {
    let config = GatewayConfig {
        body_limit: 100,
        ..GatewayConfig::default()
    };
    let (_node, _gateway, addr) = start(config).await;
    let json_body = format!("[{}]", vec!["1"; 100].join(","));
    let xml_body = format!(
        "<methodCall><methodName>calculator.multiply</methodName>{}</methodCall>",
        " ".repeat(100)
    );
    let cases = [
        ("/call/calculator/multiply", "application/json", &json_body),
        ("/jsonrpc", "application/json", &json_body),
        ("/publish/some.subject", "application/json", &json_body),
        ("/RPC2", "text/xml", &xml_body),
        ("/xmlrpc/calculator", "text/xml", &xml_body),
    ];
    for (path, ctype, body) in cases {
        let r = http(addr, "POST", path, Some(ctype), body.as_bytes()).await;
        assert_eq!(r.status, 413, "{path}: {}", r.body);
    }
    let r = post_json(addr, "/call/calculator/multiply", "[6, 7]").await;
    assert_eq!(r.status, 200, "under the limit: {}", r.body);
}

#[actix::test]
async fn https_serves_a_client_that_trusts_the_certificate_and_refuses_plain_http() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let tls = netsvc::Tls::new(&netsvc::TlsPem {
        cert: Some(cert.pem().into_bytes()),
        key: Some(key.serialize_pem().into_bytes()),
        ..netsvc::TlsPem::default()
    })
    .unwrap();
    let config = GatewayConfig {
        tls: tls.server_config(),
        ..GatewayConfig::default()
    };
    let (_node, _gateway, addr) = start(config).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let go = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let body = b"[6, 7]";
        let raw = request(
            addr,
            "POST",
            "/call/calculator/multiply",
            Some("application/json"),
            &[],
            body,
        );
        tls.write_all(&raw).await.unwrap();
        let mut out = Vec::new();
        // A peer closing without close_notify is an error to rustls: what was read counts.
        let _ = tls.read_to_end(&mut out).await;
        out
    };
    let raw = tokio::time::timeout(WAIT, go).await.expect("in time");
    let r = parse(&raw);
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"result": 42})),
        "over TLS"
    );

    let plain = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&request(addr, "GET", "/services", None, &[], b""))
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(WAIT, plain)
        .await
        .expect("closed in time");
    assert!(
        !raw.starts_with(b"HTTP/"),
        "plain HTTP to the TLS port: {}",
        String::from_utf8_lossy(&raw)
    );
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[actix::test]
async fn metrics_count_links_the_registry_and_calls_by_method_and_code() {
    let hub = Node::new("metrics-hub");
    let hub_x = netsvc::Exchange::new(&hub);
    let hub_addr = hub_x.listen("127.0.0.1:0").await.unwrap().to_string();
    hub.spawn(Spec);
    let node = Node::new("metrics-test");
    node.spawn(Calculator("first"));
    let x = netsvc::Exchange::new(&node);
    let mut links = x.connections();
    x.connect(&hub_addr, None).forget();
    let up = tokio::time::timeout(WAIT, links.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.state, netsvc::ConnectionState::Active);
    let deadline = Instant::now() + WAIT;
    while node.lookup_name("spec").await.is_empty() {
        assert!(Instant::now() < deadline, "the hub's service never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gateway = Gateway::new(&node, GatewayConfig::default());
    let addr = gateway.listen("127.0.0.1:0").await.unwrap();
    for _ in 0..3 {
        let r = post_json(addr, "/call/calculator/multiply", "[6, 7]").await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = post_json(addr, "/call/calculator/divide", "[1, 0]").await;
    assert_eq!(r.status, 500, "{}", r.body);

    let r = http(addr, "GET", "/metrics", None, b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{}",
        r.head
    );
    let text = &r.body;
    let me = ("node", "metrics-test");
    let multiply = [me, ("service", "calculator"), ("method", "multiply")];
    let divide = [me, ("service", "calculator"), ("method", "divide")];
    assert_eq!(
        sample(text, "netsvc_calls_total", &multiply),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(text, "netsvc_calls_total", &divide),
        Some(1.0),
        "{text}"
    );
    let by_code = [divide[0], divide[1], divide[2], ("code", "100")];
    assert_eq!(
        sample(text, "netsvc_call_failures_total", &by_code),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(text, "netsvc_call_failures_total", &multiply),
        None,
        "{text}"
    );
    assert_eq!(
        sample(text, "netsvc_call_duration_seconds_count", &multiply),
        Some(3.0),
        "{text}"
    );
    let top = [multiply[0], multiply[1], multiply[2], ("le", "10")];
    assert_eq!(
        sample(text, "netsvc_call_duration_seconds_bucket", &top),
        Some(3.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE netsvc_call_duration_seconds histogram"),
        "{text}"
    );

    let link = [me, ("peer", "metrics-hub")];
    for counter in ["frames_in", "frames_out", "bytes_in", "bytes_out"] {
        let name = format!("netsvc_link_{counter}_total");
        let value = sample(text, &name, &link).unwrap_or_else(|| panic!("no {name}: {text}"));
        assert!(value > 0.0, "{name} {value}");
    }
    assert_eq!(
        sample(text, "netsvc_link_reports_dropped_total", &link),
        Some(0.0)
    );
    assert_eq!(sample(text, "netsvc_links", &[me]), Some(1.0), "{text}");
    // The calculator and the gateway's publisher here, the spec service there.
    let known = sample(text, "netsvc_registry_services", &[me]).unwrap();
    let local = sample(text, "netsvc_local_services", &[me]).unwrap();
    assert!(local >= 2.0 && known > local, "{known} {local}");
    drop((hub, hub_x));
}

#[actix::test]
async fn a_method_an_endpoint_does_not_take_gets_405_with_allow() {
    let (_node, _gateway, addr) = start(GatewayConfig::default()).await;
    for (method, path, allow) in [
        ("GET", "/call/calculator/multiply", "POST"),
        ("PUT", "/jsonrpc", "POST"),
        ("GET", "/RPC2", "POST"),
        ("POST", "/services", "GET"),
        ("DELETE", "/events/registry", "GET"),
        ("POST", "/metrics", "GET"),
    ] {
        let r = http(addr, method, path, Some("application/json"), b"[]").await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        let head = r.head.to_ascii_lowercase();
        assert!(
            head.contains(&format!("allow: {}", allow.to_ascii_lowercase())),
            "{head}"
        );
        let v = r.json();
        assert_eq!(v["error"]["origin"], "gateway", "{}", r.body);
        assert!(v["error"]["description"].as_str().unwrap().contains(allow));
    }
    // An unknown path is still 404, and the endpoints still answer.
    assert_eq!(http(addr, "GET", "/nowhere", None, b"").await.status, 404);
    let r = post_json(addr, "/call/calculator/multiply", "[6, 7]").await;
    assert_eq!(r.json()["result"], 42);
}

#[actix::test]
async fn the_console_page_and_its_assets_are_served_with_their_types() {
    let (_node, _gateway, addr) = start(GatewayConfig::default()).await;
    let header = |r: &Response, name: &str| {
        r.head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let page = get(addr, "/", &[]).await;
    assert_eq!(page.status, 200, "{}", page.head);
    assert!(
        header(&page, "content-type").starts_with("text/html"),
        "{}",
        page.head
    );
    assert!(
        page.body.contains("<title>netsvc console</title>"),
        "{}",
        page.body
    );
    for asset in ["console.css", "console.js"] {
        assert!(
            page.body.contains(&format!("\"{asset}\"")),
            "the page links {asset}"
        );
    }
    assert!(header(&page, "content-security-policy").contains("script-src 'self'"));
    let css = get(addr, "/console.css", &[]).await;
    assert_eq!(css.status, 200);
    assert!(
        header(&css, "content-type").starts_with("text/css"),
        "{}",
        css.head
    );
    assert!(css.body.contains("tr.service"), "the style sheet");
    let js = get(addr, "/console.js", &[]).await;
    assert_eq!(js.status, 200);
    assert!(
        header(&js, "content-type").starts_with("text/javascript"),
        "{}",
        js.head
    );
    assert!(js.body.contains("events/registry"), "the script");
    assert_eq!(header(&js, "x-content-type-options"), "nosniff");
    // Only GET: the page is not an endpoint to post to.
    let post = post_json(addr, "/", "{}").await;
    assert_eq!(post.status, 405, "{}", post.body);
}

#[actix::test]
async fn the_console_is_behind_the_door() {
    let config = GatewayConfig {
        authorise_user: Some(
            Passwords::parse("ada:lovelace\n", "test")
                .unwrap()
                .into_hook(),
        ),
        ..GatewayConfig::default()
    };
    let (_node, _gateway, addr) = start(config).await;
    let r = get(addr, "/", &[]).await;
    assert_refused(&r, 401, "no credentials");
    let r = get(addr, "/console.js", &[&basic("ada", "lovelace")]).await;
    assert_eq!(r.status, 200, "{}", r.head);
}
