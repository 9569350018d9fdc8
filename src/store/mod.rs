//! Stores: where secrets live, and the contract every backend keeps.
//!
//! A store is not a key-value API. It speaks rotavault's rotation protocol: for every secret name it keeps three
//! slots, **current**, **pending** and **previous**, and moves values between them with the operations below, as
//! natively and atomically as the backend allows.
//!
//! # Contract
//!
//! Every backend, and every wrapper around one, keeps each sentence below; the conformance suite in
//! [`conformance`] has one test per sentence and runs on all of them.
//!
//! - Reading a slot that holds nothing is `Ok(None)`, never an empty value and never an error.
//! - `stage` writes the value as pending, tagged with the rotation id, and leaves current and previous untouched.
//! - `stage` with the rotation id already pending and the same value is a no-op; with another value it is
//!   `Conflict`.
//! - `stage` while another rotation id is pending is `Conflict`, and the pending value is kept.
//! - Of two concurrent stages with different rotation ids, at most one succeeds; the other is `Conflict`, and
//!   pending then holds the winner's id and value. Both may fail instead (a backend that cannot tell which came
//!   first refuses both rather than guess): then nothing is pending once each has discarded its own id, and the
//!   next stage succeeds. The one exception is a backend whose [`Capabilities`] say `exclusive_stage: false`
//!   (Azure Key Vault, which has no conditional write): there, when one stage writes only after the other has
//!   read its own write back, neither sees the other, both succeed, and pending holds the later one. Even
//!   there, pending never holds a stage that answered `Conflict`.
//! - `promote(R)` makes pending R current and the old current previous, and clears pending.
//! - `promote(R)` when R is already current and nothing is pending is `Ok` (a promote whose answer was lost is
//!   retried safely).
//! - `promote(R)` with nothing pending and R not current is `NotFound`; with another id pending it is `Conflict`.
//! - `discard(R)` clears pending R and leaves current and previous untouched; with nothing pending it is `Ok`;
//!   with another id pending it is `Conflict`.
//! - `write_current` makes the value current, keeps the old current as previous, and leaves pending untouched.
//! - Metadata written with a value (job, rotation id, rotated-at, generation) is read back with it.
//! - Values come back byte for byte.
//! - Names are independent: nothing done to one name changes another.
//! - A secret that exists but is not managed by rotavault is `NotOwned` for every read and write, unless the
//!   [`SecretRef`] says `adopt`; a secret managed for another job is `NotOwned` even then.
//! - `check` succeeds on a reachable, writable store and changes no secret.
//! - `summaries` answers, for each secret asked and in the order asked, what `current` and `pending` answer of
//!   its metadata (the value itself is never returned); one secret's error does not fail the others.
//! - A backend never answers `Ok` for something that did not happen.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
pub mod conformance;
pub(crate) mod contract;
pub mod file;
pub mod instrumented;
pub mod memory;
pub mod redacted;
pub(crate) mod slots;
#[cfg(feature = "vault")]
pub mod vault;

use crate::secret::SecretValue;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;
use std::time::Duration;

/// A rotation's unique id: a UUID in its hyphenated form (36 characters), within the 32–64 characters AWS
/// accepts as a `ClientRequestToken`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RotationId(String);

impl RotationId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let ok_len = (32..=64).contains(&text.len());
        let ok_chars = text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if ok_len && ok_chars {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not a rotation id: expected 32 to 64 characters of letters, digits and '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RotationId {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<String> for RotationId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<RotationId> for String {
    fn from(id: RotationId) -> String {
        id.0
    }
}

impl fmt::Display for RotationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RotationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RotationId({})", self.0)
    }
}

/// Which secret a call is about, and on whose behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// The name in the store (a path, a secret name, an ARN).
    pub name: String,
    /// The job that owns it; written as the owner and checked on every call.
    pub job: String,
    /// Whether the job may take over a secret that exists but is not managed by rotavault.
    pub adopt: bool,
    /// The job's `max_age`, for a backend that records an expiry beside the value (Key Vault's `exp`): a signal
    /// for people and tools, never relied on.
    pub max_age: Option<Duration>,
}

impl SecretRef {
    pub fn new(name: impl Into<String>, job: impl Into<String>) -> Self {
        Self { name: name.into(), job: job.into(), adopt: false, max_age: None }
    }

    pub fn adopting(mut self) -> Self {
        self.adopt = true;
        self
    }
}

/// What rotavault records beside every value it writes. Never secret.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Metadata {
    /// The rotation that produced the value; `None` for an imported value.
    pub rotation_id: Option<RotationId>,
    /// When the value was generated (staged) or imported.
    pub rotated_at: DateTime<Utc>,
    /// Counts the values this job has had: 1 for the first.
    pub generation: u64,
}

/// Written in place of a rotation id for a value that no rotation produced (an import).
const IMPORTED: &str = "imported";

impl Metadata {
    /// Timestamps are kept to the second: every backend can store that, so a round trip is exact everywhere.
    pub fn new(rotation_id: Option<RotationId>, rotated_at: DateTime<Utc>, generation: u64) -> Self {
        let rotated_at = DateTime::from_timestamp(rotated_at.timestamp(), 0).unwrap_or(rotated_at);
        Self { rotation_id, rotated_at, generation }
    }

    /// One short line, `<generation>/<rfc3339 time>/<rotation id | imported>`, for backends that keep metadata
    /// beside a value as a tag or a metadata field (AWS tags, Vault `custom_metadata`).
    pub fn encode(&self) -> String {
        format!("{}/{}/{}", self.generation, self.rotated_at_text(), self.rotation_text())
    }

    /// The rotation id as rotavault writes it beside a value: the id, or `imported`.
    pub fn rotation_text(&self) -> &str {
        self.rotation_id.as_ref().map_or(IMPORTED, RotationId::as_str)
    }

    /// Reads what [`Metadata::rotation_text`] wrote.
    pub fn rotation_from_text(text: &str) -> Result<Option<RotationId>, String> {
        match text {
            IMPORTED => Ok(None),
            id => RotationId::parse(id).map(Some),
        }
    }

    /// The time as rotavault writes it beside a value: RFC 3339 to the second, in UTC.
    pub fn rotated_at_text(&self) -> String {
        self.rotated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// Reads what [`Metadata::encode`] wrote; the error says what is wrong with it.
    pub fn decode(text: &str) -> Result<Self, String> {
        let wrong = |why: &str| {
            format!(
                "`{text}` is not rotavault metadata ({why}); expected `<generation>/<rfc3339 time>/<rotation id>`"
            )
        };
        let mut parts = text.splitn(3, '/');
        let (Some(generation), Some(at), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(wrong("three fields separated by `/`"));
        };
        let generation = generation.parse::<u64>().map_err(|_| wrong("the generation is not a number"))?;
        let at = DateTime::parse_from_rfc3339(at)
            .map_err(|_| wrong("the time is not RFC 3339"))?
            .with_timezone(&Utc);
        let rotation_id = Self::rotation_from_text(id).map_err(|_| wrong("the rotation id is not one"))?;
        Ok(Self::new(rotation_id, at, generation))
    }

    /// The metadata of a value rotavault did not write (one that was there when the secret was adopted): no
    /// rotation, generation 0, and the value's creation time.
    pub fn synthesized(created: Option<DateTime<Utc>>) -> Self {
        Self::new(None, created.unwrap_or(DateTime::UNIX_EPOCH), 0)
    }
}

/// A value with its metadata, as read from a current or previous slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub value: SecretValue,
    pub metadata: Metadata,
}

/// A value waiting in the pending slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub value: SecretValue,
    pub rotation_id: RotationId,
    pub metadata: Metadata,
}

/// What [`Store::summaries`] reports of one secret: the metadata of its current and pending values, never a
/// value. Enough to schedule a job and to show its status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub current: Option<Metadata>,
    pub pending: Option<PendingSummary>,
}

/// The pending slot of a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSummary {
    pub rotation_id: RotationId,
    pub metadata: Metadata,
}

impl Summary {
    pub fn of(current: Option<&Stored>, pending: Option<&Pending>) -> Self {
        Self {
            current: current.map(|c| c.metadata.clone()),
            pending: pending
                .map(|p| PendingSummary { rotation_id: p.rotation_id.clone(), metadata: p.metadata.clone() }),
        }
    }
}

/// How many secrets the default [`Store::summaries`] reads at once: enough to hide a network store's latency,
/// few enough not to trip its rate limits.
pub const SUMMARY_CONCURRENCY: usize = 8;

/// What a backend can do beyond the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// The store survives a restart of rotavault.
    pub durable: bool,
    /// Promote is one atomic step in the backend (not a sequence of writes that recovery may have to finish).
    pub atomic_promote: bool,
    /// Of two concurrent stages with different rotation ids, at most one succeeds, however their calls
    /// interleave (the Contract's concurrency sentence holds without the exception it names). True where the
    /// backend can compare and set, or rotavault holds a lock; false for Azure Key Vault, which has neither.
    pub exclusive_stage: bool,
    /// Older versions than previous stay readable in the backend itself.
    pub versioned: bool,
}

/// Typed store errors. `backend` is the backend's `BACKEND` constant, so that an error names where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{backend}: {what} not found")]
    NotFound { backend: &'static str, what: String },
    #[error("{backend}: conflict: {detail}")]
    Conflict { backend: &'static str, detail: String },
    #[error("{backend}: `{name}` is not managed by rotavault for job `{job}`{}", owner_note(.owner))]
    NotOwned { backend: &'static str, name: String, job: String, owner: Option<String> },
    #[error("{backend}: not authenticated: {detail}")]
    Unauthenticated { backend: &'static str, detail: String },
    #[error("{backend}: permission denied: {detail}")]
    PermissionDenied { backend: &'static str, detail: String },
    #[error("{backend}: temporarily unavailable: {detail}")]
    Transient { backend: &'static str, detail: String, retry_after: Option<Duration> },
    #[error("{backend}: not supported: {what}")]
    NotSupported { backend: &'static str, what: String },
    #[error("{backend}: invalid: {detail}")]
    Invalid { backend: &'static str, detail: String },
}

fn owner_note(owner: &Option<String>) -> String {
    match owner {
        Some(job) => format!(" (it belongs to job `{job}`)"),
        None => {
            " (it exists and has no managed-by=rotavault tag; set `adopt = true` on the job to take it over)"
                .into()
        }
    }
}

impl StoreError {
    /// Whether trying the same call again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short, fixed label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::NotOwned { .. } => "not_owned",
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::Transient { .. } => "transient",
            Self::NotSupported { .. } => "not_supported",
            Self::Invalid { .. } => "invalid",
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::NotFound { backend, .. }
            | Self::Conflict { backend, .. }
            | Self::NotOwned { backend, .. }
            | Self::Unauthenticated { backend, .. }
            | Self::PermissionDenied { backend, .. }
            | Self::Transient { backend, .. }
            | Self::NotSupported { backend, .. }
            | Self::Invalid { backend, .. } => backend,
        }
    }
}

/// The store contract; see the module documentation for every rule it keeps.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The backend's `BACKEND` constant: config kind, error field, metric label, tracing field.
    fn backend(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError>;

    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError>;

    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError>;

    async fn stage(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), StoreError>;

    async fn promote(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError>;

    async fn discard(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError>;

    async fn write_current(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError>;

    /// A cheap probe that the store is reachable and writable; changes no secret.
    async fn check(&self) -> Result<(), StoreError>;

    /// The metadata of many secrets' current and pending slots, one answer per secret in the order given: what
    /// start-up, scheduling and `status` read of every job at once. The default asks `current` and `pending` of
    /// each, [`SUMMARY_CONCURRENCY`] secrets at a time; a backend that can read many secrets in one pass
    /// overrides it.
    async fn summaries(&self, secrets: &[SecretRef]) -> Vec<Result<Summary, StoreError>> {
        use futures_util::StreamExt;
        // Indices rather than references: a closure over `&SecretRef` would have to be higher-ranked, which the
        // `Send` future async_trait builds cannot prove.
        futures_util::stream::iter(0..secrets.len())
            .map(|i| async move {
                let secret = &secrets[i];
                let current = self.current(secret).await?;
                let pending = self.pending(secret).await?;
                Ok(Summary::of(current.as_ref(), pending.as_ref()))
            })
            .buffered(SUMMARY_CONCURRENCY)
            .collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 15).single().expect("a valid date")
    }

    #[test]
    fn metadata_round_trips_through_its_one_line() {
        let id = RotationId::parse("0f8e6f5a-3c2b-4d1e-9f00-112233445566").expect("an id");
        let rotated = Metadata::new(Some(id), at(), 3);
        assert_eq!(rotated.encode(), "3/2026-03-01T12:30:15Z/0f8e6f5a-3c2b-4d1e-9f00-112233445566");
        let imported = Metadata::new(None, at(), 1);
        assert_eq!(imported.encode(), "1/2026-03-01T12:30:15Z/imported");
        for m in [rotated, imported] {
            assert_eq!(Metadata::decode(&m.encode()), Ok(m.clone()));
            assert_eq!(Metadata::rotation_from_text(m.rotation_text()), Ok(m.rotation_id.clone()));
        }
    }

    #[test]
    fn malformed_metadata_is_refused_with_a_reason() {
        for bad in [
            "",
            "7",
            "x/2026-03-01T12:30:15Z/imported",
            "7/yesterday/imported",
            "7/2026-03-01T12:30:15Z/short",
        ] {
            let err = Metadata::decode(bad).expect_err(bad);
            assert!(err.contains("not rotavault metadata"), "{err}");
        }
    }

    #[test]
    fn a_value_rotavault_did_not_write_gets_generation_zero_and_its_creation_time() {
        assert_eq!(Metadata::synthesized(Some(at())), Metadata::new(None, at(), 0));
        assert_eq!(Metadata::synthesized(None).rotated_at, DateTime::UNIX_EPOCH);
    }
}
