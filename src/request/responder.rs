//! Delayed responses: a method suspends its response and answers later through a
//! [`Responder`].

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use crate::delivery::ReplyTo;
use crate::failure::{ErrorCode, Failure};
use crate::ids::{AgentId, ConversationId};
use crate::payload::{Content, Payload};

/// The shared slot of a suspended response: held by the [`Responder`] and by the serving
/// service, so whichever acts first answers and a stopping service can fail what is left.
pub(crate) type ReplySlot = Arc<Mutex<Option<ReplyTo>>>;

pub(crate) fn take_slot(slot: &ReplySlot) -> Option<ReplyTo> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Answers a suspended (delayed) request later, from anywhere: `resolve` or `fail`.
/// Dropping it unanswered fails the request with `SERVER_RESPONSE_ABORTED`; if the serving
/// service stops first, the request fails with `SERVER_APPLICATION_ERROR`.
pub struct Responder<T> {
    slot: ReplySlot,
    conversation: ConversationId,
    /// The serving service: the agent the answer comes from.
    agent: AgentId,
    origin: String,
    _type: PhantomData<fn(T)>,
}

/// Returned by a method that suspended its response (see
/// [`ServiceContext::suspend_response`](crate::ServiceContext::suspend_response)).
pub struct Delayed<T>(PhantomData<fn() -> T>);

impl<T> std::fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Delayed")
    }
}

impl<T: Content> Responder<T> {
    pub(crate) fn new(
        slot: ReplySlot,
        (conversation, agent): (ConversationId, AgentId),
        origin: String,
    ) -> (Self, Delayed<T>) {
        (
            Responder {
                slot,
                conversation,
                agent,
                origin,
                _type: PhantomData,
            },
            Delayed(PhantomData),
        )
    }

    /// The conversation id of the suspended request.
    pub fn conversation(&self) -> ConversationId {
        self.conversation
    }

    /// Sends `value` as the response.
    pub fn resolve(self, value: T) {
        if let Some(reply) = take_slot(&self.slot) {
            reply.send(self.agent, Ok(Payload::new(value)));
        }
    }

    /// Answers with a failure instead.
    pub fn fail(self, failure: impl Into<Failure>) {
        if let Some(reply) = take_slot(&self.slot) {
            let failure = failure
                .into()
                .with_default_origin(&self.origin)
                .with_conversation(self.conversation);
            reply.fail(self.agent, failure);
        }
    }

    /// Sends `Ok` as the response and `Err` as a failure.
    pub fn complete<E: Into<Failure>>(self, outcome: Result<T, E>) {
        match outcome {
            Ok(v) => self.resolve(v),
            Err(e) => self.fail(e),
        }
    }
}

impl<T> Drop for Responder<T> {
    fn drop(&mut self) {
        if let Some(reply) = take_slot(&self.slot) {
            reply.fail(
                self.agent,
                Failure::netsvc(
                    ErrorCode::SERVER_RESPONSE_ABORTED,
                    "the delayed response was dropped without an answer",
                )
                .with_conversation(self.conversation),
            );
        }
    }
}

impl<T> std::fmt::Debug for Responder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Responder({})", self.conversation)
    }
}
