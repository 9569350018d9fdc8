//! The daemon's HTTP server through real HTTP on 127.0.0.1:0: health and readiness, Prometheus metrics, the job
//! API, rotate-now with its bearer token, and clear errors for requests it does not serve.

mod support;

use rotavault::daemon::{Started, start};
use rotavault::runtime::Runtime;
use rotavault::schedule::SystemClock;
use rotavault::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::faulty_store::{Fault, FaultyStore, Op};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "a-test-token-of-enough-length-0123";

struct Daemon {
    _dir: tempfile::TempDir,
    store: Arc<FaultyStore>,
    runtime: Arc<Runtime>,
    shutdown: CancellationToken,
    started: Option<Started>,
    base: String,
    http: reqwest::Client,
}

impl Daemon {
    /// A daemon with one job, `webhook`, on a memory store behind a `FaultyStore`; `faults` are queued before
    /// it starts. `token`: whether `[http] token_file` is set.
    async fn start(token: bool, faults: &[(Op, Fault, usize)]) -> Self {
        Self::start_with(token, faults, "1s", |_| String::new()).await
    }

    /// [`Daemon::start`], with `[rotation] call_timeout` and more config (`extra`, given the config's directory)
    /// at the end of the file.
    async fn start_with(
        token: bool,
        faults: &[(Op, Fault, usize)],
        call_timeout: &str,
        extra: impl FnOnce(&std::path::Path) -> String,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let extra = extra(dir.path());
        let token_line = if token {
            std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("token");
            "token_file = \"token\"\n"
        } else {
            ""
        };
        let source = format!(
            r#"state_dir = "state"

[http]
listen = "127.0.0.1:0"
{token_line}
[rotation]
call_timeout = "{call_timeout}"

[stores.mem]
kind = "memory"

[targets.shared]
kind = "generated"

[jobs.webhook]
target = "shared"
stores = [ {{ store = "mem", name = "webhooks/signing-key" }} ]
max_age = "30d"
{extra}"#
        );
        let config =
            rotavault::config::parse(&source, &dir.path().join("config.toml")).expect("valid config");
        let store = Arc::new(FaultyStore::new(Arc::new(rotavault::store::memory::MemoryStore::new())));
        for (op, fault, times) in faults {
            store.inject(*op, fault.clone(), *times);
        }
        let shutdown = CancellationToken::new();
        let ready = BTreeMap::from([("mem".to_owned(), store.clone() as Arc<dyn Store>)]);
        let runtime = Arc::new(
            Runtime::build_with_stores(config, Arc::new(SystemClock), shutdown.clone(), ready)
                .await
                .expect("runtime"),
        );
        let started = start(runtime.clone(), shutdown.clone()).await.expect("started");
        let addr = started.http_addr().expect("the HTTP server is on");
        assert!(addr.ip().is_loopback(), "{addr}");
        Self {
            _dir: dir,
            store,
            runtime,
            shutdown,
            started: Some(started),
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self.http.get(format!("{}{path}", self.base)).send().await.expect("an answer");
        (response.status().as_u16(), response.text().await.expect("a body"))
    }

    async fn rotate(&self, job: &str, authorization: Option<&str>) -> (u16, String) {
        let mut request = self.http.post(format!("{}/v1/jobs/{job}/rotate", self.base));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("an answer");
        (response.status().as_u16(), response.text().await.expect("a body"))
    }

    /// GETs `path` until `done` holds for its answer; the daemon works in the background, so this is waiting for
    /// an event, bounded by 10 s of real time.
    async fn until(&self, path: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.get(path).await;
            if done(status, &body) {
                return (status, body);
            }
            assert!(tokio::time::Instant::now() < deadline, "{path} never got there: {status} {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn generation(&self) -> u64 {
        let js = &self.runtime.job("webhook").expect("job").job.stores[0];
        js.store.current(&js.secret).await.expect("read").map_or(0, |s| s.metadata.generation)
    }

    async fn secret(&self) -> String {
        let js = &self.runtime.job("webhook").expect("job").job.stores[0];
        js.store.current(&js.secret).await.expect("read").expect("a secret").value.expose().to_owned()
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        let started = self.started.take().expect("started");
        tokio::time::timeout(Duration::from_secs(10), started.wait()).await.expect("every task stops");
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn healthz_answers_while_the_scheduler_beats_and_readyz_once_recovery_and_store_checks_are_done() {
    let daemon = Daemon::start(false, &[]).await;
    let (status, body) = daemon.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["status"], "ok");
    let (_, body) = daemon.until("/readyz", |status, _| status == 200).await;
    assert_eq!(json(&body)["status"], "ready");
    daemon.stop().await;
}

#[tokio::test]
async fn a_store_that_fails_its_check_makes_readyz_503_naming_the_store() {
    let daemon =
        Daemon::start(false, &[(Op::Check, Fault::Fail(FaultyStore::permanent("no access")), 1)]).await;
    let (status, body) = daemon.until("/readyz", |_, body| body.contains("failed its last check")).await;
    assert_eq!(status, 503, "{body}");
    let reasons = json(&body)["reasons"].to_string();
    assert!(
        reasons.contains("store `mem` failed its last check") && reasons.contains("no access"),
        "{reasons}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn metrics_show_rotations_store_calls_ages_and_build_info_and_never_the_secret() {
    let daemon = Daemon::start(false, &[]).await;
    // No secret yet: the daemon rotates at start-up.
    let (status, text) = daemon
        .until("/metrics", |_, text| {
            text.contains(r#"rotavault_rotations_total{job="webhook",outcome="ok"} 1"#)
                && text.contains(r#"rotavault_job_state{job="webhook",state="ok"} 1"#)
        })
        .await;
    assert_eq!(status, 200);
    for expected in [
        "rotavault_build_info{version=",
        r#"rotavault_rotation_duration_seconds_count{target="shared"} 1"#,
        r#"rotavault_store_calls_total{store="mem",call="stage",status="ok"} 1"#,
        r#"rotavault_secret_max_age_seconds{job="webhook"} 2592000"#,
        "rotavault_failed_logins_max ",
        "rotavault_leading 1",
        r#"rotavault_job_state{job="webhook",state="ok"} 1"#,
        r#"rotavault_hook_failed{job="webhook"} 0"#,
        // The rotation's verify is the last accepted one.
        r#"rotavault_last_verify_timestamp_seconds{job="webhook"} "#,
        "# EOF",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    let secret = daemon.secret().await;
    assert!(!text.contains(&secret), "the secret is in the metrics");
    daemon.stop().await;
}

/// A receiver on 127.0.0.1 that answers every POST with 200, read in full first.
async fn accepting_receiver() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0usize);
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let _ =
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
    });
    addr
}

#[tokio::test]
async fn metrics_show_notification_deliveries_and_each_autotask_tenants_budget() {
    let receiver = accepting_receiver().await;
    // An Autotask call may take 3 attempts of 1s with up to 10s back-off between; an apply is two calls.
    let daemon = Daemon::start_with(false, &[], "1m", |dir| {
        std::fs::write(dir.join("chat.url"), format!("http://{receiver}/hook\n")).expect("url file");
        r#"
[targets.psa]
kind = "autotask"
zone_lookup_url = "http://127.0.0.1:9/atservicesrest/"
hourly_budget = 500
timeout = "1s"
admin = { store = "mem", name = "autotask/admin" }

[notify.chat]
kind = "slack"
url_file = "chat.url"
events = ["rotated"]
"#
        .to_owned()
    })
    .await;
    // The start-up rotation's `rotated` event goes to the receiver.
    let (_, text) = daemon
        .until("/metrics", |_, text| {
            text.contains(r#"rotavault_notifications_total{sink="chat",kind="slack",result="delivered"} 1"#)
        })
        .await;
    for expected in [
        r#"rotavault_notifications_total{sink="chat",kind="slack",result="failed"} 0"#,
        r#"rotavault_notifications_total{sink="chat",kind="slack",result="dropped"} 0"#,
        r#"rotavault_autotask_budget{target="psa"} 500"#,
        r#"rotavault_autotask_budget_used{target="psa"} 0"#,
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    daemon.stop().await;
}

#[tokio::test]
async fn v1_jobs_shows_what_status_json_shows_and_an_unknown_job_is_404_naming_the_jobs() {
    let daemon = Daemon::start(false, &[]).await;
    let (_, body) = daemon.until("/v1/jobs/webhook", |_, body| body.contains(r#""state":"ok""#)).await;
    let job = json(&body);
    assert_eq!(job["job"], "webhook");
    assert_eq!(job["stores"][0]["store"], "mem");
    let (status, body) = daemon.get("/v1/jobs").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)[0]["job"], "webhook");
    assert!(!body.contains(&daemon.secret().await), "the secret is in /v1/jobs");
    let (status, body) = daemon.get("/v1/jobs/nope").await;
    assert_eq!(status, 404);
    assert_eq!(json(&body)["error"], "no job `nope`: expected one of `webhook`");
    daemon.stop().await;
}

#[tokio::test]
async fn rotate_now_needs_the_bearer_token_and_starts_a_rotation_the_daemon_then_sees() {
    let daemon = Daemon::start(true, &[]).await;
    daemon.until("/v1/jobs/webhook", |_, body| body.contains(r#""state":"ok""#)).await;
    let before = daemon.generation().await;

    let (missing, missing_body) = daemon.rotate("webhook", None).await;
    let (wrong, wrong_body) =
        daemon.rotate("webhook", Some("Bearer a-test-token-of-enough-length-0124")).await;
    let (basic, _) = daemon.rotate("webhook", Some(&format!("Basic {TOKEN}"))).await;
    assert_eq!((missing, wrong, basic), (401, 401, 401));
    assert_eq!(missing_body, wrong_body, "no hint whether the token was missing or wrong");
    // Checked before the job, so a caller without the token cannot learn which jobs exist.
    assert_eq!(daemon.rotate("nope", None).await.0, 401);
    assert_eq!(daemon.generation().await, before);

    let bearer = format!("Bearer {TOKEN}");
    let (status, body) = daemon.rotate("nope", Some(&bearer)).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = daemon.rotate("webhook", Some(&bearer)).await;
    assert_eq!(status, 202, "{body}");
    let (_, body) = daemon
        .until("/v1/jobs/webhook", |_, body| json(body)["generation"].as_u64() == Some(before + 1))
        .await;
    // The daemon's loop planned again from the new age: due in 30 days from the rotation just done.
    let job = json(&body);
    assert_eq!(job["due_reason"].as_str().map(|r| r.contains("max_age")), Some(true), "{body}");
    let (_, text) = daemon.get("/metrics").await;
    assert!(text.contains(r#"rotavault_rotations_total{job="webhook",outcome="ok"} 2"#), "{text}");
    daemon.stop().await;
}

#[tokio::test]
async fn rotate_now_on_a_job_already_rotating_is_409() {
    // The start-up rotation's first stage hangs until the call timeout (1 s), so the job is busy meanwhile.
    let daemon = Daemon::start(true, &[(Op::Stage, Fault::Hang, 1)]).await;
    let bearer = format!("Bearer {TOKEN}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while daemon.store.calls(Op::Stage) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the start-up rotation never staged");
        tokio::task::yield_now().await;
    }
    let (status, body) = daemon.rotate("webhook", Some(&bearer)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(json(&body)["error"], "job `webhook` is rotating now: try again when it has finished");
    daemon.stop().await;
}

#[tokio::test]
async fn rotate_now_without_a_token_file_is_refused_as_off() {
    let daemon = Daemon::start(false, &[]).await;
    let (status, body) = daemon.rotate("webhook", Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(json(&body)["error"].as_str().expect("text").contains("`[http] token_file`"), "{body}");
    daemon.stop().await;
}

#[tokio::test]
async fn requests_it_does_not_serve_get_clear_json_errors() {
    let daemon = Daemon::start(true, &[]).await;
    let (status, body) = daemon.get("/nope").await;
    assert_eq!(status, 404);
    assert!(
        json(&body)["error"].as_str().expect("text").starts_with("no such path `/nope`: expected one of")
    );
    let (status, body) = daemon.get("/v1/jobs/webhook/rotate").await;
    assert_eq!(status, 405);
    assert!(
        json(&body)["error"]
            .as_str()
            .expect("text")
            .starts_with("GET is not allowed on `/v1/jobs/webhook/rotate`")
    );
    let response = daemon
        .http
        .post(format!("{}/v1/jobs/webhook/rotate", daemon.base))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(vec![b'x'; 64 * 1024])
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 413);
    let body = response.text().await.expect("body");
    assert_eq!(json(&body)["error"], "the body is over 1024 bytes: expected none");
    daemon.stop().await;
}
