//! A service's actix task: the future that runs one service, in place of actix's own
//! `ContextFut`.
//!
//! actix's `ContextFut` drives a context's `ContextParts`; both keep their own lists of wait
//! futures and spawned futures, merged on every poll, and the service's inbox would be one
//! more spawned future polled through them. This task keeps one list of each in the
//! [`Runtime`] of the service's context, drains the inbox itself, and otherwise follows
//! `ContextFut`'s order and lifecycle exactly (actix 0.13):
//!
//! 1. on the first poll, `Actor::started`;
//! 2. wait futures (`ctx.wait`), most recent first: while one is pending nothing else runs;
//! 3. the actix mailbox (the user's own messages), while nothing waits, once it exists (it is
//!    made when the service's address is first asked for: see `service/mailbox.rs`);
//! 4. the netsvc inbox, when a push said there is work (see `Inbox::ready`);
//! 5. spawned futures (`ctx.spawn`, timers), in order; a cancelled one is dropped unpolled;
//! 6. the state: `ctx.stop()` runs `Actor::stopping` (which may keep the actor running), then
//!    `Actor::stopped`; a running service stops by itself only once it has been withdrawn
//!    and nothing else can reach it (no connected address, no futures).
//!
//! Dropped while alive (its System ended), the task stops the service and polls it once, as
//! `ContextFut` does, so its hooks run and it is withdrawn. A service's task holds only its
//! context, the service and its mailbox, if any: an idle service's cell is 256 bytes (a test
//! pins its size).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix::dev::Mailbox;
use actix::{Actor, ActorFuture, ActorState, Running, SpawnHandle};

use super::context::{drain_and_rewake, ServiceContext};
use super::mailbox;
use super::Service;

/// A future spawned on a service's context.
type Spawned<S> = Pin<Box<dyn ActorFuture<S, Output = ()>>>;

/// The actix side of a service's context: what `ContextParts` holds for an actix `Context`.
pub(crate) struct Runtime<S: Actor<Context = ServiceContext<S>>> {
    state: State,
    /// Spawned futures with their handles, in the order spawned.
    items: Vec<(SpawnHandle, Spawned<S>)>,
    /// The last handle given out.
    last: SpawnHandle,
    /// Whether the spawned futures are being polled (taken out of `items`): cancellations
    /// then wait in `rare` until the pass is over.
    polling: bool,
    /// Made on first use: most services never wait nor cancel while polling.
    rare: Option<Box<Rare<S>>>,
}

/// What a [`Runtime`] seldom needs.
struct Rare<S: Actor<Context = ServiceContext<S>>> {
    /// Wait futures, most recent last.
    wait: Vec<Spawned<S>>,
    /// Futures cancelled while the spawned futures were being polled.
    cancelled: Vec<SpawnHandle>,
}

impl<S: Actor<Context = ServiceContext<S>>> Default for Rare<S> {
    fn default() -> Self {
        Rare {
            wait: Vec::new(),
            cancelled: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Stopping,
    Stopped,
}

impl<S: Actor<Context = ServiceContext<S>>> Runtime<S> {
    pub(super) fn new() -> Self {
        Runtime {
            state: State::Running,
            items: Vec::new(),
            last: SpawnHandle::default(),
            polling: false,
            rare: None,
        }
    }

    pub(super) fn stop(&mut self) {
        if self.state == State::Running {
            self.state = State::Stopping;
        }
    }

    pub(super) fn terminate(&mut self) {
        self.state = State::Stopped;
    }

    pub(super) fn state(&self) -> ActorState {
        match self.state {
            State::Running => ActorState::Running,
            State::Stopping => ActorState::Stopping,
            State::Stopped => ActorState::Stopped,
        }
    }

    pub(super) fn spawn(&mut self, fut: impl ActorFuture<S, Output = ()> + 'static) -> SpawnHandle {
        self.last = self.last.next();
        self.items.push((self.last, Box::pin(fut)));
        self.last
    }

    pub(super) fn wait(&mut self, fut: impl ActorFuture<S, Output = ()> + 'static) {
        self.rare().wait.push(Box::pin(fut));
    }

    fn rare(&mut self) -> &mut Rare<S> {
        self.rare.get_or_insert_default()
    }

    fn waits(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| !r.wait.is_empty())
    }

    fn is_cancelled(&self, handle: SpawnHandle) -> bool {
        self.rare
            .as_ref()
            .is_some_and(|r| r.cancelled.contains(&handle))
    }

    pub(super) fn waiting(&self) -> bool {
        self.waits() || self.state != State::Running
    }

    /// Cancels a spawned future: it is dropped now, or, while the spawned futures are being
    /// polled, unpolled (or right after its poll, if it is the one being polled) and at the
    /// end of the pass at the latest. As with actix, the answer is always `true`.
    pub(super) fn cancel_future(&mut self, handle: SpawnHandle) -> bool {
        if self.polling {
            self.rare().cancelled.push(handle);
        } else {
            self.items.retain(|(h, _)| *h != handle);
        }
        true
    }
}

/// The future of one service's actix task.
pub(super) struct ServiceTask<S: Service> {
    ctx: ServiceContext<S>,
    service: S,
    /// Made when the service's address is first asked for.
    mailbox: Option<Mailbox<S>>,
    started: bool,
}

impl<S: Service> ServiceTask<S> {
    pub(super) fn new(ctx: ServiceContext<S>, service: S) -> Self {
        ServiceTask {
            ctx,
            service,
            mailbox: None,
            started: false,
        }
    }

    /// Polls the actix mailbox, adopting it first if it was made since the last poll.
    fn poll_mailbox(&mut self, task: &mut TaskContext<'_>) {
        if self.mailbox.is_none() {
            if !self.ctx.core.inbox.mailbox_made() {
                return;
            }
            self.mailbox = mailbox::adopt(&self.ctx.core.inbox);
        }
        if let Some(mailbox) = &mut self.mailbox {
            mailbox.poll(&mut self.service, &mut self.ctx, task);
        }
    }

    /// Whether anything can still reach the service: it is not withdrawn (its inbox and
    /// bindings reach it), or its address or futures are alive.
    fn alive(&self) -> bool {
        let rt = &self.ctx.rt;
        rt.state != State::Stopped
            && (!self.ctx.core.withdrawn
                || self.mailbox.as_ref().is_some_and(Mailbox::connected)
                || !rt.items.is_empty()
                || rt.waits())
    }

    fn stopped(&mut self) -> Poll<()> {
        self.ctx.rt.state = State::Stopped;
        Actor::stopped(&mut self.service, &mut self.ctx);
        Poll::Ready(())
    }

    /// Polls the spawned futures once each, in the order spawned, until one of them makes
    /// the context wait or stop. Returns whether futures were spawned meanwhile (not polled
    /// yet: the caller polls again, as `ContextFut` does after its merge).
    fn poll_items(&mut self, task: &mut TaskContext<'_>) -> bool {
        if self.ctx.rt.items.is_empty() {
            // Most services: nothing spawned.
            return false;
        }
        // Polled out of the context, so that they can spawn and cancel while polled.
        let mut items = std::mem::take(&mut self.ctx.rt.items);
        self.ctx.rt.polling = true;
        let mut i = 0;
        while i < items.len() && self.ctx.rt.state == State::Running {
            if self.ctx.rt.is_cancelled(items[i].0) {
                drop(items.remove(i));
                continue;
            }
            let poll = items[i]
                .1
                .as_mut()
                .poll(&mut self.service, &mut self.ctx, task);
            if poll.is_ready() || self.ctx.rt.is_cancelled(items[i].0) {
                drop(items.remove(i));
            } else {
                i += 1;
            }
            if self.ctx.rt.waits() {
                break;
            }
        }
        self.ctx.rt.polling = false;
        let spawned = !self.ctx.rt.items.is_empty();
        items.append(&mut self.ctx.rt.items);
        self.ctx.rt.items = items;
        if let Some(rare) = &mut self.ctx.rt.rare {
            if !rare.cancelled.is_empty() {
                let cancelled = std::mem::take(&mut rare.cancelled);
                self.ctx.rt.items.retain(|(h, _)| !cancelled.contains(h));
            }
        }
        spawned
    }
}

impl<S: Service> Future for ServiceTask<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<()> {
        // What the service publishes in this turn goes to each link under one lock.
        let this = self.get_mut();
        crate::delivery::gathering_reports(|| this.turn(task))
    }
}

impl<S: Service> ServiceTask<S> {
    /// One poll of the service's task: its wait futures, its mailbox, its inbox, its other
    /// futures, until nothing is ready.
    fn turn(&mut self, task: &mut TaskContext<'_>) -> Poll<()> {
        let this = self;
        if !this.started {
            this.started = true;
            Actor::started(&mut this.service, &mut this.ctx);
        }
        loop {
            // Wait futures, most recent first; while one is pending nothing else runs.
            while this.ctx.rt.state == State::Running {
                let Some(rare) = this.ctx.rt.rare.as_mut() else {
                    break;
                };
                let at = rare.wait.len();
                let Some(mut fut) = rare.wait.pop() else {
                    break;
                };
                let poll = fut.as_mut().poll(&mut this.service, &mut this.ctx, task);
                if poll.is_pending() {
                    // Back in its place, under any wait future it added meanwhile (which
                    // then runs before it, next time): nothing else runs until it is done.
                    let wait = &mut this.ctx.rt.rare().wait;
                    wait.insert((at - 1).min(wait.len()), fut);
                    return Poll::Pending;
                }
            }
            this.poll_mailbox(task);
            if this.ctx.rt.waits() && this.ctx.rt.state == State::Running {
                continue;
            }
            if !this.ctx.core.withdrawn
                && this.ctx.rt.state == State::Running
                && this.ctx.core.inbox.ready()
            {
                drain_and_rewake(&mut this.service, &mut this.ctx, task);
                if this.ctx.rt.waits() && this.ctx.rt.state == State::Running {
                    continue;
                }
            }
            let spawned = this.poll_items(task);
            if (spawned || this.ctx.rt.waits()) && this.ctx.rt.state == State::Running {
                continue;
            }
            match this.ctx.rt.state {
                State::Running => {
                    if !this.alive()
                        && Actor::stopping(&mut this.service, &mut this.ctx) == Running::Stop
                    {
                        return this.stopped();
                    }
                }
                State::Stopping => {
                    if Actor::stopping(&mut this.service, &mut this.ctx) == Running::Stop {
                        return this.stopped();
                    }
                    this.ctx.rt.state = State::Running;
                    continue;
                }
                State::Stopped => return this.stopped(),
            }
            return Poll::Pending;
        }
    }
}

impl<S: Service> Drop for ServiceTask<S> {
    fn drop(&mut self) {
        if self.alive() {
            self.ctx.rt.stop();
            let mut task = TaskContext::from_waker(std::task::Waker::noop());
            let _ = Pin::new(self).poll(&mut task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Drain;
    use crate::payload::Payload;
    use crate::request::Reply;
    use crate::service::{Descriptor, ServiceOptions};

    /// A service that holds nothing, as `#[derive(Service)]` would make it.
    struct Empty;
    impl Actor for Empty {
        type Context = ServiceContext<Self>;
    }
    impl actix::Handler<Drain> for Empty {
        type Result = ();
        fn handle(&mut self, _: Drain, _: &mut Self::Context) {}
    }
    impl Descriptor for Empty {
        fn options() -> ServiceOptions {
            ServiceOptions::anonymous()
        }
        fn dispatch(_: &mut Self, _: &mut ServiceContext<Self>, _: &str, _: Payload) -> Reply {
            Reply::Suspended
        }
    }
    impl Service for Empty {}

    #[test]
    fn an_idle_service_task_fits_tokios_two_line_cell() {
        // tokio aligns a task's cell to 128 bytes and adds about 120 bytes of its own to the
        // future. A future of at most 136 bytes keeps a stateless service's task at 256
        // bytes, half a bare actix actor's (BENCHMARKS.md, "Registry convergence"): the
        // working state and the wait futures are boxed for that.
        assert!(std::mem::size_of::<ServiceTask<Empty>>() <= 136);
    }
}
