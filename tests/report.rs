//! `rotavault report` through the real binary against an in-process sandbox: a tenant whose jobs were imported and
//! rotated, with an audit file. The JSON form is the reference; the HTML form, parsed by a real HTML parser, must
//! say the same of every job (verdict, age, max_age) with an age chart each, no script and nothing fetched from
//! elsewhere. Compliant jobs exit 0; a job diverged behind rotavault's back exits 1 and is named with its reason;
//! bad usage exits 64. A torn audit line is counted and warned about; without an audit file the history is "not
//! recorded" and the report still stands. The report changes no file, and nothing it prints holds a secret.

mod support;

use scraper::{Html, Selector};
use std::path::Path;
use support::binary::{Rotavault, files_under, text};
use support::tenant::{Accounts, start_sandbox};
use tokio_util::sync::CancellationToken;

const CODE: &str = "REPORT-CLI-CODE";
const ADMIN: &str = "admin@report.example";
const ADMIN_PASSWORD: &str = "Ad#min-report-Passw0rd";
const USER: &str = "api@report.example";
const USER_PASSWORD: &str = "Api#report-initial-1";
const CHANGED_PASSWORD: &str = "Set-by-a-p3rson-for-the-report!";

fn write_config(dir: &Path, zone: &str, accounts: &Accounts<'_>) -> std::path::PathBuf {
    let tenant =
        support::tenant::config_sections(zone, accounts, r#"{ store = "local", name = "autotask/api" }"#);
    std::fs::write(dir.join("code"), CODE).expect("code");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_dir = "state"

[http]
listen = "127.0.0.1:0"

[audit]
path = "audit.jsonl"

# The daemon is not run here: every verify the report sees is a rotation's or an import's, seconds old.
[policy]
heartbeat = "1h"

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

{tenant}"#
        ),
    )
    .expect("config");
    config
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("a valid selector")
}

/// The HTML page says of every job what the JSON says, with a chart each, and is self-contained.
fn assert_html_matches_json(html: &str, json: &serde_json::Value) {
    let page = Html::parse_document(html);
    assert!(page.select(&selector("script")).next().is_none(), "no script in the page");
    for element in page.select(&selector("*")) {
        for (name, value) in element.value().attrs() {
            let external = value.trim_start().to_ascii_lowercase();
            assert!(
                !(matches!(name, "src" | "href")
                    && (external.starts_with("http") || external.starts_with("//"))),
                "an external {name}: {value}"
            );
        }
    }
    let jobs = json["jobs"].as_array().expect("jobs");
    assert_eq!(page.select(&selector("section.job")).count(), jobs.len(), "one section per job");
    for job in jobs {
        let name = job["job"].as_str().expect("name");
        let verdict = job["verdict"].as_str().expect("verdict");
        let row = page
            .select(&selector(&format!("#summary tr[data-job=\"{name}\"]")))
            .next()
            .unwrap_or_else(|| panic!("a summary row for {name}"));
        assert_eq!(row.value().attr("data-verdict"), Some(verdict), "{name}");
        let cells: Vec<_> = row.select(&selector("td")).collect();
        assert_eq!(cells[0].text().collect::<String>(), name);
        assert_eq!(cells[1].text().collect::<String>(), verdict);
        let seconds = |cell: &scraper::ElementRef<'_>| cell.value().attr("data-seconds").map(str::to_owned);
        // Two runs, moments apart: the age may have grown by a few seconds between them.
        let html_age: i64 = seconds(&cells[2]).expect("age").parse().expect("a number");
        let json_age = job["evidence"]["age_seconds"].as_i64().expect("age");
        assert!(
            (0..=30).contains(&(html_age - json_age)),
            "{name}: age {html_age} in HTML, {json_age} in JSON"
        );
        assert_eq!(seconds(&cells[3]), job["evidence"]["max_age_seconds"].as_u64().map(|s| s.to_string()));
        let verified = match job["evidence"]["last_verify"].as_str() {
            Some(at) => chrono::DateTime::parse_from_rfc3339(at)
                .expect("a time")
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            None => "never".to_owned(),
        };
        assert_eq!(cells[4].text().collect::<String>(), verified, "{name}: last verify");
        let section = page
            .select(&selector(&format!("section.job[data-job=\"{name}\"]")))
            .next()
            .unwrap_or_else(|| panic!("a section for {name}"));
        assert_eq!(section.value().attr("data-verdict"), Some(verdict));
        assert!(section.select(&selector("svg.age-chart polyline.age")).next().is_some(), "{name}: age line");
        assert!(
            section.select(&selector("svg.age-chart line.max-age")).next().is_some(),
            "{name}: max_age line"
        );
        let listed: Vec<String> =
            section.select(&selector("ul.reasons li")).map(|li| li.text().collect()).collect();
        let reasons: Vec<String> = job["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .map(|r| r.as_str().expect("text").to_owned())
            .collect();
        assert_eq!(listed, reasons, "{name}: the same reasons");
    }
}

#[test]
fn report_gives_each_jobs_verdict_with_its_evidence_in_json_and_html_and_its_exit_code() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let shutdown = CancellationToken::new();
    let accounts = Accounts {
        code: CODE,
        admin: ADMIN,
        admin_password: ADMIN_PASSWORD,
        user: USER,
        user_password: USER_PASSWORD,
    };
    let sandbox = rt.block_on(start_sandbox(&accounts, &shutdown));
    let dir = tempfile::tempdir().expect("tempdir");
    let rotavault =
        Rotavault::new(dir.path(), write_config(dir.path(), &sandbox.zone_lookup_url(), &accounts));
    let mut printed = String::new();
    let mut cli = |args: &[&str], stdin: Option<&str>| {
        let out = rotavault.cli(args, stdin);
        printed.push_str(&text(&out));
        out
    };
    assert!(cli(&["keygen", "--out", "store.key"], None).status.success());
    let out = cli(&["import", "admin"], Some(ADMIN_PASSWORD));
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(&["import", "api", "--no-rotate"], Some(USER_PASSWORD));
    assert!(out.status.success(), "{}", text(&out));
    for _ in 0..2 {
        let out = cli(&["rotate", "api"], None);
        assert!(out.status.success(), "{}", text(&out));
    }

    // Everything rotavault keeps (store, state, audit file), to prove the report changed none of it.
    let kept = |dir: &Path| {
        let mut files = files_under(dir);
        files.retain(|(path, _)| path.file_name().is_none_or(|name| name != "report.html"));
        files
    };
    let before = kept(dir.path());
    let out = cli(&["report", "--format", "json"], None);
    assert_eq!(out.status.code(), Some(0), "every job is compliant: {}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let api = json["jobs"].as_array().expect("jobs").iter().find(|j| j["job"] == "api").expect("api");
    assert_eq!(api["verdict"], "compliant", "{api}");
    assert_eq!(api["history"]["rotations"], 2, "{api}");
    assert_eq!(api["history"]["imports"], 1, "{api}");
    assert_eq!(api["history"]["triggers"]["manual"], 2, "{api}");
    assert_eq!(api["evidence"]["generation"], 3, "{api}");
    assert_eq!(api["evidence"]["stores"][0]["previous"]["slot"], "present", "{api}");
    assert_eq!(api["evidence"]["max_age_seconds"], 30 * 86_400);
    assert_eq!(api["evidence"]["last_verify_by"], "rotation", "the last rotation's verify: {api}");
    let verified =
        api["checks"].as_array().expect("checks").iter().find(|c| c["name"] == "recently_verified");
    assert_eq!(verified.expect("the heartbeat check")["outcome"], "pass", "{api}");
    assert_eq!(json["audit"]["recorded"], true);

    let out = cli(&["report", "--format", "html", "--output", "report.html"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("the report file");
    let mut pages = html.clone();
    assert_html_matches_json(&html, &json);

    for format in ["table", "csv", "markdown"] {
        let out = cli(&["report", "--format", format], None);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", text(&out));
    }
    assert_eq!(
        kept(dir.path()),
        before,
        "the report changed no file: store, state and audit file as they were"
    );

    // A person changes the API user's password in Autotask: the next rotation finds the job diverged.
    sandbox.set_password_behind_the_back(USER, CHANGED_PASSWORD);
    assert_eq!(cli(&["rotate", "api"], None).status.code(), Some(3));
    let out = cli(&["report", "--format", "json"], None);
    assert_eq!(out.status.code(), Some(1), "a job is not compliant: {}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let verdicts: Vec<(String, String)> = json["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| (j["job"].as_str().expect("job").to_owned(), j["verdict"].as_str().expect("v").to_owned()))
        .collect();
    assert_eq!(verdicts, [("admin".into(), "compliant".into()), ("api".into(), "non_compliant".into())]);
    let api = json["jobs"].as_array().expect("jobs").iter().find(|j| j["job"] == "api").expect("api");
    let reasons = api["reasons"].to_string();
    assert!(reasons.contains("not_diverged: diverged since"), "{reasons}");
    assert_eq!(api["history"]["failures"], 1, "the diverged event is counted: {api}");
    let out = cli(&["report", "--format", "html"], None);
    assert_eq!(out.status.code(), Some(1));
    pages.push_str(&String::from_utf8_lossy(&out.stdout));
    assert_html_matches_json(&String::from_utf8_lossy(&out.stdout), &json);
    let out = cli(&["report", "api", "--format", "csv"], None);
    assert_eq!(out.status.code(), Some(1));
    let csv = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(csv.starts_with("job,apply,verdict,reasons,"), "{csv}");
    let row = csv.lines().nth(1).expect("one row after the header");
    assert!(
        row.starts_with("api,rotavault,non_compliant,") && row.contains("not_diverged: diverged since"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 2, "only the job asked for: {csv}");
    let out = cli(&["report", "admin"], None);
    assert_eq!(out.status.code(), Some(0), "one compliant job asked for: {}", text(&out));

    // A line cut off by a crash is counted and said, not fatal; with no audit file, history is "not recorded".
    let audit = dir.path().join("audit.jsonl");
    let mut lines = std::fs::read_to_string(&audit).expect("the audit file");
    lines.push_str("{\"type\":\"io.rotavault.rotation.rot\n");
    std::fs::write(&audit, lines).expect("a torn line");
    let out = cli(&["report", "--format", "json"], None);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["audit"]["malformed_lines"], 1, "{json}");
    assert!(json["warnings"][0].as_str().expect("a warning").contains("1 line(s)"), "{json}");
    assert!(String::from_utf8_lossy(&cli(&["report"], None).stdout).contains("warning: 1 line(s)"));
    std::fs::remove_file(&audit).expect("remove");
    let out = cli(&["report", "--format", "json"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["audit"]["recorded"], false, "{json}");
    assert_eq!(json["jobs"][0]["history"]["recorded"], false, "{json}");
    let out = cli(&["report", "--format", "html"], None);
    assert_html_matches_json(&String::from_utf8_lossy(&out.stdout), &json);
    assert!(String::from_utf8_lossy(&out.stdout).contains("History is not recorded"));

    let out = cli(&["report", "--since", "90"], None);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("--since `90` is not a duration"), "{}", text(&out));
    let out = cli(&["report", "nosuch"], None);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));

    let mut secrets = vec![ADMIN_PASSWORD.to_owned(), USER_PASSWORD.to_owned(), CHANGED_PASSWORD.to_owned()];
    secrets.extend([ADMIN, USER].iter().filter_map(|u| sandbox.password_of(u)));
    printed.push_str(&pages);
    for secret in &secrets {
        assert!(!printed.contains(secret.as_str()), "a password was printed");
    }
    shutdown.cancel();
}
