//! Type-erased content of reports, request arguments and responses.
//!
//! In-process, a [`Payload`] holds the value itself behind an `Arc` and a receiver gets it back
//! by downcast: nothing is serialized. A payload that arrived from elsewhere holds encoded bytes
//! (bincode for typed Rust traffic, JSON for tools) together with the sender's type name, and a
//! typed receiver decodes it. Every value that can be sent is `Serialize`, so a local value can
//! always be encoded when it has to leave the process.
//!
//! Type rules: in-process, the receiver must ask for exactly the type that was sent (a
//! mismatch is a [`PayloadError::TypeMismatch`] naming both types). The exceptions serve tools
//! that have no Rust types: a `serde_json::Value` that was sent converts structurally into the
//! requested type, and any value can be received as a `serde_json::Value`.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::wire::WirePayload;

/// How encoded bytes are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// bincode 2, `standard()` configuration (varint integers, little endian).
    Bincode,
    /// JSON (serde_json), used by tools without Rust types.
    Json,
}

/// The one bincode configuration netsvc uses for payloads.
pub(crate) fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Why a payload could not be turned into the type a receiver asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// An in-process value of another type.
    #[error("type mismatch: expected {expected}, found {found}")]
    TypeMismatch {
        /// The type the receiver asked for.
        expected: &'static str,
        /// The type the sender sent.
        found: String,
    },
    /// Encoded bytes that do not decode as the requested type.
    #[error("cannot decode {found} as {expected}: {reason}")]
    Decode {
        /// The type the receiver asked for.
        expected: &'static str,
        /// The type the sender said it sent.
        found: String,
        /// The decoder's message.
        reason: String,
    },
    /// A value that could not be encoded.
    #[error("cannot encode {type_name}: {reason}")]
    Encode {
        /// The type of the value.
        type_name: String,
        /// The encoder's message.
        reason: String,
    },
}

/// A value that can travel as payload: any `Serialize + Send + Sync + 'static` type.
pub trait Content: Any + Send + Sync {
    /// The Rust type name, for error messages.
    fn type_name(&self) -> &'static str;
    /// Encodes the value.
    fn encode(&self, format: Format) -> Result<Vec<u8>, PayloadError>;
    /// Encodes the value at the end of `out` (reusing its capacity).
    fn encode_into(&self, format: Format, out: &mut Vec<u8>) -> Result<(), PayloadError> {
        out.extend_from_slice(&self.encode(format)?);
        Ok(())
    }
    /// Upcast for downcasting by reference.
    fn as_any(&self) -> &dyn Any;
    /// Upcast for downcasting by value.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: Serialize + Send + Sync + 'static> Content for T {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn encode(&self, format: Format) -> Result<Vec<u8>, PayloadError> {
        let mut out = Vec::new();
        self.encode_into(format, &mut out)?;
        Ok(out)
    }
    fn encode_into(&self, format: Format, out: &mut Vec<u8>) -> Result<(), PayloadError> {
        let err = |reason: String| PayloadError::Encode { type_name: std::any::type_name::<T>().to_owned(), reason };
        match format {
            Format::Bincode => bincode::serde::encode_into_std_write(self, out, bincode_config())
                .map(drop)
                .map_err(|e| err(e.to_string())),
            Format::Json => serde_json::to_writer(out, self).map_err(|e| err(e.to_string())),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// Content of a report, request or response: a shared in-process value or encoded bytes.
/// Cloning is cheap (reference counted).
#[derive(Clone)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    Value(Arc<dyn Content>),
    /// Boxed so that a payload stays two words wide (it travels inside every delivery).
    Encoded(Arc<Encoded>),
}

struct Encoded {
    format: Format,
    bytes: Bytes,
    type_name: Arc<str>,
}

impl Payload {
    /// Wraps an in-process value.
    pub fn new<T: Content>(value: T) -> Self {
        Payload(Repr::Value(Arc::new(value)))
    }

    /// Wraps bytes encoded in `format` by a sender whose type was `type_name`.
    pub fn encoded(format: Format, bytes: impl Into<Bytes>, type_name: impl Into<Arc<str>>) -> Self {
        Payload(Repr::Encoded(Arc::new(Encoded { format, bytes: bytes.into(), type_name: type_name.into() })))
    }

    /// The sender's type name.
    pub fn type_name(&self) -> &str {
        match &self.0 {
            Repr::Value(v) => v.type_name(),
            Repr::Encoded(e) => &e.type_name,
        }
    }

    /// Borrows an in-process value of type `T`; `None` for another type or encoded bytes.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Value(v) => v.as_any().downcast_ref(),
            Repr::Encoded(_) => None,
        }
    }

    /// Returns a `T`: a clone of an in-process value, or the decoded bytes.
    pub fn decode<T: DeserializeOwned + Clone + 'static>(&self) -> Result<T, PayloadError> {
        match &self.0 {
            Repr::Value(v) => match v.as_any().downcast_ref::<T>() {
                Some(t) => Ok(t.clone()),
                None => self.convert_json(),
            },
            Repr::Encoded(e) => decode_bytes(e.format, &e.bytes, &e.type_name),
        }
    }

    /// Turns the payload into a `T` without requiring `T: Clone`: an in-process value is moved
    /// out when this is its only reference (the usual case for request arguments and
    /// responses), otherwise it is copied through bincode.
    pub fn take<T: DeserializeOwned + Send + Sync + 'static>(self) -> Result<T, PayloadError> {
        match self.0 {
            Repr::Value(v) => {
                if !v.as_any().is::<T>() {
                    return Payload(Repr::Value(v)).convert_json();
                }
                let type_name = v.type_name();
                if Arc::strong_count(&v) > 1 {
                    let bytes = v.encode(Format::Bincode)?;
                    return decode_bytes(Format::Bincode, &bytes, type_name);
                }
                // The only reference: move the value out. Neither step can fail (type checked
                // above, no other reference exists), but stay total rather than panic.
                let mismatch =
                    || PayloadError::TypeMismatch { expected: std::any::type_name::<T>(), found: type_name.to_owned() };
                let arc = v.into_any().downcast::<T>().map_err(|_| mismatch())?;
                Arc::try_unwrap(arc).map_err(|_| mismatch())
            }
            Repr::Encoded(e) => decode_bytes(e.format, &e.bytes, &e.type_name),
        }
    }

    /// Calls `f` with the payload's bytes in `format`: bytes already in that format as they
    /// are, an in-process value encoded into a per-thread scratch buffer (no allocation once
    /// the buffer has grown).
    pub(crate) fn with_bytes<R>(&self, format: Format, f: impl FnOnce(&[u8]) -> R) -> Result<R, PayloadError> {
        thread_local! {
            static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
        }
        match &self.0 {
            Repr::Encoded(e) if e.format == format => Ok(f(&e.bytes)),
            Repr::Value(v) => {
                // Taken out while in use, so a nested call gets a fresh buffer instead of a conflict.
                let mut scratch = SCRATCH.take();
                scratch.clear();
                let result = v.encode_into(format, &mut scratch).map(|()| f(&scratch));
                if scratch.capacity() <= 64 * 1024 {
                    SCRATCH.set(scratch);
                }
                result
            }
            Repr::Encoded(_) => self.to_bytes(format).map(|b| f(&b)),
        }
    }

    /// Encodes the payload (in-process values) or returns its bytes when already in `format`.
    pub fn to_bytes(&self, format: Format) -> Result<Bytes, PayloadError> {
        match &self.0 {
            Repr::Value(v) => v.encode(format).map(Bytes::from),
            Repr::Encoded(e) if e.format == format => Ok(e.bytes.clone()),
            Repr::Encoded(e) => {
                let value: serde_json::Value = decode_bytes(e.format, &e.bytes, &e.type_name)?;
                Payload::new(value).to_bytes(format)
            }
        }
    }

    /// The format this payload travels in across processes: JSON for a `serde_json::Value` (it
    /// has no bincode decoding) and for bytes that are already JSON, bincode otherwise.
    pub fn wire_format(&self) -> Format {
        match &self.0 {
            Repr::Value(v) if v.as_any().is::<serde_json::Value>() => Format::Json,
            Repr::Value(_) => Format::Bincode,
            Repr::Encoded(e) => e.format,
        }
    }

    /// The payload as it crosses a link: encoded bytes are passed on as they are, an
    /// in-process value is encoded (once; callers share the result).
    pub(crate) fn to_wire(&self) -> Result<WirePayload, PayloadError> {
        let format = self.wire_format();
        Ok(WirePayload { format, type_name: self.type_name().to_owned(), bytes: self.to_bytes(format)? })
    }

    /// The payload as it crosses a link, in `format`: encoded bytes already in that format are
    /// passed on as they are (relays never decode), a value is encoded in it.
    pub(crate) fn to_wire_as(&self, format: Format) -> Result<WirePayload, PayloadError> {
        Ok(WirePayload { format, type_name: self.type_name().to_owned(), bytes: self.to_bytes(format)? })
    }

    /// A payload received from a link.
    pub(crate) fn from_wire(wire: WirePayload) -> Self {
        Payload::encoded(wire.format, wire.bytes, wire.type_name)
    }

    /// The payload as JSON, for tools and logs.
    pub fn to_json(&self) -> Result<serde_json::Value, PayloadError> {
        match &self.0 {
            Repr::Encoded(e) => decode_bytes(e.format, &e.bytes, &e.type_name),
            Repr::Value(v) => {
                if let Some(j) = v.as_any().downcast_ref::<serde_json::Value>() {
                    return Ok(j.clone());
                }
                let bytes = v.encode(Format::Json)?;
                decode_bytes(Format::Json, &bytes, v.type_name())
            }
        }
    }

    /// A `serde_json::Value` sent in-process converts structurally, and any value can be
    /// viewed as a `serde_json::Value` (for tools); anything else mismatches.
    fn convert_json<T: DeserializeOwned + 'static>(&self) -> Result<T, PayloadError> {
        let found = self.type_name().to_owned();
        if std::any::TypeId::of::<T>() == std::any::TypeId::of::<serde_json::Value>() {
            let json = self.to_json()?;
            return serde_json::from_value(json).map_err(|e| PayloadError::Decode {
                expected: std::any::type_name::<T>(),
                found,
                reason: e.to_string(),
            });
        }
        match self.get::<serde_json::Value>() {
            Some(json) => serde_json::from_value(json.clone()).map_err(|e| PayloadError::Decode {
                expected: std::any::type_name::<T>(),
                found,
                reason: e.to_string(),
            }),
            None => Err(PayloadError::TypeMismatch { expected: std::any::type_name::<T>(), found }),
        }
    }
}

fn decode_bytes<T: DeserializeOwned>(format: Format, bytes: &[u8], type_name: &str) -> Result<T, PayloadError> {
    let err = |reason: String| PayloadError::Decode {
        expected: std::any::type_name::<T>(),
        found: type_name.to_owned(),
        reason,
    };
    match format {
        Format::Bincode => {
            let (value, used) =
                bincode::serde::decode_from_slice(bytes, bincode_config()).map_err(|e| err(e.to_string()))?;
            if used != bytes.len() {
                return Err(err(format!("{} trailing bytes", bytes.len() - used)));
            }
            Ok(value)
        }
        Format::Json => serde_json::from_slice(bytes).map_err(|e| err(e.to_string())),
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Value(v) => write!(f, "Payload<{}>", v.type_name()),
            Repr::Encoded(e) => {
                write!(f, "Payload<{}, {:?}, {} bytes>", e.type_name, e.format, e.bytes.len())
            }
        }
    }
}
