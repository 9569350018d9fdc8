//! Times in rotavault's own files (job states, file-store metadata), read back without chrono's general parser.
//!
//! rotavault writes them one way (`2026-12-05T18:30:40.459305648Z`), and `status` and start-up read three of them
//! per job: chrono's relaxed RFC 3339 parser, which accepts every variant, was a twentieth of `status` at 1,000
//! jobs. Exactly that shape is read here; anything else goes to chrono's parser, as before, so what is accepted
//! and every error stay chrono's.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserializer;
use std::fmt;

/// For `#[serde(deserialize_with)]` on a `DateTime<Utc>` field.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_str(Visitor)
}

/// `text` as a time: the shape rotavault writes read directly, any other through chrono's `FromStr`.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match written(text) {
        Some(at) => Ok(at),
        None => text.parse(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS`, then up to nine digits of a fraction after a `.`, then `Z`; `None` for anything else
/// (a leap second included), which chrono then reads.
fn written(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let (fraction, end) = match b[19] {
        b'.' => {
            let digits = b[20..].iter().take_while(|d| d.is_ascii_digit()).count();
            if !(1..=9).contains(&digits) {
                return None;
            }
            let nanos = number(20..20 + digits)? * 10u32.pow(9 - digits as u32);
            (nanos, 20 + digits)
        }
        _ => (0, 19),
    };
    if b.get(end) != Some(&b'Z') || end + 1 != b.len() || second > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some(date.and_hms_nano_opt(hour, minute, second, fraction)?.and_utc())
}

struct Visitor;

impl serde::de::Visitor<'_> for Visitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 date and time")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        parse(text).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chrono(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        text.parse()
    }

    #[test]
    fn what_rotavault_writes_reads_back_as_chrono_reads_it() {
        for text in [
            "2026-12-05T18:30:40.459305648Z",
            "2026-12-05T18:30:40Z",
            "2026-12-05T18:30:40.5Z",
            "2024-02-29T23:59:59.000000001Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            assert_eq!(written(text).map(Ok), Some(chrono(text)), "{text}");
            assert_eq!(parse(text), chrono(text), "{text}");
        }
    }

    #[test]
    fn any_other_shape_is_left_to_chrono_with_its_answer_and_its_error() {
        for text in [
            "2026-12-05T18:30:40+02:00",
            "2026-12-05 18:30:40Z",
            "2026-12-05t18:30:40z",
            "2026-12-05T18:30:60Z",
            "2026-12-05T18:30:40.1234567891Z",
            "2026-12-05T18:30:40.Z",
            "2026-02-30T18:30:40Z",
            "2026-12-05T24:00:00Z",
            "2026-12-05T18:30:40Zjunk",
            "+2026-12-05T18:30:40Z",
            "2026-12-05T18:30:4Z",
            "not a time",
            "",
        ] {
            assert_eq!(written(text), None, "{text}");
            assert_eq!(parse(text), chrono(text), "{text}");
        }
    }

    #[test]
    fn a_field_read_through_it_reads_as_chrono_reads_it_and_refuses_what_chrono_refuses() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Field {
            #[serde(deserialize_with = "super::deserialize")]
            at: DateTime<Utc>,
        }
        let read: Field = serde_json::from_str(r#"{"at":"2026-12-05T18:30:40.459305648Z"}"#).expect("a time");
        assert_eq!(Ok(read.at), chrono("2026-12-05T18:30:40.459305648Z"));
        let refused =
            serde_json::from_str::<Field>(r#"{"at":"2026-13-05T18:30:40Z"}"#).expect_err("month 13");
        let chrono_says = chrono("2026-13-05T18:30:40Z").expect_err("month 13").to_string();
        assert!(refused.to_string().contains(&chrono_says), "{refused} does not say {chrono_says}");
        assert!(serde_json::from_str::<Field>(r#"{"at":17}"#).is_err(), "a number is not a time");
    }

    proptest! {
        /// Every string of the written shape, valid or not (digits anywhere, fractions of any length), reads as
        /// chrono reads it.
        #[test]
        fn strings_of_the_written_shape_read_as_chrono_reads_them(
            year in 0u32..10_000, month in 0u32..14, day in 0u32..33,
            hour in 0u32..26, minute in 0u32..62, second in 0u32..62,
            fraction in proptest::option::of("[0-9]{0,11}"),
        ) {
            let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
            if let Some(fraction) = fraction {
                text.push('.');
                text.push_str(&fraction);
            }
            text.push('Z');
            prop_assert_eq!(parse(&text), chrono(&text), "{}", text);
            if let Some(at) = written(&text) {
                prop_assert_eq!(Ok(at), chrono(&text), "{}", text);
            }
        }
    }
}
