//! Self-describing services: what `#[netsvc::methods]` records, the reserved `$describe`
//! request every service answers, the subjects with their subscribers and cache state, in
//! this process and across an exchange.

// `tally` spells its types out on purpose (the generated client repeats them).
#![allow(clippy::type_complexity)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{wait_for, WAIT};
use netsvc::prelude::*;
use netsvc::{
    ConnectionState, Exchange, MethodDescriptor, ServiceDescriptor, SubjectInfo, DESCRIBE_METHOD,
};
use serde_json::json;

#[derive(Service)]
#[service(name = "calculator")]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    /// Multiplies two integers.
    ///
    /// Only the first line shows in the descriptor.
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }

    /// Divides `a` by `b`; fails on a zero `b`.
    fn divide(&mut self, a: i64, b: i64) -> Result<i64, Failure> {
        if b == 0 {
            return Err(Failure::new(ErrorCode(100), "division by zero"));
        }
        Ok(a / b)
    }

    /** Squares `x` after `millis` milliseconds. */
    fn slow_square(&mut self, ctx: &mut ServiceContext<Self>, x: i64, millis: u64) -> Delayed<i64> {
        let (responder, delayed) = ctx.suspend_response();
        ctx.run_later(Duration::from_millis(millis), move |_, _| {
            responder.resolve(x * x)
        });
        delayed
    }

    fn tally(
        &mut self,
        names: Vec<String>,
        first: Option<(u8, String)>,
        _: std::collections::BTreeMap<String, Vec<i64>>,
    ) -> HashMap<String, Vec<i64>> {
        let _ = first;
        names.into_iter().map(|n| (n, Vec::new())).collect()
    }

    /// A method of the user's own that happens to be called `describe`.
    fn describe(&self) {}
}

/// A service without `#[netsvc::methods]`.
#[derive(Service)]
#[service(name = "quiet")]
struct Quiet;
impl Service for Quiet {}

/// Publishes on request: `publish(subject, cached)`.
#[derive(Service)]
#[service(name = "publisher")]
struct Publisher;
impl Service for Publisher {}

#[netsvc::methods]
impl Publisher {
    /// Publishes `subject`, cached forever or not at all.
    fn publish(&mut self, ctx: &mut ServiceContext<Self>, subject: String, cached: bool) {
        let lifetime = if cached {
            Lifetime::Forever
        } else {
            Lifetime::None
        };
        ctx.publish_report(subject, 1u32, lifetime);
    }

    /// Publishes `count` reports on `prefix.0`, `prefix.1`, ..., none cached.
    fn publish_many(&mut self, ctx: &mut ServiceContext<Self>, prefix: String, count: u32) {
        for i in 0..count {
            ctx.publish_report(format!("{prefix}.{i}"), i, Lifetime::None);
        }
    }
}

/// Subscribes to the publisher with the patterns it is given.
#[derive(Service)]
struct Subscriber(Vec<&'static str>);
impl Service for Subscriber {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        for pattern in &self.0 {
            ctx.monitor_reports("publisher", *pattern);
        }
    }
}

fn signatures(descriptor: &ServiceDescriptor) -> Vec<String> {
    descriptor
        .methods
        .iter()
        .map(MethodDescriptor::signature)
        .collect()
}

fn subjects(descriptor: &ServiceDescriptor) -> Vec<(String, bool, usize)> {
    descriptor
        .subjects
        .iter()
        .map(
            |SubjectInfo {
                 subject,
                 cached,
                 subscribers,
                 ..
             }| { (subject.to_string(), *cached, *subscribers) },
        )
        .collect()
}

/// Describes `target` until `done` holds for its descriptor (panics after `WAIT`).
async fn describe_until(
    node: &Node,
    target: &str,
    done: impl Fn(&ServiceDescriptor) -> bool,
) -> ServiceDescriptor {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let descriptor = node.describe(target).await.expect("a descriptor");
        if done(&descriptor) {
            return descriptor;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached: {descriptor:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix::test]
async fn the_methods_macro_records_names_types_results_and_doc_lines() {
    let node = Node::new("test");
    let calc = node.spawn(Calculator);
    let d = node.endpoint(&calc.binding).describe().await.unwrap();
    assert_eq!(d.name.as_str(), "calculator");
    assert_eq!(d.agent, Some(calc.binding.agent()));
    assert_eq!(
        signatures(&d),
        [
            "multiply(a: i64, b: i64) -> i64",
            "divide(a: i64, b: i64) -> Result<i64>",
            "slow_square(x: i64, millis: u64) -> i64",
            "tally(names: Vec<String>, first: Option<(u8, String)>, \
             arg2: std::collections::BTreeMap<String, Vec<i64>>) -> HashMap<String, Vec<i64>>",
            "describe()",
        ]
    );
    let flags: Vec<(bool, bool)> = d.methods.iter().map(|m| (m.fallible, m.delayed)).collect();
    assert_eq!(
        flags,
        [
            (false, false),
            (true, false),
            (false, true),
            (false, false),
            (false, false)
        ]
    );
    let docs: Vec<Option<&str>> = d.methods.iter().map(|m| m.doc.as_deref()).collect();
    assert_eq!(
        docs,
        [
            Some("Multiplies two integers."),
            Some("Divides `a` by `b`; fails on a zero `b`."),
            Some("Squares `x` after `millis` milliseconds."),
            None,
            Some("A method of the user's own that happens to be called `describe`."),
        ]
    );
    let multiply = d.method("multiply").unwrap();
    assert_eq!(multiply.returns, "i64");
    assert_eq!(multiply.params[1].name, "b");
    assert_eq!(multiply.params[1].ty, "i64");
    assert_eq!(d.method("describe").unwrap().returns, "()");
    assert!(d.subjects.is_empty());

    // The user's `describe` is an ordinary method; the reserved name is another.
    let client = CalculatorClient::new(node.endpoint("calculator"));
    assert_eq!(client.describe().await, Ok(()));
    assert_eq!(client.slow_square(3, 1).await, Ok(9));
}

#[actix::test]
async fn a_service_without_exported_methods_describes_itself_with_none() {
    let node = Node::new("test");
    let quiet = node.spawn(Quiet);
    let d = node.describe("quiet").await.unwrap();
    assert_eq!(d.name.as_str(), "quiet");
    assert_eq!(d.agent, Some(quiet.binding.agent()));
    assert!(d.methods.is_empty());
    assert!(d.subjects.is_empty());
    // Its other methods are still unavailable.
    let f = node
        .endpoint("quiet")
        .call_dynamic("multiply", json!([1, 2]))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_METHOD_UNAVAILABLE);
}

#[actix::test]
async fn describe_is_a_dynamic_call_answered_with_json() {
    let node = Node::new("test");
    node.spawn(Calculator);
    let json = node
        .endpoint("calculator")
        .call_dynamic(DESCRIBE_METHOD, json!([]))
        .await
        .unwrap();
    assert_eq!(json["name"], "calculator");
    assert_eq!(
        json["methods"][0],
        json!({
            "name": "multiply",
            "params": [{"name": "a", "type": "i64"}, {"name": "b", "type": "i64"}],
            "returns": "i64",
            "fallible": false,
            "delayed": false,
            "doc": "Multiplies two integers.",
        })
    );
    assert_eq!(json["methods"][3]["doc"], serde_json::Value::Null);
    assert_eq!(json["subjects"], json!([]));
    assert!(json["agent"].is_string());

    // Unknown services fail as any call does.
    let f = node.describe("nosuch").await.unwrap_err();
    assert_eq!(f.code, ErrorCode::CLIENT_SERVICE_UNAVAILABLE);
}

#[actix::test]
async fn subjects_show_their_subscribers_and_whether_a_value_is_cached() {
    let node = Node::new("test");
    node.spawn(Publisher);
    let publisher = PublisherClient::new(node.endpoint("publisher"));
    publisher
        .publish("system.ctime".into(), true)
        .await
        .unwrap();
    publisher
        .publish("system.time".into(), false)
        .await
        .unwrap();
    publisher
        .publish("system.time".into(), false)
        .await
        .unwrap();
    publisher.publish("other".into(), false).await.unwrap();
    let d = node.describe("publisher").await.unwrap();
    assert_eq!(
        subjects(&d),
        [
            ("other".into(), false, 0),
            ("system.ctime".into(), true, 0),
            ("system.time".into(), false, 0),
        ]
    );

    // Two subscribers to everything of `system.`, one of them also to `system.time` exactly
    // (counted once), and one to `other`.
    node.spawn(Subscriber(vec!["system.*", "system.time"]));
    node.spawn(Subscriber(vec!["system.*"]));
    node.spawn(Subscriber(vec!["oth?r"]));
    let d = describe_until(&node, "publisher", |d| {
        d.subjects.iter().map(|s| s.subscribers).sum::<usize>() == 5
    })
    .await;
    assert_eq!(
        subjects(&d),
        [
            ("other".into(), false, 1),
            ("system.ctime".into(), true, 2),
            ("system.time".into(), false, 2),
        ]
    );

    // Published again without caching, the cached subject is no longer cached.
    publisher
        .publish("system.ctime".into(), false)
        .await
        .unwrap();
    let d = node.describe("publisher").await.unwrap();
    assert_eq!(d.subjects[1].subject.as_str(), "system.ctime");
    assert!(!d.subjects[1].cached);
}

#[actix::test]
async fn a_publisher_keeps_its_last_256_distinct_subjects_and_every_cached_one() {
    let node = Node::new("test");
    node.spawn(Publisher);
    let publisher = PublisherClient::new(node.endpoint("publisher"));
    publisher.publish("kept".into(), true).await.unwrap();
    publisher.publish_many("s".into(), 300).await.unwrap();
    let d = node.describe("publisher").await.unwrap();
    let listed: Vec<String> = d.subjects.iter().map(|s| s.subject.to_string()).collect();
    // 301 recorded, 256 kept: "kept" and "s.0" .. "s.43" went first, "s.44" .. "s.299"
    // stayed; "kept" is still listed, as it is cached.
    assert_eq!(listed.len(), 257);
    assert!(listed.contains(&"kept".to_string()));
    assert!(listed.contains(&"s.44".to_string()));
    assert!(!listed.contains(&"s.43".to_string()));
    assert!(d
        .subjects
        .iter()
        .all(|s| s.cached == (s.subject.as_str() == "kept")));
}

async fn active(rx: &mut tokio::sync::broadcast::Receiver<netsvc::ConnectionEvent>) {
    loop {
        let event = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("connection within WAIT")
            .unwrap();
        if event.state == ConnectionState::Active {
            return;
        }
    }
}

#[actix::test]
async fn a_remote_service_describes_itself_across_an_exchange() {
    let server = Node::new("server");
    let server_x = Exchange::new(&server);
    let addr = server_x.listen("127.0.0.1:0").await.unwrap();
    let calc = server.spawn(Calculator);
    server.spawn(Publisher);

    let client = Node::new("client");
    let client_x = Exchange::new(&client);
    let mut events = client_x.connections();
    client_x
        .connect(&addr.to_string(), Some(Duration::from_millis(100)))
        .forget();
    active(&mut events).await;
    let remote = wait_for(&client, "calculator").await;
    assert_eq!(remote.location(), netsvc::Location::Remote);

    // Typed, by binding and by name.
    let d = client.endpoint(&remote).describe().await.unwrap();
    assert_eq!(d.agent, Some(calc.binding.agent()));
    assert_eq!(
        d.method("multiply").unwrap().signature(),
        "multiply(a: i64, b: i64) -> i64"
    );
    assert_eq!(d, server.describe("calculator").await.unwrap());
    assert_eq!(
        client.describe("calculator").await.unwrap().methods.len(),
        5
    );

    // As JSON, for tools.
    let json = client
        .endpoint("calculator")
        .call_dynamic("$describe", json!([]))
        .await
        .unwrap();
    assert_eq!(json["methods"][1]["name"], "divide");
    assert_eq!(json["methods"][1]["fallible"], true);
    assert_eq!(json["methods"][2]["delayed"], true);

    // Asked for in bincode, as an ordinary typed call would, it decodes too.
    let typed: ServiceDescriptor = client
        .endpoint(&remote)
        .call(DESCRIBE_METHOD, ())
        .await
        .unwrap();
    assert_eq!(typed, d);

    // A remote subscriber counts, and the subject's cache state shows.
    wait_for(&client, "publisher").await;
    PublisherClient::new(client.endpoint("publisher"))
        .publish("system.ctime".into(), true)
        .await
        .unwrap();
    client.spawn(Subscriber(vec!["system.*"]));
    let d = describe_until(&client, "publisher", |d| {
        d.subjects.first().is_some_and(|s| s.subscribers == 1)
    })
    .await;
    assert_eq!(subjects(&d), [("system.ctime".into(), true, 1)]);
}
