//! `rotavault run` under systemd, through the real binary: a notify socket the test binds and reads stands in for
//! systemd's (READY=1 after start-up recovery, STATUS= lines, WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 and
//! READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM); SIGHUP with a valid and an invalid configuration; and
//! the process hygiene a running daemon shows in `/proc/<pid>/`.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::binary::{Daemon, Rotavault, message_is};

const WAIT: Duration = Duration::from_secs(30);

/// A notify socket, and every datagram it received so far.
struct NotifySocket {
    path: PathBuf,
    messages: mpsc::Receiver<String>,
    received: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                if tx.send(String::from_utf8_lossy(&buf[..n]).into_owned()).is_err() {
                    break;
                }
            }
        });
        NotifySocket { path, messages, received: Vec::new() }
    }

    /// Waits (at most `WAIT`) for a datagram that `wanted` accepts, after those already taken; returns it.
    fn expect(&mut self, wanted: &dyn Fn(&str) -> bool, what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(message) => {
                    self.received.push(message.clone());
                    if wanted(&message) {
                        return message;
                    }
                }
                Err(_) => panic!("no {what} notification; received: {:?}", self.received),
            }
        }
    }
}

fn config(dir: &Path, jobs: &[(&str, &str)]) -> String {
    let mut text = format!(
        "state_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[stores.mem]\nkind = \"memory\"\n\n[targets.shared]\nkind = \"generated\"\n",
        dir.join("state").display()
    );
    for (name, max_age) in jobs {
        text.push_str(&format!(
            "\n[jobs.{name}]\ntarget = \"shared\"\nstores = [ {{ store = \"mem\", name = \"{name}\" }} ]\nmax_age = \"{max_age}\"\n"
        ));
    }
    text
}

fn setup(dir: &Path, jobs: &[(&str, &str)]) -> Rotavault {
    let path = dir.join("rotavault.toml");
    std::fs::write(&path, config(dir, jobs)).expect("write config");
    Rotavault::new(dir, path)
}

fn rotated(job: &str) -> impl Fn(&String) -> bool {
    let field = format!("\"job\":\"{job}\"");
    move |l: &String| message_is(l, "rotation done") && l.contains(&field)
}

fn count(daemon: &Daemon, wanted: &dyn Fn(&String) -> bool) -> usize {
    daemon.log.iter().filter(|l| wanted(l)).count()
}

fn under_systemd(daemon: &Rotavault, notify: &NotifySocket, watchdog_usec: Option<&str>) -> Daemon {
    daemon.start_daemon_with(|command| {
        command.env("NOTIFY_SOCKET", &notify.path);
        if let Some(usec) = watchdog_usec {
            command.env("WATCHDOG_USEC", usec);
        }
    })
}

#[test]
fn under_systemd_the_daemon_says_ready_once_every_job_is_scheduled_pings_the_watchdog_and_says_stopping_on_sigterm()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let rotavault = setup(dir.path(), &[("first", "30d")]);
    let mut notify = NotifySocket::bind(dir.path());
    // A 400 ms watchdog: a ping every 200 ms.
    let mut daemon = under_systemd(&rotavault, &notify, Some("400000"));

    notify.expect(&|m| m == "STATUS=start-up: scheduling 1 job(s)", "start-up status");
    notify.expect(&|m| m == "READY=1", "READY=1");
    assert!(
        daemon.wait_until(WAIT, &mut |log| log.iter().any(|l| message_is(l, "every job is scheduled"))),
        "the end of start-up is logged"
    );
    assert!(notify.received.contains(&"STATUS=running 1 job(s)".to_owned()), "{:?}", notify.received);

    let started = Instant::now();
    for _ in 0..5 {
        notify.expect(&|m| m == "WATCHDOG=1", "WATCHDOG=1");
    }
    // Five pings at 200 ms take about a second; far less would mean a ping per tick of something else.
    assert!(started.elapsed() >= Duration::from_millis(600), "pings too fast: {:?}", started.elapsed());

    assert_eq!(daemon.sigterm(), Some(0));
    notify.expect(&|m| m == "STOPPING=1", "STOPPING=1");
    assert!(notify.received.iter().all(|m| !m.contains("RELOADING")), "{:?}", notify.received);
}

#[test]
fn without_watchdog_usec_no_watchdog_ping_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rotavault = setup(dir.path(), &[("first", "30d")]);
    let mut notify = NotifySocket::bind(dir.path());
    let mut daemon = under_systemd(&rotavault, &notify, None);
    notify.expect(&|m| m == "READY=1", "READY=1");
    assert!(daemon.wait_until(WAIT, &mut |log| log.iter().any(rotated("first"))), "first rotates");
    assert_eq!(daemon.sigterm(), Some(0));
    notify.expect(&|m| m == "STOPPING=1", "STOPPING=1");
    assert!(!notify.received.iter().any(|m| m == "WATCHDOG=1"), "{:?}", notify.received);
}

#[test]
fn sighup_with_a_valid_config_reloads_it_and_the_new_job_rotates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rotavault = setup(dir.path(), &[("first", "30d")]);
    let mut notify = NotifySocket::bind(dir.path());
    let mut daemon = under_systemd(&rotavault, &notify, None);
    notify.expect(&|m| m == "READY=1", "READY=1");
    assert!(daemon.wait_until(WAIT, &mut |log| log.iter().any(rotated("first"))), "first rotates");

    std::fs::write(&rotavault.config, config(dir.path(), &[("first", "30d"), ("second", "30d")]))
        .expect("write the new config");
    daemon.signal("HUP");

    let reloading = notify.expect(&|m| m.starts_with("RELOADING=1"), "RELOADING=1");
    assert!(reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")), "{reloading}");
    notify.expect(&|m| m == "STATUS=start-up: scheduling 2 job(s)", "the new runtime's start-up");
    notify.expect(&|m| m == "READY=1", "READY=1 after the reload");
    assert!(daemon.wait_until(WAIT, &mut |log| log.iter().any(rotated("second"))), "{}", daemon.text());
    assert!(daemon.log.iter().any(|l| message_is(l, "configuration reloaded")), "{}", daemon.text());
    assert_eq!(daemon.sigterm(), Some(0));
}

#[test]
fn sighup_with_an_invalid_config_logs_the_error_and_the_running_jobs_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    // `first` rotates every 2 seconds, so the test sees it go on after the refused reload.
    let rotavault = setup(dir.path(), &[("first", "2s")]);
    let mut notify = NotifySocket::bind(dir.path());
    let mut daemon = under_systemd(&rotavault, &notify, None);
    notify.expect(&|m| m == "READY=1", "READY=1");
    assert!(daemon.wait_until(WAIT, &mut |log| log.iter().any(rotated("first"))), "first rotates");

    let mut broken = config(dir.path(), &[("first", "2s"), ("second", "30d")]);
    broken.push_str("colour = \"blue\"\n");
    std::fs::write(&rotavault.config, broken).expect("write the broken config");
    daemon.signal("HUP");

    notify.expect(&|m| m.starts_with("RELOADING=1"), "RELOADING=1");
    notify.expect(&|m| m.starts_with("STATUS=reload refused"), "the refusal's status");
    notify.expect(&|m| m == "READY=1", "READY=1 with the old configuration");
    let refused = |l: &String| message_is(l, "reload refused: the running configuration stays");
    assert!(daemon.wait_until(WAIT, &mut |log| log.iter().any(refused)), "{}", daemon.text());
    let line = daemon.log.iter().find(|l| refused(l)).expect("the refusal").clone();
    assert!(line.contains("rotavault.toml") && line.contains("colour"), "names the file and key: {line}");

    let before = count(&daemon, &rotated("first"));
    assert!(
        daemon.wait_until(WAIT, &mut |log| log.iter().filter(|l| rotated("first")(l)).count() >= before + 2),
        "the old job goes on rotating: {}",
        daemon.text()
    );
    assert!(!daemon.log.iter().any(rotated("second")), "the invalid config's job never ran");
    assert_eq!(daemon.sigterm(), Some(0));
}

#[test]
fn the_daemon_runs_with_core_dumps_off_and_not_dumpable() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let rotavault = setup(dir.path(), &[("first", "30d")]);
    // A non-dumpable process's /proc files belong to root, which only shows when it runs as another user: as
    // root, the test runs the daemon as `nobody`, in a directory it may use.
    let root = rustix::process::getuid().is_root();
    if root {
        for path in [dir.path().to_owned(), rotavault.config.clone()] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        }
    }
    let mut daemon = rotavault.start_daemon_with(|command| {
        if root {
            command.uid(65534).gid(65534);
        }
    });
    assert!(daemon.wait_until(WAIT, &mut |log| log.iter().any(rotated("first"))), "{}", daemon.text());

    let proc = PathBuf::from(format!("/proc/{}", daemon.pid()));
    let limits = std::fs::read_to_string(proc.join("limits")).expect("limits");
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).expect("core limit line");
    assert_eq!(core.split_whitespace().collect::<Vec<_>>()[4..6], ["0", "0"], "{core}");

    let status = std::fs::read_to_string(proc.join("status")).expect("status");
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .expect("Uid line");
    assert_ne!(uid, 0, "the daemon runs as an ordinary user");
    let owner = std::fs::metadata(proc.join("environ")).expect("environ").uid();
    assert_eq!(owner, 0, "a non-dumpable process's /proc files are root's, not its user's ({uid})");
    assert_eq!(daemon.sigterm(), Some(0));
}
