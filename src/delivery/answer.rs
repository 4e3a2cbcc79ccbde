//! How an answer gets back to its requester: the one path every answer for a remote
//! requester takes, whether a service of this process gave it or it is being relayed.
//!
//! An answer of a service of this process goes back on the link its request came in on,
//! which is the link the requester's node expects it on; if that link has closed, it goes
//! by the requester's *current* route, looked up when it is sent: a requester reached through
//! two links keeps being answered when the first one drops while its call is served. A
//! relayed answer goes by the requester's current route. If the link found closes on the
//! way, the route is looked up once more (the bridge of the closed link moves its agents to
//! their alternates when it closes). An answer over the frame size cap of its link is replaced by a
//! failure that says so, never dropped; an answer for a requester no longer reachable is
//! dropped (its own node fails the call when its link went down).
//!
//! Every answer names its responder ([`Parties::responder`]): the request's target. A service
//! of this process answers as itself; a hop that fails a request it cannot pass on (the
//! target is not known here, the requester cannot be seen beyond, the request is too large,
//! an answer on the way is too large) answers as the target it could not reach, which is the
//! agent the requester's node expects the answer from. A relayed answer keeps the responder it
//! came with, and the hop checked it (see `inbound`).

use tokio::sync::oneshot;

use super::binding::Binding;
use super::link::Link;
use super::routes::Routes;
use crate::failure::{ErrorCode, Failure, FailureInfo, Oversized, Refusal};
use crate::ids::AgentId;
use crate::names::clip_name;
use crate::payload::{Format, Payload};
use crate::transport::{FrameClass, Outbound, SendError};
use crate::wire::{encode_response, ContentView, Frame, ResponseView, WireFailure};

/// The outcome of a request as it travels back to its requester: three words, as a
/// payload is (a `Failure` is one boxed pointer).
pub(crate) type Outcome = Result<Payload, Failure>;

/// Where a reply goes.
pub(crate) enum ReplyTo {
    /// The requester is in this process.
    Local(oneshot::Sender<Outcome>),
    /// The requester is behind a link; the answer goes back on the link the request came in
    /// on, or by the requester's route when that link has closed.
    Remote {
        /// The requester, as reached through the link its request came in on.
        requester: Binding,
        /// The requester's conversation id.
        conversation: u64,
        /// The format the requester wants the response in.
        format: Format,
    },
}

impl ReplyTo {
    /// Sends the outcome to the requester, as the answer of `responder` (the request's
    /// target, which a remote requester's node checks; see the module docs). The responder is
    /// given here rather than kept in the reply so that a request in an inbox stays small.
    pub(crate) fn send(self, responder: AgentId, outcome: Outcome) {
        match self {
            // The requester may have given up (timeout): a late response is dropped.
            ReplyTo::Local(tx) => drop(tx.send(outcome)),
            ReplyTo::Remote {
                requester,
                conversation,
                format,
            } => {
                let Some(link) = requester.link() else {
                    return tracing::debug!(%requester, "answer for a local requester sent as remote; dropped");
                };
                let answer = Answer::Outcome { outcome, format };
                let parties = Parties {
                    conversation,
                    requester: requester.agent(),
                    responder,
                };
                send_answer(link.routes(), parties, Some(link), answer);
            }
        }
    }

    /// Answers with a failure, as `responder` (see [`ReplyTo::send`]).
    pub(crate) fn fail(self, responder: AgentId, failure: Failure) {
        self.send(responder, Err(failure))
    }
}

/// Who an answer is between, as its frame names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parties {
    /// The requester's conversation id.
    pub(crate) conversation: u64,
    /// The requesting agent: where the answer goes.
    pub(crate) requester: AgentId,
    /// The answering agent: the request's target (see the module docs).
    pub(crate) responder: AgentId,
}

/// An answer for a remote requester.
pub(crate) enum Answer<'a> {
    /// The outcome of a call a service of this process served.
    Outcome {
        /// The response or the failure.
        outcome: Result<Payload, Failure>,
        /// The format the requester wants the response in.
        format: Format,
    },
    /// A received response, passed on as received (header included).
    RelayedResponse(&'a [u8]),
    /// A received failure, passed on as received (header included), and decoded.
    RelayedFailure(&'a [u8], &'a WireFailure),
}

/// Sends an answer to its requester: on `first` (the link its request came in on) while it is
/// open, else by the requester's current route; see the module docs.
pub(crate) fn send_answer(
    routes: &Routes,
    parties: Parties,
    first: Option<&Link>,
    answer: Answer<'_>,
) {
    let requester = parties.requester;
    let mut tried: Option<Link> = None;
    if let Some(link) = first.filter(|l| !l.is_closed()) {
        match send_on(link, parties, &answer) {
            Err(SendError::Closed) => tried = Some(link.clone()),
            _ => return,
        }
    }
    loop {
        let Some(route) = routes.lookup(requester) else {
            return tracing::debug!(%requester, "answer for a requester no longer known; dropped");
        };
        let Some(link) = route.link() else {
            return tracing::debug!(%requester, "answer for a requester that is now local; dropped");
        };
        if tried.as_ref().is_some_and(|t| t.same(link)) {
            return tracing::debug!(%requester, "answer for a requester whose route closed; dropped");
        }
        match send_on(link, parties, &answer) {
            Err(SendError::Closed) => tried = Some(link.clone()),
            _ => return,
        }
    }
}

/// Queues the answer on one link, with a failure in its place if it is too large. The
/// responder is announced on the link first if the link's announcements are still catching
/// up (an answer of this node's agent to a peer that asked it straight after the handshake):
/// the hop beyond checks that it speaks for an agent announced over the link.
fn send_on(link: &Link, parties: Parties, answer: &Answer<'_>) -> Result<(), SendError> {
    let Parties {
        conversation,
        requester,
        responder,
    } = parties;
    link.announce_first(responder);
    let out = link.out();
    let max = out.max_frame();
    let refused = match answer {
        Answer::Outcome {
            outcome: Ok(content),
            format,
        } => {
            // A response is encoded straight into the frame (as a request's arguments are).
            let format = *format;
            let encoded = content.with_bytes(format, |bytes| {
                let response = ResponseView {
                    conversation,
                    requester,
                    content: ContentView {
                        format,
                        type_name: clip_name(content.type_name()).into(),
                        bytes,
                    },
                    responder,
                };
                out.queue(FrameClass::Control, "Response", |buf| {
                    encode_response(&response, buf, max)
                })
            });
            match encoded {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(SendError::TooLarge { max })) => Refusal::TooLarge {
                    what: Oversized::Response,
                    max,
                }
                .into(),
                Ok(Err(SendError::Unencodable(error))) => Refusal::Unencodable {
                    what: Oversized::Response,
                    error,
                }
                .into(),
                Err(error) => Refusal::Unencodable {
                    what: Oversized::Response,
                    error: error.to_string(),
                }
                .into(),
                Ok(Err(other)) => return Err(other),
            }
        }
        Answer::Outcome {
            outcome: Err(failure),
            ..
        } => failure.clone(),
        Answer::RelayedResponse(frame) => {
            match out.send_raw(frame, FrameClass::Control, "Response") {
                Err(SendError::TooLarge { max }) => Refusal::TooLarge {
                    what: Oversized::RelayedResponse,
                    max,
                }
                .into(),
                other => return other,
            }
        }
        Answer::RelayedFailure(frame, failure) => {
            match out.send_raw(frame, FrameClass::Control, "Failure") {
                Err(SendError::TooLarge { max }) => {
                    let failure = (*failure).clone().shortened(max);
                    return send_failure(out, parties, failure);
                }
                other => return other,
            }
        }
    };
    send_failure(out, parties, WireFailure::from_failure(refused))
}

/// Queues a failure frame; one over the frame size cap goes with its texts cut short.
fn send_failure(out: &Outbound, parties: Parties, failure: WireFailure) -> Result<(), SendError> {
    let frame = |failure| Frame::Failure {
        conversation: parties.conversation,
        requester: parties.requester,
        failure,
        responder: parties.responder,
    };
    match out.send_frame(&frame(failure.clone())) {
        Err(SendError::TooLarge { max }) => out.send_frame(&frame(failure.shortened(max))),
        other => other,
    }
}

impl WireFailure {
    /// A failure as it crosses a link.
    pub(crate) fn from_failure(f: Failure) -> Self {
        let f = f.into_info();
        WireFailure {
            code: f.code.0,
            description: f.description,
            origin: f.origin,
            details: f.details,
        }
    }

    /// The same failure with its texts cut short (at a character boundary) to fit a frame
    /// of `max` bytes: a quarter each for the description and the details, an eighth for the
    /// origin.
    pub(crate) fn shortened(mut self, max: usize) -> Self {
        fn cut(text: &mut String, len: usize) {
            if text.len() > len {
                let at = (0..=len)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                text.truncate(at);
            }
        }
        cut(&mut self.description, max / 4);
        cut(&mut self.details, max / 4);
        cut(&mut self.origin, max / 8);
        self
    }

    /// The failure a received frame carries.
    pub(crate) fn into_failure(self) -> Failure {
        Failure::from(FailureInfo {
            code: ErrorCode(self.code),
            description: self.description,
            origin: self.origin,
            details: self.details,
            conversation: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortened_failure_fits_and_cuts_at_character_boundaries() {
        let f = WireFailure {
            code: 7,
            description: "é".repeat(100),
            origin: "o".repeat(100),
            details: "ab".into(),
        };
        let short = f.shortened(101);
        assert_eq!(short.code, 7);
        assert_eq!(
            short.description,
            "é".repeat(12),
            "25 bytes allowed: 12 two-byte characters"
        );
        assert_eq!((short.origin.len(), short.details.as_str()), (12, "ab"));
    }

    #[test]
    fn an_outcome_is_three_words_as_a_payload_is() {
        assert_eq!(
            std::mem::size_of::<Outcome>(),
            3 * std::mem::size_of::<usize>()
        );
    }
}
