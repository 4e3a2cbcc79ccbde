//! Received requests and responses: served locally, relayed as received, or answered at
//! once when they cannot go on.

use std::sync::Arc;

use bytes::Bytes;

use super::{answer_source, complete, Behind, RouteCache, Source};
use crate::delivery::answer::{send_answer, Answer, Parties, ReplyTo};
use crate::delivery::interned::Names;
use crate::delivery::link::Link;
use crate::delivery::messages::{Delivery, IncomingRequest};
use crate::delivery::{refusal, Address, Binding, Routes};
use crate::failure::{Oversized, Refusal};
use crate::ids::{AgentId, ConversationId};
use crate::names::{clip_name, MAX_NAME_LEN};
use crate::payload::Payload;
use crate::transport::{FrameClass, SendError};
use crate::wire::{ContentView, Frame, RequestView, ResponseView, WireFailure};

/// What routing a received request or response needs: the node's routes and this
/// connection's names, and the frame as received, within the chunk it came in.
pub(super) struct CallRouting<'a> {
    pub(super) net: &'a Arc<Routes>,
    pub(super) names: &'a mut Names,
    pub(super) routes: &'a mut RouteCache,
    pub(super) chunk: &'a Bytes,
    /// The whole frame, header included, for passing it on unchanged.
    pub(super) frame: &'a [u8],
    /// The link it came in on, and the agents announced over it.
    pub(super) from: &'a Link,
    pub(super) behind: &'a Behind,
    /// Requests from agents not known here, so far on this connection (for the log).
    pub(super) unknown_requesters: &'a mut u64,
}

/// Received request arguments and responses this large or larger are slices of the read
/// buffer; smaller ones are copied. A slice keeps the whole buffer (up to `READ_CHUNK`, 256 KiB,
/// or the frame's own when larger) alive while the call waits in an inbox, so only content
/// that is a good part of such a buffer may hold it; for small content a copy costs no more
/// (see BENCHMARKS.md, "Measured reasons in the code").
const SLICE_MIN: usize = 64 * 1024;

/// A payload received in `chunk` for a local service: a slice of the chunk when large (see
/// [`SLICE_MIN`]), a copy otherwise.
fn received_payload(
    names: &mut Names,
    chunk: &Bytes,
    content: ContentView<'_>,
) -> Result<Payload, String> {
    let type_name = names.type_name(content.type_name)?.clone();
    let bytes = if content.bytes.len() >= SLICE_MIN {
        chunk.slice_ref(content.bytes)
    } else {
        Bytes::copy_from_slice(content.bytes)
    };
    Ok(Payload::encoded(content.format, bytes, type_name))
}

impl CallRouting<'_> {
    /// Serves a received request locally, or relays it as received over the link to its
    /// target. Its names are checked either way, so a relay never passes on what its peers
    /// would refuse.
    pub(super) fn request(self, request: &RequestView<'_>) -> Result<Source, String> {
        let &RequestView {
            conversation,
            requester,
            target,
            method,
            args,
            reply_format,
        } = request;
        let method = method
            .to_str()
            .map_err(|e| format!("method name: {}", method.utf8_error(e)))?;
        // Only a requester behind this link may call through it.
        let from = self.from;
        let known = self.routes.lookup(self.net, requester).cloned();
        let here = known
            .as_ref()
            .and_then(Binding::link)
            .is_some_and(|l| l.same(from))
            || (known.is_some() && self.behind.contains(&requester));
        let Some(requester) = known.filter(|_| here) else {
            // Announced here but visible nowhere (refused by the peer's policy) is no forgery.
            let source = if self.behind.contains(&requester) {
                Source::Behind
            } else {
                Source::Forged(requester)
            };
            self.refuse_unknown_requester(conversation, (requester, target), method);
            return Ok(source);
        };
        // A request that cannot go on is answered from here, in the name of its target (the
        // agent the requester's node waits for; see `answer`).
        let parties = Parties {
            conversation,
            requester: requester.agent(),
            responder: target,
        };
        let refuse = |refusal: Refusal| {
            let answer = Answer::Outcome {
                outcome: Err(refusal.into()),
                format: reply_format,
            };
            send_answer(self.net, parties, Some(from), answer);
        };
        // No service exports a method with a longer name (they are Rust identifiers).
        if method.len() > MAX_NAME_LEN {
            refuse(Refusal::MethodNameTooLong { len: method.len() });
            return Ok(Source::Behind);
        }
        self.names.type_name(args.type_name)?;
        // A target the link does not carry (another process's private service, another
        // exchange group's) is as unknown to the peer as one that does not exist: its id may
        // have leaked (introspection, logs), but it is not reachable from there.
        let Some(target) = self
            .routes
            .lookup(self.net, target)
            .filter(|t| from.carries(t))
            .cloned()
        else {
            refuse(Refusal::TargetUnknown {
                target: target.to_string(),
            });
            return Ok(Source::Behind);
        };
        // Relayed: the frame goes on as received (its answer is routed back by requester agent),
        // if the requester can be seen beyond.
        if let Some(link) = target.link() {
            if let Err(refusal) = link.refuse_requester(&requester, &target) {
                refuse(refusal);
                return Ok(Source::Behind);
            }
            link.announce_first(requester.agent());
            match link
                .out()
                .send_raw(self.frame, FrameClass::Control, "Request")
            {
                Ok(()) | Err(SendError::BufferFull) => return Ok(Source::Behind),
                Err(SendError::TooLarge { max }) => {
                    let what = Oversized::RelayedRequest {
                        target: target.to_string(),
                    };
                    refuse(Refusal::TooLarge { what, max });
                    return Ok(Source::Behind);
                }
                Err(SendError::Unencodable(error)) => {
                    let what = Oversized::RelayedRequest {
                        target: target.to_string(),
                    };
                    refuse(Refusal::Unencodable { what, error });
                    return Ok(Source::Behind);
                }
                // The link has just closed: delivered below as any other, by the target's
                // current route if it has another.
                Err(SendError::Closed) => {}
            }
        }
        // Its answer goes back the way the request came: as the requester's node expects it.
        let requester = if requester.link().is_some_and(|l| l.same(from)) {
            requester
        } else {
            Binding::new(
                requester.name().clone(),
                requester.agent(),
                requester.audience().clone(),
                requester.process(),
                Address::Remote(from.clone()),
            )
        };
        let incoming = IncomingRequest {
            conversation: ConversationId(conversation),
            method: method.to_owned().into(),
            args: received_payload(self.names, self.chunk, args)?,
            sender: requester.clone(),
            reply: ReplyTo::Remote {
                requester: requester.clone(),
                conversation,
                format: reply_format,
            },
            reply_format,
        };
        if let Err(refused) = target.push(Delivery::Request(incoming)) {
            refuse(refusal(&target, refused));
        }
        Ok(Source::Behind)
    }

    /// Answers a request from an agent not known here. The hop before should not have sent it
    /// (see `Link::refuse_requester`), or the requester was withdrawn meanwhile: it is answered
    /// back on the link it came in on, the one answer not sent by the requester's route (it
    /// has none here), never dropped unanswered. Logged at powers of two: a peer sending many
    /// cannot flood the log.
    fn refuse_unknown_requester(
        self,
        conversation: u64,
        (requester, target): (AgentId, AgentId),
        method: &str,
    ) {
        *self.unknown_requesters += 1;
        if self.unknown_requesters.is_power_of_two() {
            let (method, count) = (clip_name(method), *self.unknown_requesters);
            tracing::warn!(%requester, method, count, "request from an unknown agent (not announced here); refused");
        }
        let refusal = Refusal::RequesterUnknown {
            requester: requester.to_string(),
        };
        let _ = self.from.out().send_frame(&Frame::Failure {
            conversation,
            requester,
            failure: WireFailure::from_failure(refusal.into()),
            responder: target,
        });
    }

    /// Completes a local requester's call with a received response, or relays the response
    /// as received towards its requester, if its responder is behind this link (and, for a
    /// local requester, is the call's target). A response for a requester not known here
    /// (just withdrawn) is dropped.
    pub(super) fn response(self, response: &ResponseView<'_>) -> Result<Source, String> {
        let &ResponseView {
            conversation,
            requester,
            content,
            responder,
        } = response;
        let source = answer_source(self.behind, responder);
        if source != Source::Behind {
            return Ok(source);
        }
        let parties = Parties {
            conversation,
            requester,
            responder,
        };
        match self.routes.lookup(self.net, requester).map(Binding::link) {
            Some(None) => {
                let payload = received_payload(self.names, self.chunk, content)?;
                return Ok(complete(self.net, parties, Ok(payload)));
            }
            Some(Some(_)) => {
                self.names.type_name(content.type_name)?;
                let answer = Answer::RelayedResponse(self.frame);
                send_answer(self.net, parties, None, answer);
            }
            None => {}
        }
        Ok(Source::Behind)
    }
}
