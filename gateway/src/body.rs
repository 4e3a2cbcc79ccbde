//! Reading a request body: its content type checked first, its size capped before anything
//! is buffered past the limit (a `Content-Length` over it is refused before reading).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use crate::error::HttpFailure;

/// The kind of body an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `application/json` (or any `+json` type).
    Json,
    /// `text/xml` or `application/xml`.
    Xml,
}

impl Kind {
    fn accepts(self, mime: &str) -> bool {
        let essence = mime
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match self {
            Kind::Json => essence == "application/json" || essence.ends_with("+json"),
            Kind::Xml => essence == "text/xml" || essence == "application/xml",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Json => "application/json",
            Kind::Xml => "text/xml",
        }
    }
}

/// The body of `req`, at most `limit` bytes (413 beyond), of `kind` (415 for another content
/// type; a request without one is taken as `kind`). Note that `curl --data` says
/// `application/x-www-form-urlencoded`: `curl --json` or `-H 'content-type: application/json'`
/// is what to use.
pub(crate) async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    kind: Kind,
    limit: usize,
) -> Result<Bytes, HttpFailure> {
    if let Some(value) = req.headers().get(header::CONTENT_TYPE) {
        let mime = value.to_str().unwrap_or("");
        if !kind.accepts(mime) {
            return Err(HttpFailure::bad_request(format!(
                "content type {mime:?} is not accepted here: send {}",
                kind.expected()
            ))
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
    }
    let too_large = || {
        HttpFailure::bad_request(format!("the body is over the limit of {limit} bytes"))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = BytesMut::with_capacity(announced.unwrap_or(0).min(limit));
    while let Some(chunk) = next(&mut payload).await {
        let chunk =
            chunk.map_err(|e| HttpFailure::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The next item of a stream.
pub(crate) async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}
