//! [`Auth`]: the Vault token every request carries, where it comes from, and keeping it alive.
//!
//! - **Token file** (`VaultAuth::TokenFile`): the token is whatever the file holds (a Vault Agent sink, a
//!   systemd credential). The file is read again whenever its modification time or length changes, and once
//!   more when Vault refuses the token; renewing it is the job of whoever writes the file.
//! - **AppRole** and **Kubernetes**: `POST /v1/auth/<mount>/login` (role_id + the secret_id read from its file
//!   at each login; or role + the service-account JWT read from its file at each login, since the kubelet
//!   rotates it). The token is renewed with `auth/token/renew-self` at about two thirds of its TTL when it is
//!   renewable, and replaced by a fresh login when it is not, when renewal fails, or when it has expired.
//!
//! Renewal happens on the request path, before the request that finds it due, not in a background task: an
//! idle store keeps no task alive, and a token that expired while idle is replaced by a login. The state sits
//! behind one async mutex, so concurrent requests log in once. Tokens, secret ids and JWTs are kept in zeroizing
//! strings (the JSON body of a login is the one short-lived plain copy) and never logged.

use super::client::Http;
use super::errors::{self, Call};
use super::{BACKEND, VaultAuth};
use crate::store::StoreError;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

/// A token and when to act on it.
#[derive(Default)]
struct State {
    token: Option<Zeroizing<String>>,
    /// When to renew (two thirds of the TTL); `None` for a token that does not expire.
    renew_at: Option<Instant>,
    /// When it expires; after that only a login helps.
    expires_at: Option<Instant>,
    renewable: bool,
    /// The token file's modification time and length when it was last read.
    file_stamp: Option<(Option<SystemTime>, u64)>,
}

pub(super) struct Auth {
    method: VaultAuth,
    state: Mutex<State>,
}

impl std::fmt::Debug for Auth {
    /// The method, never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("method", &self.method).finish_non_exhaustive()
    }
}

fn unauthenticated(detail: String) -> StoreError {
    StoreError::Unauthenticated { backend: BACKEND, detail }
}

/// Reads a credential file, trimmed. Its content never reaches an error.
async fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>, StoreError> {
    let text = Zeroizing::new(tokio::fs::read_to_string(path).await.map_err(|e| {
        unauthenticated(format!("the {what} file `{}` cannot be read: {}", path.display(), e.kind()))
    })?);
    let trimmed = Zeroizing::new(text.trim().to_owned());
    if trimmed.is_empty() {
        return Err(unauthenticated(format!("the {what} file `{}` is empty", path.display())));
    }
    Ok(trimmed)
}

async fn stamp(path: &Path) -> Option<(Option<SystemTime>, u64)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    Some((meta.modified().ok(), meta.len()))
}

impl Auth {
    /// Reads the token file, or logs in: a store that cannot authenticate fails at start, with the reason.
    pub async fn new(method: VaultAuth, http: &Http) -> Result<Self, StoreError> {
        let auth = Self { method, state: Mutex::new(State::default()) };
        {
            let mut state = auth.state.lock().await;
            auth.refresh(http, &mut state, true).await?;
        }
        Ok(auth)
    }

    /// The token to send now, renewed or replaced first if that is due.
    pub async fn token(&self, http: &Http) -> Result<Zeroizing<String>, StoreError> {
        let mut state = self.state.lock().await;
        self.refresh(http, &mut state, false).await?;
        state.token.clone().ok_or_else(|| unauthenticated("no token".into()))
    }

    /// Vault refused `rejected`. Replaces it if that can help: a login for AppRole and Kubernetes, the file read
    /// again for a token file (helps only if it now holds another token). Returns whether to try again.
    pub async fn rejected(&self, http: &Http, rejected: &str) -> bool {
        let mut state = self.state.lock().await;
        if state.token.as_deref().map(String::as_str) != Some(rejected) {
            // Another request already replaced it.
            return true;
        }
        let result = match &self.method {
            VaultAuth::TokenFile(_) => {
                state.file_stamp = None;
                self.refresh(http, &mut state, false).await
            }
            _ => self.login(http, &mut state).await,
        };
        match result {
            Ok(()) => state.token.as_deref().map(String::as_str) != Some(rejected),
            Err(e) => {
                tracing::warn!(error = %e, "could not replace the token Vault refused");
                false
            }
        }
    }

    async fn refresh(&self, http: &Http, state: &mut State, first: bool) -> Result<(), StoreError> {
        if let VaultAuth::TokenFile(path) = &self.method {
            let now = stamp(path).await;
            if first || state.token.is_none() || now.is_none() || now != state.file_stamp {
                state.token = Some(read_secret_file(path, "token").await?);
                state.file_stamp = now;
            }
            return Ok(());
        }
        let now = Instant::now();
        let expired = state.expires_at.is_some_and(|at| now >= at);
        if state.token.is_none() || expired {
            return self.login(http, state).await;
        }
        if state.renew_at.is_some_and(|at| now >= at) {
            if state.renewable {
                match self.renew(http, state).await {
                    Ok(()) => return Ok(()),
                    Err(e) => tracing::info!(error = %e, "token renewal failed; logging in again"),
                }
            }
            return self.login(http, state).await;
        }
        Ok(())
    }

    async fn login(&self, http: &Http, state: &mut State) -> Result<(), StoreError> {
        let (mount, body) = match &self.method {
            VaultAuth::TokenFile(_) => return Ok(()),
            VaultAuth::AppRole { mount, role_id, secret_id_file } => {
                let secret_id = read_secret_file(secret_id_file, "secret_id").await?;
                (mount, json!({ "role_id": role_id, "secret_id": secret_id.as_str() }))
            }
            VaultAuth::Kubernetes { mount, role, token_file } => {
                let jwt = read_secret_file(token_file, "service-account token").await?;
                (mount, json!({ "role": role, "jwt": jwt.as_str() }))
            }
        };
        let url = http.url(&["auth", mount, "login"], None);
        let shown = format!("auth/{mount}/login");
        let answer = http.send(Method::POST, url, None, Some(&body), false).await;
        drop(body);
        let answer =
            answer.map_err(|f| login_error(errors::classify(Call { op: "log in", path: &shown }, f)))?;
        self.adopt(state, answer, &shown)?;
        tracing::info!(mount = %mount, "logged in to Vault");
        Ok(())
    }

    async fn renew(&self, http: &Http, state: &mut State) -> Result<(), StoreError> {
        let token = state.token.clone().ok_or_else(|| unauthenticated("no token to renew".into()))?;
        let url = http.url(&["auth", "token", "renew-self"], None);
        let shown = "auth/token/renew-self";
        let answer = http
            .send(Method::POST, url, Some(&token), Some(&json!({})), false)
            .await
            .map_err(|f| errors::classify(Call { op: "renew the token", path: shown }, f))?;
        self.adopt(state, answer, shown)?;
        tracing::debug!("renewed the Vault token");
        Ok(())
    }

    /// Takes the token and its lease from a login or renewal answer (`auth.client_token`, `lease_duration`).
    fn adopt(&self, state: &mut State, answer: Option<Value>, shown: &str) -> Result<(), StoreError> {
        let auth = answer.as_ref().and_then(|a| a.get("auth"));
        let token =
            auth.and_then(|a| a.get("client_token")).and_then(Value::as_str).filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(unauthenticated(format!("`{shown}` answered without a token")));
        };
        let lease = auth.and_then(|a| a.get("lease_duration")).and_then(Value::as_u64).unwrap_or(0);
        let now = Instant::now();
        state.token = Some(Zeroizing::new(token.to_owned()));
        state.renewable = auth.and_then(|a| a.get("renewable")).and_then(Value::as_bool).unwrap_or(false);
        (state.renew_at, state.expires_at) = if lease == 0 {
            (None, None)
        } else {
            // Counted as expired a little early (a tenth of the TTL, at most 5 s), so that a request is not
            // sent with a token that dies on the way.
            let ttl = Duration::from_secs(lease);
            (Some(now + ttl * 2 / 3), Some(now + ttl - (ttl / 10).min(Duration::from_secs(5))))
        };
        Ok(())
    }
}

/// A login refused with 400 (a bad role or secret_id: Vault answers `invalid role or secret ID`) or 403 is the
/// credentials' fault: `Unauthenticated`.
fn login_error(err: StoreError) -> StoreError {
    match err {
        StoreError::Invalid { detail, .. } | StoreError::PermissionDenied { detail, .. } => {
            unauthenticated(detail)
        }
        other => other,
    }
}

/// Kubernetes' default service-account token path.
pub const DEFAULT_KUBERNETES_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

impl VaultAuth {
    /// Kubernetes auth at the default mount with the pod's own service-account token.
    pub fn kubernetes(role: impl Into<String>) -> Self {
        Self::Kubernetes {
            mount: "kubernetes".into(),
            role: role.into(),
            token_file: PathBuf::from(DEFAULT_KUBERNETES_TOKEN),
        }
    }

    /// AppRole auth at the default mount.
    pub fn approle(role_id: impl Into<String>, secret_id_file: impl Into<PathBuf>) -> Self {
        Self::AppRole {
            mount: "approle".into(),
            role_id: role_id.into(),
            secret_id_file: secret_id_file.into(),
        }
    }
}
