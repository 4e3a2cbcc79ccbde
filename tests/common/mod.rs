//! Test support: a channel that services report into, with bounded waits.
#![allow(dead_code, unreachable_pub)]

pub mod raw;

use std::time::Duration;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);

/// A sink services write lines into, and the test reads from.
pub fn probe() -> (UnboundedSender<String>, Probe) {
    // Logs for failing tests: RUST_LOG=netsvc=debug cargo test ...
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (tx, rx) = unbounded_channel();
    (tx, Probe(rx))
}

pub struct Probe(pub UnboundedReceiver<String>);

impl Probe {
    /// The next line, or a panic naming what was expected after `WAIT`.
    pub async fn next(&mut self) -> String {
        match tokio::time::timeout(WAIT, self.0.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("probe closed"),
            Err(_) => panic!("nothing arrived within {WAIT:?}"),
        }
    }

    /// The next `n` lines.
    pub async fn take(&mut self, n: usize) -> Vec<String> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(self.next().await);
        }
        v
    }

    /// The next `n` lines, sorted (for things whose order is not promised).
    pub async fn take_sorted(&mut self, n: usize) -> Vec<String> {
        let mut v = self.take(n).await;
        v.sort();
        v
    }

    /// Skips lines until one equals `line` (panics after `WAIT`).
    pub async fn until(&mut self, line: &str) {
        loop {
            if self.next().await == line {
                return;
            }
        }
    }

    /// Asserts nothing arrives for `d`.
    pub async fn silent_for(&mut self, d: Duration) {
        if let Ok(Some(line)) = tokio::time::timeout(d, self.0.recv()).await {
            panic!("expected silence, got {line:?}");
        }
    }
}

/// The first service named `name` that `node` knows (local first, then the one known
/// longest), waiting for it up to `WAIT`.
pub async fn wait_for(node: &netsvc::Node, name: &str) -> netsvc::Binding {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(b) = node.lookup_name(name).await.into_iter().next() {
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never appeared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lets queued actor work run (a few scheduler turns plus a short sleep).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}
