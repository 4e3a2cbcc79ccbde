//! The TLS options of the examples that join an exchange (each includes this file).

use std::path::PathBuf;

use netsvc::{ClientAuth, Exchange, ExchangeConfig, Node, Tls};

/// `--tls-ca FILE [--tls-cert FILE --tls-key FILE]`: TLS to the exchange server.
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
        let config = ExchangeConfig {
            tls,
            ..ExchangeConfig::default()
        };
        Exchange::with_config(node, config).expect("the default group is valid")
    }
}
