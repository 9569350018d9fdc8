//! The contract's decision rules, written once: who may touch a secret, and what `stage`, `promote` and
//! `discard` do given what the store holds. Every backend reads its own state (a mutex, a file, a
//! `DescribeSecret`, two Key Vault GETs, KV v2 metadata), hands what it read to these functions, and does the
//! writes they decide on; so the backends differ only in their I/O, and a rule changes in one place.
//!
//! The functions are pure: they see ids, owners and whether a value matches, never a store, and answer either
//! what to do next or the contract's error for it, with the same words on every backend. What a backend
//! reads as pending (AWS refuses a foreign `AWSPENDING`, Key Vault skips a disabled version) stays the
//! backend's; so do the errors of lost races, which only a backend can see.
//!
//! The keys rotavault writes to say whose a secret is live here too, one spelling for every backend that keeps
//! tags or metadata; a backend that once spelled the job key otherwise still reads its old spelling.

use super::{RotationId, SecretRef, StoreError};

// The keys and readers below serve the backends that keep ownership in tags or metadata; `memory` and `file`
// keep the owner in their own documents, so a build without AWS, Key Vault and Vault has no use for them.

/// The value of [`MANAGED_BY_KEY`] on everything rotavault writes.
#[cfg(any(feature = "aws", feature = "azure", feature = "vault"))]
pub const MANAGED_BY: &str = "rotavault";
/// The tag (or metadata key) that says rotavault manages a secret.
#[cfg(any(feature = "aws", feature = "azure", feature = "vault"))]
pub const MANAGED_BY_KEY: &str = "managed-by";
/// The tag (or metadata key) naming the job a secret belongs to. Letters and `-` only, so that every backend
/// accepts it as a tag name.
#[cfg(any(feature = "aws", feature = "azure", feature = "vault"))]
pub const JOB_KEY: &str = "rotavault-job";

/// Whose a secret is, as the store says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner<'a> {
    /// There is no such secret (yet).
    Absent,
    /// It exists and rotavault did not write it (or wrote it for no job).
    Foreign,
    /// rotavault manages it for this job.
    Job(&'a str),
}

#[cfg(any(feature = "aws", feature = "azure", feature = "vault"))]
impl<'a> Owner<'a> {
    /// Reads the owner from a secret's tags: `managed-by=rotavault` and a job, under [`JOB_KEY`] or, for what an
    /// older rotavault wrote, under the backend's `legacy_job_key`.
    pub fn of_tags(
        tags: &'a std::collections::BTreeMap<String, String>,
        legacy_job_key: Option<&str>,
    ) -> Self {
        if tags.get(MANAGED_BY_KEY).map(String::as_str) != Some(MANAGED_BY) {
            return Self::Foreign;
        }
        let job = tags.get(JOB_KEY).or_else(|| legacy_job_key.and_then(|key| tags.get(key)));
        job.map_or(Self::Foreign, |job| Self::Job(job))
    }
}

/// What a job may do with a secret it is allowed to touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Nothing is there: the first write claims it.
    Absent,
    /// The job's own.
    Owned,
    /// There, not rotavault's, and the job adopts it: the first write that changes something claims it.
    Adoptable,
}

/// The ownership rule: a job may touch what is its own or absent, and what rotavault does not manage only with
/// `adopt`; another job's secret never. Reading never claims; a backend claims at its first write.
pub fn check_owner(
    backend: &'static str,
    secret: &SecretRef,
    owner: Owner<'_>,
) -> Result<Ownership, StoreError> {
    match owner {
        Owner::Absent => Ok(Ownership::Absent),
        Owner::Job(job) if job == secret.job => Ok(Ownership::Owned),
        Owner::Foreign if secret.adopt => Ok(Ownership::Adoptable),
        owner => Err(StoreError::NotOwned {
            backend,
            name: secret.name.clone(),
            job: secret.job.clone(),
            owner: match owner {
                Owner::Job(job) => Some(job.to_owned()),
                _ => None,
            },
        }),
    }
}

/// What an operation is left to do once the rules have been applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Next {
    /// The store already holds the outcome (a repeated call whose answer was lost): change nothing.
    Nothing,
    /// Carry the operation out.
    Write,
}

/// The pending slot as the rules need it: whose rotation it holds, and whether it holds the value being staged.
#[derive(Clone, Copy, Debug)]
pub struct PendingView<'a> {
    pub rotation_id: &'a str,
    /// Asked only when the pending rotation is the one being staged; a backend that must fetch the value to
    /// know fetches it only then.
    pub same_value: bool,
}

/// `stage(R)`: with nothing pending, write; with R pending and the same value, nothing (a repeated stage); with R
/// pending and another value, or another rotation pending, `Conflict`, and the pending value is kept.
pub fn stage(
    backend: &'static str,
    name: &str,
    rotation_id: &RotationId,
    pending: Option<PendingView<'_>>,
) -> Result<Next, StoreError> {
    let conflict = |detail| StoreError::Conflict { backend, detail };
    match pending {
        None => Ok(Next::Write),
        Some(p) if p.rotation_id == rotation_id.as_str() && p.same_value => Ok(Next::Nothing),
        Some(p) if p.rotation_id == rotation_id.as_str() => Err(conflict(format!(
            "rotation {rotation_id} is already pending for `{name}` with another value"
        ))),
        Some(p) => Err(conflict(format!(
            "rotation {} is pending for `{name}`; cannot stage rotation {rotation_id}",
            p.rotation_id
        ))),
    }
}

/// `promote(R)`: with R pending, promote; with nothing pending and R already current, nothing (a promote whose
/// answer was lost); with nothing pending otherwise, `NotFound`; with another rotation pending, `Conflict`.
pub fn promote(
    backend: &'static str,
    name: &str,
    rotation_id: &RotationId,
    pending: Option<&str>,
    current_is_r: bool,
) -> Result<Next, StoreError> {
    match pending {
        None if current_is_r => Ok(Next::Nothing),
        None => Err(StoreError::NotFound {
            backend,
            what: format!("pending rotation {rotation_id} for `{name}`"),
        }),
        Some(id) if id == rotation_id.as_str() => Ok(Next::Write),
        Some(other) => Err(another_pending(backend, name, rotation_id, other)),
    }
}

/// `discard(R)`: with R pending, clear it; with nothing pending, nothing; with another rotation pending,
/// `Conflict`, and it is kept.
pub fn discard(
    backend: &'static str,
    name: &str,
    rotation_id: &RotationId,
    pending: Option<&str>,
) -> Result<Next, StoreError> {
    match pending {
        None => Ok(Next::Nothing),
        Some(id) if id == rotation_id.as_str() => Ok(Next::Write),
        Some(other) => Err(another_pending(backend, name, rotation_id, other)),
    }
}

fn another_pending(backend: &'static str, name: &str, rotation_id: &RotationId, other: &str) -> StoreError {
    StoreError::Conflict {
        backend,
        detail: format!("rotation {other} is pending for `{name}`, not {rotation_id}"),
    }
}

/// Turns the `NotFound` of a read into `Ok(None)`: the contract's "a slot that holds nothing is `None`, never an
/// error", for the reads where absence is an answer.
#[cfg(any(feature = "aws", feature = "azure", feature = "vault"))]
pub fn absent_is_none<T>(result: Result<T, StoreError>) -> Result<Option<T>, StoreError> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "test";

    #[cfg(any(feature = "aws", feature = "azure", feature = "vault"))]
    fn tags(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn mine() -> SecretRef {
        SecretRef::new("app/key", "nightly")
    }

    #[cfg(any(feature = "aws", feature = "azure", feature = "vault"))]
    #[test]
    fn the_owner_is_read_from_managed_by_and_the_job_under_either_spelling() {
        let current = tags(&[(MANAGED_BY_KEY, MANAGED_BY), (JOB_KEY, "nightly")]);
        assert_eq!(Owner::of_tags(&current, Some("job")), Owner::Job("nightly"));
        let legacy = tags(&[(MANAGED_BY_KEY, MANAGED_BY), ("job", "nightly")]);
        assert_eq!(Owner::of_tags(&legacy, Some("job")), Owner::Job("nightly"));
        assert_eq!(
            Owner::of_tags(&legacy, None),
            Owner::Foreign,
            "another backend's old spelling is not read"
        );
        let both = tags(&[(MANAGED_BY_KEY, MANAGED_BY), (JOB_KEY, "new"), ("job", "old")]);
        assert_eq!(Owner::of_tags(&both, Some("job")), Owner::Job("new"));
        assert_eq!(Owner::of_tags(&tags(&[(JOB_KEY, "nightly")]), None), Owner::Foreign);
        assert_eq!(Owner::of_tags(&tags(&[(MANAGED_BY_KEY, MANAGED_BY)]), None), Owner::Foreign);
    }

    #[test]
    fn ownership_follows_the_contract() {
        assert_eq!(check_owner(B, &mine(), Owner::Absent), Ok(Ownership::Absent));
        assert_eq!(check_owner(B, &mine(), Owner::Job("nightly")), Ok(Ownership::Owned));
        assert_eq!(check_owner(B, &mine().adopting(), Owner::Job("nightly")), Ok(Ownership::Owned));
        assert_eq!(check_owner(B, &mine().adopting(), Owner::Foreign), Ok(Ownership::Adoptable));
        let err = check_owner(B, &mine(), Owner::Foreign).expect_err("foreign");
        assert!(matches!(err, StoreError::NotOwned { owner: None, .. }), "{err:?}");
        for secret in [mine(), mine().adopting()] {
            let err = check_owner(B, &secret, Owner::Job("other")).expect_err("another job's");
            assert!(
                matches!(err, StoreError::NotOwned { owner: Some(ref o), .. } if o == "other"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn stage_writes_once_and_conflicts_with_anything_else_pending() {
        let r = RotationId::new();
        let other = RotationId::new();
        fn view(id: &RotationId, same_value: bool) -> PendingView<'_> {
            PendingView { rotation_id: id.as_str(), same_value }
        }
        assert_eq!(stage(B, "n", &r, None), Ok(Next::Write));
        assert_eq!(stage(B, "n", &r, Some(view(&r, true))), Ok(Next::Nothing));
        let err = stage(B, "n", &r, Some(view(&r, false))).expect_err("another value");
        assert!(err.to_string().contains("with another value"), "{err}");
        let err = stage(B, "n", &r, Some(view(&other, true))).expect_err("another rotation");
        assert!(
            matches!(err, StoreError::Conflict { .. }) && err.to_string().contains(other.as_str()),
            "{err}"
        );
    }

    #[test]
    fn promote_and_discard_follow_the_contract() {
        let r = RotationId::new();
        let other = RotationId::new();
        assert_eq!(promote(B, "n", &r, Some(r.as_str()), false), Ok(Next::Write));
        assert_eq!(promote(B, "n", &r, Some(r.as_str()), true), Ok(Next::Write), "a cut promote is finished");
        assert_eq!(promote(B, "n", &r, None, true), Ok(Next::Nothing));
        assert!(matches!(promote(B, "n", &r, None, false), Err(StoreError::NotFound { .. })));
        assert!(matches!(promote(B, "n", &r, Some(other.as_str()), true), Err(StoreError::Conflict { .. })));
        assert_eq!(discard(B, "n", &r, Some(r.as_str())), Ok(Next::Write));
        assert_eq!(discard(B, "n", &r, None), Ok(Next::Nothing));
        assert!(matches!(discard(B, "n", &r, Some(other.as_str())), Err(StoreError::Conflict { .. })));
    }

    #[cfg(any(feature = "aws", feature = "azure", feature = "vault"))]
    #[test]
    fn only_not_found_reads_as_absent() {
        let found: Result<u8, StoreError> = Ok(1);
        assert_eq!(absent_is_none(found), Ok(Some(1)));
        let missing: Result<u8, StoreError> = Err(StoreError::NotFound { backend: B, what: "x".into() });
        assert_eq!(absent_is_none(missing), Ok(None));
        let denied: Result<u8, StoreError> =
            Err(StoreError::PermissionDenied { backend: B, detail: "x".into() });
        assert!(absent_is_none(denied).is_err());
    }
}
