//! How the official client reaches the fake: a fixed token, and an `HttpClient` that sends requests for the
//! vault's public address to the fake's plain-HTTP port.
//!
//! The client's bearer policy refuses any URL that is not https, and its challenge check wants the request host
//! to end in `.vault.azure.net`, so the client keeps talking to `https://myvault.vault.azure.net`; only the
//! transport, below both checks, rewrites the address. Any other host is refused rather than sent out.

use super::FAKE_TOKEN;
use super::vault::VAULT_URL;
use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{AsyncRawResponse, HttpClient, Request, Url};
use azure_core::time::{Duration, OffsetDateTime};
use std::sync::{Arc, Mutex};

/// A credential that hands out one fixed token and records the scopes it was asked for.
#[derive(Debug, Default)]
pub struct FixedToken {
    pub token: String,
    pub scopes: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl TokenCredential for FixedToken {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.scopes.lock().expect("the scopes lock").extend(scopes.iter().map(|s| s.to_string()));
        let token = if self.token.is_empty() { FAKE_TOKEN.to_owned() } else { self.token.clone() };
        Ok(AccessToken::new(token, OffsetDateTime::now_utc() + Duration::hours(1)))
    }
}

/// Sends `https://myvault.vault.azure.net/...` to `http://127.0.0.1:PORT/...`.
#[derive(Debug)]
pub struct Rewrite {
    pub inner: reqwest::Client,
    /// `http://127.0.0.1:PORT`
    pub local: String,
}

#[async_trait]
impl HttpClient for Rewrite {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let url = request.url().as_str();
        let Some(rest) = url.strip_prefix(VAULT_URL) else {
            return Err(azure_core::Error::with_message(
                ErrorKind::Other,
                format!("the Key Vault fake's transport only serves {VAULT_URL}, not {url}"),
            ));
        };
        let local = Url::parse(&format!("{}{rest}", self.local))
            .map_err(|e| azure_core::Error::with_message(ErrorKind::Other, e.to_string()))?;
        let mut rewritten = request.clone();
        *rewritten.url_mut() = local;
        self.inner.execute_request(&rewritten).await
    }
}
