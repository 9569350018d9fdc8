//! The checks a job is held to, decided purely from what `status`, the job state and the `previous` reads found,
//! so that each rule can be proven alone (the tests below name one reason each).
//!
//! A check that cannot be made (a store did not answer) is `unknown`, never a pass: a report that a security team
//! files must not call compliant what it could not see.

use super::{
    AgePoint, Check, Evidence, History, JobReport, Outcome, StoreEvidence, Verdict, human_age, timestamp,
};
use crate::config::{GlobalPolicy, display_duration};
use crate::rotation::state::JobState;
use crate::secret::SecretPolicy;
use crate::status::JobStatus;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// What a store's previous slot held, read for its metadata only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "slot", rename_all = "snake_case")]
pub enum PreviousSlot {
    /// Not read: the job has had fewer than two values, or the store's current could not be read.
    NotRead,
    Present {
        generation: u64,
    },
    Absent,
    /// The store answered that the secret is not rotavault's (its ownership tags are gone or another's).
    NotOwned {
        error: String,
    },
    Unreadable {
        error: String,
    },
}

/// Everything one job's verdict is decided from.
pub struct Inputs<'a> {
    pub status: &'a JobStatus,
    /// The job's state file, or why it could not be read.
    pub state: Result<&'a JobState, &'a str>,
    /// One per store, in the order of `status.stores`.
    pub previous: &'a [PreviousSlot],
    /// The shorter of the job's own `max_age` and `[policy]`'s.
    pub max_age: Option<Duration>,
    pub policy: &'a GlobalPolicy,
    pub secret: &'a SecretPolicy,
    /// How often the daemon verifies the job's stored value (the job's own heartbeat, else `[policy]`'s).
    pub heartbeat: Option<Duration>,
    pub now: DateTime<Utc>,
}

/// The job's checks, verdict and evidence.
pub fn assess(inputs: &Inputs<'_>, history: History, age_series: Vec<AgePoint>) -> JobReport {
    let checks = checks(inputs);
    let verdict = Verdict::of(&checks);
    let reasons = checks
        .iter()
        .filter(|c| c.outcome != Outcome::Pass)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    JobReport {
        job: inputs.status.job.clone(),
        target: inputs.status.target.clone(),
        verdict,
        reasons,
        checks,
        evidence: evidence(inputs),
        history,
        age_series,
    }
}

fn check(name: &'static str, outcome: Outcome, detail: impl Into<String>) -> Check {
    Check { name, outcome, detail: detail.into() }
}

fn checks(inputs: &Inputs<'_>) -> Vec<Check> {
    let s = inputs.status;
    // The checks the job's state decides cannot be made without it: unknown, never passed on a default.
    let by_state = |name: &'static str, decide: &dyn Fn(&JobState) -> Check| match inputs.state {
        Ok(state) => decide(state),
        Err(e) => check(name, Outcome::Unknown, format!("the job's state cannot be read: {e}")),
    };
    let mut out = vec![max_age(inputs), stores_in_step(s), previous_present(inputs), ownership(inputs)];
    out.push(by_state("not_diverged", &|state| match &state.diverged {
        Some(mark) => check(
            "not_diverged",
            Outcome::Fail,
            format!("diverged since {}: {}", timestamp(mark.since), mark.reason),
        ),
        None => check("not_diverged", Outcome::Pass, "not diverged"),
    }));
    out.push(match s.state {
        "blocked" => {
            check("not_blocked", Outcome::Fail, s.action.clone().unwrap_or_else(|| "blocked".into()))
        }
        _ => check("not_blocked", Outcome::Pass, "not blocked"),
    });
    let pending: Vec<&str> =
        s.stores.iter().filter(|st| st.pending_rotation_id.is_some()).map(|st| st.store.as_str()).collect();
    out.push(if pending.is_empty() {
        check("settled", Outcome::Pass, "no value pending")
    } else {
        check(
            "settled",
            Outcome::Fail,
            format!("a rotation is pending (unsettled) in {}", pending.join(", ")),
        )
    });
    out.push(by_state("no_drift", &|state| match &state.drift {
        Some(d) => check(
            "no_drift",
            Outcome::Fail,
            format!(
                "since {}, the current value of {} differs from the one the target accepts",
                timestamp(d.since),
                d.stores.join(", ")
            ),
        ),
        None => check("no_drift", Outcome::Pass, "no store found out of step"),
    }));
    out.push(by_state("schedule_keeps_max_age", &|state| schedule(inputs, state)));
    out.push(by_state("recently_verified", &|state| recently_verified(inputs, state)));
    out.extend(secret_rules(inputs));
    out
}

fn max_age(inputs: &Inputs<'_>) -> Check {
    let s = inputs.status;
    let Some(limit) = inputs.max_age else {
        return check("max_age", Outcome::Pass, "no max_age applies (neither [policy] nor the job sets one)");
    };
    let limit_text = display_duration(limit);
    match s.age_seconds {
        None if s.stores.iter().any(|st| st.error.is_some()) => {
            check("max_age", Outcome::Unknown, "the age cannot be read: a store did not answer")
        }
        None => check("max_age", Outcome::Fail, "there is no secret yet"),
        Some(age) if age > limit.as_secs() as i64 => check(
            "max_age",
            Outcome::Fail,
            format!("the secret is {} old, over max_age {limit_text}", human_age(age)),
        ),
        Some(age) => check("max_age", Outcome::Pass, format!("{} old, max_age {limit_text}", human_age(age))),
    }
}

fn stores_in_step(s: &JobStatus) -> Check {
    if let Some(st) = s.stores.iter().find(|st| st.error.is_some()) {
        let detail =
            format!("store {} cannot be read: {}", st.store, st.error.as_deref().unwrap_or_default());
        return check("stores_in_step", Outcome::Unknown, detail);
    }
    if let Some(st) = s.stores.iter().find(|st| st.generation.is_none()) {
        return check("stores_in_step", Outcome::Fail, format!("store {} has no current value", st.store));
    }
    let first = s.stores.first().map(|st| (&st.rotation_id, st.generation));
    let describe = |st: &crate::status::StoreStatus| {
        format!(
            "{} at generation {} (rotation {})",
            st.store,
            st.generation.unwrap_or_default(),
            st.rotation_id.as_deref().unwrap_or("imported")
        )
    };
    if s.stores.iter().all(|st| Some((&st.rotation_id, st.generation)) == first) {
        let all: Vec<String> = s.stores.iter().map(describe).collect();
        check("stores_in_step", Outcome::Pass, all.join(", "))
    } else {
        let all: Vec<String> = s.stores.iter().map(describe).collect();
        check("stores_in_step", Outcome::Fail, format!("the stores differ: {}", all.join("; ")))
    }
}

fn previous_present(inputs: &Inputs<'_>) -> Check {
    let generation = inputs.status.generation.unwrap_or(0);
    if generation < 2 {
        return check("previous_present", Outcome::Pass, "not needed: the job has had fewer than two values");
    }
    let named = inputs.status.stores.iter().zip(inputs.previous);
    if let Some((st, _)) = named.clone().find(|(_, p)| **p == PreviousSlot::Absent) {
        return check(
            "previous_present",
            Outcome::Fail,
            format!("store {} keeps no previous value", st.store),
        );
    }
    if let Some((st, p)) = named.clone().find(|(_, p)| !matches!(p, PreviousSlot::Present { .. })) {
        let why = match p {
            PreviousSlot::NotOwned { error } | PreviousSlot::Unreadable { error } => error.clone(),
            _ => "not read".into(),
        };
        return check("previous_present", Outcome::Unknown, format!("store {}: {why}", st.store));
    }
    check("previous_present", Outcome::Pass, "every store keeps the previous value")
}

fn ownership(inputs: &Inputs<'_>) -> Check {
    for (st, previous) in inputs.status.stores.iter().zip(inputs.previous) {
        if let (Some(error), Some("not_owned")) = (&st.error, st.error_kind) {
            return check("ownership", Outcome::Fail, format!("store {}: {error}", st.store));
        }
        if let PreviousSlot::NotOwned { error } = previous {
            return check("ownership", Outcome::Fail, format!("store {}: {error}", st.store));
        }
    }
    if inputs.status.stores.iter().any(|st| st.error.is_some()) {
        return check("ownership", Outcome::Unknown, "a store did not answer");
    }
    check("ownership", Outcome::Pass, "every store holds the secret as rotavault's, for this job")
}

/// Whether the job's next rotation comes before its secret reaches `max_age`.
fn schedule(inputs: &Inputs<'_>, state: &JobState) -> Check {
    let s = inputs.status;
    let Some(limit) = inputs.max_age else {
        return check("schedule_keeps_max_age", Outcome::Pass, "no max_age applies");
    };
    if state.diverged.is_some() {
        return check("schedule_keeps_max_age", Outcome::Fail, "no rotation runs while the job is diverged");
    }
    if s.manual {
        // No schedule keeps it: a person does, reminded `warn_before` ahead; the age check says whether they did.
        return check(
            "schedule_keeps_max_age",
            Outcome::Pass,
            "manual (apply = \"manual\"): a person sets a new secret, reminded by manual_rotation_due",
        );
    }
    let Some(rotated_at) = s.last_rotation else {
        return match s.stores.iter().any(|st| st.error.is_some()) {
            true => check("schedule_keeps_max_age", Outcome::Unknown, "the age cannot be read"),
            false => check("schedule_keeps_max_age", Outcome::Pass, "due now: there is no secret yet"),
        };
    };
    let Some(due) = s.next_due else {
        return check("schedule_keeps_max_age", Outcome::Fail, "no next rotation is planned");
    };
    let deadline = chrono::Duration::from_std(limit)
        .map(|l| rotated_at + l)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    if due <= deadline {
        let detail = format!(
            "next due {}, no later than max_age is reached at {}",
            timestamp(due),
            timestamp(deadline)
        );
        check("schedule_keeps_max_age", Outcome::Pass, detail)
    } else {
        let detail =
            format!("next due {}, after max_age is reached at {}", timestamp(due), timestamp(deadline));
        check("schedule_keeps_max_age", Outcome::Fail, detail)
    }
}

/// With a heartbeat, the target accepted the stored value within two of its intervals: the daemon verifies one
/// interval after the last verify, and after a restart at a random point of the next interval, so a later one means
/// the heartbeat is not running or not succeeding.
fn recently_verified(inputs: &Inputs<'_>, state: &JobState) -> Check {
    let name = "recently_verified";
    let last = state.last_verify.as_ref();
    let Some(every) = inputs.heartbeat else {
        let detail = match last {
            Some(v) => format!("no heartbeat is set; last verified {} by {}", timestamp(v.at), v.by),
            None => "no heartbeat is set; never verified since the state recorded it".to_owned(),
        };
        return check(name, Outcome::Pass, detail);
    };
    let every_text = display_duration(every);
    let Some(verified) = last else {
        return check(
            name,
            Outcome::Fail,
            format!("never verified, though the heartbeat runs every {every_text}"),
        );
    };
    let ago = (inputs.now - verified.at).num_seconds();
    if ago > 2 * every.as_secs() as i64 {
        let detail = format!(
            "last verified {} ago (by {}), more than twice the heartbeat of {every_text}",
            human_age(ago),
            verified.by
        );
        check(name, Outcome::Fail, detail)
    } else {
        let detail =
            format!("verified {} ago by {} (heartbeat every {every_text})", human_age(ago), verified.by);
        check(name, Outcome::Pass, detail)
    }
}

/// The rules generated secrets meet, held against `[policy]` (the config enforces them at load; the report proves
/// they still hold for what runs).
fn secret_rules(inputs: &Inputs<'_>) -> [Check; 2] {
    let (policy, secret) = (inputs.policy, inputs.secret);
    let mut wrong = Vec::new();
    if let Some(min) = policy.min_length
        && secret.length < min
    {
        wrong.push(format!("{} characters, under [policy] min_length {min}", secret.length));
    }
    let allowed =
        |c: &char| !secret.forbidden.contains(c) && secret.alphabet.as_ref().is_none_or(|a| a.contains(c));
    let leaked: String = policy.forbidden.iter().filter(|c| allowed(c)).collect();
    if !leaked.is_empty() {
        wrong.push(format!("may use [policy] forbidden characters {leaked:?}"));
    }
    let rules = if wrong.is_empty() {
        check("secret_rules", Outcome::Pass, secret.to_string())
    } else {
        check("secret_rules", Outcome::Fail, format!("{}: {}", secret, wrong.join("; ")))
    };
    let bits = secret.strength_bits();
    let strength = match policy.min_strength_bits {
        Some(min) if bits < min => check(
            "strength",
            Outcome::Fail,
            format!("at least {bits} bits, under [policy] min_strength_bits {min}"),
        ),
        Some(min) => {
            check("strength", Outcome::Pass, format!("at least {bits} bits (min_strength_bits {min})"))
        }
        None => check("strength", Outcome::Pass, format!("at least {bits} bits; [policy] sets no minimum")),
    };
    [rules, strength]
}

fn evidence(inputs: &Inputs<'_>) -> Evidence {
    let s = inputs.status;
    let state = inputs.state.ok();
    let stores = s
        .stores
        .iter()
        .zip(inputs.previous.iter().cloned().chain(std::iter::repeat(PreviousSlot::NotRead)))
        .map(|(st, previous)| StoreEvidence {
            store: st.store.clone(),
            backend: st.backend,
            name: st.name.clone(),
            rotation_id: st.rotation_id.clone(),
            generation: st.generation,
            rotated_at: st.rotated_at,
            pending_rotation_id: st.pending_rotation_id.clone(),
            previous,
            error: st.error.clone(),
        })
        .collect();
    let verify = state.and_then(|st| st.last_verify.as_ref());
    Evidence {
        state: s.state,
        apply: if s.manual { "manual" } else { "rotavault" },
        max_age: inputs.max_age.map(display_duration),
        max_age_seconds: inputs.max_age.map(|d| d.as_secs()),
        age_seconds: s.age_seconds,
        last_rotation: s.last_rotation,
        last_success: state.and_then(|st| st.last_success.as_ref()).map(|ok| ok.at),
        last_verify: verify.map(|v| v.at),
        last_verify_by: verify.map(|v| v.by.clone()),
        next_due: s.next_due,
        generation: s.generation,
        stores,
        diverged: state
            .and_then(|st| st.diverged.as_ref())
            .map(|d| format!("since {}: {}", timestamp(d.since), d.reason)),
        drift: state.and_then(|st| st.drift.clone()),
        last_error: s.last_error.clone(),
        secret_rules: inputs.secret.to_string(),
        strength_bits: inputs.secret.strength_bits(),
        min_strength_bits: inputs.policy.min_strength_bits,
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
