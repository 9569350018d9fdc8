//! `[[blackout]]` (every job) and a job's `blackout` list: the windows in which no scheduled rotation starts, as
//! [`Blackout`]s. Each is either `cron` with `duration` (a window opened at every fire), or `from` and `to` (whole
//! days, both included, such as a change freeze); `reason` is shown in `status`. Read in each job's time zone.

use super::document::Document;
use super::duration::ConfigDuration;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::validate::{Limit, nonzero};
use crate::schedule::Blackout;
use chrono::NaiveDate;
use serde::Deserialize;
use std::time::Duration;

/// A recurring window longer than this leaves no room to rotate in most schedules.
const DURATION_LIMIT: Limit = Limit {
    max: Duration::from_secs(30 * 86_400),
    why: "a longer recurring window leaves no time to rotate",
};

/// One window as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BlackoutSchema {
    pub cron: Option<String>,
    pub duration: Option<ConfigDuration>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub reason: Option<String>,
}

/// The windows written at `at` (`blackout`, or `jobs.NAME.blackout`), validated.
pub(super) fn build(
    doc: &Document<'_>,
    at: &KeyPath,
    schemas: Vec<BlackoutSchema>,
) -> Result<Vec<Blackout>, ConfigError> {
    let mut windows = Vec::with_capacity(schemas.len());
    for (i, schema) in schemas.into_iter().enumerate() {
        let at = at.index(i);
        let window = match (&schema.cron, &schema.from) {
            (Some(cron), None) if schema.to.is_none() => {
                let duration = nonzero(doc, &at.key("duration"), schema.duration, DURATION_LIMIT)?
                    .ok_or_else(|| {
                        doc.error(
                            &at,
                            "a recurring window needs a `duration`: expected such as duration = \"62h\"",
                        )
                    })?;
                Blackout::recurring(cron, duration, schema.reason)
                    .map_err(|e| doc.error(&at.key("cron"), format!("{e}")))?
            }
            (None, Some(from)) if schema.duration.is_none() => {
                let from_day = date(doc, &at.key("from"), from)?;
                let Some(to) = &schema.to else {
                    return Err(
                        doc.error(&at, "a range of days needs `to`: expected such as to = \"2027-01-03\"")
                    );
                };
                let to_day = date(doc, &at.key("to"), to)?;
                if to_day < from_day {
                    return Err(doc.error(
                        &at.key("to"),
                        format!("{to_day} is before `from` ({from_day}): expected a day on or after it"),
                    ));
                }
                Blackout::days(from_day, to_day, schema.reason)
            }
            _ => {
                return Err(doc.error(
                    &at,
                    "a blackout window is either `cron` with `duration` (recurring) or `from` with `to` (whole \
                     days): expected one of the two, and nothing of the other",
                ));
            }
        };
        windows.push(window);
    }
    Ok(windows)
}

fn date(doc: &Document<'_>, at: &KeyPath, text: &str) -> Result<NaiveDate, ConfigError> {
    text.parse::<NaiveDate>().map_err(|_| {
        doc.error(at, format!("`{text}` is not a date: expected YYYY-MM-DD, such as \"2026-12-20\""))
    })
}
