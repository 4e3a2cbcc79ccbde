//! TLS on exchange links: rustls with the ring provider, certificates and keys in PEM.
//!
//! One [`Tls`] serves both sides of an exchange: its identity (certificate chain and key) is
//! the server certificate of a listener and, for mutual TLS, the client certificate of a
//! connector; its CA verifies the servers a connector dials (against the host name or IP
//! address it dialled) and, when the listener requires client certificates, the clients.
//! Everything is checked when the settings are built: unreadable PEM, a key that does not
//! match its certificate, a CA without certificates are errors then, not at the first
//! connection.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why TLS settings could not be built, or a TLS connection could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

impl From<String> for TlsError {
    fn from(text: String) -> TlsError {
        TlsError(text)
    }
}

/// Whether a TLS server asks its clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Any client may connect (the server is still verified by its clients).
    #[default]
    Optional,
    /// A client must present a certificate signed by the CA (mutual TLS).
    Required,
}

/// The TLS settings of an exchange (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    server: Option<Arc<ServerConfig>>,
    client: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("listens", &self.server.is_some())
            .field("connects", &self.client.is_some())
            .finish()
    }
}

/// What a [`Tls`] is built from.
#[derive(Debug, Clone, Default)]
pub struct TlsPem {
    /// This side's certificate chain (PEM), leaf first: needed to listen, and to connect
    /// where client certificates are required.
    pub cert: Option<Vec<u8>>,
    /// The private key of `cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<Vec<u8>>,
    /// The CA certificates (PEM) that servers, and required client certificates, must be
    /// signed by: needed to connect.
    pub ca: Option<Vec<u8>>,
    /// Whether a listener requires client certificates.
    pub client_auth: ClientAuth,
}

impl TlsPem {
    /// The same settings read from files (any of them may be absent).
    pub fn from_files(
        cert: Option<&Path>,
        key: Option<&Path>,
        ca: Option<&Path>,
        client_auth: ClientAuth,
    ) -> Result<TlsPem, TlsError> {
        let read = |path: Option<&Path>| {
            path.map(|p| {
                std::fs::read(p).map_err(|e| TlsError(format!("cannot read {}: {e}", p.display())))
            })
            .transpose()
        };
        Ok(TlsPem {
            cert: read(cert)?,
            key: read(key)?,
            ca: read(ca)?,
            client_auth,
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{what}: no certificate in the PEM")));
    }
    Ok(certs)
}

fn roots(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(pem, "CA")? {
        roots.add(cert).map_err(|e| TlsError(format!("CA: {e}")))?;
    }
    Ok(roots)
}

impl Tls {
    /// Builds and checks the settings.
    pub fn new(pem: &TlsPem) -> Result<Tls, TlsError> {
        let identity = match (&pem.cert, &pem.key) {
            (Some(cert), Some(key)) => {
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| TlsError(format!("key: {e}")))?;
                Some((certificates(cert, "certificate")?, key))
            }
            (None, None) => None,
            _ => {
                return Err(TlsError(
                    "a certificate needs its key, and a key its certificate".into(),
                ))
            }
        };
        let roots = pem.ca.as_deref().map(roots).transpose()?.map(Arc::new);
        let server = match &identity {
            None => None,
            Some((chain, key)) => {
                let builder = ServerConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| TlsError(e.to_string()))?;
                let builder = match (pem.client_auth, &roots) {
                    (ClientAuth::Optional, _) => builder.with_no_client_auth(),
                    (ClientAuth::Required, Some(roots)) => {
                        let verifier =
                            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                                .build()
                                .map_err(|e| TlsError(format!("client verifier: {e}")))?;
                        builder.with_client_cert_verifier(verifier)
                    }
                    (ClientAuth::Required, None) => {
                        return Err(TlsError(
                            "client certificates are required but no CA verifies them".into(),
                        ))
                    }
                };
                let config = builder
                    .with_single_cert(chain.clone(), key.clone_key())
                    .map_err(|e| TlsError(format!("certificate and key: {e}")))?;
                Some(Arc::new(config))
            }
        };
        let client = match &roots {
            None => None,
            Some(roots) => {
                let builder = ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| TlsError(e.to_string()))?
                    .with_root_certificates(roots.clone());
                let config = match identity {
                    None => builder.with_no_client_auth(),
                    Some((chain, key)) => builder
                        .with_client_auth_cert(chain, key)
                        .map_err(|e| TlsError(format!("client certificate and key: {e}")))?,
                };
                Some(Arc::new(config))
            }
        };
        Ok(Tls { server, client })
    }

    /// Settings from PEM files, or `None` when no file is named (plaintext): what a command
    /// line's `--tls-cert`, `--tls-key`, `--tls-ca` (and `--require-client-cert`) give.
    pub fn from_files(
        cert: Option<&Path>,
        key: Option<&Path>,
        ca: Option<&Path>,
        client_auth: ClientAuth,
    ) -> Result<Option<Tls>, TlsError> {
        if cert.is_none() && key.is_none() && ca.is_none() {
            return match client_auth {
                ClientAuth::Optional => Ok(None),
                ClientAuth::Required => Err(TlsError(
                    "client certificates are required but TLS is off (no certificate, key or CA)"
                        .into(),
                )),
            };
        }
        Tls::new(&TlsPem::from_files(cert, key, ca, client_auth)?).map(Some)
    }

    /// The rustls server settings, if these can listen (a certificate and key were given):
    /// for another TLS server of the same identity, such as the HTTP gateway's.
    pub fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.server.clone()
    }

    /// The acceptor of a listener, if these settings can listen.
    pub(crate) fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        self.server
            .clone()
            .map(tokio_rustls::TlsAcceptor::from)
            .ok_or_else(|| TlsError("no certificate and key to listen with".into()))
    }

    /// The connector of a client dialling `host`, if these settings can connect.
    pub(crate) fn connector(
        &self,
        host: &str,
    ) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), TlsError> {
        let client = self
            .client
            .clone()
            .ok_or_else(|| TlsError("no CA to verify the server with".into()))?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| TlsError(format!("server name {host:?}: {e}")))?;
        Ok((tokio_rustls::TlsConnector::from(client), name))
    }
}

/// The host part of a `host:port` address (an IPv6 address without its brackets).
pub(crate) fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}
