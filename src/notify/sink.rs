//! [`Sink`]: one configured notification sink: what it subscribes to, its bounded queue and its counters.
//!
//! The queue drops its *oldest* event when full: a burst of failures should leave a person the latest news, and
//! memory stays bounded however long a receiver is down. Each drop is logged and counted.

use super::channel::Channel;
use crate::events::{Event, EventKind};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many events a sink holds by default while its receiver is slow or down.
pub const DEFAULT_QUEUE: usize = 256;

/// What a sink has done, for `/metrics` and `status`.
#[derive(Debug, Default)]
pub struct SinkStats {
    deliveries: AtomicU64,
    failures: AtomicU64,
    dropped: AtomicU64,
}

impl SinkStats {
    /// Events delivered.
    pub fn deliveries(&self) -> u64 {
        self.deliveries.load(Ordering::Relaxed)
    }
    /// Events given up on after every attempt.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
    /// Events dropped from a full queue before any attempt.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    pub(crate) fn delivered(&self) {
        self.deliveries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// One sink.
#[derive(Debug)]
pub struct Sink {
    pub name: String,
    /// The event kinds it receives.
    pub events: Vec<EventKind>,
    /// `None`: every job.
    pub jobs: Option<Vec<String>>,
    pub channel: Channel,
    capacity: usize,
    queue: Mutex<VecDeque<Event>>,
    pub(crate) wake: tokio::sync::Notify,
    pub stats: SinkStats,
}

impl Sink {
    pub fn new(
        name: String,
        events: Vec<EventKind>,
        jobs: Option<Vec<String>>,
        channel: Channel,
        capacity: usize,
    ) -> Self {
        Self {
            name,
            events,
            jobs,
            channel,
            capacity: capacity.max(1),
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            stats: SinkStats::default(),
        }
    }

    /// Whether it subscribes to `event`.
    pub fn wants(&self, event: &Event) -> bool {
        self.events.contains(&event.kind)
            && self.jobs.as_ref().is_none_or(|jobs| jobs.contains(&event.data.job))
    }

    /// Queues `event` for the delivery task, dropping the oldest queued event when full. Never blocks.
    pub(crate) fn enqueue(&self, event: Event) {
        let dropped = {
            let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let dropped = if queue.len() >= self.capacity { queue.pop_front() } else { None };
            queue.push_back(event);
            dropped
        };
        if let Some(old) = dropped {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                sink = %self.name,
                event = old.kind.name(),
                id = %old.id,
                job = %old.data.job,
                capacity = self.capacity,
                "notification queue full: the oldest event was dropped"
            );
        }
        self.wake.notify_one();
    }

    pub(crate) fn pop(&self) -> Option<Event> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front()
    }

    pub(crate) fn queued(&self) -> usize {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}
