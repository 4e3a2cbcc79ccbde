//! Large reports, requests and responses relayed by an exchange server, whole frames and
//! reports split per link, between small ones: they must reach every subscriber and
//! requester whole and in order.

mod common;

use std::time::Duration;

use common::{wait_for, WAIT};
use netsvc::prelude::*;
use netsvc::Exchange;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// A body of `len` bytes for message `seq`, every byte depending on both.
fn body(seq: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8)
        .collect()
}

#[derive(Service)]
#[service(name = "big-publisher")]
struct Publisher;
impl Service for Publisher {}

/// Publish these sizes, one report each, report `i` with `body(i, size)`.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct Publish(Vec<usize>);

impl actix::Handler<Publish> for Publisher {
    type Result = ();
    fn handle(&mut self, Publish(sizes): Publish, ctx: &mut ServiceContext<Self>) {
        for (i, len) in sizes.into_iter().enumerate() {
            ctx.publish_report("big.body", body(i as u32, len), Lifetime::None);
        }
    }
}

#[derive(Service)]
struct Subscriber {
    log: UnboundedSender<Vec<u8>>,
}
impl Service for Subscriber {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("big-publisher", "big.*");
    }
    fn report(&mut self, r: Report, _: &mut ServiceContext<Self>) {
        let _ = self.log.send(r.decode::<Vec<u8>>().unwrap());
    }
}

#[derive(Service)]
#[service(name = "echo")]
struct Echo;
impl Service for Echo {}

#[netsvc::methods]
impl Echo {
    fn echo(&mut self, bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }
}

/// A client node connected to `addr`, once its link is up.
async fn client(name: &str, addr: &str) -> (Node, Exchange) {
    let node = Node::new(name);
    let exchange = Exchange::new(&node);
    exchange.connect(addr, None).forget();
    (node, exchange)
}

#[actix::test]
async fn large_reports_and_calls_cross_a_relay_whole_and_in_order() {
    let hub = Node::new("hub");
    let hub_x = Exchange::new(&hub);
    let addr = hub_x.listen("127.0.0.1:0").await.unwrap().to_string();

    let (publishing, _px) = client("publishing", &addr).await;
    let publisher = publishing.spawn(Publisher);
    publishing.spawn(Echo);
    // Two subscribers behind two links: the hub splits the publisher's frame per link; then
    // one alone: the frame passed on whole.
    let (first, _fx) = client("first", &addr).await;
    let (second, _sx) = client("second", &addr).await;
    let (tx1, mut rx1) = unbounded_channel();
    let (tx2, mut rx2) = unbounded_channel();
    first.spawn(Subscriber { log: tx1 });
    let second_sub = second.spawn(Subscriber { log: tx2 });
    wait_for(&first, "big-publisher").await;
    wait_for(&second, "big-publisher").await;
    tokio::time::timeout(WAIT, async {
        while publisher.addr().send(Subscribers).await.unwrap() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both subscriptions within WAIT");

    let sizes = vec![10, 1 << 20, 100, 64 * 1024, 16 * 1024, 3, 300 * 1024];
    publisher.addr().send(Publish(sizes.clone())).await.unwrap();
    assert_eq!(received(&mut rx1, &sizes).await, sizes);
    assert_eq!(received(&mut rx2, &sizes).await, sizes);

    second_sub.stop();
    tokio::time::timeout(WAIT, async {
        while publisher.addr().send(Subscribers).await.unwrap() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the subscription withdrawn within WAIT");
    publisher.addr().send(Publish(sizes.clone())).await.unwrap();
    assert_eq!(received(&mut rx1, &sizes).await, sizes);

    // A large request and its large response, both relayed by the hub, between small ones.
    let echo = wait_for(&first, "echo").await;
    let endpoint = first.endpoint(&echo).with_timeout(WAIT);
    for (i, len) in [5usize, 2 << 20, 40 * 1024, 7].into_iter().enumerate() {
        let sent = body(i as u32, len);
        let back: Vec<u8> = endpoint.call("echo", (sent.clone(),)).await.unwrap();
        assert!(back == sent, "call {i} ({len} bytes) altered");
    }
}

/// The next reports of `rx`, checked to be those `Publish(sizes)` sent; their sizes.
async fn received(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    sizes: &[usize],
) -> Vec<usize> {
    let mut got = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let b = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("report within WAIT")
            .unwrap();
        assert!(
            b == body(i as u32, *len),
            "report {i} ({len} bytes) altered"
        );
        got.push(b.len());
    }
    got
}

/// How many subscribers the publisher has.
#[derive(actix::Message)]
#[rtype(result = "usize")]
struct Subscribers;

impl actix::Handler<Subscribers> for Publisher {
    type Result = usize;
    fn handle(&mut self, _: Subscribers, ctx: &mut ServiceContext<Self>) -> usize {
        ctx.subscribers().len()
    }
}
