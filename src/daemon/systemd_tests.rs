//! The notifier against a real datagram socket the test binds and reads, as systemd's would be.

use super::*;
use std::os::unix::net::UnixDatagram;

struct Listener {
    _dir: tempfile::TempDir,
    path: String,
    socket: UnixDatagram,
}

fn listener() -> Listener {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind");
    socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    Listener { path: path.to_str().expect("utf-8").to_owned(), _dir: dir, socket }
}

impl Listener {
    fn notifier(&self) -> Notifier {
        Notifier::from_vars(Some(&self.path), None, None, 1)
    }

    fn next(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("a notification");
        String::from_utf8(buf[..n].to_vec()).expect("utf-8")
    }

    fn nothing_waiting(&self) -> bool {
        self.socket.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 64];
        let empty = self.socket.recv(&mut buf).is_err();
        self.socket.set_nonblocking(false).expect("blocking");
        empty
    }
}

#[test]
fn each_call_sends_its_message_to_the_notify_socket() {
    let l = listener();
    let n = l.notifier();
    assert!(n.enabled());
    n.ready();
    n.status("running 2 job(s)");
    n.watchdog();
    n.stopping();
    assert_eq!(l.next(), "READY=1");
    assert_eq!(l.next(), "STATUS=running 2 job(s)");
    assert_eq!(l.next(), "WATCHDOG=1");
    assert_eq!(l.next(), "STOPPING=1");
}

#[test]
fn reloading_carries_the_monotonic_clock_systemd_compares_it_with() {
    let l = listener();
    let before = monotonic_usec();
    l.notifier().reloading();
    let message = l.next();
    let mut lines = message.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"));
    let usec: u64 = lines
        .next()
        .and_then(|line| line.strip_prefix("MONOTONIC_USEC="))
        .expect("MONOTONIC_USEC line")
        .parse()
        .expect("a number");
    assert!(usec >= before && usec <= monotonic_usec(), "{usec} not between the readings around it");
}

#[test]
fn a_status_line_cannot_add_assignments_of_its_own() {
    let l = listener();
    l.notifier().status("reload refused\nREADY=1");
    assert_eq!(l.next(), "STATUS=reload refused READY=1");
}

#[test]
fn an_abstract_socket_name_is_reached_too() {
    let name = format!("rotavault-test-{}", uuid::Uuid::new_v4());
    let address = abstract_address(&name).expect("abstract address");
    let socket = UnixDatagram::bind_addr(&address).expect("bind abstract");
    socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    Notifier::from_vars(Some(&format!("@{name}")), None, None, 1).ready();
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).expect("a notification");
    assert_eq!(&buf[..n], b"READY=1");
}

#[test]
fn without_notify_socket_every_call_is_a_no_op() {
    let n = Notifier::from_vars(None, Some("30000000"), None, 1);
    assert!(!n.enabled());
    n.ready();
    n.status("x");
    n.reloading();
    n.stopping();
}

#[test]
fn an_unusable_notify_socket_is_ignored_not_fatal() {
    let n = Notifier::from_vars(Some("relative/path.sock"), None, None, 1);
    assert!(!n.enabled());
    let gone = Notifier::from_vars(Some("/nonexistent/rotavault/notify.sock"), None, None, 1);
    gone.ready();
}

#[test]
fn the_watchdog_pings_at_half_of_watchdog_usec_for_this_process_only() {
    let half = Some(Duration::from_secs(15));
    assert_eq!(Notifier::from_vars(None, Some("30000000"), None, 7).watchdog_interval(), half);
    assert_eq!(Notifier::from_vars(None, Some("30000000"), Some("7"), 7).watchdog_interval(), half);
    assert_eq!(Notifier::from_vars(None, Some("30000000"), Some("8"), 7).watchdog_interval(), None);
    assert_eq!(Notifier::from_vars(None, Some("0"), None, 7).watchdog_interval(), None);
    assert_eq!(Notifier::from_vars(None, Some("soon"), None, 7).watchdog_interval(), None);
    assert_eq!(Notifier::from_vars(None, None, None, 7).watchdog_interval(), None);
}

#[tokio::test(start_paused = true)]
async fn keep_watchdog_pings_every_interval_until_shutdown() {
    let l = listener();
    let n = Notifier::from_vars(Some(&l.path), Some("2000000"), None, 1);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(n.keep_watchdog(shutdown.clone()));
    // The first tick is at once, then one a second (half of 2 s): 0 s, 1 s, 2 s, 3 s.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    shutdown.cancel();
    task.await.expect("no panic");
    for _ in 0..4 {
        assert_eq!(l.next(), "WATCHDOG=1");
    }
    assert!(l.nothing_waiting(), "no ping after shutdown or beyond the interval");
}

#[test]
fn ready_comes_once_the_last_job_has_recovered() {
    let l = listener();
    let startup = Startup::new(l.notifier(), 2);
    assert_eq!(l.next(), "STATUS=start-up: scheduling 2 job(s)");
    startup.recovered();
    assert!(l.nothing_waiting(), "not ready while a job is still recovering");
    startup.recovered();
    assert_eq!(l.next(), "STATUS=running 2 job(s)");
    assert_eq!(l.next(), "READY=1");
}

#[test]
fn with_no_jobs_ready_comes_at_once() {
    let l = listener();
    let _startup = Startup::new(l.notifier(), 0);
    assert_eq!(l.next(), "STATUS=start-up: scheduling 0 job(s)");
    assert_eq!(l.next(), "STATUS=running 0 job(s)");
    assert_eq!(l.next(), "READY=1");
}
