//! The wire format between netsvc processes: frames to bytes and back, no actors or sockets.
//!
//! # Framing
//!
//! A connection carries frames, each a 4-byte big-endian length and then a body of that many
//! bytes. A body is the bincode 2 encoding (serde, `standard()` configuration) of one
//! [`Frame`]: the variant index, then the fields in declaration order, integers as varints,
//! strings and byte strings after their length. Both sides send a [`Frame::Hello`], preceded
//! by a [`Frame::Challenge`] from a side with a shared secret: the side that connected at
//! once, the side that accepted once it has accepted the peer's (from version 4; a refused
//! peer gets a [`Frame::Refused`] instead). Nothing else is accepted before the handshake
//! completes.
//!
//! - The frame size is capped (default [`DEFAULT_MAX_FRAME`]). A reader checks the cap from
//!   the length prefix, before any buffer for the body is allocated; an encoder refuses a
//!   frame over the cap and leaves nothing of it behind.
//! - A body is used whole, and every length inside it is checked against the bytes left
//!   before anything is allocated for it: a peer cannot make a reader allocate for what it
//!   merely announces. A received report's target list is read, with the same checks, when
//!   its receiver first needs it: a relay or subscriber that routed the same bytes before
//!   does not read them again.
//! - Integers are read in their shortest form only, so a decoded frame encodes back to the
//!   same bytes.
//!
//! The format is a contract: `Frame` variants are only ever appended (bincode encodes the
//! variant index), and golden-byte tests pin the encoding. [`PROTOCOL_VERSION`] changes when
//! an incompatible change is unavoidable; a peer with another version is refused.
//!
//! # Layout
//!
//! `frame` holds the frames, owned and borrowed; `encode` writes them (reports, requests and
//! responses by hand, the rest through serde), `decode` reads them (all by hand, pinned to
//! serde's reading in tests and fuzzing), and `codec` finds them in a byte stream
//! ([`FrameCodec`]). Nothing here uses the crate beyond its value types (`names`, `payload`).

mod codec;
mod decode;
mod encode;
mod frame;
#[cfg(test)]
mod tests;

pub use codec::FrameCodec;
#[doc(hidden)]
pub use decode::decode_frame_serde;
pub use frame::{
    Frame, Hello, ReportFrame, ReportTarget, RequestFrame, ServiceInfo, WireFailure, WirePayload,
    NONCE_LEN, PROTOCOL_VERSION,
};

pub(crate) use codec::{announced_len, frame_len, split_frame};
pub(crate) use decode::{decode_frame, decode_incoming, is_call, Incoming};
pub(crate) use encode::{
    encode_conflated, encode_frame, encode_report, encode_report_spliced, encode_request,
    encode_response, encode_targets, EncodedTargets, Joined, PutTargets,
};
pub(crate) use frame::{
    ContentView, ReportRef, ReportView, RequestView, ResponseView, TargetList, TargetView, Text,
};

/// Default cap on one frame's size: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The length prefix before every frame's body: 4 bytes, big-endian.
pub(crate) const HEADER: usize = 4;

/// Why bytes could not become a frame, or a frame bytes.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The length prefix announces a frame larger than the cap (checked before allocating).
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The announced or encoded length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The frame's bytes are not a valid `Frame` (garbage, truncated, unknown variant, ...).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The byte stream under the frames failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
