//! Conflation across processes: a slow conflating subscriber in another process (here, its
//! own thread and actix System, connected over TCP) keeps up with the latest value of every
//! subject, rather than leaving its backlog at the publisher's link buffer, which drops.

mod common;

use std::time::{Duration, Instant};

use common::WAIT;
use netsvc::prelude::*;
use netsvc::{Exchange, ExchangeConfig, NodeConfig};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// Subjects the publisher cycles over.
const SUBJECTS: u32 = 10;
/// Reports published.
const REPORTS: u32 = 40_000;
/// Reports published per tick, one tick a millisecond: about 100 times what the subscriber
/// handles.
const PER_TICK: u32 = 200;
/// What the subscriber spends on each report.
const HANDLING: Duration = Duration::from_micros(50);

#[derive(Service)]
#[service(name = "fast-publisher")]
struct Publisher {
    next: u32,
    started: bool,
}

impl Service for Publisher {
    fn subscription(&mut self, notice: SubscriptionNotice, ctx: &mut ServiceContext<Self>) {
        if notice.status == SubscriptionStatus::Requested && !self.started {
            self.started = true;
            ctx.start_timer("tick", Duration::from_millis(1));
        }
    }
    fn timer(&mut self, _: &str, ctx: &mut ServiceContext<Self>) {
        for _ in 0..PER_TICK {
            if self.next == REPORTS {
                return;
            }
            let subject = format!("s.{}", self.next % SUBJECTS);
            ctx.publish_report(subject.as_str(), self.next, Lifetime::None);
            self.next += 1;
        }
        ctx.start_timer("tick", Duration::from_millis(1));
    }
}

/// Subscribes, conflated, and spends [`HANDLING`] on each report; logs
/// `(subject number, value, conflated)`.
#[derive(Service)]
struct Slow {
    log: UnboundedSender<(u32, u32, u64)>,
}

impl Service for Slow {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("fast-publisher", "s.*");
        ctx.conflate_reports("fast-publisher", "s.*");
    }
    fn report(&mut self, r: Report, _: &mut ServiceContext<Self>) {
        let until = Instant::now() + HANDLING;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        let subject = r.subject().as_str()[2..].parse().unwrap();
        let _ = self.log.send((subject, r.decode().unwrap(), r.conflated()));
    }
}

#[actix::test]
async fn a_slow_conflating_subscriber_across_processes_ends_with_every_last_value() {
    let node = Node::new("publishing");
    // A small link buffer: a backlog left there would soon be dropped.
    let exchange = Exchange::with_config(
        &node,
        ExchangeConfig {
            outbound_limit: 256 * 1024,
            ..ExchangeConfig::default()
        },
    )
    .unwrap();
    let addr = exchange.listen("127.0.0.1:0").await.unwrap().to_string();
    node.spawn(Publisher {
        next: 0,
        started: false,
    });

    let (log, mut got) = unbounded_channel();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let subscriber = std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            let node = Node::with_config(NodeConfig {
                name: "subscribing".into(),
                inbox_capacity: 2048,
                ..NodeConfig::default()
            });
            let exchange = Exchange::new(&node);
            exchange.connect(&addr, None).forget();
            node.spawn(Slow { log });
            // Runs until the test is done with it.
            while stopped.try_recv().is_err() {
                actix::clock::sleep(Duration::from_millis(20)).await;
            }
        })
    });

    let mut last = [None; SUBJECTS as usize];
    let mut handled = 0u64;
    let mut conflated = 0u64;
    let deadline = tokio::time::Instant::now() + 6 * WAIT;
    while last
        .iter()
        .enumerate()
        .any(|(s, v)| *v != Some(REPORTS - SUBJECTS + s as u32))
    {
        let (subject, value, skipped) = tokio::time::timeout_at(deadline, got.recv())
            .await
            .unwrap_or_else(|_| panic!("not every last value within {:?}: {last:?}", 6 * WAIT))
            .unwrap();
        let slot = &mut last[subject as usize];
        assert!(
            slot.is_none_or(|v| v < value),
            "s.{subject}: {value} after {slot:?}"
        );
        *slot = Some(value);
        handled += 1;
        conflated += skipped;
    }
    let _ = stop.send(());
    subscriber.join().unwrap();
    // The subscriber handles a report in 50 µs: 40,000 would take 2 s. It kept up by
    // skipping, and was told how many it skipped.
    assert!(conflated > 0, "nothing conflated in {handled} reports");
    assert!(
        handled < u64::from(REPORTS) / 2,
        "{handled} of {REPORTS} handled: the backlog was not conflated"
    );
    let dropped = exchange.stats().reports_dropped;
    assert_eq!(
        handled + conflated + dropped,
        u64::from(REPORTS),
        "every report handled, conflated or dropped at the link"
    );
}
