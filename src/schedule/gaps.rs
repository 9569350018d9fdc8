//! A memo of consecutive fires: each pair `(a, b)` says that `b` is the first fire after `a`, so every question
//! about an instant in `[a, b)` (the next fire, the last one) is answered without croner. A handful of pairs is
//! enough: the jobs of one schedule ask about the fires around now and around their last rotation.

use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// How many pairs are kept; the oldest learnt goes first.
const KEPT: usize = 8;

#[derive(Debug, Default)]
pub(super) struct Gaps(Mutex<VecDeque<(DateTime<Utc>, DateTime<Utc>)>>);

impl Gaps {
    /// The pair with `a <= t < b`, if one is known.
    pub fn around(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.lock().iter().copied().find(|&(a, b)| a <= t && t < b)
    }

    /// The fire before `b`, if a pair ending at `b` is known.
    pub fn ending_at(&self, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.lock().iter().find(|&&(_, end)| end == b).map(|&(a, _)| a)
    }

    pub fn remember(&self, a: DateTime<Utc>, b: DateTime<Utc>) {
        let mut pairs = self.lock();
        if pairs.contains(&(a, b)) {
            return;
        }
        if pairs.len() == KEPT {
            pairs.pop_front();
        }
        pairs.push_back((a, b));
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(DateTime<Utc>, DateTime<Utc>)>> {
        // Every change is one push or pop of plain values: a poisoned memo is still consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
