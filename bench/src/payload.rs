//! The body of every request, response and report of `compare` and `soak`: [`PAYLOAD_LEN`]
//! bytes (or, for the payload workloads of `compare`, a length of their own) carrying a
//! sequence number, the rest a fill byte. netsvc sends it as a `crate::roles::Blob`.

/// Size of every body but those of `compare`'s payload workloads, in bytes.
pub(crate) const PAYLOAD_LEN: usize = 100;
/// Fill byte of every body after its sequence number.
const FILL: u8 = 0xa5;
/// Bytes of the sequence number at the start of a body (the shortest body).
const SEQ_LEN: usize = 8;

/// The body of message `seq`: `PAYLOAD_LEN` bytes starting with `seq` (little endian).
pub(crate) fn payload(seq: u64) -> Vec<u8> {
    payload_of(seq, PAYLOAD_LEN)
}

/// The body of message `seq` of `len` bytes (at least 8): `seq` (little endian), then the
/// fill byte.
pub(crate) fn payload_of(seq: u64, len: usize) -> Vec<u8> {
    let mut body = vec![FILL; len.max(SEQ_LEN)];
    body[..SEQ_LEN].copy_from_slice(&seq.to_le_bytes());
    body
}

/// The sequence number of a body made by [`payload`]; `None` for a body of another size.
pub(crate) fn seq_of(body: &[u8]) -> Option<u64> {
    if body.len() != PAYLOAD_LEN {
        return None;
    }
    raw_seq(body)
}

/// The first 8 bytes of `body` as a sequence number.
fn raw_seq(body: &[u8]) -> Option<u64> {
    body.get(..SEQ_LEN)?.try_into().ok().map(u64::from_le_bytes)
}

/// Whether every byte of `body` after its sequence number is the fill byte. Compared eight
/// bytes at a time: every subscriber of both sides checks every byte it receives, and a
/// byte-at-a-time loop with an early exit was a tenth of a netsvc subscriber's CPU.
fn filled(body: &[u8]) -> bool {
    const WORD: u64 = u64::from_ne_bytes([FILL; 8]);
    let Some(rest) = body.get(SEQ_LEN..) else {
        return false;
    };
    let words = rest.chunks_exact(8);
    let tail = words.remainder();
    words.fold(0, |diff, w| {
        diff | (u64::from_ne_bytes(w.try_into().unwrap_or_default()) ^ WORD)
    }) == 0
        && tail.iter().all(|&b| b == FILL)
}

/// The sequence number of a body exactly as [`payload`] made it; `None` for any other body.
pub(crate) fn checked_seq(body: &[u8]) -> Option<u64> {
    checked_seq_of(body, PAYLOAD_LEN)
}

/// The sequence number of a body exactly as [`payload_of`]`(_, len)` made it, every byte
/// checked; `None` for any other body.
pub(crate) fn checked_seq_of(body: &[u8], len: usize) -> Option<u64> {
    if body.len() != len.max(SEQ_LEN) || !filled(body) {
        return None;
    }
    raw_seq(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        assert_eq!(payload(7).len(), PAYLOAD_LEN);
        assert_eq!(seq_of(&payload(123_456)), Some(123_456));
        assert_eq!(seq_of(&[0; 8]), None);
    }

    #[test]
    fn bodies_are_checked_whole() {
        assert_eq!(checked_seq(&payload(42)), Some(42));
        let mut body = payload(42);
        body[50] = 0;
        assert_eq!(checked_seq(&body), None);
        assert_eq!(checked_seq(&payload(42)[..99]), None);
    }

    #[test]
    fn bodies_of_any_length_are_checked_whole() {
        let len = 1 << 20;
        let mut body = payload_of(9, len);
        assert_eq!(body.len(), len);
        assert_eq!(checked_seq_of(&body, len), Some(9));
        assert_eq!(
            checked_seq_of(&body, len - 1),
            None,
            "the length is checked"
        );
        body[len - 1] = 0;
        assert_eq!(checked_seq_of(&body, len), None, "the last byte is checked");
        assert_eq!(checked_seq_of(&payload_of(3, 1), 8), Some(3));
        // Every byte after the sequence number, whether in a whole word or the tail.
        for len in 8..40 {
            for at in 8..len {
                let mut body = payload_of(5, len);
                body[at] ^= 1;
                assert_eq!(checked_seq_of(&body, len), None, "{len} {at}");
            }
        }
    }
}
