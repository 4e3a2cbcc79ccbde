//! What the macros call into: the traits `#[derive(Service)]` and `#[netsvc::methods]`
//! implement, the choice between them, and the service's lifecycle entry points. Reached by
//! the generated code through `netsvc::__private`, which only re-exports them.

use std::marker::PhantomData;

use actix::Running;

use super::{Service, ServiceContext, ServiceOptions};
use crate::descriptor::MethodSpec;
use crate::names::{Audience, GroupName, ServiceName};
use crate::payload::Payload;
use crate::request::{method_unavailable, Reply};

/// What `#[derive(Service)]` generates besides the actix impls.
pub trait Descriptor: actix::Actor<Context = ServiceContext<Self>> {
    /// Name, audience and groups from the attribute.
    fn options() -> ServiceOptions;
    /// Serves one request.
    fn dispatch(
        service: &mut Self,
        ctx: &mut ServiceContext<Self>,
        method: &str,
        args: Payload,
    ) -> Reply;
    /// Its exported methods, for its descriptor: none unless `#[derive(Service)]` says so.
    fn methods() -> &'static [MethodSpec] {
        &[]
    }
}

/// What `#[netsvc::methods]` generates.
pub trait Exports: Service {
    /// The exported methods, in the order written.
    const METHODS: &'static [MethodSpec];
    /// Serves one request by method name.
    fn dispatch(
        service: &mut Self,
        ctx: &mut ServiceContext<Self>,
        method: &str,
        args: Payload,
    ) -> Reply;
}

/// A service's dispatcher: serves one request by method name.
pub type DispatchFn<S> = fn(&mut S, &mut ServiceContext<S>, &str, Payload) -> Reply;

/// Autoref specialization: `(&&Tag::<S>::new()).dispatcher()` picks the exported methods
/// when `S: Exports`, else a dispatcher that answers "method unavailable"; `.methods()` picks
/// their descriptions, else none.
pub struct Tag<S>(PhantomData<S>);
impl<S> Tag<S> {
    /// The tag of `S`.
    pub fn new() -> Self {
        Tag(PhantomData)
    }
}
impl<S> Default for Tag<S> {
    fn default() -> Self {
        Self::new()
    }
}
/// Picked when `S` has exported methods.
pub trait ViaExports<S: Service> {
    /// The dispatcher.
    fn dispatcher(&self) -> DispatchFn<S>;
    /// The exported methods.
    fn methods(&self) -> &'static [MethodSpec];
}
impl<S: Exports> ViaExports<S> for &Tag<S> {
    fn dispatcher(&self) -> DispatchFn<S> {
        <S as Exports>::dispatch
    }
    fn methods(&self) -> &'static [MethodSpec] {
        S::METHODS
    }
}
/// Picked otherwise: every method is unavailable.
pub trait ViaNothing<S: Service> {
    /// The dispatcher.
    fn dispatcher(&self) -> DispatchFn<S>;
    /// No methods.
    fn methods(&self) -> &'static [MethodSpec];
}
impl<S: Service> ViaNothing<S> for Tag<S> {
    fn dispatcher(&self) -> DispatchFn<S> {
        |_, ctx, method, _| {
            Reply::failure(method_unavailable(ctx.binding().name().as_str(), method))
        }
    }
    fn methods(&self) -> &'static [MethodSpec] {
        &[]
    }
}

/// The actor started: the `started` hook (the task drains the inbox from its first poll on).
pub fn started<S: Service>(service: &mut S, ctx: &mut ServiceContext<S>) {
    ctx.guarded(service, "started", |s, c| Service::started(s, c));
}

/// The actor is stopping: the `stopping` hook, then timers are cancelled and the service
/// withdrawn.
pub fn stopping<S: Service>(service: &mut S, ctx: &mut ServiceContext<S>) -> Running {
    ctx.guarded(service, "stopping", |s, c| Service::stopping(s, c));
    if let Some(work) = ctx.core.worked_mut() {
        work.timers.cancel_everything(&mut ctx.rt);
    }
    ctx.core.withdraw();
    Running::Stop
}

/// A `Drain` message arrived: wakes the service's task to drain its inbox.
pub fn drain<S: Service>(_service: &mut S, ctx: &mut ServiceContext<S>) {
    ctx.core.inbox.wake_drainer();
}

/// A name the macro validated at compile time.
pub fn service_name(name: &'static str) -> ServiceName {
    ServiceName::new(name).unwrap_or_else(|_| ServiceName::anonymous())
}
/// A group the macro validated at compile time.
pub fn group_name(name: &'static str) -> Option<GroupName> {
    GroupName::new(name).ok()
}
/// An audience the macro validated at compile time.
pub fn audience(value: &'static str) -> Audience {
    Audience::parse(value).unwrap_or(Audience::Process)
}
