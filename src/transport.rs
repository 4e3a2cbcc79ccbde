//! Layer 2, the transport: the bytes of one connection, without meaning.
//!
//! A connection ([`Connection`], plaintext or TLS: see [`Tls`]) has an [`Outbound`] side (a bounded buffer that frames are encoded into and a
//! write loop that drains it) and a [`FrameChunks`] reading side (whole frames, in chunks,
//! each length checked against a cap before anything is reserved for it). Neither knows what
//! a frame means or which failure a refusal stands for: the delivery layer above decides
//! that from the [`SendError`] it is given. The one thing the sending side knows of whom a
//! frame is for is the slow-consumer policy's: a full buffer keeps reports aside, rather
//! than drop them, for the (subscriber, pattern) pairs the delivery layer marked conflated
//! (`conflation`).
//!
//! A thread may also be asked to spin rather than sleep for a while after each read or write
//! on its connections ([`spin_when_idle`]): latency for CPU, off unless asked for (`idle`).

mod conflation;
mod connection;
mod idle;
mod outbound;
mod reader;
mod tls;

pub(crate) use connection::{Connection, Identity};
pub use idle::{spin_when_idle, SpinError};
#[cfg(test)]
pub(crate) use outbound::tests as tests_support;
pub(crate) use outbound::{gathering, Counters, FrameClass, LinkLimits, Outbound, SendError};
pub(crate) use reader::{FrameChunks, BATCH};
pub use tls::{ClientAuth, Tls, TlsError, TlsPem};
