//! A job's `after_rotation` hooks, as [`HookConfig`]s: `after_rotation = [ { kind = "command", argv =
//! ["systemctl", "reload", "app"], timeout = "30s" }, { kind = "webhook", url_file = "...", key_file = "..." } ]`.
//!
//! Each entry is one inline table tagged by `kind`, read as one flat struct (see `schema.rs` for why not a serde
//! tagged enum), then checked per kind here: a key that belongs to another kind is refused by name. A webhook's
//! files are only named here; the runtime reads them (they hold secrets, and `status` needs none of them).

use super::document::Document;
use super::error::ConfigError;
use super::hooks_webhook::{self, WebhookHookConfig};
use super::locate::KeyPath;
use super::schema::{HookKind, HookSchema};
use super::validate::{Limit, nonzero};
use crate::hooks::CommandHook;
use std::path::Path;
use std::time::Duration;

/// One `after_rotation` entry, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookConfig {
    /// Ready to run as it is.
    Command(CommandHook),
    /// Its URL and key files, read when the runtime is built.
    Webhook(WebhookHookConfig),
}

/// How long a command hook may run when the config does not say.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);
const HOOK_TIMEOUT_LIMIT: Limit = Limit {
    max: Duration::from_secs(10 * 60),
    why: "the job's lock is held while its hooks run, so a hook that hangs holds back the job's next rotation",
};
/// More hooks than this per job is a config mistake, not a need; each runs in turn under the job's lock.
const MAX_HOOKS: usize = 16;

pub(super) fn build(
    doc: &Document<'_>,
    at: &KeyPath,
    base: &Path,
    hooks: Vec<HookSchema>,
) -> Result<Vec<HookConfig>, ConfigError> {
    if hooks.len() > MAX_HOOKS {
        return Err(doc.error(at, format!("{} hooks: expected at most {MAX_HOOKS}", hooks.len())));
    }
    hooks.into_iter().enumerate().map(|(i, hook)| one(doc, &at.index(i), base, hook)).collect()
}

/// A config error at `key` of `at` when `value` is set: the key belongs to another kind of hook.
fn refuse<T>(
    doc: &Document<'_>,
    at: &KeyPath,
    key: &str,
    value: Option<&T>,
    kind: &str,
    expected: &str,
) -> Result<(), ConfigError> {
    match value {
        Some(_) => {
            Err(doc
                .error(&at.key(key), format!("`{key}` is not a key of a {kind} hook: expected {expected}")))
        }
        None => Ok(()),
    }
}

fn one(doc: &Document<'_>, at: &KeyPath, base: &Path, hook: HookSchema) -> Result<HookConfig, ConfigError> {
    match hook.kind {
        HookKind::Webhook => {
            let expected = "`url_file` and `key_file` only (`argv` and `timeout` are for kind = \"command\")";
            refuse(doc, at, "argv", hook.argv.as_ref(), "webhook", expected)?;
            refuse(doc, at, "timeout", hook.timeout.as_ref(), "webhook", expected)?;
            Ok(HookConfig::Webhook(hooks_webhook::build(doc, at, base)?))
        }
        HookKind::Command => {
            let expected = "`argv` and `timeout` only (`url_file` and `key_file` are for kind = \"webhook\")";
            refuse(doc, at, "url_file", hook.url_file.as_ref(), "command", expected)?;
            refuse(doc, at, "key_file", hook.key_file.as_ref(), "command", expected)?;
            let Some(argv) = hook.argv else {
                return Err(doc.error(
                    at,
                    "a command hook needs `argv`: expected the program and its arguments, as in argv = \
                     [\"systemctl\", \"reload\", \"app\"] (no shell is involved)",
                ));
            };
            let argv = self::argv(doc, &at.key("argv"), argv, "\"systemctl\"")?;
            let timeout = nonzero(doc, &at.key("timeout"), hook.timeout, HOOK_TIMEOUT_LIMIT)?
                .unwrap_or(DEFAULT_HOOK_TIMEOUT);
            Ok(HookConfig::Command(CommandHook { argv, timeout }))
        }
    }
}

/// An argv as a program is run with (no shell): a program first, no NUL anywhere. `example` is a program name the
/// error suggests.
pub(super) fn argv(
    doc: &Document<'_>,
    at: &KeyPath,
    argv: Vec<String>,
    example: &str,
) -> Result<Vec<String>, ConfigError> {
    if argv.first().is_none_or(|p| p.trim().is_empty()) {
        return Err(doc.error(
            at,
            format!("the argv names no program: expected a non-empty first element, such as {example}"),
        ));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(doc.error(at, "an argument holds a NUL character: expected plain text"));
    }
    Ok(argv)
}
