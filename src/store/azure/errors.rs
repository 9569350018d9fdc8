//! The one mapping from the Azure SDK's errors to [`StoreError`], and what the store decides from a service
//! answer.
//!
//! Every call in `client` passes its error through [`from_sdk`], which reads the status, the service's error
//! code and message (from the JSON body, never the SDK's own rendering of it, which quotes a body it cannot
//! parse), `innererror.code`, and `Retry-After`. Two answers are not errors of the call but facts a caller
//! decides on, so they come back as their own [`Failure`] variants: a missing secret or version
//! ([`Failure::NotFound`], `Ok(None)` for a read) and a version that Key Vault refuses to read because it is
//! disabled ([`Failure::Disabled`]: a disabled pending version is no pending, a disabled current is `Invalid`).
//!
//! Messages name the call and the secret and carry the service's own words. They never carry a value: Key Vault
//! does not quote values in its errors, and the SDK errors that could (a response body it failed to
//! deserialize, which serde may quote) are reduced to "could not be read".

use super::BACKEND;
use crate::store::StoreError;
use azure_core::error::ErrorKind;
use azure_core::http::headers::{Headers, RETRY_AFTER, RETRY_AFTER_MS, X_MS_RETRY_AFTER_MS};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// What was being done, for messages.
#[derive(Clone, Copy, Debug)]
pub(super) struct Call<'a> {
    /// The Key Vault operation, as Azure's documentation names it (`GetSecret`, `SetSecret`, ...).
    pub op: &'static str,
    /// The secret the call was about.
    pub name: &'a str,
}

/// The outcome of a failed call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// 404: no such secret or version (or the secret is deleted: Key Vault hides deleted secrets from GET).
    NotFound,
    /// 403 because the version is disabled ("Operation get is not allowed on a disabled secret.").
    Disabled,
    /// Everything else, already classified.
    Store(StoreError),
}

impl Failure {
    /// For a caller that has no use for the two facts: they become errors too.
    pub fn into_error(self, call: Call<'_>) -> StoreError {
        match self {
            Failure::NotFound => not_found(call.name),
            Failure::Disabled => disabled(call.name),
            Failure::Store(e) => e,
        }
    }
}

pub(super) fn not_found(name: &str) -> StoreError {
    StoreError::NotFound { backend: BACKEND, what: format!("secret `{name}`") }
}

/// The latest version of a secret rotavault reads as current is disabled: Key Vault will not serve it, and
/// rotavault will not guess what the current value is.
pub(super) fn disabled(name: &str) -> StoreError {
    StoreError::Invalid {
        backend: BACKEND,
        detail: format!(
            "the latest version of `{name}` is disabled, so Key Vault refuses to read it and rotavault cannot \
             know the current value; enable it again (`az keyvault secret set-attributes --vault-name VAULT \
             --name {name} --enabled true`) or write a new enabled version"
        ),
    }
}

/// A secret deleted but not purged keeps its name reserved: it can be neither written nor created until someone
/// recovers or purges it. rotavault never deletes, so someone else did; which of the two is a person's call.
pub(super) fn deleted_but_recoverable(name: &str) -> StoreError {
    StoreError::Invalid {
        backend: BACKEND,
        detail: format!(
            "`{name}` is deleted but recoverable (soft delete keeps its name reserved): recover it with `az \
             keyvault secret recover --vault-name VAULT --name {name}`, or purge it with `az keyvault secret \
             purge --vault-name VAULT --name {name}` if its values may be lost for good"
        ),
    }
}

/// The parts of a service answer the mapping reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Answer {
    pub status: u16,
    pub code: Option<String>,
    pub inner_code: Option<String>,
    pub message: Option<String>,
    pub retry_after: Option<Duration>,
}

/// Maps any error of the SDK.
pub(super) fn from_sdk(call: Call<'_>, err: azure_core::Error) -> Failure {
    let Call { op, name } = call;
    match err.kind() {
        ErrorKind::HttpResponse { status, error_code, raw_response } => {
            let mut answer = Answer { status: u16::from(*status), ..Answer::default() };
            if let Some(raw) = raw_response {
                read_body(raw.body(), &mut answer);
                answer.retry_after = retry_after(raw.headers(), Utc::now());
            }
            if answer.code.is_none() {
                answer.code = error_code.clone();
            }
            classify(call, answer)
        }
        // Refused before anything was sent (`connect`), or cut while sending or reading: both worth retrying.
        ErrorKind::Connection | ErrorKind::Io => Failure::Store(StoreError::Transient {
            backend: BACKEND,
            detail: format!("{op} on `{name}`: {}", chain(&err)),
            retry_after: None,
        }),
        // A token request that failed on the way (Entra ID or the identity endpoint unreachable, throttled or
        // failing) is worth retrying; one that Entra ID refused is not.
        ErrorKind::Credential if token_request_failed_in_transit(&err) => {
            Failure::Store(StoreError::Transient {
                backend: BACKEND,
                detail: format!("{op} on `{name}`: no token for Key Vault yet: {}", chain(&err)),
                retry_after: None,
            })
        }
        ErrorKind::Credential => Failure::Store(StoreError::Unauthenticated {
            backend: BACKEND,
            detail: format!(
                "{op} on `{name}`: no token for Key Vault: {} (check the store's `identity`)",
                chain(&err)
            ),
        }),
        // A body that did not deserialize: serde's message may quote it, and it may hold a value.
        ErrorKind::DataConversion => Failure::Store(StoreError::Invalid {
            backend: BACKEND,
            detail: format!(
                "{op} on `{name}`: an answer that could not be read (is `vault_url` a Key Vault, e.g. \
                 https://NAME.vault.azure.net?)"
            ),
        }),
        // The SDK's own refusals: a non-https URL, a challenge for another resource than the vault's domain.
        // Their messages hold URLs and the challenge, never a request body.
        _ => Failure::Store(StoreError::Invalid {
            backend: BACKEND,
            detail: format!("{op} on `{name}`: {}", chain(&err)),
        }),
    }
}

/// Whether an error below a credential error is a transport failure or a 429/5xx answer.
fn token_request_failed_in_transit(err: &azure_core::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        if let Some(inner) = inner.downcast_ref::<azure_core::Error>() {
            match inner.kind() {
                ErrorKind::Io | ErrorKind::Connection => return true,
                ErrorKind::HttpResponse { status, .. } => {
                    let status = u16::from(*status);
                    return status == 429 || status >= 500;
                }
                _ => {}
            }
        }
        source = inner.source();
    }
    false
}

/// Reads `{"error":{"code","message","innererror":{"code"}}}`; anything else is left unread, never quoted.
fn read_body(body: &[u8], answer: &mut Answer) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Option<Detail>,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        code: Option<String>,
        message: Option<String>,
        innererror: Option<Inner>,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: Option<String>,
    }
    if let Ok(Envelope { error: Some(detail) }) = serde_json::from_slice::<Envelope>(body) {
        answer.code = detail.code;
        answer.message = detail.message;
        answer.inner_code = detail.innererror.and_then(|i| i.code);
    }
}

/// `Retry-After` in seconds or as an HTTP date, or Azure's millisecond variants.
pub(super) fn retry_after(headers: &Headers, now: DateTime<Utc>) -> Option<Duration> {
    for ms in [RETRY_AFTER_MS, X_MS_RETRY_AFTER_MS] {
        if let Some(n) = headers.get_optional_str(&ms).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_millis(n));
        }
    }
    let text = headers.get_optional_str(&RETRY_AFTER)?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The mapping itself, from what the service said.
pub(super) fn classify(call: Call<'_>, answer: Answer) -> Failure {
    let Call { op, name } = call;
    let Answer { status, code, inner_code, message, retry_after } = answer;
    let message = message.unwrap_or_default();
    let code_text = code.as_deref().unwrap_or("(no error code)");
    let detail = if message.is_empty() {
        format!("{op} on `{name}`: HTTP {status} {code_text}")
    } else {
        format!("{op} on `{name}`: {code_text}: {message}")
    };
    let inner = inner_code.as_deref().unwrap_or("");
    let store = |e: StoreError| Failure::Store(e);
    match status {
        404 => Failure::NotFound,
        403 if inner == "SecretDisabled" || message.contains("disabled secret") => Failure::Disabled,
        401 => store(StoreError::Unauthenticated {
            backend: BACKEND,
            detail: format!(
                "{detail} (Key Vault refused the token: check the store's `identity`, and that it belongs to \
                 the vault's tenant)"
            ),
        }),
        403 => store(StoreError::PermissionDenied { backend: BACKEND, detail: with_permission_hint(detail) }),
        409 if inner == "ObjectIsDeletedButRecoverable"
            || code.as_deref() == Some("ObjectIsDeletedButRecoverable")
            || message.contains("deleted but recoverable") =>
        {
            store(deleted_but_recoverable(name))
        }
        // Other conflicts are a deletion or recovery in progress: they end by themselves.
        409 | 429 | 500..=599 => store(StoreError::Transient { backend: BACKEND, detail, retry_after }),
        408 => store(StoreError::Transient { backend: BACKEND, detail, retry_after }),
        _ => store(StoreError::Invalid { backend: BACKEND, detail }),
    }
}

/// Names the missing permission when the service said which: "does not have secrets get permission" (access
/// policies) or "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'" (Azure RBAC).
fn with_permission_hint(detail: String) -> String {
    if let Some(permission) = access_policy_permission(&detail) {
        format!(
            "{detail} (grant `secrets {permission}` in the vault's access policy, or with Azure RBAC a role such \
             as Key Vault Secrets Officer; rotavault needs secrets get and set)"
        )
    } else if let Some(action) = rbac_action(&detail) {
        format!(
            "{detail} (the identity lacks `{action}`: Key Vault Secrets Officer grants what rotavault needs)"
        )
    } else {
        format!("{detail} (rotavault needs secrets get and set on the vault)")
    }
}

/// `get` in "does not have secrets get permission".
pub(super) fn access_policy_permission(text: &str) -> Option<&str> {
    let rest = &text[text.find("does not have secrets ")? + "does not have secrets ".len()..];
    let word = rest.split_whitespace().next()?;
    rest[word.len()..].trim_start().starts_with("permission").then_some(word)
}

fn rbac_action(text: &str) -> Option<&str> {
    let start = text.find("Microsoft.KeyVault/")?;
    let rest = &text[start..];
    let end = rest.find(|c: char| c == '\'' || c == '"' || c.is_whitespace()).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The error's message and the messages of its sources, joined: a transport error says what failed below.
fn chain(err: &azure_core::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::{RawResponse, StatusCode};

    const CALL: Call<'static> = Call { op: "SetSecret", name: "app-key" };

    fn answer(status: u16, code: &str, inner: Option<&str>, message: &str) -> Answer {
        Answer {
            status,
            code: Some(code.into()),
            inner_code: inner.map(Into::into),
            message: Some(message.into()),
            retry_after: None,
        }
    }

    fn store_error(failure: Failure) -> StoreError {
        match failure {
            Failure::Store(e) => e,
            other => panic!("expected a store error, got {other:?}"),
        }
    }

    fn http_error(status: u16, headers: Headers, body: &str) -> azure_core::Error {
        let raw = RawResponse::from_bytes(StatusCode::from(status), headers, body.as_bytes().to_vec());
        azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status: StatusCode::from(status),
                error_code: None,
                raw_response: Some(Box::new(raw)),
            },
            "HTTP error",
        )
    }

    #[test]
    fn statuses_map_to_their_class() {
        let cases = [
            (401, "Unauthorized", "unauthenticated"),
            (403, "Forbidden", "permission_denied"),
            (429, "Throttled", "transient"),
            (500, "InternalServerError", "transient"),
            (503, "ServiceUnavailable", "transient"),
            (400, "BadParameter", "invalid"),
            (409, "Conflict", "transient"),
        ];
        for (status, code, label) in cases {
            let err = store_error(classify(CALL, answer(status, code, None, "m")));
            assert_eq!(err.metric_label(), label, "HTTP {status} became {err:?}");
            assert_eq!(err.backend(), BACKEND);
        }
        assert_eq!(classify(CALL, answer(404, "SecretNotFound", None, "gone")), Failure::NotFound);
    }

    #[test]
    fn a_disabled_version_is_its_own_answer() {
        let by_message = answer(403, "Forbidden", None, "Operation get is not allowed on a disabled secret.");
        assert_eq!(classify(CALL, by_message), Failure::Disabled);
        let by_inner = answer(403, "Forbidden", Some("SecretDisabled"), "Operation get is not allowed.");
        assert_eq!(classify(CALL, by_inner), Failure::Disabled);
        assert!(matches!(Failure::Disabled.into_error(CALL), StoreError::Invalid { .. }));
    }

    #[test]
    fn forbidden_names_the_missing_permission() {
        let message = "The user, group or application 'appid=x;oid=y' does not have secrets set permission on \
                       key vault 'myvault;location=westeurope'.";
        let err = store_error(classify(CALL, answer(403, "Forbidden", Some("AccessDenied"), message)));
        assert!(matches!(err, StoreError::PermissionDenied { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("does not have secrets set permission"), "{text}");
        assert!(text.contains("grant `secrets set`"), "{text}");
        assert_eq!(access_policy_permission(message), Some("set"));
        assert_eq!(access_policy_permission("does not have secrets"), None);

        let rbac = "Caller is not authorized to perform action on resource. Action: \
                    'Microsoft.KeyVault/vaults/secrets/getSecret/action' Resource: '/subscriptions/x'";
        let text =
            store_error(classify(CALL, answer(403, "Forbidden", Some("ForbiddenByRbac"), rbac))).to_string();
        assert!(text.contains("lacks `Microsoft.KeyVault/vaults/secrets/getSecret/action`"), "{text}");
    }

    #[test]
    fn a_deleted_but_recoverable_name_says_how_to_recover_or_purge() {
        let message = "Secret app-key is currently in a deleted but recoverable state, and its name cannot be \
                       reused; in this state, the secret can only be recovered or purged.";
        let err = store_error(classify(
            CALL,
            answer(409, "Conflict", Some("ObjectIsDeletedButRecoverable"), message),
        ));
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("az keyvault secret recover --vault-name VAULT --name app-key"), "{text}");
        assert!(text.contains("purge"), "{text}");
    }

    #[test]
    fn the_service_answer_is_read_from_the_body_and_headers() {
        let mut headers = Headers::new();
        headers.insert(RETRY_AFTER, "7");
        let body = r#"{"error":{"code":"Throttled","message":"Too many requests"}}"#;
        let err = store_error(from_sdk(CALL, http_error(429, headers, body)));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert!(err.to_string().contains("Throttled: Too many requests"), "{err}");

        let body = r#"{"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled secret.","innererror":{"code":"SecretDisabled"}}}"#;
        assert_eq!(from_sdk(CALL, http_error(403, Headers::new(), body)), Failure::Disabled);
    }

    #[test]
    fn an_unreadable_error_body_is_never_quoted() {
        let err = store_error(from_sdk(CALL, http_error(400, Headers::new(), "<html>hunter2-secret</html>")));
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("HTTP 400"), "{text}");
    }

    #[test]
    fn a_failed_deserialization_never_shows_the_body() {
        let serde_err = serde_json::from_str::<u64>(r#""hunter2-secret""#).expect_err("not a number");
        let err = azure_core::Error::new(ErrorKind::DataConversion, serde_err);
        let text = store_error(from_sdk(CALL, err)).to_string();
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn transport_failures_are_transient_and_credentials_unauthenticated() {
        let io = azure_core::Error::with_message(ErrorKind::Io, "connection reset");
        assert!(matches!(store_error(from_sdk(CALL, io)), StoreError::Transient { .. }));
        let refused = azure_core::Error::with_message(ErrorKind::Connection, "connection refused");
        assert!(matches!(store_error(from_sdk(CALL, refused)), StoreError::Transient { .. }));
        let token = azure_core::Error::with_message(ErrorKind::Credential, "no managed identity endpoint");
        let err = store_error(from_sdk(CALL, token));
        assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
        assert!(err.to_string().contains("no managed identity endpoint"), "{err}");
    }

    #[test]
    fn a_token_request_cut_in_transit_is_transient() {
        let io = azure_core::Error::with_message(ErrorKind::Io, "connection reset by Entra ID");
        let wrapped =
            azure_core::Error::with_error(ErrorKind::Credential, io, "ClientSecretCredential failed");
        assert!(matches!(store_error(from_sdk(CALL, wrapped)), StoreError::Transient { .. }));
        let refused = http_error(400, Headers::new(), r#"{"error":"invalid_client"}"#);
        let wrapped =
            azure_core::Error::with_error(ErrorKind::Credential, refused, "AADSTS7000215: invalid secret");
        let err = store_error(from_sdk(CALL, wrapped));
        assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
        assert!(err.to_string().contains("AADSTS7000215"), "{err}");
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_milliseconds() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").expect("a date").with_timezone(&Utc);
        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "Sun, 01 Mar 2026 12:00:30 GMT");
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "12");
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(12)));
        let mut h = Headers::new();
        h.insert(X_MS_RETRY_AFTER_MS, "1500");
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(&Headers::new(), now), None);
    }
}
