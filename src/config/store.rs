//! `[stores.NAME]`: where a job's secrets are kept, as [`StoreConfig`], one variant per backend kind.
//!
//! Adding a backend is one variant here, one in `schema::StoreKind`, its schema struct, and one arm in [`build`].

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::{FileStoreSchema, KindOnlySchema, StoreKind};
use super::validate::resolve_path;
use crate::store::file::IdentitySource;
use crate::store::{file, memory};
use std::path::{Path, PathBuf};

/// A configured store, ready to be built by the engine.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// In-process only: for tests and dry runs; everything is lost when the process ends.
    Memory,
    /// An age-encrypted file. `path` and a file identity are absolute or relative to the working directory: paths
    /// written relative in the config have been resolved against the config file's directory.
    File { path: PathBuf, identity: IdentitySource },
}

impl StoreConfig {
    /// The backend's `BACKEND` constant, which is also its `kind` in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory => memory::BACKEND,
            Self::File { .. } => file::BACKEND,
        }
    }
}

pub(super) fn build(
    doc: &Document<'_>,
    at: &KeyPath,
    kind: StoreKind,
    base: &Path,
) -> Result<StoreConfig, ConfigError> {
    match kind {
        StoreKind::Memory => {
            doc.deserialize_at::<KindOnlySchema>(at)?;
            Ok(StoreConfig::Memory)
        }
        StoreKind::File => {
            let schema: FileStoreSchema = doc.deserialize_at(at)?;
            let path = resolve_path(doc, &at.key("path"), &schema.path, base)?;
            let identity = match (schema.identity_file, schema.identity_credential) {
                (Some(file), None) => {
                    IdentitySource::File(resolve_path(doc, &at.key("identity_file"), &file, base)?)
                }
                (None, Some(name)) => {
                    IdentitySource::Credential(credential_name(doc, &at.key("identity_credential"), name)?)
                }
                (Some(_), Some(_)) => {
                    return Err(doc.error(
                        &at.key("identity_credential"),
                        "both `identity_file` and `identity_credential` are set: expected exactly one of them",
                    ));
                }
                (None, None) => {
                    return Err(doc.error(
                        at,
                        "the store has no identity: expected exactly one of `identity_file` (a file holding \
                         the store's age identity) or `identity_credential` (the name of a systemd credential)",
                    ));
                }
            };
            Ok(StoreConfig::File { path, identity })
        }
    }
}

/// A systemd credential name becomes the file name `$CREDENTIALS_DIRECTORY/<name>`, so it must be one.
fn credential_name(doc: &Document<'_>, at: &KeyPath, name: String) -> Result<String, ConfigError> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.chars().any(char::is_control)
    {
        return Err(doc.error(
            at,
            "not a systemd credential name: expected the name given to `LoadCredential=` or \
             `LoadCredentialEncrypted=`, a file name without `/`",
        ));
    }
    Ok(name)
}
