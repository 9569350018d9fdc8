//! Reload hooks: what runs after a rotation made a new secret current, so that its consumers pick it up
//! (`after_rotation` in a job's config).
//!
//! A hook is told which job, rotation and stores it is about, never the secret: a consumer reads the secret from
//! its store, as it always does. A hook that fails is reported (an event, the log, the job's state for `status`)
//! and never rolls the rotation back: the target already accepts the new secret and every store holds it, so
//! undoing it would break what works to please what does not.
//!
//! One variant per kind, run by one `match` in [`run`]; `command.rs` holds the `command` kind, `webhook.rs` the
//! `webhook` kind.

mod command;
mod webhook;

pub use command::CommandHook;
pub use webhook::{HOOK_ATTEMPTS, WebhookHook};

use crate::events::EventStore;

use std::fmt;

/// One `after_rotation` entry.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Hook {
    /// A program run with an argv, without a shell.
    Command(CommandHook),
    /// The `rotated` event POSTed, signed.
    Webhook(WebhookHook),
}

impl Hook {
    /// Names the hook in logs, events and `status` (never a secret: a command's program, not its arguments; a
    /// webhook's URL file, not its URL).
    pub fn describe(&self) -> String {
        match self {
            Self::Command(c) => format!("command `{}`", c.program()),
            Self::Webhook(w) => format!("webhook `{}`", w.url_file.display()),
        }
    }
}

/// What a hook is told about the rotation it follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookContext {
    pub job: String,
    pub rotation_id: String,
    /// Each of the job's stores and the secret's name in it.
    pub stores: Vec<EventStore>,
}

/// How a hook failed. The message names the hook and what happened, never anything the hook printed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    #[error("{hook}: cannot be started: {detail}")]
    Spawn { hook: String, detail: String },
    #[error("{hook}: exited with {status}")]
    Exited { hook: String, status: String },
    #[error("{hook}: still running after {}; it was killed", humantime::format_duration(*.timeout))]
    TimedOut { hook: String, timeout: std::time::Duration },
    /// A webhook's receiver did not take the event (the message never holds the URL).
    #[error("{hook}: not delivered: {detail}")]
    Delivery { hook: String, detail: String },
    #[error("{hook}: given up because rotavault is stopping")]
    Stopped { hook: String },
}

impl HookError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Spawn { .. } => "spawn",
            Self::Exited { .. } => "exited",
            Self::TimedOut { .. } => "timeout",
            Self::Delivery { .. } => "delivery",
            Self::Stopped { .. } => "stopped",
        }
    }
}

/// Runs `hook` for `context`.
pub async fn run(hook: &Hook, context: &HookContext) -> Result<(), HookError> {
    match hook {
        Hook::Command(c) => c.run(context).await,
        Hook::Webhook(w) => w.run(context).await,
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}
