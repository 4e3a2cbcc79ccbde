//! Conflation across processes: a conflating subscriber in another process (here, its own
//! thread and actix System, connected over TCP) that falls behind keeps up with the latest
//! value of every subject. Slow, its link is read ahead into its inbox, which conflates;
//! stopped altogether, its backlog waits at the publisher's link buffer, which conflates
//! too rather than drop.

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
/// Reports published per tick, one tick a millisecond: about 100 times what the slow
/// subscriber handles.
const PER_TICK: u32 = 200;
/// What the slow subscriber spends on each report.
const HANDLING: Duration = Duration::from_micros(50);
/// How long the stalling subscriber's process stops reading, at its first report.
const STALL: Duration = Duration::from_millis(1500);

#[derive(Service)]
#[service(name = "fast-publisher")]
struct Publisher {
    next: u32,
    started: bool,
    /// Bytes of padding in each report: `(value, padding)`.
    padding: usize,
}

impl Service for Publisher {
    fn subscription(&mut self, notice: SubscriptionNotice, ctx: &mut ServiceContext<Self>) {
        if notice.status == SubscriptionStatus::Requested && !self.started {
            self.started = true;
            ctx.start_timer("tick", Duration::from_millis(1));
        }
    }
    fn timer(&mut self, _: &str, ctx: &mut ServiceContext<Self>) {
        let padding = vec![7u8; self.padding];
        for _ in 0..PER_TICK {
            if self.next == REPORTS {
                return;
            }
            let subject = format!("s.{}", self.next % SUBJECTS);
            ctx.publish_report(
                subject.as_str(),
                (self.next, padding.clone()),
                Lifetime::None,
            );
            self.next += 1;
        }
        ctx.start_timer("tick", Duration::from_millis(1));
    }
}

/// How the subscriber falls behind.
#[derive(Clone, Copy)]
enum Behind {
    /// It spends [`HANDLING`] on each report.
    Slow,
    /// Its process stops reading for [`STALL`] at the first report, then handles at once.
    Stalling,
}

/// Subscribes, conflated, and falls behind; logs `(subject number, value, conflated)`.
#[derive(Service)]
struct Subscriber {
    log: UnboundedSender<(u32, u32, u64)>,
    behind: Behind,
    stalled: bool,
}

impl Service for Subscriber {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("fast-publisher", "s.*");
        ctx.conflate_reports("fast-publisher", "s.*");
    }
    fn report(&mut self, r: Report, _: &mut ServiceContext<Self>) {
        match self.behind {
            Behind::Slow => {
                let until = Instant::now() + HANDLING;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            // The whole thread, the link's reader included, stops.
            Behind::Stalling if !self.stalled => {
                self.stalled = true;
                std::thread::sleep(STALL);
            }
            Behind::Stalling => {}
        }
        let subject = r.subject().as_str()[2..].parse().unwrap();
        let (value, _): (u32, Vec<u8>) = r.decode().unwrap();
        let _ = self.log.send((subject, value, r.conflated()));
    }
}

/// What the subscriber ended with, once it had every subject's last value.
struct Outcome {
    /// Reports it handled.
    handled: u64,
    /// Reports they stood for besides themselves.
    conflated: u64,
    /// Dropped at the publisher's link.
    dropped: u64,
    /// Replaced at the publisher's link.
    conflated_at_link: u64,
}

/// Publishes [`REPORTS`] over [`SUBJECTS`] subjects to a conflating subscriber in another
/// thread and actix System, over TCP, behind a link buffer of `outbound_limit` bytes (the
/// publisher's, or with `via_hub` a hub's between them), and checks that it ends with every
/// subject's last value, each subject in order.
async fn run(behind: Behind, padding: usize, outbound_limit: usize, via_hub: bool) -> Outcome {
    let listening = Node::new(if via_hub { "hub" } else { "publishing" });
    let exchange = Exchange::with_config(
        &listening,
        ExchangeConfig {
            outbound_limit,
            ..ExchangeConfig::default()
        },
    )
    .unwrap();
    let addr = exchange.listen("127.0.0.1:0").await.unwrap().to_string();
    // Kept to the end: the publisher's own exchange, when it has one.
    let (node, _own) = if via_hub {
        let node = Node::new("publishing");
        let own = Exchange::new(&node);
        tokio::time::timeout(WAIT, own.connect_once(&addr))
            .await
            .unwrap()
            .unwrap();
        (node, Some(own))
    } else {
        (listening.clone(), None)
    };
    node.spawn(Publisher {
        next: 0,
        started: false,
        padding,
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
            node.spawn(Subscriber {
                log,
                behind,
                stalled: false,
            });
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
    let stats = exchange.stats();
    Outcome {
        handled,
        conflated,
        dropped: stats.reports_dropped,
        conflated_at_link: stats.reports_conflated,
    }
}

#[actix::test]
async fn a_slow_conflating_subscriber_across_processes_ends_with_every_last_value() {
    // A small link buffer: a backlog left there would soon be dropped.
    let o = run(Behind::Slow, 0, 256 * 1024, false).await;
    // The subscriber handles a report in 50 µs: 40,000 would take 2 s. It kept up by
    // skipping, and was told how many it skipped.
    assert!(
        o.conflated > 0,
        "nothing conflated in {} reports",
        o.handled
    );
    assert!(
        o.handled < u64::from(REPORTS) / 2,
        "{} of {REPORTS} handled: the backlog was not conflated",
        o.handled
    );
    assert_eq!(
        o.handled + o.conflated + o.dropped,
        u64::from(REPORTS),
        "every report handled, conflated or dropped at the link"
    );
}

#[actix::test]
async fn a_conflating_subscriber_whose_process_stops_reading_loses_nothing_at_the_link() {
    // 40 MB of reports, far more than the sockets hold, behind a 64 KiB link buffer, while
    // the subscriber's process reads nothing for 1.5 s: its backlog is at the publisher's
    // link, which keeps the latest report of each subject for it rather than drop.
    for via_hub in [false, true] {
        let o = run(Behind::Stalling, 1024, 64 * 1024, via_hub).await;
        check_stalled(&o, via_hub);
    }
}

/// With a hub between them, the subscription's conflation reached the hub, whose link to the
/// subscriber conflated.
fn check_stalled(o: &Outcome, via_hub: bool) {
    assert!(
        o.conflated_at_link > 0,
        "the link conflated nothing (via a hub: {via_hub})"
    );
    assert_eq!(o.dropped, 0, "dropped at the link (via a hub: {via_hub})");
    assert_eq!(
        o.handled + o.conflated,
        u64::from(REPORTS),
        "every report handled or counted by the one that replaced it"
    );
    assert!(
        o.handled < u64::from(REPORTS) / 2,
        "{} of {REPORTS} handled: the backlog was not conflated",
        o.handled
    );
}
