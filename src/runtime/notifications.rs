//! The `[notify.NAME]` sinks built from the config: each secret file read (URLs, signing keys, SMTP passwords),
//! each URL checked, and the [`Notifier`] started. An unreadable or malformed file stops the start-up with an
//! error that names the sink and the file, never its content.

use super::BuildError;
use crate::config::{Config, NotifyChannelConfig};
use crate::events::{self, EventSink};
use crate::notify::files::{client, read_secret, read_url};
use crate::notify::{
    Attempts, Channel, EmailChannel, EmailSettings, Notifier, SigningKey, Sink, WebhookChannel,
};
use crate::secret::SecretValue;
use std::sync::Arc;

/// Builds and starts every sink (none configured: a notifier with no sink, which drops every event).
pub(super) fn start(config: &Config, audit: Option<Arc<dyn EventSink>>) -> Result<Notifier, BuildError> {
    let attempts = Attempts::default();
    let mut sinks = Vec::new();
    for (name, sink) in &config.notify {
        let fail = |detail: String| BuildError::Notify { name: name.clone(), detail };
        let channel = match &sink.channel {
            NotifyChannelConfig::Webhook { url_file, key_file } => {
                let key = SigningKey::parse(&read_secret(key_file).map_err(fail)?)
                    .map_err(|e| fail(format!("`{}`: {e}", key_file.display())))?;
                Channel::Webhook(WebhookChannel { url: read_url(url_file).map_err(fail)?, key })
            }
            NotifyChannelConfig::Slack { url_file } => Channel::Slack(read_url(url_file).map_err(fail)?),
            NotifyChannelConfig::Teams { url_file } => Channel::Teams(read_url(url_file).map_err(fail)?),
            NotifyChannelConfig::Email(email) => {
                let password = match &email.password_file {
                    Some(file) => Some(SecretValue::new(read_secret(file).map_err(fail)?)),
                    None => None,
                };
                Channel::Email(Box::new(
                    EmailChannel::new(EmailSettings {
                        host: email.host.clone(),
                        port: email.port,
                        tls: email.tls,
                        from: email.from.clone(),
                        to: email.to.clone(),
                        username: email.username.clone(),
                        password,
                        ca_file: email.ca_file.clone(),
                        timeout: attempts.timeout,
                    })
                    .map_err(fail)?,
                ))
            }
        };
        sinks.push(Sink::new(name.clone(), sink.events.clone(), sink.jobs.clone(), channel, sink.queue));
    }
    let client = client().map_err(|detail| BuildError::Notify { name: "*".into(), detail })?;
    let source = events::source(&host(), &config.path);
    Ok(Notifier::start_with_audit(sinks, source, attempts, client, audit))
}

/// This machine's name, for the CloudEvents `source`.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
