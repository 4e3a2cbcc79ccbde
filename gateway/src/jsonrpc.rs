//! JSON-RPC 2.0 at `POST /jsonrpc` (<https://www.jsonrpc.org/specification>): method
//! `service.method` (split at the last dot: a method name has none), params by position or by
//! name, batches (their calls run concurrently; answers in request order), notifications
//! (run, never answered: a single one or a batch of only notifications is `204 No Content`).
//!
//! Errors: the reserved codes for what the specification names (−32700 parse error, −32600
//! invalid request, −32601 method not found — netsvc's 55 —, −32602 invalid params — 54 and
//! 56 —, −32603 internal error), and netsvc's own code for every other failure (46 no such
//! service, 47 timeout, an application's code), with `{"name", "origin", "details"}` in
//! `error.data` (and the description, when the message is the reserved one). Methods whose
//! name starts with `rpc.` are reserved by the specification and not found.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use netsvc::{ErrorCode, Failure};
use serde_json::{json, Value};

use crate::body::{self, Kind};
use crate::error::code_name;
use crate::http::{query, timeout};
use crate::route::Args;
use crate::Shared;

/// Most calls in one batch; a larger batch is one invalid-request error.
pub const MAX_BATCH: usize = 1024;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const INTERNAL_ERROR: i64 = -32603;

/// An error response.
fn error(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "error": error, "id": id })
}

/// A netsvc failure as a JSON-RPC error.
fn failure_error(id: Value, f: &Failure) -> Value {
    let data = json!({
        "name": code_name(f.code),
        "origin": f.origin,
        "details": f.details,
        "description": f.description,
    });
    match f.code {
        ErrorCode::SERVER_METHOD_UNAVAILABLE => {
            error(id, METHOD_NOT_FOUND, "Method not found", Some(data))
        }
        ErrorCode::SERVER_REQUEST_DECODING_ERROR | ErrorCode::SERVER_PARAMETERS_INCORRECT => {
            error(id, INVALID_PARAMS, "Invalid params", Some(data))
        }
        code => error(id, i64::from(code.0), &f.description, Some(data)),
    }
}

fn invalid(id: Value, why: &str) -> Value {
    error(
        id,
        INVALID_REQUEST,
        "Invalid Request",
        Some(json!({ "details": why })),
    )
}

/// `POST /jsonrpc`.
pub(crate) async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let limit = shared.config.body_limit;
    let query = match query(&req) {
        Ok(q) => q,
        Err(f) => return reply_refused(&req, f.status, &f.failure.description),
    };
    let timeout = match timeout(&query, shared.config.timeout) {
        Ok(t) => t,
        Err(f) => return reply_refused(&req, f.status, &f.failure.description),
    };
    let bytes = match body::read(&req, payload, Kind::Json, limit).await {
        Ok(b) => b,
        Err(f) => return reply_refused(&req, f.status, &f.failure.description),
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            tracing::info!("{} POST /jsonrpc: parse error: {e}", peer(&req));
            let body = error(
                Value::Null,
                PARSE_ERROR,
                "Parse error",
                Some(json!({ "details": e.to_string() })),
            );
            return HttpResponse::Ok().json(body);
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => {
            HttpResponse::Ok().json(invalid(Value::Null, "an empty batch"))
        }
        Value::Array(items) if items.len() > MAX_BATCH => HttpResponse::Ok().json(invalid(
            Value::Null,
            &format!(
                "a batch of {} calls, over the limit of {MAX_BATCH}",
                items.len()
            ),
        )),
        Value::Array(items) => {
            let handles: Vec<_> = items
                .into_iter()
                .map(|item| actix_rt::spawn(one(shared.clone(), item, timeout)))
                .collect();
            let mut answers = Vec::new();
            for handle in handles {
                match handle.await {
                    Ok(Some(answer)) => answers.push(answer),
                    Ok(None) => {}
                    Err(e) => answers.push(error(
                        Value::Null,
                        INTERNAL_ERROR,
                        "Internal error",
                        Some(json!({ "details": e.to_string() })),
                    )),
                }
            }
            if answers.is_empty() {
                HttpResponse::NoContent().finish()
            } else {
                HttpResponse::Ok().json(Value::Array(answers))
            }
        }
        item => match one(shared.clone(), item, timeout).await {
            Some(answer) => HttpResponse::Ok().json(answer),
            None => HttpResponse::NoContent().finish(),
        },
    }
}

fn peer(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "?".to_owned(), |a| a.to_string())
}

/// A request refused before it was parsed (query, content type, size): the HTTP status says
/// why, and the body is an invalid-request error.
fn reply_refused(req: &HttpRequest, status: StatusCode, why: &str) -> HttpResponse {
    tracing::info!("{} POST /jsonrpc: {}: {why}", peer(req), status.as_u16());
    HttpResponse::build(status).json(invalid(Value::Null, why))
}

/// One call of a request or batch: its answer, or `None` for a notification.
async fn one(shared: web::Data<Shared>, item: Value, timeout: Duration) -> Option<Value> {
    let Value::Object(mut call) = item else {
        return Some(invalid(Value::Null, "a call must be an object"));
    };
    let notification = !call.contains_key("id");
    let id = call.remove("id").unwrap_or(Value::Null);
    if !matches!(id, Value::Null | Value::String(_) | Value::Number(_)) {
        return Some(invalid(
            Value::Null,
            "id must be a string, a number or null",
        ));
    }
    if call.get("jsonrpc") != Some(&json!("2.0")) {
        return Some(invalid(id, "jsonrpc must be \"2.0\""));
    }
    let Some(Value::String(method)) = call.remove("method") else {
        return Some(invalid(id, "method must be a string"));
    };
    let args = match call.remove("params") {
        None => Args::Positional(Vec::new()),
        Some(Value::Array(items)) => Args::Positional(items),
        Some(Value::Object(map)) => Args::Named(map),
        Some(_) => return Some(invalid(id, "params must be an array or an object")),
    };
    let target = method
        .rsplit_once('.')
        .filter(|(s, m)| !s.is_empty() && !m.is_empty() && !method.starts_with("rpc."));
    let Some((service, name)) = target else {
        let why = format!("method {method:?} is not service.method");
        return (!notification).then(|| {
            error(
                id,
                METHOD_NOT_FOUND,
                "Method not found",
                Some(json!({ "details": why })),
            )
        });
    };
    let (service, name) = (service.to_owned(), name.to_owned());
    if notification {
        // Run, never answered; the HTTP answer does not wait for it.
        actix_rt::spawn(async move {
            if let Err(f) = shared.router.call(&service, &name, args, timeout).await {
                tracing::info!(
                    "JSON-RPC notification {service}.{name} failed: {}",
                    f.description
                );
            }
        });
        return None;
    }
    Some(
        match shared.router.call(&service, &name, args, timeout).await {
            Ok(result) => json!({ "jsonrpc": "2.0", "result": result, "id": id }),
            Err(f) => failure_error(id, &f),
        },
    )
}
