//! The one mapping from Vault's HTTP answers and from transport failures to [`StoreError`].
//!
//! Every request in [`super::client`] ends here. A failure is first reduced to a [`Failure`] (the HTTP status,
//! the strings of Vault's `{"errors": [...]}`, a `Retry-After`, or the kind of transport problem) and then
//! classified by [`classify`], a pure function the unit tests feed directly. Nothing else is read: never a
//! request body (it holds the value on a write) and never a header that holds the token.
//!
//! Why each class lands where it does:
//! - 400 `check-and-set parameter did not match` is `Conflict`: another writer moved the version under us.
//!   Any other 400 is `Invalid` (a bad path, a custom_metadata limit, a malformed body): retrying cannot help.
//! - 403 is `PermissionDenied`, except when Vault says the token itself is bad (`invalid token`, `missing client
//!   token`). Vault answers a bad token and a policy refusal with the same `permission denied`, so the client
//!   tells them apart with `auth/token/lookup-self` (allowed to every valid token) and reports
//!   [`Failure::TokenRejected`], which is `Unauthenticated`.
//! - 404 is `NotFound`; reads turn it into `Ok(None)` where the contract says so.
//! - A 3xx is a standby redirecting to the active node: `Transient` (redirects are not followed).
//! - 429 (rate limit; also a performance standby's answer), 473 (a performance standby), 412 (Enterprise's
//!   eventual-consistency answer), 503 (sealed, or a standby) and every other 5xx are `Transient`: the same call
//!   can succeed later. So are timeouts and connection failures, including TLS failures (their message says how
//!   to trust the server's CA, since that is the usual cause).

use super::BACKEND;
use crate::store::StoreError;
use std::time::Duration;

/// The call an error came from, for the message: what rotavault was doing, and on which Vault path.
#[derive(Clone, Copy, Debug)]
pub(super) struct Call<'a> {
    pub op: &'static str,
    pub path: &'a str,
}

/// A failed request reduced to what [`classify`] reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// Vault answered with an error status.
    Status { status: u16, errors: Vec<String>, retry_after: Option<Duration> },
    /// Vault refused the token itself (shown by `lookup-self`), not the operation.
    TokenRejected,
    /// No answer in time.
    Timeout,
    /// No connection: refused, DNS, or TLS (`tls` says whether the chain names a certificate problem).
    Connect { detail: String, tls: bool },
    /// An answer arrived that could not be read as Vault's JSON.
    Unreadable { status: u16, detail: String },
    /// Anything else the HTTP client reported.
    Other { detail: String },
}

/// Vault's message for a lost check-and-set (`... did not match the current version`).
const CAS_MISMATCH: &str = "check-and-set parameter did not match";

/// Classifies a failure of `call`. See the module documentation for why each class lands where it does.
pub(super) fn classify(call: Call<'_>, failure: Failure) -> StoreError {
    let Call { op, path } = call;
    match failure {
        Failure::Status { status, errors, retry_after } => {
            let said = said(&errors);
            let detail = format!("{op} `{path}`: HTTP {status}{said}");
            let lower = said.to_ascii_lowercase();
            match status {
                400 if lower.contains(CAS_MISMATCH) => StoreError::Conflict {
                    backend: BACKEND,
                    detail: format!("{detail} (another writer changed it first)"),
                },
                403 if lower.contains("invalid token") || lower.contains("missing client token") => {
                    StoreError::Unauthenticated { backend: BACKEND, detail }
                }
                401 => StoreError::Unauthenticated { backend: BACKEND, detail },
                403 => StoreError::PermissionDenied {
                    backend: BACKEND,
                    detail: format!("{detail} (the token's policies do not allow it)"),
                },
                404 => StoreError::NotFound { backend: BACKEND, what: format!("`{path}` ({op})") },
                412 | 429 | 473 | 500..=599 => {
                    StoreError::Transient { backend: BACKEND, detail, retry_after }
                }
                // A standby redirecting to the active node: the client follows no redirect (it would carry
                // the token to wherever the answer points), and which node is active changes over time.
                300..=399 => StoreError::Transient {
                    backend: BACKEND,
                    detail: format!(
                        "{detail} (a standby node redirected; point `address` at the active node or its load balancer)"
                    ),
                    retry_after,
                },
                _ => StoreError::Invalid { backend: BACKEND, detail },
            }
        }
        Failure::TokenRejected => StoreError::Unauthenticated {
            backend: BACKEND,
            detail: format!(
                "{op} `{path}`: Vault refused the token (invalid, expired or revoked; `auth/token/lookup-self` \
                 is refused too)"
            ),
        },
        Failure::Timeout => StoreError::Transient {
            backend: BACKEND,
            detail: format!("{op} `{path}`: no answer in time"),
            retry_after: None,
        },
        Failure::Connect { detail, tls } => {
            let hint = if tls {
                " (the server's TLS certificate is not trusted: set `ca_file` to the CA that signed it)"
            } else {
                ""
            };
            StoreError::Transient {
                backend: BACKEND,
                detail: format!("{op} `{path}`: cannot connect: {detail}{hint}"),
                retry_after: None,
            }
        }
        Failure::Unreadable { status, detail } => {
            let detail = format!("{op} `{path}`: an answer that could not be read (HTTP {status}): {detail}");
            if status >= 500 || status == 429 {
                StoreError::Transient { backend: BACKEND, detail, retry_after: None }
            } else {
                StoreError::Invalid { backend: BACKEND, detail }
            }
        }
        Failure::Other { detail } => StoreError::Transient {
            backend: BACKEND,
            detail: format!("{op} `{path}`: {detail}"),
            retry_after: None,
        },
    }
}

/// Vault's error strings, joined, as `: ...` (empty when Vault said nothing). Not cut here: a cut before
/// redaction could leave half a value behind, so [`StoreError::redacted`] cuts, after redacting.
fn said(errors: &[String]) -> String {
    let joined = errors.iter().map(|e| e.trim()).filter(|e| !e.is_empty()).collect::<Vec<_>>().join("; ");
    if joined.is_empty() {
        return String::new();
    }
    format!(": {joined}")
}

/// Reduces a transport error from `reqwest` to a [`Failure`]. Its chain names the URL (a path, never a value)
/// and the transport's reason; it never holds a header or a body.
pub(super) fn transport(err: &reqwest::Error) -> Failure {
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    if err.is_timeout() {
        return Failure::Timeout;
    }
    let lower = detail.to_ascii_lowercase();
    let tls = lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls");
    if err.is_connect() || tls { Failure::Connect { detail, tls } } else { Failure::Other { detail } }
}

/// `Retry-After` in seconds, as Vault's rate limiter sends it.
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;
    use crate::secret::redact::Redactor;

    const CALL: Call<'static> = Call { op: "write", path: "secret/data/app" };

    fn status(status: u16, errors: &[&str]) -> Failure {
        Failure::Status {
            status,
            errors: errors.iter().map(|e| (*e).to_owned()).collect(),
            retry_after: None,
        }
    }

    #[test]
    fn a_lost_check_and_set_is_conflict() {
        let err = classify(CALL, status(400, &["check-and-set parameter did not match the current version"]));
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    }

    #[test]
    fn any_other_bad_request_is_invalid() {
        let err = classify(CALL, status(400, &["custom_metadata validation failed"]));
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    }

    #[test]
    fn a_policy_refusal_is_permission_denied_and_a_bad_token_unauthenticated() {
        let err = classify(CALL, status(403, &["permission denied"]));
        assert!(matches!(err, StoreError::PermissionDenied { .. }), "{err:?}");
        let err =
            classify(CALL, status(403, &["2 errors occurred:\n\t* permission denied\n\t* invalid token"]));
        assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
        let err = classify(CALL, Failure::TokenRejected);
        assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
    }

    #[test]
    fn missing_is_not_found() {
        let err = classify(CALL, status(404, &[]));
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn sealed_standby_rate_limited_and_server_errors_are_transient() {
        for code in [412, 429, 473, 500, 502, 503, 504] {
            let err = classify(CALL, status(code, &["Vault is sealed"]));
            assert!(err.is_retryable(), "HTTP {code}: {err:?}");
        }
        let limited = Failure::Status {
            status: 429,
            errors: vec!["request rate limited".into()],
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(classify(CALL, limited).retry_after(), Some(Duration::from_secs(7)));
        assert!(classify(CALL, Failure::Timeout).is_retryable());
        let refused = Failure::Connect { detail: "connection refused".into(), tls: false };
        assert!(classify(CALL, refused).is_retryable());
    }

    #[test]
    fn a_tls_failure_says_how_to_trust_the_ca() {
        let err = classify(
            CALL,
            Failure::Connect { detail: "invalid peer certificate: UnknownIssuer".into(), tls: true },
        );
        assert!(err.to_string().contains("ca_file"), "{err}");
    }

    #[test]
    fn other_statuses_are_invalid_and_messages_are_cut_short() {
        let long = "x".repeat(5000);
        let err = classify(CALL, status(405, &[&long])).redacted(&Redactor::none());
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().chars().count() < crate::store::redacted::MAX_DETAIL + 50);
    }

    #[test]
    fn a_message_quoting_the_value_across_the_old_cut_loses_all_of_it() {
        // Cut at 300 characters first, as Vault's messages once were, and "hunter2-se" would survive.
        let value = SecretValue::new("hunter2-secret-value");
        let long = format!("{}hunter2-secret-value", "x".repeat(290));
        let err = classify(CALL, status(400, &[&long])).redacted(&Redactor::new(&[&value]));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().ends_with("[redacted]"), "{err}");
    }
}
