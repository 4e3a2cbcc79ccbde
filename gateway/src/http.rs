//! The plain JSON endpoints: `POST /call/{service}/{method}`, `POST /publish/{subject}`,
//! `GET /services`, `GET /services/{name}` and `GET /nodes`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use netsvc::{ErrorCode, Lifetime, Location, NodeInfo, Subject};
use serde_json::{json, Value};

use crate::body::{self, Kind};
use crate::error::{gateway_failure, HttpFailure};
use crate::publisher::Publish;
use crate::route::Args;
use crate::Shared;

/// How long `GET /nodes` waits for each node.
const NODE_TIMEOUT: Duration = Duration::from_secs(2);

/// The query string as a map; a malformed one is a 400.
pub(crate) fn query(req: &HttpRequest) -> Result<HashMap<String, String>, HttpFailure> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| HttpFailure::bad_request(format!("malformed query string: {e}")))
}

/// The `?timeout=SECONDS` of a request, else the configured default.
pub(crate) fn timeout(
    query: &HashMap<String, String>,
    default: Duration,
) -> Result<Duration, HttpFailure> {
    match query.get("timeout") {
        None => Ok(default),
        Some(text) => text
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                HttpFailure::bad_request(format!(
                    "timeout must be a positive number of seconds, got {text:?}"
                ))
            }),
    }
}

/// Logs a failed request (one line naming the peer and the path) and answers it.
pub(crate) fn refuse(req: &HttpRequest, failure: HttpFailure) -> HttpResponse {
    let peer = req
        .peer_addr()
        .map_or_else(|| "?".to_owned(), |a| a.to_string());
    let f = &failure.failure;
    // The gateway's or netsvc's own trouble (a 500 of theirs) is a warning; a client's
    // mistake, a service that is not there or too slow, or a service's own failure is
    // information.
    let ours = f.origin == crate::error::GATEWAY_ORIGIN || f.origin == netsvc::NETSVC_ORIGIN;
    let line = format!(
        "{peer} {} {}: {} {} ({}): {}",
        req.method(),
        req.path(),
        failure.status.as_u16(),
        f.code.0,
        f.origin,
        f.description
    );
    if failure.status == actix_web::http::StatusCode::INTERNAL_SERVER_ERROR && ours {
        tracing::warn!("{line}");
    } else {
        tracing::info!("{line}");
    }
    failure.response()
}

/// `POST /call/{service}/{method}`: a JSON array (positional) or object (by name) of
/// arguments; `200 {"result": …}` or the status map with `{"error": …}`.
pub(crate) async fn call(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let Some((service, method)) = service_and_method(req.match_info().unprocessed()) else {
        return crate::unknown(req).await;
    };
    let (Some(service), Some(method)) = (decoded(service), decoded(method)) else {
        return crate::unknown(req).await;
    };
    if req.method() != actix_web::http::Method::POST {
        return crate::not_allowed::<true>(req).await;
    }
    match call_inner(&req, &service, &method, payload, &shared).await {
        // `{"result": …}` written straight from the result (no map built around it).
        Ok(result) => HttpResponse::Ok().json(CallResult { result: &result }),
        Err(failure) => refuse(&req, failure),
    }
}

/// The body of a call's `200`.
#[derive(serde::Serialize)]
struct CallResult<'a> {
    result: &'a Value,
}

/// A path segment percent-decoded, as actix-web's `Path` extractor decodes it; `None` when
/// it is not UTF-8.
fn decoded(segment: &str) -> Option<std::borrow::Cow<'_, str>> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
}

/// `/{service}/{method}` (what follows `/call`): both parts, neither empty, no third.
fn service_and_method(rest: &str) -> Option<(&str, &str)> {
    let (service, method) = rest.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

async fn call_inner(
    req: &HttpRequest,
    service: &str,
    method: &str,
    payload: web::Payload,
    shared: &Shared,
) -> Result<Value, HttpFailure> {
    let query = query(req)?;
    let timeout = timeout(&query, shared.config.timeout)?;
    let bytes = body::read(req, payload, Kind::Json, shared.config.body_limit).await?;
    let args = if bytes.iter().all(u8::is_ascii_whitespace) {
        Args::Positional(Vec::new())
    } else {
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| HttpFailure::bad_request(format!("malformed JSON: {e}")))?;
        Args::from_json(value)?
    };
    Ok(shared.router.call(service, method, args, timeout).await?)
}

/// `POST /publish/{subject}?lifetime=forever|none|SECONDS`: the JSON body published as a
/// report of the gateway's own service.
pub(crate) async fn publish(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    match publish_inner(&req, &path, payload, &shared).await {
        Ok(response) => response,
        Err(failure) => refuse(&req, failure),
    }
}

async fn publish_inner(
    req: &HttpRequest,
    subject: &str,
    payload: web::Payload,
    shared: &Shared,
) -> Result<HttpResponse, HttpFailure> {
    let query = query(req)?;
    let subject = Subject::new(subject)
        .map_err(|e| HttpFailure::bad_request(format!("invalid subject {subject:?}: {e}")))?;
    let lifetime = match query.get("lifetime").map(String::as_str) {
        None | Some("forever") => Lifetime::Forever,
        Some("none") => Lifetime::None,
        Some(seconds) => seconds
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .map(Lifetime::For)
            .ok_or_else(|| {
                HttpFailure::bad_request(format!(
                    "lifetime must be forever, none or a number of seconds, got {seconds:?}"
                ))
            })?,
    };
    let bytes = body::read(req, payload, Kind::Json, shared.config.body_limit).await?;
    let content: Value = serde_json::from_slice(&bytes)
        .map_err(|e| HttpFailure::bad_request(format!("malformed JSON: {e}")))?;
    let response = json!({
        "published": subject.as_str(),
        "publisher": shared.config.publisher.as_str(),
        "lifetime": match lifetime {
            Lifetime::Forever => json!("forever"),
            Lifetime::For(d) => json!(d.as_secs_f64()),
            _ => json!("none"),
        },
    });
    shared
        .publisher
        .send(Publish {
            subject,
            content,
            lifetime,
        })
        .await
        .map_err(|_| {
            HttpFailure::from(gateway_failure(
                ErrorCode::SERVER_RESOURCE_UNAVAILABLE,
                "the gateway's publisher has stopped",
            ))
        })?;
    Ok(HttpResponse::Ok().json(response))
}

/// One binding as the registry endpoints show it.
async fn binding_json(shared: &Shared, binding: &netsvc::Binding) -> Value {
    let groups: Vec<String> = shared
        .router
        .node
        .groups_of(binding.agent())
        .await
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    json!({
        "name": binding.name().as_str(),
        "agent": binding.agent().to_string(),
        "groups": groups,
        "audience": binding.audience().as_str(),
        "process": binding.process().to_string(),
        "node": shared.router.node_name(binding.process()).await,
        "location": match binding.location() {
            Location::Local => "local",
            _ => "remote",
        },
    })
}

/// `GET /services`: every exposed service, sorted by name then agent.
pub(crate) async fn services(shared: web::Data<Shared>) -> HttpResponse {
    let mut bindings = shared.router.all_exposed().await;
    bindings.sort_by(|a, b| (a.name().as_str(), a.agent()).cmp(&(b.name().as_str(), b.agent())));
    let mut out = Vec::with_capacity(bindings.len());
    for binding in &bindings {
        out.push(binding_json(&shared, binding).await);
    }
    HttpResponse::Ok().json(json!({ "services": out }))
}

/// `GET /services/{name}`: its bindings (in the order calls try them) and the descriptor of
/// the first.
pub(crate) async fn service(
    req: HttpRequest,
    name: web::Path<String>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let bindings = shared.router.exposed(&name).await;
    let Some(first) = bindings.first() else {
        return refuse(
            &req,
            gateway_failure(
                ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
                format!(
                    "no service named {:?} is available through this gateway",
                    *name
                ),
            )
            .into(),
        );
    };
    let descriptor = match shared.router.descriptor(first, shared.config.timeout).await {
        Ok(d) => d,
        Err(f) => return refuse(&req, f.into()),
    };
    let mut out = Vec::with_capacity(bindings.len());
    for binding in &bindings {
        out.push(binding_json(&shared, binding).await);
    }
    let methods: Vec<Value> = descriptor
        .methods
        .iter()
        .map(|m| {
            let mut v = serde_json::to_value(m).unwrap_or_default();
            v["signature"] = json!(m.signature());
            v
        })
        .collect();
    let mut descriptor = serde_json::to_value(&*descriptor).unwrap_or_default();
    descriptor["methods"] = Value::Array(methods);
    HttpResponse::Ok().json(json!({
        "name": name.as_str(),
        "bindings": out,
        "descriptor": descriptor,
    }))
}

/// `GET /nodes`: the introspection of every node reachable from the gateway's, by its links,
/// breadth first (as `netsvc list nodes` walks them); a node that does not answer in time is
/// left out.
pub(crate) async fn nodes(shared: web::Data<Shared>) -> HttpResponse {
    let node = &shared.router.node;
    let mut all: Vec<NodeInfo> = Vec::new();
    let mut queue = VecDeque::from([node.process()]);
    let mut asked = BTreeSet::from([node.process()]);
    while let Some(process) = queue.pop_front() {
        let Ok(Ok(info)) = tokio::time::timeout(NODE_TIMEOUT, node.introspect(process)).await
        else {
            continue;
        };
        for link in &info.links {
            if asked.insert(link.peer_process) {
                queue.push_back(link.peer_process);
            }
        }
        all.push(info);
    }
    HttpResponse::Ok().json(json!({
        "gateway": node.process().to_string(),
        "nodes": all,
    }))
}

#[cfg(test)]
mod tests {
    use super::{decoded, service_and_method};

    #[test]
    fn a_call_path_has_a_service_and_a_method() {
        assert_eq!(
            service_and_method("/calculator/multiply"),
            Some(("calculator", "multiply"))
        );
        for rest in [
            "",
            "/",
            "/calculator",
            "/calculator/",
            "//multiply",
            "/a/b/c",
            "x/y",
        ] {
            assert_eq!(service_and_method(rest), None, "{rest:?}");
        }
        assert_eq!(decoded("%24describe").as_deref(), Some("$describe"));
        assert_eq!(decoded("%ff"), None);
    }
}
