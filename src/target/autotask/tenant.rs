//! `AutotaskTenant`: what every job on one Autotask tenant shares, and the one place requests are sent from.
//!
//! Autotask is a shared service: a tenant's 10,000 requests an hour and its 3 threads per integration code and
//! endpoint serve every integration on it, not just rotavault. So all of a tenant's jobs share one HTTP client,
//! one zone cache, one hourly budget ([`Budget`]) and one semaphore per endpoint (`threads`, 1 by default), and every
//! call goes through a [`Patience`], which backs off on throttling with exponential, jittered waits
//! up to `max_backoff` and a bounded number of attempts, then gives up with `Transient` and the wait it would have
//! made, for the engine to schedule.
//!
//! What is retried here is only what certainly did not happen (nothing was sent, or Autotask refused for load);
//! an answer lost after sending is reported at once, because for `update` it is the engine's "unknown" and for
//! everything else the engine has its own retries. A `401` is never retried: each one is a failed login that
//! counts toward the account's lockout.
//!
//! Errors are written from what rotavault knows (method, path, status, the server's error text), never from
//! `reqwest`'s own error, request or headers, so no secret header or body can reach a message.

use super::KIND;
use super::admin::AdminSource;
use super::answer::retry_after;
use super::budget::Budget;
pub(super) use super::patience::{ATTEMPTS, Attempt, Patience};
use super::requests::RequestCounts;
use super::zone::{REST_VERSION, check_transport, without_version};
use super::zone_cache::ZoneCache;
use crate::lockout::{LockoutError, LockoutGuard, Login};
use crate::secret::redact::Redactor;
use crate::store::Metadata;
use crate::target::TargetError;
use reqwest::header::HeaderValue;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

mod zones;

/// Autotask's own zone lookup host.
pub const DEFAULT_ZONE_LOOKUP_URL: &str = "https://webservices2.autotask.net/atservicesrest/";

/// A TCP or TLS connect that takes longer than this will not succeed; failing fast leaves time for a retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bigger than any answer rotavault asks for; a bound so that a misbehaving proxy cannot fill memory.
const MAX_BODY: usize = 4 << 20;

/// How one tenant is reached and how much of it rotavault may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantSettings {
    /// Base of the zone lookup (`{base}V1.0/zoneInformation?user=`); the sandbox and tests override it.
    pub zone_lookup_url: String,
    /// Requests in flight per endpoint (`Resources`, `ThresholdInformation`, SOAP), 1..=3. Autotask allows 3 per
    /// integration code and endpoint to everyone on the tenant together.
    pub threads: usize,
    /// Authenticated requests rotavault may send to the tenant in any 60 minutes.
    pub hourly_budget: u32,
    /// Timeout of one HTTP call, answer included.
    pub timeout: Duration,
    /// Longest wait between two attempts of one call; a `Retry-After` above it is left to the engine.
    pub max_backoff: Duration,
    /// Where resolved zones are kept between processes (`<state_dir>/zones/<target>.json`); `None` keeps them in
    /// memory only.
    pub zone_cache: Option<PathBuf>,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            zone_lookup_url: DEFAULT_ZONE_LOOKUP_URL.into(),
            threads: 1,
            hourly_budget: 1000,
            timeout: Duration::from_secs(30),
            max_backoff: Duration::from_secs(10),
            zone_cache: None,
        }
    }
}

impl TenantSettings {
    /// The longest one call can take: every attempt up to `timeout`, and a back-off of up to `max_backoff` between
    /// two (a `Retry-After` longer than that ends the call instead; see [`Patience::settle`]).
    pub fn longest_call(&self) -> Duration {
        self.timeout.saturating_mul(ATTEMPTS).saturating_add(self.max_backoff.saturating_mul(ATTEMPTS - 1))
    }

    /// The longest an apply's requests can take: a SOAP `query` of the resource, then its `update`, one call each.
    /// Waits that send nothing (the tenant's gate, a pending admin rotation) are not requests and are not counted.
    pub fn longest_apply(&self) -> Duration {
        self.longest_call().saturating_mul(2)
    }
}

/// The endpoints Autotask's thread limit counts separately (the first path segment after `V1.0/`, and SOAP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Endpoint {
    Resources,
    ThresholdInformation,
    Soap,
}

impl Endpoint {
    fn index(self) -> usize {
        match self {
            Self::Resources => 0,
            Self::ThresholdInformation => 1,
            Self::Soap => 2,
        }
    }
}

/// An HTTP answer, whatever its status.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

/// Why there is no answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// Nothing reached Autotask: DNS, connection refused, TLS, connect timeout.
    NotSent(String),
    /// The request may have reached Autotask, and no complete answer came: a timeout, a connection cut.
    Lost(String),
    /// The hourly budget is spent; try after this long.
    OverBudget(Duration),
    /// The request cannot be made at all (a malformed URL or header value); retrying cannot help.
    Broken(String),
    /// The lockout guard allows no login as this account now; nothing was sent.
    Guard(LockoutError),
}

pub(super) fn transient(detail: String, retry_after: Option<Duration>) -> TargetError {
    TargetError::Transient { target: KIND, detail, retry_after }
}

pub(super) fn invalid(detail: String) -> TargetError {
    TargetError::Invalid { target: KIND, detail }
}

/// What a failure of a call that changes nothing (a query, a login check) means.
pub(super) fn safe_failure<T, E: From<TargetError>>(failure: Failure, what: &str) -> Attempt<T, E> {
    match failure {
        Failure::NotSent(detail) => Attempt::Again { detail, retry_after: None, at_once: false },
        Failure::Lost(detail) => Attempt::Stop(transient(detail, None).into()),
        Failure::OverBudget(wait) => Attempt::Stop(
            transient(
                format!("{what}: rotavault's hourly request budget for this tenant is spent"),
                Some(wait),
            )
            .into(),
        ),
        Failure::Broken(detail) => Attempt::Stop(invalid(detail).into()),
        Failure::Guard(e) => Attempt::Stop(guard_failure(e).into()),
    }
}

/// What the lockout guard's refusal means: nothing was sent; a person must act when only they can lower the
/// count, and otherwise it is worth trying again once the logins in flight have answered.
pub(super) fn guard_failure(e: LockoutError) -> TargetError {
    if e.needs_a_person() {
        TargetError::Blocked {
            target: KIND,
            detail: format!(
                "{e}. Check the account in Autotask (unlock it if it is locked), then `rotavault resolve JOB`"
            ),
        }
    } else {
        transient(format!("{e}; nothing was sent"), Some(Duration::from_secs(30)))
    }
}

/// The lockout guard's key of an Autotask account.
pub(super) fn account_key(user: &str) -> String {
    format!("{KIND}:{}", user.trim().to_ascii_lowercase())
}

/// Which stored version of a credential this is, for the guard's memory of refusals: the store's metadata, never
/// anything of the value.
pub(super) fn credential_version(metadata: &Metadata) -> String {
    format!(
        "generation {} of {}{}",
        metadata.generation,
        metadata.rotated_at.to_rfc3339(),
        metadata.rotation_id.as_ref().map(|r| format!(", rotation {r}")).unwrap_or_default()
    )
}

/// One per configured `[targets.X]`: shared by every job on the tenant.
pub struct AutotaskTenant {
    settings: TenantSettings,
    lookup: reqwest::Url,
    /// `None` for a tenant whose jobs are all manual (`apply = "manual"`): nothing is set through it.
    admin: Option<AdminSource>,
    http: reqwest::Client,
    zones: ZoneCache,
    budget: Mutex<Budget>,
    requests: RequestCounts,
    threads: [Semaphore; 3],
    /// One password change at a time on the tenant: while an apply holds it, no other apply can change the admin's
    /// password under it, so no apply ever presents an admin secret that just died.
    password_changes: tokio::sync::Mutex<()>,
    /// Every admin login goes through it, and it remembers an admin credential Autotask refused, for every process
    /// on the host.
    lockout: Arc<LockoutGuard>,
}

impl fmt::Debug for AutotaskTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutotaskTenant")
            .field("settings", &self.settings)
            .field("admin", &self.admin.as_ref().map(AdminSource::label))
            .finish_non_exhaustive()
    }
}

impl AutotaskTenant {
    /// A tenant whose admin logins are counted by a guard of its own, in memory (tests and trials);
    /// [`AutotaskTenant::with_lockout`] shares the engine's.
    pub fn new(settings: TenantSettings, admin: AdminSource) -> Result<Arc<Self>, TargetError> {
        let lockout = Arc::new(LockoutGuard::in_memory(3, Arc::new(crate::schedule::SystemClock)));
        Self::with_lockout(settings, Some(admin), lockout)
    }

    pub fn with_lockout(
        settings: TenantSettings,
        admin: Option<AdminSource>,
        lockout: Arc<LockoutGuard>,
    ) -> Result<Arc<Self>, TargetError> {
        if !(1..=3).contains(&settings.threads) {
            return Err(invalid(format!(
                "threads = {}: Autotask allows 3 concurrent requests per integration code and endpoint; use 1 to 3",
                settings.threads
            )));
        }
        if settings.hourly_budget == 0 {
            return Err(invalid("hourly_budget = 0 would forbid every request".into()));
        }
        if settings.timeout.is_zero() {
            return Err(invalid("the HTTP timeout must be above zero".into()));
        }
        let mut base = settings.zone_lookup_url.trim().to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        let mut lookup = reqwest::Url::parse(&base).map_err(|e| {
            invalid(format!("zone_lookup_url `{}` is not a URL ({e})", settings.zone_lookup_url))
        })?;
        check_transport(&lookup).map_err(|why| invalid(format!("zone_lookup_url {why}")))?;
        without_version(&mut lookup);
        if !lookup.path().ends_with('/') {
            let path = format!("{}/", lookup.path());
            lookup.set_path(&path);
        }
        let lookup = lookup.join(&format!("{REST_VERSION}/zoneInformation")).map_err(|e| {
            invalid(format!("zone_lookup_url `{}` cannot take a path ({e})", settings.zone_lookup_url))
        })?;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(CONNECT_TIMEOUT))
            // A redirect would carry the `Secret` header to wherever it points; Autotask never redirects API calls.
            .redirect(reqwest::redirect::Policy::none())
            // Every retry is decided here, where the lockout and the budget are known.
            .retry(reqwest::retry::never())
            .user_agent(concat!("rotavault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("the HTTP client cannot be built: {e}")))?;
        let threads = [(); 3].map(|()| Semaphore::new(settings.threads));
        let zones = ZoneCache::new(settings.zone_cache.clone());
        Ok(Arc::new(Self {
            budget: Mutex::new(Budget::new(settings.hourly_budget)),
            requests: RequestCounts::default(),
            settings,
            lookup,
            admin,
            http,
            zones,
            threads,
            password_changes: tokio::sync::Mutex::new(()),
            lockout,
        }))
    }

    pub fn settings(&self) -> &TenantSettings {
        &self.settings
    }

    /// `((endpoint, status), count)` of every request so far: endpoint `zone_lookup`, `resources`,
    /// `threshold_information` or `soap`; status the HTTP status, or `not_sent`, `lost`, `over_budget`, `guard`
    /// (the lockout guard allowed no login) or `broken` (the request could not be built).
    pub fn request_counts(&self) -> Vec<((&'static str, String), u64)> {
        self.requests.snapshot()
    }

    /// Authenticated requests counted against the hourly budget in the last hour, and the budget.
    pub fn budget_used(&self) -> (u32, u32) {
        let used = self.budget.lock().unwrap_or_else(|p| p.into_inner()).used(tokio::time::Instant::now());
        (used, self.settings.hourly_budget)
    }

    /// The admin credential's source; an error for a tenant configured without one (every job manual).
    pub(super) fn admin(&self) -> Result<&AdminSource, TargetError> {
        self.admin.as_ref().ok_or_else(|| {
            invalid(
                "this target has no `admin` (apply = \"manual\"): rotavault sets no password on it; a person sets it \
                 in the Autotask UI and pipes it to `rotavault import`"
                    .into(),
            )
        })
    }

    pub(super) async fn password_change(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.password_changes.lock().await
    }

    pub(super) fn lockout(&self) -> &LockoutGuard {
        &self.lockout
    }

    /// Refuses, without a login, an admin credential Autotask already refused (in any process), until the store
    /// holds another one. A new credential there means a person acted: its account's count starts afresh.
    pub(super) fn admin_may_log_in(&self, admin: &str, metadata: &Metadata) -> Result<(), TargetError> {
        let source = self.admin()?;
        let location = source.location();
        let refusal = self.lockout.refusal(&location).map_err(|e| transient(e.to_string(), None))?;
        match refusal {
            Some(refusal) if refusal.version == credential_version(metadata) => {
                Err(TargetError::Blocked { target: KIND, detail: source.refused_detail(&refusal) })
            }
            Some(_) => {
                tracing::info!(
                    admin,
                    "a new admin credential was stored since Autotask refused the last one"
                );
                self.lockout.clear_refusal(&location).map_err(|e| transient(e.to_string(), None))?;
                self.lockout.reset(&account_key(admin)).map_err(|e| transient(e.to_string(), None))?;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Remembers, for every process, that Autotask refused this version of the admin credential.
    pub(super) fn admin_refused(&self, metadata: &Metadata, reason: &str) {
        let Ok(source) = self.admin() else { return };
        if let Err(e) = self.lockout.refuse(&source.location(), &credential_version(metadata), reason) {
            tracing::error!(error = %e, "could not record that Autotask refused the admin credential");
        }
    }

    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends one request and reads its answer. `endpoint` is `None` for the unauthenticated zone lookup, which
    /// neither Autotask's limits nor rotavault's budget count. `what` (method and path) is all an error says.
    /// `login`: the account the request logs in as, when this is where its login is counted (the admin's; a
    /// job's verify is counted by the engine): the lockout guard records it before it is sent, and its answer
    /// after (2xx accepted, 401 refused, no answer unknown, anything else not a verdict on the credential).
    pub(super) async fn exchange(
        &self,
        endpoint: Option<Endpoint>,
        what: &str,
        request: reqwest::RequestBuilder,
        login: Option<&str>,
    ) -> Result<Answer, Failure> {
        let result = self.exchange_uncounted(endpoint, what, request, login).await;
        self.requests.count(endpoint, &result);
        result
    }

    async fn exchange_uncounted(
        &self,
        endpoint: Option<Endpoint>,
        what: &str,
        request: reqwest::RequestBuilder,
        login: Option<&str>,
    ) -> Result<Answer, Failure> {
        // Building validates the URL and headers; its error is not shown, since it could quote a header.
        let request = request.build().map_err(|_| {
            Failure::Broken(format!("{what}: the request cannot be built (a malformed URL or header)"))
        })?;
        let _permit = match endpoint {
            Some(endpoint) => {
                let now = tokio::time::Instant::now();
                self.budget
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .spend(now)
                    .map_err(Failure::OverBudget)?;
                Some(
                    self.threads[endpoint.index()]
                        .acquire()
                        .await
                        .map_err(|_| Failure::Broken(format!("{what}: the thread limit was closed")))?,
                )
            }
            None => None,
        };
        let login = match login {
            Some(account) => {
                Some(self.lockout.take(account, 0, self.settings.timeout).await.map_err(Failure::Guard)?)
            }
            None => None,
        };
        let answer = self.send(request, what).await;
        match (&answer, login) {
            (_, None) => {}
            (Ok(a), Some(login)) if (200..300).contains(&a.status) => login.accepted(),
            (Ok(a), Some(login)) if a.status == 401 => login.refused(),
            (Ok(_) | Err(Failure::NotSent(_)), Some(login)) => login.not_sent(),
            (Err(_), Some(login)) => Login::unknown(login),
        }
        answer
    }

    async fn send(&self, request: reqwest::Request, what: &str) -> Result<Answer, Failure> {
        let response = self.http.execute(request).await.map_err(|e| {
            let why = root_cause(&e);
            if e.is_connect() {
                Failure::NotSent(format!("{what}: could not connect: {why}"))
            } else if e.is_timeout() {
                Failure::Lost(format!("{what}: no answer within {:?}", self.settings.timeout))
            } else {
                Failure::Lost(format!("{what}: the connection failed after the request was sent: {why}"))
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), chrono::Utc::now());
        let mut response = response;
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_BODY => body.extend_from_slice(&chunk),
                Ok(Some(_)) => {
                    return Err(Failure::Lost(format!(
                        "{what}: HTTP {status} with an answer over {MAX_BODY} bytes"
                    )));
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure::Lost(format!(
                        "{what}: HTTP {status}, then the answer was cut off: {}",
                        root_cause(&e)
                    )));
                }
            }
        }
        tracing::trace!(what, status, "answered");
        Ok(Answer { status, retry_after, body: String::from_utf8_lossy(&body).into_owned() })
    }

    /// The back-off state of one call: see [`Patience::settle`].
    pub(super) fn patience<'a>(&self, what: &'a str) -> Patience<'a> {
        Patience::new(what, self.settings.max_backoff)
    }
}

/// The innermost error's text (an I/O or protocol error), never `reqwest::Error`'s own, which names the URL and
/// whose chain is the only thing shown.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Redactor::none().excerpt(&cause.to_string(), super::answer::EXCERPT)
}

/// A header value holding a secret: marked sensitive, so that `http`'s `Debug` of it and of any header map that
/// holds it prints `Sensitive` instead of the value.
pub(super) fn secret_header(value: &str, what: &str) -> Result<HeaderValue, TargetError> {
    let mut header = HeaderValue::from_str(value)
        .map_err(|_| invalid(format!("{what} has characters an HTTP header cannot carry")))?;
    header.set_sensitive(true);
    Ok(header)
}

/// `Authorization: Basic base64(user:password)`, built in zeroizing buffers.
pub(super) fn basic_auth(user: &str, password: &str) -> Result<HeaderValue, TargetError> {
    use base64::Engine as _;
    let mut plain = Zeroizing::new(String::with_capacity(user.len() + password.len() + 1));
    plain.push_str(user);
    plain.push(':');
    plain.push_str(password);
    let mut header = Zeroizing::new(String::with_capacity(plain.len() * 4 / 3 + 16));
    header.push_str("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(plain.as_bytes(), &mut header);
    secret_header(&header, "the admin credential")
}
