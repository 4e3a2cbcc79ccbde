//! The web console at `GET /`: one page of static HTML, CSS and a little plain JavaScript,
//! embedded in the binary (no build step), that uses the gateway's own endpoints from the
//! browser: the registry's event stream for the services (live), `GET /services/{name}` and
//! `POST /call/{service}/{method}` for a service's methods and a form per method, a report
//! stream for a subscription, and `GET /nodes` (every few seconds) for nodes and links.
//!
//! The page asks only its own origin, so it works behind the door: a browser that passed HTTP
//! Basic authentication sends the credentials again with every request, event streams
//! included. A content security policy keeps it to its own scripts, styles and endpoints.

use actix_web::http::header;
use actix_web::HttpResponse;

/// The page.
const INDEX: &str = include_str!("console/index.html");
/// Its style sheet.
const CSS: &str = include_str!("console/console.css");
/// Its script.
const JS: &str = include_str!("console/console.js");

/// Only the gateway's own scripts, styles and endpoints; no inline code; the favicon is an
/// empty `data:` URL (no request for `/favicon.ico`).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// One embedded file. `no-cache`: a browser revalidates, so a new gateway's page shows at
/// once.
fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .body(body)
}

/// `GET /`: the page.
pub(crate) async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /console.css`.
pub(crate) async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /console.js`.
pub(crate) async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}
