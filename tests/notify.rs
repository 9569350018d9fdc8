//! Notification sinks against real receivers: an HTTP server in the test that checks Standard Webhooks
//! signatures with its own HMAC-SHA256 (not the code under test) and records Slack and Teams payloads, and an SMTP
//! server (aiosmtpd, started by scripts/test) that receives the mail.

mod support;

use axum::body::Bytes;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rotavault::events::{Event, EventData, EventKind, EventSink};
use rotavault::notify::{
    Attempts, Channel, EmailChannel, EmailSettings, Failure, Notifier, SigningKey, Sink, SmtpTls,
    WebhookChannel,
};
use rotavault::retry::Backoff;
use rotavault::secret::SecretValue;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::receiver::{KEY_BYTES, Received, Server};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

const SOURCE: &str = "rotavault://test/etc/rotavault/config.toml";
/// A random-looking part of every URL: the part of a Slack or Teams URL that is the credential.
const URL_TOKEN: &str = "T0SECRET-URL-TOKEN-b7f1c2";

/// A URL on the receiver, ending in the token.
fn url(server: &Server, path: &str) -> SecretValue {
    SecretValue::new(format!("{}/{path}/{URL_TOKEN}", server.base))
}

fn key() -> SigningKey {
    SigningKey::parse(&format!("whsec_{}", STANDARD.encode(KEY_BYTES))).expect("a valid key")
}

fn webhook(url: SecretValue) -> Channel {
    Channel::Webhook(WebhookChannel { url, key: key() })
}

/// Quick retries, so that a test of failures takes milliseconds.
fn attempts(n: u32) -> Attempts {
    Attempts {
        backoff: Backoff { attempts: n, first: Duration::from_millis(1), max: Duration::from_millis(5) },
        timeout: Duration::from_secs(5),
    }
}

fn sink(name: &str, events: &[EventKind], channel: Channel, queue: usize) -> Sink {
    Sink::new(name.into(), events.to_vec(), None, channel, queue)
}

fn event(kind: EventKind, job: &str) -> Event {
    Event::new(
        kind,
        chrono::Utc::now(),
        EventData {
            job: job.into(),
            rotation_id: Some("r-42".into()),
            account: Some("autotask:api@example.com".into()),
            error_kind: Some("target".into()),
            error: Some("the target refused the new secret".into()),
            ..EventData::default()
        },
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

#[tokio::test]
async fn a_webhook_sink_posts_the_cloudevent_signed_as_standard_webhooks_say() {
    let mut server = Server::start(None).await;
    let notifier = Notifier::start(
        vec![sink("hook", &[EventKind::Failed], webhook(url(&server, "hook")), 8)],
        SOURCE.into(),
        attempts(1),
        client(),
    );
    let failed = event(EventKind::Failed, "backup");
    notifier.emit(&failed);
    notifier.emit(&event(EventKind::Rotated, "backup"));

    let got = server.next().await;
    assert!(got.signature_is_valid(), "signature does not verify: {:?}", got.headers);
    assert_eq!(got.headers["webhook-id"], failed.id.as_str());
    assert_eq!(got.headers["content-type"], "application/json");
    let json = got.json();
    assert_eq!(json["specversion"], "1.0");
    assert_eq!(json["type"], "io.rotavault.rotation.failed");
    assert_eq!(json["subject"], "backup");
    assert_eq!(json["source"], SOURCE);
    assert_eq!(json["data"]["rotation_id"], "r-42");

    assert_eq!(notifier.flush(Duration::from_secs(5)).await, 0);
    assert!(server.seen.try_recv().is_err(), "`rotated` is not subscribed to, so it is not sent");
    let (name, kind, stats) = notifier.stats().next().expect("one sink");
    assert_eq!((name, kind, stats.deliveries(), stats.failures()), ("hook", "webhook", 1, 0));
}

#[tokio::test]
async fn a_tampered_body_fails_the_receivers_own_check() {
    // Proves the receiver's check is a real one, so that the test above cannot pass with any signature.
    let mut server = Server::start(None).await;
    let channel = WebhookChannel { url: url(&server, "hook"), key: key() };
    rotavault::notify::webhook::deliver_hook(
        &client(),
        &channel,
        &event(EventKind::Rotated, "app"),
        SOURCE,
        attempts(1),
        &CancellationToken::new(),
    )
    .await
    .expect("delivered");
    let mut got = server.next().await;
    assert!(got.signature_is_valid());
    got.body = Bytes::from(String::from_utf8_lossy(&got.body).replace("app", "ap2"));
    assert!(!got.signature_is_valid());
}

#[tokio::test]
async fn a_webhook_hook_posts_the_rotated_event_signed() {
    let mut server = Server::start(None).await;
    let hook = WebhookChannel { url: url(&server, "reload"), key: key() };
    let rotated = event(EventKind::Rotated, "app");
    rotavault::notify::webhook::deliver_hook(
        &client(),
        &hook,
        &rotated,
        SOURCE,
        attempts(1),
        &CancellationToken::new(),
    )
    .await
    .expect("delivered");
    let got = server.next().await;
    assert!(got.path.starts_with("/reload/"));
    assert!(got.signature_is_valid());
    assert_eq!(got.json()["type"], "io.rotavault.rotation.rotated");

    server.answer(StatusCode::NOT_FOUND);
    let result = rotavault::notify::webhook::deliver_hook(
        &client(),
        &hook,
        &rotated,
        SOURCE,
        attempts(3),
        &CancellationToken::new(),
    )
    .await;
    assert!(matches!(result, Err(Failure::Final { attempts: 1, .. })), "a 404 is final at once: {result:?}");
    assert!(!format!("{result:?}").contains(URL_TOKEN));
}

#[tokio::test]
async fn slack_and_teams_sinks_post_their_own_payloads() {
    let mut server = Server::start(None).await;
    let sinks = vec![
        sink("slack", &[EventKind::Diverged], Channel::Slack(url(&server, "slack")), 8),
        sink("teams", &[EventKind::Diverged], Channel::Teams(url(&server, "teams")), 8),
    ];
    let notifier = Notifier::start(sinks, SOURCE.into(), attempts(1), client());
    notifier.emit(&event(EventKind::Diverged, "backup"));
    let mut got = [server.next().await, server.next().await];
    got.sort_by(|a, b| a.path.cmp(&b.path));

    let slack = got[0].json();
    let text = slack["text"].as_str().expect("a text");
    assert!(
        text.starts_with("rotavault: diverged on job backup: the target refused the new secret"),
        "{text}"
    );
    assert!(text.contains("Account: autotask:api@example.com"), "{text}");

    let teams = got[1].json();
    assert_eq!(teams["type"], "message");
    let attachment = &teams["attachments"][0];
    assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    assert!(
        attachment["content"]["body"][0]["text"].as_str().expect("text").contains("diverged on job backup")
    );
    let facts = attachment["content"]["body"][1]["facts"].as_array().expect("facts");
    assert!(facts.iter().any(|f| f["title"] == "Job" && f["value"] == "backup"), "{facts:?}");
    assert!(got.iter().all(|g| g.headers.get("webhook-signature").is_none()));
    notifier.flush(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_sink_that_fails_raises_notification_failed_to_the_others_and_never_to_itself() {
    let mut broken = Server::start(None).await;
    broken.answer(StatusCode::SERVICE_UNAVAILABLE);
    let mut healthy = Server::start(None).await;
    let both = [EventKind::Failed, EventKind::NotificationFailed];
    let sinks = vec![
        sink("broken", &both, webhook(url(&broken, "hook")), 8),
        sink("ops", &both, Channel::Slack(url(&healthy, "slack")), 8),
    ];
    let audit = Arc::new(Recorder::default());
    let notifier =
        Notifier::start_with_audit(sinks, SOURCE.into(), attempts(3), client(), Some(audit.clone()));
    notifier.emit(&event(EventKind::Failed, "backup"));

    let first = healthy.next().await;
    assert!(first.json()["text"].as_str().expect("text").contains("failed on job backup"));
    let raised = healthy.next().await;
    let text = raised.json()["text"].as_str().expect("text").to_owned();
    assert!(text.starts_with("rotavault: notification_failed on job backup"), "{text}");
    assert!(text.contains("sink `broken` (webhook)"), "{text}");
    assert!(text.contains("HTTP 503"), "{text}");
    assert!(!text.contains(URL_TOKEN), "{text}");

    assert_eq!(notifier.flush(Duration::from_secs(5)).await, 0);
    let mut attempts_seen = 0;
    while let Ok(got) = broken.seen.try_recv() {
        assert_eq!(
            got.json()["type"],
            "io.rotavault.rotation.failed",
            "the broken sink gets no notice of itself"
        );
        attempts_seen += 1;
    }
    assert_eq!(attempts_seen, 3, "three attempts, then given up");
    let stats: Vec<_> = notifier.stats().map(|(n, _, s)| (n, s.deliveries(), s.failures())).collect();
    assert_eq!(stats, [("broken", 0, 1), ("ops", 2, 0)]);
    let audited = audit.0.lock().expect("audit").clone();
    assert_eq!(audited.len(), 1, "the audit log gets the raised event too: {audited:?}");
    assert_eq!(audited[0].kind, EventKind::NotificationFailed);
    assert_eq!(audited[0].data.error_kind.as_deref(), Some("status"));
}

/// An event sink that keeps what it is given: the audit log's place.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn emit(&self, event: &Event) {
        self.0.lock().expect("recorder").push(event.clone());
    }
}

#[tokio::test]
async fn two_broken_sinks_do_not_feed_each_other() {
    let mut a = Server::start(None).await;
    let mut b = Server::start(None).await;
    a.answer(StatusCode::INTERNAL_SERVER_ERROR);
    b.answer(StatusCode::INTERNAL_SERVER_ERROR);
    let both = [EventKind::Failed, EventKind::NotificationFailed];
    let sinks = vec![
        sink("a", &both, Channel::Slack(url(&a, "a")), 8),
        sink("b", &both, Channel::Slack(url(&b, "b")), 8),
    ];
    let notifier = Notifier::start(sinks, SOURCE.into(), attempts(1), client());
    notifier.emit(&event(EventKind::Failed, "backup"));
    assert_eq!(notifier.flush(Duration::from_secs(5)).await, 0);
    let count = |server: &mut Server| std::iter::from_fn(|| server.seen.try_recv().ok()).count();
    // Each: the event, then the other's notification_failed, whose own failure raises nothing.
    assert_eq!((count(&mut a), count(&mut b)), (2, 2));
    let failures: Vec<u64> = notifier.stats().map(|(_, _, s)| s.failures()).collect();
    assert_eq!(failures, [2, 2]);
}

#[tokio::test]
async fn a_full_queue_drops_its_oldest_event_and_counts_it() {
    let gate = Arc::new(Semaphore::new(0));
    let mut server = Server::start(Some(gate.clone())).await;
    let notifier = Notifier::start(
        vec![sink("slow", &[EventKind::Failed], Channel::Slack(url(&server, "s")), 2)],
        SOURCE.into(),
        attempts(1),
        client(),
    );
    let jobs = ["j1", "j2", "j3", "j4", "j5"];
    notifier.emit(&event(EventKind::Failed, jobs[0]));
    let first = server.next().await; // j1 is being delivered; the receiver holds it.
    for job in &jobs[1..] {
        notifier.emit(&event(EventKind::Failed, job));
    }
    let (_, _, stats) = notifier.stats().next().expect("one sink");
    assert_eq!(stats.dropped(), 2, "a queue of 2 keeps j4 and j5");
    gate.add_permits(3);
    let rest = [server.next().await, server.next().await];
    let text = |r: &Received| r.json()["text"].as_str().expect("text").to_owned();
    assert!(text(&first).contains("job j1"));
    assert!(text(&rest[0]).contains("job j4"), "{}", text(&rest[0]));
    assert!(text(&rest[1]).contains("job j5"), "{}", text(&rest[1]));
    assert_eq!(notifier.flush(Duration::from_secs(5)).await, 0);
    let (_, _, stats) = notifier.stats().next().expect("one sink");
    assert_eq!(stats.deliveries(), 3);
}

#[tokio::test]
async fn a_flush_gives_up_at_its_deadline_and_counts_what_was_left() {
    let gate = Arc::new(Semaphore::new(0));
    let mut server = Server::start(Some(gate)).await;
    let notifier = Notifier::start(
        vec![sink("stuck", &[EventKind::Failed], Channel::Slack(url(&server, "s")), 8)],
        SOURCE.into(),
        attempts(1),
        client(),
    );
    notifier.emit(&event(EventKind::Failed, "a"));
    server.next().await;
    notifier.emit(&event(EventKind::Failed, "b"));
    assert_eq!(notifier.flush(Duration::from_millis(200)).await, 1, "b never got its turn");
}

/// Captures the log of the current thread (the tests run on a current-thread runtime, delivery tasks included).
fn capture_log() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log").extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = Buffer(buffer.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn no_url_key_or_password_appears_in_the_log_or_the_errors() {
    let (log, _guard) = capture_log();
    // A port nothing listens on: connection refused, an error that reqwest would print with its URL.
    let closed =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let dead = SecretValue::new(format!("http://{closed}/hook/{URL_TOKEN}"));
    let mut server = Server::start(None).await;
    server.answer(StatusCode::BAD_GATEWAY);
    let password = "smtp-Pa55word-9f3e1d";
    let email = EmailChannel::new(EmailSettings {
        host: "127.0.0.1".into(),
        port: closed.port(),
        tls: SmtpTls::None,
        from: "rotavault@example.com".into(),
        to: vec!["ops@example.com".into()],
        username: Some("rotavault".into()),
        password: Some(SecretValue::new(password)),
        ca_file: None,
        timeout: Duration::from_secs(5),
    })
    .expect("an email channel");
    let all = [EventKind::Failed, EventKind::NotificationFailed];
    let sinks = vec![
        sink("dead", &all, webhook(dead), 8),
        sink("refusing", &all, Channel::Teams(url(&server, "t")), 8),
        sink("mail", &all, Channel::Email(Box::new(email)), 8),
    ];
    let notifier = Notifier::start(sinks, SOURCE.into(), attempts(2), client());
    let debug = format!("{notifier:?}");
    assert!(!debug.contains(URL_TOKEN) && !debug.contains(password), "{debug}");
    notifier.emit(&event(EventKind::Failed, "backup"));
    assert_eq!(notifier.flush(Duration::from_secs(10)).await, 0);

    let mut seen = String::new();
    while let Ok(got) = server.seen.try_recv() {
        seen.push_str(&String::from_utf8_lossy(&got.body));
    }
    let log = String::from_utf8(log.lock().expect("log").clone()).expect("utf-8");
    assert!(log.contains("a notification could not be delivered"), "{log}");
    assert!(seen.contains("notification_failed"), "{seen}");
    let key_b64 = STANDARD.encode(KEY_BYTES);
    for secret in [URL_TOKEN, password, key_b64.as_str()] {
        assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
        assert!(!seen.contains(secret), "`{secret}` in a notification:\n{seen}");
    }
}

/// The aiosmtpd server scripts/test starts, with the Maildir it writes every message to.
fn smtp_server() -> (u16, std::path::PathBuf) {
    let port = std::env::var("ROTAVAULT_TEST_SMTP_PORT")
        .expect("the SMTP server is not running: run the tests through scripts/test (ROTAVAULT_TEST_SMTP_PORT is unset)");
    let maildir = std::env::var("ROTAVAULT_TEST_SMTP_MAILDIR")
        .expect("the SMTP server's Maildir is unknown: run the tests through scripts/test (ROTAVAULT_TEST_SMTP_MAILDIR is unset)");
    (port.parse().expect("a port number"), maildir.into())
}

#[tokio::test]
async fn an_email_sink_delivers_the_event_to_a_real_smtp_server() {
    let (port, maildir) = smtp_server();
    let email = EmailChannel::new(EmailSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        from: "Rotavault <rotavault@example.com>".into(),
        to: vec!["ops@example.com".into(), "oncall@example.com".into()],
        username: None,
        password: None,
        ca_file: None,
        timeout: Duration::from_secs(10),
    })
    .expect("an email channel");
    let notifier = Notifier::start(
        vec![sink("mail", &[EventKind::AgeWarning], Channel::Email(Box::new(email)), 8)],
        SOURCE.into(),
        attempts(1),
        client(),
    );
    let warning = event(EventKind::AgeWarning, "mailjob");
    notifier.emit(&warning);
    assert_eq!(notifier.flush(Duration::from_secs(10)).await, 0);
    let (_, _, stats) = notifier.stats().next().expect("one sink");
    assert_eq!(stats.deliveries(), 1, "the server answered 250 to the mail");

    // The server writes each message into the Maildir before it answers 250.
    let mail = std::fs::read_dir(maildir.join("new"))
        .expect("the Maildir")
        .filter_map(|e| std::fs::read_to_string(e.expect("entry").path()).ok())
        .find(|m| m.contains(&warning.id))
        .expect("the mail with the event's id");
    assert!(mail.contains("Subject: rotavault: age_warning on job mailjob"), "{mail}");
    assert!(mail.contains("To: ops@example.com, oncall@example.com"), "{mail}");
    assert!(mail.contains("Job: mailjob"), "{mail}");
    assert!(mail.contains("\"type\": \"io.rotavault.secret.age_warning\""), "{mail}");
}

/// A one-shot `rotavault rotate` exits right after its rotation: the notice of it must be delivered first, signed,
/// and hold no secret.
#[tokio::test]
async fn a_one_shot_rotate_delivers_its_notification_before_it_exits() {
    let mut server = Server::start(None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_rotavault");
    let key = dir.path().join("store.key");
    let out = std::process::Command::new(bin).args(["keygen", "--out"]).arg(&key).output().expect("keygen");
    assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.path().join("hook.url"), url(&server, "rotavault").expose()).expect("url file");
    std::fs::write(dir.path().join("hook.key"), format!("whsec_{}\n", STANDARD.encode(KEY_BYTES)))
        .expect("key");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        r#"state_dir = "state"

[http]
listen = ""

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[targets.shared]
kind = "generated"

[notify.ops]
kind = "webhook"
url_file = "hook.url"
key_file = "hook.key"
events = ["rotated"]

[jobs.webhook]
target = "shared"
stores = [ { store = "local", name = "webhooks/signing-key" } ]
max_age = "30d"
"#,
    )
    .expect("config");
    let out = std::process::Command::new(bin)
        .current_dir(dir.path())
        .args(["--config"])
        .arg(&config)
        .args(["rotate", "webhook"])
        .output()
        .expect("rotate runs");
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "rotate: {printed}");

    let received = server.next().await;
    assert!(received.signature_is_valid(), "signed with the key in the key file");
    let event = received.json();
    assert_eq!(event["type"], "io.rotavault.rotation.rotated");
    assert_eq!(event["subject"], "webhook");

    let store = rotavault::store::file::FileStore::open(
        dir.path().join("secrets.age"),
        rotavault::store::file::IdentitySource::File(key),
    )
    .expect("store");
    use rotavault::store::Store;
    let secret = store
        .current(&rotavault::store::SecretRef::new("webhooks/signing-key", "webhook"))
        .await
        .expect("read")
        .expect("a current value");
    let body = event.to_string();
    assert!(!body.contains(secret.value.expose()), "the notification holds no secret");
    assert!(!printed.contains(URL_TOKEN), "the URL's token is not printed");
}
