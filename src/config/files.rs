//! [`NamedFile`]: every file a store or job names (`*_file` keys: identities, tokens, secret ids, CA certificates,
//! integration codes), with where the config names it, so that `rotavault check` can report a missing one at its
//! line and key before the daemon meets it at 3 a.m.
//!
//! Existence is checked by `check`, not at load: `status` and `resolve` need none of these files, and a config that
//! names a Kubernetes token is valid on the machine where it is written, outside the cluster.

use super::document::Document;
use super::error::ConfigError;
use super::hooks::HookConfig;
use super::job::{FileRef, JobConfig};
use super::locate::KeyPath;
use super::store::{AzureIdentityConfig, StoreConfig, VaultAuthConfig};
use super::target::TargetConfig;
use crate::store::file::IdentitySource;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A file the config names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedFile {
    /// The dotted key that names it (`stores.bao.secret_id_file`).
    pub key: String,
    /// Where the key is, or its table when the path is a default.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub path: PathBuf,
    /// What the file holds, for the message: "the AppRole secret id".
    pub holds: &'static str,
}

impl NamedFile {
    /// The file at `path`, named by the key at `at`, located in `doc`.
    pub(super) fn at(doc: &Document<'_>, at: &KeyPath, path: &Path, holds: &'static str) -> Self {
        let place = doc.error(at, "");
        Self { key: at.to_string(), line: place.line, column: place.column, path: path.to_owned(), holds }
    }

    /// A config error at the key when the file is not there (or cannot be looked at), naming the path.
    pub fn check(&self, config: &Path) -> Result<(), ConfigError> {
        let problem = match std::fs::metadata(&self.path) {
            Ok(meta) if meta.is_dir() => "is a directory".to_owned(),
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_owned(),
            Err(e) => format!("cannot be reached ({e})"),
        };
        Err(ConfigError {
            file: config.to_owned(),
            line: self.line,
            column: self.column,
            key: Some(self.key.clone()),
            message: format!("`{}` {problem}: expected a file holding {}", self.path.display(), self.holds),
        })
    }
}

/// A named file with where its key starts in the config, to put every file in the order of the file.
pub(super) type Placed = (usize, NamedFile);

/// Every file `stores` name.
pub(super) fn of_stores(doc: &Document<'_>, stores: &BTreeMap<String, StoreConfig>) -> Vec<Placed> {
    let mut found: Vec<(KeyPath, &Path, &'static str)> = Vec::new();
    for (name, store) in stores {
        let at = KeyPath::root().key("stores").key(name);
        match store {
            StoreConfig::File { identity: IdentitySource::File(path), .. } => {
                found.push((at.key("identity_file"), path, "the store's age identity"));
            }
            StoreConfig::AzureKeyVault(azure) => match &azure.identity {
                AzureIdentityConfig::ClientSecret { secret_file, .. } => {
                    found.push((at.key("client_secret_file"), secret_file, "the Azure client secret"));
                }
                AzureIdentityConfig::ClientCertificate { certificate_file, .. } => {
                    found.push((
                        at.key("certificate_file"),
                        certificate_file,
                        "the Azure client certificate",
                    ));
                }
                _ => {}
            },
            StoreConfig::HashicorpVault(vault) => {
                if let Some(ca) = &vault.ca_file {
                    found.push((at.key("ca_file"), ca, "the CA certificate to trust for the server"));
                }
                match &vault.auth {
                    VaultAuthConfig::Token { token_file } => {
                        found.push((at.key("token_file"), token_file, "a Vault token"));
                    }
                    VaultAuthConfig::AppRole { secret_id_file, .. } => {
                        found.push((at.key("secret_id_file"), secret_id_file, "the AppRole secret id"));
                    }
                    VaultAuthConfig::Kubernetes { token_file, .. } => found.push((
                        at.key("service_account_token_file"),
                        token_file,
                        "the Kubernetes service account token",
                    )),
                }
            }
            _ => {}
        }
    }
    placed(doc, found)
}

/// Every file `targets` name.
pub(super) fn of_targets(doc: &Document<'_>, targets: &BTreeMap<String, TargetConfig>) -> Vec<Placed> {
    let mut found: Vec<(KeyPath, &Path, &'static str)> = Vec::new();
    for (name, target) in targets {
        if let TargetConfig::Webhook(webhook) = target {
            let at = KeyPath::root().key("targets").key(name);
            found.push((at.key("url_file"), &webhook.url_file, "the webhook target's URL"));
            found.push((at.key("key_file"), &webhook.key_file, "the webhook target's signing key"));
        }
    }
    placed(doc, found)
}

/// Every file the job `name` names; `doc` is the document it was read from.
pub(super) fn of_job(doc: &Document<'_>, name: &str, job: &JobConfig) -> Vec<Placed> {
    let mut found: Vec<(KeyPath, &Path, &'static str)> = Vec::new();
    if let Some(FileRef::File(path)) = job.autotask.as_ref().map(|a| &a.integration_code) {
        let at = KeyPath::root().key("jobs").key(name).key("integration_code_file");
        found.push((at, path, "the job's integration code"));
    }
    for (i, hook) in job.after_rotation.iter().enumerate() {
        if let HookConfig::Webhook(webhook) = hook {
            let at = KeyPath::root().key("jobs").key(name).key("after_rotation").index(i);
            found.push((at.key("url_file"), &webhook.url_file, "the webhook hook's URL"));
            found.push((at.key("key_file"), &webhook.key_file, "the webhook hook's signing key"));
        }
    }
    placed(doc, found)
}

fn placed(doc: &Document<'_>, found: Vec<(KeyPath, &Path, &'static str)>) -> Vec<Placed> {
    found
        .into_iter()
        .map(|(at, path, holds)| (doc.offset(&at), NamedFile::at(doc, &at, path, holds)))
        .collect()
}

/// `files` in the order of the config file.
pub(super) fn in_file_order(mut files: Vec<Placed>) -> Vec<NamedFile> {
    files.sort_by_key(|(offset, _)| *offset);
    files.into_iter().map(|(_, file)| file).collect()
}
