//! Child processes of `compare`, `soak` and `gateway`: started with piped stdio, read line by
//! line with bounded waits, and always killed and reaped when dropped (also on error paths and
//! panics); and their CPU time, counted once they are reaped.
//!
//! The line protocol of the role processes (their side of it is `roles.rs`) on stdout:
//!
//! * `READY` or `READY <detail>` — the role is connected and set up;
//! * `RESULT <json>` — its measured outcome;
//! * `ERROR <message>` — it failed (it also exits with a non-zero status).
//!
//! Any other line is ignored. The driver may write one line to a role's stdin, `GO`
//! ([`Proc::send`]), which a role started to wait for it takes as the signal to start
//! measuring. A role process also exits on its own when its stdin reaches end of file, so it
//! cannot outlive a driver that was killed without running its destructors.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A started child process. Dropping it kills and reaps the process.
pub(crate) struct Proc {
    /// A short name for messages (`"netsvc subscriber 3"`).
    name: String,
    /// The process.
    child: Child,
    /// Lines of its stdout, read by a helper thread (`None` when stdout is not captured).
    lines: Option<Receiver<String>>,
    /// Its stdin, kept open for as long as the process should live.
    stdin: Option<ChildStdin>,
}

impl Proc {
    /// Starts `command` with stdin and stdout piped (stdout read line by line) and stderr
    /// inherited, so a failing role's message reaches the terminal.
    pub(crate) fn role(name: impl Into<String>, mut command: Command) -> Result<Proc, String> {
        let name = name.into();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdin = child.stdin.take();
        let lines = child.stdout.take().map(|stdout| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        Ok(Proc {
            name,
            child,
            lines,
            stdin,
        })
    }

    /// Starts this executable, `exe`, again with `args`, as the role process `name` (see
    /// [`Proc::role`]); with `verbose`, says so on stderr with its pid.
    pub(crate) fn start_role(
        exe: &Path,
        name: String,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        verbose: bool,
    ) -> Result<Proc, String> {
        let mut command = Command::new(exe);
        command.args(args);
        let proc = Proc::role(name, command)?;
        if verbose {
            eprintln!("started {} (pid {})", proc.name(), proc.id());
        }
        Ok(proc)
    }

    /// Starts a foreign server (`nats-server`) with all of its stdio discarded.
    pub(crate) fn server(name: impl Into<String>, mut command: Command) -> Result<Proc, String> {
        let name = name.into();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Proc {
            name,
            child,
            lines: None,
            stdin: None,
        })
    }

    /// Writes `line` and a newline to the process's stdin, at once.
    pub(crate) fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: stdin is not piped", self.name))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("{}: cannot write to its stdin: {e}", self.name))
    }

    /// The process's name for messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Waits at most `limit` for a line `<tag>` or `<tag> <rest>` and returns `rest` (empty
    /// for a bare tag). Fails on an `ERROR` line, on the process exiting first, or on timeout.
    pub(crate) fn expect(&mut self, tag: &str, limit: Duration) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        let Some(lines) = &self.lines else {
            return Err(format!("{}: stdout is not captured", self.name));
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("ERROR") {
                        return Err(format!("{} failed: {}", self.name, rest.trim()));
                    }
                    if let Some(rest) = line.strip_prefix(tag) {
                        if rest.is_empty() || rest.starts_with(' ') {
                            return Ok(rest.trim().to_owned());
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no {tag} line within {:.0} s",
                        self.name,
                        limit.as_secs_f64()
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.exit_status(Duration::from_secs(2));
                    return Err(format!(
                        "{} exited ({status}) before printing {tag}",
                        self.name
                    ));
                }
            }
        }
    }

    /// The exit status, waiting at most `limit` for it.
    fn exit_status(&mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => return "still running".to_owned(),
                Err(e) => return format!("status unknown: {e}"),
            }
        }
    }

    /// The process id (for `perf record -p`).
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // `kill` is a no-op for a process that has already exited; `wait` reaps it. After
        // SIGKILL the wait is immediate.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Decodes the `RESULT` line `line` of a role; `what` names the role in the error.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(what: &str, line: &str) -> Result<T, String> {
    serde_json::from_str(line).map_err(|e| format!("bad {what} result {line:?}: {e}"))
}

/// CPU time (user + system), in µs, of this process's children that have been waited for,
/// from `/proc/self/stat` (`cutime` and `cstime`). Every process of a run is a child that is
/// reaped when the run ends, so the difference around a run is the CPU of its processes.
pub(crate) fn children_cpu_us() -> Result<u64, String> {
    cpu_us_of_self(16, 17)
}

/// CPU time (user + system), in µs, of this process so far, from `/proc/self/stat` (`utime`
/// and `stime`).
pub(crate) fn own_cpu_us() -> Result<u64, String> {
    cpu_us_of_self(14, 15)
}

/// The sum of fields `user` and `system` (1-based, as in proc(5)) of `/proc/self/stat`, in
/// µs: they count clock ticks of 10 ms (Linux's USER_HZ is 100 on every architecture it runs
/// this on).
fn cpu_us_of_self(user: usize, system: usize) -> Result<u64, String> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    // Fields after the command name (which may hold spaces), from field 3 (`state`) on.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("no ')' in /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |field: usize| -> Result<u64, String> {
        fields
            .get(field - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("no field {field} in /proc/self/stat"))
    };
    Ok((tick(user)? + tick(system)?) * 10_000)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Waits at most `limit` until something accepts TCP connections on `addr`.
pub(crate) fn wait_listening(addr: SocketAddr, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "nothing listens on {addr} after {:.0} s",
                limit.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
