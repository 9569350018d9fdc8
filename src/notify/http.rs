//! The one HTTP POST every web channel (webhook, Slack, Teams) makes, and the mapping of its failures to a
//! [`DeliveryError`] that never holds the URL.

use super::error::DeliveryError;
use crate::secret::SecretValue;
use crate::secret::redact::redact;
use std::error::Error as _;
use std::time::Duration;

/// POSTs `body` as JSON to `url` with `headers`. Any 2xx is a success; the answer's body is not read.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &SecretValue,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<(), DeliveryError> {
    let mut request = client.post(url.expose()).header("content-type", "application/json").body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.map_err(|e| transport(e, url))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Err(DeliveryError::Status { status: status.as_u16(), retry_after })
}

/// The error and its causes, without the URL (reqwest puts it in its message) and redacted of it in case a cause
/// quotes it.
fn transport(err: reqwest::Error, url: &SecretValue) -> DeliveryError {
    let err = err.without_url();
    let mut detail = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    DeliveryError::Transport { detail: redact(&[url], &detail) }
}
