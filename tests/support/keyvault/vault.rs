//! The fake's model of one vault: secrets and their versions, soft-deleted secrets, and the injected faults.
//!
//! Each operation is a plain function from a request to a JSON answer or a [`KvError`], with Key Vault's
//! rules applied in Key Vault's order (permission, then the name, then the body, then the state): names of 1 to
//! 127 of `0-9a-zA-Z-`; at most 15 tags; `contentType` of at most 255 characters; values of at most 25 KB; a
//! disabled version cannot be read; a deleted secret is invisible to GET and reserves its name until recovered
//! or purged; a version's value never changes. `routes` puts HTTP around it.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The vault's public address; the `id` of every secret names it.
pub const VAULT_URL: &str = "https://myvault.vault.azure.net";
pub const MAX_TAGS: usize = 15;
pub const MAX_CONTENT_TYPE: usize = 255;
pub const MAX_VALUE_BYTES: usize = 25 * 1024;
/// The `Retry-After` of a throttled answer, in seconds.
pub const THROTTLE_RETRY_AFTER_SECS: u64 = 3;
const RECOVERABLE_DAYS: i64 = 90;

/// One version, as the fake keeps it (and as tests see it through `FakeKeyVault::versions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVersion {
    pub id: String,
    pub value: String,
    pub content_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub enabled: bool,
    pub created: i64,
    pub updated: i64,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
}

#[derive(Clone, Debug, Default)]
struct Secret {
    /// In creation order: the last is the latest.
    versions: Vec<StoredVersion>,
}

#[derive(Clone, Debug)]
struct Deleted {
    secret: Secret,
    deleted_date: i64,
}

/// An error answer: `{"error":{"code","message","innererror":{"code"}}}` with a status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub inner: Option<&'static str>,
    pub retry_after: Option<u64>,
}

impl KvError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), inner: None, retry_after: None }
    }

    fn inner(mut self, code: &'static str) -> Self {
        self.inner = Some(code);
        self
    }

    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(inner) = self.inner {
            error["innererror"] = json!({ "code": inner });
        }
        json!({ "error": error })
    }

    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(400, "BadParameter", message)
    }

    fn not_found(name: &str, version: &str) -> Self {
        Self::new(
            404,
            "SecretNotFound",
            format!("A secret with (name/id) {name}/{version} was not found in this key vault."),
        )
    }
}

pub type Answer = Result<Value, KvError>;

/// The permission an operation needs, as access policies name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Get,
    List,
    Set,
    Delete,
    Recover,
    Purge,
}

impl Permission {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "get" => Self::Get,
            "list" => Self::List,
            "set" => Self::Set,
            "delete" => Self::Delete,
            "recover" => Self::Recover,
            "purge" => Self::Purge,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Set => "set",
            Self::Delete => "delete",
            Self::Recover => "recover",
            Self::Purge => "purge",
        }
    }
}

#[derive(Debug, Default)]
pub struct Vault {
    secrets: BTreeMap<String, Secret>,
    deleted: BTreeMap<String, Deleted>,
    throttle: u32,
    deny: Vec<(Permission, u32)>,
}

pub fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn check_name(name: &str) -> Result<(), KvError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(KvError::bad(format!(
            "The request URI contains an invalid name: {name}. Secret names must be 1-127 characters of \
             0-9, a-z, A-Z and -."
        )))
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn secret_id(name: &str, version: &str) -> String {
    format!("{VAULT_URL}/secrets/{name}/{version}")
}

fn attributes(v: &StoredVersion) -> Value {
    let mut a = json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": RECOVERABLE_DAYS,
    });
    if let Some(exp) = v.exp {
        a["exp"] = json!(exp);
    }
    if let Some(nbf) = v.nbf {
        a["nbf"] = json!(nbf);
    }
    a
}

/// A secret bundle; `with_value` only for GET and PUT (updates and listings never return the value).
fn bundle(name: &str, v: &StoredVersion, with_value: bool) -> Value {
    let mut b = Map::new();
    if with_value {
        b.insert("value".into(), json!(v.value));
    }
    b.insert("id".into(), json!(secret_id(name, &v.id)));
    if let Some(ct) = &v.content_type {
        b.insert("contentType".into(), json!(ct));
    }
    if !v.tags.is_empty() {
        b.insert("tags".into(), json!(v.tags));
    }
    b.insert("attributes".into(), attributes(v));
    Value::Object(b)
}

/// The parts of a SetSecret or UpdateSecret body the fake reads.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Body {
    pub value: Option<String>,
    #[serde(rename = "contentType")]
    pub content_type: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub attributes: Option<BodyAttributes>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct BodyAttributes {
    pub enabled: Option<bool>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
}

fn check_tags_and_type(body: &Body) -> Result<(), KvError> {
    if body.tags.as_ref().is_some_and(|t| t.len() > MAX_TAGS) {
        return Err(KvError::bad(format!(
            "Too many tags: a secret version may have at most {MAX_TAGS} tags."
        )));
    }
    if body.content_type.as_ref().is_some_and(|c| c.chars().count() > MAX_CONTENT_TYPE) {
        return Err(KvError::bad(format!("The content type may be at most {MAX_CONTENT_TYPE} characters.")));
    }
    Ok(())
}

impl Vault {
    /// The injected faults, in Key Vault's order: throttling, then the permission check.
    pub fn faults(&mut self, permission: Permission) -> Result<(), KvError> {
        if self.throttle > 0 {
            self.throttle -= 1;
            let mut e = KvError::new(
                429,
                "Throttled",
                "Request was not processed because too many requests were received. Reason: \
                 VaultRequestTypeLimitReached",
            );
            e.retry_after = Some(THROTTLE_RETRY_AFTER_SECS);
            return Err(e);
        }
        if let Some(slot) = self.deny.iter_mut().find(|(p, n)| *p == permission && *n > 0) {
            slot.1 -= 1;
            return Err(KvError::new(
                403,
                "Forbidden",
                format!(
                    "The user, group or application 'appid=00000000-0000-0000-0000-00000000a001;oid=\
                     00000000-0000-0000-0000-00000000b002;iss=https://sts.windows.net/{}/' does not have secrets \
                     {} permission on key vault 'myvault;location=westeurope'. For help resolving this issue, \
                     please see https://go.microsoft.com/fwlink/?linkid=2125287",
                    super::TENANT,
                    permission.as_str()
                ),
            )
            .inner("AccessDenied"));
        }
        Ok(())
    }

    pub fn throttle_next(&mut self, n: u32) {
        self.throttle += n;
    }

    pub fn deny_next(&mut self, permission: Permission, n: u32) {
        self.deny.push((permission, n));
    }

    /// SetSecret: a new version.
    pub fn set(&mut self, name: &str, body: Body) -> Answer {
        check_name(name)?;
        let Some(value) = body.value.clone() else {
            return Err(KvError::bad("The parameter 'value' is required."));
        };
        check_tags_and_type(&body)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::bad(format!("The secret value may be at most {MAX_VALUE_BYTES} bytes.")));
        }
        if self.deleted.contains_key(name) {
            return Err(KvError::new(
                409,
                "Conflict",
                format!(
                    "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; \
                     in this state, the secret can only be recovered or purged."
                ),
            )
            .inner("ObjectIsDeletedButRecoverable"));
        }
        let at = now();
        let attributes = body.attributes.unwrap_or_default();
        let version = StoredVersion {
            id: uuid::Uuid::new_v4().simple().to_string(),
            value,
            content_type: body.content_type,
            tags: body.tags.unwrap_or_default(),
            enabled: attributes.enabled.unwrap_or(true),
            created: at,
            updated: at,
            exp: attributes.exp,
            nbf: attributes.nbf,
        };
        let answer = bundle(name, &version, true);
        self.secrets.entry(name.to_owned()).or_default().versions.push(version);
        Ok(answer)
    }

    /// GetSecret: one version, or the latest when `version` is empty.
    pub fn get(&self, name: &str, version: &str) -> Answer {
        check_name(name)?;
        let v = self.find(name, version)?;
        if !v.enabled {
            return Err(KvError::new(403, "Forbidden", "Operation get is not allowed on a disabled secret.")
                .inner("SecretDisabled"));
        }
        Ok(bundle(name, v, true))
    }

    /// UpdateSecret: attributes, tags (the whole set) and content type of one version; never the value.
    pub fn update(&mut self, name: &str, version: &str, body: Body) -> Answer {
        check_name(name)?;
        check_tags_and_type(&body)?;
        let v = self.find_mut(name, version)?;
        if let Some(a) = body.attributes {
            if let Some(enabled) = a.enabled {
                v.enabled = enabled;
            }
            if a.exp.is_some() {
                v.exp = a.exp;
            }
            if a.nbf.is_some() {
                v.nbf = a.nbf;
            }
        }
        if let Some(tags) = body.tags {
            v.tags = tags;
        }
        if let Some(ct) = body.content_type {
            v.content_type = Some(ct);
        }
        v.updated = now();
        Ok(bundle(name, v, false))
    }

    /// GetSecretVersions: every version without its value.
    pub fn list_versions(&self, name: &str) -> Answer {
        check_name(name)?;
        let secret = self.secrets.get(name).ok_or_else(|| KvError::not_found(name, ""))?;
        let items: Vec<Value> = secret.versions.iter().map(|v| bundle(name, v, false)).collect();
        Ok(json!({ "value": items, "nextLink": null }))
    }

    /// DeleteSecret: soft delete; the name stays reserved.
    pub fn delete(&mut self, name: &str) -> Answer {
        check_name(name)?;
        let secret = self.secrets.remove(name).ok_or_else(|| KvError::not_found(name, ""))?;
        let deleted = Deleted { secret, deleted_date: now() };
        let answer = deleted_bundle(name, &deleted);
        self.deleted.insert(name.to_owned(), deleted);
        Ok(answer)
    }

    pub fn get_deleted(&self, name: &str) -> Answer {
        check_name(name)?;
        let deleted = self.deleted.get(name).ok_or_else(|| {
            KvError::new(404, "SecretNotFound", format!("Deleted Secret not found: {name}"))
        })?;
        Ok(deleted_bundle(name, deleted))
    }

    pub fn recover(&mut self, name: &str) -> Answer {
        check_name(name)?;
        let deleted = self.deleted.remove(name).ok_or_else(|| {
            KvError::new(404, "SecretNotFound", format!("Deleted Secret not found: {name}"))
        })?;
        let answer = deleted.secret.versions.last().map(|v| bundle(name, v, false)).unwrap_or(Value::Null);
        self.secrets.insert(name.to_owned(), deleted.secret);
        Ok(answer)
    }

    pub fn purge(&mut self, name: &str) -> Result<(), KvError> {
        check_name(name)?;
        self.deleted
            .remove(name)
            .map(drop)
            .ok_or_else(|| KvError::new(404, "SecretNotFound", format!("Deleted Secret not found: {name}")))
    }

    fn find(&self, name: &str, version: &str) -> Result<&StoredVersion, KvError> {
        let secret = self.secrets.get(name).ok_or_else(|| KvError::not_found(name, version))?;
        let found = if version.is_empty() {
            secret.versions.last()
        } else {
            secret.versions.iter().find(|v| v.id == version)
        };
        found.ok_or_else(|| KvError::not_found(name, version))
    }

    fn find_mut(&mut self, name: &str, version: &str) -> Result<&mut StoredVersion, KvError> {
        let secret = self.secrets.get_mut(name).ok_or_else(|| KvError::not_found(name, version))?;
        let found = if version.is_empty() {
            secret.versions.last_mut()
        } else {
            secret.versions.iter_mut().find(|v| v.id == version)
        };
        found.ok_or_else(|| KvError::not_found(name, version))
    }

    /// Control: a version as another tool writes it (a value and nothing else).
    pub fn plant(&mut self, name: &str, value: &str) -> String {
        let at = now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let version = StoredVersion {
            id: id.clone(),
            value: value.to_owned(),
            content_type: None,
            tags: BTreeMap::new(),
            enabled: true,
            created: at,
            updated: at,
            exp: None,
            nbf: None,
        };
        self.secrets.entry(name.to_owned()).or_default().versions.push(version);
        id
    }

    /// Control: disables the latest version of `name`, as `az keyvault secret set-attributes --enabled false`.
    pub fn disable_latest(&mut self, name: &str) -> bool {
        match self.secrets.get_mut(name).and_then(|s| s.versions.last_mut()) {
            Some(v) => {
                v.enabled = false;
                true
            }
            None => false,
        }
    }

    pub fn versions(&self, name: &str) -> Vec<StoredVersion> {
        self.secrets.get(name).map(|s| s.versions.clone()).unwrap_or_default()
    }

    pub fn names(&self) -> Vec<String> {
        self.secrets.keys().cloned().collect()
    }

    pub fn is_deleted(&self, name: &str) -> bool {
        self.deleted.contains_key(name)
    }
}

fn deleted_bundle(name: &str, deleted: &Deleted) -> Value {
    let mut b = deleted.secret.versions.last().map(|v| bundle(name, v, false)).unwrap_or_else(|| json!({}));
    b["recoveryId"] = json!(format!("{VAULT_URL}/deletedsecrets/{name}"));
    b["deletedDate"] = json!(deleted.deleted_date);
    b["scheduledPurgeDate"] = json!(deleted.deleted_date + RECOVERABLE_DAYS * 86_400);
    b
}
