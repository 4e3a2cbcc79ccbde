//! nats-server for the NATS side of `compare`: finding it, asking its version, starting it
//! on a free port of 127.0.0.1 (all defaults but TLS when asked, and `max_payload` when
//! asked: nats-server has no flag for it, so then a one-line configuration file, written to
//! the temporary directory and removed once the server listens).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::procs::{self, Proc};
use crate::roles::SETUP;

/// Where nats-server is: `explicit`, else `nats-server` on `PATH`, else Debian's
/// `/usr/sbin/nats-server`; when it is nowhere and this process is root, it installs
/// Debian's package (`apt-get install -y nats-server`, after `apt-get update` if the first
/// attempt fails) and looks again.
pub(crate) fn locate(explicit: Option<&PathBuf>) -> Result<PathBuf, String> {
    match find(explicit) {
        Err(e) if explicit.is_none() && is_root() => {
            eprintln!("nats-server not found; installing Debian's package (apt-get install -y nats-server)");
            install().map_err(|why| format!("{e}; installing it failed: {why}"))?;
            find(None)
        }
        found => found,
    }
}

/// Whether this process runs as root (its real uid, from `/proc/self/status`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            == Some("0")
    })
}

/// `apt-get install -y nats-server`, with `apt-get update` first if that fails.
fn install() -> Result<(), String> {
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("apt-get: {e}"))
            .and_then(|s| {
                s.success()
                    .then_some(())
                    .ok_or_else(|| format!("apt-get {} exited with {s}", args.join(" ")))
            })
    };
    let install = [
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "nats-server",
    ];
    apt(&install).or_else(|_| apt(&["update", "-qq"]).and_then(|()| apt(&install)))
}

/// [`locate`] without installing.
fn find(explicit: Option<&PathBuf>) -> Result<PathBuf, String> {
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
            "nats-server not found: install it (Debian: `apt-get install nats-server`; as root \
             this command installs it itself) or pass --nats-server PATH (or run only the \
             netsvc side with --side netsvc)"
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
/// `tls`, if given; with `max_payload` bytes as its largest message, headers included,
/// instead of the default 1 MiB, if given); returns it and its client URL.
pub(crate) fn start(
    binary: &Path,
    tls: Option<&Path>,
    max_payload: Option<usize>,
) -> Result<(Proc, String), String> {
    let port = procs::free_port()?;
    let mut command = Command::new(binary);
    let config = max_payload
        .map(|bytes| Config::write(port, &format!("max_payload: {bytes}\n")))
        .transpose()?;
    if let Some(config) = &config {
        command.arg("-c").arg(&config.0);
    }
    // After -c: flags override the file.
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

/// A configuration file of nats-server, removed when dropped.
struct Config(PathBuf);

impl Config {
    /// Writes `text` to a file of its own for the server on `port`.
    fn write(port: u16, text: &str) -> Result<Config, String> {
        let path = std::env::temp_dir().join(format!(
            "netsvc-bench-nats-{}-{port}.conf",
            std::process::id()
        ));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Config(path))
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
