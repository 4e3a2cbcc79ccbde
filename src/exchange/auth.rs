//! Shared-secret authentication in the handshake, for meshes without a PKI (and on top of
//! TLS): each side that has a secret sends a fresh random nonce before its `Hello`
//! ([`Frame::Challenge`], so that a peer without a secret refuses before it takes the link for
//! ready) and answers the peer's with an HMAC-SHA256 of the secret over a
//! label, its own side of the connection, the peer's nonce then its own, and, under TLS, a
//! value exported from the session ([`Frame::Proof`]). The secret never crosses the wire; a
//! recorded proof is worthless on another connection (other nonces, another session); the
//! side label keeps a proof from being reflected back. A side with a secret accepts a link
//! only once the peer proved it has the same one; tags are compared in constant time.

use std::path::Path;
use std::sync::Arc;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::delivery::Side;
use crate::wire::NONCE_LEN;

/// What a proof is computed over, first.
const LABEL: &[u8] = b"netsvc exchange authentication v1";

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// A shared secret (see the module docs). Cheap to clone; never printed.
#[derive(Clone)]
pub struct Secret(Arc<hmac::Key>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shared secret: {0}")]
pub struct SecretError(String);

impl Secret {
    /// A secret of at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(bytes: &[u8]) -> Result<Secret, SecretError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretError(format!(
                "{} bytes; at least {MIN_SECRET_LEN} are needed",
                bytes.len()
            )));
        }
        Ok(Secret(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, bytes))))
    }

    /// The secret in a file: its contents, without a final line break.
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        let bytes = std::fs::read(path)
            .map_err(|e| SecretError(format!("cannot read {}: {e}", path.display())))?;
        let trimmed = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        Secret::new(trimmed)
    }

    /// What a proof signs: the label, the prover's side, then each part after its length.
    fn message(side: Side, first: &[u8], second: &[u8], session: &[u8]) -> Vec<u8> {
        let mut message = LABEL.to_vec();
        message.extend_from_slice(match side {
            Side::Connected => b"client",
            Side::Accepted => b"server",
        });
        for part in [first, second, session] {
            message.extend_from_slice(&(part.len() as u64).to_be_bytes());
            message.extend_from_slice(part);
        }
        message
    }
}

/// One side's state of the challenge, from its nonce to the peer's proof.
pub(super) struct Challenge {
    secret: Secret,
    nonce: [u8; NONCE_LEN],
    /// What the TLS session exports for this purpose (empty in plaintext).
    session: Vec<u8>,
}

impl Challenge {
    /// A fresh challenge of this side.
    pub(super) fn new(secret: Secret, session: Vec<u8>) -> Result<Challenge, String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "no random numbers for a nonce".to_owned())?;
        Ok(Challenge {
            secret,
            nonce,
            session,
        })
    }

    /// This side's nonce, to send.
    pub(super) fn nonce(&self) -> Vec<u8> {
        self.nonce.to_vec()
    }

    /// This side's proof for the peer's nonce.
    pub(super) fn prove(&self, me: Side, peer_nonce: &[u8]) -> Result<Vec<u8>, String> {
        if peer_nonce.len() != NONCE_LEN {
            return Err(format!("a nonce of {} bytes", peer_nonce.len()));
        }
        let message = Secret::message(me, peer_nonce, &self.nonce, &self.session);
        Ok(hmac::sign(&self.secret.0, &message).as_ref().to_vec())
    }

    /// Whether `mac` proves the peer (the other side than `me`) has the secret: computed over
    /// this side's nonce and then the peer's.
    pub(super) fn check(&self, me: Side, peer_nonce: &[u8], mac: &[u8]) -> bool {
        let peer = match me {
            Side::Connected => Side::Accepted,
            Side::Accepted => Side::Connected,
        };
        let message = Secret::message(peer, &self.nonce, peer_nonce, &self.session);
        // Constant time, in ring.
        hmac::verify(&self.secret.0, &message, mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_check_only_with_the_same_secret_the_same_nonces_and_the_other_side() {
        let secret = Secret::new(b"0123456789abcdef").unwrap();
        let other = Secret::new(b"0123456789abcdeX").unwrap();
        let client = Challenge::new(secret.clone(), vec![]).unwrap();
        let server = Challenge::new(secret.clone(), vec![]).unwrap();
        let proof = client.prove(Side::Connected, &server.nonce()).unwrap();
        assert!(server.check(Side::Accepted, &client.nonce(), &proof));
        // Another secret, another connection's nonces, or the proof reflected: no.
        let stranger = Challenge::new(other, vec![]).unwrap();
        let forged = stranger.prove(Side::Connected, &server.nonce()).unwrap();
        assert!(!server.check(Side::Accepted, &stranger.nonce(), &forged));
        let later = Challenge::new(secret.clone(), vec![]).unwrap();
        assert!(!later.check(Side::Accepted, &client.nonce(), &proof));
        let reflected = server.prove(Side::Accepted, &client.nonce()).unwrap();
        assert!(!client.check(Side::Accepted, &server.nonce(), &reflected));
        // Bound to the session when there is one.
        let tls_a = Challenge::new(secret.clone(), vec![1; 32]).unwrap();
        let tls_b = Challenge::new(secret, vec![2; 32]).unwrap();
        let proof = tls_a.prove(Side::Connected, &tls_b.nonce()).unwrap();
        assert!(!tls_b.check(Side::Accepted, &tls_a.nonce(), &proof));
        assert!(Secret::new(b"short").is_err());
    }
}
