//! Services: actix actors with a name, an inbox and a broker for reports and requests.
//!
//! `#[derive(Service)]` makes a struct an actix [`Actor`] whose context is a
//! [`ServiceContext`]; the user implements [`Service`], whose hooks all have defaults.
//! [`ServiceContext`] is a full actix context (`spawn`, `run_later`, `notify`, `address`,
//! `stop`, ... all work, and the user's own `Handler`s receive it), plus every netsvc
//! operation: groups, registry subscriptions, reports, requests, timers and shutdown.
//!
//! Lifecycle: a service is announced when it is spawned; it runs until it stops itself
//! (`ctx.stop()`), is stopped with [`Spawned::stop`](crate::Spawned::stop), shutdown arrives,
//! or the actix System ends. On stop it leaves its groups (announced first), is withdrawn,
//! requests queued for it or suspended by it fail, and publishers it subscribed to see
//! their subscriptions withdrawn.
//!
//! A panic in a hook is caught and logged with the service's name; the service keeps
//! running. A panic in an exported method fails that request with
//! `SERVER_APPLICATION_ERROR` (the panic message as details).

mod broker;
mod calls;
mod context;
mod describe;
mod groups;
mod hooks;
mod mailbox;
mod reports;
mod task;
mod timers;

use actix::{Actor, Handler};

pub use context::ServiceContext;
pub use hooks::{
    audience, group_name, service_name, Descriptor, DispatchFn, Exports, Tag, ViaExports,
    ViaNothing,
};
pub use hooks::{drain, started, stopping};
pub(crate) use mailbox::{address, closed};

use crate::delivery::{Drain, PublisherNotice, RegistryEvent, Report, ShutdownPhase};
use crate::names::{Audience, GroupName, ServiceName};
use crate::report::SubscriptionNotice;

/// A netsvc service. Implement it on a struct that derives `Service`; every hook has a
/// default that does nothing.
pub trait Service: Actor<Context = ServiceContext<Self>> + Handler<Drain> + Descriptor {
    /// Called once the service has started (it is already announced).
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        let _ = ctx;
    }

    /// Called when the service is stopping, before it is withdrawn.
    fn stopping(&mut self, ctx: &mut ServiceContext<Self>) {
        let _ = ctx;
    }

    /// A report matching one of this service's subscriptions (once per matching pattern).
    fn report(&mut self, report: Report, ctx: &mut ServiceContext<Self>) {
        let _ = (report, ctx);
    }

    /// An availability announcement from one of this service's registry subscriptions.
    fn availability(&mut self, event: RegistryEvent, ctx: &mut ServiceContext<Self>) {
        let _ = (event, ctx);
    }

    /// A subscriber subscribed to, or stopped subscribing to, this service's reports.
    fn subscription(&mut self, notice: SubscriptionNotice, ctx: &mut ServiceContext<Self>) {
        let _ = (notice, ctx);
    }

    /// A publisher accepted this service's first subscription, its last one was withdrawn, or
    /// the publisher was withdrawn.
    fn publisher(&mut self, notice: PublisherNotice, ctx: &mut ServiceContext<Self>) {
        let _ = (notice, ctx);
    }

    /// A one-shot timer, an alarm or a recurring action of this name fired.
    fn timer(&mut self, name: &str, ctx: &mut ServiceContext<Self>) {
        let _ = (name, ctx);
    }

    /// The node's shutdown reached `phase`.
    fn shutdown(&mut self, phase: ShutdownPhase, ctx: &mut ServiceContext<Self>) {
        let _ = (phase, ctx);
    }
}

/// How a service is registered: its name (empty for anonymous), audience and initial groups.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The service name; empty for an anonymous service.
    pub name: ServiceName,
    /// Who may see it.
    pub audience: Audience,
    /// Groups it joins when spawned.
    pub groups: Vec<GroupName>,
}

impl ServiceOptions {
    /// A service of this name, audience `*`, no groups.
    pub fn named(name: ServiceName) -> Self {
        ServiceOptions {
            name,
            audience: Audience::Everyone,
            groups: Vec::new(),
        }
    }

    /// An anonymous, process-local service.
    pub fn anonymous() -> Self {
        ServiceOptions {
            name: ServiceName::anonymous(),
            audience: Audience::Process,
            groups: Vec::new(),
        }
    }
}
