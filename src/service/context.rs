//! The actix context of a service: its state, the drain of its inbox, and the dispatch of
//! each delivery to the right hook or method.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Waker;

use actix::dev::{Envelope, ToEnvelope};
use actix::{
    Actor, ActorContext, ActorFuture, ActorState, Addr, AsyncContext, Handler, Message, SpawnHandle,
};

use super::broker::{LazyBroker, Notice};
use super::describe::{reserved, Reserved};
use super::hooks::Descriptor;
use super::task::{Runtime, ServiceTask};
use super::timers::Timers;
use super::Service;
use crate::delivery::{Binding, Delivery, Inbox, IncomingRequest, ReplyTo, WatchedBy};
use crate::failure::{ErrorCode, Failure};
use crate::names::GroupName;
use crate::node::Node;
use crate::payload::Payload;
use crate::registry::Withdraw;
use crate::request::{take_slot, Reply, ReplySlot, RequestInfo};

/// The actix context of a service, with every netsvc operation. See the [`Service`] docs.
pub struct ServiceContext<S: Actor<Context = ServiceContext<S>>> {
    pub(super) rt: Runtime<S>,
    pub(crate) core: ServiceState,
}

/// The non-generic state of a service.
///
/// It lives inline in the service's actix task, so it is kept small: what only a service
/// that works needs (a drained batch's buffer, timers, the request being served, suspended
/// responses) is in [`Working`], made on first use and kept. An idle service, of which a
/// node may hold a hundred thousand, pays one pointer for it.
pub(crate) struct ServiceState {
    pub(crate) node: Node,
    pub(crate) binding: Binding,
    pub(crate) inbox: Inbox,
    pub(crate) broker: LazyBroker,
    pub(super) work: Option<Box<Working>>,
    pub(super) withdrawn: bool,
}

/// The state of a service that has worked: see [`ServiceState`].
#[derive(Default)]
pub(crate) struct Working {
    /// The buffer of the last drained batch, reused by the next.
    spare: VecDeque<Delivery>,
    pub(crate) timers: Timers,
    /// The request being served, and its reply while not yet sent or suspended.
    pub(crate) current: Option<(RequestInfo, Option<ReplyTo>)>,
    pub(crate) suspended: Vec<ReplySlot>,
}

impl Working {
    /// A new working state, out of the line of [`ServiceState::work`]'s hit.
    #[cold]
    pub(super) fn boxed() -> Box<Working> {
        Box::default()
    }
}

impl ServiceState {
    /// The working state, made now if this is its first use.
    #[inline]
    pub(crate) fn work(&mut self) -> &mut Working {
        self.work.get_or_insert_with(Working::boxed)
    }

    /// The working state, if it was ever made.
    #[inline]
    pub(crate) fn worked(&self) -> Option<&Working> {
        self.work.as_deref()
    }

    /// The working state, if it was ever made.
    #[inline]
    pub(crate) fn worked_mut(&mut self) -> Option<&mut Working> {
        self.work.as_deref_mut()
    }
}

const DRAIN_BUDGET: usize = 1024;

impl<S: Service> ServiceContext<S> {
    pub(crate) fn start(
        node: Node,
        binding: Binding,
        inbox: Inbox,
        groups: Vec<GroupName>,
        service: S,
    ) {
        let ctx = ServiceContext {
            rt: Runtime::new(),
            core: ServiceState {
                node,
                binding,
                inbox,
                broker: LazyBroker::with_groups(groups),
                work: None,
                withdrawn: false,
            },
        };
        actix_rt::spawn(ServiceTask::new(ctx, service));
    }

    /// This service's binding.
    pub fn binding(&self) -> &Binding {
        &self.core.binding
    }

    /// The node this service runs on.
    pub fn node(&self) -> &Node {
        &self.core.node
    }

    /// Handles everything in the inbox, up to a budget. Returns `true` when work is left
    /// (the budget ran out and the caller should yield, then come back).
    pub(super) fn drain(&mut self, service: &mut S, waker: &Waker) -> bool {
        // An idle service finds its inbox empty without making its working state.
        let mut batch = self
            .core
            .worked_mut()
            .map(|w| std::mem::take(&mut w.spare))
            .unwrap_or_default();
        let mut handled = 0;
        // Pushes made meanwhile wake this drainer again (see `Inbox::take_batch`), so one batch
        // per poll suffices; the budget bounds how much of it is handled before yielding.
        if self.core.inbox.take_batch(&mut batch, waker) {
            while let Some(delivery) = batch.pop_front() {
                self.deliver(service, delivery);
                handled += 1;
                if self.rt.state() != ActorState::Running {
                    self.core.inbox.put_back(&mut batch);
                    self.core.work().spare = batch;
                    return false;
                }
                if handled >= DRAIN_BUDGET && !batch.is_empty() {
                    self.core.inbox.put_back(&mut batch);
                    self.core.work().spare = batch;
                    return true;
                }
            }
        }
        if batch.capacity() > 0 {
            self.core.work().spare = batch;
        }
        false
    }

    fn deliver(&mut self, service: &mut S, delivery: Delivery) {
        match delivery {
            Delivery::Report(report) => self.guarded(service, "report", |s, c| s.report(report, c)),
            Delivery::Request(request) => self.serve(service, request),
            Delivery::Registry {
                event,
                by: WatchedBy::Service,
            } => self.guarded(service, "availability", |s, c| s.availability(event, c)),
            Delivery::Registry {
                event,
                by: WatchedBy::Broker,
            } => {
                let notices = self.core.broker.on_registry_event(
                    &self.core.node,
                    &self.core.binding,
                    &self.core.inbox,
                    event,
                );
                self.notify_hooks(service, notices);
            }
            Delivery::SubscriptionRequested {
                subscriber,
                pattern,
                format,
                conflated,
            } => {
                let notices = self.core.broker.on_subscription_requested(
                    &self.core.node,
                    &self.core.binding,
                    &self.core.inbox,
                    subscriber,
                    (pattern, format, conflated),
                );
                self.notify_hooks(service, notices);
            }
            Delivery::SubscriptionWithdrawn {
                subscriber,
                pattern,
            } => {
                let notices = self.core.broker.on_subscription_withdrawn(
                    &self.core.node,
                    &self.core.binding,
                    subscriber,
                    pattern,
                );
                self.notify_hooks(service, notices);
            }
            Delivery::Publisher(notice) => {
                self.guarded(service, "publisher", |s, c| s.publisher(notice, c));
            }
            Delivery::Shutdown(phase) => {
                self.guarded(service, "shutdown", |s, c| s.shutdown(phase, c))
            }
            Delivery::Stop => self.stop(),
        }
    }

    fn notify_hooks(&mut self, service: &mut S, notices: Vec<Notice>) {
        for notice in notices {
            match notice {
                Notice::Subscription(n) => {
                    self.guarded(service, "subscription", |s, c| s.subscription(n, c))
                }
                Notice::Publisher(n) => {
                    self.guarded(service, "publisher", |s, c| s.publisher(n, c))
                }
            }
        }
    }

    /// Runs a user hook, catching and logging a panic so the service keeps running.
    pub(crate) fn guarded(
        &mut self,
        service: &mut S,
        hook: &str,
        f: impl FnOnce(&mut S, &mut Self),
    ) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(service, self))) {
            tracing::error!(service = %self.core.binding, hook, "panic in hook: {}", panic_message(&panic));
        }
    }

    fn serve(&mut self, service: &mut S, request: IncomingRequest) {
        // Answered by netsvc for every service, before its own methods (none can be named so).
        match reserved(&request.method) {
            Some(Reserved::Describe) => {
                let descriptor = self.core.describe(<S as Descriptor>::methods());
                let me = self.core.binding.agent();
                return request.reply.send(me, Ok(Payload::new(descriptor)));
            }
            Some(Reserved::Subscribers) => {
                let subscriptions = self.core.subscriptions(request.sender.link());
                let me = self.core.binding.agent();
                return request.reply.send(me, Ok(Payload::new(subscriptions)));
            }
            None => {}
        }
        let IncomingRequest {
            conversation,
            method,
            args,
            sender,
            reply,
            ..
        } = request;
        // Built where it is kept, not moved there whole.
        self.core.work().current = Some((
            RequestInfo {
                conversation,
                method: method.clone(),
                sender,
            },
            Some(reply),
        ));
        let result = catch_unwind(AssertUnwindSafe(|| {
            S::dispatch(service, self, &method, args)
        }));
        let reply = self.core.work().current.take().and_then(|(_, reply)| reply);
        let mut outcome = match result {
            Ok(Reply::Now(outcome)) => outcome,
            Ok(Reply::Suspended) => {
                if reply.is_some() {
                    // Returned `Delayed` without having suspended this request.
                    Err(Failure::netsvc(
                        ErrorCode::SERVER_APPLICATION_ERROR,
                        format!("{method} returned Delayed without suspending its response"),
                    ))
                } else {
                    return;
                }
            }
            Err(panic) => {
                let message = panic_message(&panic);
                tracing::error!(service = %self.core.binding, method = %method, "panic in method: {message}");
                Err(Failure::netsvc(
                    ErrorCode::SERVER_APPLICATION_ERROR,
                    format!("{method} panicked"),
                )
                .with_details(message))
            }
        };
        if let Err(failure) = &mut outcome {
            failure.set_default_origin(self.core.binding.name().as_str());
            failure.set_conversation(conversation);
        }
        if let Some(reply) = reply {
            reply.send(self.core.binding.agent(), outcome);
        }
    }
}

impl ServiceState {
    /// Withdraws the service, once: queued deliveries are dropped (queued requests fail as
    /// "withdrawn before response"), suspended responses fail, and the node forgets it.
    /// Runs when the actor stops, or when its context is dropped with the System.
    pub(super) fn withdraw(&mut self) {
        if self.withdrawn {
            return;
        }
        self.withdrawn = true;
        drop(self.inbox.close());
        let suspended = self.worked_mut().map(|w| std::mem::take(&mut w.suspended));
        for slot in suspended.into_iter().flatten() {
            if let Some(reply) = take_slot(&slot) {
                let failure = Failure::netsvc(
                    ErrorCode::SERVER_APPLICATION_ERROR,
                    format!("service {} stopped before responding", self.binding),
                );
                reply.fail(self.binding.agent(), failure);
            }
        }
        let _ = self.node.routes().remove(self.binding.agent(), None);
        self.node
            .announcer()
            .service_withdrawn(self.binding.agent());
        self.node.registry().do_send(Withdraw(self.binding.agent()));
    }
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

impl<S: Actor<Context = ServiceContext<S>>> Drop for ServiceContext<S> {
    fn drop(&mut self) {
        // The System ended without stopping the actor: still release what is pending.
        self.core.withdraw();
    }
}

// ---- actix context plumbing (mirrors actix's own `Context`) ----

impl<S: Actor<Context = Self>> ActorContext for ServiceContext<S> {
    fn stop(&mut self) {
        self.rt.stop()
    }
    fn terminate(&mut self) {
        self.rt.terminate()
    }
    fn state(&self) -> ActorState {
        self.rt.state()
    }
}

impl<S: Actor<Context = Self>> AsyncContext<S> for ServiceContext<S> {
    fn spawn<F>(&mut self, fut: F) -> SpawnHandle
    where
        F: ActorFuture<S, Output = ()> + 'static,
    {
        self.rt.spawn(fut)
    }
    fn wait<F>(&mut self, fut: F)
    where
        F: ActorFuture<S, Output = ()> + 'static,
    {
        self.rt.wait(fut)
    }
    fn waiting(&self) -> bool {
        self.rt.waiting()
    }
    fn cancel_future(&mut self, handle: SpawnHandle) -> bool {
        self.rt.cancel_future(handle)
    }
    /// The service's actix address; its mailbox is made on first use (see
    /// [`Spawned::addr`](crate::Spawned::addr)).
    fn address(&self) -> Addr<S> {
        super::address(&self.core.inbox)
    }
}

impl<S, M> ToEnvelope<S, M> for ServiceContext<S>
where
    S: Actor<Context = Self> + Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn pack(msg: M, tx: Option<actix::dev::OneshotSender<M::Result>>) -> Envelope<S> {
        Envelope::new(msg, tx)
    }
}

impl<S: Actor<Context = ServiceContext<S>>> std::fmt::Debug for ServiceContext<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("binding", &self.core.binding)
            .finish()
    }
}

/// Drains the inbox, and wakes the task again if the budget ran out. Kept out of line: the
/// task checks the inbox on every wake-up, mostly to find nothing to do, and that check
/// should not pay for the stack frame of the whole delivery path (see BENCHMARKS.md,
/// "Measured reasons in the code").
#[inline(never)]
pub(super) fn drain_and_rewake<S: Service>(
    service: &mut S,
    ctx: &mut ServiceContext<S>,
    task: &mut std::task::Context<'_>,
) {
    if ctx.drain(service, task.waker()) {
        // Budget spent: let the other actors of this arbiter run, then continue.
        task.waker().wake_by_ref();
    }
}
