//! The conformance suite: one case per sentence of the store contract (see [`crate::store`]).
//!
//! Every backend and every wrapper runs all of it, unchanged, through [`conformance_suite!`](crate::conformance_suite):
//!
//! ```text
//! mod memory {
//!     rotavault::conformance_suite!(|| async { MyFixture::new().await });
//! }
//! ```
//!
//! Cases use fresh random names, so a backend that shares state between tests (one server for the whole run)
//! needs no clean-up between them, and the suite never wipes a store.

use super::{Metadata, PendingSummary, RotationId, SecretRef, Store, StoreError, Summary};
use crate::secret::SecretValue;
use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use std::sync::Arc;

/// What a backend provides to the suite.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// The store under test.
    fn store(&self) -> Arc<dyn Store>;

    /// Creates `name` holding `value` the way another tool would: existing, and not managed by rotavault.
    async fn plant_foreign(&self, name: &str, value: &SecretValue);
}

/// Generates one `#[tokio::test]` per contract case; `$make` is a closure returning a future of a [`Fixture`].
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@cases $make;
            reading_an_empty_slot_is_none,
            stage_writes_pending_with_its_rotation_id,
            stage_leaves_current_and_previous_untouched,
            stage_of_the_same_rotation_and_value_is_a_no_op,
            stage_of_the_same_rotation_with_another_value_is_conflict,
            stage_while_another_rotation_is_pending_is_conflict_and_keeps_it,
            two_concurrent_stages_with_different_ids_at_most_one_succeeds,
            promote_makes_pending_current_and_current_previous,
            promote_clears_pending,
            promote_of_the_rotation_already_current_is_ok,
            promote_without_pending_is_not_found,
            promote_of_another_rotation_is_conflict,
            discard_clears_pending_and_keeps_current,
            discard_without_pending_is_ok,
            discard_of_another_rotation_is_conflict,
            write_current_keeps_the_old_current_as_previous,
            write_current_leaves_pending_untouched,
            metadata_is_read_back_with_the_value,
            values_come_back_byte_for_byte,
            names_are_independent,
            two_rotations_keep_only_the_last_previous,
            a_foreign_secret_is_not_owned,
            adopt_takes_over_a_foreign_secret,
            a_secret_of_another_job_is_not_owned_even_with_adopt,
            check_succeeds_and_changes_nothing,
            summaries_answer_what_current_and_pending_answer_in_order,
            a_summary_error_for_one_secret_leaves_the_others_answered
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture = ($make)().await;
                $crate::store::conformance::$case(&fixture).await;
            }
        )*
    };
}

const JOB: &str = "conformance";

/// A fresh name that every backend accepts (letters, digits and '-').
fn fresh_name() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("rv-conf-{}", &id[..12])
}

fn fresh() -> SecretRef {
    SecretRef::new(fresh_name(), JOB)
}

fn meta(rotation_id: Option<&RotationId>, generation: u64) -> Metadata {
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 15).single().expect("valid date");
    Metadata::new(rotation_id.cloned(), at + chrono::Duration::hours(generation as i64), generation)
}

fn value(text: &str) -> SecretValue {
    SecretValue::new(text)
}

async fn seed_current(store: &dyn Store, secret: &SecretRef, text: &str, generation: u64) -> RotationId {
    let id = RotationId::new();
    let m = meta(Some(&id), generation);
    store.stage(secret, &value(text), &id, &m).await.expect("stage for seeding");
    store.promote(secret, &id).await.expect("promote for seeding");
    id
}

fn current_text(stored: &Option<super::Stored>) -> Option<&str> {
    stored.as_ref().map(|s| s.value.expose())
}

pub async fn reading_an_empty_slot_is_none(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    assert!(store.current(&s).await.expect("current").is_none());
    assert!(store.pending(&s).await.expect("pending").is_none());
    assert!(store.previous(&s).await.expect("previous").is_none());
}

pub async fn stage_writes_pending_with_its_rotation_id(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    let id = RotationId::new();
    store.stage(&s, &value("first-pending"), &id, &meta(Some(&id), 1)).await.expect("stage");
    let pending = store.pending(&s).await.expect("pending").expect("a pending value");
    assert_eq!(pending.value.expose(), "first-pending");
    assert_eq!(pending.rotation_id, id);
}

pub async fn stage_leaves_current_and_previous_untouched(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    seed_current(store.as_ref(), &s, "one", 1).await;
    seed_current(store.as_ref(), &s, "two", 2).await;
    let id = RotationId::new();
    store.stage(&s, &value("three"), &id, &meta(Some(&id), 3)).await.expect("stage");
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("two"));
    assert_eq!(current_text(&store.previous(&s).await.expect("previous")), Some("one"));
}

pub async fn stage_of_the_same_rotation_and_value_is_a_no_op(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    let id = RotationId::new();
    let m = meta(Some(&id), 1);
    store.stage(&s, &value("same"), &id, &m).await.expect("first stage");
    store.stage(&s, &value("same"), &id, &m).await.expect("second stage of the same value");
    let pending = store.pending(&s).await.expect("pending").expect("still pending");
    assert_eq!(pending.value.expose(), "same");
    assert_eq!(pending.rotation_id, id);
}

pub async fn stage_of_the_same_rotation_with_another_value_is_conflict(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    let id = RotationId::new();
    let m = meta(Some(&id), 1);
    store.stage(&s, &value("original"), &id, &m).await.expect("first stage");
    let err = store.stage(&s, &value("changed"), &id, &m).await.expect_err("a second value");
    assert!(matches!(err, StoreError::Conflict { .. }), "expected Conflict, got {err:?}");
    let pending = store.pending(&s).await.expect("pending").expect("still pending");
    assert_eq!(pending.value.expose(), "original");
}

pub async fn stage_while_another_rotation_is_pending_is_conflict_and_keeps_it(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    let (a, b) = (RotationId::new(), RotationId::new());
    store.stage(&s, &value("from-a"), &a, &meta(Some(&a), 1)).await.expect("stage a");
    let err = store.stage(&s, &value("from-b"), &b, &meta(Some(&b), 1)).await.expect_err("stage b");
    assert!(matches!(err, StoreError::Conflict { .. }), "expected Conflict, got {err:?}");
    let pending = store.pending(&s).await.expect("pending").expect("a still pending");
    assert_eq!(pending.rotation_id, a);
    assert_eq!(pending.value.expose(), "from-a");
}

/// How many times [`two_concurrent_stages_with_different_ids_at_most_one_succeeds`] races two stages: with the
/// head start varied from round to round, enough for one stage's calls to land before, between and after the
/// other's on every backend the suite runs on.
const RACES: usize = 32;

pub async fn two_concurrent_stages_with_different_ids_at_most_one_succeeds(f: &dyn Fixture) {
    let store = f.store();
    for round in 0..RACES {
        let s = fresh();
        // Half the rounds race on a secret that already has a current value, half on one that does not exist yet
        // (where creating it is part of the race).
        if round % 2 == 1 {
            seed_current(store.as_ref(), &s, "settled", 1).await;
        }
        let (a, b) = (RotationId::new(), RotationId::new());
        let (from_a, from_b) = (value(&format!("from-a-{round}")), value(&format!("from-b-{round}")));
        // One stage gets a head start of a few turns of the scheduler, and which one changes with the round, so
        // that one stage's calls land before, between and after the other's.
        let head_start = round / 2 % 8;
        let (late_a, late_b) = if round % 4 < 2 { (0, head_start) } else { (head_start, 0) };
        let stage = |id: &RotationId, v: &SecretValue, late: usize| {
            let (store, s, id, v) = (store.clone(), s.clone(), id.clone(), v.clone());
            async move {
                for _ in 0..late {
                    tokio::task::yield_now().await;
                }
                store.stage(&s, &v, &id, &meta(Some(&id), 2)).await
            }
        };
        let (staged_a, staged_b) = tokio::join!(stage(&a, &from_a, late_a), stage(&b, &from_b, late_b));
        for (who, result) in [("a", &staged_a), ("b", &staged_b)] {
            if let Err(err) = result {
                assert!(
                    matches!(err, StoreError::Conflict { .. }),
                    "round {round}: the losing stage {who} must be Conflict, got {err:?}"
                );
            }
        }
        let current = store.current(&s).await.expect("current");
        assert_eq!(
            current_text(&current),
            (round % 2 == 1).then_some("settled"),
            "round {round}: the stages left current as it was"
        );
        let pending = store.pending(&s).await.expect("pending");
        let winner = match (staged_a.is_ok(), staged_b.is_ok()) {
            (true, true) if !store.capabilities().exclusive_stage => {
                // The exception the contract names (a backend without compare-and-set): both answered Ok, and
                // pending holds one of the two, with its own value.
                let pending = pending.expect("one of the two is pending");
                let held =
                    [(&a, &from_a), (&b, &from_b)].into_iter().find(|(id, _)| pending.rotation_id == **id);
                let (_, v) = held.unwrap_or_else(|| panic!("round {round}: pending holds neither stage"));
                assert!(pending.value == *v, "round {round}: pending holds its rotation's value");
                continue;
            }
            (true, true) => panic!("round {round}: both concurrent stages answered Ok"),
            (true, false) => Some((&a, &from_a, &b)),
            (false, true) => Some((&b, &from_b, &a)),
            (false, false) => None,
        };
        match winner {
            Some((id, v, loser)) => {
                let pending = pending.expect("the winner's value is pending");
                assert_eq!(pending.rotation_id, *id, "round {round}: pending holds the winner's rotation");
                assert!(pending.value == *v, "round {round}: pending holds the winner's value");
                // What the engine does after a failed stage: the loser's discard leaves the winner alone.
                let err = store.discard(&s, loser).await.expect_err("the loser's discard");
                assert!(matches!(err, StoreError::Conflict { .. }), "round {round}: got {err:?}");
                let still = store.pending(&s).await.expect("pending").expect("still pending");
                assert_eq!(still.rotation_id, *id, "round {round}: the loser's discard kept the winner");
            }
            None => {
                // Neither won: once each has discarded its own rotation, nothing is pending, and the next stage
                // succeeds.
                store.discard(&s, &a).await.expect("discard a");
                store.discard(&s, &b).await.expect("discard b");
                assert!(store.pending(&s).await.expect("pending").is_none(), "round {round}");
                let c = RotationId::new();
                store
                    .stage(&s, &value("after-the-race"), &c, &meta(Some(&c), 2))
                    .await
                    .expect("a later stage");
            }
        }
    }
}

pub async fn promote_makes_pending_current_and_current_previous(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    let first = seed_current(store.as_ref(), &s, "old-value", 1).await;
    let id = RotationId::new();
    store.stage(&s, &value("new-value"), &id, &meta(Some(&id), 2)).await.expect("stage");
    store.promote(&s, &id).await.expect("promote");
    let current = store.current(&s).await.expect("current").expect("a current value");
    assert_eq!(current.value.expose(), "new-value");
    assert_eq!(current.metadata.rotation_id.as_ref(), Some(&id));
    let previous = store.previous(&s).await.expect("previous").expect("a previous value");
    assert_eq!(previous.value.expose(), "old-value");
    assert_eq!(previous.metadata.rotation_id.as_ref(), Some(&first));
}

pub async fn promote_clears_pending(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    seed_current(store.as_ref(), &s, "value", 1).await;
    assert!(store.pending(&s).await.expect("pending").is_none());
}

pub async fn promote_of_the_rotation_already_current_is_ok(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    seed_current(store.as_ref(), &s, "before", 1).await;
    let id = seed_current(store.as_ref(), &s, "after", 2).await;
    store.promote(&s, &id).await.expect("a repeated promote is Ok");
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("after"));
    assert_eq!(current_text(&store.previous(&s).await.expect("previous")), Some("before"));
}

pub async fn promote_without_pending_is_not_found(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    seed_current(store.as_ref(), &s, "value", 1).await;
    let err = store.promote(&s, &RotationId::new()).await.expect_err("nothing pending");
    assert!(matches!(err, StoreError::NotFound { .. }), "expected NotFound, got {err:?}");
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("value"));
}

pub async fn promote_of_another_rotation_is_conflict(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    seed_current(store.as_ref(), &s, "current", 1).await;
    let id = RotationId::new();
    store.stage(&s, &value("pending"), &id, &meta(Some(&id), 2)).await.expect("stage");
    let err = store.promote(&s, &RotationId::new()).await.expect_err("another id");
    assert!(matches!(err, StoreError::Conflict { .. }), "expected Conflict, got {err:?}");
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("current"));
    assert_eq!(store.pending(&s).await.expect("pending").expect("kept").rotation_id, id);
}

pub async fn discard_clears_pending_and_keeps_current(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    seed_current(store.as_ref(), &s, "one", 1).await;
    seed_current(store.as_ref(), &s, "two", 2).await;
    let id = RotationId::new();
    store.stage(&s, &value("three"), &id, &meta(Some(&id), 3)).await.expect("stage");
    store.discard(&s, &id).await.expect("discard");
    assert!(store.pending(&s).await.expect("pending").is_none());
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("two"));
    assert_eq!(current_text(&store.previous(&s).await.expect("previous")), Some("one"));
}

pub async fn discard_without_pending_is_ok(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    seed_current(store.as_ref(), &s, "value", 1).await;
    store.discard(&s, &RotationId::new()).await.expect("nothing to discard is Ok");
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("value"));
}

pub async fn discard_of_another_rotation_is_conflict(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    let id = RotationId::new();
    store.stage(&s, &value("pending"), &id, &meta(Some(&id), 1)).await.expect("stage");
    let err = store.discard(&s, &RotationId::new()).await.expect_err("another id");
    assert!(matches!(err, StoreError::Conflict { .. }), "expected Conflict, got {err:?}");
    assert_eq!(store.pending(&s).await.expect("pending").expect("kept").rotation_id, id);
}

pub async fn write_current_keeps_the_old_current_as_previous(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    seed_current(store.as_ref(), &s, "rotated", 1).await;
    store.write_current(&s, &value("imported"), &meta(None, 2)).await.expect("write_current");
    let current = store.current(&s).await.expect("current").expect("a current value");
    assert_eq!(current.value.expose(), "imported");
    assert_eq!(current.metadata.rotation_id, None);
    assert_eq!(current_text(&store.previous(&s).await.expect("previous")), Some("rotated"));
}

pub async fn write_current_leaves_pending_untouched(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    let id = RotationId::new();
    store.stage(&s, &value("pending"), &id, &meta(Some(&id), 2)).await.expect("stage");
    store.write_current(&s, &value("written"), &meta(None, 1)).await.expect("write_current");
    let pending = store.pending(&s).await.expect("pending").expect("still pending");
    assert_eq!(pending.value.expose(), "pending");
    assert_eq!(pending.rotation_id, id);
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("written"));
}

pub async fn metadata_is_read_back_with_the_value(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    let id = RotationId::new();
    let m = meta(Some(&id), 7);
    store.stage(&s, &value("with-metadata"), &id, &m).await.expect("stage");
    assert_eq!(store.pending(&s).await.expect("pending").expect("pending").metadata, m);
    store.promote(&s, &id).await.expect("promote");
    assert_eq!(store.current(&s).await.expect("current").expect("current").metadata, m);
}

pub async fn values_come_back_byte_for_byte(f: &dyn Fixture) {
    let store = f.store();
    let texts = [
        r#"{"username":"api@example.com","secret":"a\"b\\c"}"#,
        "!#$%&()*+,-./:;<=>?@[]^_`{|}~",
        "ünïcødé-ソース-🔑",
        "  leading and trailing spaces  ",
        "line one\nline two\r\n",
    ];
    for text in texts {
        let s = fresh();
        seed_current(store.as_ref(), &s, text, 1).await;
        let current = store.current(&s).await.expect("current").expect("current");
        assert!(current.value.expose() == text, "a value did not come back byte for byte");
    }
}

pub async fn names_are_independent(f: &dyn Fixture) {
    let store = f.store();
    let (a, b) = (fresh(), fresh());
    seed_current(store.as_ref(), &a, "a-value", 1).await;
    let id = RotationId::new();
    store.stage(&b, &value("b-pending"), &id, &meta(Some(&id), 1)).await.expect("stage b");
    assert!(store.pending(&a).await.expect("pending a").is_none());
    assert!(store.current(&b).await.expect("current b").is_none());
    store.promote(&b, &id).await.expect("promote b");
    assert_eq!(current_text(&store.current(&a).await.expect("current a")), Some("a-value"));
    assert!(store.previous(&a).await.expect("previous a").is_none());
}

pub async fn two_rotations_keep_only_the_last_previous(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    for (i, text) in ["gen-1", "gen-2", "gen-3"].into_iter().enumerate() {
        seed_current(store.as_ref(), &s, text, i as u64 + 1).await;
    }
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("gen-3"));
    let previous = store.previous(&s).await.expect("previous").expect("previous");
    assert_eq!(previous.value.expose(), "gen-2");
    assert_eq!(previous.metadata.generation, 2);
}

pub async fn a_foreign_secret_is_not_owned(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    f.plant_foreign(&s.name, &value("made-by-hand")).await;
    let read = store.current(&s).await.expect_err("reading a foreign secret");
    assert!(matches!(read, StoreError::NotOwned { .. }), "expected NotOwned, got {read:?}");
    let id = RotationId::new();
    let write = store.stage(&s, &value("new"), &id, &meta(Some(&id), 1)).await.expect_err("staging");
    assert!(matches!(write, StoreError::NotOwned { .. }), "expected NotOwned, got {write:?}");
    let write = store.write_current(&s, &value("new"), &meta(None, 1)).await.expect_err("writing");
    assert!(matches!(write, StoreError::NotOwned { .. }), "expected NotOwned, got {write:?}");
}

pub async fn adopt_takes_over_a_foreign_secret(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh().adopting();
    f.plant_foreign(&s.name, &value("made-by-hand")).await;
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("made-by-hand"));
    seed_current(store.as_ref(), &s, "rotated", 1).await;
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("rotated"));
    assert_eq!(current_text(&store.previous(&s).await.expect("previous")), Some("made-by-hand"));
    // Once adopted, the secret is the job's own: no adopt needed any more.
    let owned = SecretRef::new(s.name.clone(), JOB);
    assert_eq!(current_text(&store.current(&owned).await.expect("current")), Some("rotated"));
}

pub async fn a_secret_of_another_job_is_not_owned_even_with_adopt(f: &dyn Fixture) {
    let store = f.store();
    let mine = fresh();
    seed_current(store.as_ref(), &mine, "mine", 1).await;
    let theirs = SecretRef::new(mine.name.clone(), "another-job").adopting();
    let err = store.current(&theirs).await.expect_err("another job reads");
    assert!(matches!(err, StoreError::NotOwned { .. }), "expected NotOwned, got {err:?}");
    let id = RotationId::new();
    let err = store.stage(&theirs, &value("x"), &id, &meta(Some(&id), 2)).await.expect_err("stage");
    assert!(matches!(err, StoreError::NotOwned { .. }), "expected NotOwned, got {err:?}");
    assert_eq!(current_text(&store.current(&mine).await.expect("current")), Some("mine"));
}

pub async fn check_succeeds_and_changes_nothing(f: &dyn Fixture) {
    let store = f.store();
    let s = fresh();
    seed_current(store.as_ref(), &s, "kept", 1).await;
    store.check().await.expect("check");
    assert_eq!(current_text(&store.current(&s).await.expect("current")), Some("kept"));
    assert!(store.pending(&s).await.expect("pending").is_none());
}

pub async fn summaries_answer_what_current_and_pending_answer_in_order(f: &dyn Fixture) {
    let store = f.store();
    let (empty, settled, staged) = (fresh(), fresh(), fresh());
    seed_current(store.as_ref(), &settled, "settled", 1).await;
    let first = seed_current(store.as_ref(), &staged, "staged-current", 4).await;
    let id = RotationId::new();
    store.stage(&staged, &value("staged-pending"), &id, &meta(Some(&id), 5)).await.expect("stage");

    // Asked out of order, and one twice: the answers follow the question.
    let asked = [staged.clone(), empty.clone(), settled.clone(), staged.clone()];
    let answers: Vec<Summary> =
        store.summaries(&asked).await.into_iter().map(|a| a.expect("summary")).collect();
    let expected_staged = Summary {
        current: Some(meta(Some(&first), 4)),
        pending: Some(PendingSummary { rotation_id: id.clone(), metadata: meta(Some(&id), 5) }),
    };
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0], expected_staged);
    assert_eq!(answers[1], Summary::default());
    assert_eq!(answers[2].current.as_ref().map(|m| m.generation), Some(1));
    assert_eq!(answers[2].pending, None);
    assert_eq!(answers[3], expected_staged);
    // The same as the single reads say.
    for (secret, answer) in asked.iter().zip(&answers) {
        let current = store.current(secret).await.expect("current");
        let pending = store.pending(secret).await.expect("pending");
        assert_eq!(*answer, Summary::of(current.as_ref(), pending.as_ref()), "{}", secret.name);
    }
    assert!(store.summaries(&[]).await.is_empty());
}

pub async fn a_summary_error_for_one_secret_leaves_the_others_answered(f: &dyn Fixture) {
    let store = f.store();
    let (mine, foreign) = (fresh(), fresh());
    seed_current(store.as_ref(), &mine, "mine", 2).await;
    f.plant_foreign(&foreign.name, &value("made-by-hand")).await;
    let answers = store.summaries(&[foreign.clone(), mine.clone()]).await;
    assert_eq!(answers.len(), 2);
    let err = answers[0].as_ref().expect_err("a foreign secret");
    assert!(matches!(err, StoreError::NotOwned { .. }), "expected NotOwned, got {err:?}");
    let ok = answers[1].as_ref().expect("the job's own secret");
    assert_eq!(ok.current.as_ref().map(|m| m.generation), Some(2));
    // Adopting, the foreign secret is summarized like any other (generation 0: rotavault did not write it).
    let adopted = store.summaries(&[foreign.adopting()]).await;
    let adopted = adopted[0].as_ref().expect("adopting");
    assert_eq!(adopted.current.as_ref().map(|m| m.generation), Some(0));
}
