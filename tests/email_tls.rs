//! The email sink's TLS against a real SMTP server: aiosmtpd from the project venv, started here with a
//! certificate from a CA made by rcgen, once with STARTTLS (required) and once with implicit TLS. The mail is read
//! back from the server's Maildir; the same server is refused when its CA is not given (`ca_file`), and that error
//! names the sink, never the password.

use rotavault::events::{Event, EventData, EventKind, EventSink};
use rotavault::notify::{Attempts, Channel, EmailChannel, EmailSettings, Notifier, Sink, SmtpTls};
use rotavault::retry::Backoff;
use rotavault::secret::SecretValue;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SOURCE: &str = "rotavault://test/etc/rotavault/config.toml";
const PASSWORD: &str = "smtp-Tls-Pa55word-4c1e7a";

/// The CA's certificate, and the server's certificate and key, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "rotavault SMTP test CA");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("a CA certificate");
    let key = rcgen::KeyPair::generate().expect("a server key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    let cert = params.signed_by(&key, &ca).expect("a server certificate");
    let files = Pki { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") };
    std::fs::write(&files.ca, ca.pem()).expect("the CA file");
    std::fs::write(&files.cert, cert.pem()).expect("the certificate file");
    std::fs::write(&files.key, key.serialize_pem()).expect("the key file");
    files
}

/// An aiosmtpd process, killed by its PID when dropped.
struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The venv's python that scripts/test exports.
fn python() -> PathBuf {
    std::env::var_os("ROTAVAULT_TEST_PYTHON").map(PathBuf::from).expect(
        "the project venv's python is unknown: run the tests through scripts/test (ROTAVAULT_TEST_PYTHON is unset)",
    )
}

/// Starts aiosmtpd on a free loopback port with the certificate: `--smtpscert` for implicit TLS, `--tlscert` for
/// STARTTLS (which aiosmtpd then requires before MAIL). Its Mailbox handler writes each message into a Maildir
/// before it answers 250.
fn start(dir: &Path, pki: &Pki, tls: SmtpTls) -> Smtp {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let maildir = dir.join(format!("maildir-{port}"));
    let (cert_flag, key_flag) = match tls {
        SmtpTls::Implicit => ("--smtpscert", "--smtpskey"),
        _ => ("--tlscert", "--tlskey"),
    };
    let mut child = Command::new(python())
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .arg(cert_flag)
        .arg(&pki.cert)
        .arg(key_flag)
        .arg(&pki.key)
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aiosmtpd from the project venv (scripts/test installs it)");
    // aiosmtpd says nothing when it is ready: its port accepting a connection is the only sign.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if let Some(status) = child.try_wait().expect("the server's status") {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut err).expect("stderr");
            panic!("aiosmtpd exited ({status}) before it listened:\n{err}");
        }
        assert!(Instant::now() < deadline, "aiosmtpd did not listen on 127.0.0.1:{port} within 15 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    Smtp { child, port, maildir }
}

/// With `ca_file`, no login (the test server offers no AUTH); without it, a login whose password must not leak
/// when the certificate is refused (before any AUTH is sent).
fn channel(smtp: &Smtp, tls: SmtpTls, ca_file: Option<&Path>) -> Channel {
    Channel::Email(Box::new(
        EmailChannel::new(EmailSettings {
            host: "127.0.0.1".into(),
            port: smtp.port,
            tls,
            from: "rotavault@example.com".into(),
            to: vec!["ops@example.com".into()],
            username: ca_file.is_none().then(|| "rotavault".to_owned()),
            password: ca_file.is_none().then(|| SecretValue::new(PASSWORD)),
            ca_file: ca_file.map(Path::to_owned),
            timeout: Duration::from_secs(10),
        })
        .expect("an email channel"),
    ))
}

fn notifier(name: &str, channel: Channel) -> Notifier {
    let attempts = Attempts {
        backoff: Backoff { attempts: 1, first: Duration::from_millis(1), max: Duration::from_millis(5) },
        timeout: Duration::from_secs(10),
    };
    let client = reqwest::Client::builder().build().expect("client");
    Notifier::start(
        vec![Sink::new(name.into(), vec![EventKind::Failed], None, channel, 8)],
        SOURCE.into(),
        attempts,
        client,
    )
}

fn event(job: &str) -> Event {
    Event::new(
        EventKind::Failed,
        chrono::Utc::now(),
        EventData { job: job.into(), error: Some("the target refused".into()), ..EventData::default() },
    )
}

/// Delivers one event and returns the mail the server stored with its id.
async fn deliver(smtp: &Smtp, tls: SmtpTls, ca: &Path) -> String {
    let notifier = notifier("mail", channel(smtp, tls, Some(ca)));
    let failed = event("tlsjob");
    notifier.emit(&failed);
    assert_eq!(notifier.flush(Duration::from_secs(20)).await, 0);
    let (_, _, stats) = notifier.stats().next().expect("one sink");
    assert_eq!((stats.deliveries(), stats.failures()), (1, 0), "the server answered 250 over {tls:?}");
    std::fs::read_dir(smtp.maildir.join("new"))
        .expect("the Maildir")
        .filter_map(|e| std::fs::read_to_string(e.expect("entry").path()).ok())
        .find(|m| m.contains(&failed.id))
        .expect("the mail with the event's id")
}

#[tokio::test]
async fn an_email_sink_delivers_over_starttls_and_implicit_tls_trusting_its_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    for tls in [SmtpTls::StartTls, SmtpTls::Implicit] {
        let smtp = start(dir.path(), &pki, tls);
        let mail = deliver(&smtp, tls, &pki.ca).await;
        assert!(mail.contains("Subject: rotavault: failed on job tlsjob"), "{tls:?}: {mail}");
        assert!(mail.contains("Job: tlsjob"), "{tls:?}: {mail}");
    }
}

#[tokio::test]
async fn without_its_ca_file_the_server_is_refused_and_the_error_names_the_sink_not_the_password() {
    let (log, _guard) = capture_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    for tls in [SmtpTls::StartTls, SmtpTls::Implicit] {
        let smtp = start(dir.path(), &pki, tls);
        let notifier = notifier("untrusted-mail", channel(&smtp, tls, None));
        notifier.emit(&event("tlsjob"));
        assert_eq!(notifier.flush(Duration::from_secs(20)).await, 0);
        let (_, _, stats) = notifier.stats().next().expect("one sink");
        assert_eq!((stats.deliveries(), stats.failures()), (0, 1), "{tls:?}: an untrusted certificate");
        let stored = std::fs::read_dir(smtp.maildir.join("new")).map(Iterator::count).unwrap_or(0);
        assert_eq!(stored, 0, "{tls:?}: no mail reached the server");
    }
    let log = String::from_utf8(log.lock().expect("log").clone()).expect("utf-8");
    let failures: Vec<&str> =
        log.lines().filter(|l| l.contains("a notification could not be delivered")).collect();
    assert_eq!(failures.len(), 2, "{log}");
    for line in failures {
        assert!(line.contains("sink=untrusted-mail"), "{line}");
        assert!(line.to_lowercase().contains("certificate"), "the reason: {line}");
    }
    assert!(!log.contains(PASSWORD), "the password in the log:\n{log}");
}

/// Captures the log of the current thread (the test runs on a current-thread runtime, delivery tasks included).
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
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}
