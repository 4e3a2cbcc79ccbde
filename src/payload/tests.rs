//! Payload decoding limits, conversions and shared buffers.

use super::*;

#[test]
fn announced_lengths_beyond_the_decode_limit_fail_without_allocating() {
    // A String, a Vec<u8> and a Vec<String> whose lengths claim 2^40 and 2^63 bytes (or
    // entries), with only a few bytes behind them.
    for len in [1u64 << 40, 1 << 63, u64::MAX] {
        let mut bytes = vec![253];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        for r in [
            bincode_decode::<String>(&bytes).map(drop),
            bincode_decode::<Vec<u8>>(&bytes).map(drop),
            bincode_decode::<Vec<String>>(&bytes).map(drop),
            bincode_decode::<(String, u8)>(&bytes).map(drop),
        ] {
            assert!(r.is_err(), "{len}");
        }
    }
    // Just under a tier's limit a valid value decodes; the limit scales with the input.
    let text = "é".repeat(40_000);
    let encoded = bincode::serde::encode_to_vec(&text, bincode_config()).unwrap();
    assert_eq!(bincode_decode::<String>(&encoded).unwrap().0, text);
    let numbers: Vec<u128> = (0..5000).collect();
    let encoded = bincode::serde::encode_to_vec(&numbers, bincode_config()).unwrap();
    assert_eq!(bincode_decode::<Vec<u128>>(&encoded).unwrap().0, numbers);
}

fn encoded<T: Content>(value: T, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode_into(format, &mut out).unwrap();
    out
}

#[test]
fn parts_of_a_shared_buffer_are_payloads_of_their_own_bytes() {
    // A buffer holding two encoded values between other bytes, as a chunk of frames does.
    let (a, b) = (
        encoded(7u32, Format::Bincode),
        encoded("text".to_string(), Format::Bincode),
    );
    let buffer = Bytes::from([&b"head"[..], &a, &b"mid"[..], &b, &b"tail"[..]].concat());
    let part_a = &buffer[4..4 + a.len()];
    let part_b = &buffer[7 + a.len()..7 + a.len() + b.len()];
    let shared = SharedContent::new(Format::Bincode, buffer.clone(), "u32".into());

    let pa = shared.part(part_a);
    assert!(matches!(pa.0, Repr::Part(..)), "a part, not a copy");
    assert_eq!(pa.decode::<u32>().unwrap(), 7);
    assert_eq!(pa.to_bytes(Format::Bincode).unwrap(), part_a);
    assert_eq!((pa.type_name(), pa.wire_format()), ("u32", Format::Bincode));
    assert_eq!(
        format!("{pa:?}"),
        format!("Payload<u32, Bincode, {} bytes>", a.len())
    );
    pa.with_bytes(Format::Bincode, |bytes| assert_eq!(bytes, part_a))
        .unwrap();
    assert_eq!(shared.part(part_b).take::<String>().unwrap(), "text");
    // The whole buffer is decoded by no part: trailing bytes are an error, not garbage.
    assert!(shared.part(&buffer).decode::<u32>().is_err());

    // A JSON part converts to another format through a JSON value.
    let json = Bytes::from_static(b"[1,2]{\"k\":3}");
    let shared_json = SharedContent::new(Format::Json, json.clone(), "map".into());
    let map = shared_json.part(&json[5..]);
    assert_eq!(map.to_json().unwrap(), serde_json::json!({"k": 3}));
    assert_eq!(map.to_bytes(Format::Json).unwrap(), &br#"{"k":3}"#[..]);
    assert_eq!(
        shared_json.part(&json[..5]).decode::<Vec<u8>>().unwrap(),
        [1, 2]
    );

    // Bytes from elsewhere are copied.
    let elsewhere = encoded(9u32, Format::Bincode);
    let copied = shared.part(&elsewhere);
    assert!(matches!(copied.0, Repr::Encoded(_)));
    assert_eq!(copied.decode::<u32>().unwrap(), 9);

    // Every delivery carries a payload: three words, no more (a request's outcome too:
    // see `delivery::answer`).
    assert_eq!(
        std::mem::size_of::<Payload>(),
        3 * std::mem::size_of::<usize>()
    );

    // Whether a buffer is for a type is decided by the very same name.
    let name: Arc<str> = "u32".into();
    let for_name = SharedContent::new(Format::Bincode, buffer, name.clone());
    assert!(for_name.is_for(Format::Bincode, &name));
    assert!(!for_name.is_for(Format::Json, &name));
    assert!(!for_name.is_for(Format::Bincode, &"u32".into()));
}

/// The same value behind the shared pointer, as `Payload::new` kept every value before.
fn shared<T: Content>(value: T) -> Payload {
    Payload(Repr::Value(Arc::new(value)))
}

/// What a payload tells of itself, in every form a user or a link asks for.
fn seen(p: &Payload) -> (String, Format, Vec<u8>, Vec<u8>, Option<serde_json::Value>) {
    (
        p.type_name().to_owned(),
        p.wire_format(),
        p.to_bytes(Format::Bincode).unwrap().to_vec(),
        p.to_bytes(Format::Json).unwrap().to_vec(),
        p.to_json().ok(),
    )
}

fn same_as_shared<T>(value: T)
where
    T: Content + serde::de::DeserializeOwned + Clone + PartialEq + std::fmt::Debug,
{
    let inline = Payload::new(value.clone());
    assert!(
        matches!(inline.0, Repr::Scalar(_)),
        "{}",
        inline.type_name()
    );
    let arc = shared(value.clone());
    assert_eq!(seen(&inline), seen(&arc));
    assert_eq!(inline.get::<T>(), Some(&value));
    assert_eq!(inline.get::<String>(), None);
    assert_eq!(inline.decode::<T>(), Ok(value.clone()));
    assert_eq!(inline.clone().take::<T>(), Ok(value.clone()));
    assert_eq!(
        inline.clone().take::<serde_json::Value>(),
        arc.clone().take::<serde_json::Value>()
    );
    // Taken as another type: the same mismatch as a shared value gives.
    assert_eq!(
        inline.clone().take::<Vec<String>>(),
        arc.clone().take::<Vec<String>>()
    );
    assert!(inline.take::<Vec<String>>().is_err());
}

#[test]
fn scalars_are_kept_in_place_and_behave_as_shared_values() {
    same_as_shared(());
    same_as_shared(true);
    same_as_shared(7u32);
    same_as_shared(-7i32);
    same_as_shared(u64::MAX);
    same_as_shared(i64::MIN);
    same_as_shared(2.5f64);
    // The arguments of methods taking one or two of them.
    same_as_shared((true,));
    same_as_shared((-1i64,));
    same_as_shared((u64::MAX, 1u64));
    same_as_shared((7u32, -2.5f64));
    same_as_shared((false, i32::MIN));
    assert!(matches!(Payload::new((1u64, 2u64)).0, Repr::Scalar(_)));
    // A pair is not its swapped twin, nor a value of its first type.
    assert!(matches!(
        Payload::new((1u64, 2u32)).take::<(u32, u64)>(),
        Err(PayloadError::TypeMismatch { .. })
    ));
    assert_eq!(Payload::new((1u64,)).get::<u64>(), None);
    // Other types, even small ones, are shared as before.
    assert!(matches!(Payload::new(7u8).0, Repr::Value(_)));
    assert!(matches!(Payload::new((1u8, 2u8)).0, Repr::Value(_)));
    assert!(matches!(Payload::new((1u64, 2u64, 3u64)).0, Repr::Value(_)));
    assert!(matches!(Payload::new(String::new()).0, Repr::Value(_)));
}

#[test]
fn byte_strings_are_read_as_serde_reads_them_and_bytes_share_the_buffer() {
    // What serde makes of each input is the reference: the fast path must agree on every
    // value and on every refusal.
    fn agree(bytes: &[u8]) {
        let p = Payload::encoded(Format::Bincode, bytes.to_vec(), "sender::Type");
        let serde_vec = p.decode_other::<Vec<u8>>();
        assert_eq!(p.decode::<Vec<u8>>(), serde_vec, "{bytes:?}");
        assert_eq!(p.clone().take::<Vec<u8>>(), serde_vec, "{bytes:?}");
        let serde_bytes = p.decode_other::<Bytes>();
        assert_eq!(p.decode::<Bytes>(), serde_bytes, "{bytes:?}");
        assert_eq!(p.clone().take::<Bytes>(), serde_bytes, "{bytes:?}");
    }
    /// A newtype written as a byte string, as `serde_bytes` writes one.
    struct Blob(Vec<u8>);
    impl serde::Serialize for Blob {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_newtype_struct("Blob", &SerdeBytes(&self.0))
        }
    }
    struct SerdeBytes<'a>(&'a [u8]);
    impl serde::Serialize for SerdeBytes<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    for len in [0, 1, 100, 250, 251, 300, 65_535, 65_536, 70_000] {
        let body: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        for bytes in [
            encoded(body.clone(), Format::Bincode),
            encoded(Bytes::from(body.clone()), Format::Bincode),
            encoded(Blob(body.clone()), Format::Bincode),
        ] {
            let p = Payload::encoded(Format::Bincode, bytes.clone(), "sender::Type");
            assert_eq!(p.decode::<Bytes>().unwrap(), body);
            assert_eq!(p.decode::<Vec<u8>>().unwrap(), body);
            agree(&bytes);
            // Short by one, one byte too many.
            agree(&bytes[..bytes.len() - 1]);
            agree(&[&bytes[..], &[0]].concat());
        }
    }
    // Lengths in a longer form than needed, markers of wider integers, nothing at all.
    for bytes in [
        &[251, 3, 0, 1, 2, 3][..],
        &[252, 1, 0, 0, 0, 9],
        &[253, 1, 0, 0, 0, 0, 0, 0, 0, 9],
        &[254, 0],
        &[255],
        &[251, 1],
        &[],
    ] {
        agree(bytes);
    }

    // Bytes received in a shared buffer come out as a slice of it, not a copy.
    let body = encoded(Bytes::from_static(&[0xa5; 100]), Format::Bincode);
    let buffer = Bytes::from([&b"head"[..], &body, &b"tail"[..]].concat());
    let shared = SharedContent::new(Format::Bincode, buffer.clone(), "bytes::Bytes".into());
    let got = shared
        .part(&buffer[4..4 + body.len()])
        .decode::<Bytes>()
        .unwrap();
    assert_eq!(got, [0xa5; 100][..]);
    let inside = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
    assert!(
        inside.contains(&(got.as_ptr() as usize)),
        "a slice of the buffer"
    );

    // JSON and in-process values go the usual way.
    let json = Payload::encoded(Format::Json, &b"[1,2,3]"[..], "bytes::Bytes");
    assert_eq!(json.decode::<Vec<u8>>().unwrap(), vec![1, 2, 3]);
    assert_eq!(json.decode::<Bytes>().unwrap(), vec![1, 2, 3]);
    let local = Payload::new(Bytes::from_static(b"abc"));
    assert_eq!(local.decode::<Bytes>().unwrap(), &b"abc"[..]);
    assert!(
        local.decode::<Vec<u8>>().is_err(),
        "in-process types must match"
    );
}

#[test]
fn a_scalar_is_copied_out_only_as_its_own_type() {
    let pair = Payload::new((3u64, 4u64));
    assert_eq!(pair.scalar::<(u64, u64)>(), Some((3, 4)));
    // The payload still holds it: a copy was taken.
    assert_eq!(pair.get::<(u64, u64)>(), Some(&(3, 4)));
    assert_eq!(pair.scalar::<(u64, i64)>(), None);
    assert_eq!(pair.scalar::<u64>(), None);
    // Values behind the shared pointer and encoded bytes are not scalars, even of the type.
    assert_eq!(shared(5u64).scalar::<u64>(), None);
    let bytes = Payload::encoded(Format::Bincode, encoded(5u64, Format::Bincode), "u64");
    assert_eq!(bytes.scalar::<u64>(), None);
    assert_eq!(bytes.decode::<u64>().unwrap(), 5);
    assert_eq!(Payload::new(String::from("x")).scalar::<u64>(), None);
}
