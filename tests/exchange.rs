//! The exchange between nodes over real sockets on 127.0.0.1 (several nodes in one test
//! process: each node is its own process as far as netsvc is concerned).

mod common;

use std::time::Duration;

use common::{probe, settle, WAIT};
use netsvc::prelude::*;
use netsvc::{ConnectionState, Exchange};
use tokio::sync::mpsc::UnboundedSender;

#[derive(Service)]
#[service(name = "calculator")]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }
    fn divide(&mut self, a: i64, b: i64) -> Result<i64, Failure> {
        if b == 0 {
            return Err(Failure::new(ErrorCode(100), "division by zero"));
        }
        Ok(a / b)
    }
    fn slow(&mut self, ctx: &mut ServiceContext<Self>, millis: u64) -> Delayed<u64> {
        let (responder, delayed) = ctx.suspend_response();
        ctx.run_later(Duration::from_millis(millis), move |_, _| responder.resolve(millis));
        delayed
    }
}

#[derive(Service)]
#[service(name = "publisher")]
struct Publisher;
impl Service for Publisher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("system.ctime", "then".to_string(), Lifetime::Forever);
        ctx.start_timer("tick", Duration::from_millis(20));
    }
    fn timer(&mut self, _: &str, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("system.time", "now".to_string(), Lifetime::None);
        ctx.start_timer("tick", Duration::from_millis(20));
    }
}

#[derive(Service)]
struct Subscriber {
    log: UnboundedSender<String>,
}
impl Service for Subscriber {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("publisher", "system.*");
    }
    fn report(&mut self, r: Report, _: &mut ServiceContext<Self>) {
        let _ =
            self.log.send(format!("{} {} {:?}", r.subject(), r.decode::<String>().unwrap(), r.publisher().location()));
    }
    fn publisher(&mut self, n: PublisherNotice, _: &mut ServiceContext<Self>) {
        let _ = self.log.send(format!("publisher {:?}", n.status));
    }
}

async fn active(rx: &mut tokio::sync::broadcast::Receiver<netsvc::ConnectionEvent>) {
    loop {
        let event = tokio::time::timeout(WAIT, rx.recv()).await.expect("connection within WAIT").unwrap();
        if event.state == ConnectionState::Active {
            return;
        }
    }
}

async fn wait_for(node: &Node, name: &str) -> Binding {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(b) = node.lookup_name(name).await.into_iter().next() {
            return b;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} never appeared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix::test]
async fn services_reports_and_requests_cross_a_connection() {
    let server = Node::new("server");
    let server_x = Exchange::new(&server);
    let addr = server_x.listen("127.0.0.1:0").await.unwrap();
    server.spawn(Calculator);
    server.spawn(Publisher);

    let client = Node::new("client");
    let client_x = Exchange::new(&client);
    let mut events = client_x.connections();
    client_x.connect(&addr.to_string(), Some(Duration::from_millis(100))).forget();
    active(&mut events).await;

    let calc = wait_for(&client, "calculator").await;
    assert_eq!(calc.location(), netsvc::Location::Remote);
    let c = CalculatorClient::new(client.endpoint(&calc));
    assert_eq!(c.multiply(6, 7).await, Ok(42));
    let f = c.divide(1, 0).await.unwrap_err();
    assert_eq!((f.code, f.origin.as_str()), (ErrorCode(100), "calculator"));
    assert_eq!(
        client.endpoint("calculator").call_dynamic("multiply", serde_json::json!([2, 4])).await,
        Ok(serde_json::json!(8))
    );
    let f = client.endpoint("calculator").call_dynamic("multiply", serde_json::json!([2])).await.unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_PARAMETERS_INCORRECT);
    let f = c
        .endpoint()
        .clone()
        .with_timeout(Duration::from_millis(30))
        .call::<_, u64>("slow", (200u64,))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::CLIENT_REQUEST_TIMEOUT);

    let (tx, mut log) = probe();
    client.spawn(Subscriber { log: tx });
    assert_eq!(log.next().await, "publisher Available");
    assert_eq!(log.next().await, "system.ctime then Remote");
    log.until("system.time now Remote").await;
    settle().await;
}
