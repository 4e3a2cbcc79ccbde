//! The inbox: one FIFO of netsvc deliveries per service, drained by the service's actor.
//!
//! Every netsvc message to a service (reports, requests, registry announcements, notices,
//! shutdown) goes through its inbox, so messages from one service to another arrive in the
//! order sent whatever their kind. The actix mailbox only carries one `Drain` wake-up when
//! the inbox goes from empty to non-empty, so a burst of deliveries costs one actor message,
//! and the service then handles the whole batch.
//!
//! Capacity and the slow-consumer policy: an inbox holds at most
//! [`NodeConfig::inbox_capacity`](crate::NodeConfig) deliveries. When it is full, a report
//! is dropped (and counted in a warning log line) — a publisher is never blocked; a request
//! fails at once with `SERVER_RESOURCE_UNAVAILABLE`; control messages (announcements, notices,
//! shutdown) are always accepted, since losing them would break the protocol and they are
//! bounded by the number of services and subscriptions.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use actix::{Message, Recipient};

use crate::binding::Binding;
use crate::event::ShutdownPhase;
use crate::names::{AgentId, SubjectPattern};
use crate::registry::RegistryEvent;
use crate::report::{PublisherNotice, Report};
use crate::request::IncomingRequest;

/// Wake-up sent to a service's actor when its inbox has work.
#[doc(hidden)]
#[derive(Debug)]
pub struct Drain;

impl Message for Drain {
    type Result = ();
}

/// What an inbox carries.
pub(crate) enum Delivery {
    Report(Report),
    Request(IncomingRequest),
    Registry { event: RegistryEvent, internal: bool },
    SubscriptionRequested { subscriber: Binding, pattern: SubjectPattern },
    SubscriptionWithdrawn { subscriber: AgentId, pattern: SubjectPattern },
    Publisher(PublisherNotice),
    Shutdown(ShutdownPhase),
    Stop,
}

/// Why a delivery was refused (the delivery is dropped, which fails a request's reply).
pub(crate) enum Refused {
    /// The service has stopped.
    Closed,
    /// The inbox is full (only reports and requests are refused for this).
    Full,
}

struct State {
    queue: VecDeque<Delivery>,
    scheduled: bool,
    closed: bool,
    dropped_reports: u64,
}

struct Shared {
    state: Mutex<State>,
    wake: Recipient<Drain>,
    capacity: usize,
}

/// A handle for pushing deliveries into one service's inbox. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Inbox(Arc<Shared>);

impl Inbox {
    pub(crate) fn new(wake: Recipient<Drain>, capacity: usize) -> Self {
        Inbox(Arc::new(Shared {
            state: Mutex::new(State { queue: VecDeque::new(), scheduled: false, closed: false, dropped_reports: 0 }),
            wake,
            capacity,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held (no user code runs under it), but
        // stay total: a poisoned lock still holds a consistent queue.
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a delivery, waking the actor if the inbox was idle.
    pub(crate) fn push(&self, delivery: Delivery) -> Result<(), Refused> {
        let wake = {
            let mut state = self.lock();
            if state.closed {
                return Err(Refused::Closed);
            }
            if state.queue.len() >= self.0.capacity && matches!(delivery, Delivery::Report(_) | Delivery::Request(_)) {
                if matches!(delivery, Delivery::Report(_)) {
                    state.dropped_reports += 1;
                    if state.dropped_reports.is_power_of_two() {
                        tracing::warn!(
                            dropped = state.dropped_reports,
                            capacity = self.0.capacity,
                            "inbox full: dropping reports for a slow subscriber"
                        );
                    }
                }
                return Err(Refused::Full);
            }
            state.queue.push_back(delivery);
            !std::mem::replace(&mut state.scheduled, true)
        };
        if wake {
            self.0.wake.do_send(Drain);
        }
        Ok(())
    }

    /// Pushes a delivery whose refusal needs no handling (the service is gone or slow).
    pub(crate) fn send(&self, delivery: Delivery) {
        let _ = self.push(delivery);
    }

    /// Moves everything queued into `batch` (which must be empty). Returns `false` and marks
    /// the inbox idle when there was nothing.
    pub(crate) fn take_batch(&self, batch: &mut VecDeque<Delivery>) -> bool {
        let mut state = self.lock();
        if state.queue.is_empty() {
            state.scheduled = false;
            return false;
        }
        std::mem::swap(&mut state.queue, batch);
        true
    }

    /// Puts back deliveries that were taken but not handled (the actor is stopping).
    pub(crate) fn put_back(&self, rest: &mut VecDeque<Delivery>) {
        let mut state = self.lock();
        while let Some(d) = rest.pop_back() {
            state.queue.push_front(d);
        }
    }

    /// Asks the actor for another drain pass later (used when a batch budget ran out).
    pub(crate) fn reschedule(&self) {
        self.0.wake.do_send(Drain);
    }

    /// Closes the inbox: queued and future deliveries are refused and dropped, which fails
    /// pending requests at once.
    pub(crate) fn close(&self) -> VecDeque<Delivery> {
        let mut state = self.lock();
        state.closed = true;
        std::mem::take(&mut state.queue)
    }
}
