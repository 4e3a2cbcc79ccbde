//! Per-call metrics through the [`metrics`] facade, seen from the caller: how many calls each
//! method of each service got from this node, how long they took, and how many failed, by
//! failure code. Off until [`enable`] is called, so that a node that exports nothing pays
//! one relaxed load per call and no clock read; on, a call costs two clock reads, a table
//! lookup under a lock and the recorder's own work (the handles are made once per method).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use metrics::{Counter, Histogram};

use crate::failure::Failure;

/// Calls: one per call finished, labelled `node`, `service`, `method`.
pub(crate) const CALLS: &str = "netsvc_calls_total";
/// Seconds from the call to its outcome, same labels.
pub(crate) const DURATION: &str = "netsvc_call_duration_seconds";
/// Calls that failed, same labels and `code` (the netsvc or application failure code).
pub(crate) const FAILURES: &str = "netsvc_call_failures_total";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Starts recording per-call metrics in every node of the process (see the module docs).
pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// The handles of one method of one service, and its labels for the failure counter.
struct Handles {
    calls: Counter,
    duration: Histogram,
    labels: [(&'static str, String); 3],
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles")
            .field("labels", &self.labels)
            .finish()
    }
}

/// The per-method handles of one node, by service name, then method: found without
/// allocating once made.
#[derive(Debug)]
pub(crate) struct CallMetrics {
    node: Arc<str>,
    table: Mutex<HashMap<String, HashMap<String, Arc<Handles>>>>,
}

/// One call being measured.
pub(crate) struct Measured {
    handles: Arc<Handles>,
    started: Instant,
}

impl CallMetrics {
    pub(crate) fn new(node: &str) -> Self {
        CallMetrics {
            node: node.into(),
            table: Mutex::new(HashMap::new()),
        }
    }

    /// A measure of a call of `method` of `service` starting now, if metrics are on.
    #[inline]
    pub(crate) fn start(&self, service: &str, method: &str) -> Option<Measured> {
        ENABLED.load(Ordering::Relaxed).then(|| Measured {
            handles: self.handles(service, method),
            started: Instant::now(),
        })
    }

    fn handles(&self, service: &str, method: &str) -> Arc<Handles> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handles) = table.get(service).and_then(|m| m.get(method)) {
            return handles.clone();
        }
        let labels = [
            ("node", self.node.to_string()),
            ("service", service.to_owned()),
            ("method", method.to_owned()),
        ];
        let handles = Arc::new(Handles {
            calls: metrics::counter!(CALLS, &labels),
            duration: metrics::histogram!(DURATION, &labels),
            labels,
        });
        table
            .entry(service.to_owned())
            .or_default()
            .insert(method.to_owned(), handles.clone());
        handles
    }
}

impl Measured {
    /// The call ended with `outcome`.
    pub(crate) fn finish<R>(self, outcome: &Result<R, Failure>) {
        let handles = &self.handles;
        handles.calls.increment(1);
        handles
            .duration
            .record(self.started.elapsed().as_secs_f64());
        if let Err(failure) = outcome {
            let [node, service, method] = handles.labels.clone();
            let labels = [node, service, method, ("code", failure.code.0.to_string())];
            metrics::counter!(FAILURES, &labels).increment(1);
        }
    }
}
