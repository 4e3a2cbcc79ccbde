//! What the bridges of one exchange share: its node, settings, counters, links and
//! announcements, and a server's admission of connections under its [`Limits`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::config::{ConnectionEvent, ExchangeConfig, Limits};
use crate::delivery::Link;
use crate::names::GroupName;
use crate::node::Node;
use crate::transport::Counters;

/// Connections a server is serving, for [`Limits`]: taken on accept, handed back when the
/// bridge ends (a [`Slot`] dropped).
#[derive(Default)]
pub(crate) struct Admission {
    total: usize,
    pending: usize,
    /// Connections, and those of them still in their handshake, per address.
    per_address: std::collections::HashMap<std::net::IpAddr, (usize, usize)>,
    /// Connections refused so far (logged at powers of two, so a flood does not flood the log).
    refused: u64,
}

/// One accepted connection's share of the server's [`Limits`]. Dropped with its bridge.
pub(crate) struct Slot {
    shared: Arc<Mutex<Admission>>,
    ip: std::net::IpAddr,
    pending: bool,
}

impl Slot {
    /// The handshake completed: the connection no longer counts as pending.
    pub(crate) fn handshake_done(&mut self) {
        if std::mem::take(&mut self.pending) {
            let mut admission = lock(&self.shared);
            admission.pending -= 1;
            if let Some((_, pending)) = admission.per_address.get_mut(&self.ip) {
                *pending -= 1;
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut admission = lock(&self.shared);
        admission.total -= 1;
        if self.pending {
            admission.pending -= 1;
        }
        if let Some((total, pending)) = admission.per_address.get_mut(&self.ip) {
            *total -= 1;
            if self.pending {
                *pending -= 1;
            }
            if *total == 0 {
                admission.per_address.remove(&self.ip);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes a slot for a connection from `peer`, or says which limit refuses it.
pub(crate) fn admit(
    admission: &Arc<Mutex<Admission>>,
    limits: &Limits,
    peer: SocketAddr,
) -> Result<Slot, String> {
    let mut a = lock(admission);
    let ip = peer.ip();
    let (from_here, pending_here) = a.per_address.get(&ip).copied().unwrap_or((0, 0));
    let refusal = if a.total >= limits.connections {
        Some(format!("{} connections already (the limit)", a.total))
    } else if a.pending >= limits.pending_handshakes {
        Some(format!(
            "{} connections still in their handshake (the limit)",
            a.pending
        ))
    } else if from_here >= limits.connections_per_address {
        Some(format!(
            "{from_here} connections from {ip} already (the limit per address)"
        ))
    } else if pending_here >= limits.pending_per_address {
        Some(format!(
            "{pending_here} connections from {ip} still in their handshake (the limit per address)"
        ))
    } else {
        None
    };
    if let Some(reason) = refusal {
        a.refused += 1;
        return Err(if a.refused.is_power_of_two() {
            format!("{reason}; {} refused so far", a.refused)
        } else {
            String::new()
        });
    }
    a.total += 1;
    a.pending += 1;
    let here = a.per_address.entry(ip).or_default();
    here.0 += 1;
    here.1 += 1;
    Ok(Slot {
        shared: admission.clone(),
        ip,
        pending: true,
    })
}

/// What the bridges of one exchange share.
pub(crate) struct ExchangeShared {
    pub(crate) node: Node,
    pub(crate) config: ExchangeConfig,
    pub(crate) group: Option<GroupName>,
    pub(crate) events: broadcast::Sender<ConnectionEvent>,
    pub(crate) hub: AtomicBool,
    pub(crate) counters: Arc<Counters>,
    pub(crate) links: Mutex<Vec<Link>>,
}

impl ExchangeShared {
    pub(crate) fn group_name(&self) -> &str {
        &self.config.group
    }

    pub(crate) fn is_hub(&self) -> bool {
        self.hub.load(Ordering::Relaxed)
    }

    pub(crate) fn announce(&self, event: ConnectionEvent) {
        let _ = self.events.send(event);
    }

    pub(crate) fn remember_link(&self, link: &Link) {
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(link.clone());
    }

    pub(crate) fn forget_link(&self, link: &Link) {
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|l| !l.same(link));
    }
}
