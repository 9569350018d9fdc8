//! The `[notify.NAME]` sinks built from the config: each secret file read (URLs, signing keys, SMTP passwords),
//! each URL checked, and the [`Notifier`] started. An unreadable or malformed file stops the start-up with an
//! error that names the sink and the file, never its content.

use super::BuildError;
use crate::config::{Config, NotifyChannelConfig, WebhookHookConfig};
use crate::events::{self, EventSink};
use crate::notify::{
    Attempts, Channel, EmailChannel, EmailSettings, Notifier, SigningKey, Sink, WebhookChannel,
};
use crate::secret::SecretValue;
use std::path::Path;
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

/// A job's `after_rotation` webhook hook, its URL and key read (for `notify::webhook::deliver_hook`).
pub fn webhook_hook(hook: &WebhookHookConfig) -> Result<WebhookChannel, String> {
    let key = SigningKey::parse(&read_secret(&hook.key_file)?)
        .map_err(|e| format!("`{}`: {e}", hook.key_file.display()))?;
    Ok(WebhookChannel { url: read_url(&hook.url_file)?, key })
}

/// The HTTP client of every web sink and webhook hook. Redirects are not followed: a signed body goes only to
/// the URL the operator wrote.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("rotavault/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("the HTTP client cannot be built: {e}"))
}

/// A secret file's text, trimmed (an editor's final newline is not part of the secret).
fn read_secret(path: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("`{}` cannot be read: {e}", path.display()))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(format!("`{}` is empty: expected the secret on its first line", path.display()));
    }
    Ok(text)
}

/// A URL file: `https://...`, or `http://` to the loopback interface only (a test receiver, a local relay).
pub fn read_url(path: &Path) -> Result<SecretValue, String> {
    let text = SecretValue::new(read_secret(path)?);
    let bad = |what: &str| {
        format!(
            "`{}` {what}: expected one https:// URL (http:// only to 127.0.0.1, ::1 or localhost)",
            path.display()
        )
    };
    let url = reqwest::Url::parse(text.expose()).map_err(|_| bad("does not hold a URL"))?;
    let loopback = url.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => Ok(text),
        "http" if loopback => Ok(text),
        "http" => Err(bad("holds an http:// URL to another machine, which would send it in the clear")),
        _ => Err(bad("holds a URL that is not https://")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn url_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("hook.url");
        std::fs::write(&path, text).expect("written");
        (dir, path)
    }

    #[test]
    fn a_url_file_holds_an_https_url_or_a_loopback_http_one() {
        let (_dir, path) = url_file("https://hooks.example.com/services/T0/B0/XyZ\n");
        assert_eq!(read_url(&path).expect("https").expose(), "https://hooks.example.com/services/T0/B0/XyZ");
        let (_dir, path) = url_file("http://127.0.0.1:8080/hook");
        assert!(read_url(&path).is_ok());
        let (_dir, path) = url_file("http://[::1]:8080/hook");
        assert!(read_url(&path).is_ok());
    }

    #[test]
    fn a_url_in_the_clear_or_not_a_url_is_refused_without_quoting_it() {
        for (text, says) in [
            ("http://hooks.example.com/services/T0/B0/s3cr3t-token", "in the clear"),
            ("ftp://hooks.example.com/s3cr3t-token", "not https://"),
            ("s3cr3t-token", "does not hold a URL"),
        ] {
            let (_dir, path) = url_file(text);
            let err = read_url(&path).expect_err(text);
            assert!(err.contains(says), "{err}");
            assert!(err.contains("hook.url"), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
        let (_dir, path) = url_file("\n");
        assert!(read_url(&path).expect_err("empty").contains("is empty"));
    }

    #[test]
    fn a_webhook_hook_reads_its_url_and_key_and_names_a_bad_key_file_without_its_content() {
        let (dir, url_file) = url_file("https://app.example.com/reload");
        let key_file = dir.path().join("hook.key");
        std::fs::write(&key_file, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").expect("written");
        let hook = WebhookHookConfig { url_file, key_file: key_file.clone() };
        let channel = webhook_hook(&hook).expect("a hook");
        assert_eq!(channel.url.expose(), "https://app.example.com/reload");
        std::fs::write(&key_file, "not-a-key-s3cr3t").expect("written");
        let err = webhook_hook(&hook).expect_err("a bad key");
        assert!(err.contains("hook.key") && err.contains("whsec_"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
