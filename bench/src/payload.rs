//! The body of every request, response and report of `compare` and `soak`: [`PAYLOAD_LEN`]
//! bytes carrying a sequence number, the rest a fill byte. netsvc sends it as a
//! `crate::roles::Blob`.

/// Size of every body, in bytes.
pub(crate) const PAYLOAD_LEN: usize = 100;
/// Fill byte of every body after its sequence number.
const FILL: u8 = 0xa5;

/// The body of message `seq`: `PAYLOAD_LEN` bytes starting with `seq` (little endian).
pub(crate) fn payload(seq: u64) -> Vec<u8> {
    let mut body = vec![FILL; PAYLOAD_LEN];
    body[..8].copy_from_slice(&seq.to_le_bytes());
    body
}

/// The sequence number of a body made by [`payload`]; `None` for a body of another size.
pub(crate) fn seq_of(body: &[u8]) -> Option<u64> {
    if body.len() != PAYLOAD_LEN {
        return None;
    }
    body[..8].try_into().ok().map(u64::from_le_bytes)
}

/// Whether every byte of `body` after its sequence number is the fill byte.
fn filled(body: &[u8]) -> bool {
    body.get(8..)
        .is_some_and(|rest| rest.iter().all(|&b| b == FILL))
}

/// The sequence number of a body exactly as [`payload`] made it; `None` for any other body.
pub(crate) fn checked_seq(body: &[u8]) -> Option<u64> {
    seq_of(body).filter(|_| filled(body))
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
}
