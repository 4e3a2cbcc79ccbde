//! Deliveries to frames: what a delivery for a service behind a link becomes on the wire.
//!
//! Every report that leaves for links goes through [`send_report`] (published or replayed
//! from the cache), its content encoded once for all links; every request through
//! [`send_request`]; every answer through [`super::answer::send_answer`]. The sender of a
//! request or subscription is announced on the link first if the link's announcements are
//! still catching up.

use super::answer::ReplyTo;
use super::binding::Binding;
use super::link::Link;
use super::messages::{Delivery, IncomingRequest, ReportData, Status};
use super::Refused;
use crate::failure::{Failure, Oversized, Refusal};
use crate::ids::AgentId;
use crate::names::{clip_name, Subject};
use crate::payload::{Content, Format};
use crate::transport::{FrameClass, SendError};
use crate::wire::{
    encode_report, encode_request, ContentView, Frame, PutTargets, ReportRef, RequestView,
};

/// Sends a delivery for `target` (a binding reached through `link`) as a frame.
pub(crate) fn deliver(link: &Link, target: &Binding, delivery: Delivery) -> Result<(), Refused> {
    let frame = match delivery {
        Delivery::Report(report) => {
            let targets = [(target.agent(), report.head.pattern.clone())];
            send_report(&report.data(), std::iter::once((link, &targets[..])));
            return Ok(());
        }
        Delivery::Request(request) => return send_request(link, target, request),
        Delivery::SubscriptionRequested {
            subscriber,
            pattern,
            format,
            conflated,
        } => {
            if subscriber.link().is_none() && !link.carries(&subscriber) {
                tracing::error!(
                    subscriber = %subscriber,
                    publisher = %target,
                    "a service with audience {:?} cannot subscribe to a service in another process",
                    subscriber.audience().as_str()
                );
                return Ok(());
            }
            link.announce_first(subscriber.agent());
            // A subscription for bincode (typed traffic) keeps the frame it always had.
            match format {
                format if conflated => Frame::SubscriptionConflated {
                    publisher: target.agent(),
                    subscriber: subscriber.agent(),
                    pattern: pattern.to_string(),
                    format,
                },
                Format::Bincode => Frame::SubscriptionRequested {
                    publisher: target.agent(),
                    subscriber: subscriber.agent(),
                    pattern: pattern.to_string(),
                },
                format => Frame::SubscriptionRequestedAs {
                    publisher: target.agent(),
                    subscriber: subscriber.agent(),
                    pattern: pattern.to_string(),
                    format,
                },
            }
        }
        Delivery::SubscriptionWithdrawn {
            subscriber,
            pattern,
        } => Frame::SubscriptionWithdrawn {
            publisher: target.agent(),
            subscriber,
            pattern: pattern.to_string(),
        },
        Delivery::Publisher(notice) => Frame::PublisherNotice {
            publisher: notice.publisher.agent(),
            subscriber: target.agent(),
            available: notice.status == Status::Available,
        },
        // Registry events, shutdown and stop are local matters.
        Delivery::Registry { .. } | Delivery::Shutdown(_) | Delivery::Stop => return Ok(()),
    };
    match link.out().send_frame(&frame) {
        Err(SendError::Closed) => Err(Refused::Closed),
        _ => Ok(()),
    }
}

/// Sends a request across `link`. A request that cannot go on is answered at once (the
/// requester cannot be seen beyond the link, or the request is too large); only a closed link
/// is returned, for the caller to try the target's next route.
pub(crate) fn send_request(
    link: &Link,
    target: &Binding,
    request: IncomingRequest,
) -> Result<(), Refused> {
    let IncomingRequest {
        conversation,
        method,
        args,
        sender,
        reply,
        reply_format,
    } = request;
    if let Err(refusal) = link.refuse_requester(&sender, target) {
        reply.fail(target.agent(), refusal.into());
        return Ok(());
    }
    // A local requester's answer will come back over this link: it waits for it from now.
    // A relayed request is answered by requester agent, so only its failures are sent here.
    let relayed = match reply {
        ReplyTo::Local(tx) => {
            let routes = link.routes();
            routes.add_pending(conversation, target.agent(), link, tx);
            None
        }
        remote => Some(remote),
    };
    link.announce_first(sender.agent());
    // The arguments are encoded straight into the frame (through a per-thread scratch
    // buffer for an in-process value).
    let format = args.wire_format();
    let out = link.out();
    let max = out.max_frame();
    let sent = args.with_bytes(format, |bytes| {
        let request = RequestView {
            conversation: conversation.get(),
            requester: sender.agent(),
            target: target.agent(),
            method: method.as_ref().into(),
            args: ContentView {
                format,
                type_name: clip_name(args.type_name()).into(),
                bytes,
            },
            reply_format,
        };
        out.queue(FrameClass::Control, "Request", |buf| {
            encode_request(&request, buf, max)
        })
    });
    let what = || match relayed {
        None => Oversized::Request {
            method: method.to_string(),
            target: target.to_string(),
        },
        Some(_) => Oversized::RelayedRequest {
            target: target.to_string(),
        },
    };
    let refusal = match sent {
        Ok(Ok(())) | Ok(Err(SendError::BufferFull)) => return Ok(()),
        Ok(Err(SendError::Closed)) => {
            if relayed.is_none() {
                link.routes().forget_pending(conversation);
            }
            return Err(Refused::Closed);
        }
        Ok(Err(SendError::TooLarge { max })) => Refusal::TooLarge { what: what(), max },
        Ok(Err(SendError::Unencodable(error))) => Refusal::Unencodable {
            what: what(),
            error,
        },
        Err(e) => Refusal::Unencodable {
            what: what(),
            error: e.to_string(),
        },
    };
    let failure = Failure::from(refusal);
    match relayed {
        None => link.routes().complete(conversation, Err(failure)),
        Some(reply) => reply.fail(target.agent(), failure),
    }
    Ok(())
}

/// Sends a report to the targets behind each link, its content encoded once for all in the
/// format it travels in ([`Payload::wire_format`](crate::payload::Payload::wire_format)):
/// the one way a report leaves this node for typed subscribers, whether it was just published
/// or replayed from the cache. A link whose buffer is full drops it (the slow-consumer
/// policy); a content that cannot be encoded is logged.
pub(crate) fn send_report<'l, T: PutTargets + ?Sized + 'l>(
    data: &ReportData,
    links: impl Iterator<Item = (&'l Link, &'l T)>,
) {
    send_report_as(data, data.content.wire_format(), links)
}

/// [`send_report`] with the content encoded in `format`, once for all links: for the
/// subscribers that asked for JSON.
pub(crate) fn send_report_as<'l, T: PutTargets + ?Sized + 'l>(
    data: &ReportData,
    format: Format,
    links: impl Iterator<Item = (&'l Link, &'l T)>,
) {
    let sent = data.content.with_bytes(format, |bytes| {
        let content = ContentView {
            format,
            type_name: clip_name(data.content.type_name()).into(),
            bytes,
        };
        send_report_frames(
            &data.publisher,
            &data.subject,
            data.targeted,
            content,
            links,
        );
    });
    if let Err(e) = sent {
        unsent(&data.publisher, &data.subject, e);
    }
}

/// [`send_report`] of an in-process value that no [`Payload`](crate::payload::Payload) was
/// made for: a report just published for remote subscribers only, which has no other use
/// for the value. Encoded in bincode, as [`Payload::wire_format`](crate::payload::Payload::wire_format)
/// would have it for any type but `serde_json::Value`.
pub(crate) fn send_value_report<'l, T: PutTargets + ?Sized + 'l>(
    publisher: &Binding,
    subject: &Subject,
    value: &dyn Content,
    links: impl Iterator<Item = (&'l Link, &'l T)>,
) {
    let sent = crate::payload::with_value_bytes(value, Format::Bincode, |bytes| {
        let content = ContentView {
            format: Format::Bincode,
            type_name: clip_name(value.type_name()).into(),
            bytes,
        };
        send_report_frames(publisher, subject, false, content, links);
    });
    if let Err(e) = sent {
        unsent(publisher, subject, e);
    }
}

fn send_report_frames<'l, T: PutTargets + ?Sized + 'l>(
    publisher: &Binding,
    subject: &Subject,
    targeted: bool,
    content: ContentView<'_>,
    links: impl Iterator<Item = (&'l Link, &'l T)>,
) {
    for (link, targets) in links {
        let _ = send_report_frame(
            link,
            targeted,
            publisher.agent(),
            subject.as_str(),
            content,
            targets,
        );
    }
}

/// A report whose content could not be encoded for remote subscribers.
fn unsent(publisher: &Binding, subject: &Subject, e: crate::payload::PayloadError) {
    // A remote subscriber can ask for a format some content has no encoding in (JSON of a
    // map with non-string keys): logged at powers of two, not per report.
    static UNSENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unsent = UNSENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if unsent.is_power_of_two() {
        tracing::error!(publisher = %publisher, subject = %subject, unsent, "report not sent to remote subscribers: {e}");
    }
}

/// One report frame for the listed subscribers behind `link`, encoded straight from
/// borrowed parts.
fn send_report_frame<T: PutTargets + ?Sized>(
    link: &Link,
    targeted: bool,
    publisher: AgentId,
    subject: &str,
    content: ContentView<'_>,
    targets: &T,
) -> Result<(), SendError> {
    let report = ReportRef {
        targeted,
        publisher,
        subject: subject.into(),
        content,
        targets,
    };
    let out = link.out();
    let max = out.max_frame();
    out.queue_report(|buf| encode_report(&report, buf, max))
}
