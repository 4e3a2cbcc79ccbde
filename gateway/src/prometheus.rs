//! `GET /metrics`: the process's metrics in the Prometheus text format. The core emits
//! through the `metrics` facade (see [`netsvc::telemetry`]); the first gateway of a process
//! installs a Prometheus recorder as the facade's global recorder and turns the per-call
//! metrics on. Each scrape first copies the gateway node's link counters and registry size
//! into it ([`netsvc::Node::emit_metrics`]), then renders. A program that installed a
//! recorder of its own keeps it: the gateway then answers `/metrics` with 404 and says why.

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use netsvc::ErrorCode;

use crate::error::{gateway_failure, HttpFailure};
use crate::Shared;

/// Call durations, in seconds: 50 µs to 10 s.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on the first call; `None` when another
/// recorder was installed first.
pub(crate) fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("netsvc_call_duration_seconds".into()),
                    BUCKETS,
                )
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    netsvc::telemetry::enable_call_metrics();
                    Some(handle)
                }
                Err(_) => {
                    tracing::warn!("another metrics recorder is installed: GET /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

/// `GET /metrics`.
pub(crate) async fn render(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let Some(handle) = handle() else {
        let failure = HttpFailure {
            status: StatusCode::NOT_FOUND,
            failure: gateway_failure(
                ErrorCode::SERVER_METHOD_UNAVAILABLE,
                "metrics are exported by the program's own recorder, not here",
            ),
        };
        return crate::http::refuse(&req, failure);
    };
    shared.router.node.emit_metrics().await;
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}
