//! [`Document`]: the config text, parsed once into `toml`'s spanned tree, and the one place that turns a key path
//! or a `toml` error into a [`ConfigError`] with a line, a column and a dotted key.
//!
//! The schema is deserialized from this tree (not from the text again), so the spans in serde errors and the
//! spans validation looks up are the same.

use super::error::{ConfigError, Lines};
use super::locate::{self, KeyPath};
use super::toml_error;
use serde::de::{DeserializeOwned, IntoDeserializer};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub(super) struct Document<'a> {
    file: &'a Path,
    source: &'a str,
    root: Spanned<DeTable<'a>>,
    /// Where the text `root` was parsed from lies in `source`, as (offset in that text, offset in `source`) at the
    /// start of each piece: one piece at 0 for the whole file; a job's section parsed on its own, or the file
    /// without its job sections, otherwise (see `sections`).
    pieces: Arc<[(usize, usize)]>,
    lines: Arc<Lines>,
}

impl<'a> Document<'a> {
    pub fn parse(source: &'a str, file: &'a Path) -> Result<Self, ConfigError> {
        match DeTable::parse(source) {
            Ok(root) => Ok(Self {
                file,
                source,
                root,
                pieces: Arc::new([(0, 0)]),
                lines: Arc::new(Lines::new(source)),
            }),
            Err(err) => {
                let (recovered, _) = DeTable::parse_recoverable(source);
                Err(toml_error::syntax(file, source, recovered.get_ref(), &err))
            }
        }
    }

    /// The part of `source` at `range` as a document of its own whose places are still those of `source`; `None`
    /// when the part does not parse (the caller then parses the whole file, which reports the error). `like` is
    /// a document of a text with its newlines where `source` has them.
    pub fn parse_part(like: &Self, source: &'a str, range: Range<usize>) -> Option<Self> {
        let root = DeTable::parse(source.get(range.clone())?).ok()?;
        Some(Self {
            file: like.file,
            source,
            root,
            pieces: Arc::new([(0, range.start)]),
            lines: Arc::clone(&like.lines),
        })
    }

    /// `text`, made of the pieces of `source` that `pieces` locates, as a document whose places are those of
    /// `source`; `None` when it does not parse.
    pub fn parse_pieces(
        text: &'a str,
        pieces: Vec<(usize, usize)>,
        source: &'a str,
        file: &'a Path,
    ) -> Option<Self> {
        let root = DeTable::parse(text).ok()?;
        Some(Self { file, source, root, pieces: pieces.into(), lines: Arc::new(Lines::new(source)) })
    }

    /// Whether there is a value at `path` other than an empty table.
    pub fn holds_anything_at(&self, path: &KeyPath) -> bool {
        locate::node(self.root.get_ref(), path)
            .is_some_and(|node| node.get_ref().as_table().is_none_or(|table| !table.is_empty()))
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
        let place = self.spans(path).map(|s| self.lines.locate(self.source, s.value.start));
        ConfigError::placed(self.file, place, Some(path.to_string()), message)
    }

    /// An error about the key at `path` itself, such as a table name that is not allowed.
    pub fn error_at_key(&self, path: &KeyPath, message: impl Into<String>) -> ConfigError {
        let place = self.spans(path).map(|s| self.lines.locate(self.source, s.key.unwrap_or(s.value).start));
        ConfigError::placed(self.file, place, Some(path.to_string()), message)
    }

    /// The error for a config without jobs: at an empty `[jobs]` table when there is one, else at the end of the
    /// file, where a job would be added.
    pub fn no_jobs(&self) -> ConfigError {
        let at = KeyPath::root().key("jobs");
        let offset = self.spans(&at).map_or(self.source.len(), |s| s.value.start);
        ConfigError::placed(
            self.file,
            Some(self.lines.locate(self.source, offset)),
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
        Some(self.lines.locate(self.source, offset).0)
    }

    fn spans(&self, path: &KeyPath) -> Option<locate::Spans> {
        let spans = locate::spans_of(self.root.get_ref(), path)?;
        let to_source = |at: usize| {
            let piece = self.pieces.partition_point(|&(start, _)| start <= at).saturating_sub(1);
            let (start, in_source) = self.pieces[piece];
            at - start + in_source
        };
        let shift = |r: Range<usize>| to_source(r.start)..to_source(r.end);
        Some(locate::Spans { key: spans.key.map(shift), value: shift(spans.value) })
    }
}
