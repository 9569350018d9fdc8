//! [`Http`], one request to Vault, and [`Api`], the KV v2 calls rotavault makes, in rotavault's types.
//!
//! Every request carries `X-Vault-Namespace` when one is set and the token from [`super::auth`]; every failure
//! goes through [`super::errors`]. A 403 is ambiguous in Vault (a bad token and a policy refusal both say
//! `permission denied`), so [`Api::call`] asks `auth/token/lookup-self` which one it was: a refused token is
//! replaced once (a fresh login, or the token file read again) and the call repeated, then reported as
//! `Unauthenticated`.
//!
//! Reads always name the version (`?version=N`) they were told about by the path's metadata, so a read never
//! mixes two versions; writes carry `options.cas`.

use super::auth::Auth;
use super::errors::{self, Call, Failure};
use super::{BACKEND, VaultSettings};
use crate::store::StoreError;
use crate::store::contract::absent_is_none;
use chrono::{DateTime, Utc};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const NAMESPACE_HEADER: &str = "X-Vault-Namespace";
const TOKEN_HEADER: &str = "X-Vault-Token";

/// The HTTP client, the server's address and the namespace: everything a request needs but the token.
#[derive(Clone, Debug)]
pub(super) struct Http {
    client: reqwest::Client,
    base: Url,
    namespace: Option<String>,
}

impl Http {
    /// Builds the client; reads and checks `ca_file` (an extra trusted root, beside the system's).
    pub fn new(settings: &VaultSettings) -> Result<Self, StoreError> {
        let invalid = |detail: String| StoreError::Invalid { backend: BACKEND, detail };
        let base = Url::parse(&settings.address)
            .map_err(|e| invalid(format!("address `{}` is not a URL: {e}", settings.address)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid(format!("address `{}` is not an http(s) URL", settings.address)));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            // Vault answers a standby's requests with a redirect to the active node that carries the token
            // header along: follow none, a standby's answer is mapped as Transient instead.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| invalid(format!("ca_file `{}` cannot be read: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| invalid(format!("ca_file `{}` is not PEM certificates: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(invalid(format!("ca_file `{}` holds no PEM certificate", path.display())));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client, base, namespace: settings.namespace.clone().filter(|n| !n.is_empty()) })
    }

    /// `<address>/v1/<segments...>/<name split on '/'>`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str], name: Option<&str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
            if let Some(name) = name {
                path.extend(name.split('/'));
            }
        }
        url
    }

    /// Sends one request; `Ok` holds the JSON body of a 2xx (`None` for 204 or an empty body).
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        token: Option<&str>,
        body: Option<&Value>,
        merge_patch: bool,
    ) -> Result<Option<Value>, Failure> {
        let mut request = self.client.request(method, url);
        if let Some(ns) = &self.namespace {
            request = request.header(NAMESPACE_HEADER, ns);
        }
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token);
        }
        if let Some(body) = body {
            let content_type = if merge_patch { "application/merge-patch+json" } else { "application/json" };
            let bytes = serde_json::to_vec(body).map_err(|e| Failure::Other { detail: e.to_string() })?;
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes);
        }
        let response = request.send().await.map_err(|e| errors::transport(&e))?;
        let status = response.status().as_u16();
        let retry_after = errors::retry_after(response.headers());
        let bytes = response.bytes().await.map_err(|e| errors::transport(&e))?;
        if (200..300).contains(&status) {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            // The detail of a parse error names a position, never the text.
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Failure::Unreadable { status, detail: format!("not JSON ({e})") });
        }
        // Vault's error body is `{"errors": [...]}`; a proxy in between may answer with anything, which is
        // then reported by its status alone.
        #[derive(Deserialize)]
        struct ErrorBody {
            #[serde(default)]
            errors: Vec<String>,
        }
        let errors = serde_json::from_slice::<ErrorBody>(&bytes).map(|b| b.errors).unwrap_or_default();
        Err(Failure::Status { status, errors, retry_after })
    }
}

/// A path's KV v2 metadata, as rotavault reads it.
#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct KeyMetadata {
    #[serde(default)]
    pub current_version: u64,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub custom_metadata: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub versions: BTreeMap<u64, VersionInfo>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct VersionInfo {
    #[serde(default)]
    pub created_time: String,
    #[serde(default)]
    pub deletion_time: String,
    #[serde(default)]
    pub destroyed: bool,
}

impl VersionInfo {
    /// Whether the version can be read: not deleted (soft) and not destroyed.
    pub fn is_live(&self) -> bool {
        !self.destroyed && self.deletion_time.is_empty()
    }

    pub fn created(&self) -> Option<DateTime<Utc>> {
        super::metadata::parse_time(&self.created_time)
    }
}

impl KeyMetadata {
    /// The newest live version before `version`: what Vault's history calls the one before it.
    pub fn live_before(&self, version: u64) -> Option<u64> {
        self.versions.range(..version).rev().find(|(_, info)| info.is_live()).map(|(v, _)| *v)
    }

    pub fn is_live(&self, version: u64) -> bool {
        self.versions.get(&version).is_some_and(VersionInfo::is_live)
    }

    pub fn created(&self, version: u64) -> Option<DateTime<Utc>> {
        self.versions.get(&version).and_then(VersionInfo::created)
    }
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The KV v2 calls, authenticated.
#[derive(Debug)]
pub(super) struct Api {
    http: Http,
    auth: Auth,
    mount: String,
}

impl Api {
    pub fn new(http: Http, auth: Auth, mount: String) -> Self {
        Self { http, auth, mount }
    }

    /// The path a message names: `<mount>/<kind>/<name>`.
    fn shown(&self, kind: &str, name: &str) -> String {
        format!("{}/{kind}/{name}", self.mount)
    }

    /// One authenticated call. See the module documentation for how a 403 is told apart and retried.
    async fn call(
        &self,
        op: &'static str,
        path: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        merge_patch: bool,
    ) -> Result<Option<Value>, StoreError> {
        let call = Call { op, path };
        let mut replaced = false;
        loop {
            let token = self.auth.token(&self.http).await?;
            match self.http.send(method.clone(), url.clone(), Some(&token), body, merge_patch).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Status { status: 403, .. }) if !self.token_is_valid(&token).await => {
                    if !replaced && self.auth.rejected(&self.http, &token).await {
                        replaced = true;
                        tracing::info!(op, "Vault refused the token; trying once more with a new one");
                        continue;
                    }
                    return Err(errors::classify(call, Failure::TokenRejected));
                }
                Err(failure) => return Err(errors::classify(call, failure)),
            }
        }
    }

    /// Whether Vault still accepts `token` (every token may look itself up, through the `default` policy).
    /// Any answer but a 403 counts as valid, so that the original error is reported rather than masked.
    async fn token_is_valid(&self, token: &str) -> bool {
        let url = self.http.url(&["auth", "token", "lookup-self"], None);
        !matches!(
            self.http.send(Method::GET, url, Some(token), None, false).await,
            Err(Failure::Status { status: 403, .. })
        )
    }

    /// A path's metadata; `None` if the path does not exist.
    pub async fn metadata(&self, name: &str) -> Result<Option<KeyMetadata>, StoreError> {
        let url = self.http.url(&[&self.mount, "metadata"], Some(name));
        let answer =
            self.call("read metadata", &self.shown("metadata", name), Method::GET, url, None, false).await;
        let Some(body) = absent_is_none(answer)?.flatten() else {
            return Ok(None);
        };
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        serde_json::from_value(data).map(Some).map_err(|e| StoreError::Invalid {
            backend: BACKEND,
            detail: format!(
                "the metadata of `{}` is not KV v2 metadata ({e}); is `{}` a KV v2 mount?",
                name, self.mount
            ),
        })
    }

    /// The `data` of one version; `None` if it does not exist or was deleted or destroyed.
    pub async fn version(&self, name: &str, version: u64) -> Result<Option<Map<String, Value>>, StoreError> {
        let mut url = self.http.url(&[&self.mount, "data"], Some(name));
        url.query_pairs_mut().append_pair("version", &version.to_string());
        let answer = self.call("read", &self.shown("data", name), Method::GET, url, None, false).await;
        let Some(mut body) = absent_is_none(answer)?.flatten() else {
            return Ok(None);
        };
        match body.pointer_mut("/data/data").map(Value::take) {
            Some(Value::Object(data)) => Ok(Some(data)),
            Some(Value::Null) | None => Ok(None),
            Some(_) => Err(StoreError::Invalid {
                backend: BACKEND,
                detail: format!("version {version} of `{name}` holds no JSON object"),
            }),
        }
    }

    /// Writes a new version with `options.cas = cas` (0: only if the path has no version); returns its number.
    /// A lost check-and-set is `Conflict`.
    pub async fn write(&self, name: &str, data: Map<String, Value>, cas: u64) -> Result<u64, StoreError> {
        let url = self.http.url(&[&self.mount, "data"], Some(name));
        let body = json!({ "options": { "cas": cas }, "data": data });
        let answer =
            self.call("write", &self.shown("data", name), Method::POST, url, Some(&body), false).await?;
        answer.as_ref().and_then(|b| b.pointer("/data/version")).and_then(Value::as_u64).ok_or_else(|| {
            StoreError::Invalid {
                backend: BACKEND,
                detail: format!("the write of `{name}` answered without a version number"),
            }
        })
    }

    /// Creates (or replaces) a path's metadata: its `custom_metadata` and, if given, `max_versions`.
    pub async fn create_metadata(
        &self,
        name: &str,
        custom: &BTreeMap<String, String>,
        max_versions: Option<u64>,
    ) -> Result<(), StoreError> {
        let url = self.http.url(&[&self.mount, "metadata"], Some(name));
        let mut body = json!({ "custom_metadata": custom });
        if let Some(max) = max_versions {
            body["max_versions"] = json!(max);
        }
        self.call("write metadata", &self.shown("metadata", name), Method::POST, url, Some(&body), false)
            .await?;
        Ok(())
    }

    /// Merges `patch` into a path's `custom_metadata` (`None` deletes a key), leaving every other key alone.
    pub async fn patch_metadata(
        &self,
        name: &str,
        patch: &BTreeMap<String, Option<String>>,
    ) -> Result<(), StoreError> {
        let url = self.http.url(&[&self.mount, "metadata"], Some(name));
        let body = json!({ "custom_metadata": patch });
        self.call("patch metadata", &self.shown("metadata", name), Method::PATCH, url, Some(&body), true)
            .await?;
        Ok(())
    }

    /// The token's capabilities on each of `paths` (`sys/capabilities-self`).
    pub async fn capabilities(&self, paths: &[String]) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let url = self.http.url(&["sys", "capabilities-self"], None);
        let body = json!({ "paths": paths });
        let answer = self
            .call("read capabilities", "sys/capabilities-self", Method::POST, url, Some(&body), false)
            .await?;
        let data = answer.and_then(|mut b| b.get_mut("data").map(Value::take)).unwrap_or(Value::Null);
        let mut found = BTreeMap::new();
        for path in paths {
            let caps = data
                .get(path)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            found.insert(path.clone(), caps);
        }
        Ok(found)
    }

    pub fn mount(&self) -> &str {
        &self.mount
    }
}
