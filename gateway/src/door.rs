//! Security at the door: which hosts may talk to the gateway (OSE's host authorisation) and
//! who they are (HTTP Basic with a login hook, or bearer tokens), checked before any endpoint
//! runs; and the allow-lists and credential files the command line reads.
//!
//! A refused host gets `403`, missing or wrong credentials `401` with a `WWW-Authenticate`
//! challenge per configured scheme; both with the `{"error": …}` body (code 53, request
//! headers invalid) and a log line naming the peer's address (never a password or token).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use base64::Engine;
use netsvc::ErrorCode;
use ring::hmac;
use ring::rand::SystemRandom;

use crate::error::{gateway_failure, HttpFailure};
use crate::Shared;

/// Decides whether the gateway serves a client, by its socket address.
pub type AuthoriseHost = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;
/// Decides whether an HTTP Basic login and password are valid (OSE's `authorise`).
pub type AuthoriseUser = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;
/// Decides whether a bearer token (`Authorization: Bearer T`) is valid.
pub type AuthoriseToken = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The realm of the `WWW-Authenticate` challenges.
pub const REALM: &str = "netsvc";

/// A credential file or allow-list entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoorError {
    /// The file cannot be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A line or entry is malformed.
    #[error("{what} {line}: {reason}")]
    Malformed {
        /// What was read (`"host"`, or the file and line).
        what: String,
        /// The line's number (1 for an entry given alone).
        line: usize,
        /// Why.
        reason: String,
    },
    /// A file has no entry.
    #[error("{0}: no entry")]
    Empty(String),
}

/// An IP address or a network (`10.0.0.0/8`, `fd00::/8`) that hosts may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `ADDR` (a single host) or `ADDR/PREFIX`.
    pub fn parse(text: &str) -> Result<Network, DoorError> {
        let bad = |reason: String| DoorError::Malformed {
            what: format!("host {text:?}"),
            line: 1,
            reason,
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|e| bad(format!("not an IP address: {e}")))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad(format!("the prefix must be 0 to {max}")))?,
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
        a & mask == b & mask
    }
}

/// An allow-list of hosts, for [`GatewayConfig::authorise_host`](crate::GatewayConfig):
/// what `--allow-host` builds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostList(Vec<Network>);

impl HostList {
    /// The list of these addresses and networks.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<HostList, DoorError> {
        entries
            .iter()
            .map(|e| Network::parse(e.as_ref()))
            .collect::<Result<_, _>>()
            .map(HostList)
    }

    /// Whether a host at `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The list as a hook.
    pub fn into_hook(self) -> AuthoriseHost {
        Arc::new(move |addr| self.allows(addr.ip()))
    }
}

/// Secrets as kept: their HMAC-SHA256 tags under a key made at start, never the secrets.
/// Checking one is `ring::hmac::verify`, a constant-time comparison of tags.
#[derive(Clone)]
struct Sealed {
    key: hmac::Key,
}

impl Sealed {
    fn new() -> Sealed {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .expect("the system's random generator works");
        Sealed { key }
    }

    fn seal(&self, secret: &str) -> hmac::Tag {
        hmac::sign(&self.key, secret.as_bytes())
    }

    fn is(&self, secret: &str, tag: &hmac::Tag) -> bool {
        hmac::verify(&self.key, secret.as_bytes(), tag.as_ref()).is_ok()
    }
}

/// The meaningful lines of a credential file: trimmed, without blanks and `#` comments, with
/// their numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn read(path: &Path) -> Result<String, DoorError> {
    std::fs::read_to_string(path).map_err(|e| DoorError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Logins and passwords (`--basic-auth-file`): lines `login:password`, `#` comments. Only
/// keyed tags are kept; every check compares with every entry in constant time.
#[derive(Clone)]
pub struct Passwords {
    sealed: Sealed,
    entries: Vec<(hmac::Tag, hmac::Tag)>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Passwords({} logins)", self.entries.len())
    }
}

impl Passwords {
    /// Parses the text of a file named `what` (for messages).
    pub fn parse(text: &str, what: &str) -> Result<Passwords, DoorError> {
        let sealed = Sealed::new();
        let mut out = Vec::new();
        for (line, entry) in lines(text) {
            let malformed = |reason: &str| DoorError::Malformed {
                what: format!("{what} line"),
                line,
                reason: reason.to_owned(),
            };
            let (login, password) = entry
                .split_once(':')
                .ok_or_else(|| malformed("expected login:password"))?;
            if login.is_empty() || password.is_empty() {
                return Err(malformed("the login and the password must not be empty"));
            }
            out.push((sealed.seal(login), sealed.seal(password)));
        }
        if out.is_empty() {
            return Err(DoorError::Empty(what.to_owned()));
        }
        Ok(Passwords {
            sealed,
            entries: out,
        })
    }

    /// Reads and parses a file.
    pub fn from_file(path: &Path) -> Result<Passwords, DoorError> {
        Passwords::parse(&read(path)?, &path.display().to_string())
    }

    /// Whether `login` and `password` are an entry's.
    pub fn check(&self, login: &str, password: &str) -> bool {
        self.entries.iter().fold(false, |found, (l, p)| {
            // Every comparison runs: no early exit to time.
            let hit = self.sealed.is(login, l) & self.sealed.is(password, p);
            found | hit
        })
    }

    /// The passwords as a hook.
    pub fn into_hook(self) -> AuthoriseUser {
        Arc::new(move |login, password| self.check(login, password))
    }
}

/// Bearer tokens (`--token-file`): one per line, `#` comments. Only keyed tags are kept.
#[derive(Clone)]
pub struct Tokens {
    sealed: Sealed,
    tokens: Vec<hmac::Tag>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({})", self.tokens.len())
    }
}

impl Tokens {
    /// Parses the text of a file named `what` (for messages).
    pub fn parse(text: &str, what: &str) -> Result<Tokens, DoorError> {
        let sealed = Sealed::new();
        let mut out = Vec::new();
        for (line, token) in lines(text) {
            if token.chars().any(char::is_whitespace) {
                return Err(DoorError::Malformed {
                    what: format!("{what} line"),
                    line,
                    reason: "a token has no blank inside".to_owned(),
                });
            }
            out.push(sealed.seal(token));
        }
        if out.is_empty() {
            return Err(DoorError::Empty(what.to_owned()));
        }
        Ok(Tokens {
            sealed,
            tokens: out,
        })
    }

    /// Reads and parses a file.
    pub fn from_file(path: &Path) -> Result<Tokens, DoorError> {
        Tokens::parse(&read(path)?, &path.display().to_string())
    }

    /// Whether `token` is one of them.
    pub fn check(&self, token: &str) -> bool {
        self.tokens
            .iter()
            .fold(false, |found, t| found | self.sealed.is(token, t))
    }

    /// The tokens as a hook.
    pub fn into_hook(self) -> AuthoriseToken {
        Arc::new(move |token| self.check(token))
    }
}

/// Why a request is turned away at the door.
fn refusal(shared: &Shared, req: &ServiceRequest) -> Option<HttpFailure> {
    let config = &shared.config;
    let refuse = |status, description: String| HttpFailure {
        status,
        failure: gateway_failure(ErrorCode::SERVER_REQUEST_HEADERS_INVALID, description),
    };
    if let Some(authorise) = &config.authorise_host {
        match req.peer_addr() {
            Some(peer) if authorise(peer) => {}
            peer => {
                let peer = peer.map_or_else(|| "an unknown address".to_owned(), |p| p.to_string());
                return Some(refuse(
                    StatusCode::FORBIDDEN,
                    format!("host {peer} is not allowed"),
                ));
            }
        }
    }
    if config.authorise_user.is_none() && config.authorise_token.is_none() {
        return None;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let Some(given) = given else {
        return Some(refuse(
            StatusCode::UNAUTHORIZED,
            "credentials are required".to_owned(),
        ));
    };
    let (scheme, value) = given.trim().split_once(' ').unwrap_or((given, ""));
    let value = value.trim();
    let ok = if scheme.eq_ignore_ascii_case("basic") {
        config.authorise_user.as_ref().is_some_and(|authorise| {
            base64::engine::general_purpose::STANDARD
                .decode(value)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|pair| {
                    let (login, password) = pair.split_once(':')?;
                    Some(authorise(login, password))
                })
                .unwrap_or(false)
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        config
            .authorise_token
            .as_ref()
            .is_some_and(|authorise| !value.is_empty() && authorise(value))
    } else {
        false
    };
    (!ok).then(|| {
        // The scheme is the client's text: only the known ones are repeated in the log.
        let why = if scheme.eq_ignore_ascii_case("basic") {
            "the basic credentials are not valid"
        } else if scheme.eq_ignore_ascii_case("bearer") {
            "the bearer token is not valid"
        } else {
            "the authorization scheme is not supported: send basic or bearer"
        };
        refuse(StatusCode::UNAUTHORIZED, why.to_owned())
    })
}

/// The door: every request passes here before its endpoint.
pub(crate) async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(shared) = req.app_data::<web::Data<Shared>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let Some(failure) = refusal(&shared, &req) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let mut response = crate::http::refuse(req.request(), failure.clone());
    if failure.status == StatusCode::UNAUTHORIZED {
        let headers = response.headers_mut();
        if shared.config.authorise_user.is_some() {
            let basic = format!("Basic realm=\"{REALM}\", charset=\"UTF-8\"");
            if let Ok(v) = HeaderValue::from_str(&basic) {
                headers.append(header::WWW_AUTHENTICATE, v);
            }
        }
        if shared.config.authorise_token.is_some() {
            let bearer = format!("Bearer realm=\"{REALM}\"");
            if let Ok(v) = HeaderValue::from_str(&bearer) {
                headers.append(header::WWW_AUTHENTICATE, v);
            }
        }
    }
    Ok(req.into_response(response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_hosts_only() {
        let net = |t| Network::parse(t).unwrap();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!net("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(net("::/0").contains(ip("fd00::1")));
        assert!(net("fd00::/8").contains(ip("fd12::1")));
        assert!(!net("fd00::/8").contains(ip("fe80::1")));
        assert!(net("127.0.0.1").contains(ip("::ffff:127.0.0.1")), "mapped");
        assert!(!net("::1").contains(ip("127.0.0.1")));
        for bad in ["10.0.0.0/33", "::/129", "host", "10.0.0.0/x", ""] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credential_files_are_checked_line_by_line() {
        let p = Passwords::parse("# people\nada:lovelace\n\n bob : pa:ss \n", "f").unwrap();
        assert!(p.check("ada", "lovelace"));
        assert!(
            p.check("bob ", " pa:ss"),
            "split at the first colon, inner blanks kept"
        );
        assert!(!p.check("ada", "lovelacE"));
        assert!(!p.check("bob", "lovelace"));
        let e = Passwords::parse("ada:x\nnocolon\n", "f").unwrap_err();
        assert!(e.to_string().contains("f line 2"), "{e}");
        assert!(matches!(
            Passwords::parse("# none\n", "f"),
            Err(DoorError::Empty(_))
        ));
        let t = Tokens::parse("# tokens\nabc\n def \n", "t").unwrap();
        assert!(t.check("abc") && t.check("def") && !t.check("ab"));
        assert!(Tokens::parse("a b\n", "t").is_err());
    }
}
