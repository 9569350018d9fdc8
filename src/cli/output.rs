//! [`Output`]: standard output for the reports commands print. A write that fails (a full disk, a closed pipe, a
//! reader that went away) is remembered instead of panicking as `println!` does, and the command decides what its
//! exit code says: one that changed something keeps the code that says so ([`Output::acted`]); one whose only
//! product is the report fails without it ([`Output::reported`]). Either way standard error says what was lost.

use super::exit;
use std::fmt;
use std::io::{self, Write};

/// Writes `format!` arguments and a line break to an [`Output`]; `outln!(out)` writes an empty line.
macro_rules! outln {
    ($out:expr) => {
        $out.line(format_args!(""))
    };
    ($out:expr, $($arg:tt)*) => {
        $out.line(format_args!($($arg)*))
    };
}
pub(super) use outln;

/// A command's report, on standard output unless a test gives it another writer.
pub struct Output<W: Write = io::Stdout> {
    writer: W,
    /// The first write that failed; nothing more is tried after it, so a report is never half of each line.
    failed: Option<io::Error>,
}

impl Output {
    pub fn stdout() -> Self {
        Self::new(io::stdout())
    }
}

impl Output<io::BufWriter<io::Stdout>> {
    /// For a report printed all at once (`check`, `status`): one write at the end instead of one per line, which
    /// standard output's line buffering would make (thousands with thousands of jobs).
    pub fn stdout_buffered() -> Self {
        Self::new(io::BufWriter::with_capacity(64 * 1024, io::stdout()))
    }
}

impl<W: Write> Output<W> {
    pub fn new(writer: W) -> Self {
        Self { writer, failed: None }
    }

    /// Writes one line, unless an earlier write failed.
    pub fn line(&mut self, text: fmt::Arguments<'_>) {
        if self.failed.is_none()
            && let Err(e) = self.writer.write_fmt(text).and_then(|()| self.writer.write_all(b"\n"))
        {
            self.failed = Some(e);
        }
    }

    /// Flushes, and gives the first write that failed.
    fn finish(mut self) -> Result<(), io::Error> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => self.writer.flush(),
        }
    }

    /// The exit code of a command that changed something: `code`, which says what it did, whether or not its
    /// report reached anyone. A lost report is said on standard error.
    pub fn acted(self, code: u8) -> u8 {
        if let Err(e) = self.finish() {
            warn(&format!(
                "the report could not be written to standard output ({e}); the exit code {code} still says what was done"
            ));
        }
        code
    }

    /// The exit code of a command whose product is its report (`status`, `check`): a lost report is a failure, so
    /// that a script never takes an empty or cut-off report for a good one.
    pub fn reported(self, code: u8) -> u8 {
        match self.finish() {
            Ok(()) => code,
            Err(e) => {
                warn(&format!("the report could not be written to standard output: {e}"));
                if code == exit::OK { exit::FAILURE } else { code }
            }
        }
    }
}

/// One line on standard error, for when standard error itself may be gone: nothing is left to tell then.
pub fn warn(message: &str) {
    let _ = writeln!(io::stderr(), "rotavault: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes `room` bytes, then fails as a full disk does.
    struct Full {
        room: usize,
        written: Vec<u8>,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_is_remembered_and_nothing_more_is_written() {
        let mut out = Output::new(Full { room: 8, written: Vec::new() });
        outln!(out, "first {}", 1);
        outln!(out, "second");
        outln!(out);
        assert_eq!(out.writer.written, b"first 1\n");
        assert!(out.failed.is_some());
        assert_eq!(out.reported(exit::OK), exit::FAILURE, "a lost report fails a command that only reports");

        let mut out = Output::new(Full { room: 0, written: Vec::new() });
        outln!(out, "rotated");
        assert_eq!(out.acted(exit::OK), exit::OK, "a rotation that happened keeps its code");
        let out = Output::new(Full { room: 0, written: Vec::new() });
        assert_eq!(out.reported(exit::CONFIG), exit::CONFIG, "a code that already says failure stands");
    }

    #[test]
    fn a_report_that_fits_keeps_the_commands_code() {
        let mut out = Output::new(Vec::new());
        outln!(out, "ok");
        assert_eq!(out.reported(exit::OK), exit::OK);
    }
}
