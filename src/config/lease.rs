//! `[lease]`: how replicas of rotavault agree on which one runs the jobs, as [`LeaseConfig`].
//!
//! `kind = "file"` (the default) is the per-job lock file in `state_dir`: every process on one host excludes the
//! others, and nothing reaches across hosts. `kind = "kubernetes"` is one `coordination.k8s.io/v1` Lease shared by
//! every replica: one leads and runs the jobs, the others stand by. Its timings follow the Lease's own terms:
//! a leader renews every `retry_period`, gives up leading when it could not renew for `renew_deadline`, and a
//! standby takes over once the Lease has not been renewed for `duration`. Since a standby's takeover waits for the
//! whole `duration`, the leader's own deadline must come first, with room to spare.

use super::StoreConfig;
use super::document::Document;
use super::duration::ConfigDuration;
use super::duration::display;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::validate::{Limit, nonzero};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub const DEFAULT_NAME: &str = "rotavault";
pub const DEFAULT_DURATION: Duration = Duration::from_secs(15);
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
const LIMIT: Limit = Limit {
    max: Duration::from_secs(600),
    why: "no rotation runs while a dead leader's lease is waited out",
};

/// `[lease]` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LeaseSchema {
    pub kind: Option<LeaseKind>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub duration: Option<ConfigDuration>,
    pub renew_deadline: Option<ConfigDuration>,
    pub retry_period: Option<ConfigDuration>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LeaseKind {
    #[default]
    File,
    Kubernetes,
}

/// `[lease]`, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LeaseConfig {
    /// Lock files in `state_dir`: one host.
    #[default]
    File,
    Kubernetes(KubernetesLease),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesLease {
    /// The Lease object's name.
    pub name: String,
    /// Its namespace; `None`: the pod's own (its service account's namespace).
    pub namespace: Option<String>,
    /// How long a Lease not renewed still holds: a standby waits this long before it takes over.
    pub duration: Duration,
    /// How long a leader goes on without a successful renewal before it stops leading.
    pub renew_deadline: Duration,
    /// How often the leader renews and a standby tries to take over.
    pub retry_period: Duration,
}

pub(super) fn build(
    doc: &Document<'_>,
    schema: LeaseSchema,
    stores: &BTreeMap<String, StoreConfig>,
) -> Result<LeaseConfig, ConfigError> {
    let at = KeyPath::root().key("lease");
    let kind = schema.kind.unwrap_or_default();
    if kind == LeaseKind::File {
        let given = [
            ("name", schema.name.is_some()),
            ("namespace", schema.namespace.is_some()),
            ("duration", schema.duration.is_some()),
            ("renew_deadline", schema.renew_deadline.is_some()),
            ("retry_period", schema.retry_period.is_some()),
        ];
        if let Some((key, _)) = given.into_iter().find(|(_, given)| *given) {
            return Err(doc.error_at_key(
                &at.key(key),
                format!(
                    "`{key}` is a setting of the Kubernetes lease: expected `kind = \"kubernetes\"` with it"
                ),
            ));
        }
        return Ok(LeaseConfig::File);
    }
    if !cfg!(feature = "kubernetes") {
        return Err(doc.error(
            &at.key("kind"),
            "this rotavault was built without the `kubernetes` feature: expected `kind = \"file\"`, or a build \
             with that feature",
        ));
    }
    let name = object_name(doc, &at.key("name"), schema.name.as_deref().unwrap_or(DEFAULT_NAME))?.to_owned();
    let namespace = match &schema.namespace {
        Some(namespace) => Some(object_name(doc, &at.key("namespace"), namespace)?.to_owned()),
        None => None,
    };
    let duration = nonzero(doc, &at.key("duration"), schema.duration, LIMIT)?.unwrap_or(DEFAULT_DURATION);
    let renew_deadline = nonzero(doc, &at.key("renew_deadline"), schema.renew_deadline, LIMIT)?
        .unwrap_or(DEFAULT_RENEW_DEADLINE);
    let retry_period =
        nonzero(doc, &at.key("retry_period"), schema.retry_period, LIMIT)?.unwrap_or(DEFAULT_RETRY_PERIOD);
    if renew_deadline >= duration {
        return Err(doc.error(
            &at.key("renew_deadline"),
            format!(
                "{} is not shorter than `duration` ({}): a leader must stop leading before a standby may take \
                 over, so expected less than `duration`",
                display(renew_deadline),
                display(duration)
            ),
        ));
    }
    if retry_period >= renew_deadline {
        return Err(doc.error(
            &at.key("retry_period"),
            format!(
                "{} is not shorter than `renew_deadline` ({}): a leader renews several times within its deadline, \
                 so expected less than `renew_deadline`",
                display(retry_period),
                display(renew_deadline)
            ),
        ));
    }
    // A store on one replica's disk or in its memory is lost to the next leader, with every secret in it.
    for (store, config) in stores {
        if matches!(config, StoreConfig::File { .. } | StoreConfig::Memory) {
            return Err(doc.error(
                &KeyPath::root().key("stores").key(store).key("kind"),
                format!(
                    "a `{}` store lives on one replica only, and `[lease] kind = \"kubernetes\"` runs replicas \
                     that take over from each other: expected a store every replica reaches \
                     (aws_secrets_manager, azure_key_vault or hashicorp_vault)",
                    config.kind()
                ),
            ));
        }
    }
    Ok(LeaseConfig::Kubernetes(KubernetesLease { name, namespace, duration, renew_deadline, retry_period }))
}

/// A Kubernetes object name (RFC 1123 label: at most 63 lowercase letters, digits and `-`, starting and ending with
/// a letter or digit), which both a Lease's name and a namespace must be.
fn object_name<'t>(doc: &Document<'_>, at: &KeyPath, text: &'t str) -> Result<&'t str, ConfigError> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = !text.is_empty()
        && text.len() <= 63
        && text.chars().all(|c| alnum(c) || c == '-')
        && text.starts_with(alnum)
        && text.ends_with(alnum);
    if valid {
        Ok(text)
    } else {
        Err(doc.error(
            at,
            format!(
                "`{text}` is not a Kubernetes name: expected at most 63 lowercase letters, digits and `-`, \
                 starting and ending with a letter or digit"
            ),
        ))
    }
}
