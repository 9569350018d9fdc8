//! [`Document`]: the config text, parsed once into `toml`'s spanned tree, and the one place that turns a key path
//! or a `toml` error into a [`ConfigError`] with a line, a column and a dotted key.
//!
//! The schema is deserialized from this tree (not from the text again), so the spans in serde errors and the
//! spans validation looks up are the same.

use super::error::{ConfigError, line_column};
use super::locate::{self, KeyPath};
use super::toml_error;
use serde::de::{DeserializeOwned, IntoDeserializer};
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub(super) struct Document<'a> {
    file: &'a Path,
    source: &'a str,
    root: Spanned<DeTable<'a>>,
}

impl<'a> Document<'a> {
    pub fn parse(source: &'a str, file: &'a Path) -> Result<Self, ConfigError> {
        match DeTable::parse(source) {
            Ok(root) => Ok(Self { file, source, root }),
            Err(err) => {
                let (recovered, _) = DeTable::parse_recoverable(source);
                Err(toml_error::syntax(file, source, recovered.get_ref(), &err))
            }
        }
    }

    pub fn file(&self) -> &Path {
        self.file
    }

    /// The whole document as `T`, with the top-level table `apart` left out: that one is read entry by entry
    /// ([`Document::table_keys`], [`Document::deserialize_at`]), so that a config of 10,000 jobs is never copied
    /// whole. Such a copy would double the parse's peak memory, and a peak stays resident for the daemon's life.
    pub fn deserialize_without<T: DeserializeOwned>(&self, apart: &str) -> Result<T, ConfigError> {
        let mut rest = DeTable::new();
        for (key, value) in self.root.get_ref() {
            if key.get_ref().as_ref() != apart {
                rest.insert(key.clone(), value.clone());
            }
        }
        let rest = Spanned::new(self.root.span(), rest);
        T::deserialize(toml::de::Deserializer::from(rest)).map_err(|e| self.schema_error(&e))
    }

    /// Each entry of the table at `path`, in key order, one at a time (see [`Document::deserialize_without`]):
    /// its key, and its value as `T` on demand (so that the key can be judged first); nothing when the table is
    /// absent. When it is something else than a table, the error is the one deserializing it as a table of `T`
    /// gives.
    ///
    /// The table is walked, not looked up key by key: at 10,000 jobs, locating each from the root showed.
    pub fn each_entry<T: DeserializeOwned>(
        &self,
        path: &KeyPath,
        mut each: impl FnMut(&str, &dyn Fn() -> Result<T, ConfigError>) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        let Some(node) = locate::node(self.root.get_ref(), path) else {
            return Ok(());
        };
        let DeValue::Table(table) = node.get_ref() else {
            self.deserialize_at::<std::collections::BTreeMap<String, T>>(path)?;
            return Ok(());
        };
        for (key, value) in table {
            each(key.get_ref(), &|| {
                T::deserialize(value.clone().into_deserializer()).map_err(|e| self.schema_error(&e))
            })?;
        }
        Ok(())
    }

    /// The value at `path` as `T`. Spans stay those of the whole file, so errors point into it.
    pub fn deserialize_at<T: DeserializeOwned>(&self, path: &KeyPath) -> Result<T, ConfigError> {
        let Some(node) = locate::node(self.root.get_ref(), path) else {
            return Err(self.error(path, "missing"));
        };
        T::deserialize(node.clone().into_deserializer()).map_err(|e| self.schema_error(&e))
    }

    fn schema_error(&self, err: &toml::de::Error) -> ConfigError {
        toml_error::schema(self.file, self.source, self.root.get_ref(), err)
    }

    /// An error about the value at `path` (or, when `path` is absent, the table that lacks it).
    pub fn error(&self, path: &KeyPath, message: impl Into<String>) -> ConfigError {
        let offset = self.spans(path).map(|s| s.value.start);
        ConfigError::at(self.file, self.source, offset, Some(path.to_string()), message)
    }

    /// An error about the key at `path` itself, such as a table name that is not allowed.
    pub fn error_at_key(&self, path: &KeyPath, message: impl Into<String>) -> ConfigError {
        let offset = self.spans(path).map(|s| s.key.unwrap_or(s.value).start);
        ConfigError::at(self.file, self.source, offset, Some(path.to_string()), message)
    }

    /// The error for a config without jobs: at an empty `[jobs]` table when there is one, else at the end of the
    /// file, where a job would be added.
    pub fn no_jobs(&self) -> ConfigError {
        let at = KeyPath::root().key("jobs");
        let offset = self.spans(&at).map_or(self.source.len(), |s| s.value.start);
        ConfigError::at(
            self.file,
            self.source,
            Some(offset),
            Some(at.to_string()),
            "no job is defined, so there is nothing to rotate: expected at least one [jobs.NAME] table with a \
             `target`, `stores` and a `schedule` or `max_age`",
        )
    }

    /// Where the value at `path` starts, to order findings as they appear in the file.
    pub fn offset(&self, path: &KeyPath) -> usize {
        self.spans(path).map_or(0, |s| s.value.start)
    }

    /// The 1-based line of the value at `path`, for messages that refer to another place in the file.
    pub fn line(&self, path: &KeyPath) -> Option<usize> {
        let offset = self.spans(path)?.value.start;
        Some(line_column(self.source, offset).0)
    }

    fn spans(&self, path: &KeyPath) -> Option<locate::Spans> {
        locate::spans_of(self.root.get_ref(), path)
    }
}
