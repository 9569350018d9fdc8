//! Turning `toml` and serde errors into [`ConfigError`]s: the key from the error's span, and a message in the
//! config's own words (keys and tables, not fields and structs).
//!
//! Serde messages quote the value they could not take (`invalid type: string "hunter2", expected a table`). A
//! string value is never repeated here: if someone pasted a secret where a table belongs, the error must not
//! carry it into a journal. An unknown key that looks like an inline secret gets a hint saying where secrets go.

use super::error::ConfigError;
use super::locate::{self, KeyPath};
use std::path::Path;
use toml::de::DeTable;

/// A TOML syntax error. `recovered` is the best-effort document `toml` rebuilds from the broken file, so that
/// the error can still name a key.
pub(super) fn syntax(
    file: &Path,
    source: &str,
    recovered: &DeTable<'_>,
    err: &toml::de::Error,
) -> ConfigError {
    let span = err.span();
    let key = span.as_ref().and_then(|span| {
        locate::path_at(recovered, span).or_else(|| locate::path_under_header(recovered, source, span))
    });
    ConfigError::at(
        file,
        source,
        span.map(|s| s.start),
        key.map(|k| k.to_string()),
        format!("invalid TOML: {}", err.message()),
    )
}

/// A serde error (unknown key, missing key, wrong type, a value our own deserializers refuse).
pub(super) fn schema(file: &Path, source: &str, root: &DeTable<'_>, err: &toml::de::Error) -> ConfigError {
    let span = err.span();
    let key = span.as_ref().and_then(|span| locate::path_at(root, span));
    let message = rewrite(err.message(), key.as_ref());
    ConfigError::at(file, source, span.map(|s| s.start), key.map(|k| k.to_string()), message)
}

const INLINE_SECRET_HINT: &str = "secrets are never written inline in the config: reference a file (a `*_file` \
     key), a systemd credential (a `*_credential` key) or a store instead";

fn rewrite(message: &str, key: Option<&KeyPath>) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, accepted) = rest.split_once('`').unwrap_or((rest, ""));
        return unknown_key(name, &backticked(accepted));
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return format!("missing key `{name}`");
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, accepted) = rest.split_once('`').unwrap_or((rest, ""));
        return format!("unknown value `{value}`: expected {}", one_of(&backticked(accepted)));
    }
    let invalid = message.strip_prefix("invalid type: ").or_else(|| message.strip_prefix("invalid value: "));
    if let Some((found, expected)) = invalid.and_then(|rest| rest.rsplit_once(", expected ")) {
        let mut out = format!("expected {}, found {}", expected_words(expected), found_words(found));
        if key.and_then(KeyPath::last_key) == Some("secret") {
            out.push_str(
                ": `secret` holds the rules generated secrets follow (length, alphabet, require, ...); ",
            );
            out.push_str(INLINE_SECRET_HINT);
        }
        return out;
    }
    message.to_owned()
}

fn unknown_key(name: &str, accepted: &[&str]) -> String {
    let mut out = format!("unknown key `{name}`");
    if let Some(near) = accepted.iter().find(|a| is_near(name, a)) {
        out.push_str(&format!(" (did you mean `{near}`?)"));
    }
    if looks_like_inline_secret(name) {
        out.push_str(": ");
        out.push_str(INLINE_SECRET_HINT);
        out.push(';');
    } else {
        out.push(':');
    }
    if accepted.is_empty() {
        out.push_str(" no other key is accepted here");
    } else {
        out.push_str(&format!(" expected {}", one_of(accepted)));
    }
    out
}

/// Whether an unknown key's name says it would hold a secret: `password`, `api_key`, `client_secret`, `token`...
/// but not `identity_file` or `admin_credential`, which are how secrets are referenced.
fn looks_like_inline_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if name.ends_with("_file") || name.ends_with("_credential") {
        return false;
    }
    const IN_NAME: [&str; 7] = ["secret", "password", "passwd", "passphrase", "token", "apikey", "private"];
    const WORDS: [&str; 5] = ["key", "value", "pass", "pwd", "credential"];
    IN_NAME.iter().any(|w| name.contains(w)) || name.split(['_', '-', '.']).any(|word| WORDS.contains(&word))
}

/// The names between backticks in a serde list such as "expected one of `a`, `b`".
fn backticked(list: &str) -> Vec<&str> {
    list.split('`').skip(1).step_by(2).collect()
}

fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => "nothing".into(),
        [one] => one.clone(),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

/// Serde's Rust vocabulary in TOML's words.
fn expected_words(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "a map" => "a table".into(),
        "a sequence" => "an array".into(),
        e if e.starts_with("struct ") => "a table".into(),
        e => e.into(),
    }
}

/// What was found, without ever repeating a string value.
fn found_words(found: &str) -> String {
    if found.starts_with("string ") || found.starts_with("char ") {
        "a string".into()
    } else if found == "map" {
        "a table".into()
    } else if found == "sequence" {
        "an array".into()
    } else {
        found.into()
    }
}

/// Close enough to be a typo: at most 2 edits (1 for short keys), a swap of two neighbours counting as one.
fn is_near(typed: &str, known: &str) -> bool {
    let limit = if known.len() <= 4 { 1 } else { 2 };
    edit_distance(typed, known) <= limit
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secret_names_are_recognised() {
        for name in ["secret", "password", "token", "api_key", "value", "key", "client_secret", "apiKey"] {
            assert!(looks_like_inline_secret(name), "{name}");
        }
        for name in ["identity_file", "admin_credential", "monkey", "schedule", "pathh"] {
            assert!(!looks_like_inline_secret(name), "{name}");
        }
    }

    #[test]
    fn string_values_are_never_repeated() {
        let text = rewrite("invalid type: string \"hunter2\", expected u32", None);
        assert_eq!(text, "expected a whole number (0 or more), found a string");
    }

    #[test]
    fn typos_are_suggested() {
        assert_eq!(edit_distance("pathh", "path"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("nmae", "name"), 1);
        let text = rewrite("unknown field `pathh`, expected one of `kind`, `path`", None);
        assert_eq!(text, "unknown key `pathh` (did you mean `path`?): expected one of `kind`, `path`");
    }
}
