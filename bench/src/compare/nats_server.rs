//! nats-server for the NATS side of `compare`: finding it, asking its version, starting it
//! on a free port of 127.0.0.1 (no configuration file, all defaults but TLS when asked).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::procs::{self, Proc};
use crate::roles::SETUP;

/// Where nats-server is: `explicit`, else `nats-server` on `PATH`, else Debian's
/// `/usr/sbin/nats-server`.
pub(crate) fn locate(explicit: Option<&PathBuf>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.clone())
        } else {
            Err(format!("--nats-server {}: no such file", path.display()))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([
            PathBuf::from("/usr/sbin/nats-server"),
            PathBuf::from("/usr/bin/nats-server"),
        ])
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "nats-server not found: install it (Debian: `apt-get install nats-server`) or pass \
             --nats-server PATH (or run only the netsvc side with --side netsvc)"
                .to_owned()
        })
}

/// `nats-server --version`, waited for at most 5 s.
pub(crate) fn version(binary: &Path) -> String {
    let binary = binary.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Command::new(binary).arg("--version").output());
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => "nats-server (version unknown)".to_owned(),
    }
}

/// Starts nats-server on 127.0.0.1 with a free port (with TLS on the certificates in
/// `tls`, if given); returns it and its client URL.
pub(crate) fn start(binary: &Path, tls: Option<&Path>) -> Result<(Proc, String), String> {
    let port = procs::free_port()?;
    let mut command = Command::new(binary);
    command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(dir) = tls {
        command.arg("--tls");
        command.arg("--tlscert").arg(dir.join("server.pem"));
        command.arg("--tlskey").arg(dir.join("server.key"));
    }
    let server = Proc::server("nats-server", command)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    procs::wait_listening(addr, SETUP).map_err(|e| format!("nats-server did not start: {e}"))?;
    Ok((server, format!("nats://127.0.0.1:{port}")))
}
