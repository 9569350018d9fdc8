//! Notifications: `[notify.NAME]` sinks that tell a person (Slack, Teams, email) or a system (a signed webhook)
//! about the events they subscribe to, and the signed webhooks of `after_rotation` hooks.
//!
//! [`Notifier`] is an [`EventSink`]: `emit` only puts the event on each subscribed sink's bounded queue and
//! returns, so a slow or dead receiver never delays a rotation. One task per sink delivers, retrying with
//! back-off a bounded number of times; a final failure is logged, counted ([`SinkStats`]) and raised as a
//! `notification_failed` event to the *other* sinks. A failure to deliver a `notification_failed` event raises
//! nothing more, so two broken sinks cannot feed each other. At shutdown [`Notifier::flush`] delivers what is
//! queued, for at most a deadline.
//!
//! Files: `sink.rs` (queue, subscription, counters), `channel.rs` (one `match` over kinds), `webhook.rs` and
//! `signing.rs` (Standard Webhooks), `slack.rs`, `teams.rs`, `email.rs`, `http.rs` (the one POST), `retry.rs`,
//! `error.rs`, `message.rs` (what a person reads).

mod channel;
mod email;
mod error;
pub mod files;
pub(crate) mod http;
mod message;
mod retry;
mod signing;
mod sink;
mod slack;
mod teams;
pub mod webhook;

pub use channel::Channel;
pub use email::{EmailChannel, EmailSettings, SmtpTls};
pub use error::DeliveryError;
pub use retry::{Attempts, Failure};
pub use signing::{KEY_PREFIX, SignedHeaders, SigningKey};
pub use sink::{DEFAULT_QUEUE, Sink, SinkStats};
pub use webhook::WebhookChannel;

use crate::events::{Event, EventData, EventKind, EventSink};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a shutdown waits for queued notifications by default.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// The notification sinks of this process and their delivery tasks.
#[derive(Debug, Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sinks: Vec<Sink>,
    source: String,
    attempts: Attempts,
    client: reqwest::Client,
    /// Set by `flush`: deliver what is queued, then end.
    closing: CancellationToken,
    /// Set when the flush deadline passes: stop at once.
    abort: CancellationToken,
    tracker: TaskTracker,
    /// Deliveries under way, across sinks.
    busy: AtomicUsize,
    /// Where a raised `notification_failed` also goes (the audit file and log), beside the other sinks.
    audit: Option<Arc<dyn EventSink>>,
}

impl Notifier {
    /// Starts one delivery task per sink, on the current tokio runtime. `source` is the CloudEvents source.
    pub fn start(sinks: Vec<Sink>, source: String, attempts: Attempts, client: reqwest::Client) -> Self {
        Self::start_with_audit(sinks, source, attempts, client, None)
    }

    /// [`Notifier::start`], with `audit` also given every `notification_failed` event a sink raises (the audit
    /// file and the log; never this notifier itself, which raises to its other sinks on its own).
    pub fn start_with_audit(
        sinks: Vec<Sink>,
        source: String,
        attempts: Attempts,
        client: reqwest::Client,
        audit: Option<Arc<dyn EventSink>>,
    ) -> Self {
        let inner = Arc::new(Inner {
            sinks,
            source,
            attempts,
            client,
            closing: CancellationToken::new(),
            abort: CancellationToken::new(),
            tracker: TaskTracker::new(),
            busy: AtomicUsize::new(0),
            audit,
        });
        for index in 0..inner.sinks.len() {
            inner.tracker.spawn(deliver(inner.clone(), index));
        }
        inner.tracker.close();
        Self { inner }
    }

    /// Each sink's name, kind and counters, for metrics.
    pub fn stats(&self) -> impl Iterator<Item = (&str, &'static str, &SinkStats)> {
        self.inner.sinks.iter().map(|s| (s.name.as_str(), s.channel.kind(), &s.stats))
    }

    pub fn is_empty(&self) -> bool {
        self.inner.sinks.is_empty()
    }

    /// Delivers what is queued, waiting at most `deadline`; then stops every delivery. Returns how many events
    /// were left undelivered (each also logged).
    pub async fn flush(&self, deadline: Duration) -> usize {
        self.inner.closing.cancel();
        if tokio::time::timeout(deadline, self.inner.tracker.wait()).await.is_err() {
            self.inner.abort.cancel();
            self.inner.tracker.wait().await;
        }
        let mut left = 0;
        for sink in &self.inner.sinks {
            let queued = sink.queued();
            if queued > 0 {
                tracing::warn!(sink = %sink.name, events = queued, "shutdown: notifications left undelivered");
            }
            left += queued;
        }
        left
    }
}

impl EventSink for Notifier {
    fn emit(&self, event: &Event) {
        for sink in self.inner.sinks.iter().filter(|s| s.wants(event)) {
            sink.enqueue(event.clone());
        }
    }
}

/// The delivery task of sink `index`.
async fn deliver(inner: Arc<Inner>, index: usize) {
    let sink = &inner.sinks[index];
    loop {
        // Counted busy before popping, so that a sink that finds its queue empty during a flush knows whether
        // another sink may still raise a `notification_failed` into it.
        inner.busy.fetch_add(1, Ordering::SeqCst);
        let Some(event) = sink.pop() else {
            inner.busy.fetch_sub(1, Ordering::SeqCst);
            if inner.closing.is_cancelled() && inner.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            let closing = inner.closing.clone();
            tokio::select! {
                () = sink.wake.notified() => {}
                () = async move { if closing.is_cancelled() { std::future::pending().await } else { closing.cancelled().await } } => {}
                () = inner.abort.cancelled() => return,
            }
            continue;
        };
        let result = retry::with_retry(inner.attempts, &inner.abort, || {
            sink.channel.send(&inner.client, &event, &inner.source)
        })
        .await;
        match result {
            Ok(()) => sink.stats.delivered(),
            Err(Failure::Aborted) => {
                tracing::warn!(sink = %sink.name, event = event.kind.name(), id = %event.id,
                    "shutdown: a notification was not delivered");
                inner.busy.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            Err(failure) => {
                sink.stats.failed();
                tracing::error!(
                    sink = %sink.name,
                    kind = sink.channel.kind(),
                    event = event.kind.name(),
                    id = %event.id,
                    job = %event.data.job,
                    error = %failure,
                    "a notification could not be delivered"
                );
                if event.kind != EventKind::NotificationFailed {
                    inner.raise_failure(index, &event, &failure);
                }
            }
        }
        inner.busy.fetch_sub(1, Ordering::SeqCst);
        // A flush waits for every sink to be idle: tell the idle ones to look again.
        for other in &inner.sinks {
            other.wake.notify_one();
        }
    }
}

impl Inner {
    /// Tells every sink but `failed` that sink `failed` could not deliver `event`.
    fn raise_failure(&self, failed: usize, event: &Event, failure: &Failure) {
        let sink = &self.sinks[failed];
        let error_kind = match failure {
            Failure::Final { error, .. } => error.metric_label(),
            Failure::Aborted => "aborted",
        };
        let raised = Event::new(
            EventKind::NotificationFailed,
            chrono::Utc::now(),
            EventData {
                job: event.data.job.clone(),
                rotation_id: event.data.rotation_id.clone(),
                error_kind: Some(error_kind.to_owned()),
                error: Some(failure.to_string()),
                detail: Some(format!(
                    "sink `{}` ({}) could not deliver event {} ({})",
                    sink.name,
                    sink.channel.kind(),
                    event.id,
                    event.kind.name()
                )),
                ..EventData::default()
            },
        );
        if let Some(audit) = &self.audit {
            audit.emit(&raised);
        }
        for (index, other) in self.sinks.iter().enumerate() {
            if index != failed && other.wants(&raised) {
                other.enqueue(raised.clone());
            }
        }
    }
}
