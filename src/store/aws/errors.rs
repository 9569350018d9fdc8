//! The one mapping from AWS SDK errors to [`StoreError`].
//!
//! Every SDK call in [`super::client`] ends here. The mapping first reduces an `SdkError` to a [`Failure`] (an
//! error code, the service's message, an HTTP status, or the kind of transport problem) and then classifies that
//! in [`classify`], a pure function the unit tests feed directly. Nothing else is read from an error: never a
//! request body (which holds the secret on `PutSecretValue`), never a response body, never the SDK's `Debug`.
//!
//! Why each class lands where it does:
//! - `ResourceNotFoundException` is `NotFound`; reads turn it into `Ok(None)` where the contract says so.
//! - Bad or missing credentials are `Unauthenticated`; a policy saying no is `PermissionDenied`.
//! - Throttling, 429, 5xx, timeouts and connection failures are `Transient`: the same call can succeed later.
//!   The SDK has already retried them (standard retry mode) by the time they get here.
//! - A secret scheduled for deletion answers `InvalidRequestException`; an operator has to restore it (or pick
//!   another name), so it is `Invalid` with the command that restores it.
//! - KMS failures name KMS: the fix is in the key policy or the key's state, not in Secrets Manager.

use super::BACKEND;
use crate::store::StoreError;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::time::Duration;

/// The call an error came from, for the message: the operation and the secret it named.
#[derive(Clone, Copy, Debug)]
pub(super) struct Call<'a> {
    pub op: &'static str,
    pub secret_id: &'a str,
}

/// An SDK error reduced to what [`classify`] reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// The service answered with an error.
    Service { code: Option<String>, message: Option<String>, status: u16, retry_after: Option<Duration> },
    /// An answer arrived that the SDK could not read. Its body is never looked at: it may hold a secret.
    Unreadable { status: u16 },
    /// No answer within the SDK's timeouts.
    Timeout,
    /// The request never got an answer, or never left: connection, DNS, TLS, or loading credentials.
    Dispatch { detail: String, kind: DispatchKind },
    /// The SDK could not build the request.
    Construction { detail: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DispatchKind {
    Io,
    Timeout,
    /// The credentials chain found nothing usable (or no identity resolver was configured).
    Credentials,
    /// A mistake in the request or client configuration (the SDK's `user` connector errors).
    User,
    Other,
}

/// Maps an SDK error from `call`.
pub(super) fn from_sdk<E>(call: Call<'_>, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify(call, failure(err))
}

/// Reduces an SDK error to a [`Failure`].
pub(super) fn failure<E>(err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let raw = service.raw();
            let retry_after = raw
                .headers()
                .get("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Failure::Service {
                code: service.err().code().map(str::to_owned),
                message: service.err().message().map(str::to_owned),
                status: raw.status().as_u16(),
                retry_after,
            }
        }
        SdkError::ResponseError(response) => Failure::Unreadable { status: response.raw().status().as_u16() },
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(dispatch) => {
            // The chain of a dispatch failure is transport or credential-provider text, never a body.
            let detail = DisplayErrorContext(&err).to_string();
            let lower = detail.to_ascii_lowercase();
            // The SDK does not export the credentials error type to downcast to; every one of its messages,
            // and the "no identity resolver" one, says "credential" or "identity".
            let kind = if dispatch.is_timeout() {
                DispatchKind::Timeout
            } else if dispatch.is_io() {
                DispatchKind::Io
            } else if lower.contains("credential") || lower.contains("identity") {
                DispatchKind::Credentials
            } else if dispatch.is_user() {
                DispatchKind::User
            } else {
                DispatchKind::Other
            };
            Failure::Dispatch { detail, kind }
        }
        _ => Failure::Construction { detail: DisplayErrorContext(&err).to_string() },
    }
}

/// Classifies a failure of `call`. See the module documentation for why each class lands where it does.
pub(super) fn classify(call: Call<'_>, failure: Failure) -> StoreError {
    let Call { op, secret_id } = call;
    match failure {
        Failure::Service { code, message, status, retry_after } => {
            let code_text = code.as_deref().unwrap_or("(no error code)");
            let message = message.unwrap_or_default();
            let detail = format!("{op} on `{secret_id}`: {code_text}: {message}");
            service(call, code.as_deref(), &message, status, retry_after, detail)
        }
        Failure::Unreadable { status } => {
            let detail = format!("{op} on `{secret_id}`: an answer that could not be read (HTTP {status})");
            by_status(status, None, detail, secret_id)
        }
        Failure::Timeout => StoreError::Transient {
            backend: BACKEND,
            detail: format!("{op} on `{secret_id}`: no answer in time"),
            retry_after: None,
        },
        Failure::Dispatch { detail, kind } => {
            let detail = format!("{op} on `{secret_id}`: {detail}");
            match kind {
                DispatchKind::Credentials => StoreError::Unauthenticated {
                    backend: BACKEND,
                    detail: format!(
                        "{detail} (credentials come from the standard AWS chain: environment, profile, web \
                         identity/IRSA, EKS Pod Identity, ECS, instance metadata)"
                    ),
                },
                DispatchKind::User => StoreError::Invalid { backend: BACKEND, detail },
                DispatchKind::Io | DispatchKind::Timeout | DispatchKind::Other => {
                    StoreError::Transient { backend: BACKEND, detail, retry_after: None }
                }
            }
        }
        Failure::Construction { detail } => {
            StoreError::Invalid { backend: BACKEND, detail: format!("{op} on `{secret_id}`: {detail}") }
        }
    }
}

fn service(
    call: Call<'_>,
    code: Option<&str>,
    message: &str,
    status: u16,
    retry_after: Option<Duration>,
    detail: String,
) -> StoreError {
    let secret_id = call.secret_id;
    let kms = |detail: String| {
        format!(
            "{detail} (a KMS problem: the secret's KMS key must be enabled, and rotavault's identity needs \
             kms:Decrypt and kms:GenerateDataKey on it)"
        )
    };
    match code {
        Some("ResourceNotFoundException") => {
            StoreError::NotFound { backend: BACKEND, what: format!("secret `{secret_id}`") }
        }
        Some("AccessDeniedException" | "AccessDenied") => {
            StoreError::PermissionDenied { backend: BACKEND, detail }
        }
        Some(
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "ExpiredToken"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
            | "RequestExpired",
        ) => StoreError::Unauthenticated { backend: BACKEND, detail },
        Some(
            "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "InternalServiceError"
            | "InternalServiceErrorException"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "RequestTimeout"
            | "RequestTimeoutException",
        ) => StoreError::Transient { backend: BACKEND, detail, retry_after },
        Some("DecryptionFailure" | "EncryptionFailure" | "KMSAccessDeniedException") => {
            StoreError::PermissionDenied { backend: BACKEND, detail: kms(detail) }
        }
        Some(
            "KMSDisabledException"
            | "KMSInvalidStateException"
            | "KMSNotFoundException"
            | "KMSInvalidKeyUsageException"
            | "KMSOptInRequired",
        ) => StoreError::Invalid { backend: BACKEND, detail: kms(detail) },
        Some("ResourceExistsException") => StoreError::Conflict { backend: BACKEND, detail },
        // AWS's words vary ("marked for deletion", "scheduled for deletion", moto's "marked deleted").
        Some("InvalidRequestException") if message.to_ascii_lowercase().contains("delet") => {
            scheduled_for_deletion(secret_id)
        }
        Some(
            "InvalidRequestException"
            | "InvalidParameterException"
            | "InvalidParameterValue"
            | "ValidationException"
            | "InvalidNextTokenException"
            | "MalformedPolicyDocumentException"
            | "PreconditionNotMetException"
            | "PublicPolicyException"
            | "LimitExceededException",
        ) => StoreError::Invalid { backend: BACKEND, detail },
        _ => by_status(status, retry_after, detail, secret_id),
    }
}

/// An error code this mapping does not know: the HTTP status decides.
fn by_status(status: u16, retry_after: Option<Duration>, detail: String, secret_id: &str) -> StoreError {
    match status {
        429 | 500..=599 => StoreError::Transient { backend: BACKEND, detail, retry_after },
        401 => StoreError::Unauthenticated { backend: BACKEND, detail },
        403 => StoreError::PermissionDenied { backend: BACKEND, detail },
        404 => StoreError::NotFound { backend: BACKEND, what: format!("secret `{secret_id}`") },
        _ => StoreError::Invalid { backend: BACKEND, detail },
    }
}

/// An `AWSPENDING` that rotavault did not stage (an AWS rotation function's, or a person's): never a value to
/// verify against the target or to promote, since nothing says what it is for; a person clears it.
pub(super) fn foreign_pending(secret_id: &str, version: &str) -> StoreError {
    StoreError::Conflict {
        backend: BACKEND,
        detail: format!(
            "version {version} of `{secret_id}` is AWSPENDING and was not staged by rotavault (it has no \
             rotavault metadata tag: an AWS rotation function or a person put it there); rotavault neither \
             verifies nor promotes a value it did not write. If no other rotation of this secret is running, \
             remove the label: `aws secretsmanager update-secret-version-stage --secret-id {secret_id} \
             --version-stage AWSPENDING --remove-from-version-id {version}`"
        ),
    }
}

/// A secret scheduled for deletion can be neither read nor written until it is restored, and its name cannot
/// be taken by a new secret until the deletion happens.
pub(super) fn scheduled_for_deletion(secret_id: &str) -> StoreError {
    StoreError::Invalid {
        backend: BACKEND,
        detail: format!(
            "`{secret_id}` is scheduled for deletion; restore it with \
             `aws secretsmanager restore-secret --secret-id {secret_id}`, or give the job another name"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

    const CALL: Call<'static> = Call { op: "GetSecretValue", secret_id: "team/api" };

    fn service_failure(code: &str, message: &str, status: u16) -> Failure {
        Failure::Service { code: Some(code.into()), message: Some(message.into()), status, retry_after: None }
    }

    fn classify_code(code: &str, message: &str, status: u16) -> StoreError {
        classify(CALL, service_failure(code, message, status))
    }

    fn sdk_service_error(
        code: &str,
        message: &str,
        status: u16,
    ) -> SdkError<GetSecretValueError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(status.try_into().expect("a status code"), "".into());
        SdkError::service_error(GetSecretValueError::generic(meta), raw)
    }

    #[test]
    fn codes_map_to_their_class() {
        let cases = [
            ("ResourceNotFoundException", 400, "not_found"),
            ("AccessDeniedException", 400, "permission_denied"),
            ("UnrecognizedClientException", 400, "unauthenticated"),
            ("ExpiredTokenException", 400, "unauthenticated"),
            ("ThrottlingException", 400, "transient"),
            ("TooManyRequestsException", 429, "transient"),
            ("InternalServiceError", 500, "transient"),
            ("InvalidParameterException", 400, "invalid"),
            ("InvalidRequestException", 400, "invalid"),
            ("ValidationException", 400, "invalid"),
            ("LimitExceededException", 400, "invalid"),
            ("ResourceExistsException", 400, "conflict"),
            ("DecryptionFailure", 400, "permission_denied"),
            ("EncryptionFailure", 400, "permission_denied"),
            ("KMSAccessDeniedException", 400, "permission_denied"),
            ("KMSDisabledException", 400, "invalid"),
            ("KMSInvalidStateException", 400, "invalid"),
        ];
        for (code, status, label) in cases {
            let err = classify_code(code, "something", status);
            assert_eq!(err.metric_label(), label, "{code} became {err:?}");
            assert_eq!(err.backend(), BACKEND);
        }
    }

    #[test]
    fn an_unknown_code_is_classified_by_its_status() {
        for (status, label) in [
            (429, "transient"),
            (503, "transient"),
            (500, "transient"),
            (401, "unauthenticated"),
            (403, "permission_denied"),
            (404, "not_found"),
            (400, "invalid"),
        ] {
            assert_eq!(classify_code("SomethingNew", "m", status).metric_label(), label, "HTTP {status}");
        }
    }

    #[test]
    fn kms_failures_name_kms() {
        for code in ["DecryptionFailure", "EncryptionFailure", "KMSDisabledException"] {
            let text = classify_code(code, "key problem", 400).to_string();
            assert!(text.contains("KMS"), "{code}: {text}");
        }
    }

    #[test]
    fn a_secret_scheduled_for_deletion_says_how_to_restore_it() {
        for message in [
            "You can't perform this operation on the secret because it was marked for deletion.",
            "You tried to perform the operation on a secret that's currently marked deleted.",
            "You can't create this secret because a secret with this name is already scheduled for deletion.",
        ] {
            let err = classify_code("InvalidRequestException", message, 400);
            assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
            let text = err.to_string();
            assert!(text.contains("scheduled for deletion"), "{text}");
            assert!(text.contains("aws secretsmanager restore-secret --secret-id team/api"), "{text}");
        }
        // Other invalid requests keep the service's message.
        let err = classify_code("InvalidRequestException", "the token is too short", 400);
        assert!(err.to_string().contains("the token is too short"), "{err}");
    }

    #[test]
    fn messages_are_code_and_message_only() {
        let text = classify_code("AccessDeniedException", "User x is not authorized", 400).to_string();
        assert_eq!(
            text,
            "aws_secrets_manager: permission denied: GetSecretValue on `team/api`: AccessDeniedException: \
             User x is not authorized"
        );
    }

    #[test]
    fn sdk_service_errors_are_read_through_their_metadata() {
        let err = from_sdk(CALL, sdk_service_error("ThrottlingException", "Rate exceeded", 400));
        assert!(matches!(err, StoreError::Transient { .. }), "{err:?}");
        let err = from_sdk(CALL, sdk_service_error("ResourceNotFoundException", "gone", 400));
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        let err = from_sdk(CALL, sdk_service_error("UnrecognizedClientException", "bad key", 400));
        assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
    }

    #[test]
    fn retry_after_is_taken_from_the_answer() {
        let meta = ErrorMetadata::builder().code("TooManyRequestsException").message("slow down").build();
        let mut raw = HttpResponse::new(429u16.try_into().expect("a status code"), "".into());
        raw.headers_mut().insert("retry-after", "7");
        let err = from_sdk(CALL, SdkError::service_error(GetSecretValueError::generic(meta), raw));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert!(err.is_retryable());
    }

    #[test]
    fn transport_failures_are_transient() {
        let io: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        assert!(matches!(from_sdk(CALL, io), StoreError::Transient { .. }));
        let timeout: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::timeout("connect timed out".into()));
        assert!(matches!(from_sdk(CALL, timeout), StoreError::Transient { .. }));
        let timeout: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        assert!(matches!(from_sdk(CALL, timeout), StoreError::Transient { .. }));
    }

    #[test]
    fn missing_credentials_are_unauthenticated() {
        let err: SdkError<GetSecretValueError, HttpResponse> = SdkError::dispatch_failure(
            ConnectorError::other("an error occurred while loading credentials".into(), None),
        );
        let err = from_sdk(CALL, err);
        assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
        assert!(err.to_string().contains("standard AWS chain"), "{err}");
    }

    #[test]
    fn an_unreadable_answer_never_shows_its_body() {
        let raw =
            HttpResponse::new(200u16.try_into().expect("a status code"), "{\"SecretString\":\"s3cr3t".into());
        let err: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::response_error("failed to parse: {\"SecretString\":\"s3cr3t", raw);
        let text = from_sdk(CALL, err).to_string();
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn a_message_that_quotes_the_value_loses_it_in_the_shared_step() {
        use crate::secret::{SecretValue, redact::Redactor};
        let err =
            classify_code("ValidationException", "Value 'hunter2-secret' at 'secretString' is bad", 400);
        let text = err.redacted(&Redactor::new(&[&SecretValue::new("hunter2-secret")])).to_string();
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}
