//! `[notify.NAME]`: notification sinks, as [`NotifyConfig`]: the events and jobs each subscribes to and where it
//! delivers (`kind = "webhook" | "slack" | "teams" | "email"`).
//!
//! Read in two steps like stores (see `schema.rs`): `kind` first, then the kind's own struct, so an unknown key
//! is reported on its own line. URLs, signing keys and SMTP passwords are secrets: only files holding them are
//! named here, and they are read when the daemon starts (`runtime.rs`).

use super::document::Document;
use super::error::ConfigError;
use super::files::NamedFile;
use super::locate::KeyPath;
use super::validate::resolve_path;
use crate::events::EventKind;
use crate::notify::SmtpTls;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The most events a sink may hold while its receiver is down.
const QUEUE_MAX: usize = 10_000;

/// One sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyConfig {
    /// The event kinds it receives (default: those that `notifies_by_default`).
    pub events: Vec<EventKind>,
    /// `None`: every job.
    pub jobs: Option<Vec<String>>,
    /// Its queue's bound.
    pub queue: usize,
    pub channel: NotifyChannelConfig,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyChannelConfig {
    Webhook { url_file: PathBuf, key_file: PathBuf },
    Slack { url_file: PathBuf },
    Teams { url_file: PathBuf },
    Email(EmailConfig),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates trusted for the server's certificate besides the platform's.
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum NotifyKind {
    Webhook,
    Slack,
    Teams,
    Email,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TlsSchema {
    Starttls,
    Implicit,
    None,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebSchema {
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    events: Option<Vec<String>>,
    jobs: Option<Vec<String>>,
    queue: Option<usize>,
    url_file: String,
    /// Only for `kind = "webhook"`, where it is required.
    key_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailSchema {
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    events: Option<Vec<String>>,
    jobs: Option<Vec<String>>,
    queue: Option<usize>,
    host: String,
    port: Option<u16>,
    tls: Option<TlsSchema>,
    from: String,
    to: Vec<String>,
    username: Option<String>,
    password_file: Option<String>,
    ca_file: Option<String>,
}

pub(super) fn build(
    doc: &Document<'_>,
    at: &KeyPath,
    kind: NotifyKind,
    jobs: &BTreeMap<String, super::JobConfig>,
    base: &Path,
) -> Result<NotifyConfig, ConfigError> {
    let (events, job_names, queue, channel) = match kind {
        NotifyKind::Webhook | NotifyKind::Slack | NotifyKind::Teams => {
            let schema: WebSchema = doc.deserialize_at(at)?;
            let url_file = resolve_path(doc, &at.key("url_file"), &schema.url_file, base)?;
            let channel = match (kind, schema.key_file) {
                (NotifyKind::Webhook, Some(key)) => NotifyChannelConfig::Webhook {
                    url_file,
                    key_file: resolve_path(doc, &at.key("key_file"), &key, base)?,
                },
                (NotifyKind::Webhook, None) => {
                    return Err(doc.error(
                        at,
                        "missing `key_file`: expected the path of a file holding the Standard Webhooks signing key \
                         (`whsec_` + base64)",
                    ));
                }
                (_, Some(_)) => {
                    return Err(doc.error(
                        &at.key("key_file"),
                        "only a `kind = \"webhook\"` sink signs its requests: expected no `key_file` here (Slack \
                         and Teams URLs carry their own credential)",
                    ));
                }
                (NotifyKind::Slack, None) => NotifyChannelConfig::Slack { url_file },
                (_, None) => NotifyChannelConfig::Teams { url_file },
            };
            (schema.events, schema.jobs, schema.queue, channel)
        }
        NotifyKind::Email => {
            let schema: EmailSchema = doc.deserialize_at(at)?;
            let channel = NotifyChannelConfig::Email(email(doc, at, &schema, base)?);
            (schema.events, schema.jobs, schema.queue, channel)
        }
    };
    Ok(NotifyConfig {
        events: events_of(doc, &at.key("events"), events)?,
        jobs: jobs_of(doc, &at.key("jobs"), job_names, jobs)?,
        queue: match queue {
            Some(n) if n == 0 || n > QUEUE_MAX => {
                return Err(doc.error(
                    &at.key("queue"),
                    format!("{n} is out of range: expected 1 to {QUEUE_MAX} events held while the receiver is down"),
                ));
            }
            Some(n) => n,
            None => crate::notify::DEFAULT_QUEUE,
        },
        channel,
    })
}

fn events_of(
    doc: &Document<'_>,
    at: &KeyPath,
    names: Option<Vec<String>>,
) -> Result<Vec<EventKind>, ConfigError> {
    let Some(names) = names else {
        return Ok(EventKind::ALL.into_iter().filter(|k| k.notifies_by_default()).collect());
    };
    let mut kinds = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let Some(kind) = EventKind::from_name(name) else {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
            return Err(
                doc.error(&at.index(i), format!("not an event name: expected one of {}", known.join(", ")))
            );
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err(doc.error(
            at,
            "an empty list subscribes to nothing: expected at least one event name, or no \
                                  `events` key for the default (failures, diverged, blocked, age warnings)",
        ));
    }
    Ok(kinds)
}

fn jobs_of(
    doc: &Document<'_>,
    at: &KeyPath,
    names: Option<Vec<String>>,
    jobs: &BTreeMap<String, super::JobConfig>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(names) = names else { return Ok(None) };
    for (i, name) in names.iter().enumerate() {
        if !jobs.contains_key(name) {
            let known: Vec<String> = jobs.keys().map(|n| format!("`{n}`")).collect();
            return Err(doc.error(
                &at.index(i),
                format!(
                    "no such job: expected one of {}",
                    if known.is_empty() { "the [jobs] names".into() } else { known.join(", ") }
                ),
            ));
        }
    }
    if names.is_empty() {
        return Err(doc.error(
            at,
            "an empty list subscribes to no job: expected job names, or no `jobs` key for every job",
        ));
    }
    Ok(Some(names))
}

fn email(
    doc: &Document<'_>,
    at: &KeyPath,
    schema: &EmailSchema,
    base: &Path,
) -> Result<EmailConfig, ConfigError> {
    let tls = match schema.tls.unwrap_or(TlsSchema::Starttls) {
        TlsSchema::Starttls => SmtpTls::StartTls,
        TlsSchema::Implicit => SmtpTls::Implicit,
        TlsSchema::None => SmtpTls::None,
    };
    if tls == SmtpTls::None && !is_loopback(&schema.host) {
        return Err(doc.error(
            &at.key("tls"),
            "`tls = \"none\"` sends the mail and the SMTP password in the clear: expected \"starttls\" or \
             \"implicit\", or a `host` on the loopback interface (localhost, 127.0.0.1, ::1)",
        ));
    }
    let ca_file = match &schema.ca_file {
        Some(_) if tls == SmtpTls::None => {
            return Err(doc.error(
                &at.key("ca_file"),
                "`tls = \"none\"` checks no certificate: expected no `ca_file`, or `tls = \"starttls\"` or \
                 \"implicit\"",
            ));
        }
        Some(file) => Some(resolve_path(doc, &at.key("ca_file"), file, base)?),
        None => None,
    };
    let address = |key: KeyPath, text: &str| {
        text.parse::<lettre::message::Mailbox>().map(drop).map_err(|_| {
            doc.error(&key, "not an email address: expected `name@example.com` or `Name <name@example.com>`")
        })
    };
    address(at.key("from"), &schema.from)?;
    if schema.to.is_empty() {
        return Err(doc.error(&at.key("to"), "no recipient: expected at least one email address"));
    }
    for (i, to) in schema.to.iter().enumerate() {
        address(at.key("to").index(i), to)?;
    }
    let password_file = match (&schema.username, &schema.password_file) {
        (Some(_), Some(file)) => Some(resolve_path(doc, &at.key("password_file"), file, base)?),
        (None, None) => None,
        (Some(_), None) => {
            return Err(doc.error(at, "`username` without `password_file`: expected both (the password is read from the file) or neither"));
        }
        (None, Some(_)) => {
            return Err(doc.error(
                &at.key("password_file"),
                "`password_file` without `username`: expected both or neither",
            ));
        }
    };
    Ok(EmailConfig {
        host: schema.host.clone(),
        port: schema.port.unwrap_or(match tls {
            SmtpTls::StartTls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        }),
        tls,
        from: schema.from.clone(),
        to: schema.to.clone(),
        username: schema.username.clone(),
        password_file,
        ca_file,
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The files the sinks name, for `check`.
pub(super) fn files(doc: &Document<'_>, notify: &BTreeMap<String, NotifyConfig>) -> Vec<NamedFile> {
    let mut found: Vec<(KeyPath, &Path, &'static str)> = Vec::new();
    for (name, sink) in notify {
        let at = KeyPath::root().key("notify").key(name);
        match &sink.channel {
            NotifyChannelConfig::Webhook { url_file, key_file } => {
                found.push((at.key("url_file"), url_file, "the webhook URL"));
                found.push((at.key("key_file"), key_file, "the webhook signing key"));
            }
            NotifyChannelConfig::Slack { url_file } => {
                found.push((at.key("url_file"), url_file, "the Slack webhook URL"))
            }
            NotifyChannelConfig::Teams { url_file } => {
                found.push((at.key("url_file"), url_file, "the Teams workflow URL"));
            }
            NotifyChannelConfig::Email(email) => {
                if let Some(file) = &email.password_file {
                    found.push((at.key("password_file"), file, "the SMTP password"));
                }
                if let Some(file) = &email.ca_file {
                    found.push((at.key("ca_file"), file, "the SMTP server's CA certificates (PEM)"));
                }
            }
        }
    }
    found.into_iter().map(|(at, path, holds)| NamedFile::at(doc, &at, path, holds)).collect()
}
