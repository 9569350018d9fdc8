//! Each job's `after_rotation` hooks, ready to run: a webhook's URL and key files read and checked here, at
//! start-up, so that a missing or malformed file stops the start (naming the hook's key and the file, never its
//! content) instead of failing the first rotation's reload.

use super::BuildError;
use crate::config::{Config, HookConfig};
use crate::events;
use crate::hooks::{HOOK_ATTEMPTS, Hook, WebhookHook};
use crate::notify::files::{client, webhook_hook};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(super) fn build(
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<BTreeMap<String, Vec<Hook>>, BuildError> {
    let source = events::local_source(&config.path);
    let mut client_once = None;
    let mut all = BTreeMap::new();
    for (name, job) in &config.jobs {
        let mut hooks = Vec::with_capacity(job.after_rotation.len());
        for (i, hook) in job.after_rotation.iter().enumerate() {
            let fail =
                |detail: String| BuildError::Hook { key: format!("jobs.{name}.after_rotation[{i}]"), detail };
            hooks.push(match hook {
                HookConfig::Command(command) => Hook::Command(command.clone()),
                HookConfig::Webhook(webhook) => {
                    let channel = webhook_hook(&webhook.url_file, &webhook.key_file).map_err(fail)?;
                    let client = match &client_once {
                        Some(client) => Clone::clone(client),
                        None => client_once.insert(client().map_err(fail)?).clone(),
                    };
                    Hook::Webhook(WebhookHook {
                        url_file: webhook.url_file.clone(),
                        channel: Arc::new(channel),
                        client,
                        source: source.clone(),
                        attempts: HOOK_ATTEMPTS,
                        shutdown: shutdown.clone(),
                    })
                }
            });
        }
        // Only jobs that have hooks: an empty entry per job is memory for nothing at 10,000 jobs.
        if !hooks.is_empty() {
            all.insert(name.clone(), hooks);
        }
    }
    Ok(all)
}
