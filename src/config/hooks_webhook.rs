//! The `webhook` kind of a job's `after_rotation` hooks: `{ kind = "webhook", url_file = "...", key_file = "..." }`,
//! the `rotated` CloudEvent POSTed and signed as Standard Webhooks do (`notify::webhook::deliver_hook`).
//!
//! Both files hold secrets (the URL may carry a token; the key signs), so only their paths are in the config.

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::validate::resolve_path;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::path::{Path, PathBuf};

/// One webhook hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookHookConfig {
    pub url_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookHookSchema {
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    url_file: String,
    key_file: String,
}

/// Reads the hook table at `at` (its `kind` already read as `webhook`).
pub(super) fn build(doc: &Document<'_>, at: &KeyPath, base: &Path) -> Result<WebhookHookConfig, ConfigError> {
    let schema: WebhookHookSchema = doc.deserialize_at(at)?;
    Ok(WebhookHookConfig {
        url_file: resolve_path(doc, &at.key("url_file"), &schema.url_file, base)?,
        key_file: resolve_path(doc, &at.key("key_file"), &schema.key_file, base)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(source: &str) -> Result<WebhookHookConfig, ConfigError> {
        let doc = Document::parse(source, Path::new("/etc/rotavault/config.toml"))?;
        let at = KeyPath::root().key("jobs").key("app").key("after_rotation").index(0);
        build(&doc, &at, Path::new("/etc/rotavault"))
    }

    #[test]
    fn a_webhook_hook_names_its_url_and_key_files_relative_to_the_config() {
        let config = hook(
            "[jobs.app]\nafter_rotation = [ { kind = \"webhook\", url_file = \"hook.url\", key_file = \"/k\" } ]\n",
        )
        .expect("valid");
        assert_eq!(config.url_file, Path::new("/etc/rotavault/hook.url"));
        assert_eq!(config.key_file, Path::new("/k"));
    }

    #[test]
    fn a_webhook_hook_with_an_inline_url_is_refused_at_its_key() {
        let err = hook(
            "[jobs.app]\nafter_rotation = [ { kind = \"webhook\", url = \"https://h/secret\", key_file = \"/k\" } ]\n",
        )
        .expect_err("url is not a key");
        let text = err.to_string();
        assert!(text.starts_with("/etc/rotavault/config.toml:2:"), "{text}");
        assert!(!text.contains("https://h/secret"), "{text}");
    }
}
