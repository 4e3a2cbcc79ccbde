//! What a node tells the [`metrics`] facade. Like `tracing`, the library only emits; the
//! program chooses the recorder (the gateway renders a Prometheus one at `GET /metrics`).
//! Without a recorder every metric goes nowhere.
//!
//! | metric | kind | labels | when |
//! |---|---|---|---|
//! | `netsvc_link_frames_in_total`, `netsvc_link_bytes_in_total` | counter | `node`, `peer`, `address`, `group` | [`Node::emit_metrics`] |
//! | `netsvc_link_frames_out_total`, `netsvc_link_bytes_out_total` | counter | same | same |
//! | `netsvc_link_reports_dropped_total` (reports the peer's full buffer did not take) | counter | same | same |
//! | `netsvc_link_reports_conflated_total` (reports of a conflated subscription the peer's full buffer replaced by a later one) | counter | same | same |
//! | `netsvc_links` | gauge | `node` | same |
//! | `netsvc_registry_services` (services the node knows, its own included) | gauge | `node` | same |
//! | `netsvc_local_services` (its own) | gauge | `node` | same |
//! | `netsvc_calls_total` | counter | `node`, `service`, `method` | per call, once [`enable_call_metrics`] was called |
//! | `netsvc_call_duration_seconds` | histogram | same | same |
//! | `netsvc_call_failures_total` | counter | same and `code` | same |
//!
//! The link and registry figures are the counters the node keeps anyway, copied into the
//! facade when asked (a scrape): they cost nothing between scrapes. The call metrics are
//! seen from the caller, so a gateway's show the calls made through it.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};

use crate::node::Node;

/// Starts recording the per-call metrics (see the [module](self) docs) in every node of the
/// process. Off by default: a node that exports nothing should not pay a clock read per call.
pub fn enable_call_metrics() {
    crate::request::enable_call_metrics();
}

fn describe() {
    describe_counter!(
        "netsvc_link_frames_in_total",
        "Frames received over an exchange link"
    );
    describe_counter!(
        "netsvc_link_bytes_in_total",
        Unit::Bytes,
        "Bytes received over an exchange link"
    );
    describe_counter!(
        "netsvc_link_frames_out_total",
        "Frames written to an exchange link"
    );
    describe_counter!(
        "netsvc_link_bytes_out_total",
        Unit::Bytes,
        "Bytes written to an exchange link"
    );
    describe_counter!(
        "netsvc_link_reports_dropped_total",
        "Reports dropped because the peer's outbound buffer was full"
    );
    describe_counter!(
        "netsvc_link_reports_conflated_total",
        "Reports the peer's full outbound buffer replaced by a later one of a conflated subscription"
    );
    describe_gauge!(
        "netsvc_links",
        "Exchange links that completed the handshake"
    );
    describe_gauge!(
        "netsvc_registry_services",
        "Services known to the node's registry, its own included"
    );
    describe_gauge!("netsvc_local_services", "The node's own services");
    describe_counter!("netsvc_calls_total", "Calls made from this node, by method");
    describe_histogram!(
        "netsvc_call_duration_seconds",
        Unit::Seconds,
        "Time from a call to its outcome"
    );
    describe_counter!(
        "netsvc_call_failures_total",
        "Calls that failed, by failure code"
    );
}

impl Node {
    /// Copies this node's link counters and registry size into the [`metrics`] facade (see
    /// [`crate::telemetry`]); a program exporting metrics calls it before each scrape.
    pub async fn emit_metrics(&self) {
        describe();
        let node = self.name().to_owned();
        let links: Vec<_> = self
            .announcer()
            .links()
            .into_iter()
            .filter(|l| !l.is_duplicate())
            .filter_map(|l| l.info())
            .collect();
        for link in &links {
            let labels = [
                ("node", node.clone()),
                ("peer", link.peer_node.clone()),
                ("address", link.address.clone()),
                ("group", link.group.clone()),
            ];
            counter!("netsvc_link_frames_in_total", &labels).absolute(link.frames_in);
            counter!("netsvc_link_bytes_in_total", &labels).absolute(link.bytes_in);
            counter!("netsvc_link_frames_out_total", &labels).absolute(link.frames_out);
            counter!("netsvc_link_bytes_out_total", &labels).absolute(link.bytes_out);
            counter!("netsvc_link_reports_dropped_total", &labels).absolute(link.reports_dropped);
            counter!("netsvc_link_reports_conflated_total", &labels)
                .absolute(link.reports_conflated);
        }
        let labels = [("node", node)];
        gauge!("netsvc_links", &labels).set(links.len() as f64);
        let services = self.services().await;
        let local = services.iter().filter(|b| b.link().is_none()).count();
        gauge!("netsvc_registry_services", &labels).set(services.len() as f64);
        gauge!("netsvc_local_services", &labels).set(local as f64);
    }
}
