//! One connection's byte streams, over plain TCP or TLS, ready for a bridge.
//!
//! A TLS listener looks at the first byte a peer sends before anything else: a TLS record
//! begins the handshake; anything else is a plaintext netsvc peer, which is told in a
//! plaintext `Refused` frame that this server requires TLS (so both sides log a clear
//! reason at once, rather than waiting for a timeout). A TLS handshake is bounded by the
//! handshake timeout.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tls::{host_of, Tls, TlsError};
use crate::wire::{encode_frame, Frame};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// A connection's two byte streams and what is known of its socket.
pub(crate) struct Connection {
    pub(crate) reader: Box<dyn AsyncRead + Unpin>,
    pub(crate) writer: Box<dyn AsyncWrite + Unpin>,
    /// A second handle on a plaintext socket, for the writer's progress probe and a relay's
    /// direct writes (`Outbound::write_directly`; none under TLS: bytes written to the
    /// socket directly would bypass it).
    pub(crate) probe: Option<std::net::TcpStream>,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) local_addr: SocketAddr,
    /// What TLS told of the session and of the peer (empty in plaintext).
    pub(crate) identity: Identity,
}

/// The subject of the first (leaf) certificate of a verified chain, as text.
fn subject_of(chain: Option<&[rustls::pki_types::CertificateDer<'_>]>) -> Option<String> {
    let leaf = chain?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    Some(cert.subject().to_string())
}

/// The DNS names of the first (leaf) certificate of a verified chain.
fn names_of(chain: Option<&[rustls::pki_types::CertificateDer<'_>]>) -> Vec<String> {
    let Some(leaf) = chain.and_then(|c| c.first()) else {
        return Vec::new();
    };
    match webpki::EndEntityCert::try_from(leaf) {
        Ok(cert) => cert.valid_dns_names().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

/// The label of the value a TLS session exports for the handshake's authentication.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-netsvc-authentication";

fn addresses(stream: &TcpStream) -> std::io::Result<(SocketAddr, SocketAddr)> {
    Ok((stream.peer_addr()?, stream.local_addr()?))
}

impl Connection {
    /// A plaintext connection.
    pub(crate) fn plain(stream: TcpStream) -> std::io::Result<Connection> {
        let (peer_addr, local_addr) = addresses(&stream)?;
        let _ = stream.set_nodelay(true);
        let std = stream.into_std()?;
        let probe = std.try_clone()?;
        let (reader, writer) = TcpStream::from_std(std)?.into_split();
        Ok(Connection {
            reader: Box::new(reader),
            writer: Box::new(writer),
            probe: Some(probe),
            peer_addr,
            local_addr,
            identity: Identity::default(),
        })
    }

    /// The server side of a TLS connection (see the module docs on a plaintext peer).
    pub(crate) async fn accept(
        stream: TcpStream,
        tls: &Tls,
        timeout: Duration,
    ) -> Result<Connection, TlsError> {
        let acceptor = tls.acceptor()?;
        let (peer_addr, local_addr) = addresses(&stream).map_err(|e| TlsError::io(&e))?;
        let _ = stream.set_nodelay(true);
        let mut first = [0u8; 1];
        match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
            Err(_) => {
                return Err(TlsError::said(
                    "the peer sent nothing within the handshake timeout",
                ))
            }
            Ok(Err(e)) => return Err(TlsError::io(&e)),
            Ok(Ok(0)) => return Err(TlsError::said("the peer closed the connection")),
            Ok(Ok(_)) if first[0] != TLS_HANDSHAKE => {
                refuse_plaintext(stream).await;
                return Err(TlsError::said(
                    "a plaintext peer on a TLS exchange server; refused",
                ));
            }
            Ok(Ok(_)) => {}
        }
        let stream = tokio::time::timeout(timeout, acceptor.accept(stream))
            .await
            .map_err(|_| TlsError::said("no TLS handshake within the handshake timeout"))?
            .map_err(|e| TlsError::handshake(&e))?;
        let (_, tls) = stream.get_ref();
        let identity = identity(tls);
        Ok(Connection::over_tls(
            stream,
            (peer_addr, local_addr),
            identity,
        ))
    }

    /// The client side of a TLS connection to `addr` (the server is verified against the
    /// host part of it).
    pub(crate) async fn connect(
        stream: TcpStream,
        tls: &Tls,
        addr: &str,
        timeout: Duration,
    ) -> Result<Connection, TlsError> {
        let (connector, name) = tls.connector(host_of(addr))?;
        let (peer_addr, local_addr) = addresses(&stream).map_err(|e| TlsError::io(&e))?;
        let _ = stream.set_nodelay(true);
        let stream = tokio::time::timeout(timeout, connector.connect(name, stream))
            .await
            .map_err(|_| TlsError::said("no TLS handshake within the handshake timeout"))?
            .map_err(|e| TlsError::handshake(&e))?;
        let (_, tls) = stream.get_ref();
        let identity = identity(tls);
        Ok(Connection::over_tls(
            stream,
            (peer_addr, local_addr),
            identity,
        ))
    }
}

/// What a TLS session tells of itself and of its peer; empty in plaintext.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    /// The value the session exports for binding the handshake's authentication to it.
    pub(crate) session: Vec<u8>,
    /// The DNS names of the peer's verified certificate.
    pub(crate) peer_names: Vec<String>,
    /// Whether the peer presented a certificate the CA signed (under TLS: always a server's;
    /// a client's where client certificates are required).
    pub(crate) peer_verified: bool,
    /// The subject of the peer's certificate (`CN=…, O=…`), if it has one.
    pub(crate) peer_subject: Option<String>,
}

fn identity<D>(tls: &rustls::ConnectionCommon<D>) -> Identity {
    let session = tls
        .export_keying_material([0u8; 32], EXPORTER_LABEL, None)
        .map_or_else(|_| Vec::new(), |k| k.to_vec());
    Identity {
        session,
        peer_names: names_of(tls.peer_certificates()),
        peer_verified: tls
            .peer_certificates()
            .is_some_and(|chain| !chain.is_empty()),
        peer_subject: subject_of(tls.peer_certificates()),
    }
}

impl Connection {
    /// A connection over an established TLS stream.
    fn over_tls(
        stream: impl AsyncRead + AsyncWrite + Unpin + 'static,
        (peer_addr, local_addr): (SocketAddr, SocketAddr),
        identity: Identity,
    ) -> Connection {
        let (reader, writer) = tokio::io::split(stream);
        Connection {
            reader: Box::new(reader),
            writer: Box::new(writer),
            probe: None,
            peer_addr,
            local_addr,
            identity,
        }
    }
}

/// Tells a plaintext peer, in its own framing, that this server requires TLS.
async fn refuse_plaintext(mut stream: TcpStream) {
    let mut buf = BytesMut::new();
    let refused = Frame::Refused {
        reason: "this exchange server requires TLS".into(),
    };
    if encode_frame(&refused, &mut buf, 4096).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&buf)).await;
        let _ = stream.shutdown().await;
    }
}

impl TlsError {
    pub(crate) fn said(text: &str) -> TlsError {
        TlsError::from(text.to_owned())
    }

    fn io(e: &std::io::Error) -> TlsError {
        TlsError::from(e.to_string())
    }

    fn handshake(e: &std::io::Error) -> TlsError {
        TlsError::from(format!(
            "handshake failed: {e} (does the peer speak TLS, with a certificate this side trusts?)"
        ))
    }
}
