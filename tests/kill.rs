//! Kill tests: the real `rotavault run` daemon, rotating Autotask sandbox API users into the encrypted `file`
//! store and AWS Secrets Manager on a real moto server, is killed with SIGKILL and restarted, and the design's
//! invariants are checked on what the stores and the sandbox hold:
//!
//! - **at each step boundary** of a rotation (after the first and the second Stage, right after Apply, after
//!   Verify, between the two Promotes) and **at random moments**, mostly inside rotations: after every kill,
//!   with the process dead and the state frozen, the password the target has is held by every store as current
//!   or pending (no loss) and no account ever had more consecutive failed logins than the lockout guard's cap;
//!   after recovery (which waits for the apply horizon where the protocol says it must), every store's current
//!   value authenticates, nothing is left pending, the stores agree and `status` says `ok`;
//! - **during a late commit**: the SOAP `update` lands `LATE` after it arrived whether or not the client is still
//!   there, the daemon is killed around it and restarted at once, so that the new process's recovery races the
//!   late commit; for an API-user job and for the admin job rotating itself. Every few kills the state is frozen
//!   (the updates that arrived have landed) and checked for no loss; the lockout cap holds for every kill; at the
//!   end, after the horizon, the full recovery check.
//!
//! Violations are counted, not panicked on, and each test fails at the end if there were any.
//!
//! Needs moto: `ROTAVAULT_TEST_AWS_ENDPOINT` (the test fails with a clear message when it is unset). The random
//! run kills 25 times by default (CI) and 200 times with `ROTAVAULT_TEST_FULL=1`; the late-commit phase 8 times
//! per job by default and 30 times per job in full. `ROTAVAULT_TEST_SEED=N` replays the random moments of an
//! earlier run (the seed is printed).

#![cfg(all(feature = "sandbox", feature = "aws"))]

#[path = "kill/daemon.rs"]
mod daemon;
#[path = "kill/harness.rs"]
mod harness;
mod support;

use daemon::message_is;
use harness::{Harness, LATE, Subject, Update};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn full() -> bool {
    std::env::var("ROTAVAULT_TEST_FULL").is_ok_and(|v| v == "1")
}

/// Where in a rotation the daemon is killed.
#[derive(Clone, Copy, Debug)]
enum Boundary {
    AfterFirstStage,
    AfterSecondStage,
    AfterApply,
    AfterVerify,
    BetweenPromotes,
}

/// A matcher for the line after which `boundary` is reached, counting from "rotation starts".
fn boundary_matcher(boundary: Boundary) -> impl FnMut(&str) -> bool {
    let mut started = false;
    let mut stages = 0;
    let mut applied = false;
    move |line: &str| {
        if message_is(line, "rotation starts") {
            started = true;
            return false;
        }
        if !started {
            return false;
        }
        if message_is(line, "stage answered") {
            stages += 1;
        }
        if message_is(line, "Autotask accepted the new password") {
            applied = true;
        }
        match boundary {
            Boundary::AfterFirstStage => stages == 1 && message_is(line, "stage answered"),
            Boundary::AfterSecondStage => stages == 2 && message_is(line, "stage answered"),
            Boundary::AfterApply => message_is(line, "Autotask accepted the new password"),
            // The verify span's authenticated call has answered 200: verify is over, promote is next.
            Boundary::AfterVerify => {
                applied
                    && message_is(line, "answered")
                    && line.contains("\"name\":\"verify\"")
                    && line.contains("\"status\":200")
            }
            Boundary::BetweenPromotes => message_is(line, "promote answered"),
        }
    }
}

#[test]
fn sigkill_at_every_step_boundary_loses_nothing() {
    let mut h = Harness::new(Subject::Api, Update::Slow);
    let started = Instant::now();
    let boundaries = [
        Boundary::AfterFirstStage,
        Boundary::AfterSecondStage,
        Boundary::AfterApply,
        Boundary::AfterVerify,
        Boundary::BetweenPromotes,
    ];
    for round in 0..2 {
        for boundary in boundaries {
            let when = format!("round {round}, killed {boundary:?}");
            let mut daemon = h.start_daemon();
            let mut log = Vec::new();
            let mut hit = boundary_matcher(boundary);
            let seen = daemon.wait_for(Duration::from_secs(20), &mut log, &mut hit);
            h.kill(&mut daemon);
            assert!(seen, "{when}: the boundary's line never came; the daemon printed:\n{}", log.join("\n"));
            let shape = h.frozen_check(&when);
            eprintln!("{when}: the target's password was held as {shape}");
            if round == 0 {
                h.recover_and_check(&when);
            } else {
                h.recover_by_daemon_and_check(&when);
            }
        }
    }
    // A clean stop after all of it: the daemon recovers at start-up and stops at a safe boundary on SIGTERM.
    let mut daemon = h.start_daemon();
    let mut log = Vec::new();
    let seen =
        daemon.wait_for(Duration::from_secs(20), &mut log, &mut |l| message_is(l, "rotation complete"));
    let code = daemon.sigterm();
    assert!(seen, "no rotation completed after the kills:\n{}", log.join("\n"));
    assert_eq!(code, Some(0), "the daemon did not stop cleanly on SIGTERM");
    h.full_check("after a clean stop");
    h.report();
    eprintln!("step-boundary kills took {:?}", started.elapsed());
    assert!(h.violations.is_empty(), "{} invariant violations (see above)", h.violations.len());
}

/// The lines that mark a rotation's progress, for telling where a random kill landed.
const STEP_LINES: [&str; 9] = [
    "rotation starts",
    "stage answered",
    "resource queried; updating it whole with the new password",
    "Autotask accepted the new password",
    "verify: not accepted",
    "promote answered",
    "rotation complete",
    "a pending value whose apply was sent; asking the target",
    "start-up recovery",
];

/// The last step line in `log`: where a kill landed.
fn last_step(log: &[String]) -> String {
    log.iter()
        .rev()
        .find_map(|l| STEP_LINES.iter().find(|m| message_is(l, m)).map(|m| (*m).to_owned()))
        .unwrap_or_else(|| "(nothing yet)".to_owned())
}

/// A line logged inside the engine's `rotation` span: a rotation (or its recovery) is under way.
fn in_rotation(line: &str) -> bool {
    line.contains("\"name\":\"rotation\"")
}

/// xorshift64*: enough for kill moments, and replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed =
            std::env::var("ROTAVAULT_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).expect("OS randomness");
                u64::from_le_bytes(bytes)
            });
        eprintln!("ROTAVAULT_TEST_SEED={seed}");
        Rng(seed.max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing() {
    let rounds = if full() { 200 } else { 25 };
    let mut h = Harness::new(Subject::Api, Update::Slow);
    let mut rng = Rng::new();
    let started = Instant::now();
    let (mut rotations_started, mut completed) = (0, 0);
    let mut landed = BTreeMap::new();
    for round in 1..=rounds {
        let mut daemon = h.start_daemon();
        let mut log = Vec::new();
        // One kill in five at a moment counted from the start (start-up recovery, the wait for a horizon, the
        // first schedule fire); the others counted from the first line of a rotation, so that most land inside
        // one: a restarted daemon settles a sent apply only when its horizon ends, and rotates a second later.
        let delay = if rng.below(5) == 0 {
            Duration::from_millis(rng.below(1501))
        } else {
            daemon.wait_for(Duration::from_secs(10), &mut log, &mut |l| in_rotation(l));
            Duration::from_millis(rng.below(451))
        };
        // Read (and so drain) the daemon's lines until the moment comes.
        daemon.wait_for(delay, &mut log, &mut |_| false);
        h.kill(&mut daemon);
        daemon.drain(&mut log);
        rotations_started += log.iter().filter(|l| message_is(l, "rotation starts")).count();
        completed += log.iter().filter(|l| message_is(l, "rotation complete")).count();
        let when = format!("random kill {round} at {delay:?}");
        let shape = h.frozen_check(&when);
        *landed.entry(format!("{:<58} {shape}", last_step(&log))).or_insert(0u32) += 1;
        if round % 10 == 0 || round == rounds {
            h.recover_and_check(&when);
        }
    }
    eprintln!(
        "random kills: {rounds} in {:?}; rotations started {rotations_started}, completed {completed}",
        started.elapsed()
    );
    eprintln!(
        "where the kills landed (last step line the daemon wrote, where the target's password was held):"
    );
    for (place, n) in &landed {
        eprintln!("  {n:>4}  {place}");
    }
    h.report();
    assert!(rotations_started > 0, "no rotation ever started: the kills tested nothing");
    assert!(h.violations.is_empty(), "{} invariant violations (see above)", h.violations.len());
}

/// The update line: the target has queried the resource and is about to send the SOAP `update`.
const UPDATING: &str = "resource queried; updating it whole with the new password";

/// The late-commit phase for one job: kills around a slow update that commits late, each followed at once by a
/// new daemon; every `FREEZE_EVERY`th kill waits for the updates that arrived to land and checks no loss first.
fn late_commit_phase(subject: Subject) -> Harness {
    const FREEZE_EVERY: u32 = 3;
    let kills = if full() { 30 } else { 8 };
    let mut h = Harness::new(subject, Update::CommitsLate);
    let mut rng = Rng::new();
    let started = Instant::now();
    let mut landed = BTreeMap::new();
    let (mut updates, mut commits_raced) = (0, 0);
    for round in 1..=kills {
        let received_before = h.sandbox.late_commits_received();
        let mut daemon = h.start_daemon();
        let mut log = Vec::new();
        let seen = daemon.wait_for(Duration::from_secs(15), &mut log, &mut |l| message_is(l, UPDATING));
        // Inside the update (before it lands) or just after it (verify, promote).
        let delay = Duration::from_millis(rng.below(u64::try_from(LATE.as_millis()).expect("ms") + 301));
        daemon.wait_for(delay, &mut log, &mut |_| false);
        h.kill(&mut daemon);
        daemon.drain(&mut log);
        let when = format!("{} late-commit kill {round}, {delay:?} after the update line", subject.job());
        if !seen {
            h.violation(format!(
                "{when}: the daemon sent no update within 15 s: {}",
                daemon::tail(&log.join("\n"))
            ));
        }
        let sent = log.iter().filter(|l| message_is(l, UPDATING)).count() as u64;
        updates += sent;
        if h.sandbox.late_commits_received() > h.sandbox.late_commits() {
            commits_raced += 1;
        }
        if round % FREEZE_EVERY == 0 || round == kills {
            h.wait_for_late_commits(&when, received_before, sent);
            let shape = h.frozen_check(&when);
            *landed.entry(format!("{:<58} {shape}", last_step(&log))).or_insert(0u32) += 1;
        } else {
            h.lockout_check(&when);
            *landed.entry(format!("{:<58} (not frozen)", last_step(&log))).or_insert(0u32) += 1;
        }
    }
    // The end: no more kills; once the horizon of the last apply has passed, a daemon settles everything and
    // rotates once more, cleanly.
    h.wait_out_horizon(subject.job());
    h.recover_by_daemon_and_check(&format!("{} late-commit phase, final recovery", subject.job()));
    eprintln!(
        "{} late-commit kills: {kills} in {:?}; updates sent {updates}; {commits_raced} kills with an update still \
         to land (the restart raced it); late commits landed {}",
        subject.job(),
        started.elapsed(),
        h.sandbox.late_commits()
    );
    eprintln!(
        "where the kills landed (last step line the daemon wrote, where the target's password was held):"
    );
    for (place, n) in &landed {
        eprintln!("  {n:>4}  {place}");
    }
    h.report();
    h
}

#[test]
fn sigkill_during_a_late_commit_and_an_immediate_restart_loses_nothing() {
    let mut violations = 0;
    for subject in [Subject::Api, Subject::Admin] {
        let h = late_commit_phase(subject);
        assert!(
            h.sandbox.late_commits() > 0,
            "{subject:?}: no update ever committed late: the phase tested nothing"
        );
        violations += h.violations.len();
    }
    assert_eq!(violations, 0, "{violations} invariant violations (see above)");
}
