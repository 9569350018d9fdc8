//! The report as text: a table for a person at a terminal, JSON and CSV for tools, Markdown for a ticket or a wiki,
//! and HTML (`html.rs`) for a file to hand to an auditor. Every format is made whole in memory and written once.

use super::{Check, JobReport, Outcome, Report, human_age, timestamp};
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Markdown,
    Html,
}

/// The report in `format`.
pub fn render(report: &Report, format: Format) -> Result<String, serde_json::Error> {
    Ok(match format {
        Format::Table => table(report),
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Csv => csv(report),
        Format::Markdown => markdown(report),
        Format::Html => super::html::html(report),
    })
}

fn or_never(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(timestamp).unwrap_or_else(|| "never".into())
}

fn age(job: &JobReport) -> String {
    job.evidence.age_seconds.map(human_age).unwrap_or_else(|| "-".into())
}

fn history_counts(job: &JobReport) -> (String, String) {
    if job.history.recorded {
        (job.history.rotations.to_string(), job.history.failures.to_string())
    } else {
        ("-".into(), "-".into())
    }
}

fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let history = if report.audit.recorded {
        format!(
            "history since {} ({}): {} audit line(s) read, {} malformed",
            timestamp(report.window_start),
            report.since,
            report.audit.lines,
            report.audit.malformed_lines
        )
    } else {
        "history not recorded (no audit file)".to_owned()
    };
    format!(
        "{} job(s): {} compliant, {} non-compliant, {} unknown; {history}",
        s.jobs, s.compliant, s.non_compliant, s.unknown
    )
}

fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<14} {:>9} {:>9} {:<21} {:>9} {:>8} SET BY",
        "JOB", "VERDICT", "AGE", "MAX AGE", "LAST VERIFY", "ROTATIONS", "FAILURES"
    );
    for job in &report.jobs {
        let (rotations, failures) = history_counts(job);
        let _ = writeln!(
            out,
            "{:<24} {:<14} {:>9} {:>9} {:<21} {:>9} {:>8} {}",
            job.job,
            job.verdict.name(),
            age(job),
            job.evidence.max_age.as_deref().unwrap_or("-"),
            or_never(job.evidence.last_verify),
            rotations,
            failures,
            job.evidence.apply
        );
    }
    for job in report.jobs.iter().filter(|j| !j.reasons.is_empty()) {
        let _ = writeln!(out, "\n{} is {}:", job.job, job.verdict.name());
        for reason in &job.reasons {
            let _ = writeln!(out, "  - {reason}");
        }
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "\nwarning: {warning}");
    }
    let _ = writeln!(out, "\n{}", summary_line(report));
    out
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes doubled. A field a
/// spreadsheet would run as a formula (`=`, `+`, `@`, a tab, or `-` not starting a number: an error text from a
/// target can begin so) gets a leading `'`, so that opening the evidence runs nothing.
pub(super) fn csv_field(text: &str) -> String {
    let mut chars = text.chars();
    let formula = match chars.next() {
        Some('=' | '+' | '@' | '\t' | '\r') => true,
        Some('-') => !chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    };
    let text = if formula { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

const CSV_HEADER: [&str; 17] = [
    "job",
    "apply",
    "verdict",
    "reasons",
    "age_seconds",
    "max_age_seconds",
    "last_rotation",
    "last_success",
    "last_verify",
    "next_due",
    "generation",
    "strength_bits",
    "min_strength_bits",
    "rotations",
    "imports",
    "failures",
    "triggers",
];

fn csv(report: &Report) -> String {
    let mut out = CSV_HEADER.join(",") + "\r\n";
    let opt = |v: Option<String>| v.unwrap_or_default();
    for job in &report.jobs {
        let e = &job.evidence;
        let h = &job.history;
        let counted = |n: u64| if h.recorded { n.to_string() } else { String::new() };
        let triggers: Vec<String> = h.triggers.iter().map(|(t, n)| format!("{t}={n}")).collect();
        let row = [
            job.job.clone(),
            e.apply.to_owned(),
            job.verdict.name().to_owned(),
            job.reasons.join("; "),
            opt(e.age_seconds.map(|a| a.to_string())),
            opt(e.max_age_seconds.map(|a| a.to_string())),
            opt(e.last_rotation.map(timestamp)),
            opt(e.last_success.map(timestamp)),
            opt(e.last_verify.map(timestamp)),
            opt(e.next_due.map(timestamp)),
            opt(e.generation.map(|g| g.to_string())),
            e.strength_bits.to_string(),
            opt(e.min_strength_bits.map(|b| b.to_string())),
            counted(h.rotations),
            counted(h.imports),
            counted(h.failures),
            triggers.join("; "),
        ];
        let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Text for a Markdown table cell or line: no pipe ends a cell, no line break ends a row, and no `<` starts HTML.
pub(super) fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\\' | '`' | '*' | '_' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

fn outcome(check: &Check) -> &'static str {
    match check.outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "**FAIL**",
        Outcome::Unknown => "unknown",
    }
}

fn markdown(report: &Report) -> String {
    let mut out = String::from("# rotavault report\n\n");
    let _ = writeln!(out, "Generated {}. {}.\n", timestamp(report.generated_at), md(&summary_line(report)));
    let p = &report.policy;
    let _ = writeln!(
        out,
        "Policy: max_age {}, min_length {}, min_strength_bits {}, forbidden characters {}.\n",
        md(p.max_age.as_deref().unwrap_or("not set")),
        p.min_length.map(|n| n.to_string()).unwrap_or_else(|| "not set".into()),
        p.min_strength_bits.map(|n| n.to_string()).unwrap_or_else(|| "not set".into()),
        if p.forbidden.is_empty() {
            "none".to_owned()
        } else {
            format!("`{}`", p.forbidden.replace('`', "'"))
        }
    );
    out.push_str("| Job | Verdict | Age | Max age | Last verify | Rotations | Failures |\n");
    out.push_str("|---|---|---:|---:|---|---:|---:|\n");
    for job in &report.jobs {
        let (rotations, failures) = history_counts(job);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {rotations} | {failures} |",
            md(&job.job),
            job.verdict.name(),
            age(job),
            md(job.evidence.max_age.as_deref().unwrap_or("-")),
            or_never(job.evidence.last_verify)
        );
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "\n> warning: {}", md(warning));
    }
    for job in &report.jobs {
        let e = &job.evidence;
        let _ = writeln!(out, "\n## {}: {}\n", md(&job.job), job.verdict.name());
        let _ = writeln!(out, "Target: {}. State: {}. Set by: {}.\n", md(&job.target), e.state, e.apply);
        for reason in &job.reasons {
            let _ = writeln!(out, "- {}", md(reason));
        }
        if !job.reasons.is_empty() {
            out.push('\n');
        }
        out.push_str("| Check | Outcome | Detail |\n|---|---|---|\n");
        for check in &job.checks {
            let _ = writeln!(out, "| {} | {} | {} |", md(check.name), outcome(check), md(&check.detail));
        }
        let _ = writeln!(
            out,
            "\nLast rotation {}, last success {}, last verify {}{}, next due {}, generation {}.\n",
            or_never(e.last_rotation),
            or_never(e.last_success),
            or_never(e.last_verify),
            e.last_verify_by.as_deref().map(|b| format!(" (by {})", md(b))).unwrap_or_default(),
            or_never(e.next_due),
            e.generation.map(|g| g.to_string()).unwrap_or_else(|| "-".into())
        );
        out.push_str("| Store | Backend | Secret | Generation | Rotation | Previous | Error |\n");
        out.push_str("|---|---|---|---:|---|---|---|\n");
        for st in &e.stores {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md(&st.store),
                st.backend,
                md(&st.name),
                st.generation.map(|g| g.to_string()).unwrap_or_else(|| "-".into()),
                md(st.rotation_id.as_deref().unwrap_or("-")),
                md(&super::html::previous_text(&st.previous)),
                md(st.error.as_deref().unwrap_or(""))
            );
        }
        let h = &job.history;
        if h.recorded {
            let triggers: Vec<String> = h.triggers.iter().map(|(t, n)| format!("{} × {n}", md(t))).collect();
            let _ = writeln!(
                out,
                "\nHistory: {} rotation(s), {} import(s), {} failure(s); triggers: {}.",
                h.rotations,
                h.imports,
                h.failures,
                if triggers.is_empty() { "none".to_owned() } else { triggers.join(", ") }
            );
        } else {
            out.push_str("\nHistory: not recorded.\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_field_with_a_comma_quote_or_line_break_is_quoted_with_quotes_doubled() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn a_csv_field_a_spreadsheet_would_run_as_a_formula_is_made_text_and_numbers_stay_numbers() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("-cmd"), "'-cmd");
        assert_eq!(csv_field("-5"), "-5");
        assert_eq!(csv_field("2026-12-06T00:27:33Z"), "2026-12-06T00:27:33Z");
    }

    #[test]
    fn markdown_text_cannot_end_a_cell_or_a_row_or_open_html() {
        assert_eq!(md("a|b\nc <script>"), "a\\|b c &lt;script&gt;");
    }
}
