//! The event framework through the public API: timers, alarms, recurring actions, hook
//! panics, and the two-phase shutdown.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{probe, settle};
use netsvc::prelude::*;
use netsvc::NodeConfig;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Service)]
#[service(name = "clock")]
struct Clock {
    log: UnboundedSender<String>,
}

impl Service for Clock {
    fn timer(&mut self, name: &str, ctx: &mut ServiceContext<Self>) {
        let _ = self.log.send(format!("fired {name}"));
        if name == "panic" {
            panic!("hook panicked");
        }
        if name == "tick" {
            let _ = self
                .log
                .send(format!("tick pending={}", ctx.timer_pending("tick")));
        }
    }
    fn shutdown(&mut self, phase: ShutdownPhase, _ctx: &mut ServiceContext<Self>) {
        let _ = self.log.send(format!("shutdown {phase:?}"));
    }
    fn stopping(&mut self, _ctx: &mut ServiceContext<Self>) {
        let _ = self.log.send("stopping".into());
    }
}

#[derive(actix::Message)]
#[rtype(result = "()")]
enum T {
    Start(&'static str, u64),
    Cancel(&'static str),
    CancelAll,
    Alarm(&'static str, SystemTime),
    CancelAlarm(&'static str),
    Every(&'static str, u64),
    Cron(&'static str, &'static str),
    CancelAction(&'static str),
    CancelAllActions,
    Hold,
    Release,
}

impl actix::Handler<T> for Clock {
    type Result = ();
    fn handle(&mut self, msg: T, ctx: &mut ServiceContext<Self>) {
        match msg {
            T::Start(name, ms) => ctx.start_timer(name, Duration::from_millis(ms)),
            T::Cancel(name) => {
                let _ = self
                    .log
                    .send(format!("cancelled {name} {}", ctx.cancel_timer(name)));
            }
            T::CancelAll => ctx.cancel_all_timers(),
            T::Alarm(name, at) => ctx.set_alarm(name, at),
            T::CancelAlarm(name) => {
                ctx.cancel_alarm(name);
            }
            T::Every(name, ms) => {
                ctx.schedule_action(name, Schedule::Every(Duration::from_millis(ms)))
            }
            T::Cron(name, expr) => match Schedule::cron(expr) {
                Ok(s) => ctx.schedule_action(name, s),
                Err(e) => {
                    let _ = self.log.send(e.to_string());
                }
            },
            T::CancelAction(name) => {
                ctx.cancel_action(name);
            }
            T::CancelAllActions => ctx.cancel_all_actions(),
            T::Hold => ctx.suspend_shutdown(),
            T::Release => ctx.resume_shutdown(),
        }
    }
}

#[actix::test]
async fn timers_fire_once_reuse_replaces_and_cancel_works() {
    let node = Node::new("test");
    let (tx, mut log) = probe();
    let clock = node.spawn(Clock { log: tx }).addr();
    clock.send(T::Start("a", 30)).await.unwrap();
    clock.send(T::Start("b", 60)).await.unwrap();
    clock.send(T::Start("a", 90)).await.unwrap(); // replaces the first "a"
    clock.send(T::Start("c", 40)).await.unwrap();
    clock.send(T::Cancel("c")).await.unwrap();
    assert_eq!(log.next().await, "cancelled c true");
    let start = Instant::now();
    assert_eq!(log.next().await, "fired b");
    assert_eq!(log.next().await, "fired a");
    assert!(start.elapsed() >= Duration::from_millis(25));
    log.silent_for(Duration::from_millis(150)).await;

    clock.send(T::Start("x", 30)).await.unwrap();
    clock.send(T::Start("y", 30)).await.unwrap();
    clock.send(T::CancelAll).await.unwrap();
    clock.send(T::Cancel("x")).await.unwrap();
    assert_eq!(log.next().await, "cancelled x false");
    log.silent_for(Duration::from_millis(100)).await;

    // A one-shot timer is no longer pending inside its own hook.
    clock.send(T::Start("tick", 10)).await.unwrap();
    assert_eq!(log.take(2).await, ["fired tick", "tick pending=false"]);
}

#[actix::test]
async fn alarms_fire_at_an_absolute_time() {
    let node = Node::new("test");
    let (tx, mut log) = probe();
    let clock = node.spawn(Clock { log: tx }).addr();
    let start = Instant::now();
    clock
        .send(T::Alarm(
            "soon",
            SystemTime::now() + Duration::from_millis(80),
        ))
        .await
        .unwrap();
    clock
        .send(T::Alarm(
            "past",
            SystemTime::now() - Duration::from_secs(10),
        ))
        .await
        .unwrap();
    clock
        .send(T::Alarm(
            "never",
            SystemTime::now() + Duration::from_millis(50),
        ))
        .await
        .unwrap();
    clock.send(T::CancelAlarm("never")).await.unwrap();
    assert_eq!(log.next().await, "fired past");
    assert_eq!(log.next().await, "fired soon");
    assert!(start.elapsed() >= Duration::from_millis(75));
    log.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn recurring_actions_repeat_until_cancelled() {
    let node = Node::new("test");
    let (tx, mut log) = probe();
    let clock = node.spawn(Clock { log: tx }).addr();
    clock.send(T::Every("poll", 20)).await.unwrap();
    assert_eq!(
        log.take(3).await,
        ["fired poll", "fired poll", "fired poll"]
    );
    clock.send(T::CancelAction("poll")).await.unwrap();
    settle().await;
    while log.0.try_recv().is_ok() {}
    log.silent_for(Duration::from_millis(100)).await;

    clock.send(T::Every("p1", 20)).await.unwrap();
    clock.send(T::Cron("p2", "* * * * *")).await.unwrap();
    clock.send(T::CancelAllActions).await.unwrap();
    log.silent_for(Duration::from_millis(100)).await;

    clock.send(T::Cron("bad", "every minute")).await.unwrap();
    let line = log.next().await;
    assert!(
        line.starts_with("invalid cron expression \"every minute\""),
        "{line}"
    );
}

#[actix::test]
async fn a_panicking_hook_is_logged_and_the_service_keeps_running() {
    let node = Node::new("test");
    let (tx, mut log) = probe();
    let clock = node.spawn(Clock { log: tx }).addr();
    clock.send(T::Start("panic", 1)).await.unwrap();
    assert_eq!(log.next().await, "fired panic");
    clock.send(T::Start("after", 1)).await.unwrap();
    assert_eq!(log.next().await, "fired after");
}

#[actix::test]
async fn shutdown_runs_pending_then_arrived_then_stops_services() {
    let node = Node::with_config(NodeConfig {
        shutdown_delay: Duration::from_millis(100),
        ..NodeConfig::default()
    });
    let (tx, mut log) = probe();
    let clock = node.spawn(Clock { log: tx });
    let (tx2, mut log2) = probe();
    node.spawn(Clock { log: tx2 });
    settle().await;
    let start = Instant::now();
    node.schedule_shutdown(None);
    node.schedule_shutdown(Some(Duration::from_secs(60))); // ignored: already in progress
    assert_eq!(log.next().await, "shutdown Pending");
    assert_eq!(log2.next().await, "shutdown Pending");
    assert_eq!(log.next().await, "shutdown Arrived");
    assert!(
        start.elapsed() >= Duration::from_millis(90),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(log.next().await, "stopping");
    assert_eq!(log2.take(2).await, ["shutdown Arrived", "stopping"]);
    tokio::time::timeout(Duration::from_secs(3), node.shutdown_complete())
        .await
        .expect("shutdown completes");
    assert!(node.services().await.is_empty());
    assert!(!clock.addr().connected() || node.lookup_agent(clock.binding.agent()).await.is_none());
}

#[actix::test]
async fn shutdown_holds_delay_arrival_until_released() {
    let node = Node::with_config(NodeConfig {
        shutdown_delay: Duration::from_millis(20),
        ..NodeConfig::default()
    });
    let (tx, mut log) = probe();
    let clock = node.spawn(Clock { log: tx }).addr();
    clock.send(T::Hold).await.unwrap();
    clock.send(T::Hold).await.unwrap();
    node.schedule_shutdown(None);
    assert_eq!(log.next().await, "shutdown Pending");
    log.silent_for(Duration::from_millis(150)).await;
    clock.send(T::Release).await.unwrap();
    log.silent_for(Duration::from_millis(50)).await;
    clock.send(T::Release).await.unwrap();
    assert_eq!(log.take(2).await, ["shutdown Arrived", "stopping"]);
    tokio::time::timeout(Duration::from_secs(3), node.shutdown_complete())
        .await
        .expect("shutdown completes");
}

/// A service whose `started` hook spawns three futures: the first never completes; the
/// second cancels the first on its first poll; the third reports that it ran. Then a `wait`
/// future, which must run before any later message.
#[derive(Service)]
struct Spawner {
    log: UnboundedSender<String>,
}

/// Tells the log when dropped.
struct DropLog(UnboundedSender<String>, &'static str);

impl Drop for DropLog {
    fn drop(&mut self) {
        let _ = self.0.send(format!("dropped {}", self.1));
    }
}

impl Service for Spawner {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        use actix::{ActorFutureExt, AsyncContext};
        let guard = DropLog(self.log.clone(), "first");
        let first = ctx.spawn(actix::fut::wrap_future(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
        ctx.spawn(actix::fut::wrap_future::<_, Self>(async {}).map(
            move |(), this: &mut Self, ctx: &mut ServiceContext<Self>| {
                ctx.cancel_future(first);
                let _ = this.log.send("second cancelled the first".into());
            },
        ));
        ctx.spawn(actix::fut::wrap_future::<_, Self>(async {}).map(
            |(), this: &mut Self, _: &mut ServiceContext<Self>| {
                let _ = this.log.send("third ran".into());
            },
        ));
    }
}

#[derive(actix::Message)]
#[rtype(result = "()")]
enum W {
    /// Makes the context wait 100 ms, then logs.
    Wait,
    /// Logs.
    Ping,
}

impl actix::Handler<W> for Spawner {
    type Result = ();
    fn handle(&mut self, msg: W, ctx: &mut ServiceContext<Self>) {
        use actix::{ActorFutureExt, AsyncContext};
        match msg {
            W::Wait => ctx.wait(
                actix::fut::wrap_future::<_, Self>(tokio::time::sleep(Duration::from_millis(100)))
                    .map(|(), this: &mut Self, _: &mut ServiceContext<Self>| {
                        let _ = this.log.send("waited".into());
                    }),
            ),
            W::Ping => {
                let _ = self.log.send("ping".into());
            }
        }
    }
}

/// The next log line, within 5 s.
async fn next_line(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .ok()
        .flatten()
}

#[actix::test]
async fn spawned_futures_run_in_order_cancel_and_wait_as_with_actix() {
    let node = Node::new("spawner");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let spawned = node.spawn(Spawner { log: tx });
    let mut log = Vec::new();
    for _ in 0..3 {
        log.push(next_line(&mut rx).await.expect("a log line within 5 s"));
    }
    // The third future runs although the one before it cancelled an earlier one while polled.
    assert!(
        log.contains(&"second cancelled the first".to_owned()),
        "{log:?}"
    );
    assert!(log.contains(&"third ran".to_owned()), "{log:?}");
    assert!(log.contains(&"dropped first".to_owned()), "{log:?}");
    // A wait future holds back the messages after it.
    spawned.addr().do_send(W::Wait);
    spawned.addr().do_send(W::Ping);
    assert_eq!(next_line(&mut rx).await.as_deref(), Some("waited"));
    assert_eq!(next_line(&mut rx).await.as_deref(), Some("ping"));
}
