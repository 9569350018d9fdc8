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
    Err(DeliveryError::Status { status: status.as_u16(), retry_after: retry_after(response.headers()) })
}

/// `Retry-After` as a wait: delay-seconds, or an HTTP-date (a date already past is no wait).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((date.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// The error and its causes, without the URL (reqwest puts it in its message) and redacted of it in case a cause
/// quotes it.
fn transport(err: reqwest::Error, url: &SecretValue) -> DeliveryError {
    DeliveryError::Transport { detail: transport_detail(err, url) }
}

/// What a failed request says, causes included, without the URL and redacted of it.
pub(crate) fn transport_detail(err: reqwest::Error, url: &SecretValue) -> String {
    let err = err.without_url();
    let mut detail = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    redact(&[url], &detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> reqwest::header::HeaderMap {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, value.parse().expect("a header value"));
        headers
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        assert_eq!(retry_after(&headers("120")), Some(Duration::from_secs(120)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(90)).format("%a, %d %b %Y %H:%M:%S GMT");
        let wait = retry_after(&headers(&soon.to_string())).expect("a date");
        assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90), "{wait:?}");
        assert_eq!(retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT")), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon")), None);
    }
}
