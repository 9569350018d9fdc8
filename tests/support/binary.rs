//! The real `rotavault` binary as a test drives it: one-shot commands run to their end (bounded, killed by PID if
//! they hang), and the daemon (`rotavault run`) as a child whose log lines a test waits for and which it stops
//! with SIGTERM, or kills by PID when dropped. Every line either prints is kept, so that a test can search all of
//! it for secrets at the end.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary cargo built for the integration tests, run where it was built: a copy made by a test could still be
/// open for writing in a child that another test forked at that moment, and exec would fail with "text file busy".
pub const BIN: &str = env!("CARGO_BIN_EXE_rotavault");

/// How long a one-shot command may take before it is killed: far longer than any scenario needs, so that a hang
/// fails the test instead of stalling it.
const COMMAND_LIMIT: Duration = Duration::from_secs(90);

/// A configuration in a directory of its own, and the commands run against it.
pub struct Rotavault {
    pub dir: PathBuf,
    pub config: PathBuf,
}

impl Rotavault {
    pub fn new(dir: &Path, config: PathBuf) -> Rotavault {
        Rotavault { dir: dir.to_owned(), config }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .current_dir(&self.dir)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            // TRACE puts every request, answer and error text in the output the secret search covers.
            .env("ROTAVAULT_LOG", "rotavault=trace");
        command
    }

    /// Runs a one-shot command to its end, with `stdin` piped in when given.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_bounded(self.command(args), stdin, COMMAND_LIMIT)
    }

    /// Runs a one-shot command whose standard output is `/dev/full`: every write to it fails.
    pub fn cli_to_full_stdout(&self, args: &[&str]) -> Output {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
        self.command(args)
            .stdin(Stdio::null())
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .expect("rotavault runs")
    }

    /// Starts `rotavault run` with JSON logs on standard error.
    pub fn start_daemon(&self) -> Daemon {
        self.start_daemon_with(|_| {})
    }

    /// [`Rotavault::start_daemon`], with the command adjusted first (environment, user).
    pub fn start_daemon_with(&self, adjust: impl FnOnce(&mut Command)) -> Daemon {
        let mut command = self.command(&["--log-format", "json", "run"]);
        adjust(&mut command);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the daemon starts");
        let lines = stderr_lines(&mut child);
        Daemon { child, lines, log: Vec::new(), dead: false }
    }
}

/// The lines `child` writes to its piped standard error, read by a thread of their own so that it never blocks.
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A running `rotavault run`, killed by its PID when dropped. Every line it printed so far is in `log`.
pub struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
    dead: bool,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a name such as `HUP`) to the process.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status();
    }

    /// SIGTERM, then wait (at most 30 s) for the exit; SIGKILL if it does not come. The exit code, if any.
    pub fn sigterm(&mut self) -> Option<i32> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.dead = true;
                self.drain();
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.sigkill();
        None
    }

    fn sigkill(&mut self) {
        if !self.dead {
            let _ = Command::new("kill").args(["-KILL", &self.child.id().to_string()]).status();
            let _ = self.child.wait();
            self.dead = true;
        }
    }

    /// Waits (at most `timeout`) until `done` holds for the lines printed so far (all of them, including those
    /// read by earlier waits); false if it never did.
    pub fn wait_until(&mut self, timeout: Duration, done: &mut dyn FnMut(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.log) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(_) => return done(&self.log),
            }
        }
    }

    /// The lines printed up to the exit, once the process has ended.
    fn drain(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.log.push(line);
        }
    }

    pub fn text(&self) -> String {
        self.log.join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Standard output and standard error of a finished command, as one text.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Whether a JSON log line has exactly this message.
pub fn message_is(line: &str, message: &str) -> bool {
    line.contains(&format!("\"message\":\"{message}\""))
}

/// Runs `command` to its end with `stdin` piped in when given, capturing its output; killed by PID (SIGKILL) if it
/// is still running after `limit`, so a hung command fails its test instead of the whole run.
pub fn run_bounded(mut command: Command, stdin: Option<&str>, limit: Duration) -> Output {
    let mut child = command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rotavault runs");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(limit).is_err() {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    waiter.join().expect("waiter").expect("rotavault exits")
}

/// Every file under `dir`, with its bytes, in path order: to prove that a command changed none of them.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}
