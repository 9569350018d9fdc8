//! A `rotavault run` process under test: started with its JSON log on a pipe, read line by line by a thread, and
//! killed by its PID (SIGKILL, or SIGTERM with a bounded wait).

use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `rotavault run`, killed by its PID when dropped; its stderr lines arrive on `lines`.
pub struct Daemon {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub dead: bool,
}

impl Daemon {
    /// Starts `command` (a `rotavault ... run`) with its standard error read line by line on a thread of its own.
    pub fn spawn(mut command: Command) -> Daemon {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the daemon starts");
        let lines = crate::support::binary::stderr_lines(&mut child);
        Daemon { child, lines, dead: false }
    }

    pub fn sigkill(&mut self) {
        if !self.dead {
            let _ = Command::new("kill").args(["-KILL", &self.child.id().to_string()]).status();
            let _ = self.child.wait();
            self.dead = true;
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit; SIGKILL if it does not come.
    pub fn sigterm(&mut self) -> Option<i32> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.dead = true;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.sigkill();
        None
    }

    /// Waits (at most `timeout`) for a line matching `hit`; every line read is appended to `log`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        log: &mut Vec<String>,
        hit: &mut dyn FnMut(&str) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let matched = hit(&line);
                    log.push(line);
                    if matched {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// After the process is dead: every line it wrote that was not read yet (its pipe ends at its death), so that
    /// `log` holds everything it did.
    pub fn drain(&self, log: &mut Vec<String>) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            log.push(line);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.sigkill();
    }
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

pub fn message_is(line: &str, message: &str) -> bool {
    line.contains(&format!("\"message\":\"{message}\""))
}
