//! The report as one self-contained HTML page: inline CSS, no script, no external asset, so that it opens the same
//! from an email, an archive or an air-gapped laptop in ten years. Each job has an inline SVG chart of its secret's
//! age over the window against its `max_age`.
//!
//! Every text placed in the page passes [`escape`]: job names, store names and error messages come from configs
//! and from servers, and a report must not become a way to run script in an auditor's browser.

use super::{AgePoint, JobReport, Outcome, PreviousSlot, Report, Verdict, human_age, timestamp};
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// `text` safe in HTML element content and in quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A store's previous slot in words (Markdown and HTML).
pub(super) fn previous_text(previous: &PreviousSlot) -> String {
    match previous {
        PreviousSlot::NotRead => "not read".into(),
        PreviousSlot::Present { generation } => format!("present (generation {generation})"),
        PreviousSlot::Absent => "absent".into(),
        PreviousSlot::NotOwned { error } | PreviousSlot::Unreadable { error } => error.clone(),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}\
.compliant{color:#17622f}.non_compliant{color:#a61b1b;font-weight:bold}.unknown{color:#8a5a00;font-weight:bold}\
.fail{color:#a61b1b}.warning{background:#fff4d6;padding:.5em}section.job{margin-top:2em}\
svg text{font-size:11px;fill:#444}";

pub(super) fn html(report: &Report) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(out, "<title>rotavault report {}</title>", timestamp(report.generated_at));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>\n<h1>rotavault report</h1>");
    let s = &report.summary;
    let _ = writeln!(
        out,
        "<p>Generated {}; history since {} ({}). {} job(s): {} compliant, {} non-compliant, {} unknown.</p>",
        timestamp(report.generated_at),
        timestamp(report.window_start),
        escape(&report.since),
        s.jobs,
        s.compliant,
        s.non_compliant,
        s.unknown
    );
    let p = &report.policy;
    let _ = writeln!(
        out,
        "<p>Policy: max_age {}, min_length {}, min_strength_bits {}, forbidden characters {}.</p>",
        escape(p.max_age.as_deref().unwrap_or("not set")),
        p.min_length.map(|n| n.to_string()).unwrap_or_else(|| "not set".into()),
        p.min_strength_bits.map(|n| n.to_string()).unwrap_or_else(|| "not set".into()),
        if p.forbidden.is_empty() {
            "none".to_owned()
        } else {
            format!("<code>{}</code>", escape(&p.forbidden))
        }
    );
    if !report.audit.recorded {
        out.push_str("<p class=\"warning\">History is not recorded (no audit file): the charts show only what the stores say.</p>\n");
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "<p class=\"warning\">{}</p>", escape(warning));
    }
    summary_table(&mut out, &report.jobs);
    for job in &report.jobs {
        job_section(&mut out, job, report.window_start, report.generated_at);
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn verdict_cell(verdict: Verdict) -> String {
    format!("<span class=\"{0}\">{0}</span>", verdict.name())
}

fn summary_table(out: &mut String, jobs: &[JobReport]) {
    out.push_str("<table id=\"summary\">\n<tr><th>Job</th><th>Verdict</th><th>Age</th><th>Max age</th><th>Last verify</th><th>Rotations</th><th>Failures</th></tr>\n");
    for job in jobs {
        let e = &job.evidence;
        let counted = |n: u64| if job.history.recorded { n.to_string() } else { "-".into() };
        let _ = writeln!(
            out,
            "<tr data-job=\"{}\" data-verdict=\"{}\"><td>{}</td><td>{}</td><td data-seconds=\"{}\">{}</td><td data-seconds=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&job.job),
            job.verdict.name(),
            escape(&job.job),
            verdict_cell(job.verdict),
            e.age_seconds.map(|a| a.to_string()).unwrap_or_default(),
            e.age_seconds.map(human_age).unwrap_or_else(|| "-".into()),
            e.max_age_seconds.map(|a| a.to_string()).unwrap_or_default(),
            escape(e.max_age.as_deref().unwrap_or("-")),
            e.last_verify.map(timestamp).unwrap_or_else(|| "never".into()),
            counted(job.history.rotations),
            counted(job.history.failures),
        );
    }
    out.push_str("</table>\n");
}

fn job_section(out: &mut String, job: &JobReport, start: DateTime<Utc>, now: DateTime<Utc>) {
    let e = &job.evidence;
    let _ = writeln!(
        out,
        "<section class=\"job\" data-job=\"{}\" data-verdict=\"{}\">\n<h2>{}: {}</h2>",
        escape(&job.job),
        job.verdict.name(),
        escape(&job.job),
        verdict_cell(job.verdict)
    );
    let _ = writeln!(out, "<p>Target: {}. State: {}. Set by: {}.</p>", escape(&job.target), e.state, e.apply);
    if !job.reasons.is_empty() {
        out.push_str("<ul class=\"reasons\">\n");
        for reason in &job.reasons {
            let _ = writeln!(out, "<li>{}</li>", escape(reason));
        }
        out.push_str("</ul>\n");
    }
    let limit = e.max_age_seconds.zip(e.max_age.as_deref());
    out.push_str(&chart(&job.age_series, limit, start, now, &job.job));
    out.push_str("<table class=\"checks\">\n<tr><th>Check</th><th>Outcome</th><th>Detail</th></tr>\n");
    for check in &job.checks {
        let (class, word) = match check.outcome {
            Outcome::Pass => ("pass", "pass"),
            Outcome::Fail => ("fail", "FAIL"),
            Outcome::Unknown => ("unknown", "unknown"),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
            check.name,
            escape(&check.detail)
        );
    }
    out.push_str("</table>\n");
    let when = |at: Option<DateTime<Utc>>| at.map(timestamp).unwrap_or_else(|| "never".into());
    let _ = writeln!(
        out,
        "<p>Last rotation {}, last success {}, last verify {}{}, next due {}.</p>",
        when(e.last_rotation),
        when(e.last_success),
        when(e.last_verify),
        e.last_verify_by.as_deref().map(|b| format!(" (by {})", escape(b))).unwrap_or_default(),
        when(e.next_due)
    );
    out.push_str("<table class=\"stores\">\n<tr><th>Store</th><th>Backend</th><th>Secret</th><th>Generation</th><th>Rotation</th><th>Previous</th><th>Error</th></tr>\n");
    for st in &e.stores {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&st.store),
            st.backend,
            escape(&st.name),
            st.generation.map(|g| g.to_string()).unwrap_or_else(|| "-".into()),
            escape(st.rotation_id.as_deref().unwrap_or("-")),
            escape(&previous_text(&st.previous)),
            escape(st.error.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>\n");
    let h = &job.history;
    if h.recorded {
        let triggers: Vec<String> = h.triggers.iter().map(|(t, n)| format!("{} × {n}", escape(t))).collect();
        let _ = writeln!(
            out,
            "<p>History: {} rotation(s), {} import(s), {} failure(s); triggers: {}.</p>",
            h.rotations,
            h.imports,
            h.failures,
            if triggers.is_empty() { "none".to_owned() } else { triggers.join(", ") }
        );
    } else {
        out.push_str("<p>History: not recorded.</p>\n");
    }
    out.push_str("</section>\n");
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 30.0;

/// The secret's age over `[start, now]` as an SVG line, with `max_age` (seconds, and as written) as a dashed
/// horizontal line.
fn chart(
    points: &[AgePoint],
    max_age: Option<(u64, &str)>,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    job: &str,
) -> String {
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let span = (now - start).num_seconds().max(1) as f64;
    let highest = points.iter().map(|p| p.age_seconds.max(0) as f64).fold(0.0, f64::max);
    let top = highest.max(max_age.map_or(0, |(seconds, _)| seconds) as f64).max(1.0) * 1.1;
    let x = |at: DateTime<Utc>| LEFT + ((at - start).num_seconds() as f64 / span).clamp(0.0, 1.0) * plot_w;
    let y = |age: f64| TOP + plot_h - (age.max(0.0) / top) * plot_h;
    let mut svg = format!(
        "<svg class=\"age-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\">\n<title>Age of {}'s secret from {} to {}</title>\n",
        escape(job),
        timestamp(start),
        timestamp(now)
    );
    let (bottom, right) = (TOP + plot_h, LEFT + plot_w);
    let _ = writeln!(
        svg,
        "<polyline points=\"{LEFT},{TOP} {LEFT},{bottom} {right},{bottom}\" fill=\"none\" stroke=\"#888\"/>"
    );
    let _ = writeln!(svg, "<text x=\"{LEFT}\" y=\"{}\">{}</text>", HEIGHT - 8.0, escape(&day(start)));
    let _ = writeln!(
        svg,
        "<text x=\"{right}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        HEIGHT - 8.0,
        escape(&day(now))
    );
    let _ = writeln!(svg, "<text x=\"{}\" y=\"{bottom}\" text-anchor=\"end\">0</text>", LEFT - 4.0);
    if let Some((limit, written)) = max_age {
        let ly = y(limit as f64);
        let _ = writeln!(
            svg,
            "<line class=\"max-age\" x1=\"{LEFT}\" y1=\"{ly:.1}\" x2=\"{right}\" y2=\"{ly:.1}\" stroke=\"#a61b1b\" stroke-dasharray=\"6 4\"/>\n<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 4.0,
            ly + 4.0,
            escape(written)
        );
    }
    if points.is_empty() {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no age known in this window</text>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    } else {
        let coords: Vec<String> =
            points.iter().map(|p| format!("{:.1},{:.1}", x(p.at), y(p.age_seconds as f64))).collect();
        let _ = writeln!(
            svg,
            "<polyline class=\"age\" points=\"{}\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\"/>",
            coords.join(" ")
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn day(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_that_could_open_markup_or_end_an_attribute_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape("plain-job_1"), "plain-job_1");
    }

    #[test]
    fn the_chart_draws_the_age_and_the_max_age_line_and_says_when_nothing_is_known() {
        let start = DateTime::from_timestamp(0, 0).expect("time");
        let now = start + chrono::Duration::days(90);
        let points =
            [AgePoint { at: start, age_seconds: 5 * 86_400 }, AgePoint { at: now, age_seconds: 95 * 86_400 }];
        let svg = chart(&points, Some((30 * 86_400, "30d")), start, now, "a<b");
        assert!(svg.contains("class=\"age\"") && svg.contains("class=\"max-age\""), "{svg}");
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"), "{svg}");
        assert!(svg.contains(">30d</text>"), "the max_age line is labelled: {svg}");
        let empty = chart(&[], None, start, now, "job");
        assert!(empty.contains("no age known") && !empty.contains("max-age"), "{empty}");
    }
}
