//! [`ConfigError`]: one precise complaint about a config file, in the form editors and people both read:
//! `<file>:<line>:<column>: <dotted key>: <what is wrong and what is expected>`.
//!
//! Messages never quote a string value from the file: an operator who pasted a secret where it does not belong
//! must not find it again in a journal (see `toml_error`).

use std::fmt;
use std::path::{Path, PathBuf};

/// The exit code for a configuration error: `EX_CONFIG` from sysexits.h, which systemd and supervisors know as
/// "do not restart, a person has to fix something".
pub const EXIT_CONFIG: i32 = 78;

/// A configuration error, with where it is and which key it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when the error has a place in the file.
    pub line: Option<usize>,
    /// 1-based column in characters, when the error has a place in the file.
    pub column: Option<usize>,
    /// The dotted key, as TOML spells it (`jobs.webhook.stores[0].store`).
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// An error about the file as a whole (it cannot be read, for example).
    pub(crate) fn file(file: &Path, message: impl Into<String>) -> Self {
        Self { file: file.to_owned(), line: None, column: None, key: None, message: message.into() }
    }

    /// An error at byte `offset` of `source`.
    pub(crate) fn at(
        file: &Path,
        source: &str,
        offset: Option<usize>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::placed(file, offset.map(|offset| line_column(source, offset)), key, message)
    }

    /// An error at a line and column already found.
    pub(super) fn placed(
        file: &Path,
        place: Option<(usize, usize)>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = place.map_or((None, None), |(line, column)| (Some(line), Some(column)));
        Self { file: file.to_owned(), line, column, key, message: message.into() }
    }
}

/// Where each line of a text starts, so that the line and column of a place are found without counting every
/// line before it: a config of 10,000 jobs locates a file it names once per job or more.
pub(super) struct Lines(Vec<usize>);

impl Lines {
    pub fn new(source: &str) -> Self {
        Self(std::iter::once(0).chain(source.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }

    /// The 1-based line and column (in characters, as editors count) of byte `offset` of `source`, the text
    /// these lines were found in (or one with its newlines in the same places).
    pub fn locate(&self, source: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.0.partition_point(|&start| start <= offset);
        let start = self.0[line - 1].min(offset);
        (line, source[start..offset].chars().count() + 1)
    }
}

/// 1-based line and column (in characters, as editors count) of byte `offset`.
pub(super) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    Lines::new(source).locate(source, offset)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_from_one_and_in_characters() {
        let source = "a = 1\nb = \"é\"\nc = 2\n";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 6), (2, 1));
        let c = source.find('c').expect("in source");
        assert_eq!(line_column(source, c), (3, 1));
        assert_eq!(line_column(source, c - 2), (2, 7), "é is one column");
        let lines = Lines::new(source);
        for offset in 0..=source.len() + 2 {
            // Counted the slow way: every newline before the place.
            let mut at = offset.min(source.len());
            while !source.is_char_boundary(at) {
                at -= 1;
            }
            let line = source[..at].matches('\n').count() + 1;
            let column = source[..at].rsplit('\n').next().unwrap_or_default().chars().count() + 1;
            assert_eq!(lines.locate(source, offset), (line, column), "at byte {offset}");
        }
    }

    #[test]
    fn display_is_file_line_column_key_message() {
        let err = ConfigError::at(
            Path::new("/etc/rotavault/config.toml"),
            "x\nschedule = \"0 3 * *\"\n",
            Some(13),
            Some("jobs.webhook.schedule".into()),
            "not a cron expression",
        );
        assert_eq!(
            err.to_string(),
            "/etc/rotavault/config.toml:2:12: jobs.webhook.schedule: not a cron expression"
        );
        let err = ConfigError::file(Path::new("c.toml"), "cannot read it");
        assert_eq!(err.to_string(), "c.toml: cannot read it");
    }
}
