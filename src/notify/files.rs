//! The secret files of web notification sinks and webhook hooks (URLs, signing keys, passwords), read and checked,
//! and the one HTTP client they POST with. An error names the file and what is wrong, never the content.
//!
//! Here, not in `runtime`, so that `hooks` can read a webhook hook's files without depending on what builds it.

use super::{SigningKey, WebhookChannel};
use crate::secret::SecretValue;
use std::path::Path;

/// A job's `after_rotation` webhook hook, its URL and key read (for `notify::webhook::deliver_hook`).
pub fn webhook_hook(url_file: &Path, key_file: &Path) -> Result<WebhookChannel, String> {
    let key =
        SigningKey::parse(&read_secret(key_file)?).map_err(|e| format!("`{}`: {e}", key_file.display()))?;
    Ok(WebhookChannel { url: read_url(url_file)?, key })
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
pub fn read_secret(path: &Path) -> Result<String, String> {
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
        let channel = webhook_hook(&url_file, &key_file).expect("a hook");
        assert_eq!(channel.url.expose(), "https://app.example.com/reload");
        std::fs::write(&key_file, "not-a-key-s3cr3t").expect("written");
        let err = webhook_hook(&url_file, &key_file).expect_err("a bad key");
        assert!(err.contains("hook.key") && err.contains("whsec_"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
