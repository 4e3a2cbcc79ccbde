//! XML-RPC at `POST /RPC2` (methodName `service.method`, as Python's
//! `xmlrpc.client.ServerProxy(url).calculator.multiply(6, 7)` sends it) and
//! `POST /xmlrpc/{service}` (OSE's mapping: the service from the path, methodName = method).
//! dxr is the codec; the values are mapped to and from JSON here, both directions side by
//! side ([`to_json`], [`from_json`]).
//!
//! | XML-RPC | JSON |
//! |---|---|
//! | `i4`, `int`, `i8` | number (an integer that fits `i4` is sent as `i4`, a larger one as `i8`) |
//! | `double` | number |
//! | `boolean`, `string` | boolean, string |
//! | `base64` | array of byte values (as serde writes a `Vec<u8>`) |
//! | `dateTime.iso8601` | string, `20261202T06:10:00` |
//! | `array`, `struct` | array, object |
//! | `nil` | `null` |
//!
//! A value with no XML-RPC equivalent (an integer beyond `i8`) is sent as a string, as OSE
//! did. A failure is a fault: `faultCode` the netsvc code, `faultString`
//! `"origin -- description"`, then a blank line and the details when there are any. A call
//! answers `200` with a response or a fault; a body that is not an XML-RPC call is `400`, a
//! body over the limit `413` and another content type than XML `415`, each with a fault.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use netsvc::{ErrorCode, Failure};
use serde_json::Value;

use crate::body::{self, Kind};
use crate::error::{gateway_failure, HttpFailure};
use crate::http::{query, timeout};
use crate::route::Args;
use crate::Shared;

/// An XML-RPC value as JSON.
pub(crate) fn to_json(value: dxr::Value) -> Value {
    match value {
        dxr::Value::Integer(i) => Value::from(i),
        dxr::Value::Long(l) => Value::from(l),
        dxr::Value::Boolean(b) => Value::Bool(b),
        dxr::Value::String(s) => Value::String(s),
        dxr::Value::Double(d) => serde_json::Number::from_f64(d)
            .map_or_else(|| Value::String(d.to_string()), Value::Number),
        dxr::Value::DateTime(dt) => Value::String(dt.to_string()),
        dxr::Value::Base64(bytes) => Value::Array(bytes.into_iter().map(Value::from).collect()),
        dxr::Value::Struct(members) => {
            Value::Object(members.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
        dxr::Value::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        dxr::Value::Nil => Value::Null,
        // dxr may grow value types; none is known yet, so this is unreachable today.
        #[allow(unreachable_patterns)]
        _ => Value::Null,
    }
}

/// A JSON value as XML-RPC.
pub(crate) fn from_json(value: &Value) -> dxr::Value {
    match value {
        Value::Null => dxr::Value::Nil,
        Value::Bool(b) => dxr::Value::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                match i32::try_from(i) {
                    Ok(small) => dxr::Value::Integer(small),
                    Err(_) => dxr::Value::Long(i),
                }
            } else if n.is_u64() {
                // Beyond i8: no XML-RPC equivalent.
                dxr::Value::String(n.to_string())
            } else {
                dxr::Value::Double(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => dxr::Value::String(s.clone()),
        Value::Array(items) => dxr::Value::Array(items.iter().map(from_json).collect()),
        Value::Object(map) => {
            dxr::Value::Struct(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// A failure as a fault: the netsvc code, and `"origin -- description"` followed by a blank
/// line and the details when there are any.
pub(crate) fn fault_of(failure: &Failure) -> dxr::Fault {
    let mut text = format!("{} -- {}", failure.origin, failure.description);
    if !failure.details.is_empty() {
        text.push_str("\n\n");
        text.push_str(&failure.details);
    }
    dxr::Fault::new(i32::try_from(failure.code.0).unwrap_or(i32::MAX), text)
}

/// A fault response with this status.
fn fault_response(status: StatusCode, failure: &Failure) -> HttpResponse {
    let xml = dxr::FaultResponse {
        fault: fault_of(failure),
    }
    .to_xml()
    .unwrap_or_default();
    HttpResponse::build(status)
        .content_type("text/xml; charset=utf-8")
        .body(format!("<?xml version=\"1.0\"?>\n{xml}"))
}

/// `POST /RPC2`.
pub(crate) async fn rpc2(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    handle(req, payload, shared, None).await
}

/// `POST /xmlrpc/{service}`.
pub(crate) async fn by_service(
    req: HttpRequest,
    service: web::Path<String>,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    handle(req, payload, shared, Some(service.into_inner())).await
}

async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
    service: Option<String>,
) -> HttpResponse {
    match call(&req, payload, &shared, service).await {
        Ok(value) => {
            let xml = dxr::MethodResponse {
                value: from_json(&value),
            }
            .to_xml();
            match xml {
                Ok(xml) => HttpResponse::Ok()
                    .content_type("text/xml; charset=utf-8")
                    .body(format!("<?xml version=\"1.0\"?>\n{xml}")),
                Err(e) => {
                    let f = gateway_failure(
                        ErrorCode::SERVER_RESPONSE_ENCODING_ERROR,
                        format!("the result cannot be written as XML-RPC: {e}"),
                    );
                    tracing::warn!("{} {}: {}", peer(&req), req.path(), f.description);
                    fault_response(StatusCode::OK, &f)
                }
            }
        }
        Err(HttpFailure { status, failure }) => {
            tracing::info!(
                "{} {}: fault {} ({}): {}",
                peer(&req),
                req.path(),
                failure.code.0,
                failure.origin,
                failure.description
            );
            fault_response(status, &failure)
        }
    }
}

fn peer(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "?".to_owned(), |a| a.to_string())
}

/// Reads and makes the call. A call's own failure is a fault with `200` (what XML-RPC clients
/// expect); what is wrong with the HTTP request keeps its status.
async fn call(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &Shared,
    service: Option<String>,
) -> Result<Value, HttpFailure> {
    let query = query(req)?;
    let timeout = timeout(&query, shared.config.timeout)?;
    let bytes = body::read(req, payload, Kind::Xml, shared.config.body_limit).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| HttpFailure::bad_request(format!("the body is not UTF-8: {e}")))?;
    let call = dxr::MethodCall::from_xml(text)
        .map_err(|_| HttpFailure::bad_request("the body is not an XML-RPC methodCall"))?;
    let name = call.name.into_owned();
    let (service, method) = match service {
        Some(service) => (service, name),
        None => match name.rsplit_once('.') {
            Some((s, m)) if !s.is_empty() && !m.is_empty() => (s.to_owned(), m.to_owned()),
            _ => {
                return Err(HttpFailure::from(gateway_failure(
                    ErrorCode::SERVER_METHOD_UNAVAILABLE,
                    format!("methodName {name:?} is not service.method"),
                ))
                .with_status(StatusCode::OK))
            }
        },
    };
    let args = Args::Positional(call.params.into_iter().map(to_json).collect());
    shared
        .router
        .call(&service, &method, args, timeout)
        .await
        .map_err(|f| HttpFailure::from(f).with_status(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_map_both_ways() {
        let json = json!({"a": 1, "big": 10_000_000_000_i64, "f": 2.5, "s": "x", "b": true,
                          "n": null, "list": [1, "two"]});
        let xml = from_json(&json);
        let dxr::Value::Struct(members) = &xml else {
            panic!("{xml:?}")
        };
        assert_eq!(members["a"], dxr::Value::Integer(1));
        assert_eq!(members["big"], dxr::Value::Long(10_000_000_000));
        assert_eq!(members["n"], dxr::Value::Nil);
        assert_eq!(to_json(xml), json);
        assert_eq!(
            from_json(&json!(u64::MAX)),
            dxr::Value::String(u64::MAX.to_string())
        );
        assert_eq!(to_json(dxr::Value::Base64(vec![1, 2])), json!([1, 2]));
        let dt: dxr::DateTime = "20261202T06:10:00".parse().unwrap();
        assert_eq!(
            to_json(dxr::Value::DateTime(dt)),
            json!("20261202T06:10:00")
        );
    }

    #[test]
    fn a_fault_says_origin_description_and_details() {
        let f = Failure::new(ErrorCode(100), "division by zero")
            .with_origin("calculator")
            .with_details("1 / 0");
        let fault = fault_of(&f);
        assert_eq!(fault.code(), 100);
        assert_eq!(fault.string(), "calculator -- division by zero\n\n1 / 0");
        let bare = fault_of(&Failure::new(ErrorCode(46), "gone").with_origin("netsvc"));
        assert_eq!(bare.string(), "netsvc -- gone");
    }

    #[test]
    fn a_python_call_parses() {
        let xml = "<?xml version='1.0'?>\n<methodCall>\n<methodName>calculator.multiply</methodName>\n<params>\n<param>\n<value><int>6</int></value>\n</param>\n<param>\n<value><int>7</int></value>\n</param>\n</params>\n</methodCall>\n";
        let call = dxr::MethodCall::from_xml(xml).unwrap();
        assert_eq!(call.name, "calculator.multiply");
        let args: Vec<Value> = call.params.into_iter().map(to_json).collect();
        assert_eq!(args, vec![json!(6), json!(7)]);
    }
}
