//! What every client verb shares: joining the mesh through one exchange server, the exit
//! codes, and the output (tables for people, one JSON object per line for programs).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use netsvc::{
    ClientAuth, ConnectionEvent, ConnectionState, ErrorCode, Exchange, ExchangeConfig,
    ExchangeError, Failure, Node, NodeInfo, Secret, ServiceName, Tls,
};

/// The exchange server a client verb joins when neither `--connect` nor `NETSVC_CONNECT`
/// says otherwise.
pub(crate) const DEFAULT_CONNECT: &str = "127.0.0.1:11111";

/// How a verb ends, as its exit status. The numeric ones of netsvc's failures are the
/// failure codes themselves, so a script can tell "no such service" (46, nothing was
/// delivered) from "timeout" (47, it may have been).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// An application failure (a code the service chose), or another failure.
    Failed,
    /// Bad command-line input: malformed JSON, an invalid name, subject or pattern.
    Usage,
    /// No exchange server answered at the address (or within the connect timeout).
    Unreachable,
    /// The exchange server refused the connection: handshake, TLS or authentication.
    Refused,
    /// A netsvc failure code: 46 no such service, 47 timeout, 54/56 bad arguments, 55 no
    /// such method, ...
    Code(u8),
}

impl Exit {
    /// The exit status for a request's failure: its own code for netsvc's client and
    /// server codes (40–58), [`Exit::Failed`] for an application's.
    pub(crate) fn of(failure: &Failure) -> Exit {
        match u8::try_from(failure.code.0) {
            Ok(code @ 40..=58) => Exit::Code(code),
            _ => Exit::Failed,
        }
    }
}

impl Exit {
    /// The process's exit status.
    pub(crate) fn status(self) -> u8 {
        match self {
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Unreachable => 3,
            Exit::Refused => 4,
            Exit::Code(code) => code,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.status())
    }
}

/// A verb's error: what to print (one line) and how to exit.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) exit: Exit,
    pub(crate) message: String,
}

impl CliError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Usage,
            message: message.into(),
        }
    }
}

impl From<Failure> for CliError {
    fn from(failure: Failure) -> Self {
        CliError {
            exit: Exit::of(&failure),
            message: describe_failure(&failure),
        }
    }
}

/// A failure as the command line prints it: code, name, description, origin and details.
pub(crate) fn describe_failure(f: &Failure) -> String {
    let mut line = format!("failed: {} {}", f.code.0, code_name(f.code));
    line.push_str(&format!(": {} (origin {})", f.description, f.origin));
    if !f.details.is_empty() {
        line.push_str(&format!("; details: {}", f.details));
    }
    line
}

/// The name of a failure code: OSE's for netsvc's own, `APPLICATION_ERROR` otherwise.
pub(crate) fn code_name(code: ErrorCode) -> &'static str {
    code.name().unwrap_or("APPLICATION_ERROR")
}

/// A service name given on the command line: valid, and not empty (the empty name is the
/// anonymous one, which nobody can be found by).
pub(crate) fn service_name(flag: &str, text: &str) -> Result<ServiceName, CliError> {
    match ServiceName::new(text) {
        Ok(name) if !name.is_anonymous() => Ok(name),
        Ok(_) => Err(CliError::usage(format!(
            "{flag} needs a name: services are found by name, and the empty name is nobody's"
        ))),
        Err(e) => Err(CliError::usage(format!("invalid {flag} {text:?}: {e}"))),
    }
}

/// A number of seconds given as `flag` on the command line; zero only if `allow_zero`.
pub(crate) fn seconds(flag: &str, value: f64, allow_zero: bool) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| allow_zero || !d.is_zero())
        .ok_or_else(|| {
            let what = if allow_zero {
                "a number"
            } else {
                "a positive number"
            };
            CliError::usage(format!("{flag} must be {what} of seconds, got {value}"))
        })
}

/// `--connect` and the security options of every client verb.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ConnectArgs {
    /// The exchange server to join.
    #[arg(long, value_name = "HOST:PORT", env = "NETSVC_CONNECT", default_value = DEFAULT_CONNECT)]
    pub(crate) connect: String,
    /// Seconds to wait for the exchange server (TCP and handshake).
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    pub(crate) connect_timeout: f64,
    /// The exchange group to join (default: the default group).
    #[arg(long, value_name = "GROUP", default_value = "")]
    pub(crate) exchange_group: String,
    /// The CA (PEM) the exchange server's certificate must be signed by; turns TLS on.
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// This client's certificate (PEM), for a server that requires client certificates.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// A file holding the exchange's shared secret.
    #[arg(long, value_name = "FILE")]
    pub(crate) secret_file: Option<PathBuf>,
}

/// This process in the mesh: its node, joined to one exchange server.
pub(crate) struct Client {
    pub(crate) node: Node,
    /// Kept for the life of the verb (its counters and events live here).
    pub(crate) _exchange: Exchange,
    /// This side's address of the link to the exchange server, and the exchange's
    /// connection events, for [`Client::lost`].
    link: (
        std::net::SocketAddr,
        tokio::sync::broadcast::Receiver<ConnectionEvent>,
    ),
}

impl Client {
    /// Resolves when the link to the exchange server is lost (this tool does not reconnect):
    /// a verb that follows the mesh ends then, with [`Exit::Unreachable`].
    pub(crate) async fn lost(&mut self) -> CliError {
        let (local, events) = &mut self.link;
        loop {
            match events.recv().await {
                Ok(e) if e.state == ConnectionState::Inactive && e.local_addr == *local => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
        CliError {
            exit: Exit::Unreachable,
            message: "lost the link to the exchange server".into(),
        }
    }
}

impl ConnectArgs {
    fn timeout(&self) -> Result<Duration, CliError> {
        seconds("--connect-timeout", self.connect_timeout, false)
    }

    /// A node named `name` joined to the exchange server, once its registry has taken in
    /// what the server announced (see [`settle`]).
    pub(crate) async fn join(&self, name: &str) -> Result<Client, CliError> {
        let node = Node::new(name);
        let exchange = self.exchange(&node)?;
        let events = exchange.connections();
        let hub = self.connect(&exchange).await?;
        settle(&node).await;
        Ok(Client {
            node,
            _exchange: exchange,
            link: (hub.local_addr, events),
        })
    }

    /// An exchange of `node` with these options.
    pub(crate) fn exchange(&self, node: &Node) -> Result<Exchange, CliError> {
        let timeout = self.timeout()?;
        let tls = Tls::from_files(
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
            self.tls_ca.as_deref(),
            ClientAuth::Optional,
        )
        .map_err(|e| CliError::usage(e.to_string()))?;
        let secret = self
            .secret_file
            .as_deref()
            .map(Secret::from_file)
            .transpose()
            .map_err(|e| CliError::usage(e.to_string()))?;
        let config = ExchangeConfig {
            group: self.exchange_group.clone(),
            tls,
            secret,
            connect_timeout: timeout,
            handshake_timeout: timeout,
            ..ExchangeConfig::default()
        };
        Exchange::with_config(node, config).map_err(|e| CliError::usage(e.to_string()))
    }

    /// Connects `exchange` to the server, once.
    pub(crate) async fn connect(&self, exchange: &Exchange) -> Result<ConnectionEvent, CliError> {
        let addr = &self.connect;
        exchange.connect_once(addr).await.map_err(|e| {
            let exit = match &e {
                ExchangeError::Io(_) => Exit::Unreachable,
                ExchangeError::Closed(reason) if reason.contains("no handshake") => {
                    Exit::Unreachable
                }
                _ => Exit::Refused,
            };
            CliError {
                exit,
                message: format!("cannot join the exchange at {addr}: {e}"),
            }
        })
    }
}

/// Waits until the registry has taken in the server's initial announcements: they arrive
/// in a burst right after the handshake, so until no new service has appeared for 100 ms
/// (at most 2 s). A heuristic, not a barrier: a service that appears later is still seen
/// by the verbs that watch.
pub(crate) async fn settle(node: &Node) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut seen = node.services().await.len();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = node.services().await.len();
        if now == seen || tokio::time::Instant::now() >= deadline {
            return;
        }
        seen = now;
    }
}

/// Every node reachable from `node`, by its links: `node` itself first, then each peer of
/// each node found, breadth first. A node that does not answer within `timeout` is left
/// out (its peers are still found through the others).
pub(crate) async fn nodes(node: &Node, timeout: Duration) -> Vec<NodeInfo> {
    let mut all = Vec::new();
    let mut queue = std::collections::VecDeque::from([node.process()]);
    let mut asked = std::collections::BTreeSet::from([node.process()]);
    while let Some(process) = queue.pop_front() {
        let call = node.introspect(process);
        let Ok(Ok(info)) = tokio::time::timeout(timeout, call).await else {
            continue;
        };
        for link in &info.links {
            if asked.insert(link.peer_process) {
                queue.push_back(link.peer_process);
            }
        }
        all.push(info);
    }
    all
}

/// Output: a table for people, or one JSON object per line with `--json`.
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: Vec<&'static str>) -> Self {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The table as text, columns aligned, no borders (so it pastes and greps well).
    pub(crate) fn render(&self) -> String {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::NOTHING)
            .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
            .set_header(self.header.clone());
        for row in &self.rows {
            table.add_row(row.clone());
        }
        table
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Prints one JSON value on its own line.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_its_columns_without_borders() {
        let mut table = Table::new(vec!["NAME", "GROUPS"]);
        table.row(vec!["calculator".into(), "arithmetic".into()]);
        table.row(vec!["publisher".into(), "".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].trim_start().starts_with("NAME"));
        let column = lines[0].find("GROUPS").unwrap();
        assert_eq!(lines[1].find("arithmetic"), Some(column), "{text}");
        assert!(lines[2].trim_start().starts_with("publisher"));
        assert!(!text.contains('|') && !text.contains('+'));
    }

    #[test]
    fn netsvc_codes_are_exit_statuses_and_application_codes_are_one() {
        let code = |c| Exit::of(&Failure::new(ErrorCode(c), "x")).status();
        assert_eq!(code(46), 46);
        assert_eq!(code(47), 47);
        assert_eq!(code(55), 55);
        assert_eq!(code(100), 1);
        assert_eq!(code(4000), 1);
        assert_eq!(code_name(ErrorCode(47)), "CLIENT_REQUEST_TIMEOUT");
        assert_eq!(code_name(ErrorCode(100)), "APPLICATION_ERROR");
    }
}
