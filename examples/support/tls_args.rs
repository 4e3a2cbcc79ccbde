//! The TLS and shared-secret options of the examples that join an exchange, and their log
//! setup (each includes this file).

use std::path::PathBuf;

use netsvc::{ClientAuth, Exchange, ExchangeConfig, Node, Secret, Tls};

/// `--tls-ca FILE [--tls-cert FILE --tls-key FILE] [--secret-file FILE]`: TLS to the
/// exchange server, and its shared secret.
#[derive(clap::Args)]
pub(crate) struct TlsArgs {
    /// The CA (PEM) the exchange server's certificate must be signed by; turns TLS on.
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// This process's certificate (PEM), for a server that requires client certificates.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// A file holding the exchange's shared secret.
    #[arg(long, value_name = "FILE")]
    pub(crate) secret_file: Option<PathBuf>,
}

impl TlsArgs {
    /// An exchange of `node` with these options; a file that cannot be used ends the
    /// program with status 2 and the reason.
    pub(crate) fn exchange(&self, node: &Node) -> Exchange {
        let tls = Tls::from_files(
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
            self.tls_ca.as_deref(),
            ClientAuth::Optional,
        )
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
        let secret = self
            .secret_file
            .as_deref()
            .map(Secret::from_file)
            .transpose()
            .unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(2)
            });
        let config = ExchangeConfig {
            tls,
            secret,
            ..ExchangeConfig::default()
        };
        Exchange::with_config(node, config).expect("the default group is valid")
    }
}

/// Logs to stderr, coloured only on a terminal and never with `NO_COLOR` set, so a log
/// written to a file or a pipe is plain text.
pub(crate) fn init_logs() {
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}
