//! Shared-secret authentication in the handshake: the same secret on both ends makes a link;
//! another secret, or none on one side, is refused on both sides; and a handshake recorded
//! from a real client and replayed is refused (the server's nonce is new every time).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::raw::closed_within;
use common::{probe, WAIT};
use netsvc::prelude::*;
use netsvc::wire::Frame;
use netsvc::{ConnectionState, Exchange, ExchangeConfig, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

fn secret(text: &str) -> Option<Secret> {
    Some(Secret::new(text.as_bytes()).unwrap())
}

fn config(secret: Option<Secret>) -> ExchangeConfig {
    ExchangeConfig {
        secret,
        ..ExchangeConfig::default()
    }
}

/// A server with a calculator and `secret`; its exchange and address.
async fn server(secret: Option<Secret>) -> (Node, Exchange, String) {
    let _ = probe();
    let node = Node::new("server");
    let x = Exchange::with_config(&node, config(secret)).unwrap();
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    node.spawn(Calculator);
    (node, x, addr)
}

/// Whether a client with `secret` gets an active link to `addr` within `limit`.
async fn linked(secret: Option<Secret>, addr: &str, limit: Duration) -> Option<Node> {
    let node = Node::new("client");
    let x = Exchange::with_config(&node, config(secret)).unwrap();
    let mut events = x.connections();
    x.connect(addr, None).forget();
    match tokio::time::timeout(limit, events.recv()).await {
        Ok(Ok(event)) if event.state == ConnectionState::Active => Some(node),
        _ => None,
    }
}

#[actix::test]
async fn the_same_secret_links_and_another_or_none_is_refused_on_both_sides() {
    let (_node, x, addr) = server(secret("correct horse battery staple")).await;
    let mut server_events = x.connections();
    let client = linked(secret("correct horse battery staple"), &addr, WAIT)
        .await
        .expect("the same secret links");
    let calc = loop {
        if let Some(b) = client.lookup_name("calculator").await.pop() {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        CalculatorClient::new(client.endpoint(&calc))
            .multiply(6, 7)
            .await,
        Ok(42)
    );
    let event = server_events.recv().await.unwrap();
    assert_eq!(event.state, ConnectionState::Active);
    // Another secret, or none: no link on either side.
    let limit = Duration::from_millis(800);
    assert!(linked(secret("wrong horse battery staple"), &addr, limit)
        .await
        .is_none());
    assert!(linked(None, &addr, limit).await.is_none());
    // And a client with a secret refuses a server without one.
    let (_open, _open_x, open_addr) = server(None).await;
    assert!(
        linked(secret("correct horse battery staple"), &open_addr, limit)
            .await
            .is_none()
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), server_events.recv())
            .await
            .is_err(),
        "the server made no other link"
    );
}

#[actix::test]
async fn a_recorded_handshake_replayed_is_refused() {
    let (_node, _x, addr) = server(secret("correct horse battery staple")).await;
    // A proxy between a real client and the server records what the client sends.
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap().to_string();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let (record, upstream) = (recorded.clone(), addr.clone());
    tokio::spawn(async move {
        let (mut client, _) = proxy.accept().await.unwrap();
        let mut server = TcpStream::connect(&upstream).await.unwrap();
        let (mut from_client, mut to_client) = client.split();
        let (mut from_server, mut to_server) = server.split();
        let up = async {
            let mut buf = [0u8; 4096];
            loop {
                let n = from_client.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                record.lock().unwrap().extend_from_slice(&buf[..n]);
                if to_server.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        let down = tokio::io::copy(&mut from_server, &mut to_client);
        let _ = tokio::join!(up, down);
    });
    let client = linked(secret("correct horse battery staple"), &proxy_addr, WAIT).await;
    assert!(
        client.is_some(),
        "the recorded client links through the proxy"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bytes = recorded.lock().unwrap().clone();
    assert!(!bytes.is_empty());

    // Replayed to the server: its Hello, its challenge and its proof, for an old nonce.
    let mut replay = TcpStream::connect(&addr).await.unwrap();
    replay.write_all(&bytes).await.unwrap();
    let frames = closed_within(&mut replay, WAIT)
        .await
        .expect("the replay is closed");
    assert!(
        frames.iter().any(
            |f| matches!(f, Frame::Refused { reason } if reason.contains("authentication failed"))
        ),
        "{frames:?}"
    );
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, Frame::ServiceAvailable(_))),
        "nothing was announced to the replay: {frames:?}"
    );
}
