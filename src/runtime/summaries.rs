//! What the stores hold for many jobs, read once per store: the daemon's start-up and scheduling, `status`, the
//! metrics and `GET /v1/jobs` ask here instead of asking every store once per job, so that their cost grows with
//! the number of jobs and not with its square (a store that reads its whole content per call, times every job).
//!
//! Each store gets its jobs' secrets in chunks of [`CHUNK`] through [`Store::summaries`], at most
//! [`CONCURRENT_CHUNKS`] chunks at a time over all stores, each chunk under the engine's call timeout and with its
//! back-off for what failed transiently, as every store call has. A secret whose answer is still an error is
//! reported as such, and the caller decides when to ask again (the daemon looks again later, `status` shows it).

use super::Runtime;
use crate::retry::Backoff;
use crate::rotation::state::JobState;
use crate::store::{SecretRef, Store, StoreError, Summary};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// How many secrets one batch call asks for: a call's timeout stays meaningful, and its answer small.
const CHUNK: usize = 256;

/// How many batch calls run at once, over all stores.
const CONCURRENT_CHUNKS: usize = 4;

/// How many job state files one blocking task reads.
const STATE_CHUNK: usize = 512;

/// One job's stores as read: one answer per store, in the order of the job's stores.
#[derive(Clone, Debug)]
pub struct JobSummaries(pub Vec<Result<Summary, StoreError>>);

impl JobSummaries {
    /// When the secret was last rotated: the oldest current value among the job's stores, or `None` when a store
    /// has none yet. The first error, with the label of the store that gave it, when a store could not be read:
    /// not knowing the age is neither "never rotated" nor "due".
    pub fn rotated_at<'a>(
        &self,
        labels: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<DateTime<Utc>>, (String, StoreError)> {
        let mut oldest: Option<DateTime<Utc>> = None;
        let mut missing = false;
        for (answer, label) in self.0.iter().zip(labels) {
            match answer {
                Ok(Summary { current: Some(m), .. }) => {
                    oldest = Some(oldest.map_or(m.rotated_at, |o| o.min(m.rotated_at)));
                }
                Ok(Summary { current: None, .. }) => missing = true,
                Err(e) => return Err((label.to_owned(), e.clone())),
            }
        }
        Ok(if missing { None } else { oldest })
    }

    /// Whether a store holds a pending value, or could not say.
    pub fn may_be_pending(&self) -> bool {
        self.0.iter().any(|a| !matches!(a, Ok(Summary { pending: None, .. })))
    }
}

impl Runtime {
    /// The summaries of the jobs at `jobs` (indices into `self.jobs`), in that order: each store is asked once
    /// for all of these jobs' secrets in it (in chunks), never once per job.
    pub async fn summaries(&self, jobs: &[usize]) -> Vec<JobSummaries> {
        // Which (position in `jobs`, position among the job's stores) each store answers for.
        let mut by_store: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
        for (at, &index) in jobs.iter().enumerate() {
            for (k, js) in self.jobs[index].job.stores.iter().enumerate() {
                by_store.entry(js.label.as_str()).or_default().push((at, k));
            }
        }
        let (timeout, backoff) = (self.engine.settings().call_timeout, self.engine.settings().backoff);
        let mut calls = Vec::new();
        for (label, slots) in &by_store {
            for chunk in slots.chunks(CHUNK) {
                let (index, k) = (jobs[chunk[0].0], chunk[0].1);
                let store = self.jobs[index].job.stores[k].store.clone();
                let secrets: Vec<_> =
                    chunk.iter().map(|&(at, k)| self.jobs[jobs[at]].job.stores[k].secret.clone()).collect();
                calls.push(async move {
                    let answers = ask(&*store, &secrets, backoff, timeout).await;
                    tracing::trace!(store = %label, secrets = secrets.len(), "summaries read");
                    (chunk, answers)
                });
            }
        }
        let mut out: Vec<Vec<Option<Result<Summary, StoreError>>>> =
            jobs.iter().map(|&index| vec![None; self.jobs[index].job.stores.len()]).collect();
        let mut answered = futures_util::stream::iter(calls).buffer_unordered(CONCURRENT_CHUNKS);
        while let Some((chunk, answers)) = answered.next().await {
            for (&(at, k), answer) in chunk.iter().zip(answers) {
                out[at][k] = Some(answer);
            }
        }
        out.into_iter()
            .map(|answers| {
                JobSummaries(
                    answers.into_iter().map(|a| a.unwrap_or_else(|| Ok(Summary::default()))).collect(),
                )
            })
            .collect()
    }

    /// The job states of the jobs at `jobs`, in that order, read on the blocking pool in chunks (a state is a
    /// small file per job).
    pub async fn job_states(&self, jobs: &[usize]) -> Vec<Result<JobState, String>> {
        // Collected first: a lazy map over `&[usize]` would put a higher-ranked closure in the future, which the
        // `Send` bound of a spawned task cannot prove.
        let reads: Vec<_> = jobs
            .chunks(STATE_CHUNK)
            .map(|chunk| {
                let states = self.engine.states().clone();
                let names: Vec<String> = chunk.iter().map(|&i| self.jobs[i].job.name.clone()).collect();
                async move {
                    let n = names.len();
                    let read = tokio::task::spawn_blocking(move || {
                        states
                            .load_many(&names)
                            .into_iter()
                            .map(|r| r.map_err(|e| e.to_string()))
                            .collect::<Vec<_>>()
                    });
                    match read.await {
                        Ok(states) => states,
                        Err(e) => (0..n).map(|_| Err(format!("the state read stopped: {e}"))).collect(),
                    }
                }
            })
            .collect();
        // Two at a time: both cores busy, and no more threads than that.
        let chunks: Vec<Vec<_>> = futures_util::stream::iter(reads).buffered(2).collect().await;
        chunks.into_iter().flatten().collect()
    }
}

/// One chunk's answers. Like every store call, the batch has a timeout and what failed transiently (a timeout
/// included) is asked again per `backoff`: only those secrets, not the whole chunk.
async fn ask(
    store: &dyn Store,
    secrets: &[SecretRef],
    backoff: Backoff,
    timeout: Duration,
) -> Vec<Result<Summary, StoreError>> {
    let mut answers = call(store, secrets, timeout).await;
    for attempt in 1..backoff.attempts {
        let again: Vec<usize> = (0..answers.len())
            .filter(|&i| answers[i].as_ref().is_err_and(StoreError::is_retryable))
            .collect();
        if again.is_empty() {
            break;
        }
        let hint =
            again.iter().filter_map(|&i| answers[i].as_ref().err().and_then(StoreError::retry_after)).max();
        tokio::time::sleep(backoff.delay(attempt, hint)).await;
        let retried: Vec<SecretRef> = again.iter().map(|&i| secrets[i].clone()).collect();
        for (i, answer) in again.into_iter().zip(call(store, &retried, timeout).await) {
            answers[i] = answer;
        }
    }
    answers
}

async fn call(
    store: &dyn Store,
    secrets: &[SecretRef],
    timeout: Duration,
) -> Vec<Result<Summary, StoreError>> {
    match tokio::time::timeout(timeout, store.summaries(secrets)).await {
        Ok(answers) if answers.len() == secrets.len() => answers,
        Ok(answers) => {
            let detail = format!(
                "asked for {} secrets, answered {}: a bug in the backend",
                secrets.len(),
                answers.len()
            );
            failed_all(store, secrets.len(), detail)
        }
        Err(_) => failed_all(
            store,
            secrets.len(),
            format!("no answer within {}", humantime::format_duration(timeout)),
        ),
    }
}

fn failed_all(store: &dyn Store, n: usize, detail: String) -> Vec<Result<Summary, StoreError>> {
    let error = StoreError::Transient { backend: store.backend(), detail, retry_after: None };
    vec![Err(error); n]
}
