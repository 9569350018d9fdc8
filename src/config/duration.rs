//! Durations in the config: a number and a unit, as humantime reads them (`"90d"`, `"2h"`, `"30m"`, `"1d 12h"`),
//! and the same spelling in messages, so that a value from an error can be pasted back into the file.
//!
//! A bare number is refused: `max_age = 30` could mean seconds or days, and guessing wrong here is a security
//! policy silently off by a factor of 86,400.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

const EXPECTED: &str = "a duration with a unit, such as \"90d\", \"2h\", \"30m\" or \"30s\"";

/// A duration read from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = ConfigDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ConfigDuration, E> {
                parse(text).map(ConfigDuration).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(DurationVisitor)
    }
}

/// A duration as the config spells it (`"90d"`), for command-line options too; the error names the text and what
/// is expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}): expected {EXPECTED}"))
}

/// `d` in config spelling: `31d`, `1d 12h`, `90s`, `500ms`, `0s`.
pub fn display(d: Duration) -> String {
    let secs = d.as_secs();
    let units = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
        (secs % 60, "s"),
        (u64::from(d.subsec_millis()), "ms"),
    ];
    let parts: Vec<String> =
        units.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect();
    if parts.is_empty() { "0s".into() } else { parts.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_back_as_the_same_duration() {
        for d in [
            Duration::from_secs(31 * 86_400),
            Duration::from_secs(86_400 + 12 * 3_600),
            Duration::from_secs(90),
            Duration::from_millis(1_500),
        ] {
            assert_eq!(humantime::parse_duration(&display(d)).ok(), Some(d), "{}", display(d));
        }
        assert_eq!(display(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(display(Duration::ZERO), "0s");
    }
}
