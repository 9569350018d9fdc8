//! The Autotask sandbox: an HTTP simulator of the parts of Autotask PSA that rotavault touches, serving exactly
//! the wire shapes of docs/autotask-wire.md: REST zone lookup, header auth, `ThresholdInformation` and
//! `Resources`; SOAP 1.6 `getZoneInfo`, `query` and `update` with password rules and history; lockout, the
//! hourly and thread limits, a propagation delay, and injectable faults. Tests, `rotavault demo` and people
//! trying rotavault without a tenant run it.
//!
//! The map: [`Seed`] (`seed.rs`) is the starting tenant; `tenant.rs` holds the state (resources, passwords,
//! lockout); `gate.rs` is the order every authenticated request passes; `rest.rs` (+ `filter.rs`) and `soap.rs`
//! (+ `soap_resource.rs`, `xml.rs`) are the two front ends over one field table (`fields.rs`); `limits.rs`, `faults.rs`,
//! `request_log.rs` and `inspect.rs` (the `/_sandbox/` HTTP controls) are what a test steers and reads.
//!
//! No password or `Secret` header value is ever logged, traced or served, except by the `/_sandbox/` inspection
//! interface, which exists to show them and is off unless asked for.

mod faults;
mod fields;
mod filter;
mod gate;
mod inspect;
mod limits;
mod password;
mod request_log;
mod rest;
mod seed;
mod soap;
mod soap_resource;
mod tenant;
mod xml;

pub use faults::{Call, ECHO_AUTHORIZATION, ECHO_PASSWORD, Fault, FaultAction};
pub use limits::ThreadLimitResponse;
pub use request_log::{Api, LoggedRequest};
pub use seed::{SecurityLevel, Seed, SeedError, SeedResource};

use axum::Router;
use axum::extract::{self, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use faults::FaultTable;
use limits::Limits;
use request_log::RequestLog;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tenant::Tenant;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where REST lives; zone lookup and the zone's REST base are both this (one host plays every zone).
const REST_PREFIX: &str = "/atservicesrest/";
const SOAP_PATH: &str = "/ATServices/1.6/atws.asmx";
const INSPECT_PREFIX: &str = "/_sandbox/";

/// Why the sandbox could not start or serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    #[error("sandbox: cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("sandbox: the listener has no local address: {0}")]
    LocalAddr(std::io::Error),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("sandbox: serving failed: {0}")]
    Serve(std::io::Error),
}

/// A running sandbox: its state and the controls tests use. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    inspect: bool,
    shutdown: CancellationToken,
    state: Mutex<State>,
    /// How many `commit_late` updates have landed: a test waits on it instead of sleeping.
    late_commits: watch::Sender<u64>,
    /// How many `commit_late` updates have arrived (admitted, landed or not): what a test must wait for to land.
    late_commits_received: watch::Sender<u64>,
}

/// Everything that changes, under one lock: never held across an `.await`.
pub(crate) struct State {
    pub(crate) tenant: Tenant,
    pub(crate) limits: Limits,
    pub(crate) faults: FaultTable,
    pub(crate) log: RequestLog,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.inner.addr).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Serves on `listener` until `shutdown` is cancelled; `inspect` turns on the `/_sandbox/` HTTP interface.
    pub async fn start(
        listener: TcpListener,
        seed: Seed,
        inspect: bool,
        shutdown: CancellationToken,
    ) -> Result<Sandbox, SandboxError> {
        let (sandbox, _serving) = Sandbox::launch(listener, seed, inspect, shutdown)?;
        Ok(sandbox)
    }

    fn launch(
        listener: TcpListener,
        seed: Seed,
        inspect: bool,
        shutdown: CancellationToken,
    ) -> Result<(Sandbox, tokio::task::JoinHandle<Result<(), SandboxError>>), SandboxError> {
        seed.validate()?;
        let addr = listener.local_addr().map_err(SandboxError::LocalAddr)?;
        let mut faults = FaultTable::default();
        for fault in &seed.faults {
            faults.add(fault.clone());
        }
        let state = State {
            tenant: Tenant::from_seed(&seed, Instant::now()),
            limits: Limits::new(seed.hourly_limit, seed.thread_limit, seed.thread_limit_response),
            faults,
            log: RequestLog::default(),
        };
        let sandbox = Sandbox {
            inner: Arc::new(Inner {
                addr,
                inspect,
                shutdown: shutdown.clone(),
                state: Mutex::new(state),
                late_commits: watch::Sender::new(0),
                late_commits_received: watch::Sender::new(0),
            }),
        };
        let app = Router::new().fallback(dispatch).with_state(sandbox.clone());
        tracing::info!(%addr, inspect, "sandbox: serving the Autotask simulator");
        let serving = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
                .map_err(SandboxError::Serve)
        });
        Ok((sandbox, serving))
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The base URL of this sandbox with a loopback host when it listens on every address.
    pub(crate) fn base_url(&self) -> String {
        let mut addr = self.inner.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        format!("http://{addr}")
    }

    /// The zone lookup base, e.g. `http://127.0.0.1:PORT/atservicesrest/`.
    pub fn zone_lookup_url(&self) -> String {
        format!("{}{REST_PREFIX}", self.base_url())
    }

    /// The SOAP endpoint, e.g. `http://127.0.0.1:PORT/ATServices/1.6/atws.asmx`.
    pub fn soap_url(&self) -> String {
        format!("{}{SOAP_PATH}", self.base_url())
    }

    /// The current password of `user` (set, even if not yet in effect).
    pub fn password_of(&self, user: &str) -> Option<String> {
        self.state().tenant.find(user).map(|a| a.password().to_string())
    }

    /// Whether a REST or SOAP login with this pair would succeed now (not locked, the password in effect, an
    /// API-only level). Counts nothing.
    pub fn authenticates(&self, user: &str, secret: &str) -> bool {
        self.state().tenant.would_accept(user, secret, Instant::now())
    }

    /// The consecutive failed-login counter of `user` (0 for an unknown user).
    pub fn failed_logins(&self, user: &str) -> u32 {
        self.state().tenant.find(user).map_or(0, |a| a.failed_logins)
    }

    /// The most consecutive failed logins `user` has ever reached in this sandbox (0 for an unknown user): the
    /// high-water mark of [`Sandbox::failed_logins`], which an accepted login or [`Sandbox::unlock`] does not
    /// lower.
    pub fn most_failed_logins(&self, user: &str) -> u32 {
        self.state().tenant.find(user).map_or(0, |a| a.most_failed_logins)
    }

    pub fn is_locked(&self, user: &str) -> bool {
        self.state().tenant.find(user).is_some_and(|a| a.locked)
    }

    /// Clears the lock and the failed-login counter, as the "Locked" box in the UI does.
    pub fn unlock(&self, user: &str) {
        if let Some(account) = self.state().tenant.find_mut(user) {
            account.locked = false;
            account.failed_logins = 0;
        }
    }

    /// Changes a password as a person in the Autotask UI would: at once (no propagation delay), without the
    /// password rules, and entered in the history. Does nothing for an unknown user.
    pub fn set_password_behind_the_back(&self, user: &str, password: &str) {
        let mut state = self.state();
        let id = state.tenant.find(user).map(|a| a.record.id());
        match id {
            Some(id) => state.tenant.set_password(id, password, Instant::now()),
            None => tracing::warn!(user, "sandbox: no such user to set a password for"),
        }
    }

    /// The resource of `user` in its REST shape (every field, no password).
    pub fn resource(&self, user: &str) -> Option<serde_json::Value> {
        self.state().tenant.find(user).map(|a| a.record.to_rest(None))
    }

    pub fn add_fault(&self, fault: Fault) {
        self.state().faults.add(fault);
    }

    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// The delay before a password set from now on is accepted.
    pub fn set_propagation_delay(&self, delay: Duration) {
        self.state().tenant.propagation_delay = delay;
    }

    pub fn set_thread_limit_response(&self, response: ThreadLimitResponse) {
        self.state().limits.response = response;
    }

    /// Every REST and SOAP request so far (the most recent 10,000), oldest first.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.state().log.entries()
    }

    /// Authenticated requests in the last 60 minutes (what `ThresholdInformation` reports).
    pub fn threshold_count(&self) -> u64 {
        self.state().limits.hourly_count(Instant::now())
    }

    /// Waits until `count` `commit_late` updates have landed since the sandbox started (at once if they have).
    pub async fn until_late_commits(&self, count: u64) {
        let mut landed = self.inner.late_commits.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail while it is borrowed here.
        let _ = landed.wait_for(|n| *n >= count).await;
    }

    /// How many `commit_late` updates have landed since the sandbox started.
    pub fn late_commits(&self) -> u64 {
        *self.inner.late_commits.borrow()
    }

    /// How many `commit_late` updates have arrived since the sandbox started, landed or not: a test that killed
    /// a client waits for this many to land ([`Sandbox::until_late_commits`]) to see the state settle.
    pub fn late_commits_received(&self) -> u64 {
        *self.inner.late_commits_received.borrow()
    }

    /// Waits until `count` `commit_late` updates have arrived (at once if they have).
    pub async fn until_late_commits_received(&self, count: u64) {
        let mut received = self.inner.late_commits_received.subscribe();
        let _ = received.wait_for(|n| *n >= count).await;
    }

    pub(crate) fn count_late_commit_received(&self) {
        self.inner.late_commits_received.send_modify(|n| *n += 1);
    }

    pub(crate) fn count_late_commit(&self) {
        self.inner.late_commits.send_modify(|n| *n += 1);
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving rather than poison every call.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) async fn until_shutdown(&self) {
        self.inner.shutdown.cancelled().await;
    }
}

/// Runs `rotavault sandbox --listen ADDR [--seed FILE] [--inspect]`: prints where the APIs are and serves until
/// `shutdown`. Without a seed file it serves [`Seed::demo`].
pub async fn serve_cli(
    listen: SocketAddr,
    seed: Option<PathBuf>,
    inspect: bool,
    shutdown: CancellationToken,
) -> Result<(), SandboxError> {
    let seed = match &seed {
        Some(path) => Seed::load(path)?,
        None => Seed::demo(),
    };
    let users: Vec<String> = seed.resources.iter().map(|r| r.user_name.clone()).collect();
    let listener =
        TcpListener::bind(listen).await.map_err(|source| SandboxError::Bind { addr: listen, source })?;
    let (sandbox, serving) = Sandbox::launch(listener, seed, inspect, shutdown)?;
    println!("Autotask sandbox listening on {}", sandbox.addr());
    println!("  zone lookup (REST): {}", sandbox.zone_lookup_url());
    println!("  SOAP endpoint:      {}", sandbox.soap_url());
    println!("  API users:          {}", users.join(", "));
    if inspect {
        println!(
            "  inspection:         {}{INSPECT_PREFIX}resources (shows passwords: test use only)",
            sandbox.base_url()
        );
    }
    match serving.await {
        Ok(result) => result,
        Err(join) => Err(SandboxError::Serve(std::io::Error::other(join))),
    }
}

/// `prefix` stripped from `path` without regard to case, the rest keeping its case.
fn strip_prefix_ci<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let head = path.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &path[prefix.len()..])
}

/// Every request lands here: paths are matched without regard to case, as Autotask's IIS does.
async fn dispatch(extract::State(sandbox): extract::State<Sandbox>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    if let Some(rest) = strip_prefix_ci(&path, REST_PREFIX) {
        return rest::handle(sandbox, rest, request).await;
    }
    if path.eq_ignore_ascii_case(SOAP_PATH) {
        return soap::handle(sandbox, request).await;
    }
    if let Some(rest) = strip_prefix_ci(&path, INSPECT_PREFIX)
        && sandbox.inner.inspect
    {
        return inspect::handle(sandbox, rest, request).await;
    }
    StatusCode::NOT_FOUND.into_response()
}
