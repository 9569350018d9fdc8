//! `StoreError::redacted`: the one place a store error's texts are redacted and bounded.
//!
//! A backend's error texts come from its server or SDK (a validation message, a JSON error body), and a server
//! may quote the request it refused, value included. So every backend passes an error through here, with the
//! values it sent, wherever it sent one; and the [`Instrumented`](super::instrumented::Instrumented) wrapper
//! passes every error of every store through here as well. The texts are cut to [`MAX_DETAIL`] characters only
//! after redaction, so that no cut can leave half a value behind for the redactor to miss.

use super::StoreError;
use crate::secret::SecretValue;
use crate::secret::redact::Redactor;

/// Longest text an error keeps in one field, in characters.
pub const MAX_DETAIL: usize = 600;

impl StoreError {
    /// The error with every form of every secret `redactor` knows removed from its texts, each text then
    /// flattened onto one line and cut to [`MAX_DETAIL`]. Names (of a secret, a job) are the config's, not a
    /// server's, and are kept.
    pub fn redacted(self, redactor: &Redactor) -> Self {
        let scrub = |text: String| redactor.excerpt(&text, MAX_DETAIL);
        match self {
            Self::NotFound { backend, what } => Self::NotFound { backend, what: scrub(what) },
            Self::Conflict { backend, detail } => Self::Conflict { backend, detail: scrub(detail) },
            Self::Unauthenticated { backend, detail } => {
                Self::Unauthenticated { backend, detail: scrub(detail) }
            }
            Self::PermissionDenied { backend, detail } => {
                Self::PermissionDenied { backend, detail: scrub(detail) }
            }
            Self::Transient { backend, detail, retry_after } => {
                Self::Transient { backend, detail: scrub(detail), retry_after }
            }
            Self::NotSupported { backend, what } => Self::NotSupported { backend, what: scrub(what) },
            Self::Invalid { backend, detail } => Self::Invalid { backend, detail: scrub(detail) },
            not_owned @ Self::NotOwned { .. } => not_owned,
        }
    }

    /// [`StoreError::redacted`] for the one value a call sent: what every backend does with the error of a call
    /// that carried a secret.
    pub fn without_value(self, value: &SecretValue) -> Self {
        self.redacted(&Redactor::new(&[value]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const VALUE: &str = r#"{"username":"u@x.com","secret":"Zq7!s3cret/value"}"#;

    fn every_kind(text: &str) -> Vec<StoreError> {
        let (backend, t) = ("test", text.to_owned());
        vec![
            StoreError::NotFound { backend, what: t.clone() },
            StoreError::Conflict { backend, detail: t.clone() },
            StoreError::Unauthenticated { backend, detail: t.clone() },
            StoreError::PermissionDenied { backend, detail: t.clone() },
            StoreError::Transient { backend, detail: t.clone(), retry_after: Some(Duration::from_secs(3)) },
            StoreError::NotSupported { backend, what: t.clone() },
            StoreError::Invalid { backend, detail: t },
        ]
    }

    #[test]
    fn every_text_of_every_kind_loses_the_value_in_any_form() {
        let value = SecretValue::new(VALUE);
        let redactor = Redactor::new(&[&value]);
        let json = serde_json::to_string(VALUE).unwrap();
        let text = format!("ValidationException: {json} and the secret Zq7!s3cret/value alone");
        for err in every_kind(&text) {
            let label = err.metric_label();
            let shown = err.redacted(&redactor).to_string();
            assert_eq!(shown.matches("[redacted]").count(), 2, "{shown}");
            assert!(!shown.contains("Zq7!s3cret"), "{label}: {shown}");
        }
        let kept =
            StoreError::Transient { backend: "t", detail: "x".into(), retry_after: Some(Duration::ZERO) };
        assert_eq!(kept.redacted(&redactor).retry_after(), Some(Duration::ZERO));
    }

    #[test]
    fn a_long_text_is_cut_only_after_the_value_is_gone() {
        let value = SecretValue::new("Zq7!s3cret/value-that-is-long");
        let text = format!("{}Zq7!s3cret/value-that-is-long", "x".repeat(MAX_DETAIL - 5));
        let err = StoreError::Invalid { backend: "t", detail: text }.redacted(&Redactor::new(&[&value]));
        let shown = err.to_string();
        assert!(!shown.contains("Zq7!s"), "{shown}");
        assert!(shown.ends_with('…'), "{shown}");
    }

    #[test]
    fn names_in_a_not_owned_error_are_kept() {
        let err = StoreError::NotOwned { backend: "t", name: "app/key".into(), job: "j".into(), owner: None };
        let value = SecretValue::new("app/key-secret");
        assert_eq!(err.clone().redacted(&Redactor::new(&[&value])).to_string(), err.to_string());
    }
}
