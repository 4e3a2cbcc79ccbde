//! The frames: owned, borrowed for sending or as received, and their variant indexes.
//!
//! [`Frame`] variants are only ever appended, and the fields of a variant never change order:
//! the encoding follows the declaration. A borrowed form is written to the same bytes as its
//! owned one.

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ProcessId};
use crate::names::SubjectPattern;
use crate::payload::Format;

/// The protocol version carried in the handshake.
///
/// Version 3 added [`Frame::SubscriptionRequestedAs`]: a subscription that names the format
/// its reports are to come in. Version 4 appended the responder's agent to
/// [`Frame::Response`] and [`Frame::Failure`], so that a requester's node can tell an answer
/// from its call's target from one forged in another agent's name (and the side that
/// accepted a connection sends its `Hello` only once it has accepted the peer's). A peer of
/// an older version would take such frames for malformed ones, so it is refused at the
/// handshake instead. Version 5 appended [`Frame::SubscriptionConflated`], a subscription
/// whose reports every link on their way conflates when its buffer is full, and
/// [`Frame::ConflatedReport`], the latest report of a subject standing for those it replaced.
pub const PROTOCOL_VERSION: u32 = 5;

/// One message between two netsvc processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// The handshake; the first frame each side sends.
    Hello(Hello),
    /// The handshake was refused; the connection closes after this frame.
    Refused {
        /// Why, for the peer's log.
        reason: String,
    },
    /// A service is available through the sender.
    ServiceAvailable(ServiceInfo),
    /// A service is no longer available through the sender.
    ServiceWithdrawn {
        /// The agent concerned.
        agent: AgentId,
    },
    /// A service joined a group.
    GroupJoined {
        /// The agent concerned.
        agent: AgentId,
        /// The group.
        group: String,
    },
    /// A service left a group.
    GroupLeft {
        /// The agent concerned.
        agent: AgentId,
        /// The group.
        group: String,
    },
    /// A subscriber asks a publisher for reports matching a pattern.
    SubscriptionRequested {
        /// The publishing agent (the frame's destination).
        publisher: AgentId,
        /// The subscribing agent.
        subscriber: AgentId,
        /// The subscription pattern.
        pattern: String,
    },
    /// A subscriber no longer wants reports matching a pattern.
    SubscriptionWithdrawn {
        /// The publishing agent (the frame's destination).
        publisher: AgentId,
        /// The subscribing agent.
        subscriber: AgentId,
        /// The subscription pattern.
        pattern: String,
    },
    /// A published report, for the listed subscribers behind the receiving link.
    Report(ReportFrame),
    /// A report sent to one subscriber (never cached).
    TargetedReport(ReportFrame),
    /// A publisher accepted a subscriber's first subscription, or acknowledged its last
    /// withdrawal.
    PublisherNotice {
        /// The publishing agent.
        publisher: AgentId,
        /// The subscribing agent (the frame's destination).
        subscriber: AgentId,
        /// `true`: available; `false`: withdrawn.
        available: bool,
    },
    /// A request.
    Request(RequestFrame),
    /// The response to a request.
    Response {
        /// The requester's conversation id.
        conversation: u64,
        /// The requesting agent (the frame's destination).
        requester: AgentId,
        /// The response value.
        content: WirePayload,
        /// The answering agent: the request's target (since version 4).
        responder: AgentId,
    },
    /// The failure of a request.
    Failure {
        /// The requester's conversation id.
        conversation: u64,
        /// The requesting agent (the frame's destination).
        requester: AgentId,
        /// What went wrong.
        failure: WireFailure,
        /// The answering agent: the request's target, also when a hop on the way fails the
        /// request for it (it answers as the target it could not reach; since version 4).
        responder: AgentId,
    },
    /// Liveness: sent when a link has been quiet for a while.
    Heartbeat,
    /// The sender is closing the connection.
    Goodbye {
        /// Why, for the peer's log.
        reason: String,
    },
    /// The sender has a shared secret and challenges the peer to prove it has it too: a fresh
    /// random nonce (sent first, before `Hello`).
    Challenge {
        /// [`NONCE_LEN`] random bytes.
        nonce: Vec<u8>,
    },
    /// The answer to a [`Frame::Challenge`]: an HMAC of the shared secret over both nonces,
    /// the sender's side of the connection and, under TLS, the session (never the secret).
    Proof {
        /// The HMAC-SHA256 tag.
        mac: Vec<u8>,
    },
    /// A subscriber asks a publisher for reports matching a pattern, with their content in
    /// `format` (JSON for tools without Rust types). A subscription for bincode, the format
    /// of typed traffic, is sent as [`Frame::SubscriptionRequested`]; this frame with
    /// [`Format::Bincode`] means the same. [`Frame::SubscriptionWithdrawn`] ends either.
    SubscriptionRequestedAs {
        /// The publishing agent (the frame's destination).
        publisher: AgentId,
        /// The subscribing agent.
        subscriber: AgentId,
        /// The subscription pattern.
        pattern: String,
        /// The format the subscriber wants the reports' content in.
        format: Format,
    },
    /// A subscription as [`Frame::SubscriptionRequestedAs`], whose reports are conflated
    /// rather than dropped when a link's outbound buffer on their way is full: every process
    /// the frame passes on its way to the publisher (and the publisher's) notes it on the
    /// link it came over, and that link keeps aside only the latest report per publisher and
    /// subject for it while its buffer is full, sent as a [`Frame::ConflatedReport`] once
    /// there is room. Asked for again (after a plain subscription), it conflates that one.
    /// [`Frame::SubscriptionWithdrawn`] ends it.
    SubscriptionConflated {
        /// The publishing agent (the frame's destination).
        publisher: AgentId,
        /// The subscribing agent.
        subscriber: AgentId,
        /// The subscription pattern.
        pattern: String,
        /// The format the subscriber wants the reports' content in.
        format: Format,
    },
    /// A report that a link kept aside for conflated subscriptions while its buffer was full:
    /// the latest of its publisher and subject, standing for `conflated` earlier ones that
    /// were replaced on the way (on this link or before). Relayed and delivered as a
    /// [`Frame::Report`] is.
    ConflatedReport {
        /// The report, for the listed subscribers behind the receiving link.
        report: ReportFrame,
        /// How many earlier reports of the same publisher and subject it replaced.
        conflated: u64,
    },
}

/// Length of a [`Frame::Challenge`] nonce.
pub const NONCE_LEN: usize = 32;

impl Frame {
    /// A short name of the variant, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "Hello",
            Frame::Refused { .. } => "Refused",
            Frame::ServiceAvailable(_) => "ServiceAvailable",
            Frame::ServiceWithdrawn { .. } => "ServiceWithdrawn",
            Frame::GroupJoined { .. } => "GroupJoined",
            Frame::GroupLeft { .. } => "GroupLeft",
            Frame::SubscriptionRequested { .. } => "SubscriptionRequested",
            Frame::SubscriptionWithdrawn { .. } => "SubscriptionWithdrawn",
            Frame::Report(_) => "Report",
            Frame::TargetedReport(_) => "TargetedReport",
            Frame::PublisherNotice { .. } => "PublisherNotice",
            Frame::Request(_) => "Request",
            Frame::Response { .. } => "Response",
            Frame::Failure { .. } => "Failure",
            Frame::Heartbeat => "Heartbeat",
            Frame::Goodbye { .. } => "Goodbye",
            Frame::Challenge { .. } => "Challenge",
            Frame::Proof { .. } => "Proof",
            Frame::SubscriptionRequestedAs { .. } => "SubscriptionRequestedAs",
            Frame::SubscriptionConflated { .. } => "SubscriptionConflated",
            Frame::ConflatedReport { .. } => "ConflatedReport",
        }
    }
}

/// The handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The sender's process identity.
    pub process: ProcessId,
    /// The sender's node name (for logs).
    pub node: String,
    /// The exchange group of this connection; both sides must agree.
    pub group: String,
    /// Whether the sender is an exchange server (a hub that relays between its links).
    pub hub: bool,
}

/// A service as announced across a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Agent identity.
    pub agent: AgentId,
    /// Service name (empty: anonymous, tracked but never announced by the receiver).
    pub name: String,
    /// Audience, in OSE's spelling (`*`, or an exchange-group name).
    pub audience: String,
    /// The hosting process.
    pub process: ProcessId,
    /// Groups the service is in.
    pub groups: Vec<String>,
}

/// Encoded content: its format, the sender's type name, and the bytes, which relays forward
/// without decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePayload {
    /// How the bytes are encoded.
    pub format: Format,
    /// The sender's Rust type name, for error messages.
    pub type_name: String,
    /// The encoded value.
    pub bytes: bytes::Bytes,
}

/// One subscriber a report is for, and the pattern it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTarget {
    /// The subscribing agent.
    pub subscriber: AgentId,
    /// The matched pattern (`None` for a targeted report matching none).
    pub pattern: Option<String>,
}

/// A report and the subscribers it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFrame {
    /// The publishing agent.
    pub publisher: AgentId,
    /// The subject.
    pub subject: String,
    /// The content, encoded once by the publisher's process.
    pub content: WirePayload,
    /// The subscribers behind the receiving link, one entry per matching pattern.
    pub targets: Vec<ReportTarget>,
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame {
    /// The requester's conversation id.
    pub conversation: u64,
    /// The requesting agent.
    pub requester: AgentId,
    /// The target agent (the frame's destination).
    pub target: AgentId,
    /// The method name.
    pub method: String,
    /// The arguments (a tuple, or a JSON array).
    pub args: WirePayload,
    /// The format the requester wants the response in (JSON for tools without Rust types).
    pub reply_format: Format,
}

/// A failure as it crosses a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFailure {
    /// The numeric code.
    pub code: u32,
    /// Description.
    pub description: String,
    /// Origin.
    pub origin: String,
    /// Details.
    pub details: String,
}

/// Variant index of [`Frame::Report`] as bincode writes it (one byte: indexes below 251 are
/// single-byte varints).
pub(crate) const REPORT_VARIANT: u8 = 8;
/// Variant index of [`Frame::TargetedReport`].
pub(crate) const TARGETED_REPORT_VARIANT: u8 = 9;
/// Variant index of [`Frame::ConflatedReport`].
pub(crate) const CONFLATED_REPORT_VARIANT: u8 = 20;
/// Variant index of [`Frame::Request`].
pub(crate) const REQUEST_VARIANT: u8 = 11;
/// Variant index of [`Frame::Response`].
pub(crate) const RESPONSE_VARIANT: u8 = 12;
/// Variant index of [`Frame::Failure`].
pub(crate) const FAILURE_VARIANT: u8 = 13;
/// Variant indexes of [`Frame::Request`], [`Frame::Response`] and [`Frame::Failure`]: frames
/// whose sender waits for them.
pub(crate) const CALL_VARIANTS: std::ops::RangeInclusive<u8> = REQUEST_VARIANT..=FAILURE_VARIANT;

/// The name of the frame variant with index `variant`, for messages.
pub(super) fn frame_kind(variant: u8) -> &'static str {
    const KINDS: [&str; 21] = [
        "Hello",
        "Refused",
        "ServiceAvailable",
        "ServiceWithdrawn",
        "GroupJoined",
        "GroupLeft",
        "SubscriptionRequested",
        "SubscriptionWithdrawn",
        "Report",
        "TargetedReport",
        "PublisherNotice",
        "Request",
        "Response",
        "Failure",
        "Heartbeat",
        "Goodbye",
        "Challenge",
        "Proof",
        "SubscriptionRequestedAs",
        "SubscriptionConflated",
        "ConflatedReport",
    ];
    KINDS
        .get(usize::from(variant))
        .copied()
        .unwrap_or("unknown")
}

/// A string as it is on the wire, not yet checked to be UTF-8: the receiver checks each
/// distinct subject, pattern and type name once (see the bridge's name cache), not every frame
/// that repeats it, and a method name per request. Encodes exactly as a `String` (bincode
/// writes both as a length and the bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Text<'a>(pub(crate) &'a [u8]);

impl<'a> Text<'a> {
    /// The text, if it is valid UTF-8.
    pub(crate) fn to_str(self) -> Result<&'a str, std::str::Utf8Error> {
        std::str::from_utf8(self.0)
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(s.as_bytes())
    }
}

impl Text<'_> {
    /// The message for a name that is not UTF-8: its length and where it stops being valid,
    /// not the text itself (a peer may send megabytes of it, which would go into a log line).
    pub(crate) fn utf8_error(self, e: std::str::Utf8Error) -> String {
        format!(
            "invalid UTF-8 in a name of {} bytes (valid up to byte {})",
            self.0.len(),
            e.valid_up_to()
        )
    }
}

impl std::fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&String::from_utf8_lossy(self.0), f)
    }
}

#[cfg(test)]
impl Serialize for Text<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Encoded content seen without copying: it borrows from a received frame, or from a
/// [`WirePayload`] or payload being sent. Encodes exactly as a [`WirePayload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct ContentView<'a> {
    pub(crate) format: Format,
    pub(crate) type_name: Text<'a>,
    #[cfg_attr(test, serde(serialize_with = "byte_string"))]
    pub(crate) bytes: &'a [u8],
}

#[cfg(test)]
fn byte_string<S: serde::Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

#[cfg(test)]
impl WirePayload {
    pub(crate) fn view(&self) -> ContentView<'_> {
        ContentView {
            format: self.format,
            type_name: self.type_name.as_str().into(),
            bytes: &self.bytes,
        }
    }
}

/// One target of a report seen without copying. Encodes exactly as a [`ReportTarget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct TargetView<'a> {
    pub(crate) subscriber: AgentId,
    pub(crate) pattern: Option<Text<'a>>,
}

/// A received report frame decoded without copying: names and content borrow from the
/// frame's bytes, so a relay forwards it without allocating for its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportView<'a> {
    pub(crate) publisher: AgentId,
    pub(crate) subject: Text<'a>,
    pub(crate) content: ContentView<'a>,
    /// Read only where needed: a relay or a subscriber that routed the same target bytes
    /// before does not read them again.
    pub(crate) targets: TargetBytes<'a>,
    /// The frame's body up to its targets (variant index included): what every copy of the
    /// report shares, whatever subscribers it lists.
    pub(crate) head: &'a [u8],
    /// For a [`Frame::ConflatedReport`] (whose head begins with its variant index), how many
    /// reports it replaced; `None` for any other report.
    pub(crate) conflated: Option<u64>,
}

impl ReportView<'_> {
    /// The frame's variant name (`Report`, `TargetedReport` or `ConflatedReport`), for
    /// messages: read from the head, which begins with the variant index.
    pub(crate) fn kind(&self) -> &'static str {
        self.head.first().map_or("Report", |&v| frame_kind(v))
    }
}

/// A received request frame decoded without copying (see [`RequestFrame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestView<'a> {
    pub(crate) conversation: u64,
    pub(crate) requester: AgentId,
    pub(crate) target: AgentId,
    pub(crate) method: Text<'a>,
    pub(crate) args: ContentView<'a>,
    pub(crate) reply_format: Format,
}

/// A received response frame decoded without copying (see [`Frame::Response`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseView<'a> {
    pub(crate) conversation: u64,
    pub(crate) requester: AgentId,
    pub(crate) content: ContentView<'a>,
    pub(crate) responder: AgentId,
}

/// The targets of a received report, read; one (the usual number behind a link to a client)
/// is kept without allocating.
pub(crate) type TargetList<'a> = smallvec::SmallVec<[TargetView<'a>; 1]>;

/// The target list of a received report as it was received (its count, then each target),
/// not yet read: [`TargetBytes::read`] reads and checks it. A report's view stays small to
/// move, and a receiver that already routed the same bytes (a stream's next report) skips
/// reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TargetBytes<'a>(pub(crate) &'a [u8]);

/// Something that names one subscriber of a report and the pattern it matched.
pub(crate) trait TargetItem {
    fn view(&self) -> TargetView<'_>;
}

impl TargetItem for (AgentId, Option<SubjectPattern>) {
    fn view(&self) -> TargetView<'_> {
        TargetView {
            subscriber: self.0,
            pattern: self.1.as_ref().map(|p| p.as_str().into()),
        }
    }
}

impl TargetItem for TargetView<'_> {
    fn view(&self) -> TargetView<'_> {
        *self
    }
}

/// A report frame made of borrowed parts, for sending without building a [`ReportFrame`]:
/// it encodes exactly as `Frame::Report` (or `Frame::TargetedReport`) with the same fields.
/// The targets are a slice of [`TargetItem`]s or a list encoded ahead of time.
pub(crate) struct ReportRef<'a, T: ?Sized> {
    pub(crate) targeted: bool,
    pub(crate) publisher: AgentId,
    pub(crate) subject: Text<'a>,
    pub(crate) content: ContentView<'a>,
    pub(crate) targets: &'a T,
}

// The serde encoding of a borrowed report: the reference the hand-written encoder
// (`encode::encode_report`) is tested against.
#[cfg(test)]
#[derive(Serialize)]
#[serde(bound = "T: TargetItem")]
struct ReportBody<'a, T> {
    publisher: AgentId,
    subject: Text<'a>,
    content: ContentView<'a>,
    targets: Targets<'a, T>,
}

#[cfg(test)]
struct Targets<'a, T>(&'a [T]);

#[cfg(test)]
impl<T: TargetItem> Serialize for Targets<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|t| t.view()))
    }
}

#[cfg(test)]
impl<T: TargetItem> Serialize for ReportRef<'_, [T]> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (index, name) = if self.targeted {
            (TARGETED_REPORT_VARIANT, "TargetedReport")
        } else {
            (REPORT_VARIANT, "Report")
        };
        let body = ReportBody {
            publisher: self.publisher,
            subject: self.subject,
            content: self.content,
            targets: Targets(self.targets),
        };
        s.serialize_newtype_variant("Frame", u32::from(index), name, &body)
    }
}
