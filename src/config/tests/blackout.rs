//! `[[blackout]]` and a job's `blackout`: recurring windows and ranges of days, and what each refuses.

use super::*;

#[test]
fn global_and_job_windows_load_in_both_forms() {
    let source = format!(
        "[[blackout]]\ncron = \"0 18 * * FRI\"\nduration = \"62h\"\nreason = \"weekend\"\n\n[[blackout]]\n\
         from = \"2026-12-20\"\nto = \"2027-01-03\"\n\n{MINIMAL}blackout = [ {{ cron = \"0 0 1 * *\", duration = \"1d\" }} ]\n"
    );
    let config = valid(&source);
    let described: Vec<String> = config.blackouts.iter().map(|b| b.describe()).collect();
    assert_eq!(described, ["`0 18 * * FRI` for 2days 14h (weekend)", "2026-12-20 to 2027-01-03"]);
    assert_eq!(config.jobs["webhook"].blackouts.len(), 1);
}

#[test]
fn a_window_is_one_form_or_the_other_with_what_that_form_needs() {
    let both =
        format!("[[blackout]]\ncron = \"0 0 * * *\"\nduration = \"1h\"\nfrom = \"2026-01-01\"\n{MINIMAL}");
    error(&both, 1, "blackout[0]", &["either `cron` with `duration`", "or `from` with `to`"]);
    let no_duration = format!("[[blackout]]\ncron = \"0 0 * * *\"\n{MINIMAL}");
    error(&no_duration, 1, "blackout[0]", &["needs a `duration`"]);
    let no_to = format!("[[blackout]]\nfrom = \"2026-01-01\"\n{MINIMAL}");
    error(&no_to, 1, "blackout[0]", &["needs `to`"]);
    let bad_date = format!("[[blackout]]\nfrom = \"2026-13-01\"\nto = \"2027-01-01\"\n{MINIMAL}");
    error(&bad_date, 2, "blackout[0].from", &["`2026-13-01` is not a date: expected YYYY-MM-DD"]);
    let backwards = format!("[[blackout]]\nfrom = \"2026-02-01\"\nto = \"2026-01-01\"\n{MINIMAL}");
    error(&backwards, 3, "blackout[0].to", &["is before `from`"]);
    let bad_cron = format!("[[blackout]]\ncron = \"0 0 * *\"\nduration = \"1h\"\n{MINIMAL}");
    error(&bad_cron, 2, "blackout[0].cron", &["5 fields"]);
    let long = format!("[[blackout]]\ncron = \"0 0 * * *\"\nduration = \"31d\"\n{MINIMAL}");
    error(&long, 3, "blackout[0].duration", &["expected at most 30d"]);
    let unknown =
        format!("[[blackout]]\nfrom = \"2026-01-01\"\nto = \"2026-01-02\"\nzone = \"UTC\"\n{MINIMAL}");
    error(&unknown, 4, "blackout[0].zone", &["unknown"]);
}
