use netsvc::prelude::*;
use std::time::Duration;

#[derive(Service)]
#[service(name = "calculator")]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }
}

#[derive(Service)]
#[service(name = "publisher")]
struct Publisher;
impl Service for Publisher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("system.ctime", 7u32, Lifetime::Forever);
    }
}

#[derive(Service)]
struct Subscriber(tokio::sync::mpsc::UnboundedSender<String>);
impl Service for Subscriber {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("publisher", "system.*");
    }
    fn report(&mut self, report: Report, _ctx: &mut ServiceContext<Self>) {
        let _ = self.0.send(format!("{} {}", report.subject(), report.decode::<u32>().unwrap()));
    }
}

#[actix::test]
async fn smoke() {
    let node = Node::new("t");
    let calc = node.spawn(Calculator);
    let client = CalculatorClient::new(node.endpoint(&calc.binding));
    assert_eq!(client.multiply(6, 7).await.unwrap(), 42);
    let byname = CalculatorClient::new(node.endpoint("calculator"));
    assert_eq!(byname.multiply(2, 3).await.unwrap(), 6);
    node.spawn(Publisher);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    node.spawn(Subscriber(tx));
    let got = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
    assert_eq!(got, "system.ctime 7");
}
