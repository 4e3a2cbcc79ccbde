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
    // Other types, even small ones, are shared as before.
    assert!(matches!(Payload::new(7u8).0, Repr::Value(_)));
    assert!(matches!(Payload::new((1u64, 2u64)).0, Repr::Value(_)));
    assert!(matches!(Payload::new(String::new()).0, Repr::Value(_)));
}
