//! What an Autotask answer that is not a success means, for REST and SOAP alike.
//!
//! Autotask says little with its status codes: a wrong secret is 401, but an unknown user and a bad integration
//! code are both 500, and the thread limit is a 429 or a 500 whose text names `Itgenatr005`. So a refusal is
//! classified from the status and the error texts together, and the distinction that matters most is kept sharp:
//! a **throttle is never a failed login** (the engine counts failed logins toward the lockout, and a throttled
//! verify must not spend that budget), and **only a 401 is a failed login**.
//!
//! The texts quoted in a [`Refusal`] are the server's, shortened; never anything rotavault sent. A server may
//! echo the request it refused, so every text passes through the call's [`Redactor`] before it is cut short.

use crate::secret::redact::Redactor;
use crate::target::TargetError;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::fmt;
use std::time::Duration;

/// Longest server text kept in a message.
pub(super) const EXCERPT: usize = 300;

/// Why Autotask refused a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// 401 without a more specific text: the secret is wrong. A failed login.
    WrongSecret,
    /// 401 "User account is locked.": no login was tried, the account needs a person.
    Locked,
    /// 401 "API access requires an API-only security level.": the secret was right, the account is not an API user.
    NotApiOnly,
    /// 500 "Zone information could not be determined": the user name is unknown (in this zone).
    UnknownUser,
    /// 500 "IntegrationCode is invalid.".
    BadIntegrationCode,
    /// 429, or a text naming `Itgenatr005` or a threshold: nothing happened; try later.
    Throttled { retry_after: Option<Duration>, detail: String },
    /// Another 5xx.
    Server { status: u16, detail: String },
    /// Another status (403, 404, …).
    Other { status: u16, detail: String },
}

impl Refusal {
    /// Whether trying again later can succeed without anyone changing anything.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Server { .. })
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongSecret => f.write_str("HTTP 401: the secret is not accepted"),
            Self::Locked => f.write_str("HTTP 401: the account is locked"),
            Self::NotApiOnly => f.write_str("HTTP 401: the account does not have an API-only security level"),
            Self::UnknownUser => {
                f.write_str("HTTP 500: Zone information could not be determined (unknown user)")
            }
            Self::BadIntegrationCode => f.write_str("HTTP 500: IntegrationCode is invalid."),
            Self::Throttled { detail, .. } => write!(f, "throttled: {detail}"),
            Self::Server { status, detail } | Self::Other { status, detail } => {
                write!(f, "HTTP {status}: {detail}")
            }
        }
    }
}

/// How a call ends when it is not a success.
#[derive(Debug)]
pub(super) enum CallFailure {
    /// Autotask answered with a refusal that retrying would not change; the caller says what it means there.
    Refused(Refusal),
    /// Anything else, already a target error (throttled past our patience, unreachable, no answer).
    Failed(TargetError),
}

impl From<TargetError> for CallFailure {
    fn from(e: TargetError) -> Self {
        Self::Failed(e)
    }
}

/// Classifies a non-success answer from its status, its `Retry-After` and its error texts.
pub(super) fn classify(status: u16, retry_after: Option<Duration>, messages: &[String]) -> Refusal {
    let detail = if messages.is_empty() { "(no error text)".to_owned() } else { messages.join("; ") };
    let lower = detail.to_ascii_lowercase();
    // Throttling first: the thread-limit text arrives with a 500 as often as with a 429.
    if status == 429 || is_throttle_text(&lower) {
        return Refusal::Throttled { retry_after, detail: format!("HTTP {status}: {detail}") };
    }
    match status {
        401 if lower.contains("locked") => Refusal::Locked,
        401 if lower.contains("api-only") || lower.contains("api only") => Refusal::NotApiOnly,
        401 => Refusal::WrongSecret,
        _ if lower.contains("zone information could not be determined") => Refusal::UnknownUser,
        _ if lower.contains("integrationcode is invalid")
            || lower.contains("integration code is invalid") =>
        {
            Refusal::BadIntegrationCode
        }
        500..=599 => Refusal::Server { status, detail },
        _ => Refusal::Other { status, detail },
    }
}

/// `Itgenatr005` (thread limit) or any threshold message ("The request threshold of 10000 requests per 60
/// minutes has been exceeded.").
pub(super) fn is_throttle_text(lower: &str) -> bool {
    lower.contains("itgenatr005") || lower.contains("threshold")
}

/// The texts of a REST error body: `{"errors":["…"]}`, the `{"Message":"…"}` of a framework error, or else a short
/// excerpt of whatever came back; each redacted of the call's secrets, then cut short.
pub(super) fn rest_messages(body: &str, redactor: &Redactor) -> Vec<String> {
    let excerpt = |text: &str| redactor.excerpt(text, EXCERPT);
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Option<Vec<serde_json::Value>>,
        #[serde(alias = "message")]
        #[serde(rename = "Message")]
        message: Option<String>,
    }
    if body.trim().is_empty() {
        return Vec::new();
    }
    if let Ok(parsed) = serde_json::from_str::<Errors>(body) {
        let mut out: Vec<String> = parsed
            .errors
            .unwrap_or_default()
            .iter()
            .map(|e| match e {
                serde_json::Value::String(s) => excerpt(s),
                // Some clients report `[{message, field, value}]`; keep the message only.
                other => {
                    excerpt(other.get("message").and_then(|m| m.as_str()).unwrap_or("(an error object)"))
                }
            })
            .collect();
        out.extend(parsed.message.as_deref().map(excerpt));
        if !out.is_empty() {
            return out;
        }
    }
    vec![excerpt(body)]
}

/// `Retry-After` as seconds or as an HTTP date.
pub(super) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn rest(status: u16, retry_after: Option<Duration>, body: &str) -> Refusal {
        classify(status, retry_after, &rest_messages(body, &Redactor::none()))
    }

    #[test]
    fn a_401_is_a_wrong_secret_unless_it_says_otherwise() {
        assert_eq!(rest(401, None, ""), Refusal::WrongSecret);
        assert_eq!(rest(401, None, r#"{"errors":["User account is locked."]}"#), Refusal::Locked);
        assert_eq!(
            rest(401, None, r#"{"errors":["API access requires an API-only security level."]}"#),
            Refusal::NotApiOnly
        );
    }

    #[test]
    fn the_500s_of_authentication_are_told_apart() {
        assert_eq!(
            rest(500, None, r#"{"errors":["IntegrationCode is invalid."]}"#),
            Refusal::BadIntegrationCode
        );
        assert_eq!(
            rest(500, None, r#"{"errors":["Zone information could not be determined"]}"#),
            Refusal::UnknownUser
        );
        assert!(matches!(
            rest(500, None, r#"{"errors":["Object reference not set"]}"#),
            Refusal::Server { status: 500, .. }
        ));
        assert!(matches!(rest(502, None, "<html>Bad gateway</html>"), Refusal::Server { status: 502, .. }));
        assert!(matches!(rest(403, None, ""), Refusal::Other { status: 403, .. }));
    }

    #[test]
    fn throttles_are_recognised_in_every_shape() {
        let itgenatr = r#"{"errors":["Itgenatr005: Thread Threshold Exceeded — The Autotask API thread threshold of 3 threads has been exceeded"]}"#;
        assert!(matches!(rest(500, None, itgenatr), Refusal::Throttled { retry_after: None, .. }));
        let hourly =
            r#"{"errors":["The request threshold of 10000 requests per 60 minutes has been exceeded."]}"#;
        let refusal = rest(429, Some(Duration::from_secs(7)), hourly);
        assert_eq!(
            refusal,
            Refusal::Throttled {
                retry_after: Some(Duration::from_secs(7)),
                detail: "HTTP 429: The request threshold of 10000 requests per 60 minutes has been exceeded."
                    .into()
            }
        );
        assert!(matches!(rest(429, None, ""), Refusal::Throttled { .. }));
        // A threshold text is a throttle even on a 401: it must never count as a failed login.
        assert!(matches!(rest(401, None, hourly), Refusal::Throttled { .. }));
        assert!(rest(500, None, itgenatr).is_temporary());
        assert!(!Refusal::WrongSecret.is_temporary());
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T03:00:00Z").unwrap().with_timezone(&Utc);
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(1)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 01 Mar 2026 03:00:30 GMT"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn bodies_are_shortened_and_flattened() {
        let long = format!("{{\"errors\":[\"{}\"]}}", "x".repeat(1000));
        let messages = rest_messages(&long, &Redactor::none());
        assert!(messages[0].chars().count() <= EXCERPT + 1);
        assert_eq!(rest_messages("line one\n   line two", &Redactor::none()), ["line one line two"]);
        assert_eq!(
            rest_messages(
                r#"{"Message":"The requested resource does not support http method 'GET'."}"#,
                &Redactor::none()
            )
            .len(),
            1
        );
    }
}
