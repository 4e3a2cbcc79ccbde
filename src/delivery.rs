//! Layer 3, delivery: who gets a message and how.
//!
//! Every netsvc message to a service is a [`Delivery`] pushed through its [`Binding`]: into
//! its [`Inbox`] when it lives in this process, across the [`Link`] it was learned through
//! otherwise. The pieces:
//!
//! * `messages`: the deliveries and the message types they carry;
//! * `inbox`: one FIFO per local service, with the slow-consumer policy;
//! * `binding`: a service's identity and its route from here;
//! * `routes`: every agent this node can reach, by which route, and the calls waiting for an
//!   answer from across a link;
//! * `link`: one connection to another process as deliveries see it (peer, exchange group,
//!   the audience check);
//! * `announcer`: which services are announced on which link;
//! * `outbound`: deliveries to frames (reports, requests, notices); `answer`: the one path
//!   of every answer for a remote requester;
//! * `inbound`: frames to deliveries, with `interned` for the names received.
//!
//! This layer decides where a message goes, not what it means: when something cannot be
//! delivered it names the situation (a [`Refusal`](crate::failure::Refusal)), and the code a
//! requester sees is chosen in the table of netsvc's own failures.

mod announcer;
mod answer;
mod binding;
mod inbound;
mod inbox;
mod interned;
mod link;
mod messages;
mod outbound;
mod routes;

/// Reports published while `f` runs go to each link under one lock (see
/// `transport::gathering`): a service's task runs each poll so.
pub(crate) use crate::transport::gathering as gathering_reports;
pub(crate) use announcer::{Announcer, GroupChange};
pub(crate) use answer::{Outcome, ReplyTo};
pub(crate) use binding::Address;
pub use binding::{Binding, Location};
pub(crate) use inbound::{Behind, Inbound};
pub use inbox::Drain;
pub(crate) use inbox::{Inbox, Publishers, Refused};
pub(crate) use link::{Link, Peer, Side};
pub(crate) use messages::{Delivery, IncomingRequest, ReportData, ReportHead, WatchedBy};
pub use messages::{
    PublisherNotice, RegistryEvent, Report, ReportTypeError, ShutdownPhase, Status, Watch,
};
pub(crate) use outbound::{send_report, send_report_as, send_value_report};
pub(crate) use routes::{RouteRemoved, Routes};

use crate::failure::Refusal;

#[cfg(test)]
pub(crate) use link::tests::link as test_link;

/// The refusal a request gets when its target's inbox (or route) refused it.
pub(crate) fn refusal(target: &Binding, refused: Refused) -> Refusal {
    let target = target.to_string();
    match refused {
        Refused::Closed => Refusal::TargetGone { target },
        Refused::Full => Refusal::InboxFull { target },
    }
}
