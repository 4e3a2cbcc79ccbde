//! The gateway's own service: it publishes what `POST /publish/{subject}` brings, so that a
//! script with `curl` can feed the mesh. It exports no method; its cached reports last as
//! long as the gateway's node.

use actix::{Handler, Message};
use netsvc::prelude::*;
use netsvc::Subject;

/// The service behind `POST /publish/{subject}`.
#[derive(netsvc::Service)]
pub(crate) struct Publisher;

impl Service for Publisher {}

/// Publish one JSON report.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Publish {
    pub(crate) subject: Subject,
    pub(crate) content: serde_json::Value,
    pub(crate) lifetime: Lifetime,
}

impl Handler<Publish> for Publisher {
    type Result = ();

    fn handle(&mut self, msg: Publish, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report(msg.subject, msg.content, msg.lifetime);
    }
}
