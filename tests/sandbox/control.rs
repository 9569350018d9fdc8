//! The seed file, the `/_sandbox/` inspection interface, the request log, the sandbox's own tracing (neither
//! ever holds a password), and `serve_cli`.

use crate::support::*;
use reqwest::Method;
use rotavault::sandbox::{
    Api, Call, Fault, FaultAction, LoggedRequest, SecurityLevel, Seed, SeedError, ThreadLimitResponse,
    serve_cli,
};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const FULL_SEED: &str = r#"
lockout_threshold = 7
strong_passwords = false
hourly_limit = 500
thread_limit = 2
thread_limit_response = "itgenatr005"
propagation_delay = "3s"
strict_reader = true
integration_codes = ["CODE-A", "CODE-B"]

[[resources]]
id = 29682885
user_name = "rotavault-admin@sandbox.example"
password = "initial-Pa$$word-1"
security_level = "api_admin"
first_name = "Rota"
last_name = "Admin"
email = "rota@sandbox.example"
active = true
title = "Rotator"

[[resources]]
user_name = "ui@sandbox.example"
password = "ui-Pa$$word"
security_level = "ui_user"
active = false
office_phone = "+1 555 0100"

[[faults]]
call = "soap_update"
action = "apply_then_drop"
times = 1

[[faults]]
call = "resources_get"
action = "delay"
delay = "250ms"

[[faults]]
call = "soap_update"
action = "commit_late"
delay = "8s"
times = 2
"#;

#[test]
fn a_seed_file_sets_every_key() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(FULL_SEED.as_bytes()).expect("write");
    let seed = Seed::load(file.path()).expect("loads");
    assert_eq!((seed.lockout_threshold, seed.hourly_limit, seed.thread_limit), (7, 500, 2));
    assert!(!seed.strong_passwords);
    assert_eq!(seed.thread_limit_response, ThreadLimitResponse::Itgenatr005);
    assert_eq!(seed.propagation_delay, Duration::from_secs(3));
    assert_eq!(seed.integration_codes, ["CODE-A", "CODE-B"]);
    assert_eq!(seed.resources.len(), 2);
    assert_eq!(seed.resources[0].security_level, SecurityLevel::ApiAdmin);
    assert_eq!(seed.resources[1].security_level, SecurityLevel::UiUser);
    assert_eq!(seed.resources[1].office_phone.as_deref(), Some("+1 555 0100"));
    assert!(!seed.resources[1].active);
    assert_eq!(
        seed.faults,
        [
            Fault::times(Call::SoapUpdate, FaultAction::ApplyThenDrop, 1),
            Fault::always(Call::ResourcesGet, FaultAction::Delay(Duration::from_millis(250))),
            Fault::times(Call::SoapUpdate, FaultAction::CommitLate(Duration::from_secs(8)), 2),
        ]
    );
    assert!(seed.strict_reader);
    assert!(!format!("{seed:?}").contains("initial-Pa$$word-1"), "Debug redacts seed passwords");
}

#[tokio::test]
async fn seeded_resources_get_ids_and_fields() {
    let run = start(Seed::from_toml(FULL_SEED).expect("seed")).await;
    let admin = run.sandbox.resource("rotavault-admin@sandbox.example").expect("admin");
    assert_eq!(admin["id"], json!(29682885));
    assert_eq!(admin["title"], json!("Rotator"));
    let ui = run.sandbox.resource("ui@sandbox.example").expect("ui user");
    assert_eq!(ui["id"], json!(29682886), "the next id after the largest given");
    assert_eq!(ui["isActive"], json!(false));
    assert!(run.sandbox.authenticates("rotavault-admin@sandbox.example", "initial-Pa$$word-1"));
    assert!(!run.sandbox.authenticates("ui@sandbox.example", "ui-Pa$$word"), "not an API user");
}

fn seed_error(text: &str) -> String {
    match Seed::from_toml(text) {
        Ok(seed) => panic!("accepted: {seed:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn bad_seeds_are_refused_with_a_clear_error() {
    let unknown = seed_error("lockout_treshold = 3\n");
    assert!(unknown.contains("lockout_treshold") && unknown.contains("line 1"), "{unknown}");

    let duration = seed_error("propagation_delay = \"soon\"\n");
    assert!(duration.contains("invalid duration") && duration.contains("soon"), "{duration}");

    let twice = seed_error(
        "[[resources]]\nuser_name = \"a@x\"\npassword = \"p\"\n[[resources]]\nuser_name = \"a@x\"\npassword = \"q\"\n",
    );
    assert!(twice.contains("resources[1]") && twice.contains("appears twice"), "{twice}");

    let fault = seed_error("[[faults]]\ncall = \"soap_update\"\naction = \"delay\"\n");
    assert!(fault.contains("needs delay"), "{fault}");

    let late = seed_error("[[faults]]\ncall = \"soap_update\"\naction = \"commit_late\"\n");
    assert!(late.contains("commit_late") && late.contains("needs delay"), "{late}");
    let late = seed_error("[[faults]]\ncall = \"soap_query\"\naction = \"commit_late\"\ndelay = \"1s\"\n");
    assert!(late.contains("\"soap_update\" only") && late.contains("soap_query"), "{late}");

    let call = seed_error("[[faults]]\ncall = \"soap_delete\"\naction = \"hang\"\n");
    assert!(call.contains("soap_delete") && call.contains("line 2"), "{call}");

    let level = seed_error(
        "[[resources]]\nuser_name = \"a@x\"\npassword = \"Secret-line!\"\nsecurity_level = \"root\"\n",
    );
    assert!(level.contains("root") && level.contains("line 4"), "{level}");
    assert!(!level.contains("Secret-line!"), "the error never quotes the seed's lines: {level}");

    let missing = Seed::load(std::path::Path::new("/nonexistent/seed.toml")).expect_err("no file");
    assert!(matches!(missing, SeedError::Read { .. }));
    assert!(missing.to_string().contains("/nonexistent/seed.toml"), "{missing}");
}

#[tokio::test]
async fn inspection_is_404_unless_turned_on() {
    let run = start(seed()).await;
    for path in ["resources", "log"] {
        let url = format!("http://{}/_sandbox/{path}", run.sandbox.addr());
        assert_eq!(run.http.get(url).send().await.expect("request").status().as_u16(), 404);
    }
    let url = format!("http://{}/_sandbox/resources/{USER}/unlock", run.sandbox.addr());
    assert_eq!(run.http.post(url).send().await.expect("request").status().as_u16(), 404);
}

#[tokio::test]
async fn inspection_shows_and_steers_the_tenant() {
    let mut seed = seed();
    seed.lockout_threshold = 1;
    let run = start_with(seed, true).await;
    let base = format!("http://{}/_sandbox", run.sandbox.addr());
    assert_eq!(run.threshold_status(USER, "wrong").await, 401);

    let list: Value =
        run.http.get(format!("{base}/resources")).send().await.expect("list").json().await.expect("json");
    let user = list
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["user"] == json!(USER))
        .expect("user listed")
        .clone();
    assert_eq!(
        user,
        json!({ "user": USER, "id": USER_ID, "password": USER_PW, "failed_logins": 1, "locked": true })
    );

    let unlock = run.http.post(format!("{base}/resources/{}/unlock", USER.replace('@', "%40"))).send().await;
    assert_eq!(unlock.expect("unlock").status().as_u16(), 204);
    assert!(!run.sandbox.is_locked(USER));

    let set =
        run.http.post(format!("{base}/resources/{USER}/password")).json(&json!({ "password": "Behind-1!" }));
    assert_eq!(set.send().await.expect("set").status().as_u16(), 204);
    assert_eq!(run.sandbox.password_of(USER).as_deref(), Some("Behind-1!"));
    assert_eq!(run.threshold_status(USER, "Behind-1!").await, 200, "a change in the UI works at once");

    let fault = json!({ "call": "threshold_information", "action": "fail", "status": 418, "body": "teapot" });
    let added = run.http.post(format!("{base}/faults")).json(&fault).send().await.expect("fault");
    assert_eq!(added.status().as_u16(), 204);
    assert_eq!(run.threshold_status(USER, "Behind-1!").await, 418);
    let bad = run
        .http
        .post(format!("{base}/faults"))
        .json(&json!({ "call": "nope", "action": "hang" }))
        .send()
        .await;
    assert_eq!(bad.expect("bad fault").status().as_u16(), 400);
    let cleared = run.http.delete(format!("{base}/faults")).send().await.expect("clear");
    assert_eq!(cleared.status().as_u16(), 204);
    assert_eq!(run.threshold_status(USER, "Behind-1!").await, 200);

    let propagation =
        run.http.post(format!("{base}/propagation")).json(&json!({ "delay": "1h" })).send().await;
    assert_eq!(propagation.expect("propagation").status().as_u16(), 204);
    let (code, _) = run.set_password(USER_ID, "Later-1!x").await;
    assert_eq!(code, "1");
    assert!(!run.sandbox.authenticates(USER, "Later-1!x"), "an hour to go");

    let log: Vec<LoggedRequest> =
        run.http.get(format!("{base}/log")).send().await.expect("log").json().await.expect("json");
    assert!(
        log.iter().any(|e| e.api == Api::Soap && e.call == Some(Call::SoapUpdate) && e.status == Some(200))
    );
    assert!(
        log.iter().any(|e| e.api == Api::Rest && e.user.as_deref() == Some(USER) && e.status == Some(418))
    );

    let late: Value =
        run.http.get(format!("{base}/late_commits")).send().await.expect("late").json().await.expect("json");
    assert_eq!(late, json!({ "landed": 0 }));

    let unknown = run.http.post(format!("{base}/resources/nobody/unlock")).send().await.expect("unknown");
    assert_eq!(unknown.status().as_u16(), 404);
}

/// A little of everything that carries a password: REST logins (right and wrong), SOAP query and update.
async fn traffic(run: &Running, new: &str) {
    assert_eq!(run.threshold_status(USER, USER_PW).await, 200);
    assert_eq!(run.threshold_status(USER, "Wr0ng!guess").await, 401);
    let (code, _) = run.set_password(USER_ID, new).await;
    assert_eq!(code, "1");
    assert_eq!(run.threshold_status(USER, new).await, 200);
    let query = json!({ "filter": [{ "op": "eq", "field": "userName", "value": USER }] });
    let response = run.rest_as(Method::POST, "V1.0/Resources/query", USER, new).json(&query).send().await;
    assert_eq!(response.expect("query").status().as_u16(), 200);
}

#[tokio::test]
async fn the_request_log_never_holds_a_password() {
    let run = start(seed()).await;
    let new = "L0g!never-shows";
    traffic(&run, new).await;
    let log = run.sandbox.request_log();
    assert!(log.len() >= 6, "{log:?}");
    assert!(log.iter().any(|e| e.call == Some(Call::SoapUpdate) && e.user.as_deref() == Some(ADMIN)));
    let text = serde_json::to_string(&log).expect("json");
    for secret in [USER_PW, ADMIN_PW, "Wr0ng!guess", new] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// The subscriber is the process-wide default: a thread-local one misses events in a test binary whose other
// tests run in parallel (tracing caches each call site's interest globally). It then also hears the other
// sandbox tests, which must not trace a password either.
#[tokio::test]
async fn the_sandbox_never_traces_a_password() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("rotavault=trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of this binary");

    let mut seed = seed();
    seed.lockout_threshold = 2;
    let run = start(seed).await;
    let new = "Tr4ce!never-shows";
    traffic(&run, new).await;
    for _ in 0..2 {
        assert_eq!(run.threshold_status(ADMIN, "Wr0ng!guess").await, 401);
    }
    assert!(run.sandbox.is_locked(ADMIN), "locking is traced too");

    let output = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(output.contains("sandbox request") && output.contains("account locked"), "{output}");
    for secret in [USER_PW, ADMIN_PW, "Wr0ng!guess", new] {
        assert!(!output.contains(secret), "{secret} in {output}");
    }
}

#[tokio::test]
async fn serve_cli_serves_until_shutdown_and_reports_a_bad_seed() {
    let shutdown = CancellationToken::new();
    let serving =
        tokio::spawn(serve_cli("127.0.0.1:0".parse().expect("addr"), None, false, shutdown.clone()));
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), serving).await.expect("stops").expect("joins");
    assert!(result.is_ok(), "{result:?}");

    let missing = serve_cli(
        "127.0.0.1:0".parse().expect("addr"),
        Some("/nonexistent/seed.toml".into()),
        false,
        CancellationToken::new(),
    )
    .await;
    assert!(missing.is_err_and(|e| e.to_string().contains("/nonexistent/seed.toml")));
}
