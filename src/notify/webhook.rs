//! Signed webhooks: the CloudEvent POSTed as JSON with Standard Webhooks headers, both for `kind = "webhook"`
//! notification sinks and for `after_rotation` webhook hooks ([`deliver_hook`]).

use super::error::DeliveryError;
use super::http::post_json;
use super::retry::{Attempts, Failure, with_retry};
use super::signing::{SignedHeaders, SigningKey};
use crate::events::Event;
use crate::secret::SecretValue;
use tokio_util::sync::CancellationToken;

/// Where to POST and the key to sign with. `Debug` shows neither.
pub struct WebhookChannel {
    pub url: SecretValue,
    pub key: SigningKey,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookChannel { url: [redacted], key: [redacted] }")
    }
}

impl WebhookChannel {
    /// One attempt. The CloudEvent `id` is the Standard Webhooks message id, so a receiver can drop a retry it
    /// already has; the timestamp is the attempt's own.
    pub(crate) async fn send(
        &self,
        client: &reqwest::Client,
        event: &Event,
        source: &str,
    ) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&event.to_cloudevent(source))
            .map_err(|e| DeliveryError::Invalid(format!("the event cannot be written as JSON: {e}")))?;
        let signed = SignedHeaders::new(&self.key, &event.id, chrono::Utc::now().timestamp(), &body);
        let headers = [
            ("webhook-id", signed.id),
            ("webhook-timestamp", signed.timestamp.to_string()),
            ("webhook-signature", signed.signature),
        ];
        post_json(client, &self.url, body, &headers).await
    }
}

/// Runs one `after_rotation` webhook hook: POSTs the `rotated` event, signed, retrying per `attempts`. The caller
/// reports a failure (a `hook_failed` event); it never rolls the rotation back.
pub async fn deliver_hook(
    client: &reqwest::Client,
    hook: &WebhookChannel,
    event: &Event,
    source: &str,
    attempts: Attempts,
    shutdown: &CancellationToken,
) -> Result<(), Failure> {
    with_retry(attempts, shutdown, || hook.send(client, event, source)).await
}
