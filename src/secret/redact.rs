//! The one redaction step: every text that came from outside (a server's error body, a fault, an SDK's message)
//! passes through a [`Redactor`] built from the secrets known at that point, **before** it is cut short, logged,
//! put into an error, written to the state file or shown by `status`.
//!
//! A server may echo the request it refused, and it echoes it encoded: inside XML (`&amp;`, `&#39;`), inside a
//! JSON string (`\"`, `\u0026`), in a URL (`%2B`, `%2b`, `+` for a space) or as base64 (a Basic-auth header
//! `base64(user:secret)`, standard or URL-safe, with or without padding). So matching does not look for a few
//! spelled-out variants: it decodes the text one character at a time, taking each character raw or in any of
//! those escapes, and compares what it decodes with the secret; escapes may even be mixed within one secret.
//! Base64 cannot be decoded that way (a secret inside a larger plaintext shifts its bits), so for each of the three
//! alignments the characters that depend on the secret alone are searched for, and the whole base64 run around
//! a hit is removed: that takes the user name of a Basic-auth value with it, which is what we want.
//!
//! Redaction runs before cutting, so that an excerpt can never end in the first half of a secret that the
//! matcher then fails to recognise.
//!
//! A secret shorter than [`MIN_REDACTABLE`] characters cannot be told apart from ordinary text (and its base64
//! form would be a handful of characters that occur by chance), so a text checked against one is withheld whole.
//! Autotask passwords have at least 7 characters and generated secrets are far longer; only a hand-set value can
//! be this short. A secret that is a JSON document (an Autotask job's payload) is redacted whole and also by its
//! members named like a secret (`secret`, `password`, `token`), since a server may quote just one member.

use super::SecretValue;
use base64::Engine as _;
use std::fmt;
use zeroize::Zeroizing;

/// Shortest secret that can be redacted meaningfully, in characters.
pub const MIN_REDACTABLE: usize = 6;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// What a text becomes when a secret in scope is too short to be found in it reliably.
pub const WITHHELD: &str = "[text withheld: it may quote a secret too short to redact]";

/// The secrets known at one point, ready to be removed from any text. Holds copies of them (and of their base64
/// forms) in zeroizing buffers; `Debug` shows none of it.
#[derive(Default)]
pub struct Redactor {
    secrets: Vec<Zeroizing<String>>,
    /// Base64 runs that depend on a secret alone, with the alphabet each belongs to.
    cores: Vec<(Zeroizing<String>, Alphabet)>,
    withhold: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alphabet {
    Standard,
    UrlSafe,
}

impl Alphabet {
    fn contains(self, c: char) -> bool {
        c.is_ascii_alphanumeric()
            || match self {
                Self::Standard => c == '+' || c == '/',
                Self::UrlSafe => c == '-' || c == '_',
            }
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secret(s), [redacted])", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor for `secrets`; empty values are ignored (an empty secret cannot leak).
    pub fn new(secrets: &[&SecretValue]) -> Self {
        let mut redactor = Self::default();
        for secret in secrets {
            redactor.add(secret.expose());
            for member in secret_members(secret.expose()) {
                redactor.add(&member);
            }
        }
        redactor
    }

    /// A redactor that knows no secret: it only flattens and cuts in [`Redactor::excerpt`].
    pub fn none() -> Self {
        Self::default()
    }

    fn add(&mut self, secret: &str) {
        let length = secret.chars().count();
        if length == 0 || self.secrets.iter().any(|s| s.as_str() == secret) {
            return;
        }
        if length < MIN_REDACTABLE {
            self.withhold = true;
            return;
        }
        self.secrets.push(Zeroizing::new(secret.to_owned()));
        for core in base64_cores(secret.as_bytes()) {
            let url_safe = Zeroizing::new(core.replace('+', "-").replace('/', "_"));
            self.cores.push((core, Alphabet::Standard));
            self.cores.push((url_safe, Alphabet::UrlSafe));
        }
    }

    /// `text` with every form of every secret replaced by [`REDACTED`], or [`WITHHELD`] whole.
    pub fn redact(&self, text: &str) -> String {
        if self.withhold && !text.is_empty() {
            return WITHHELD.to_owned();
        }
        let mut spans = Vec::new();
        for secret in &self.secrets {
            escaped_spans(text, secret, &mut spans);
        }
        for (core, alphabet) in &self.cores {
            base64_spans(text, core, *alphabet, &mut spans);
        }
        if spans.is_empty() {
            return text.to_owned();
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            if end <= at {
                continue;
            }
            if start >= at {
                out.push_str(&text[at..start]);
                out.push_str(REDACTED);
            }
            at = end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// `text` redacted, then flattened onto one line and cut to at most `max_chars` characters (and `…`).
    pub fn excerpt(&self, text: &str, max_chars: usize) -> String {
        let redacted = self.redact(text);
        let flat = redacted.split_whitespace().collect::<Vec<_>>().join(" ");
        match flat.char_indices().nth(max_chars) {
            Some((cut, _)) => format!("{}…", &flat[..cut]),
            None => flat,
        }
    }
}

/// [`Redactor::redact`] for a one-off text.
pub fn redact(secrets: &[&SecretValue], text: &str) -> String {
    Redactor::new(secrets).redact(text)
}

/// [`Redactor::excerpt`] for a one-off text.
pub fn excerpt(secrets: &[&SecretValue], text: &str, max_chars: usize) -> String {
    Redactor::new(secrets).excerpt(text, max_chars)
}

/// The string members of a JSON object whose key names a secret.
fn secret_members(value: &str) -> Vec<Zeroizing<String>> {
    if !value.trim_start().starts_with('{') {
        return Vec::new();
    }
    let Ok(map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(value) else {
        return Vec::new();
    };
    let mut members = Vec::new();
    for (key, member) in map {
        if let serde_json::Value::String(text) = member {
            // Wrapped either way, so that every copy is wiped on drop.
            let text = Zeroizing::new(text);
            let key = key.to_ascii_lowercase();
            if ["secret", "password", "token"].iter().any(|word| key.contains(word)) {
                members.push(text);
            }
        }
    }
    members
}

/// Adds the spans of `text` that decode to `secret`, each character raw or escaped.
fn escaped_spans(text: &str, secret: &str, spans: &mut Vec<(usize, usize)>) {
    let Some(first) = secret.chars().next() else { return };
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < text.len() {
        let b = bytes[start];
        let candidate = text.is_char_boundary(start)
            && (text[start..].starts_with(first) || matches!(b, b'&' | b'\\' | b'%' | b'+'));
        if candidate && let Some(end) = match_at(text, start, secret) {
            spans.push((start, end));
            start = end;
            continue;
        }
        start += 1;
    }
}

/// The end of the longest encoding of `secret` that starts at `start`.
fn match_at(text: &str, start: usize, secret: &str) -> Option<usize> {
    let mut positions = vec![start];
    for want in secret.chars() {
        let mut next: Vec<usize> = Vec::new();
        for &at in &positions {
            for (got, end) in decodings(text, at).into_iter().flatten() {
                if got == want && !next.contains(&end) {
                    next.push(end);
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        positions = next;
    }
    positions.into_iter().max()
}

/// The characters the text at `at` may stand for, with where each ends: the raw character, and the one its
/// escape (XML entity, JSON escape, percent-encoding, `+`) decodes to.
fn decodings(text: &str, at: usize) -> [Option<(char, usize)>; 2] {
    let rest = &text[at..];
    let Some(raw) = rest.chars().next() else { return [None, None] };
    let escaped = match raw {
        '&' => xml_entity(rest),
        '\\' => json_escape(rest),
        '%' => percent(rest),
        '+' => Some((' ', 1)),
        _ => None,
    };
    [Some((raw, at + raw.len_utf8())), escaped.map(|(c, len)| (c, at + len))]
}

fn xml_entity(rest: &str) -> Option<(char, usize)> {
    let semicolon = rest.bytes().take(12).position(|b| b == b';')?;
    let name = &rest[1..semicolon];
    let c = match name.to_ascii_lowercase().as_str() {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        numeric => {
            let number = numeric.strip_prefix('#')?;
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse::<u32>().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((c, semicolon + 1))
}

fn json_escape(rest: &str) -> Option<(char, usize)> {
    let c = match rest.as_bytes().get(1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let unit = hex4(rest.get(2..6)?)?;
            if (0xD800..0xDC00).contains(&unit) {
                let low = rest.get(6..12).filter(|s| s.starts_with("\\u")).and_then(|s| hex4(&s[2..]))?;
                if !(0xDC00..0xE000).contains(&low) {
                    return None;
                }
                let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                return Some((char::from_u32(code)?, 12));
            }
            return Some((char::from_u32(unit)?, 6));
        }
        _ => return None,
    };
    Some((c, 2))
}

fn hex4(text: &str) -> Option<u32> {
    (text.len() == 4 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(text, 16).ok())
        .flatten()
}

/// One percent-encoded character: one `%XX` per byte of its UTF-8 form, hex in either case.
fn percent(rest: &str) -> Option<(char, usize)> {
    let byte = |i: usize| -> Option<u8> {
        let part = rest.get(3 * i..3 * i + 3)?;
        let hex = part.strip_prefix('%')?;
        hex.bytes().all(|b| b.is_ascii_hexdigit()).then(|| u8::from_str_radix(hex, 16).ok()).flatten()
    };
    let first = byte(0)?;
    let len = match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return None,
    };
    let mut buf = [0u8; 4];
    buf[0] = first;
    for (i, slot) in buf.iter_mut().enumerate().take(len).skip(1) {
        *slot = byte(i)?;
    }
    let c = std::str::from_utf8(&buf[..len]).ok()?.chars().next()?;
    Some((c, 3 * len))
}

/// For each alignment of `secret` within a larger plaintext (0, 1 or 2 bytes before it, modulo 3), the standard
/// base64 characters that depend on the secret's bytes alone: they appear in the encoding of any plaintext that
/// holds the secret at that alignment.
fn base64_cores(secret: &[u8]) -> Vec<Zeroizing<String>> {
    let mut cores = Vec::with_capacity(3);
    for offset in 0..3 {
        let mut plain = Zeroizing::new(vec![0u8; offset]);
        plain.extend_from_slice(secret);
        plain.extend_from_slice(&[0, 0]);
        let mut encoded = Zeroizing::new(String::with_capacity(plain.len() * 4 / 3 + 4));
        base64::engine::general_purpose::STANDARD_NO_PAD.encode_string(&*plain, &mut encoded);
        let (low, high) = (8 * offset, 8 * (offset + secret.len()));
        let (first, end) = (low.div_ceil(6), high / 6);
        if let Some(core) = encoded.get(first..end).filter(|c| !c.is_empty()) {
            cores.push(Zeroizing::new(core.to_owned()));
        }
    }
    cores
}

/// Adds the whole base64 run (and its padding) around every occurrence of `core`.
fn base64_spans(text: &str, core: &str, alphabet: Alphabet, spans: &mut Vec<(usize, usize)>) {
    for (at, _) in text.match_indices(core) {
        let start = text[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| alphabet.contains(*c))
            .last()
            .map_or(at, |(i, _)| i);
        let after = &text[at + core.len()..];
        let run = after.find(|c: char| !alphabet.contains(c)).unwrap_or(after.len());
        let padding = after[run..].bytes().take_while(|b| *b == b'=').count();
        spans.push((start, at + core.len() + run + padding));
    }
}

#[cfg(test)]
mod tests;
