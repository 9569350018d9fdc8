//! The systemd notify protocol (`sd_notify(3)`), spoken by hand: a datagram of `KEY=VALUE` lines to the Unix
//! socket named in `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Without that variable the
//! process was not started by systemd as `Type=notify` and every call is a no-op, so the daemon calls these
//! unconditionally.
//!
//! A notification never fails the daemon and never blocks it: the socket is non-blocking, and an error (systemd
//! gone, its queue full) is logged at debug level and forgotten, as `sd_notify` itself does.
//!
//! The messages: `READY=1` once start-up recovery is done (and again after a reload), `STATUS=` a line a person
//! reads in `systemctl status`, `WATCHDOG=1` at half of `WATCHDOG_USEC` while the scheduler runs (a stalled runtime
//! stops pinging and systemd restarts it), `RELOADING=1` with `MONOTONIC_USEC` (systemd 253+ matches the reload to
//! the `READY=1` that follows by it) and `STOPPING=1` once shutdown has begun.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where notifications go; clones share the socket. `Notifier::default()` is the no-op one.
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    socket: Option<Arc<Socket>>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
struct Socket {
    address: SocketAddr,
    socket: UnixDatagram,
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service: `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`.
    pub fn from_env() -> Notifier {
        let var = |name| std::env::var(name).ok();
        Notifier::from_vars(
            var("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
    }

    /// [`Notifier::from_env`] with the variables given, for a process whose id is `pid`. A value that cannot be
    /// used is logged and ignored: a wrong notify socket must not stop the daemon from rotating.
    pub fn from_vars(
        notify_socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> Notifier {
        let socket = notify_socket.filter(|s| !s.is_empty()).and_then(|name| match open(name) {
            Ok(socket) => Some(Arc::new(socket)),
            Err(e) => {
                tracing::warn!(notify_socket = name, error = %e, "NOTIFY_SOCKET unusable; not notifying systemd");
                None
            }
        });
        Notifier { socket, watchdog: watchdog_interval(watchdog_usec, watchdog_pid, pid) }
    }

    /// Whether systemd listens at all.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as `sd_watchdog_enabled(3)` advises; `None`
    /// without a watchdog, or when it is meant for another process (`WATCHDOG_PID`).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// `STATUS=`: one line for `systemctl status`. Never give it a secret; line breaks are flattened so the text
    /// cannot add assignments of its own.
    pub fn status(&self, text: &str) {
        self.send(&format!("STATUS={}", text.replace(['\n', '\r'], " ")));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    /// Sends `WATCHDOG=1` at [`Notifier::watchdog_interval`] until `shutdown`; returns at once without a watchdog.
    /// It runs on the daemon's runtime beside the job tasks, so the pings stop when that runtime stalls.
    pub async fn keep_watchdog(self, shutdown: CancellationToken) {
        let Some(every) = self.watchdog.filter(|_| self.enabled()) else { return };
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.watchdog(),
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Sends `STOPPING=1` (and a status line) once `shutdown` is cancelled.
    pub async fn stopping_on(self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        self.status("stopping: finishing rotations in flight");
        self.stopping();
    }

    fn send(&self, message: &str) {
        let Some(socket) = &self.socket else { return };
        if let Err(e) = socket.socket.send_to_addr(message.as_bytes(), &socket.address) {
            tracing::debug!(error = %e, "systemd notification not sent");
        }
    }
}

/// Counts down the jobs not yet scheduled (read, recovered where something was pending, and planned) and says
/// `READY=1` when the last one is (at once when there are no jobs). One per runtime: a reload makes a new one,
/// and its start-up ends in `READY=1` again.
#[derive(Debug)]
pub struct Startup {
    notifier: Notifier,
    left: AtomicUsize,
    jobs: usize,
}

impl Startup {
    pub fn new(notifier: Notifier, jobs: usize) -> Arc<Startup> {
        let startup = Arc::new(Startup { notifier, left: AtomicUsize::new(jobs), jobs });
        startup.notifier.status(&format!("start-up: scheduling {jobs} job(s)"));
        if jobs == 0 {
            startup.done();
        }
        startup
    }

    /// One job is scheduled (its start-up recovery, if it needed one, settled or failed: it is scheduled either
    /// way).
    pub fn recovered(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done();
        }
    }

    /// A standby replica is ready as it is: another replica runs the jobs, and this one's start-up begins when it
    /// takes over (its status says so then).
    pub fn standing_by(&self) {
        self.notifier.status("standing by: another replica holds the lease and runs the jobs");
        self.notifier.ready();
    }

    fn done(&self) {
        self.notifier.status(&format!("running {} job(s)", self.jobs));
        self.notifier.ready();
    }
}

fn open(name: &str) -> std::io::Result<Socket> {
    let address = if let Some(abstract_name) = name.strip_prefix('@') {
        abstract_address(abstract_name)?
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name)?
    } else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "expected an absolute socket path or @abstract-name",
        ));
    };
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    Ok(Socket { address, socket })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_address(name: &str) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_address(_name: &str) -> std::io::Result<SocketAddr> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "abstract sockets exist only on Linux"))
}

fn watchdog_interval(usec: Option<&str>, watchdog_pid: Option<&str>, pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(target) = watchdog_pid
        && target.trim().parse::<u32>().ok() != Some(pid)
    {
        return None;
    }
    Some(Duration::from_micros(usec) / 2)
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
}

#[cfg(test)]
#[path = "systemd_tests.rs"]
mod tests;
