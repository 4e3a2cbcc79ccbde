//! Type-erased content of reports, request arguments and responses.
//!
//! In-process, a [`Payload`] holds the value itself behind an `Arc` (or, for `()`, `bool`,
//! `u32`, `i32`, `u64`, `i64` and `f64`, in the payload itself, which saves an allocation per
//! message) and a receiver gets it back by downcast: nothing is serialized. A payload that
//! arrived from elsewhere holds encoded bytes (bincode for typed Rust traffic, JSON for tools)
//! together with the sender's type name, and a typed receiver decodes it. Every value that can be sent is `Serialize`, so a local value can
//! always be encoded when it has to leave the process.
//!
//! Type rules: in-process, the receiver must ask for exactly the type that was sent (a
//! mismatch is a [`PayloadError::TypeMismatch`] naming both types). The exceptions serve tools
//! that have no Rust types: a `serde_json::Value` that was sent converts structurally into the
//! requested type, and any value can be received as a `serde_json::Value`.

use std::any::Any;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How encoded bytes are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// bincode 2, `standard()` configuration (varint integers, little endian).
    Bincode,
    /// JSON (serde_json), used by tools without Rust types.
    Json,
}

/// The one bincode configuration netsvc encodes with (payloads, and the serde reference of
/// the frame encoders): `standard()`, varint integers, little endian.
pub(crate) fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// How much a decode may claim per byte decoded: bincode counts what a decoder is about to
/// allocate or produce (a string's length, 8 bytes for a `u64` that took one byte on the wire,
/// 16 for a `u128`), so a valid encoding never claims more than 16 times its own size.
const CLAIM_PER_BYTE: usize = 16;

/// Decodes a bincode value with [`bincode_config`] plus a byte limit tied to the size of
/// `bytes`: the limit is [`CLAIM_PER_BYTE`] times the smallest of 4 KiB, 64 KiB, 1 MiB,
/// 16 MiB (the default frame cap) or 4 GiB (the largest frame) that holds `bytes`. bincode
/// checks a length a peer announces against the limit before it allocates for it, so a
/// hostile length fails with `LimitExceeded` instead of allocating (or aborting on) what was
/// merely announced; a valid encoding always fits. Every bincode decode of the crate goes
/// through here.
pub(crate) fn bincode_decode<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    use bincode::config::standard;
    use bincode::serde::decode_from_slice;
    const K: usize = 1024;
    const LARGEST: usize = (u32::MAX as usize).saturating_mul(CLAIM_PER_BYTE);
    match bytes.len() {
        n if n <= 4 * K => {
            decode_from_slice(bytes, standard().with_limit::<{ 4 * K * CLAIM_PER_BYTE }>())
        }
        n if n <= 64 * K => decode_from_slice(
            bytes,
            standard().with_limit::<{ 64 * K * CLAIM_PER_BYTE }>(),
        ),
        n if n <= K * K => {
            decode_from_slice(bytes, standard().with_limit::<{ K * K * CLAIM_PER_BYTE }>())
        }
        n if n <= 16 * K * K => decode_from_slice(
            bytes,
            standard().with_limit::<{ 16 * K * K * CLAIM_PER_BYTE }>(),
        ),
        _ => decode_from_slice(bytes, standard().with_limit::<LARGEST>()),
    }
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
        let err = |reason: String| PayloadError::Encode {
            type_name: std::any::type_name::<T>().to_owned(),
            reason,
        };
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
/// Cloning is cheap (reference counted; a value of a few small types is kept in place and
/// copied: see [`Payload::new`]).
#[derive(Clone)]
pub struct Payload(Repr);

/// Three words: every delivery carries one (a test pins the size).
#[derive(Clone)]
enum Repr {
    Value(Arc<dyn Content>),
    /// A value of one of a few small types, kept in place of a shared allocation: what
    /// methods most often answer (nothing, a flag, a count, an id, a measure), and what they
    /// are most often sent (one or two of those).
    Scalar(Scalar),
    /// Behind an `Arc` so that a payload stays small.
    Encoded(Arc<Encoded>),
    /// The bytes `start..start + len` of a buffer shared by many payloads of one format and
    /// type: the reports of one received chunk, so that receiving one costs no allocation.
    Part(Arc<Encoded>, u32, u32),
}

/// Declares [`Scalar`], an enum of the given variants, and the three ways it is used.
macro_rules! scalars {
    ($($variant:ident($ty:ty),)*) => {
        /// An in-process value kept in the payload itself (see [`Repr::Scalar`]). It behaves
        /// as the same value behind an `Arc` would: same type name, same encodings, same
        /// `get` and `take`.
        #[derive(Clone, Copy)]
        #[repr(u64)]
        enum Scalar {
            $($variant($ty),)*
        }

        impl Scalar {
            /// A copy of `value` as a scalar, when it is of a scalar type (all of them are
            /// `Copy`). The checks compare constant type ids: each instance keeps at most one
            /// branch.
            fn of<T: Any>(value: &T) -> Option<Scalar> {
                let any = value as &dyn Any;
                $(
                    if let Some(&v) = any.downcast_ref::<$ty>() {
                        return Some(Scalar::$variant(v));
                    }
                )*
                None
            }

            fn content(&self) -> &dyn Content {
                match self {
                    $(Scalar::$variant(v) => v,)*
                }
            }

            /// The value as a `T`, when it is one.
            fn take<T: Any>(self) -> Option<T> {
                match self {
                    $(Scalar::$variant(v) => cast(v),)*
                }
            }
        }
    };
}

// What methods most often answer (nothing, a flag, a count, an id, a measure), and the
// argument tuples of methods taking one or two of them (a typed client sends its arguments
// as a tuple: `add(a, b)` sends `(a, b)`). The largest is two words: a payload stays three.
scalars! {
    Unit(()),
    Bool(bool),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F64(f64),
    // The arguments of a method taking one scalar,
    OneBool((bool,)),
    OneU32((u32,)),
    OneI32((i32,)),
    OneU64((u64,)),
    OneI64((i64,)),
    OneF64((f64,)),
    // or two.
    BoolBool((bool, bool)),
    BoolU32((bool, u32)),
    BoolI32((bool, i32)),
    BoolU64((bool, u64)),
    BoolI64((bool, i64)),
    BoolF64((bool, f64)),
    U32Bool((u32, bool)),
    U32U32((u32, u32)),
    U32I32((u32, i32)),
    U32U64((u32, u64)),
    U32I64((u32, i64)),
    U32F64((u32, f64)),
    I32Bool((i32, bool)),
    I32U32((i32, u32)),
    I32I32((i32, i32)),
    I32U64((i32, u64)),
    I32I64((i32, i64)),
    I32F64((i32, f64)),
    U64Bool((u64, bool)),
    U64U32((u64, u32)),
    U64I32((u64, i32)),
    U64U64((u64, u64)),
    U64I64((u64, i64)),
    U64F64((u64, f64)),
    I64Bool((i64, bool)),
    I64U32((i64, u32)),
    I64I32((i64, i32)),
    I64U64((i64, u64)),
    I64I64((i64, i64)),
    I64F64((i64, f64)),
    F64Bool((f64, bool)),
    F64U32((f64, u32)),
    F64I32((f64, i32)),
    F64U64((f64, u64)),
    F64I64((f64, i64)),
    F64F64((f64, f64)),
}

/// `v` as a `T`, when `V` is `T` (a move, no allocation); `None` otherwise.
fn cast<V: Any, T: Any>(v: V) -> Option<T> {
    let mut slot = Some(v);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
}

/// A payload seen as either an in-process value or encoded bytes: what they are, and where
/// they are in `Encoded::bytes`.
enum View<'a> {
    Value(&'a dyn Content),
    Encoded(&'a Encoded, Range<usize>),
}

impl Repr {
    fn view(&self) -> View<'_> {
        match self {
            Repr::Value(v) => View::Value(&**v),
            Repr::Scalar(v) => View::Value(v.content()),
            Repr::Encoded(e) => View::Encoded(e, 0..e.bytes.len()),
            Repr::Part(e, start, len) => {
                View::Encoded(e, *start as usize..*start as usize + *len as usize)
            }
        }
    }
}

struct Encoded {
    format: Format,
    bytes: Bytes,
    type_name: Arc<str>,
}

impl Payload {
    /// Wraps an in-process value. A value of a few small types (`()`, `bool`, `u32`, `i32`,
    /// `u64`, `i64`, `f64`, and tuples of one or two of them but `()`, the arguments a typed
    /// client sends to a method taking one or two) is kept in the payload itself, without an
    /// allocation; it behaves exactly as one behind the shared pointer would.
    #[inline]
    pub fn new<T: Content>(value: T) -> Self {
        match Scalar::of(&value) {
            Some(scalar) => Payload(Repr::Scalar(scalar)),
            None => Payload(Repr::Value(Arc::new(value))),
        }
    }

    /// Wraps bytes encoded in `format` by a sender whose type was `type_name`.
    pub fn encoded(
        format: Format,
        bytes: impl Into<Bytes>,
        type_name: impl Into<Arc<str>>,
    ) -> Self {
        Payload(Repr::Encoded(Arc::new(Encoded {
            format,
            bytes: bytes.into(),
            type_name: type_name.into(),
        })))
    }

    /// The sender's type name.
    pub fn type_name(&self) -> &str {
        match &self.0 {
            Repr::Value(v) => v.type_name(),
            Repr::Scalar(v) => v.content().type_name(),
            Repr::Encoded(e) | Repr::Part(e, ..) => &e.type_name,
        }
    }

    /// A copy of the value when it is a scalar of type `T` (see [`Repr::Scalar`]): the
    /// usual arguments and answers of a typed call in this process, taken without the
    /// dynamic type checks of [`Payload::get`] or the error type of [`Payload::take`].
    #[inline]
    pub(crate) fn scalar<T: Any>(&self) -> Option<T> {
        match &self.0 {
            Repr::Scalar(v) => v.take::<T>(),
            _ => None,
        }
    }

    /// Borrows an in-process value of type `T`; `None` for another type or encoded bytes.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Value(v) => v.as_any().downcast_ref(),
            Repr::Scalar(v) => v.content().as_any().downcast_ref(),
            Repr::Encoded(_) | Repr::Part(..) => None,
        }
    }

    /// Returns a `T`: a clone of an in-process value, or the decoded bytes.
    ///
    /// Received bytes asked for as [`Bytes`] are not copied: the result shares the buffer
    /// they arrived in (a report's, a chunk read from a connection). Asked for as a
    /// `Vec<u8>`, they are copied once, without the zeroed buffer serde's byte path fills
    /// first. Either way the result is what serde would decode (any sender's byte string:
    /// `Bytes`, `Vec<u8>`, a `serde_bytes` newtype), and anything serde would refuse goes to
    /// serde for its error.
    pub fn decode<T: DeserializeOwned + Clone + 'static>(&self) -> Result<T, PayloadError> {
        if let Some(t) = self.get::<T>() {
            return Ok(t.clone());
        }
        if let Some(t) = self.byte_string::<T>() {
            return Ok(t);
        }
        self.decode_other()
    }

    /// A `T` that is [`Bytes`] or `Vec<u8>` read straight from bincode bytes that hold
    /// exactly one byte string (its length, then its bytes); `None` for any other type,
    /// format or shape, left to serde.
    fn byte_string<T: 'static>(&self) -> Option<T> {
        use std::any::TypeId;
        let is_bytes = TypeId::of::<T>() == TypeId::of::<Bytes>();
        if !is_bytes && TypeId::of::<T>() != TypeId::of::<Vec<u8>>() {
            return None;
        }
        let View::Encoded(e, range) = self.0.view() else {
            return None;
        };
        if e.format != Format::Bincode {
            return None;
        }
        let skip = byte_string_start(&e.bytes[range.clone()])?;
        let range = range.start + skip..range.end;
        if is_bytes {
            cast(e.bytes.slice(range))
        } else {
            cast(e.bytes[range].to_vec())
        }
    }

    /// Decodes encoded bytes; an in-process value (not a `T`) converts through JSON if it can.
    fn decode_other<T: DeserializeOwned + 'static>(&self) -> Result<T, PayloadError> {
        match self.0.view() {
            View::Encoded(e, range) => decode_bytes(e.format, &e.bytes[range], &e.type_name),
            View::Value(_) => self.convert_json(),
        }
    }

    /// Turns the payload into a `T` without requiring `T: Clone`: an in-process value is moved
    /// out when this is its only reference (the usual case for request arguments and
    /// responses), otherwise it is copied through bincode. Received bytes are read as
    /// [`Payload::decode`] reads them (a [`Bytes`] shares their buffer).
    pub fn take<T: DeserializeOwned + Send + Sync + 'static>(self) -> Result<T, PayloadError> {
        match self.0 {
            Repr::Value(v) => {
                let any: &(dyn Any + Send + Sync) = &*v;
                if !any.is::<T>() {
                    return Payload(Repr::Value(v)).decode_other();
                }
                if Arc::strong_count(&v) > 1 {
                    let bytes = v.encode(Format::Bincode)?;
                    return decode_bytes(Format::Bincode, &bytes, v.type_name());
                }
                // The only reference: move the value out. Neither step can fail (type checked
                // above, no other reference exists), but stay total rather than panic. (The
                // stored type is `T`, checked above: its name is not asked of the value.)
                let mismatch = || PayloadError::TypeMismatch {
                    expected: std::any::type_name::<T>(),
                    found: std::any::type_name::<T>().to_owned(),
                };
                let any: Arc<dyn Any + Send + Sync> = v;
                let arc = any.downcast::<T>().map_err(|_| mismatch())?;
                Arc::try_unwrap(arc).map_err(|_| mismatch())
            }
            Repr::Scalar(v) => match v.take::<T>() {
                Some(t) => Ok(t),
                None => Payload(Repr::Scalar(v)).decode_other(),
            },
            encoded => {
                let payload = Payload(encoded);
                match payload.byte_string::<T>() {
                    Some(t) => Ok(t),
                    None => payload.decode_other(),
                }
            }
        }
    }

    /// Calls `f` with the payload's bytes in `format`: bytes already in that format as they
    /// are, an in-process value encoded into a per-thread scratch buffer (no allocation once
    /// the buffer has grown).
    pub(crate) fn with_bytes<R>(
        &self,
        format: Format,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, PayloadError> {
        match self.0.view() {
            View::Encoded(e, range) if e.format == format => Ok(f(&e.bytes[range])),
            View::Value(v) => with_value_bytes(v, format, f),
            View::Encoded(..) => self.to_bytes(format).map(|b| f(&b)),
        }
    }

    /// Encodes the payload (in-process values) or returns its bytes when already in `format`.
    pub fn to_bytes(&self, format: Format) -> Result<Bytes, PayloadError> {
        match self.0.view() {
            View::Value(v) => v.encode(format).map(Bytes::from),
            View::Encoded(e, range) if e.format == format => Ok(e.bytes.slice(range)),
            View::Encoded(e, range) => {
                let value: serde_json::Value =
                    decode_bytes(e.format, &e.bytes[range], &e.type_name)?;
                Payload::new(value).to_bytes(format)
            }
        }
    }

    /// The format this payload travels in across processes: JSON for a `serde_json::Value` (it
    /// has no bincode decoding) and for bytes that are already JSON, bincode otherwise.
    pub fn wire_format(&self) -> Format {
        match &self.0 {
            Repr::Value(v) if v.as_any().is::<serde_json::Value>() => Format::Json,
            Repr::Value(_) | Repr::Scalar(_) => Format::Bincode,
            Repr::Encoded(e) | Repr::Part(e, ..) => e.format,
        }
    }

    /// The payload as JSON, for tools and logs.
    pub fn to_json(&self) -> Result<serde_json::Value, PayloadError> {
        match self.0.view() {
            View::Encoded(e, range) => decode_bytes(e.format, &e.bytes[range], &e.type_name),
            View::Value(v) => {
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
            None => Err(PayloadError::TypeMismatch {
                expected: std::any::type_name::<T>(),
                found,
            }),
        }
    }
}

/// Calls `f` with `value` encoded in `format` into a per-thread scratch buffer (no
/// allocation once the buffer has grown): how [`Payload::with_bytes`] encodes an in-process
/// value, also for a value published with no payload made for it.
pub(crate) fn with_value_bytes<R>(
    value: &dyn Content,
    format: Format,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, PayloadError> {
    thread_local! {
        static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    }
    // Taken out while in use, so a nested call gets a fresh buffer instead of a conflict.
    let mut scratch = SCRATCH.take();
    scratch.clear();
    let result = value
        .encode_into(format, &mut scratch)
        .map(|()| f(&scratch));
    if scratch.capacity() <= 64 * 1024 {
        SCRATCH.set(scratch);
    }
    result
}

/// Where the bytes of the byte string that `bytes` holds begin, when `bytes` is exactly one
/// bincode byte string (a length in its shortest varint form, then that many bytes).
fn byte_string_start(bytes: &[u8]) -> Option<usize> {
    let (len, skip) = match *bytes.first()? {
        n @ 0..=250 => (u64::from(n), 1),
        251 => (
            u64::from(u16::from_le_bytes(bytes.get(1..3)?.try_into().ok()?)),
            3,
        ),
        252 => (
            u64::from(u32::from_le_bytes(bytes.get(1..5)?.try_into().ok()?)),
            5,
        ),
        _ => return None,
    };
    let shortest = match skip {
        1 => true,
        3 => len >= 251,
        _ => len > u64::from(u16::MAX),
    };
    (shortest && (bytes.len() - skip) as u64 == len).then_some(skip)
}

fn decode_bytes<T: DeserializeOwned>(
    format: Format,
    bytes: &[u8],
    type_name: &str,
) -> Result<T, PayloadError> {
    let err = |reason: String| PayloadError::Decode {
        expected: std::any::type_name::<T>(),
        found: type_name.to_owned(),
        reason,
    };
    match format {
        Format::Bincode => {
            let (value, used) = bincode_decode(bytes).map_err(|e| err(e.to_string()))?;
            if used != bytes.len() {
                return Err(err(format!("{} trailing bytes", bytes.len() - used)));
            }
            Ok(value)
        }
        Format::Json => serde_json::from_slice(bytes).map_err(|e| err(e.to_string())),
    }
}

/// One buffer that many received payloads of one format and type are parts of (the reports
/// in one chunk read from a connection): each part is a payload that shares the buffer, made
/// without allocating.
pub(crate) struct SharedContent(Arc<Encoded>);

impl SharedContent {
    /// `buffer` holds parts that are encoded in `format` by a sender whose type was `type_name`.
    pub(crate) fn new(format: Format, buffer: Bytes, type_name: Arc<str>) -> Self {
        SharedContent(Arc::new(Encoded {
            format,
            bytes: buffer,
            type_name,
        }))
    }

    /// Whether parts of this buffer are of `format` and the type named by this very `Arc`.
    pub(crate) fn is_for(&self, format: Format, type_name: &Arc<str>) -> bool {
        self.0.format == format && Arc::ptr_eq(&self.0.type_name, type_name)
    }

    /// The payload made of `part`, which must be a subslice of the buffer (else it is copied).
    pub(crate) fn part(&self, part: &[u8]) -> Payload {
        let base = self.0.bytes.as_ptr() as usize;
        let start = (part.as_ptr() as usize).wrapping_sub(base);
        let fits = start
            .checked_add(part.len())
            .is_some_and(|end| end <= self.0.bytes.len());
        match (u32::try_from(start), u32::try_from(part.len())) {
            (Ok(start32), Ok(len)) if fits => Payload(Repr::Part(self.0.clone(), start32, len)),
            _ => Payload::encoded(
                self.0.format,
                Bytes::copy_from_slice(part),
                self.0.type_name.clone(),
            ),
        }
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.view() {
            View::Value(v) => write!(f, "Payload<{}>", v.type_name()),
            View::Encoded(e, range) => write!(
                f,
                "Payload<{}, {:?}, {} bytes>",
                e.type_name,
                e.format,
                range.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests;
