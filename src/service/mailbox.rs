//! A service's actix mailbox, made when its address is first asked for.
//!
//! netsvc's own messages reach a service through its inbox, never through actix; the actix
//! mailbox carries only the user's own messages (`Handler`s) and exists so that
//! [`Spawned::addr`](crate::Spawned::addr) and `ctx.address()` can hand out an actix
//! [`Addr`]. Most services are never sent one, and a mailbox (actix's channel: its shared
//! state, the sender's task, two queue stubs) is about 0.2 KiB, a sixth of an idle service:
//! so it is made on first use. The address and the receiver are kept in the inbox's mailbox
//! slot (reachable from any thread, under the inbox's lock); the service's task adopts the
//! receiver on its next poll and from then on polls it as actix's `ContextFut` would. The slot
//! keeps one address, so the mailbox stays connected while the service lives, as it did when
//! [`Spawned`](crate::Spawned) held one from the start; it goes when the service is withdrawn,
//! and an address asked for after that is closed (every send fails).

use actix::dev::channel::{self, AddressReceiver};
use actix::dev::Mailbox;
use actix::{Actor, Addr};

use super::ServiceContext;
use crate::delivery::Inbox;

/// What the slot holds for a service of type `S`.
struct Made<S: Actor> {
    addr: Addr<S>,
    /// Until the task adopts it.
    rx: Option<AddressReceiver<S>>,
}

/// As actix's own `Context`.
const CAPACITY: usize = 16;

/// The address of the service whose inbox this is: the one made before, or a new mailbox.
pub(crate) fn address<S: Actor<Context = ServiceContext<S>>>(inbox: &Inbox) -> Addr<S> {
    inbox.actix_mailbox(|slot, closed| {
        if let Some(made) = slot.as_ref().and_then(|b| b.downcast_ref::<Made<S>>()) {
            return (made.addr.clone(), false);
        }
        if closed {
            return (self::closed(), false);
        }
        let (tx, rx) = channel::channel::<S>(CAPACITY);
        let addr = Addr::new(tx);
        *slot = Some(Box::new(Made {
            addr: addr.clone(),
            rx: Some(rx),
        }));
        (addr, true)
    })
}

/// A closed address (the service is gone, or its binding is not local): every send fails.
pub(crate) fn closed<S: Actor<Context = ServiceContext<S>>>() -> Addr<S> {
    let (tx, _) = channel::channel::<S>(0);
    Addr::new(tx)
}

/// The mailbox made for the task to adopt, if there is one.
pub(super) fn adopt<S: Actor<Context = ServiceContext<S>>>(inbox: &Inbox) -> Option<Mailbox<S>> {
    inbox.actix_mailbox(|slot, _| {
        let made = slot.as_mut().and_then(|b| b.downcast_mut::<Made<S>>());
        (made.and_then(|m| m.rx.take()).map(Mailbox::new), false)
    })
}
