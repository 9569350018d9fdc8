//! Where a key is in the TOML text, and which key a place in the text belongs to.
//!
//! Every config error names a line and a dotted key. Serde errors from `toml` carry only a byte span, so
//! [`path_at`] walks the spanned document (`toml::de::DeTable`, which keeps the span of every key and value) to
//! find the key the span belongs to. Validation runs on plain structs that know their key path but not their
//! place, so [`spans_of`] walks the other way. Keeping spans out of the schema structs keeps those readable.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A dotted key such as `jobs.webhook.stores[0].store`, spelled as TOML spells it: a key that is not bare is
/// quoted (`jobs."a.b".target`), an array element is `[index]`.
///
/// A path shares its parent instead of copying it: validation names the path of every key it reads (for the error
/// it might raise), tens of paths per job, and a copy of the whole path each time showed at 10,000 jobs.
#[derive(Clone, Default)]
pub struct KeyPath(Option<Arc<Node>>);

struct Node {
    parent: KeyPath,
    segment: Segment,
    depth: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Key(Box<str>),
    Index(usize),
}

impl KeyPath {
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a table key.
    pub fn key(&self, key: &str) -> Self {
        self.push(Segment::Key(key.into()))
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        self.push(Segment::Index(index))
    }

    fn push(&self, segment: Segment) -> Self {
        Self(Some(Arc::new(Node { parent: self.clone(), segment, depth: self.depth() + 1 })))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_none()
    }

    fn depth(&self) -> usize {
        self.0.as_ref().map_or(0, |node| node.depth)
    }

    /// The last table key, if the path ends in one.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.as_deref().map(|node| &node.segment) {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// The segments from the outermost in.
    fn segments(&self) -> Vec<&Segment> {
        let mut segments = Vec::with_capacity(self.depth());
        let mut at = self;
        while let Some(node) = at.0.as_deref() {
            segments.push(&node.segment);
            at = &node.parent;
        }
        segments.reverse();
        segments
    }
}

impl PartialEq for KeyPath {
    fn eq(&self, other: &Self) -> bool {
        self.depth() == other.depth() && self.segments() == other.segments()
    }
}

impl Eq for KeyPath {}

impl fmt::Debug for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyPath").field(&self.segments()).finish()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments().into_iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(key) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The spans of one node: its key (absent for array elements and the root) and its value. The value of a table
/// opened by a header is the header itself (`[jobs.x]`), which is where errors about the whole table point.
#[derive(Clone, Debug)]
pub struct Spans {
    pub key: Option<Range<usize>>,
    pub value: Range<usize>,
}

/// The spans of `path`, or of its deepest ancestor present in the document when `path` itself is absent (a
/// missing key is reported at the table that lacks it). `None` only for the root.
pub fn spans_of(root: &DeTable<'_>, path: &KeyPath) -> Option<Spans> {
    walk(root, path).pop().map(|(key, value)| Spans { key, value: value.span() })
}

/// The value at `path`, when it is present.
pub fn node<'d, 'i>(root: &'d DeTable<'i>, path: &KeyPath) -> Option<&'d Spanned<DeValue<'i>>> {
    let mut nodes = walk(root, path);
    (nodes.len() == path.depth()).then(|| nodes.pop()).flatten().map(|(_, value)| value)
}

/// The key span and value of every prefix of `path` present in the document, outermost first.
fn walk<'d, 'i>(
    root: &'d DeTable<'i>,
    path: &KeyPath,
) -> Vec<(Option<Range<usize>>, &'d Spanned<DeValue<'i>>)> {
    let mut found = Vec::new();
    let mut table = Some(root);
    let mut array: Option<&'d [Spanned<DeValue<'i>>]> = None;
    for segment in path.segments() {
        let (key, value) = match (segment, table, array) {
            // A lookup, not a scan: a config of 10,000 jobs is located key by key, once per job or more.
            (Segment::Key(key), Some(t), _) => match t.get_key_value(&**key) {
                Some((k, v)) => (Some(k.span()), v),
                None => break,
            },
            (Segment::Index(i), _, Some(a)) => match a.get(*i) {
                Some(v) => (None, v),
                None => break,
            },
            _ => break,
        };
        found.push((key, value));
        table = value.get_ref().as_table();
        array = value.get_ref().as_array().map(|a| &a[..]);
    }
    found
}

/// The path of the most specific key whose key or value covers `span`.
///
/// The whole tree is searched, not only the branch whose span covers the error: a table opened by a header spans
/// only the header, not the keys below it.
pub fn path_at(root: &DeTable<'_>, span: &Range<usize>) -> Option<KeyPath> {
    let mut best: Option<(usize, KeyPath)> = None;
    visit_table(root, &KeyPath::root(), &mut |path, key, value| {
        let hit = key.is_some_and(|k| covers(k, span)) || covers(value.span(), span);
        if hit && best.as_ref().is_none_or(|(depth, _)| path.depth() > *depth) {
            best = Some((path.depth(), path.clone()));
        }
    });
    best.map(|(_, path)| path)
}

/// The header table (`[a.b]`) a TOML syntax error at `span` sits under, extended by the key at `span` when the
/// error points at one (a duplicate key, for example). Used when the document recovered from a broken file has
/// no node at the error, so that even syntax errors name a key when one can be told.
pub fn path_under_header(root: &DeTable<'_>, source: &str, span: &Range<usize>) -> Option<KeyPath> {
    let mut best: Option<(usize, KeyPath)> = None;
    visit_table(root, &KeyPath::root(), &mut |path, _key, value| {
        let value_span = value.span();
        // A whole `[a.b]`: a broken header recovers as a table spanning just its `[`, which must not count.
        let is_header = value.get_ref().is_table()
            && source
                .get(value_span.clone())
                .is_some_and(|s| s.len() > 2 && s.starts_with('[') && s.ends_with(']'));
        if is_header
            && value_span.end <= span.start
            && best.as_ref().is_none_or(|(end, _)| value_span.end > *end)
        {
            best = Some((value_span.end, path.clone()));
        }
    });
    let table = best.map(|(_, path)| path).unwrap_or_default();
    match source.get(span.clone()) {
        Some(key) if is_bare_key(key) => Some(table.key(key)),
        _ if table.is_root() => None,
        _ => Some(table),
    }
}

fn covers(outer: Range<usize>, inner: &Range<usize>) -> bool {
    outer.start < outer.end && outer.start <= inner.start && inner.end <= outer.end
}

type Visitor<'v, 'i> = dyn FnMut(&KeyPath, Option<Range<usize>>, &Spanned<DeValue<'i>>) + 'v;

fn visit_table<'i>(table: &DeTable<'i>, path: &KeyPath, visit: &mut Visitor<'_, 'i>) {
    for (key, value) in table.iter() {
        let path = path.key(key.get_ref());
        visit(&path, Some(key.span()), value);
        visit_value(value, &path, visit);
    }
}

fn visit_value<'i>(value: &Spanned<DeValue<'i>>, path: &KeyPath, visit: &mut Visitor<'_, 'i>) {
    match value.get_ref() {
        DeValue::Table(table) => visit_table(table, path, visit),
        DeValue::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                let path = path.index(i);
                visit(&path, None, element);
                visit_value(element, &path, visit);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"[stores.local]
kind = "file"

[jobs."a.b"]
stores = [ { store = "local", name = "n" } ]
"#;

    fn root() -> Spanned<DeTable<'static>> {
        DeTable::parse(SOURCE).expect("valid TOML")
    }

    #[test]
    fn paths_are_spelled_as_toml_spells_them() {
        let path = KeyPath::root().key("jobs").key("a.b").key("stores").index(0).key("store");
        assert_eq!(path.to_string(), "jobs.\"a.b\".stores[0].store");
    }

    #[test]
    fn a_span_finds_the_most_specific_key() {
        let at = SOURCE.find("\"local\",").expect("in source");
        let path = path_at(root().get_ref(), &(at..at + 7)).expect("found");
        assert_eq!(path.to_string(), "jobs.\"a.b\".stores[0].store");
    }

    #[test]
    fn a_missing_key_is_found_at_its_table_header() {
        let path = KeyPath::root().key("stores").key("local").key("path");
        let spans = spans_of(root().get_ref(), &path).expect("the table exists");
        assert_eq!(&SOURCE[spans.value], "[stores.local]");
    }
}
