//! The zone of each user: from the cache, or looked up (unauthenticated, and outside Autotask's limits), and
//! refreshed ahead of its expiry so that no rotation has to look one up.

use super::{AutotaskTenant, invalid, safe_failure};
use crate::secret::redact::Redactor;
use crate::target::TargetError;
use crate::target::autotask::answer::{Refusal, classify, rest_messages};
use crate::target::autotask::patience::Attempt;
use crate::target::autotask::zone::{Zone, parse_zone_information};

impl AutotaskTenant {
    /// The zone of `user`, from the cache or looked up.
    pub(in crate::target::autotask) async fn zone(&self, user: &str) -> Result<Zone, TargetError> {
        if let Some(zone) = self.zones.get(user) {
            return Ok(zone);
        }
        self.resolve_zone(user).await
    }

    /// Looks up again every cached zone that is half its lifetime old, off any rotation (the daemon calls it
    /// every hour): a rotation then finds its zones cached whenever it comes, and a zone that moved is noticed
    /// before a rotation needs it. Unauthenticated, and exempt from Autotask's limits; a lookup that fails is
    /// logged and leaves the entry to expire as before. Returns how many were looked up.
    pub async fn refresh_zones(&self) -> usize {
        let users = self.zones.aging(chrono::Utc::now());
        for user in &users {
            match self.resolve_zone(user).await {
                Ok(_) => tracing::debug!(user = %user, "zone refreshed ahead of its expiry"),
                Err(e) => tracing::warn!(user = %user, error = %e, "the zone could not be refreshed"),
            }
        }
        users.len()
    }

    async fn resolve_zone(&self, user: &str) -> Result<Zone, TargetError> {
        let what = "GET V1.0/zoneInformation";
        let mut patience = self.patience(what);
        let zone = loop {
            let attempt = self.lookup_zone(user, what).await;
            if let Some(zone) = patience.settle(attempt).await? {
                break zone;
            }
        };
        tracing::debug!(user, zone = %zone.rest, "zone resolved");
        self.zones.put(user, zone.clone());
        Ok(zone)
    }

    async fn lookup_zone(&self, user: &str, what: &str) -> Attempt<Zone, TargetError> {
        let request = self.http.get(self.lookup.clone()).query(&[("user", user)]);
        let answer = match self.exchange(None, what, request, None).await {
            Ok(answer) => answer,
            Err(failure) => return safe_failure(failure, what),
        };
        if answer.status == 200 {
            return match parse_zone_information(&answer.body).and_then(|url| Zone::from_rest_base(&url)) {
                Ok(zone) => Attempt::Done(zone),
                Err(why) => Attempt::Stop(invalid(format!("{what} for `{user}`: {why}"))),
            };
        }
        // The zone lookup is unauthenticated: it sends no secret that could come back.
        match classify(answer.status, answer.retry_after, &rest_messages(&answer.body, &Redactor::none())) {
            Refusal::UnknownUser => Attempt::Stop(invalid(format!(
                "Autotask knows no API user `{user}` (the zone lookup at {} cannot place it)",
                self.lookup
            ))),
            refusal if refusal.is_temporary() => Attempt::after(&refusal),
            refusal => Attempt::Stop(invalid(format!("{what} for `{user}`: {refusal}"))),
        }
    }

    /// Drops `user`'s cached zone, so that the next call looks it up again.
    pub(in crate::target::autotask) fn forget_zone(&self, user: &str) {
        tracing::debug!(user, "zone forgotten; it is looked up again");
        self.zones.forget(user);
    }
}
