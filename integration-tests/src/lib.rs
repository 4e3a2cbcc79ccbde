//! Support for tests that start real netsvc processes: a child process that is killed when
//! dropped, its stdout read line by line with bounded waits (each line stamped with the moment
//! it arrived), lines written to its stdin, and signals sent by PID; helpers for the lines the
//! `node` binary prints, for file-descriptor limits and resident memory; and [`netns`], network
//! namespaces for tests that need a network they can break.

pub mod netns;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Whether `line` has `needle`: anywhere in it, or, for a needle that starts with `^`, at its
/// start (`^connected` does not find `disconnected ...`).
fn found(line: &str, needle: &str) -> bool {
    match needle.strip_prefix('^') {
        Some(start) => line.starts_with(start),
        None => line.contains(needle),
    }
}

/// A running child process; killed and reaped when dropped. The methods that look for lines
/// take a needle: a line has it if it contains it, or, for a needle that starts with `^`, if it
/// starts with the rest.
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<(Instant, String)>,
    seen: Vec<String>,
    /// When each line of `seen` arrived (read by the reader thread).
    arrived: Vec<Instant>,
    /// Index in `seen` of the first line [`Process::expect_line`] has not passed yet.
    cursor: usize,
}

impl Process {
    /// Starts `program` with `args`, stdout piped and read on a thread.
    pub fn start(program: &str, args: &[&str]) -> Process {
        let mut command = Command::new(program);
        command.args(args);
        Process::spawn(command)
    }

    /// Starts a prepared command with stdin and stdout piped (stderr is inherited); stdout is
    /// read on a thread.
    pub fn spawn(mut command: Command) -> Process {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdin = child.stdin.take();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            arrived: Vec::new(),
            cursor: 0,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads what arrived (without waiting) into the lines seen so far.
    fn pump(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.push(line);
        }
    }

    fn push(&mut self, (at, line): (Instant, String)) {
        self.arrived.push(at);
        self.seen.push(line);
    }

    /// Waits (at most `limit`) for a line containing `needle` after the last line this
    /// method returned; panics with everything seen. Lines before it are passed over (they stay
    /// in [`Process::seen`]).
    pub fn expect_line(&mut self, needle: &str, limit: Duration) -> String {
        self.expect_line_at(needle, limit).0
    }

    /// [`Process::expect_line`], also returning when the line arrived.
    pub fn expect_line_at(&mut self, needle: &str, limit: Duration) -> (String, Instant) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = self.seen[self.cursor..]
                .iter()
                .position(|l| found(l, needle))
            {
                self.cursor += at + 1;
                return (
                    self.seen[self.cursor - 1].clone(),
                    self.arrived[self.cursor - 1],
                );
            }
            self.cursor = self.seen.len();
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no line with {needle:?} within {limit:?}; saw {:#?}",
                        self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("output ended before {needle:?}; saw {:#?}", self.seen)
                }
            }
        }
    }

    /// Waits (at most `limit`) until `count` lines containing `needle` have been seen since the
    /// process started (earlier lines count too); returns them.
    pub fn expect_count(&mut self, needle: &str, count: usize, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let matching = self.matching(needle);
            if matching.len() >= count {
                return matching;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.push(line),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{} line(s) with {needle:?} within {limit:?}, wanted {count}; saw {:#?}",
                    matching.len(),
                    self.seen
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "output ended before {count} line(s) with {needle:?}; saw {:#?}",
                        self.seen
                    )
                }
            }
        }
    }

    /// Waits (at most `limit`) for the `nth` line (counting from 1, since the process started)
    /// containing `needle`; returns it and when it arrived.
    pub fn expect_nth(&mut self, needle: &str, nth: usize, limit: Duration) -> (String, Instant) {
        assert!(nth >= 1, "lines are counted from 1");
        self.expect_count(needle, nth, limit);
        self.timed(needle).swap_remove(nth - 1)
    }

    /// Waits (at most `limit`) for a line containing `needle` that arrived after `after`;
    /// returns the first such line and when it arrived.
    pub fn expect_after(
        &mut self,
        needle: &str,
        after: Instant,
        limit: Duration,
    ) -> (String, Instant) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = self.timed(needle).into_iter().find(|(_, at)| *at > after) {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line with {needle:?} within {limit:?} after the given instant; saw {:#?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("output ended before {needle:?}; saw {:#?}", self.seen)
                }
            }
        }
    }

    /// Every line seen so far (including what has arrived and not been read yet) that
    /// contains `needle`.
    pub fn matching(&mut self, needle: &str) -> Vec<String> {
        self.pump();
        self.seen
            .iter()
            .filter(|l| found(l, needle))
            .cloned()
            .collect()
    }

    /// [`Process::matching`], each line with when it arrived.
    pub fn timed(&mut self, needle: &str) -> Vec<(String, Instant)> {
        self.pump();
        self.seen
            .iter()
            .zip(&self.arrived)
            .filter(|(l, _)| found(l, needle))
            .map(|(l, at)| (l.clone(), *at))
            .collect()
    }

    /// Every line seen so far, including what has arrived and not been read yet.
    pub fn seen(&mut self) -> &[String] {
        self.pump();
        &self.seen
    }

    /// Reads for `period` (or until the output closes), then returns every line seen.
    pub fn collect_for(&mut self, period: Duration) -> Vec<String> {
        self.rest_of_output(period)
    }

    /// Every line read so far plus what is left until the output closes (bounded).
    pub fn rest_of_output(&mut self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.push(line),
                Err(_) => return self.seen.clone(),
            }
        }
    }

    /// Writes one line to the process's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("stdin of {}: {e}", self.pid()));
    }

    /// Sends a signal by name (`INT`, `TERM`, `KILL`, ...) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status();
        assert!(
            status.map(|s| s.success()).unwrap_or(false),
            "kill -{name} {} failed",
            self.pid()
        );
    }

    /// Kills the process with SIGKILL and waits (bounded) until it has exited.
    pub fn kill_hard(&mut self) {
        self.signal("KILL");
        self.wait_exit(Duration::from_secs(5));
    }

    /// Waits (at most `limit`) for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                panic!("process {} did not exit within {limit:?}", self.pid());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read, released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// The last whitespace-separated word of a line, as a socket address (for lines such as
/// `listening default 127.0.0.1:40123`).
pub fn addr_in(line: &str) -> SocketAddr {
    let word = line.split_whitespace().last().unwrap_or_default();
    word.parse()
        .unwrap_or_else(|e| panic!("no socket address at the end of {line:?}: {e}"))
}

/// Starts `program` with `args` until it prints `listening default <addr>` on `addr` exactly
/// (`extra` are further arguments, e.g. services). A port picked free a moment ago can be taken
/// meanwhile (an outgoing connection's ephemeral port); then it tries again, for at most `limit`.
pub fn listen_on(
    program: &str,
    name: &str,
    addr: &str,
    extra: &[&str],
    limit: Duration,
) -> Process {
    listen_on_with(|| Command::new(program), name, addr, extra, limit)
}

/// [`listen_on`] with a command prepared by `command` (a program in a namespace, say, or with
/// other environment), to which the arguments are added.
pub fn listen_on_with(
    command: impl Fn() -> Command,
    name: &str,
    addr: &str,
    extra: &[&str],
    limit: Duration,
) -> Process {
    let deadline = Instant::now() + limit;
    loop {
        let mut cmd = command();
        cmd.args(["--name", name, "--listen", addr]).args(extra);
        let mut process = Process::spawn(cmd);
        let line = process.expect_line("listen", limit);
        if line.starts_with("listening default") {
            return process;
        }
        assert!(Instant::now() < deadline, "cannot listen on {addr}: {line}");
        drop(process);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The milliseconds in a line `... in <ms> ms ...` (a requester's or pinger's outcome).
pub fn elapsed_ms(line: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "in")
        .unwrap_or_else(|| panic!("no elapsed time in {line:?}"));
    words[at + 1]
        .parse()
        .unwrap_or_else(|e| panic!("elapsed time in {line:?}: {e}"))
}

/// The sequence numbers of the `system.time` reports a subscriber printed, in order.
pub fn time_sequence(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| {
            l.split_once("system.time = seq=")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The largest gap between `from`, the instants of `times` inside `from..=to`, and `to`.
pub fn largest_gap(from: Instant, times: &[Instant], to: Instant) -> Duration {
    let mut points: Vec<Instant> = times
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .collect();
    points.sort();
    let mut last = from;
    let mut gap = Duration::ZERO;
    for t in points.into_iter().chain([to]) {
        gap = gap.max(t.duration_since(last));
        last = t;
    }
    gap
}

/// The resident set size of a process, in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The number of open file descriptors of a process (entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The soft and hard limits on open files a child started now gets (`ulimit -n` and
/// `ulimit -Hn` in `sh`; `unlimited` as `u64::MAX`).
pub fn fd_limits() -> (u64, u64) {
    let read = |flag: &str| -> u64 {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit {flag}"))
            .output()
            .expect("sh runs");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if text == "unlimited" {
            u64::MAX
        } else {
            text.parse()
                .unwrap_or_else(|e| panic!("ulimit {flag} printed {text:?}: {e}"))
        }
    };
    (read("-n"), read("-Hn"))
}

/// A command running `program` with its soft limit on open files raised to `files`, through
/// `sh`'s `ulimit -n`, which then `exec`s the program (so the child's PID is the program's).
/// `files` must not exceed the hard limit (see [`fd_limits`]).
pub fn with_fd_limit(program: &str, files: u64) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
        .arg(program);
    command
}

/// Holds the one lock of this test binary for tests that measure timings: while it is held,
/// no other such test runs (the test harness runs a binary's tests on parallel threads, and
/// two tests loading the same two cores would measure each other). A test that failed while
/// holding it does not stop the others.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The publisher's binding (`publisher/<agent>`), from its first line (`publisher <binding>
/// ctime <ctime>`), waited for at most `limit`.
pub fn publisher_binding(publisher: &mut Process, limit: Duration) -> String {
    let line = publisher.expect_line("ctime", limit);
    line.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected publisher line {line:?}"))
        .to_owned()
}

/// Asserts that `seq` counts up by one: no report twice, none missing in between.
pub fn assert_consecutive(who: &str, seq: &[u64]) {
    assert!(!seq.is_empty(), "{who} received no system.time");
    for pair in seq.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{who}: system.time reports out of sequence: {seq:?}"
        );
    }
}

/// Asserts what a healthy client saw between `from` and `to`: every `system.time` report in
/// sequence, every ping of the service `pinged` answered (none failed, none slower than a
/// second), and neither kind of traffic stopped for a second or more. For a client that has
/// printed no report at all (one without `--subscriber`), only pings are checked. Returns a
/// summary for the log.
pub fn assert_healthy(client: &mut Process, pinged: &str, from: Instant, to: Instant) -> String {
    let inside = |lines: Vec<(String, Instant)>| -> Vec<(String, Instant)> {
        lines
            .into_iter()
            .filter(|(_, at)| *at >= from && *at <= to)
            .collect()
    };
    let all_reports = client.timed("system.time = seq=");
    let subscribed = !all_reports.is_empty();
    let reports = inside(all_reports);
    let pings = inside(client.timed(&format!("^ping {pinged} ")));
    let failed: Vec<&String> = pings
        .iter()
        .map(|(l, _)| l)
        .filter(|l| !l.contains(" ok 1 in "))
        .collect();
    assert!(failed.is_empty(), "pings of {pinged} failed: {failed:#?}");
    let slowest = pings.iter().map(|(l, _)| elapsed_ms(l)).max().unwrap_or(0);
    assert!(slowest < 1_000, "a ping of {pinged} took {slowest} ms");
    let ping_gap = largest_gap(
        from,
        &pings.iter().map(|(_, at)| *at).collect::<Vec<_>>(),
        to,
    );
    assert!(
        ping_gap < Duration::from_secs(1),
        "pings of {pinged} stopped for {ping_gap:?}"
    );
    let mut summary = format!(
        "{} pings of {pinged} all answered (slowest {slowest} ms, largest gap {ping_gap:?})",
        pings.len()
    );
    if subscribed {
        let lines: Vec<String> = reports.iter().map(|(l, _)| l.clone()).collect();
        assert_consecutive("a healthy client", &time_sequence(&lines));
        let report_gap = largest_gap(
            from,
            &reports.iter().map(|(_, at)| *at).collect::<Vec<_>>(),
            to,
        );
        assert!(
            report_gap < Duration::from_secs(1),
            "reports stopped for {report_gap:?}"
        );
        summary = format!(
            "{} reports in sequence (largest gap {report_gap:?}), {summary}",
            reports.len()
        );
    }
    summary
}

/// A binary of the workspace's target directory, by its path relative to the directory of
/// `anchor`, a binary of this crate (`env!("CARGO_BIN_EXE_node")` in a test): the `netsvc`
/// binary is `"netsvc"`, the calculator example `"examples/calculator"`. Panics, saying how to
/// build it, when it is not there: `cargo test --workspace` builds them all before any test.
pub fn built_beside(anchor: &str, relative: &str) -> String {
    let path = std::path::Path::new(anchor)
        .parent()
        .expect("a directory")
        .join(relative);
    assert!(
        path.exists(),
        "{} is not built: run `cargo test --workspace` (it builds the netsvc binary and the examples)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// The address at the end of a `... listening on ADDR` line (`netsvc exchange`, `netsvc
/// gateway`), without a scheme.
fn listening_on(line: &str) -> String {
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    addr.rsplit("://").next().unwrap_or(addr).to_owned()
}

/// `netsvc exchange` (the binary at `netsvc`) on a free port of 127.0.0.1, and the address it
/// printed; `limit` bounds the wait.
pub fn start_exchange(netsvc: &str, limit: Duration) -> (Process, String) {
    let mut exchange = Process::start(netsvc, &["exchange", "--listen", "127.0.0.1:0"]);
    let line = exchange.expect_line("exchange listening on", limit);
    (exchange, listening_on(&line))
}

/// `netsvc gateway` on a free port of 127.0.0.1, joined to the exchange at `exchange`, with
/// `extra` arguments; the process and its URL (`http://127.0.0.1:PORT`). `limit` bounds the
/// wait.
pub fn start_gateway(
    netsvc: &str,
    exchange: &str,
    extra: &[&str],
    limit: Duration,
) -> (Process, String) {
    let mut args = vec!["gateway", "--listen", "127.0.0.1:0", "--connect", exchange];
    args.extend(extra);
    let mut gateway = Process::start(netsvc, &args);
    let line = gateway.expect_line("gateway listening on", limit);
    let url = format!("http://{}", listening_on(&line));
    (gateway, url)
}
