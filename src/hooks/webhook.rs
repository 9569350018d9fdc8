//! The `webhook` hook: the `rotated` CloudEvent POSTed to a consumer, signed as Standard Webhooks say (the same
//! signing and POST as a `kind = "webhook"` notification sink), with a few retries.
//!
//! Unlike a notification, a hook runs in turn under the job's lock, so its retries are bounded tighter than a
//! sink's ([`HOOK_ATTEMPTS`]): a consumer that stays down is reported, not waited for. Its URL and key are read
//! when the runtime is built, so a missing file stops the start-up instead of failing at the first rotation.

use super::{HookContext, HookError};
use crate::events::{Event, EventData, EventKind};
use crate::notify::webhook::deliver_hook;
use crate::notify::{Attempts, Failure, WebhookChannel};
use crate::retry::Backoff;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How hard a webhook hook tries: at worst about a minute under the job's lock (3 attempts of at most 15s, 1s
/// and 2s apart, or what the receiver's `Retry-After` asks, up to 10s).
pub const HOOK_ATTEMPTS: Attempts = Attempts {
    backoff: Backoff { attempts: 3, first: Duration::from_secs(1), max: Duration::from_secs(10) },
    timeout: Duration::from_secs(15),
};

/// A webhook hook, its files read. Cloning shares the channel; `Debug` shows neither URL nor key.
#[derive(Clone, Debug)]
pub struct WebhookHook {
    /// The URL file's path: names the hook (the URL itself is a secret).
    pub url_file: PathBuf,
    pub channel: Arc<WebhookChannel>,
    pub client: reqwest::Client,
    /// The CloudEvents `source`.
    pub source: String,
    pub attempts: Attempts,
    /// The process is stopping: give up the retries.
    pub shutdown: CancellationToken,
}

impl WebhookHook {
    pub(super) async fn run(&self, context: &HookContext) -> Result<(), HookError> {
        let event = Event::new(
            EventKind::Rotated,
            chrono::Utc::now(),
            EventData {
                job: context.job.clone(),
                rotation_id: Some(context.rotation_id.clone()),
                stores: context.stores.clone(),
                ..EventData::default()
            },
        );
        deliver_hook(&self.client, &self.channel, &event, &self.source, self.attempts, &self.shutdown)
            .await
            .map_err(|failure| {
                let hook = super::Hook::Webhook(self.clone()).describe();
                match failure {
                    Failure::Aborted => HookError::Stopped { hook },
                    Failure::Final { .. } => HookError::Delivery { hook, detail: failure.to_string() },
                }
            })
    }
}
