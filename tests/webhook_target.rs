//! The `webhook` target through the same engine, recovery and lockout guard as every target, against a vendor API
//! played by an HTTP server on 127.0.0.1: it checks each request's Standard Webhooks signature with its own HMAC
//! (`support::receiver`), keeps the account's password, and answers as each test scripts it.
//!
//! The network is real, so time is real: what must pass the apply horizon is shown to an engine whose clock starts
//! an hour later (a restarted rotavault), not waited for.

mod support;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use rotavault::rotation::{Job, Recovery, RotationError, Trigger};
use rotavault::secret::SecretValue;
use rotavault::target::webhook::{WebhookEndpoint, WebhookTarget};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::engine_rig::{EngineRig, current, pending};
use support::receiver::{KEY_BYTES, Received};

/// How the vendor answers one apply, instead of applying it and answering 204.
#[derive(Clone, Copy, Debug)]
enum Apply {
    /// 429 with `Retry-After` in seconds, nothing done.
    Throttle(u64),
    /// 422 with a reason that quotes the secret.
    Refuse,
    /// Applies, then answers 500.
    FailAfter,
    /// Answers 500 without applying.
    FailBefore,
    /// Answers 204 without applying.
    Pretend,
}

#[derive(Default)]
struct Vendor {
    password: Mutex<Option<String>>,
    script: Mutex<VecDeque<Apply>>,
    /// Each call's `type` and when it came.
    calls: Mutex<Vec<(String, Instant)>>,
    bad_signatures: Mutex<u32>,
}

async fn vendor_api(State(vendor): State<Arc<Vendor>>, headers: HeaderMap, body: Bytes) -> Response {
    let received = Received { path: "/".into(), headers, body };
    if !received.signature_is_valid() {
        *vendor.bad_signatures.lock().expect("count") += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let request = received.json();
    let kind = request["type"].as_str().unwrap_or_default().to_owned();
    let secret = request["secret"].as_str().unwrap_or_default().to_owned();
    vendor.calls.lock().expect("calls").push((kind.clone(), Instant::now()));
    if kind == "verify" {
        let accepted = vendor.password.lock().expect("password").as_deref() == Some(secret.as_str());
        return if accepted { StatusCode::OK } else { StatusCode::UNAUTHORIZED }.into_response();
    }
    let scripted = vendor.script.lock().expect("script").pop_front();
    let apply = || *vendor.password.lock().expect("password") = Some(secret.clone());
    match scripted {
        None => {
            apply();
            StatusCode::NO_CONTENT.into_response()
        }
        Some(Apply::Throttle(seconds)) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", seconds.to_string())]).into_response()
        }
        Some(Apply::Refuse) => {
            let reason = format!("{{\"reason\": \"{secret} was used before\"}}");
            (StatusCode::UNPROCESSABLE_ENTITY, reason).into_response()
        }
        Some(Apply::FailAfter) => {
            apply();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Some(Apply::FailBefore) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Some(Apply::Pretend) => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn start_vendor() -> (Arc<Vendor>, String) {
    let vendor = Arc::new(Vendor::default());
    let app = Router::new().route("/rotate", post(vendor_api)).with_state(vendor.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/rotate?token=url-token-s3cr3t", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (vendor, url)
}

/// A server that reads the request and never answers, holding the connection open.
async fn start_silent() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/rotate", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut buffer = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await;
            held.push(socket);
        }
    });
    url
}

/// A server that reads the request and closes the connection without answering.
async fn start_cutter() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/rotate", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut buffer = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await;
            drop(socket);
        }
    });
    url
}

const OLD: &str = "old-password-7Hq2xZ";

/// The engine rig and the endpoint the vendor serves.
struct Rig {
    base: EngineRig,
    endpoint: Arc<WebhookEndpoint>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Rig {
    type Target = EngineRig;

    fn deref(&self) -> &EngineRig {
        &self.base
    }
}

impl Rig {
    fn new(url: &str) -> Rig {
        Rig::with_key(url, &KEY_BYTES)
    }

    fn with_key(url: &str, key: &[u8]) -> Rig {
        Rig::with(url, key, Duration::from_secs(5))
    }

    fn with(url: &str, key: &[u8], timeout: Duration) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let (url_file, key_file) = (dir.path().join("vendor.url"), dir.path().join("vendor.key"));
        std::fs::write(&url_file, url).expect("url");
        let key = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key));
        std::fs::write(&key_file, key).expect("key");
        let client = rotavault::notify::files::client().expect("client");
        let endpoint = WebhookEndpoint::new(&url_file, &key_file, timeout, client).expect("endpoint");
        Rig { base: EngineRig::new(3), endpoint: Arc::new(endpoint), _dir: dir }
    }

    fn job(&self, name: &str) -> Job {
        self.job_on(name, Arc::new(WebhookTarget::new("vendor", name, "app_user", self.endpoint.clone())))
    }

    /// The job's secret as it stands: `OLD` current, the vendor's account holding it.
    async fn holding(&self, job: &Job, vendor: &Vendor) {
        *vendor.password.lock().expect("password") = Some(OLD.into());
        self.engine.import(job, &SecretValue::new(OLD)).await.expect("imported");
    }
}

fn password(vendor: &Vendor) -> Option<String> {
    vendor.password.lock().expect("password").clone()
}

fn calls(vendor: &Vendor) -> Vec<String> {
    vendor.calls.lock().expect("calls").iter().map(|(kind, _)| kind.clone()).collect()
}

#[tokio::test]
async fn a_webhook_target_applies_and_verifies_a_new_secret_with_signed_requests() {
    let (vendor, url) = start_vendor().await;
    let rig = Rig::new(&url);
    let job = rig.job("vendor-api");
    rig.holding(&job, &vendor).await;
    vendor.calls.lock().expect("calls").clear();
    rig.engine.rotate(&job, Trigger::Manual).await.expect("rotated");
    let new = current(&job).await.expect("a current value");
    assert_ne!(new, OLD);
    assert_eq!(password(&vendor).as_deref(), Some(new.as_str()), "the vendor holds the stored value");
    assert_eq!(calls(&vendor), ["verify", "apply", "verify"], "the old value is proven first");
    assert_eq!(*vendor.bad_signatures.lock().expect("count"), 0, "every request was signed with the key");
    assert_eq!(pending(&job).await, None);
}

#[tokio::test]
async fn a_request_signed_with_another_key_is_refused_and_nothing_is_kept() {
    let (vendor, url) = start_vendor().await;
    let rig = Rig::with_key(&url, &[0x11; 32]);
    let job = rig.job("vendor-api");
    let err = rig.engine.rotate(&job, Trigger::Manual).await.expect_err("refused by the vendor");
    assert!(err.to_string().contains("HTTP 401"), "{err}");
    assert_eq!(*vendor.bad_signatures.lock().expect("count"), 1);
    assert_eq!(current(&job).await, None);
    assert_eq!(pending(&job).await, None);
    assert!(!err.to_string().contains("url-token-s3cr3t"), "the URL is never in an error: {err}");
}

#[tokio::test]
async fn a_refused_apply_changes_nothing_current_and_its_reason_is_redacted() {
    let (vendor, url) = start_vendor().await;
    let rig = Rig::new(&url);
    let job = rig.job("vendor-api");
    rig.holding(&job, &vendor).await;
    vendor.script.lock().expect("script").push_back(Apply::Refuse);
    let err = rig.engine.rotate(&job, Trigger::Manual).await.expect_err("refused");
    assert!(matches!(err, RotationError::Refused(_)), "{err:?}");
    assert!(err.to_string().contains("[redacted] was used before"), "{err}");
    assert_eq!(current(&job).await.as_deref(), Some(OLD));
    assert_eq!(pending(&job).await, None);
    assert_eq!(password(&vendor).as_deref(), Some(OLD));
}

#[tokio::test]
async fn a_throttled_apply_is_sent_again_after_its_retry_after() {
    let (vendor, url) = start_vendor().await;
    let rig = Rig::new(&url);
    let job = rig.job("vendor-api");
    rig.holding(&job, &vendor).await;
    vendor.script.lock().expect("script").push_back(Apply::Throttle(1));
    rig.engine.rotate(&job, Trigger::Manual).await.expect("rotated on the second attempt");
    let calls = vendor.calls.lock().expect("calls").clone();
    let applies: Vec<Instant> = calls.iter().filter(|(k, _)| k == "apply").map(|(_, at)| *at).collect();
    assert_eq!(applies.len(), 2);
    let waited = applies[1] - applies[0];
    assert!(waited >= Duration::from_secs(1), "Retry-After: 1 was honoured, waited {waited:?}");
    assert_eq!(password(&vendor), current(&job).await);
}

#[tokio::test]
async fn a_500_after_the_vendor_applied_is_found_applied_by_recovery() {
    let (vendor, url) = start_vendor().await;
    let rig = Rig::new(&url);
    let job = rig.job("vendor-api");
    rig.holding(&job, &vendor).await;
    vendor.script.lock().expect("script").push_back(Apply::FailAfter);
    rig.engine.rotate(&job, Trigger::Manual).await.expect("settled by recovery");
    let new = current(&job).await.expect("current");
    assert_ne!(new, OLD);
    assert_eq!(password(&vendor).as_deref(), Some(new.as_str()));
}

#[tokio::test]
async fn a_500_that_changed_nothing_stays_pending_until_recovery_past_the_horizon_discards_it() {
    let (vendor, url) = start_vendor().await;
    let rig = Rig::new(&url);
    let job = rig.job("vendor-api");
    rig.holding(&job, &vendor).await;
    vendor.script.lock().expect("script").push_back(Apply::FailBefore);
    let err = rig.engine.rotate(&job, Trigger::Manual).await.expect_err("unknown");
    assert!(matches!(err, RotationError::Unsettled { .. }), "{err}");
    assert_eq!(current(&job).await.as_deref(), Some(OLD));
    assert!(pending(&job).await.is_some(), "kept pending: the vendor may have applied it");
    let recovery = rig.an_hour_later().recover(&job).await.expect("recovery");
    assert!(matches!(recovery, Recovery::Discarded { .. }), "{recovery:?}");
    assert_eq!(current(&job).await.as_deref(), Some(OLD));
    assert_eq!(pending(&job).await, None);
}

#[tokio::test]
async fn a_connection_cut_after_the_request_left_is_an_unknown_outcome_kept_pending() {
    let url = start_cutter().await;
    let rig = Rig::new(&url);
    let job = rig.job("vendor-api");
    let err = rig.engine.rotate(&job, Trigger::Manual).await.expect_err("unknown");
    assert!(matches!(err, RotationError::Unsettled { .. }), "{err}");
    assert!(!err.to_string().contains(&url), "the URL is never in an error: {err}");
    assert_eq!(current(&job).await, None);
    assert!(pending(&job).await.is_some(), "kept pending: the vendor may have applied it");
}

#[tokio::test]
async fn no_answer_within_the_timeout_after_sending_is_an_unknown_outcome_kept_pending() {
    let url = start_silent().await;
    let rig = Rig::with(&url, &KEY_BYTES, Duration::from_millis(500));
    let job = rig.job("vendor-api");
    let err = rig.engine.rotate(&job, Trigger::Manual).await.expect_err("unknown");
    assert!(matches!(err, RotationError::Unsettled { .. }), "{err}");
    assert_eq!(current(&job).await, None);
    assert!(pending(&job).await.is_some(), "kept pending: the vendor may have applied it");
}

#[tokio::test]
async fn a_connection_that_could_not_be_made_sent_nothing_and_keeps_nothing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}/rotate", closed.local_addr().expect("addr"));
    drop(closed);
    let rig = Rig::new(&url);
    let job = rig.job("vendor-api");
    let err = rig.engine.rotate(&job, Trigger::Manual).await.expect_err("unreachable");
    assert!(err.to_string().contains("temporarily unavailable"), "{err}");
    assert_eq!(current(&job).await, None);
    assert_eq!(pending(&job).await, None);
}

#[tokio::test]
async fn refused_verifies_count_toward_the_lockout_guard_per_account_across_jobs() {
    let (vendor, url) = start_vendor().await;
    let rig = Rig::new(&url);
    let (a, b) = (rig.job("vendor-api"), rig.job("vendor-api-eu"));
    for _ in 0..2 {
        vendor.script.lock().expect("script").push_back(Apply::Pretend);
    }
    rig.engine.rotate(&a, Trigger::Manual).await.expect_err("not accepted");
    assert_eq!(rig.engine.lockout().consecutive("webhook:vendor:app_user").expect("guard"), 3);
    rig.engine.rotate(&b, Trigger::Manual).await.expect_err("not accepted");
    assert_eq!(rig.engine.lockout().consecutive("webhook:vendor:app_user").expect("guard"), 6);
}

/// Runs the real binary with `args` against the config in `dir`, off the runtime that serves the vendor.
async fn binary(
    dir: &std::path::Path,
    args: &'static [&'static str],
    stdin: Option<String>,
) -> (bool, String) {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let rotavault = support::binary::Rotavault::new(&dir, dir.join("config.toml"));
        let out = rotavault.cli(args, stdin.as_deref());
        (out.status.success(), support::binary::text(&out))
    })
    .await
    .expect("the binary ran")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_rotates_through_a_webhook_target_and_prints_neither_a_secret_nor_the_url() {
    let (vendor, url) = start_vendor().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("vendor.url"), &url).expect("url");
    let key = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(KEY_BYTES));
    std::fs::write(dir.path().join("vendor.key"), key).expect("key");
    let config = r#"state_dir = "state"

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[targets.vendor]
kind = "webhook"
url_file = "vendor.url"
key_file = "vendor.key"
timeout = "10s"

[http]
listen = "127.0.0.1:0"

[jobs.vendor-api]
target = "vendor"
account = "app_user"
stores = [ { store = "local", name = "vendor/api" } ]
max_age = "30d"
"#;
    std::fs::write(dir.path().join("config.toml"), config).expect("config");
    let mut printed = String::new();
    *vendor.password.lock().expect("password") = Some(OLD.into());
    for (args, stdin) in [
        (&["keygen", "--out", "store.key"][..], None),
        (&["import", "vendor-api", "--no-rotate"][..], Some(format!("{OLD}\n"))),
        (&["rotate", "vendor-api"][..], None),
        (&["status", "--json"][..], None),
    ] {
        let (ok, text) = binary(dir.path(), args, stdin).await;
        assert!(ok, "{args:?}: {text}");
        printed.push_str(&text);
    }
    let new = password(&vendor).expect("the vendor holds a password");
    assert_ne!(new, OLD);
    assert!(printed.contains("app_user"), "status names the account: {printed}");
    for secret in [new.as_str(), OLD, "url-token-s3cr3t"] {
        assert!(!printed.contains(secret), "printed: {printed}");
    }
    assert_eq!(*vendor.bad_signatures.lock().expect("count"), 0);
}
