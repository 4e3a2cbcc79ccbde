//! A service's requests: the one it is serving, delayed responses, calls it makes, and the
//! node's shutdown as a service asks for it.

use std::time::Duration;

use actix::{AsyncContext, SpawnHandle};

use super::{Service, ServiceContext};
use crate::failure::Failure;
use crate::names::ServiceName;
use crate::request::{
    Call, Delayed, Endpoint, IntoRequestTarget, RequestInfo, RequestTarget, Responder,
};

impl<S: Service> ServiceContext<S> {
    /// The request being served, while inside an exported method: its conversation id,
    /// method name and the requesting service's binding.
    pub fn current_request(&self) -> Option<&RequestInfo> {
        self.core.worked()?.current.as_ref().map(|(info, _)| info)
    }

    /// Suspends the response to the request being served: return the [`Delayed`] from the
    /// method and answer later with the [`Responder`] (from a spawned future, after your own
    /// downstream requests, ...). Called outside a method, or twice, the responder is inert
    /// and an error is logged.
    ///
    pub fn suspend_response<T: crate::payload::Content>(&mut self) -> (Responder<T>, Delayed<T>) {
        let origin = self.core.binding.name().to_string();
        let (conversation, reply) = match self.core.work().current.as_mut() {
            Some((info, reply)) => (info.conversation, reply.take()),
            None => (crate::ids::ConversationId(0), None),
        };
        if reply.is_none() {
            tracing::error!(service = %self.core.binding, "suspend_response called outside an exported method or twice");
        }
        let slot = std::sync::Arc::new(std::sync::Mutex::new(reply));
        let suspended = &mut self.core.work().suspended;
        suspended.retain(|s| s.lock().map(|g| g.is_some()).unwrap_or(false));
        suspended.push(slot.clone());
        Responder::new(slot, (conversation, self.core.binding.agent()), origin)
    }

    /// Runs `then` on this service when `call` completes, without blocking the mailbox.
    pub fn on_response<R: serde::de::DeserializeOwned + Send + Sync + 'static>(
        &mut self,
        call: Call<R>,
        then: impl FnOnce(&mut S, Result<R, Failure>, &mut Self) + 'static,
    ) -> SpawnHandle {
        use actix::ActorFutureExt;
        self.spawn(
            actix::fut::wrap_future::<_, S>(call)
                .map(move |outcome, service, ctx| then(service, outcome, ctx)),
        )
    }

    /// An endpoint for calling a service by name or by binding, with this service as the
    /// requester.
    pub fn endpoint(&self, target: impl IntoRequestTarget) -> Endpoint {
        let target = target.into_request_target().unwrap_or_else(|e| {
            tracing::error!(service = %self.core.binding, "endpoint: {e}");
            RequestTarget::Name(ServiceName::anonymous())
        });
        let calls = self.core.node.calls().clone();
        Endpoint::new(calls, self.core.binding.clone(), target)
    }

    /// Starts the node's shutdown (see [`Node::schedule_shutdown`](crate::Node::schedule_shutdown)).
    pub fn schedule_shutdown(&self, delay: Option<Duration>) {
        self.core.node.schedule_shutdown(delay)
    }

    /// Takes a hold on the node's shutdown.
    pub fn suspend_shutdown(&self) {
        self.core.node.suspend_shutdown()
    }

    /// Releases a hold on the node's shutdown.
    pub fn resume_shutdown(&self) {
        self.core.node.resume_shutdown()
    }
}
