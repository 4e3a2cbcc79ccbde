//! TLS on exchange links, with certificates made by the test (rcgen): a client that trusts
//! the server's CA is served; one that trusts another CA, dials another name, lacks a
//! required client certificate or presents a bad one is refused; plaintext and TLS peers
//! that meet are refused at once, with a reason, both ways.

mod common;

use std::time::Duration;

use common::raw::{closed_within, encode, hello_from};
use common::{probe, WAIT};
use netsvc::prelude::*;
use netsvc::wire::{Frame, PROTOCOL_VERSION};
use netsvc::{ClientAuth, ConnectionState, Exchange, ExchangeConfig, ProcessId, Tls, TlsPem};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[derive(Service)]
#[service(name = "calculator")]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }
}

/// A certificate authority made for one test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: Vec<u8>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem().into_bytes(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (host names or IP addresses) and its key, in PEM.
    fn issue(&self, names: &[&str]) -> (Vec<u8>, Vec<u8>) {
        self.issue_with(names, |_| {})
    }

    fn issue_with(
        &self,
        names: &[&str],
        edit: impl FnOnce(&mut CertificateParams),
    ) -> (Vec<u8>, Vec<u8>) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
    }
}

fn tls(cert: Option<(Vec<u8>, Vec<u8>)>, ca: Option<&Ca>, client_auth: ClientAuth) -> Tls {
    let (cert, key) = cert.map_or((None, None), |(c, k)| (Some(c), Some(k)));
    Tls::new(&TlsPem {
        cert,
        key,
        ca: ca.map(|ca| ca.pem.clone()),
        client_auth,
    })
    .unwrap()
}

fn config(tls: Option<Tls>) -> ExchangeConfig {
    ExchangeConfig {
        tls,
        handshake_timeout: Duration::from_secs(5),
        ..ExchangeConfig::default()
    }
}

/// A TLS server with a calculator, listening on 127.0.0.1.
async fn server(tls: Tls) -> (Node, Exchange, u16) {
    let _ = probe();
    let node = Node::new("server");
    let x = Exchange::with_config(&node, config(Some(tls))).unwrap();
    let port = x.listen("127.0.0.1:0").await.unwrap().port();
    node.spawn(Calculator);
    (node, x, port)
}

/// Whether a client with `tls` dialling `addr` gets an active link within `limit`.
async fn connects(tls: Option<Tls>, addr: &str, limit: Duration) -> Option<Node> {
    let node = Node::new("client");
    let x = Exchange::with_config(&node, config(tls)).unwrap();
    let mut events = x.connections();
    x.connect(addr, None).forget();
    match tokio::time::timeout(limit, events.recv()).await {
        Ok(Ok(event)) if event.state == ConnectionState::Active => Some(node),
        _ => None,
    }
}

async fn call(node: &Node) -> Result<i64, Failure> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let calc = loop {
        if let Some(b) = node.lookup_name("calculator").await.pop() {
            break b;
        }
        assert!(tokio::time::Instant::now() < deadline, "no calculator");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    CalculatorClient::new(node.endpoint(&calc))
        .multiply(6, 7)
        .await
}

#[actix::test]
async fn a_client_that_trusts_the_servers_ca_is_served_and_others_are_refused() {
    let ca = Ca::new();
    let (_node, _x, port) = server(tls(
        Some(ca.issue(&["127.0.0.1"])),
        None,
        ClientAuth::Optional,
    ))
    .await;
    let addr = format!("127.0.0.1:{port}");
    // (a) Trusts the CA.
    let client = connects(
        Some(tls(None, Some(&ca), ClientAuth::Optional)),
        &addr,
        WAIT,
    )
    .await
    .expect("a client trusting the CA is served");
    assert_eq!(call(&client).await, Ok(42));
    // (b) Trusts another CA.
    let other = Ca::new();
    let refused = connects(
        Some(tls(None, Some(&other), ClientAuth::Optional)),
        &addr,
        Duration::from_secs(1),
    );
    assert!(
        refused.await.is_none(),
        "a client trusting another CA was served"
    );
    // (c) Dials a name the certificate is not for.
    let wrong = format!("localhost:{port}");
    let refused = connects(
        Some(tls(None, Some(&ca), ClientAuth::Optional)),
        &wrong,
        Duration::from_secs(1),
    );
    assert!(
        refused.await.is_none(),
        "a client dialling another name was served"
    );
    // The first client is still served.
    assert_eq!(call(&client).await, Ok(42));
}

#[actix::test]
async fn mutual_tls_requires_a_client_certificate_signed_by_the_ca() {
    let ca = Ca::new();
    let server_tls = tls(
        Some(ca.issue(&["127.0.0.1"])),
        Some(&ca),
        ClientAuth::Required,
    );
    let (_node, _x, port) = server(server_tls).await;
    let addr = format!("127.0.0.1:{port}");
    let limit = Duration::from_secs(1);
    // A client with a certificate from the CA.
    let good = Some(tls(
        Some(ca.issue(&["client"])),
        Some(&ca),
        ClientAuth::Optional,
    ));
    let client = connects(good, &addr, WAIT)
        .await
        .expect("a client with a good certificate");
    assert_eq!(call(&client).await, Ok(42));
    // (d) None at all.
    let none = Some(tls(None, Some(&ca), ClientAuth::Optional));
    assert!(
        connects(none, &addr, limit).await.is_none(),
        "served without a certificate"
    );
    // (e) Expired, or signed by another CA.
    let expired = ca.issue_with(&["client"], |p| {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let expired = Some(tls(Some(expired), Some(&ca), ClientAuth::Optional));
    assert!(
        connects(expired, &addr, limit).await.is_none(),
        "served with an expired certificate"
    );
    let stranger = Ca::new();
    let foreign = Some(tls(
        Some(stranger.issue(&["client"])),
        Some(&ca),
        ClientAuth::Optional,
    ));
    assert!(
        connects(foreign, &addr, limit).await.is_none(),
        "served with a foreign certificate"
    );
}

#[actix::test]
async fn plaintext_and_tls_peers_are_refused_at_once_both_ways() {
    let ca = Ca::new();
    let (_node, _x, port) = server(tls(
        Some(ca.issue(&["127.0.0.1"])),
        None,
        ClientAuth::Optional,
    ))
    .await;
    // A plaintext peer on a TLS server is told so, in its own framing, at once.
    let started = tokio::time::Instant::now();
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    plain
        .write_all(&encode(&hello_from(PROTOCOL_VERSION, ProcessId::random())))
        .await
        .unwrap();
    let frames = closed_within(&mut plain, Duration::from_secs(1))
        .await
        .expect("closed at once");
    assert!(
        matches!(&frames[..], [Frame::Refused { reason }] if reason.contains("requires TLS")),
        "{frames:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    // A TLS client on a plaintext server fails its handshake at once, not at a timeout.
    let plain_node = Node::new("plain server");
    let plain_x = Exchange::new(&plain_node);
    let plain_addr = plain_x.listen("127.0.0.1:0").await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth(),
    ));
    let started = tokio::time::Instant::now();
    let stream = TcpStream::connect(plain_addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let handshake = tokio::time::timeout(Duration::from_secs(1), connector.connect(name, stream));
    assert!(
        matches!(handshake.await, Ok(Err(_))),
        "the handshake fails at once"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // And a netsvc client with TLS gets no link to it.
    let addr = plain_addr.to_string();
    let tls_client = Some(tls(None, Some(&ca), ClientAuth::Optional));
    assert!(connects(tls_client, &addr, Duration::from_secs(1))
        .await
        .is_none());
}

#[actix::test]
async fn settings_that_cannot_work_are_refused_when_built() {
    let ca = Ca::new();
    let (cert, _) = ca.issue(&["127.0.0.1"]);
    let (_, other_key) = ca.issue(&["127.0.0.1"]);
    let built = |pem: TlsPem| Tls::new(&pem).map(|_| ()).map_err(|e| e.to_string());
    // A key that is not the certificate's.
    let err = built(TlsPem {
        cert: Some(cert.clone()),
        key: Some(other_key),
        ..TlsPem::default()
    })
    .unwrap_err();
    assert!(err.contains("certificate and key"), "{err}");
    // Garbage where PEM should be; a certificate without its key.
    assert!(built(TlsPem {
        ca: Some(b"not a certificate".to_vec()),
        ..TlsPem::default()
    })
    .is_err());
    assert!(built(TlsPem {
        cert: Some(cert),
        ..TlsPem::default()
    })
    .is_err());
    // Client certificates required with no CA to check them.
    let (cert, key) = ca.issue(&["127.0.0.1"]);
    let err = built(TlsPem {
        cert: Some(cert),
        key: Some(key),
        ca: None,
        client_auth: ClientAuth::Required,
    })
    .unwrap_err();
    assert!(err.contains("no CA"), "{err}");
    // An exchange cannot listen without a certificate.
    let node = Node::new("n");
    let x = Exchange::with_config(
        &node,
        config(Some(tls(None, Some(&ca), ClientAuth::Optional))),
    )
    .unwrap();
    assert!(x.listen("127.0.0.1:0").await.is_err());
}

#[actix::test]
async fn a_servers_policy_is_told_the_client_certificates_subject_and_names() {
    let ca = Ca::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let admit: netsvc::Admit = std::sync::Arc::new(move |peer: &netsvc::PeerInfo| {
        record.lock().unwrap().push((
            peer.certificate_subject.clone(),
            peer.certificate_names.clone(),
        ));
        Some(netsvc::PeerPolicy::default())
    });
    let _ = probe();
    let node = Node::new("server");
    let server_tls = tls(
        Some(ca.issue(&["127.0.0.1"])),
        Some(&ca),
        ClientAuth::Required,
    );
    let config = ExchangeConfig {
        admit: Some(admit),
        ..config(Some(server_tls))
    };
    let x = Exchange::with_config(&node, config).unwrap();
    let port = x.listen("127.0.0.1:0").await.unwrap().port();
    let client_cert = ca.issue_with(&["client-7.example"], |p| {
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "client-7");
    });
    let client = Some(tls(Some(client_cert), Some(&ca), ClientAuth::Optional));
    assert!(connects(client, &format!("127.0.0.1:{port}"), WAIT)
        .await
        .is_some());
    let seen = seen.lock().unwrap().clone();
    let (subject, names) = seen.first().cloned().expect("the policy was asked");
    assert!(
        subject
            .as_deref()
            .is_some_and(|s| s.contains("CN=client-7")),
        "{subject:?}"
    );
    assert_eq!(names, ["client-7.example"]);
}
