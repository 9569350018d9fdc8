//! `[notify.NAME]`: subscriptions, kinds, secrets only in files, and email's TLS rule.

use super::{MINIMAL, error, valid};
use crate::config::{NotifyChannelConfig, NotifyConfig};
use crate::events::EventKind;
use crate::notify::SmtpTls;
use std::path::Path;

fn sink(extra: &str) -> NotifyConfig {
    let config = valid(&format!("{MINIMAL}\n{extra}"));
    config.notify.into_values().next().expect("one sink")
}

#[test]
fn a_sink_without_events_gets_the_default_subscription_for_every_job() {
    let got = sink("[notify.ops]\nkind = \"slack\"\nurl_file = \"slack.url\"\n");
    let expected: Vec<EventKind> = EventKind::ALL.into_iter().filter(|k| k.notifies_by_default()).collect();
    assert_eq!(got.events, expected);
    assert!(!got.events.contains(&EventKind::Rotated));
    assert_eq!(got.jobs, None);
    assert_eq!(
        got.channel,
        NotifyChannelConfig::Slack { url_file: Path::new("/etc/rotavault/slack.url").into() }
    );
}

#[test]
fn a_webhook_sink_subscribes_to_named_events_and_jobs_and_names_its_key_file() {
    let got = sink(
        "[notify.hook]\nkind = \"webhook\"\nevents = [\"rotated\", \"failed\"]\njobs = [\"webhook\"]\n\
         url_file = \"/run/hook.url\"\nkey_file = \"/run/hook.key\"\nqueue = 10\n",
    );
    assert_eq!(got.events, vec![EventKind::Rotated, EventKind::Failed]);
    assert_eq!(got.jobs, Some(vec!["webhook".to_owned()]));
    assert_eq!(got.queue, 10);
    assert!(matches!(got.channel, NotifyChannelConfig::Webhook { .. }));
}

#[test]
fn an_unknown_event_name_is_reported_with_the_known_ones() {
    let source = format!(
        "{MINIMAL}\n[notify.ops]\nkind = \"teams\"\nurl_file = \"u\"\nevents = [\"failed\", \"explode\"]\n"
    );
    let line = source.lines().count();
    error(
        &source,
        line,
        "notify.ops.events[1]",
        &["not an event name", "age_warning", "notification_failed"],
    );
}

#[test]
fn a_sink_for_an_unknown_job_is_reported_with_the_jobs() {
    let source = format!("{MINIMAL}\n[notify.ops]\nkind = \"teams\"\nurl_file = \"u\"\njobs = [\"nope\"]\n");
    let line = source.lines().count();
    error(&source, line, "notify.ops.jobs[0]", &["no such job", "`webhook`"]);
}

#[test]
fn an_inline_url_is_not_a_key_and_is_never_repeated() {
    let source = format!(
        "{MINIMAL}\n[notify.ops]\nkind = \"slack\"\nurl = \"https://hooks.example/T0/B0/sekret\"\nurl_file = \"u\"\n"
    );
    let line = source.lines().count() - 1;
    let err = error(&source, line, "notify.ops.url", &["url_file"]);
    assert!(!err.to_string().contains("sekret"), "{err}");
}

#[test]
fn a_webhook_sink_needs_a_key_file_and_a_slack_sink_takes_none() {
    let source = format!("{MINIMAL}\n[notify.hook]\nkind = \"webhook\"\nurl_file = \"u\"\n");
    let line = source.lines().count() - 2;
    error(&source, line, "notify.hook", &["missing `key_file`", "whsec_"]);
    let source = format!("{MINIMAL}\n[notify.ops]\nkind = \"slack\"\nurl_file = \"u\"\nkey_file = \"k\"\n");
    error(
        &source,
        source.lines().count(),
        "notify.ops.key_file",
        &["only a `kind = \"webhook\"` sink signs"],
    );
}

#[test]
fn email_defaults_to_starttls_on_587_and_refuses_plain_smtp_off_the_loopback() {
    let got = sink(
        "[notify.mail]\nkind = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"rotavault@example.com\"\n\
         to = [\"Ops <ops@example.com>\"]\nusername = \"rotavault\"\npassword_file = \"smtp.pw\"\n",
    );
    let NotifyChannelConfig::Email(email) = got.channel else { panic!("an email sink") };
    assert_eq!((email.tls, email.port), (SmtpTls::StartTls, 587));
    assert_eq!(email.password_file.as_deref(), Some(Path::new("/etc/rotavault/smtp.pw")));

    let source = format!(
        "{MINIMAL}\n[notify.mail]\nkind = \"email\"\nhost = \"smtp.example.com\"\ntls = \"none\"\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\n"
    );
    error(&source, source.lines().count() - 2, "notify.mail.tls", &["in the clear", "loopback"]);
    let local = sink(
        "[notify.mail]\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\n",
    );
    assert!(
        matches!(local.channel, NotifyChannelConfig::Email(e) if e.port == 2525 && e.tls == SmtpTls::None)
    );
}

#[test]
fn a_bad_address_and_a_username_without_password_file_are_reported() {
    let source = format!(
        "{MINIMAL}\n[notify.mail]\nkind = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\n\
         to = [\"not an address\"]\n"
    );
    error(&source, source.lines().count(), "notify.mail.to[0]", &["not an email address"]);
    let source = format!(
        "{MINIMAL}\n[notify.mail]\nkind = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\n\
         to = [\"b@example.com\"]\nusername = \"u\"\n"
    );
    error(&source, source.lines().count() - 5, "notify.mail", &["`username` without `password_file`"]);
}

#[test]
fn an_email_ca_file_is_resolved_against_the_config_and_listed_for_check() {
    let config = valid(&format!(
        "{MINIMAL}\n[notify.mail]\nkind = \"email\"\nhost = \"smtp.internal\"\ntls = \"implicit\"\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\nca_file = \"smtp-ca.pem\"\n"
    ));
    let ca = config.files.iter().find(|f| f.key == "notify.mail.ca_file").expect("the CA file is listed");
    assert_eq!(ca.path, Path::new("/etc/rotavault/smtp-ca.pem"));
    assert!(ca.holds.contains("CA certificates"), "{}", ca.holds);
    let NotifyChannelConfig::Email(email) = &config.notify["mail"].channel else { panic!("an email sink") };
    assert_eq!(email.ca_file.as_deref(), Some(Path::new("/etc/rotavault/smtp-ca.pem")));
    assert_eq!((email.tls, email.port), (SmtpTls::Implicit, 465));
}

#[test]
fn an_email_ca_file_without_tls_is_reported() {
    let source = format!(
        "{MINIMAL}\n[notify.mail]\nkind = \"email\"\nhost = \"localhost\"\ntls = \"none\"\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\nca_file = \"ca.pem\"\n"
    );
    error(&source, source.lines().count(), "notify.mail.ca_file", &["checks no certificate", "starttls"]);
}
