//! What goes wrong at the door, and how each protocol says it: the HTTP status map of the
//! JSON endpoints, the `{"error": …}` body, and the failures the gateway makes itself.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use netsvc::{ErrorCode, Failure};
use serde_json::json;

/// The origin of failures the gateway produces itself (bad HTTP input, a service outside the
/// exposed group).
pub const GATEWAY_ORIGIN: &str = "gateway";

/// The HTTP status of a failure, by its code (DESIGN §5): no such service → 503, timeout →
/// 504, no such method → 404, undecodable or wrong arguments → 400, anything else (an
/// application's own code, another server failure) → 500 with the code in the body.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::CLIENT_SERVICE_UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::CLIENT_REQUEST_TIMEOUT => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::SERVER_METHOD_UNAVAILABLE => StatusCode::NOT_FOUND,
        ErrorCode::SERVER_REQUEST_DECODING_ERROR | ErrorCode::SERVER_PARAMETERS_INCORRECT => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The name of a failure code: OSE's for netsvc's own, `APPLICATION_ERROR` otherwise (as the
/// command line prints it).
pub fn code_name(code: ErrorCode) -> &'static str {
    code.name().unwrap_or("APPLICATION_ERROR")
}

/// A failure as the JSON endpoints write it: `{"code", "name", "description", "origin",
/// "details"}` (the value of the body's `"error"`).
pub fn failure_json(failure: &Failure) -> serde_json::Value {
    json!({
        "code": failure.code.0,
        "name": code_name(failure.code),
        "description": failure.description,
        "origin": failure.origin,
        "details": failure.details,
    })
}

/// A failure made by the gateway itself.
pub(crate) fn gateway_failure(code: ErrorCode, description: impl Into<String>) -> Failure {
    Failure::new(code, description).with_origin(GATEWAY_ORIGIN)
}

/// A failed HTTP request: the failure for the body and the status to send it with (the
/// status map's, unless the HTTP layer knows better: 413 for a body over the limit, 415 for
/// a wrong content type).
#[derive(Debug, Clone)]
pub(crate) struct HttpFailure {
    pub(crate) status: StatusCode,
    pub(crate) failure: Failure,
}

impl HttpFailure {
    /// A bad request of the gateway's own making: 400, code 54.
    pub(crate) fn bad_request(description: impl Into<String>) -> Self {
        HttpFailure {
            status: StatusCode::BAD_REQUEST,
            failure: gateway_failure(ErrorCode::SERVER_REQUEST_DECODING_ERROR, description),
        }
    }

    /// The same failure with another status.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The `{"error": …}` response.
    pub(crate) fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(json!({ "error": failure_json(&self.failure) }))
    }
}

impl From<Failure> for HttpFailure {
    fn from(failure: Failure) -> Self {
        HttpFailure {
            status: status_of(failure.code),
            failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_map_is_designs() {
        let status = |c| status_of(ErrorCode(c)).as_u16();
        assert_eq!(status(46), 503);
        assert_eq!(status(47), 504);
        assert_eq!(status(55), 404);
        assert_eq!(status(54), 400);
        assert_eq!(status(56), 400);
        assert_eq!(status(57), 500);
        assert_eq!(status(100), 500);
        assert_eq!(code_name(ErrorCode(100)), "APPLICATION_ERROR");
        assert_eq!(code_name(ErrorCode(46)), "CLIENT_SERVICE_UNAVAILABLE");
    }
}
