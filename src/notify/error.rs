//! [`DeliveryError`]: why one attempt to deliver a notification failed, and whether another attempt may succeed.
//!
//! No variant holds a URL, a key or a password: a webhook URL is a credential (anyone who has a Slack or Teams
//! URL can post to the channel), so a transport error is stripped of its URL and redacted before it is kept.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The receiver answered, with a status that is not a success. Its body is not kept (it may echo the request).
    #[error("the receiver answered HTTP {status}")]
    Status { status: u16, retry_after: Option<Duration> },
    /// The request did not get an answer (connection refused, TLS, DNS, ...).
    #[error("the request failed: {detail}")]
    Transport { detail: String },
    /// The SMTP server refused the mail or could not be reached.
    #[error("SMTP: {detail}")]
    Smtp { detail: String, permanent: bool },
    /// No answer within the delivery timeout.
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The message could not be built (an address the mail library refuses, ...): retrying cannot help.
    #[error("{0}")]
    Invalid(String),
}

impl DeliveryError {
    /// Whether a later attempt may succeed: a refusal that says "not now" (408, 429, 5xx, a transient SMTP reply)
    /// or no answer at all, but never a refusal of the request itself (400, 401, 403, 404, ...).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 425 | 429) || *status >= 500,
            Self::Transport { .. } | Self::Timeout(_) => true,
            Self::Smtp { permanent, .. } => !permanent,
            Self::Invalid(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A bounded label for metrics and events.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Status { .. } => "status",
            Self::Transport { .. } => "transport",
            Self::Smtp { .. } => "smtp",
            Self::Timeout(_) => "timeout",
            Self::Invalid(_) => "invalid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_that_say_not_now_are_retried() {
        let status = |status| DeliveryError::Status { status, retry_after: None };
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(DeliveryError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(!DeliveryError::Smtp { detail: "550".into(), permanent: true }.is_retryable());
    }
}
