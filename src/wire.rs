//! The wire format between netsvc processes. Pure: no actors, no sockets.
//!
//! A connection carries length-prefixed frames (tokio-util's `LengthDelimitedCodec`: a 4-byte
//! big-endian length, then that many bytes), each a bincode 2 (serde, `standard()`
//! configuration) encoding of one [`Frame`]. Both sides start with [`Frame::Hello`]; nothing
//! else is accepted before it. The frame size is capped (default [`DEFAULT_MAX_FRAME`]) and the
//! cap is checked from the length prefix, before any buffer for the frame is allocated.
//!
//! The format is a contract: `Frame` variants are only ever appended (bincode encodes the
//! variant index), and golden-byte tests pin the encoding. [`PROTOCOL_VERSION`] changes when
//! an incompatible change is unavoidable; a peer with another version is refused.

mod codec;
mod frame;

#[doc(hidden)]
pub use codec::decode_frame_serde;
pub use codec::{CodecError, FrameCodec, DEFAULT_MAX_FRAME};
pub use frame::{
    Frame, Hello, ReportFrame, ReportTarget, RequestFrame, ServiceInfo, WireFailure, WirePayload,
    PROTOCOL_VERSION,
};

pub(crate) use codec::{
    announced_len, decode_frame, decode_incoming, encode_frame, encode_report,
    encode_report_spliced, encode_request, encode_response, frame_len, is_call, split_frame,
    EncodedTargets, Incoming, PutTargets, HEADER,
};
pub(crate) use frame::{
    ContentView, ReportRef, ReportView, RequestView, ResponseView, TargetView, Text,
};
