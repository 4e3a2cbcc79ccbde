//! The event framework: recurring schedules and the node's two-phase shutdown.
//!
//! One-shot timers and alarms and recurring actions are per service (see
//! [`ServiceContext::start_timer`](crate::ServiceContext::start_timer) and friends); they
//! all call the service's [`timer`](crate::Service::timer) hook with their name.
//!
//! Shutdown is an ordered sequence, run once per node:
//!
//! 1. [`Node::schedule_shutdown`](crate::Node::schedule_shutdown) (or the first SIGINT/SIGTERM
//!    once [`Node::monitor_signals`](crate::Node::monitor_signals) was called) sends
//!    [`ShutdownPhase::Pending`] to every local service. A second request while one is in
//!    progress is ignored.
//! 2. After the delay (default [`DEFAULT_SHUTDOWN_DELAY`](crate::DEFAULT_SHUTDOWN_DELAY)) and
//!    once every hold taken with `suspend_shutdown` was released with `resume_shutdown`,
//!    every local service receives [`ShutdownPhase::Arrived`]. Holds taken after that have no
//!    effect; shutdown cannot be cancelled, only held.
//! 3. Every local service is stopped (left-group notices, then withdrawn).
//! 4. [`Node::shutdown_complete`](crate::Node::shutdown_complete) resolves; the program's
//!    `main` returns from there. A second signal during the sequence exits the process at once.

use std::str::FromStr;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};
use chrono::{DateTime, Local};
use tokio::sync::watch;

use crate::inbox::Delivery;
use crate::registry::{LocalInboxes, Registry};
use crate::Error;

/// The phase a shutdown notice announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownPhase {
    /// Shutdown has started; finish up (holds may delay the next phase).
    Pending,
    /// Shutdown is happening now; the service will be stopped right after this notice.
    Arrived,
}

/// When a recurring action fires.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// At a fixed interval, first after one interval.
    Every(Duration),
    /// At the times a five-field cron expression names (minute, hour, day of month, month,
    /// day of week with 0 = Sunday; ranges, lists, steps, three-letter names; when both day
    /// fields are restricted either may match), in local time.
    Cron(Box<CronSchedule>),
}

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: croner::Cron,
    text: String,
}

impl Schedule {
    /// Parses a five-field cron expression.
    pub fn cron(expression: &str) -> Result<Schedule, Error> {
        let fields = expression.split_whitespace().count();
        if fields != 5 {
            return Err(Error::Cron {
                expression: expression.to_owned(),
                reason: format!("expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"),
            });
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| Error::Cron {
                expression: expression.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Schedule::Cron(Box::new(CronSchedule {
            cron,
            text: expression.to_owned(),
        })))
    }
}

impl FromStr for Schedule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Schedule::cron(s)
    }
}

impl CronSchedule {
    /// The next time strictly after `after` that the expression names.
    pub fn next_after(&self, after: DateTime<Local>) -> Option<DateTime<Local>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How long from now until the next occurrence.
    pub(crate) fn delay_from_now(&self) -> Option<Duration> {
        let now = Local::now();
        let next = self.next_after(now)?;
        (next - now).to_std().ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Idle,
    Pending { deadline_passed: bool },
    Arrived,
    Complete,
}

/// Runs the node's shutdown sequence.
pub(crate) struct ShutdownCoordinator {
    registry: actix::Addr<Registry>,
    default_delay: Duration,
    stage: Stage,
    holds: usize,
    done: watch::Sender<bool>,
}

impl ShutdownCoordinator {
    pub(crate) fn new(
        registry: actix::Addr<Registry>,
        default_delay: Duration,
    ) -> (Self, watch::Receiver<bool>) {
        let (done, rx) = watch::channel(false);
        (
            ShutdownCoordinator {
                registry,
                default_delay,
                stage: Stage::Idle,
                holds: 0,
                done,
            },
            rx,
        )
    }

    fn broadcast(&self, ctx: &mut Context<Self>, phase: ShutdownPhase) {
        let registry = self.registry.clone();
        let fut = async move { registry.send(LocalInboxes).await.unwrap_or_default() }
            .into_actor(self)
            .map(move |inboxes, act: &mut Self, ctx: &mut Context<Self>| {
                for inbox in &inboxes {
                    inbox.send(Delivery::Shutdown(phase));
                }
                if phase == ShutdownPhase::Arrived {
                    for inbox in &inboxes {
                        inbox.send(Delivery::Stop);
                    }
                    act.wait_for_services(ctx, 200);
                }
            });
        // `wait` keeps the two broadcasts in order.
        ctx.wait(fut);
    }

    /// Polls until no local service is left (bounded), then completes.
    fn wait_for_services(&mut self, ctx: &mut Context<Self>, tries_left: u32) {
        let registry = self.registry.clone();
        let fut = async move {
            registry
                .send(LocalInboxes)
                .await
                .map(|v| v.len())
                .unwrap_or(0)
        }
        .into_actor(self)
        .map(move |left, act: &mut Self, ctx: &mut Context<Self>| {
            if left == 0 || tries_left == 0 {
                if left > 0 {
                    tracing::warn!(
                        left,
                        "shutdown: services still running after 2 s; completing anyway"
                    );
                }
                act.stage = Stage::Complete;
                let _ = act.done.send(true);
                tracing::info!("shutdown complete");
            } else {
                ctx.run_later(Duration::from_millis(10), move |act, ctx| {
                    act.wait_for_services(ctx, tries_left - 1)
                });
            }
        });
        ctx.spawn(fut);
    }

    fn maybe_arrive(&mut self, ctx: &mut Context<Self>) {
        if self.stage
            == (Stage::Pending {
                deadline_passed: true,
            })
            && self.holds == 0
        {
            self.stage = Stage::Arrived;
            tracing::info!("shutdown arrived");
            self.broadcast(ctx, ShutdownPhase::Arrived);
        }
    }
}

impl Actor for ShutdownCoordinator {
    type Context = Context<Self>;
}

pub(crate) enum ShutdownControl {
    Schedule(Option<Duration>),
    Hold,
    Release,
}

impl Message for ShutdownControl {
    type Result = ();
}

impl Handler<ShutdownControl> for ShutdownCoordinator {
    type Result = ();
    fn handle(&mut self, msg: ShutdownControl, ctx: &mut Context<Self>) {
        match msg {
            ShutdownControl::Schedule(delay) => {
                if self.stage != Stage::Idle {
                    tracing::debug!("shutdown already in progress; request ignored");
                    return;
                }
                let delay = delay.filter(|d| !d.is_zero()).unwrap_or(self.default_delay);
                tracing::info!(?delay, holds = self.holds, "shutdown pending");
                self.stage = Stage::Pending {
                    deadline_passed: false,
                };
                self.broadcast(ctx, ShutdownPhase::Pending);
                ctx.run_later(delay, |act, ctx| {
                    act.stage = Stage::Pending {
                        deadline_passed: true,
                    };
                    act.maybe_arrive(ctx);
                });
            }
            ShutdownControl::Hold => {
                if matches!(self.stage, Stage::Idle | Stage::Pending { .. }) {
                    self.holds += 1;
                }
            }
            ShutdownControl::Release => {
                if matches!(self.stage, Stage::Idle | Stage::Pending { .. }) {
                    self.holds = self.holds.saturating_sub(1);
                    self.maybe_arrive(ctx);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn next(expr: &str, from: DateTime<Local>) -> DateTime<Local> {
        match Schedule::cron(expr).unwrap() {
            Schedule::Cron(c) => c.next_after(from).unwrap(),
            Schedule::Every(_) => unreachable!(),
        }
    }

    #[test]
    fn cron_steps_ranges_and_names() {
        let t = Local.with_ymd_and_hms(2026, 11, 25, 10, 7, 30).unwrap();
        assert_eq!(
            next("*/15 * * * *", t),
            Local.with_ymd_and_hms(2026, 11, 25, 10, 15, 0).unwrap()
        );
        assert_eq!(
            next("0 9-17 * * *", t),
            Local.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap()
        );
        assert_eq!(
            next("30 8 * jan mon", t),
            Local.with_ymd_and_hms(2027, 1, 4, 8, 30, 0).unwrap()
        );
        assert_eq!(
            next("0 0 1,15 * *", t),
            Local.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn cron_day_fields_match_either_when_both_restricted() {
        // 2026-11-25 is a Wednesday. "the 1st or any Sunday (0)": the next Sunday comes first.
        let t = Local.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(
            next("0 0 1 * 0", t),
            Local.with_ymd_and_hms(2026, 11, 29, 0, 0, 0).unwrap()
        );
        assert_eq!(
            next("0 0 26 * 0", t),
            Local.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn bad_cron_expressions_are_clear_errors() {
        let err = Schedule::cron("* * *").unwrap_err();
        assert!(err.to_string().contains("expected 5 fields"), "{err}");
        assert!(Schedule::cron("61 * * * *").is_err());
        assert!(Schedule::cron("* * * * * *").is_err());
        assert!("0 12 * * mon-fri".parse::<Schedule>().is_ok());
    }
}
