//! `[lease] kind = "kubernetes"`: one `coordination.k8s.io/v1` Lease shared by every replica, through kube-rs's
//! `Api<Lease>`.
//!
//! Written here rather than taken from a leader-election crate, because the engine needs more than "am I the
//! leader": the Lease also carries what the next leader must know ([`SharedState`], in one annotation), and a
//! write of it is the proof the engine waits for before an Apply. Every write is a replace with the
//! `resourceVersion` last read (409 when another write came between), so the holder changes only by a write
//! that saw the holder before it.
//!
//! Expiry is judged as client-go judges it: by how long this replica has seen the same `resourceVersion`, on its
//! own monotonic clock, never by comparing `renewTime` with its wall clock (clocks of two machines differ). A
//! standby therefore waits a whole `leaseDurationSeconds` after it last saw the Lease change, and a replica that
//! starts waits a whole duration before it takes a Lease someone holds.

use crate::config::KubernetesLease;
use crate::shared::SharedState;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The annotation that holds the shared state, as one JSON object.
pub const SHARED_ANNOTATION: &str = "rotavault.io/shared";
/// The annotation by which a one-shot command (`import`, `resolve`) asks the leader to hand the Lease over: its
/// identity. The leader finishes what it runs and releases the Lease; standbys leave a released Lease so marked to
/// the one who asked, unless it goes untouched for the Lease's duration (the asker died).
pub const HANDOVER_ANNOTATION: &str = "rotavault.io/handover-to";

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("cannot reach the Kubernetes API for the lease: {0}")]
    Connect(String),
    #[error("lease {namespace}/{name}: {detail}")]
    Api { namespace: String, name: String, detail: String },
    #[error("lease {namespace}/{name}: what it holds of the shared state cannot be read ({detail})")]
    Shared { namespace: String, name: String, detail: String },
}

/// What one try to take the Lease found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This process holds it.
    Leading,
    /// Another holds it, and had renewed it when last looked at.
    HeldBy(String),
}

/// Why a leader stopped leading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Asked to stop; the Lease was released for a standby to take at once.
    Stopped,
    /// The Lease could not be renewed within `renew_deadline`, or another replica holds it now.
    Lost(String),
}

/// One replica's view of the Lease, and its part in it.
pub struct KubeLease {
    api: Api<Lease>,
    name: String,
    namespace: String,
    identity: String,
    settings: KubernetesLease,
    shared: Arc<SharedState>,
    seen: tokio::sync::Mutex<Seen>,
}

impl std::fmt::Debug for KubeLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeLease")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// The Lease as last read or written.
#[derive(Default)]
struct Seen {
    object: Option<Lease>,
    /// When this replica first saw the Lease at its current `resourceVersion`.
    since: Option<Instant>,
    /// When this replica's last successful write as holder was sent.
    renewed: Option<Instant>,
}

impl KubeLease {
    /// Connects the way every Kubernetes client does: a kubeconfig (`KUBECONFIG`, `~/.kube/config`), else the
    /// pod's service account. The namespace is `[lease] namespace`, else the one that configuration names (a
    /// pod's own).
    pub async fn connect(settings: KubernetesLease, shared: Arc<SharedState>) -> Result<Self, LeaseError> {
        let mut config = kube::Config::infer().await.map_err(|e| LeaseError::Connect(e.to_string()))?;
        let call = call_timeout(&settings);
        config.connect_timeout = Some(call);
        config.read_timeout = Some(call);
        config.write_timeout = Some(call);
        let client = kube::Client::try_from(config).map_err(|e| LeaseError::Connect(e.to_string()))?;
        Ok(Self::with_client(client, settings, shared))
    }

    /// A lease reached through `client` (whose default namespace applies when the config names none).
    pub fn with_client(client: kube::Client, settings: KubernetesLease, shared: Arc<SharedState>) -> Self {
        let namespace = settings.namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
        Self {
            api: Api::namespaced(client, &namespace),
            name: settings.name.clone(),
            namespace,
            identity: super::identity(),
            settings,
            shared,
            seen: tokio::sync::Mutex::default(),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// `namespace/name`, for messages.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Stands by until this process holds the Lease (`Ok(true)`) or `stop` is cancelled (`Ok(false)`), trying every
    /// `retry_period`. Meanwhile the shared state follows the holder's, so a standby's `status` and job API show
    /// the leader's marks.
    pub async fn acquire(&self, stop: &CancellationToken) -> Result<bool, LeaseError> {
        let mut told: Option<String> = None;
        loop {
            match self.try_acquire().await {
                Ok(Attempt::Leading) => {
                    tracing::info!(lease = %self.describe(), identity = %self.identity, "leading: this replica runs the jobs");
                    return Ok(true);
                }
                Ok(Attempt::HeldBy(holder)) => {
                    if told.as_deref() != Some(holder.as_str()) {
                        tracing::info!(lease = %self.describe(), %holder, "standing by: another replica runs the jobs");
                        told = Some(holder);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not read the lease; trying again"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.retry_period) => {}
                () = stop.cancelled() => return Ok(false),
            }
        }
    }

    /// For a one-shot command (`rotate`, `import`, `resolve`): takes the Lease if its holder is gone. A holder that
    /// renews while this waits is alive, and the answer is at once that it holds the Lease; one that does not
    /// renew for the Lease's duration has died, and the Lease is taken.
    pub async fn take_unless_held(&self) -> Result<Attempt, LeaseError> {
        let first = self.try_acquire().await?;
        let Attempt::HeldBy(_) = &first else { return Ok(first) };
        let at_first = self.seen.lock().await.object.as_ref().and_then(version);
        let until = Instant::now() + self.settings.duration + self.settings.retry_period;
        tracing::info!(lease = %self.describe(), "the lease is held; waiting to see whether its holder renews it");
        while Instant::now() < until {
            tokio::time::sleep(self.settings.retry_period).await;
            let attempt = self.try_acquire().await?;
            let now = self.seen.lock().await.object.as_ref().and_then(version);
            if attempt == Attempt::Leading || now != at_first {
                return Ok(attempt);
            }
        }
        self.try_acquire().await
    }

    /// For a one-shot command that a person runs while the daemon leads (`import`, `resolve`): asks the holder to
    /// hand the Lease over ([`HANDOVER_ANNOTATION`]) and takes it once released, waiting at most `within` (the
    /// holder first finishes the rotations it runs). A holder that is gone is waited out as by
    /// [`KubeLease::take_unless_held`]. When `within` passes, the request is withdrawn.
    pub async fn take_by_handover(&self, within: Duration) -> Result<Attempt, LeaseError> {
        let first = self.try_acquire().await?;
        let Attempt::HeldBy(holder) = first else { return Ok(first) };
        self.mark_handover(Some(self.identity.clone())).await?;
        tracing::info!(lease = %self.describe(), %holder, "asked the holder to hand the lease over; waiting for it");
        let until = Instant::now() + within;
        while Instant::now() < until {
            tokio::time::sleep(self.settings.retry_period).await;
            if self.try_acquire().await? == Attempt::Leading {
                return Ok(Attempt::Leading);
            }
        }
        self.mark_handover(None).await?;
        Ok(Attempt::HeldBy(holder))
    }

    /// Sets (or withdraws) this process's handover request on the Lease, whoever holds it: a compare-and-set of
    /// the annotation alone, read again after a 409.
    async fn mark_handover(&self, to: Option<String>) -> Result<(), LeaseError> {
        let mut seen = self.seen.lock().await;
        for _ in 0..5 {
            let Some(mut lease) = self.call(self.api.get_opt(&self.name)).await? else { return Ok(()) };
            let annotations = lease.metadata.annotations.get_or_insert_with(Default::default);
            match &to {
                Some(to) => annotations.insert(HANDOVER_ANNOTATION.to_owned(), to.clone()),
                None if annotations.get(HANDOVER_ANNOTATION) == Some(&self.identity) => {
                    annotations.remove(HANDOVER_ANNOTATION)
                }
                None => return Ok(()),
            };
            match self.call_raw(self.api.replace(&self.name, &PostParams::default(), &lease)).await {
                Ok(written) => {
                    if seen.object.as_ref().map(version) != Some(version(&written)) {
                        seen.since = Some(Instant::now());
                    }
                    seen.object = Some(written);
                    return Ok(());
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(e) => return Err(self.api_error(&e)),
            }
        }
        Err(LeaseError::Api {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            detail: "the lease kept changing while a handover was asked for".into(),
        })
    }

    /// Whether someone other than this process asked for the Lease to be handed over (as last seen).
    pub async fn handover_asked(&self) -> Option<String> {
        let seen = self.seen.lock().await;
        seen.object.as_ref().and_then(handover).filter(|to| *to != self.identity).map(str::to_owned)
    }

    /// Reads what the holder shares, without taking part (`status`): the marks and intents a one-shot reader shows.
    pub async fn read_shared(&self) -> Result<(), LeaseError> {
        let read = self.call(self.api.get_opt(&self.name)).await?;
        let text = read.as_ref().and_then(annotation).unwrap_or_default();
        self.shared.replace(&text).map_err(|e| self.shared_error(e))
    }

    /// One try: takes the Lease when nobody holds it or its holder has not renewed it for its duration, renews it
    /// when this process holds it.
    pub async fn try_acquire(&self) -> Result<Attempt, LeaseError> {
        let mut seen = self.seen.lock().await;
        let read = self.call(self.api.get_opt(&self.name)).await?;
        let Some(lease) = read else {
            return self.create(&mut seen).await;
        };
        let now = Instant::now();
        if seen.object.as_ref().map(version) != Some(version(&lease)) {
            seen.since = Some(now);
        }
        let holder = holder(&lease).map(str::to_owned);
        let duration = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.settings.duration, Duration::from_secs);
        let expired = seen.since.is_some_and(|since| now.duration_since(since) >= duration);
        let shared_text = annotation(&lease).unwrap_or_default();
        seen.object = Some(lease);
        match holder {
            Some(h) if h == self.identity => {
                drop(seen);
                self.renew().await.map(|()| Attempt::Leading)
            }
            Some(h) if !expired => {
                // A standby follows the leader's marks; they are the leader's to write.
                self.shared.replace(&shared_text).map_err(|e| self.shared_error(e))?;
                Ok(Attempt::HeldBy(h))
            }
            // A released Lease keeps a duration of one second; the one who asked for it gets the whole configured
            // duration to come and take it.
            None if seen.object.as_ref().and_then(handover).is_some_and(|to| to != self.identity)
                && seen.since.is_some_and(|since| {
                    now.duration_since(since) < self.settings.duration.max(duration)
                }) =>
            {
                // Released to the one who asked for it.
                let to = seen.object.as_ref().and_then(handover).unwrap_or_default().to_owned();
                self.shared.replace(&shared_text).map_err(|e| self.shared_error(e))?;
                Ok(Attempt::HeldBy(format!("{to} (handed over)")))
            }
            previous => {
                // Nobody holds it, or its holder is gone: take what it knew, then the Lease.
                self.shared.replace(&shared_text).map_err(|e| self.shared_error(e))?;
                let attempt = self.write(&mut seen, true).await?;
                if attempt == Attempt::Leading {
                    tracing::info!(lease = %self.describe(), previous = previous.as_deref().unwrap_or("nobody"), "took over the lease");
                }
                Ok(attempt)
            }
        }
    }

    /// Renews the Lease (with the shared state as it is now) while this process holds it.
    async fn renew(&self) -> Result<(), LeaseError> {
        let mut seen = self.seen.lock().await;
        match self.write(&mut seen, false).await? {
            Attempt::Leading => Ok(()),
            Attempt::HeldBy(holder) => Err(LeaseError::Api {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                detail: format!("now held by {holder}"),
            }),
        }
    }

    /// While this process leads: renews every `retry_period`, and at once when the shared state changes (an apply
    /// intent or a login waits for that write). Returns when `stop` is cancelled (releasing the Lease) or when
    /// leading has ended: another holder, or no successful renewal for `renew_deadline`. Either way, whoever waits
    /// for a write of the shared state is told at once that none will come.
    /// `handover` is cancelled when someone asks for the Lease ([`HANDOVER_ANNOTATION`]); leading goes on (and
    /// the Lease is renewed) until `stop`, so that what runs can finish first.
    pub async fn keep(&self, stop: &CancellationToken, handover: &CancellationToken) -> Ended {
        let ended = loop {
            tokio::select! {
                () = self.shared.changed() => {}
                () = tokio::time::sleep(self.settings.retry_period) => {}
                () = stop.cancelled() => break Ended::Stopped,
            }
            match self.renew().await {
                Ok(()) => {
                    if !handover.is_cancelled()
                        && let Some(to) = self.handover_asked().await
                    {
                        tracing::info!(lease = %self.describe(), %to, "asked to hand the lease over: finishing what runs, then releasing it");
                        handover.cancel();
                    }
                }
                Err(e) => {
                    let renewed = self.seen.lock().await.renewed;
                    let late = renewed.is_none_or(|at| at.elapsed() >= self.settings.renew_deadline);
                    let taken =
                        matches!(&e, LeaseError::Api { detail, .. } if detail.starts_with("now held by"));
                    if taken || late {
                        break Ended::Lost(e.to_string());
                    }
                    tracing::warn!(error = %e, "could not renew the lease; trying again within the renew deadline");
                }
            }
        };
        match &ended {
            Ended::Stopped => self.release().await,
            Ended::Lost(reason) => {
                self.shared.mark_lost();
                tracing::error!(lease = %self.describe(), %reason, "lost the lease: this replica stops leading");
            }
        }
        ended
    }

    /// Gives the Lease up (with the shared state written), so that a standby takes over without waiting out its
    /// duration.
    pub async fn release(&self) {
        let mut seen = self.seen.lock().await;
        if seen.object.as_ref().and_then(holder) != Some(self.identity.as_str()) {
            return;
        }
        let Some(mut lease) = seen.object.clone() else { return };
        let (text, changes) = self.shared.snapshot();
        annotate(&mut lease, text);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(micro_now());
        match self.call(self.api.replace(&self.name, &PostParams::default(), &lease)).await {
            Ok(written) => {
                seen.object = Some(written);
                self.shared.mark_published(changes);
                self.shared.mark_lost();
                tracing::info!(lease = %self.describe(), "released the lease");
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not release the lease; a standby takes it once it expires")
            }
        }
    }

    /// Creates the Lease, held by this process, with the shared state as it is.
    async fn create(&self, seen: &mut Seen) -> Result<Attempt, LeaseError> {
        let (text, changes) = self.shared.snapshot();
        let mut lease = Lease {
            metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
            spec: Some(LeaseSpec { lease_transitions: Some(0), ..LeaseSpec::default() }),
        };
        annotate(&mut lease, text);
        self.hold(&mut lease, false);
        if let Some(spec) = lease.spec.as_mut() {
            spec.acquire_time = spec.renew_time.clone();
        }
        let sent = Instant::now();
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(created) => {
                seen.object = Some(created);
                seen.since = Some(sent);
                seen.renewed = Some(sent);
                self.shared.mark_published(changes);
                tracing::info!(lease = %self.describe(), "created the lease");
                Ok(Attempt::Leading)
            }
            // Another replica created it first.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Ok(Attempt::HeldBy("another replica".into()))
            }
            Err(e) => Err(self.api_error(&e)),
        }
    }

    /// Writes the Lease as last seen, held by this process, with the shared state as it is now. A 409 (another
    /// write came first) reads it again: still this process's (someone annotated it), the write is tried once
    /// more; another's, this process does not hold it.
    async fn write(&self, seen: &mut Seen, take: bool) -> Result<Attempt, LeaseError> {
        for _ in 0..2 {
            let Some(mut lease) = seen.object.clone() else { break };
            let (text, changes) = self.shared.snapshot();
            annotate(&mut lease, text);
            self.hold(&mut lease, take);
            let sent = Instant::now();
            match self.call_raw(self.api.replace(&self.name, &PostParams::default(), &lease)).await {
                Ok(written) => {
                    seen.object = Some(written);
                    seen.since = Some(sent);
                    seen.renewed = Some(sent);
                    self.shared.mark_published(changes);
                    return Ok(Attempt::Leading);
                }
                Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {
                    let read = self.call(self.api.get_opt(&self.name)).await?;
                    let Some(read) = read else {
                        // Deleted under us: nobody holds it; the next try creates it.
                        seen.object = None;
                        return Ok(Attempt::HeldBy("nobody (the lease was deleted)".into()));
                    };
                    let other = holder(&read).filter(|h| *h != self.identity).map(str::to_owned);
                    seen.object = Some(read);
                    seen.since = Some(Instant::now());
                    if let Some(other) = other {
                        return Ok(Attempt::HeldBy(other));
                    }
                    if take {
                        // Released or taken and let go between the read and the write: look again next time.
                        return Ok(Attempt::HeldBy("nobody (it changed while being taken)".into()));
                    }
                }
                Err(e) => return Err(self.api_error(&e)),
            }
        }
        Ok(Attempt::HeldBy("unknown (the lease kept changing)".into()))
    }

    /// Sets this process as the holder, renewed now; `take` starts a new holding (one more transition).
    fn hold(&self, lease: &mut Lease, take: bool) {
        if take
            && let Some(annotations) = lease.metadata.annotations.as_mut()
            && annotations.get(HANDOVER_ANNOTATION).is_some_and(|to| *to == self.identity)
        {
            annotations.remove(HANDOVER_ANNOTATION);
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let now = micro_now();
        if take {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.holder_identity = Some(self.identity.clone());
        // Whole seconds, rounded up: a standby must never judge the Lease expired before this process does.
        let seconds = self.settings.duration.as_secs() + u64::from(self.settings.duration.subsec_nanos() > 0);
        spec.lease_duration_seconds = Some(i32::try_from(seconds.max(1)).unwrap_or(i32::MAX));
        spec.renew_time = Some(now);
    }

    async fn call<T>(&self, call: impl Future<Output = Result<T, kube::Error>>) -> Result<T, LeaseError> {
        self.call_raw(call).await.map_err(|e| self.api_error(&e))
    }

    async fn call_raw<T>(
        &self,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        let limit = call_timeout(&self.settings);
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(kube::Error::Service(
                format!("no answer within {}", humantime::format_duration(limit)).into(),
            )),
        }
    }

    fn api_error(&self, e: &kube::Error) -> LeaseError {
        let detail = match e {
            kube::Error::Api(status) => format!("{} {}: {}", status.code, status.reason, status.message),
            other => other.to_string(),
        };
        LeaseError::Api { namespace: self.namespace.clone(), name: self.name.clone(), detail }
    }

    fn shared_error(&self, e: serde_json::Error) -> LeaseError {
        LeaseError::Shared {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            detail: e.to_string(),
        }
    }
}

/// Each call to the API server gets at most half the renew deadline, so that a slow answer leaves time for one
/// more try before the leader must stop.
fn call_timeout(settings: &KubernetesLease) -> Duration {
    (settings.renew_deadline / 2).max(Duration::from_millis(200))
}

fn version(lease: &Lease) -> Option<String> {
    lease.metadata.resource_version.clone()
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()).filter(|h| !h.is_empty())
}

fn handover(lease: &Lease) -> Option<&str> {
    lease.metadata.annotations.as_ref().and_then(|a| a.get(HANDOVER_ANNOTATION)).map(String::as_str)
}

fn annotation(lease: &Lease) -> Option<String> {
    lease.metadata.annotations.as_ref().and_then(|a| a.get(SHARED_ANNOTATION)).cloned()
}

fn annotate(lease: &mut Lease, text: String) {
    lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(SHARED_ANNOTATION.to_owned(), text);
}

fn micro_now() -> MicroTime {
    let micros = chrono::Utc::now().timestamp_micros();
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(micros)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}
