//! A raw exchange peer over a real socket: it speaks frames directly, as an attacker would.

use std::time::Duration;

use bytes::BytesMut;
use netsvc::wire::{Frame, FrameCodec, Hello, ServiceInfo, PROTOCOL_VERSION};
use netsvc::{AgentId, ProcessId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};

/// One frame as it goes on the wire, length prefix included.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    FrameCodec::default().encode(frame, &mut buf).unwrap();
    buf.to_vec()
}

/// A `Hello` of this protocol version from `process`, in the default exchange group.
pub fn hello_from(version: u32, process: ProcessId) -> Frame {
    Frame::Hello(Hello {
        version,
        process,
        node: "raw".into(),
        group: String::new(),
        hub: false,
    })
}

/// Reads frames until the peer closes the connection; `None` if it is still open after
/// `limit`. Returns the frames seen.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<Frame>> {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(frames),
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                while let Ok(Some(frame)) = codec.decode(&mut buf) {
                    frames.push(frame);
                }
            }
        }
    }
}

/// A raw peer that completed its handshake with a server.
pub struct RawPeer {
    pub stream: TcpStream,
    codec: FrameCodec,
    buf: BytesMut,
    /// Every service the server announced so far, in order.
    pub announced: Vec<ServiceInfo>,
}

impl RawPeer {
    /// Connects to `addr` and says hello as `process`.
    pub async fn connect(addr: &str, process: ProcessId) -> RawPeer {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(&encode(&hello_from(PROTOCOL_VERSION, process)))
            .await
            .unwrap();
        RawPeer {
            stream,
            codec: FrameCodec::default(),
            buf: BytesMut::new(),
            announced: Vec::new(),
        }
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &Frame) {
        self.stream.write_all(&encode(frame)).await.unwrap();
    }

    /// Announces an anonymous agent of its own, visible everywhere, and returns it.
    pub async fn announce_self(&mut self) -> AgentId {
        let me = AgentId::random();
        let info = ServiceInfo {
            agent: me,
            name: String::new(),
            audience: "*".into(),
            process: ProcessId::random(),
            groups: vec![],
        };
        self.send(&Frame::ServiceAvailable(info)).await;
        me
    }

    /// The next frame within `limit` (recording announcements), or `None`.
    pub async fn next(&mut self, limit: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(Some(frame)) = self.codec.decode(&mut self.buf) {
                if let Frame::ServiceAvailable(info) = &frame {
                    self.announced.push(info.clone());
                }
                return Some(frame);
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// Reads until the server has announced a service named `name`; its agent.
    pub async fn agent_named(&mut self, name: &str) -> AgentId {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            if let Some(info) = self.announced.iter().find(|i| i.name == name) {
                return info.agent;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                self.next(left).await.is_some(),
                "{name} was never announced"
            );
        }
    }

    /// Reads until a frame matches `wanted` (within `WAIT`); the frame.
    pub async fn until(&mut self, mut wanted: impl FnMut(&Frame) -> bool) -> Frame {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self
                .next(left)
                .await
                .expect("the awaited frame within WAIT");
            if wanted(&frame) {
                return frame;
            }
        }
    }
}
