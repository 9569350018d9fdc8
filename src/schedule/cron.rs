//! Reading a cron expression, with errors a person can act on.
//!
//! croner does the parsing. This file adds what croner leaves to its caller: exactly 5 or 6 fields (croner would also
//! take a year as a 7th), day and month names only in their own fields (croner replaces `MON` with `1` anywhere in the
//! expression, so `0 MON * * *` would silently mean "at 01:00"), and, when croner refuses an expression, which field
//! it refused and what that field accepts, instead of croner's "Position 25 is out of bounds".

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::ScheduleError;

/// One field of a cron expression: its name in error messages and the values it accepts.
struct Field {
    name: &'static str,
    values: &'static str,
}

const SECOND: Field = Field { name: "second", values: "0-59" };
const MINUTE: Field = Field { name: "minute", values: "0-59" };
const HOUR: Field = Field { name: "hour", values: "0-23" };
const DAY_OF_MONTH: Field =
    Field { name: "day-of-month", values: "1-31, `L` (the last day) or `nW` (the weekday nearest day n)" };
const MONTH: Field = Field { name: "month", values: "1-12 or JAN-DEC" };
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    values: "0-7 (0 and 7 are Sunday) or SUN-SAT, `nL` (the last such day of the month) or `n#k` (the k-th)",
};

const FIVE_FIELDS: [Field; 5] = [MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK];
const SIX_FIELDS: [Field; 6] = [SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK];

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_NAMES: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

/// The parser every expression goes through. Seconds are optional (croner inserts `0` for a 5-field expression);
/// years are refused, though [`parse`] has already counted the fields.
fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build()
}

/// Parses `expression` (5 fields, or 6 with seconds first). Returns croner's `Cron` and the expression with its
/// whitespace normalised, as shown by `Schedule::describe`.
pub(super) fn parse(expression: &str) -> Result<(Cron, String), ScheduleError> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let layout: &[Field] = match fields.len() {
        5 => &FIVE_FIELDS,
        6 => &SIX_FIELDS,
        _ => {
            return Err(ScheduleError::FieldCount {
                expression: expression.trim().to_owned(),
                found: fields.len(),
            });
        }
    };
    let normalised = fields.join(" ");
    let invalid = |field: &Field, value: &str| ScheduleError::InvalidField {
        expression: normalised.clone(),
        field: field.name,
        value: value.to_owned(),
        expected: field.values,
    };

    for (field, value) in layout.iter().zip(&fields) {
        if names_in(value).any(|name| {
            (DAY_NAMES.contains(&name.as_str()) && field.name != DAY_OF_WEEK.name)
                || (MONTH_NAMES.contains(&name.as_str()) && field.name != MONTH.name)
        }) {
            return Err(invalid(field, value));
        }
    }

    match parser().parse(&normalised) {
        Ok(cron) => Ok((cron, normalised)),
        Err(refused) => {
            // Find the field croner refused: try each one alone, every other field `*`. Fields are independent in
            // cron syntax, so the first field refused alone is the one to name.
            for (index, (field, value)) in layout.iter().zip(&fields).enumerate() {
                let probe: Vec<&str> =
                    (0..fields.len()).map(|other| if other == index { *value } else { "*" }).collect();
                if parser().parse(&probe.join(" ")).is_err() {
                    return Err(invalid(field, value));
                }
            }
            Err(ScheduleError::Refused { expression: normalised, reason: refused.to_string() })
        }
    }
}

/// The alphabetic words in a field (`MON-FRI` → `MON`, `FRI`), upper-cased as croner reads them.
fn names_in(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_uppercase)
}
