//! The node's two-phase shutdown, an ordered sequence run once per node:
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

use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};
use tokio::sync::{oneshot, watch};

use crate::delivery::{Delivery, ShutdownPhase};
use crate::registry::{LocalInboxes, Registry, WhenNoLocalServices};

/// How long shutdown waits for the services it stopped to be gone.
const STOP_GRACE: Duration = Duration::from_secs(2);

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
                    act.wait_for_services(ctx);
                }
            });
        // `wait` keeps the two broadcasts in order.
        ctx.wait(fut);
    }

    /// Waits until no local service is left (for at most [`STOP_GRACE`]), then completes.
    fn wait_for_services(&mut self, ctx: &mut Context<Self>) {
        let registry = self.registry.clone();
        let fut = async move {
            let (tx, rx) = oneshot::channel();
            registry.do_send(WhenNoLocalServices(tx));
            if tokio::time::timeout(STOP_GRACE, rx).await.is_ok() {
                return 0;
            }
            let left = registry.send(LocalInboxes).await;
            left.map_or(0, |inboxes| inboxes.len())
        }
        .into_actor(self)
        .map(|left, act: &mut Self, _: &mut Context<Self>| {
            if left > 0 {
                tracing::warn!(
                    left,
                    "shutdown: services still running after {STOP_GRACE:?}; completing anyway"
                );
            }
            act.stage = Stage::Complete;
            let _ = act.done.send(true);
            tracing::info!("shutdown complete");
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
