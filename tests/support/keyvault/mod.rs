//! `FakeKeyVault`: a faithful fake of the Azure Key Vault secrets data plane, for driving the official
//! `SecretClient` (and so the `azure_key_vault` store) in tests. No Key Vault emulator exists, so this one is
//! built from the service's documented behaviour (reference/test-servers.md, "Azure Key Vault").
//!
//! What it does like Key Vault: the mandatory bearer challenge (`401` + `WWW-Authenticate` naming the tenant and
//! `resource="https://vault.azure.net"`) on every request without the token, so nothing without a bearer is
//! ever stored; `api-version` required; SetSecret, GetSecret (latest via `/secrets/NAME/`, or by version),
//! UpdateSecret, GetSecretVersions, DeleteSecret (soft), GetDeletedSecret, recover and purge; the wire shapes
//! (`value`, `id` = `https://myvault.vault.azure.net/secrets/NAME/VERSION`, `contentType`, `tags`,
//! `attributes`), errors as `{"error":{"code","message","innererror"}}`; its limits (names, 15 tags, content
//! type, 25 KB values); a disabled version refused on GET; a deleted name reserved (`409`
//! `ObjectIsDeletedButRecoverable`). Faults are switched on from the test: throttling (`429` + `Retry-After`)
//! and a missing access-policy permission (`403` "does not have secrets set permission").
//!
//! Two ways in: [`FakeKeyVault::start`] serves plain HTTP and gives the client a transport that rewrites the
//! vault's address to it; [`FakeKeyVault::start_tls`] serves TLS with a CA made for the test, and gives the
//! client a reqwest client that resolves the vault's name to it and verifies the certificate.

pub mod routes;
pub mod tls;
pub mod transport;
pub mod vault;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_security_keyvault_secrets::SecretClientOptions;
use routes::{Seen, Shared};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_util::sync::{CancellationToken, DropGuard};
pub use vault::{Permission, StoredVersion, VAULT_URL};

/// The only token the fake accepts.
pub const FAKE_TOKEN: &str = "rotavault-fake-key-vault-token";
/// The tenant the challenge names.
pub const TENANT: &str = "72f988bf-0000-4000-8000-00000000cafe";
const HOST: &str = "myvault.vault.azure.net";

#[derive(Clone)]
pub struct FakeKeyVault {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// The CA of a TLS fake.
    ca: Option<Vec<u8>>,
    scopes: Arc<Mutex<Vec<String>>>,
    /// Stops the server when the last handle goes.
    _serving: Arc<DropGuard>,
}

impl FakeKeyVault {
    /// Plain HTTP on 127.0.0.1, reached through a rewriting transport.
    pub async fn start() -> Self {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake");
        let addr = tcp.local_addr().expect("the fake's address");
        let (shared, stop) = Self::serve(tcp);
        Self::handle(shared, addr, None, stop)
    }

    /// TLS on 127.0.0.1 with a certificate for `myvault.vault.azure.net` from a CA generated here.
    pub async fn start_tls() -> Self {
        let pki = tls::generate(HOST);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake");
        let addr = tcp.local_addr().expect("the fake's address");
        let listener = tls::TlsListener { tcp, acceptor: tokio_rustls::TlsAcceptor::from(pki.server) };
        let (shared, stop) = Self::serve(listener);
        Self::handle(shared, addr, Some(pki.ca_der.to_vec()), stop)
    }

    fn serve<L>(listener: L) -> (Arc<Shared>, CancellationToken)
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new().fallback(routes::dispatch).with_state(shared.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned()).await;
        });
        (shared, stop)
    }

    fn handle(shared: Arc<Shared>, addr: SocketAddr, ca: Option<Vec<u8>>, stop: CancellationToken) -> Self {
        Self { shared, addr, ca, scopes: Arc::default(), _serving: Arc::new(stop.drop_guard()) }
    }

    /// What the store is configured with: the vault's public address, never the fake's.
    pub fn vault_url(&self) -> &'static str {
        VAULT_URL
    }

    /// Where the fake really listens: `http://127.0.0.1:PORT` (or `https://` for a TLS fake), for raw requests.
    pub fn local_url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The test CA of a TLS fake, DER.
    pub fn ca_der(&self) -> Option<&[u8]> {
        self.ca.as_deref()
    }

    /// Client options reaching this fake: its transport, no retries (a test sees every answer), and
    /// `verify_challenge_resource` left on.
    pub fn secret_client_options(&self) -> SecretClientOptions {
        let http: Arc<dyn azure_core::http::HttpClient> = match &self.ca {
            None => Arc::new(transport::Rewrite { inner: plain_client(), local: self.local_url() }),
            Some(ca) => Arc::new(self.tls_client(ca)),
        };
        let client_options = ClientOptions {
            transport: Some(Transport::new(http)),
            retry: RetryOptions::none(),
            ..Default::default()
        };
        SecretClientOptions { client_options, ..Default::default() }
    }

    /// A reqwest client for a TLS fake: the vault's name resolves here and only the test CA is trusted.
    pub fn tls_client(&self, ca: &[u8]) -> reqwest::Client {
        let ca = reqwest::Certificate::from_der(ca).expect("the test CA");
        reqwest::Client::builder()
            .resolve(HOST, self.addr)
            .tls_certs_only([ca])
            .no_proxy()
            .build()
            .expect("a TLS client for the fake")
    }

    /// The fixed token the fake accepts.
    pub fn credential(&self) -> Arc<dyn TokenCredential> {
        Arc::new(transport::FixedToken { token: FAKE_TOKEN.into(), scopes: self.scopes.clone() })
    }

    /// A credential whose token the fake refuses.
    pub fn wrong_credential(&self) -> Arc<dyn TokenCredential> {
        Arc::new(transport::FixedToken { token: "not-the-fake-token".into(), scopes: self.scopes.clone() })
    }

    /// The scopes credentials from this fake were asked for.
    pub fn token_scopes(&self) -> Vec<String> {
        self.scopes.lock().expect("the scopes lock").clone()
    }

    /// A secret as another tool writes it: a value, no tags. Returns the version id.
    pub fn plant_foreign(&self, name: &str, value: &str) -> String {
        self.vault().plant(name, value)
    }

    /// `DELETE /secrets/NAME`: deleted but recoverable, the name reserved. False if there was no such secret.
    pub fn soft_delete(&self, name: &str) -> bool {
        self.vault().delete(name).is_ok()
    }

    pub fn is_deleted(&self, name: &str) -> bool {
        self.vault().is_deleted(name)
    }

    /// Disables the latest version of `name` (as `az keyvault secret set-attributes --enabled false`).
    pub fn disable_latest(&self, name: &str) -> bool {
        self.vault().disable_latest(name)
    }

    /// The next `n` authenticated requests answer `429` with `Retry-After`.
    pub fn throttle_next(&self, n: u32) {
        self.vault().throttle_next(n);
    }

    /// The next `n` authenticated requests needing `permission` ("get", "set", "list", "delete", "recover",
    /// "purge") answer `403` "does not have secrets PERMISSION permission".
    pub fn deny_next(&self, permission: &str, n: u32) {
        let permission = Permission::parse(permission).expect("a Key Vault secret permission");
        self.vault().deny_next(permission, n);
    }

    /// Every version of `name`, oldest first, values included (for assertions).
    pub fn versions(&self, name: &str) -> Vec<StoredVersion> {
        self.vault().versions(name)
    }

    /// The names of the secrets that exist (not deleted).
    pub fn names(&self) -> Vec<String> {
        self.vault().names()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared.log.lock().expect("the log lock").clone()
    }

    fn vault(&self) -> std::sync::MutexGuard<'_, vault::Vault> {
        self.shared.vault.lock().expect("the vault lock")
    }
}

/// A client that never goes through a proxy from the environment: the fake is on loopback.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("an HTTP client")
}
