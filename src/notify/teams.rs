//! Microsoft Teams through a Power Automate Workflows URL ("post to a channel when a webhook request is
//! received"): a message with one Adaptive Card attachment. The Office 365 connector webhooks and their
//! MessageCard format are retired, so they are not offered.

use super::message::{facts, summary};
use crate::events::Event;

pub(crate) fn payload(event: &Event) -> serde_json::Value {
    let facts: Vec<serde_json::Value> = facts(event)
        .into_iter()
        .map(|(title, value)| serde_json::json!({ "title": title, "value": value }))
        .collect();
    serde_json::json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    { "type": "TextBlock", "text": summary(event), "weight": "Bolder", "wrap": true },
                    { "type": "FactSet", "facts": facts },
                ],
            },
        }],
    })
}
