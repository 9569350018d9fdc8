//! The AWS backend against a real moto server: what the conformance suite cannot see from inside the contract.
//!
//! These tests look at the secret the way AWS-native tooling does (plain SDK calls naming a stage), and set up
//! states only another tool or a crash produces: a foreign `AWSPENDING`, a secret scheduled for deletion, a
//! promote cut between its two calls. They need `ROTAVAULT_TEST_AWS_ENDPOINT` (set by `scripts/test`) and fail
//! without it. Names are fresh per test; the shared server is never reset.

use super::metadata::{LEGACY_JOB_KEY, VERSION_PREFIX};
use super::snapshot::{PLACEHOLDER_VALUE, WRITING};
use super::{AwsSecretsManagerStore, AwsSettings};
use crate::secret::SecretValue;
use crate::store::contract::{JOB_KEY, MANAGED_BY_KEY};
use crate::store::{Metadata, RotationId, SecretRef, Store, StoreError};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use chrono::{TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet};

const JOB: &str = "aws-tests";

fn endpoint() -> String {
    std::env::var("ROTAVAULT_TEST_AWS_ENDPOINT").expect(
        "moto is not running: run the tests through scripts/test (ROTAVAULT_TEST_AWS_ENDPOINT is unset)",
    )
}

fn moto_client() -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("rotavault-test", "rotavault-test", None, None, "tests"))
        .endpoint_url(endpoint())
        .build();
    Client::from_conf(config)
}

fn store_with(settings: AwsSettings) -> (AwsSecretsManagerStore, Client) {
    let client = moto_client();
    (AwsSecretsManagerStore::from_client(client.clone(), settings), client)
}

fn store() -> (AwsSecretsManagerStore, Client) {
    store_with(AwsSettings::default())
}

fn fresh() -> SecretRef {
    let id = uuid::Uuid::new_v4().simple().to_string();
    SecretRef::new(format!("rv-aws-{}", &id[..12]), JOB)
}

fn meta(id: Option<&RotationId>, generation: u64) -> Metadata {
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 15).single().expect("a valid date");
    Metadata::new(id.cloned(), at, generation)
}

fn value(text: &str) -> SecretValue {
    SecretValue::new(text)
}

async fn seed(store: &AwsSecretsManagerStore, secret: &SecretRef, text: &str, generation: u64) -> RotationId {
    let id = RotationId::new();
    store.stage(secret, &value(text), &id, &meta(Some(&id), generation)).await.expect("stage");
    store.promote(secret, &id).await.expect("promote");
    id
}

/// Version id → labels, as DescribeSecret lists them.
async fn labels(client: &Client, name: &str) -> BTreeMap<String, BTreeSet<String>> {
    let out = client.describe_secret().secret_id(name).send().await.expect("describe");
    out.version_ids_to_stages
        .unwrap_or_default()
        .into_iter()
        .map(|(id, labels)| (id, labels.into_iter().collect()))
        .collect()
}

async fn tags(client: &Client, name: &str) -> BTreeMap<String, String> {
    let out = client.describe_secret().secret_id(name).send().await.expect("describe");
    out.tags
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect()
}

/// The versions holding `label`.
fn holders<'a>(labels: &'a BTreeMap<String, BTreeSet<String>>, label: &str) -> Vec<&'a str> {
    labels.iter().filter(|(_, l)| l.contains(label)).map(|(id, _)| id.as_str()).collect()
}

/// A plain SDK read of a stage: (version id, value).
async fn read_stage(client: &Client, name: &str, stage: &str) -> (String, String) {
    let out =
        client.get_secret_value().secret_id(name).version_stage(stage).send().await.expect("get by stage");
    (out.version_id.expect("a version id"), out.secret_string.expect("a string value"))
}

fn assert_scheduled_for_deletion(result: Result<impl std::fmt::Debug, StoreError>, name: &str, what: &str) {
    let err = result.expect_err(what);
    assert!(matches!(err, StoreError::Invalid { .. }), "{what}: expected Invalid, got {err:?}");
    let text = err.to_string();
    assert!(text.contains("scheduled for deletion"), "{what}: {text}");
    assert!(
        text.contains(&format!("aws secretsmanager restore-secret --secret-id {name}")),
        "{what}: {text}"
    );
}

#[tokio::test]
async fn reads_after_promote_by_explicit_stage_return_the_right_versions() {
    let (store, client) = store();
    let s = fresh();
    let first = seed(&store, &s, "first-value", 1).await;
    let second = seed(&store, &s, "second-value", 2).await;
    assert_eq!(read_stage(&client, &s.name, "AWSCURRENT").await, (second.to_string(), "second-value".into()));
    assert_eq!(read_stage(&client, &s.name, "AWSPREVIOUS").await, (first.to_string(), "first-value".into()));
    let labels = labels(&client, &s.name).await;
    assert!(holders(&labels, "AWSPENDING").is_empty(), "a version is still AWSPENDING: {labels:?}");
    assert_eq!(holders(&labels, "AWSCURRENT"), vec![second.as_str()]);
    assert_eq!(holders(&labels, "AWSPREVIOUS"), vec![first.as_str()]);
}

#[tokio::test]
async fn a_staged_value_never_becomes_awscurrent_of_a_new_secret() {
    // AWS and moto make a secret's first version AWSCURRENT whatever the put asks for; the placeholder a new
    // secret starts with keeps an unverified value away from AWS-native readers, and a discard takes it back.
    let (store, client) = store();
    let s = fresh();
    let id = RotationId::new();
    store.stage(&s, &value("unverified"), &id, &meta(Some(&id), 1)).await.expect("stage");
    let (current_id, current_value) = read_stage(&client, &s.name, "AWSCURRENT").await;
    assert_ne!(current_id, id.to_string());
    assert_eq!(current_value, PLACEHOLDER_VALUE);
    assert!(store.current(&s).await.expect("current").is_none());
    store.discard(&s, &id).await.expect("discard");
    assert!(store.current(&s).await.expect("current").is_none());
    assert!(store.pending(&s).await.expect("pending").is_none());
    assert_eq!(read_stage(&client, &s.name, "AWSCURRENT").await.1, PLACEHOLDER_VALUE);
    // Promoted, the value is AWSCURRENT, and previous is still empty (the placeholder is not a value).
    let id = seed(&store, &s, "verified", 1).await;
    assert_eq!(read_stage(&client, &s.name, "AWSCURRENT").await, (id.to_string(), "verified".into()));
    assert!(store.previous(&s).await.expect("previous").is_none());
}

#[tokio::test]
async fn write_current_leaves_one_awscurrent_and_no_label_of_its_own() {
    // moto quirk 2: a put without stages after a label move can leave two AWSCURRENT. Alternate label moves
    // (promote) and writes, and look at the labels after each.
    let (store, client) = store();
    let s = fresh();
    let rotated = seed(&store, &s, "rotated", 1).await;
    let pending = RotationId::new();
    store.stage(&s, &value("pending"), &pending, &meta(Some(&pending), 3)).await.expect("stage");
    store.write_current(&s, &value("imported"), &meta(None, 2)).await.expect("write_current");

    let after = labels(&client, &s.name).await;
    let current = holders(&after, "AWSCURRENT");
    assert_eq!(current.len(), 1, "{after:?}");
    assert_eq!(holders(&after, "AWSPREVIOUS"), vec![rotated.as_str()]);
    assert_eq!(holders(&after, "AWSPENDING"), vec![pending.as_str()]);
    assert!(holders(&after, WRITING).is_empty(), "{after:?}");
    assert_eq!(read_stage(&client, &s.name, "AWSCURRENT").await.1, "imported");

    store.promote(&s, &pending).await.expect("promote");
    store.write_current(&s, &value("imported-again"), &meta(None, 4)).await.expect("write_current");
    store.write_current(&s, &value("and-again"), &meta(None, 5)).await.expect("write_current");
    let after = labels(&client, &s.name).await;
    assert_eq!(holders(&after, "AWSCURRENT").len(), 1, "{after:?}");
    assert_eq!(holders(&after, "AWSPREVIOUS").len(), 1, "{after:?}");
    assert!(holders(&after, WRITING).is_empty(), "{after:?}");
    assert_eq!(read_stage(&client, &s.name, "AWSCURRENT").await.1, "and-again");
    assert_eq!(read_stage(&client, &s.name, "AWSPREVIOUS").await.1, "imported-again");
    let current = store.current(&s).await.expect("current").expect("a current value");
    assert_eq!((current.value.expose(), current.metadata.generation), ("and-again", 5));
}

#[tokio::test]
async fn a_repeated_write_current_of_a_rotation_is_a_no_op() {
    let (store, client) = store();
    let s = fresh();
    seed(&store, &s, "before", 1).await;
    let id = RotationId::new();
    store.write_current(&s, &value("written"), &meta(Some(&id), 2)).await.expect("write_current");
    store.write_current(&s, &value("written"), &meta(Some(&id), 2)).await.expect("the same again");
    assert_eq!(read_stage(&client, &s.name, "AWSCURRENT").await, (id.to_string(), "written".into()));
    assert_eq!(read_stage(&client, &s.name, "AWSPREVIOUS").await.1, "before");
    let err = store
        .write_current(&s, &value("zq-second-value"), &meta(Some(&id), 2))
        .await
        .expect_err("a 2nd value");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("zq-second-value"), "the value leaked into {err}");
}

#[tokio::test]
async fn a_promote_cut_between_its_two_calls_is_finished_by_the_next() {
    let (store, client) = store();
    let s = fresh();
    let old = seed(&store, &s, "old", 1).await;
    let id = RotationId::new();
    store.stage(&s, &value("new"), &id, &meta(Some(&id), 2)).await.expect("stage");
    // The first call of a promote, and then the process died.
    client
        .update_secret_version_stage()
        .secret_id(&s.name)
        .version_stage("AWSCURRENT")
        .move_to_version_id(id.as_str())
        .remove_from_version_id(old.as_str())
        .send()
        .await
        .expect("move AWSCURRENT");
    store.promote(&s, &id).await.expect("the promote again");
    let after = labels(&client, &s.name).await;
    assert_eq!(holders(&after, "AWSCURRENT"), vec![id.as_str()]);
    assert_eq!(holders(&after, "AWSPREVIOUS"), vec![old.as_str()]);
    assert!(holders(&after, "AWSPENDING").is_empty(), "{after:?}");
    store.promote(&s, &id).await.expect("and again");
}

#[tokio::test]
async fn a_foreign_pending_is_a_conflict_naming_the_command_never_a_value_to_verify() {
    let (store, client) = store();
    let s = fresh();
    seed(&store, &s, "current", 1).await;
    // Another tool's rotation (an AWS rotation function, say) staged a version under a UUID token and stopped:
    // its id looks like a rotation id, but rotavault did not write it.
    let foreign = uuid::Uuid::new_v4().hyphenated().to_string();
    client
        .put_secret_value()
        .secret_id(&s.name)
        .client_request_token(&foreign)
        .secret_string("from-another-tool")
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("a foreign AWSPENDING");

    let id = RotationId::new();
    let staged = store.stage(&s, &value("mine"), &id, &meta(Some(&id), 2)).await.expect_err("stage");
    let err = store.promote(&s, &id).await.expect_err("promote");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    // Recovery is never handed the value to verify against the target: the read itself is the conflict.
    let read = store.pending(&s).await.expect_err("a foreign pending is not a pending rotavault can settle");
    let command = format!(
        "aws secretsmanager update-secret-version-stage --secret-id {} --version-stage AWSPENDING \
         --remove-from-version-id {foreign}",
        s.name
    );
    for err in [staged, read] {
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&command), "the conflict does not say how to clear it: {text}");
        assert!(!text.contains("from-another-tool"), "the value leaked into {text}");
    }
    assert_eq!(store.current(&s).await.expect("current").expect("current").value.expose(), "current");

    // Once a person has run the command, rotations go on.
    client
        .update_secret_version_stage()
        .secret_id(&s.name)
        .version_stage("AWSPENDING")
        .remove_from_version_id(&foreign)
        .send()
        .await
        .expect("the command from the message");
    assert!(store.pending(&s).await.expect("pending").is_none());
    store.stage(&s, &value("mine"), &id, &meta(Some(&id), 2)).await.expect("stage now");
    assert_eq!(store.pending(&s).await.expect("pending").expect("mine").rotation_id, id);
}

#[tokio::test]
async fn a_foreign_pending_whose_id_is_not_a_rotation_id_tells_the_operator_how_to_clear_it() {
    let (store, client) = store();
    let s = fresh();
    seed(&store, &s, "current", 1).await;
    let foreign = "foreign_rotation_token_0123456789abcdef";
    client
        .put_secret_value()
        .secret_id(&s.name)
        .client_request_token(foreign)
        .secret_string("from-another-tool")
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("a foreign AWSPENDING");
    let err = store.pending(&s).await.expect_err("pending");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("aws secretsmanager update-secret-version-stage"), "{text}");
    assert!(text.contains(&format!("--remove-from-version-id {foreign}")), "{text}");
    assert!(!text.contains("from-another-tool"), "the value leaked into {text}");
}

#[tokio::test]
async fn a_secret_scheduled_for_deletion_gives_the_clear_error() {
    let (store, client) = store();
    let s = fresh();
    let id = seed(&store, &s, "value", 1).await;
    client.delete_secret().secret_id(&s.name).recovery_window_in_days(7).send().await.expect("delete");

    assert_scheduled_for_deletion(store.current(&s).await, &s.name, "current");
    assert_scheduled_for_deletion(store.pending(&s).await, &s.name, "pending");
    assert_scheduled_for_deletion(store.previous(&s).await, &s.name, "previous");
    let next = RotationId::new();
    assert_scheduled_for_deletion(
        store.stage(&s, &value("v"), &next, &meta(Some(&next), 2)).await,
        &s.name,
        "stage",
    );
    assert_scheduled_for_deletion(store.promote(&s, &id).await, &s.name, "promote");
    assert_scheduled_for_deletion(store.discard(&s, &id).await, &s.name, "discard");
    assert_scheduled_for_deletion(
        store.write_current(&s, &value("v"), &meta(None, 2)).await,
        &s.name,
        "write",
    );

    // Restored, it is the job's secret again, untouched.
    client.restore_secret().secret_id(&s.name).send().await.expect("restore");
    assert_eq!(store.current(&s).await.expect("current").expect("current").value.expose(), "value");
}

#[tokio::test]
async fn check_passes_on_moto_and_changes_nothing() {
    let (store, client) = store();
    let s = fresh();
    seed(&store, &s, "kept", 1).await;
    let (labels_before, tags_before) = (labels(&client, &s.name).await, tags(&client, &s.name).await);
    store.check().await.expect("check");
    assert_eq!(labels(&client, &s.name).await, labels_before);
    assert_eq!(tags(&client, &s.name).await, tags_before);
    let probes = client
        .list_secrets()
        .include_planned_deletion(true)
        .filters(
            aws_sdk_secretsmanager::types::Filter::builder()
                .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                .values("rotavault-permission-probe")
                .build(),
        )
        .send()
        .await
        .expect("list secrets");
    assert!(probes.secret_list().is_empty(), "check created {:?}", probes.secret_list());
}

#[tokio::test]
async fn new_takes_credentials_from_the_standard_chain() {
    // scripts/test exports AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the environment link of the chain.
    let settings = AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint()),
        ..AwsSettings::default()
    };
    let store = AwsSecretsManagerStore::new(settings).await.expect("new");
    store.check().await.expect("check through the standard chain");
    let s = fresh();
    seed(&store, &s, "through-the-chain", 1).await;
    assert_eq!(
        store.current(&s).await.expect("current").expect("current").value.expose(),
        "through-the-chain"
    );
}

#[tokio::test]
async fn configured_tags_may_not_take_rotavault_keys() {
    let settings = AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint()),
        tags: [(MANAGED_BY_KEY.to_owned(), "someone-else".to_owned())].into(),
        ..AwsSettings::default()
    };
    let err = AwsSecretsManagerStore::new(settings.clone()).await.expect_err("a reserved tag");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    let (store, _) = store_with(settings);
    let id = RotationId::new();
    let err = store.stage(&fresh(), &value("v"), &id, &meta(Some(&id), 1)).await.expect_err("stage");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
}

#[tokio::test]
async fn a_new_secret_carries_ownership_the_configured_tags_and_the_kms_key() {
    let settings = AwsSettings {
        kms_key_id: Some("alias/rotavault-test".into()),
        tags: [("team".to_owned(), "billing".to_owned())].into(),
        ..AwsSettings::default()
    };
    let (store, client) = store_with(settings);
    let s = fresh();
    seed(&store, &s, "v", 1).await;
    let tags = tags(&client, &s.name).await;
    assert_eq!(tags.get(MANAGED_BY_KEY).map(String::as_str), Some("rotavault"));
    assert_eq!(tags.get(JOB_KEY).map(String::as_str), Some(JOB));
    assert_eq!(tags.get("team").map(String::as_str), Some("billing"));
    let out = client.describe_secret().secret_id(&s.name).send().await.expect("describe");
    assert_eq!(out.kms_key_id(), Some("alias/rotavault-test"));
}

#[tokio::test]
async fn metadata_tags_are_kept_only_for_current_previous_and_pending() {
    let (store, client) = store();
    let s = fresh();
    let mut ids = Vec::new();
    for generation in 1..=4 {
        ids.push(seed(&store, &s, &format!("gen-{generation}"), generation).await);
    }
    store.write_current(&s, &value("imported"), &meta(None, 5)).await.expect("write_current");
    let pending = RotationId::new();
    store.stage(&s, &value("gen-6"), &pending, &meta(Some(&pending), 6)).await.expect("stage");

    let labels = labels(&client, &s.name).await;
    let expected: BTreeSet<String> = ["AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"]
        .iter()
        .flat_map(|label| holders(&labels, label))
        .map(str::to_owned)
        .collect();
    assert_eq!(expected.len(), 3);
    assert!(expected.contains(ids[3].as_str()) && expected.contains(pending.as_str()), "{labels:?}");
    let tags = tags(&client, &s.name).await;
    let tagged: BTreeSet<String> =
        tags.keys().filter_map(|k| k.strip_prefix(VERSION_PREFIX)).map(str::to_owned).collect();
    assert_eq!(tagged, expected, "tags {tags:?} for labels {labels:?}");

    let previous = store.previous(&s).await.expect("previous").expect("previous");
    assert_eq!(previous.metadata, meta(Some(&ids[3]), 4));
    let current = store.current(&s).await.expect("current").expect("current");
    assert_eq!(current.metadata, meta(None, 5));
}

#[tokio::test]
async fn an_adopted_version_reads_with_synthesized_metadata() {
    let (store, client) = store();
    let s = fresh().adopting();
    let created = client.create_secret().name(&s.name).secret_string("by-hand").send().await.expect("create");
    let version = created.version_id().expect("a version id").to_owned();
    let out = client.get_secret_value().secret_id(&s.name).version_id(&version).send().await.expect("get");
    let created_at = out.created_date().expect("a creation date").secs();

    let current = store.current(&s).await.expect("current").expect("current");
    assert_eq!(current.value.expose(), "by-hand");
    assert_eq!(current.metadata.rotation_id, None);
    assert_eq!(current.metadata.generation, 0);
    assert_eq!(current.metadata.rotated_at.timestamp(), created_at);
    // Reading did not claim it.
    assert!(!tags(&client, &s.name).await.contains_key(MANAGED_BY_KEY));
}

#[tokio::test]
async fn adopting_a_secret_without_a_value_keeps_the_staged_value_from_awscurrent() {
    let (store, client) = store();
    let s = fresh().adopting();
    client.create_secret().name(&s.name).send().await.expect("create without a value");
    let id = RotationId::new();
    store.stage(&s, &value("unverified"), &id, &meta(Some(&id), 1)).await.expect("stage");
    assert!(store.current(&s).await.expect("current").is_none());
    assert_eq!(read_stage(&client, &s.name, "AWSCURRENT").await.1, PLACEHOLDER_VALUE);
    store.promote(&s, &id).await.expect("promote");
    assert_eq!(read_stage(&client, &s.name, "AWSCURRENT").await.1, "unverified");
}

#[tokio::test]
async fn stage_after_a_discard_of_the_same_rotation_stages_it_again() {
    let (store, _) = store();
    let s = fresh();
    seed(&store, &s, "current", 1).await;
    let id = RotationId::new();
    store.stage(&s, &value("again"), &id, &meta(Some(&id), 2)).await.expect("stage");
    store.discard(&s, &id).await.expect("discard");
    store.stage(&s, &value("again"), &id, &meta(Some(&id), 2)).await.expect("stage the same again");
    let pending = store.pending(&s).await.expect("pending").expect("pending again");
    assert_eq!((pending.rotation_id, pending.value.expose()), (id.clone(), "again"));
    store.discard(&s, &id).await.expect("discard");
    let err =
        store.stage(&s, &value("different"), &id, &meta(Some(&id), 2)).await.expect_err("another value");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(store.pending(&s).await.expect("pending").is_none());
}

#[tokio::test]
async fn a_write_that_fails_does_not_adopt() {
    let (store, client) = store();
    let s = fresh().adopting();
    client.create_secret().name(&s.name).secret_string("by-hand").send().await.expect("create");
    let foreign = uuid::Uuid::new_v4().hyphenated().to_string();
    client
        .put_secret_value()
        .secret_id(&s.name)
        .client_request_token(&foreign)
        .secret_string("their-pending")
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("a foreign AWSPENDING");
    let id = RotationId::new();
    let err = store.stage(&s, &value("mine"), &id, &meta(Some(&id), 1)).await.expect_err("stage");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(!tags(&client, &s.name).await.contains_key(MANAGED_BY_KEY), "a failed stage adopted the secret");
    // The write that succeeds adopts it.
    store.discard(&s, &RotationId::parse(&foreign).expect("a rotation id")).await.expect("discard");
    assert_eq!(tags(&client, &s.name).await.get(JOB_KEY).map(String::as_str), Some(JOB));
}

#[tokio::test]
async fn a_secret_tagged_with_the_old_job_tag_is_still_the_jobs_own() {
    let (store, client) = store();
    let s = fresh();
    let legacy = [(MANAGED_BY_KEY, "rotavault"), (LEGACY_JOB_KEY, JOB)]
        .map(|(k, v)| aws_sdk_secretsmanager::types::Tag::builder().key(k).value(v).build());
    client
        .create_secret()
        .name(&s.name)
        .secret_string("tagged-before")
        .set_tags(Some(legacy.to_vec()))
        .send()
        .await
        .expect("a secret as an older rotavault tagged it");
    // Not adopting: it is the job's own.
    seed(&store, &s, "rotated", 1).await;
    assert_eq!(store.current(&s).await.expect("current").expect("current").value.expose(), "rotated");
    let tags = tags(&client, &s.name).await;
    assert_eq!(tags.get(LEGACY_JOB_KEY).map(String::as_str), Some(JOB), "the old tag is left as it was");
    assert!(!tags.contains_key(JOB_KEY), "an owned secret is not tagged again");
    let other = SecretRef::new(s.name.clone(), "another-job").adopting();
    let err = store.current(&other).await.expect_err("another job");
    assert!(matches!(err, StoreError::NotOwned { owner: Some(ref o), .. } if o == JOB), "{err:?}");
}

#[tokio::test]
async fn a_stage_that_loses_a_race_leaves_no_label_on_its_version() {
    let (store, client) = store();
    for _ in 0..8 {
        let s = fresh();
        seed(&store, &s, "current", 1).await;
        let (a, b) = (RotationId::new(), RotationId::new());
        let (from_a, from_b) = (value("from-a"), value("from-b"));
        let (meta_a, meta_b) = (meta(Some(&a), 2), meta(Some(&b), 2));
        let (staged_a, staged_b) =
            tokio::join!(store.stage(&s, &from_a, &a, &meta_a), store.stage(&s, &from_b, &b, &meta_b));
        let labels = labels(&client, &s.name).await;
        let winner = match (&staged_a, &staged_b) {
            (Ok(()), Err(_)) => Some(a.as_str()),
            (Err(_), Ok(())) => Some(b.as_str()),
            (Err(_), Err(_)) => None,
            (Ok(()), Ok(())) => panic!("both stages won: {labels:?}"),
        };
        assert_eq!(holders(&labels, "AWSPENDING"), winner.into_iter().collect::<Vec<_>>(), "{labels:?}");
        assert!(holders(&labels, WRITING).is_empty(), "rotavault's own label is gone: {labels:?}");
        // The winner's metadata survived the race; the loser's is pruned by the next write that prunes.
        if let Some(winner) = winner {
            assert!(tags(&client, &s.name).await.contains_key(&format!("{VERSION_PREFIX}{winner}")));
            store.pending(&s).await.expect("pending").expect("the winner's value");
        }
    }
}
