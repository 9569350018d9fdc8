//! `webhook`: an HTTPS endpoint the operator names (a vendor's API behind a small relay, an internal service)
//! applies the new secret and verifies one, each request signed the Standard Webhooks way with the key of
//! `notify::signing`, so the endpoint knows it came from this rotavault and was not replayed.
//!
//! One POST per call, JSON `{"version":1,"type":"apply"|"verify","target":..,"job":..,"account":..,"secret":..}`.
//! The answer's status is the outcome (README "The webhook target"):
//!
//! - 2xx: applied / accepted.
//! - apply 400, 409, 422: refused, nothing changed (the reason from the body, `{"reason":".."}` or its first line,
//!   redacted and cut); verify 401, 403: the secret does not authenticate (a failed login).
//! - 429, 503: throttled, nothing done; `Retry-After` (seconds or an HTTP-date) is how long to wait.
//! - other 5xx, no answer within the timeout, a connection cut once the request was sent: unknown, since the
//!   endpoint may have acted before it failed; recovery settles it by verifying after the apply horizon.
//! - a connection that could not be made: nothing was sent, try later.
//! - any other status (3xx, other 4xx): a configuration problem that retrying cannot fix.
//!
//! The URL may carry a token, so it is in a file and never in a log line or an error; neither is the body.

use super::TargetError;
use super::account::{Account, AccountTarget, Action, Channel};
use crate::notify::{SignedHeaders, SigningKey};
use crate::secret::SecretValue;
use crate::secret::redact::Redactor;
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

pub const KIND: &str = "webhook";

/// How long one call may take when the config does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What is read of an answer's body, in bytes; only a refusal's reason is taken from it.
const BODY_CAP: usize = 64 * 1024;

/// The longest refusal reason kept, in characters.
const REASON_CHARS: usize = 200;

/// A `[targets.NAME]` of kind `webhook`, its files read: shared by its jobs.
pub struct WebhookEndpoint {
    url: SecretValue,
    key: SigningKey,
    /// Names the endpoint in `status` and errors, in place of its URL.
    url_file: PathBuf,
    timeout: Duration,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookEndpoint {{ url_file: {:?}, url: [redacted], key: [redacted] }}", self.url_file)
    }
}

impl WebhookEndpoint {
    /// Reads the URL and key files (an error names the file, never its content).
    pub fn new(
        url_file: &Path,
        key_file: &Path,
        timeout: Duration,
        client: reqwest::Client,
    ) -> Result<Self, String> {
        let channel = crate::notify::files::webhook_hook(url_file, key_file)?;
        Ok(Self { url: channel.url, key: channel.key, url_file: url_file.to_owned(), timeout, client })
    }
}

/// One job's account at a `webhook` target.
pub type WebhookTarget = AccountTarget<WebhookEndpoint>;

/// The request body. The secret is borrowed, and the buffer it is written into zeroized.
#[derive(serde::Serialize)]
struct Body<'a> {
    version: u32,
    #[serde(rename = "type")]
    action: &'a str,
    target: &'a str,
    job: &'a str,
    account: &'a str,
    secret: &'a str,
}

/// What the answer's `status` says happened (the module's table).
fn outcome(
    action: Action,
    status: u16,
    retry_after: Option<Duration>,
    reason: impl FnOnce() -> String,
) -> Result<(), TargetError> {
    let what = action.name();
    match (action, status) {
        (_, 200..=299) => Ok(()),
        (_, 429 | 503) => Err(TargetError::Transient {
            target: KIND,
            detail: format!("the endpoint answered {what} with HTTP {status}: throttled, nothing done"),
            retry_after,
        }),
        (Action::Apply, 400 | 409 | 422) => Err(TargetError::Rejected { target: KIND, reason: reason() }),
        (Action::Verify, 401 | 403) => {
            Err(TargetError::Unauthenticated { target: KIND, detail: format!("HTTP {status}: {}", reason()) })
        }
        (_, 500..=599) => Err(TargetError::Unknown {
            target: KIND,
            detail: format!(
                "the endpoint answered {what} with HTTP {status}: it may have acted before it failed"
            ),
        }),
        _ => Err(TargetError::Invalid {
            target: KIND,
            detail: format!(
                "the endpoint answered {what} with HTTP {status}: expected 2xx, {} 429 or 503, or 5xx",
                match action {
                    Action::Apply => "400, 409 or 422 (refused),",
                    Action::Verify => "401 or 403 (refused),",
                }
            ),
        }),
    }
}

#[async_trait]
impl Channel for WebhookEndpoint {
    const KIND: &'static str = KIND;

    fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `action` and reads the answer into an outcome.
    async fn call(
        &self,
        who: &Account,
        action: Action,
        secret: &SecretValue,
        timeout: Duration,
    ) -> Result<(), TargetError> {
        let body = Body {
            version: 1,
            action: action.name(),
            target: &who.target,
            job: &who.job,
            account: &who.account,
            secret: secret.expose(),
        };
        let body = super::account::json(&body, who, secret)
            .map_err(|detail| TargetError::Invalid { target: KIND, detail })?;
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let signed = SignedHeaders::new(&self.key, &id, chrono::Utc::now().timestamp(), &body);
        let request = self
            .client
            .post(self.url.expose())
            .timeout(timeout)
            .header("content-type", "application/json")
            .header("webhook-id", signed.id)
            .header("webhook-timestamp", signed.timestamp.to_string())
            .header("webhook-signature", signed.signature)
            .body(body.to_vec());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                // Only a connection never made proves that nothing reached the endpoint.
                let connect = e.is_connect();
                let detail = crate::notify::http::transport_detail(e, &self.url);
                let detail = format!(
                    "{action} request to the URL in `{}`: {detail}",
                    self.url_file.display(),
                    action = action.name()
                );
                return Err(if connect {
                    TargetError::Transient { target: KIND, detail, retry_after: None }
                } else {
                    TargetError::Unknown { target: KIND, detail }
                });
            }
        };
        let status = response.status().as_u16();
        let retry_after = crate::notify::http::retry_after(response.headers());
        let mut answer = Zeroizing::new(Vec::new());
        // The status has answered already; a body cut short only shortens a refusal's reason.
        while answer.len() < BODY_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = BODY_CAP - answer.len();
                    answer.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let reason = || super::reason(&Redactor::new(&[secret, &self.url]), &answer, REASON_CHARS);
        outcome(action, status, retry_after, reason)
    }

    fn reached(&self) -> String {
        format!("at the URL in `{}`", self.url_file.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason() -> String {
        "the password was used before".into()
    }

    #[test]
    fn each_status_maps_to_the_outcome_the_protocol_names() {
        let label = |action, status| outcome(action, status, None, reason).err().map(|e| e.metric_label());
        for (action, status, expected) in [
            (Action::Apply, 200, None),
            (Action::Apply, 204, None),
            (Action::Apply, 400, Some("rejected")),
            (Action::Apply, 409, Some("rejected")),
            (Action::Apply, 422, Some("rejected")),
            (Action::Apply, 401, Some("invalid")),
            (Action::Apply, 404, Some("invalid")),
            (Action::Apply, 302, Some("invalid")),
            (Action::Apply, 429, Some("transient")),
            (Action::Apply, 503, Some("transient")),
            (Action::Apply, 500, Some("unknown")),
            (Action::Apply, 504, Some("unknown")),
            (Action::Verify, 200, None),
            (Action::Verify, 401, Some("unauthenticated")),
            (Action::Verify, 403, Some("unauthenticated")),
            (Action::Verify, 422, Some("invalid")),
            (Action::Verify, 429, Some("transient")),
            (Action::Verify, 502, Some("unknown")),
        ] {
            assert_eq!(label(action, status), expected, "{action:?} {status}");
        }
    }

    #[test]
    fn a_throttled_answer_keeps_its_retry_after_and_a_refusal_its_reason() {
        let wait = Some(Duration::from_secs(7));
        let Err(TargetError::Transient { retry_after, .. }) = outcome(Action::Apply, 429, wait, reason)
        else {
            panic!("throttled")
        };
        assert_eq!(retry_after, wait);
        let Err(TargetError::Rejected { reason, .. }) = outcome(Action::Apply, 422, None, reason) else {
            panic!("refused")
        };
        assert_eq!(reason, "the password was used before");
    }
}
