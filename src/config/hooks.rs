//! A job's `after_rotation` hooks, as [`Hook`]s: `after_rotation = [ { kind = "command", argv = ["systemctl",
//! "reload", "app"], timeout = "30s" } ]`.
//!
//! Each entry is one inline table tagged by `kind`, read as one flat struct (see `schema.rs` for why not a serde
//! tagged enum), then checked per kind here: a key that belongs to another kind is refused by name.

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::{HookKind, HookSchema};
use super::validate::{Limit, nonzero};
use crate::hooks::{CommandHook, Hook};
use std::time::Duration;

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
    hooks: Vec<HookSchema>,
) -> Result<Vec<Hook>, ConfigError> {
    if hooks.len() > MAX_HOOKS {
        return Err(doc.error(at, format!("{} hooks: expected at most {MAX_HOOKS}", hooks.len())));
    }
    hooks.into_iter().enumerate().map(|(i, hook)| one(doc, &at.index(i), hook)).collect()
}

fn one(doc: &Document<'_>, at: &KeyPath, hook: HookSchema) -> Result<Hook, ConfigError> {
    match hook.kind {
        HookKind::Command => {
            let Some(argv) = hook.argv else {
                return Err(doc.error(
                    at,
                    "a command hook needs `argv`: expected the program and its arguments, as in argv = \
                     [\"systemctl\", \"reload\", \"app\"] (no shell is involved)",
                ));
            };
            if argv.first().is_none_or(|p| p.trim().is_empty()) {
                return Err(doc.error(
                    &at.key("argv"),
                    "the argv names no program: expected a non-empty first element, such as \"systemctl\"",
                ));
            }
            if argv.iter().any(|a| a.contains('\0')) {
                return Err(
                    doc.error(&at.key("argv"), "an argument holds a NUL character: expected plain text")
                );
            }
            let timeout = nonzero(doc, &at.key("timeout"), hook.timeout, HOOK_TIMEOUT_LIMIT)?
                .unwrap_or(DEFAULT_HOOK_TIMEOUT);
            Ok(Hook::Command(CommandHook { argv, timeout }))
        }
    }
}
