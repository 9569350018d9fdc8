//! [`RequestCounts`]: how many requests a tenant made, by endpoint and outcome, for `/metrics`.
//!
//! Counted where every request leaves ([`super::tenant::AutotaskTenant::exchange`]), so nothing sent escapes it.
//! Both labels come from fixed sets (the endpoints, an HTTP status, or why there was no answer), so the series
//! stay few whatever Autotask answers.

use super::tenant::{Answer, Endpoint, Failure};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(super) struct RequestCounts(Mutex<BTreeMap<(&'static str, String), u64>>);

impl RequestCounts {
    /// Counts one request to `endpoint` (`None`: the zone lookup) by what came of it.
    pub fn count(&self, endpoint: Option<Endpoint>, result: &Result<Answer, Failure>) {
        let status = match result {
            Ok(answer) => answer.status.to_string(),
            Err(failure) => failure_label(failure).to_owned(),
        };
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((endpoint_label(endpoint), status))
            .or_default() += 1;
    }

    /// `((endpoint, status), count)` of every pair seen so far.
    pub fn snapshot(&self) -> Vec<((&'static str, String), u64)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

fn endpoint_label(endpoint: Option<Endpoint>) -> &'static str {
    match endpoint {
        None => "zone_lookup",
        Some(Endpoint::Resources) => "resources",
        Some(Endpoint::ThresholdInformation) => "threshold_information",
        Some(Endpoint::Soap) => "soap",
    }
}

fn failure_label(failure: &Failure) -> &'static str {
    match failure {
        Failure::NotSent(_) => "not_sent",
        Failure::Lost(_) => "lost",
        Failure::OverBudget(_) => "over_budget",
        Failure::Guard(_) => "guard",
        // Nothing was sent either, but it is rotavault's fault, not the network's: worth its own series.
        Failure::Broken(_) => "broken",
    }
}
