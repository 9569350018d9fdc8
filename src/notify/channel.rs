//! [`Channel`]: where a sink delivers, one variant per `kind`, and one `match` that makes one attempt.

use super::email::EmailChannel;
use super::error::DeliveryError;
use super::webhook::WebhookChannel;
use super::{http, slack, teams};
use crate::events::Event;
use crate::secret::SecretValue;

#[derive(Debug)]
pub enum Channel {
    /// The CloudEvent, signed (Standard Webhooks).
    Webhook(WebhookChannel),
    /// A Slack incoming-webhook URL.
    Slack(SecretValue),
    /// A Teams Power Automate Workflows URL.
    Teams(SecretValue),
    Email(Box<EmailChannel>),
}

impl Channel {
    /// The config `kind`, also the metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Slack(_) => "slack",
            Self::Teams(_) => "teams",
            Self::Email(_) => "email",
        }
    }

    /// One attempt to deliver `event`.
    pub(crate) async fn send(
        &self,
        client: &reqwest::Client,
        event: &Event,
        source: &str,
    ) -> Result<(), DeliveryError> {
        let json = |value: serde_json::Value| {
            serde_json::to_vec(&value).map_err(|e| DeliveryError::Invalid(format!("cannot write JSON: {e}")))
        };
        match self {
            Self::Webhook(webhook) => webhook.send(client, event, source).await,
            Self::Slack(url) => http::post_json(client, url, json(slack::payload(event))?, &[]).await,
            Self::Teams(url) => http::post_json(client, url, json(teams::payload(event))?, &[]).await,
            Self::Email(email) => email.send(event, source).await,
        }
    }
}
