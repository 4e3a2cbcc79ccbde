//! Support for tests that start real netsvc processes: a child process that is killed when
//! dropped, its stdout read line by line with bounded waits, lines written to its stdin, and
//! signals sent by PID.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A running child process; killed and reaped when dropped.
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
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
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process { child, stdin, lines, seen: Vec::new(), cursor: 0 }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads what arrived (without waiting) into the lines seen so far.
    fn pump(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// Waits (at most `limit`) for a line containing `needle` after the last line this
    /// method returned; panics with everything seen. Lines before it are passed over (they stay
    /// in [`Process::seen`]).
    pub fn expect_line(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = self.seen[self.cursor..].iter().position(|l| l.contains(needle)) {
                self.cursor += at + 1;
                return self.seen[self.cursor - 1].clone();
            }
            self.cursor = self.seen.len();
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line with {needle:?} within {limit:?}; saw {:#?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => panic!("output ended before {needle:?}; saw {:#?}", self.seen),
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
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{} line(s) with {needle:?} within {limit:?}, wanted {count}; saw {:#?}",
                    matching.len(),
                    self.seen
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("output ended before {count} line(s) with {needle:?}; saw {:#?}", self.seen)
                }
            }
        }
    }

    /// Every line seen so far (including what has arrived and not been read yet) that
    /// contains `needle`.
    pub fn matching(&mut self, needle: &str) -> Vec<String> {
        self.pump();
        self.seen.iter().filter(|l| l.contains(needle)).cloned().collect()
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
                Ok(line) => self.seen.push(line),
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
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status();
        assert!(status.map(|s| s.success()).unwrap_or(false), "kill -{name} {} failed", self.pid());
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
    word.parse().unwrap_or_else(|e| panic!("no socket address at the end of {line:?}: {e}"))
}
