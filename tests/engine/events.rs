//! The engine's audit events: each decision emits its one event, at the moment it is made, naming the job, the
//! rotation, the target and the stores, and never a secret.

use super::*;
use rotavault::events::{Event, EventKind};

impl Rig {
    /// A new engine on the same clock, state and event sink, changed by `with`.
    fn rebuild(&mut self, with: impl FnOnce(Engine) -> Engine) {
        let engine = Engine::new(
            self.engine.settings().clone(),
            self.engine.clock().clone(),
            self.states.clone(),
            true,
        )
        .with_events(self.events.clone());
        self.engine = with(engine);
    }

    /// The one event emitted since the last `clear`, which must be of `kind`.
    fn only_event(&self, kind: EventKind) -> Event {
        let events = self.events.events();
        assert_eq!(self.events.kinds(), vec![kind], "exactly one event: {events:?}");
        events.into_iter().next().expect("one event")
    }

    /// No value the target or a store ever held appears in any event.
    async fn assert_no_secret_in_events(&self) {
        let json = self.events.json();
        let mut values: Vec<String> = self.target.accepted().into_iter().collect();
        for i in 0..2 {
            values.extend(self.current(i).await);
            values.extend(self.pending(i).await);
            values.extend(self.previous(i).await);
        }
        assert!(!values.is_empty());
        for value in values {
            assert!(!json.contains(&value), "a secret in an event: {json}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_rotation_emits_one_rotated_event_naming_the_job_its_stores_and_versions() {
    let rig = rig();
    let Outcome::Rotated { rotation_id, .. } = rig.rotate().await.expect("rotation") else {
        panic!("rotated")
    };
    let event = rig.only_event(EventKind::Rotated);
    let data = &event.data;
    assert_eq!(data.job, JOB);
    assert_eq!(data.rotation_id.as_deref(), Some(rotation_id.to_string().as_str()));
    assert_eq!(data.target.as_deref(), Some("scripted"));
    assert_eq!(data.account.as_deref(), Some("scripted:account"));
    assert_eq!(data.generation, Some(1));
    assert_eq!(data.trigger.as_deref(), Some("manual"));
    assert_eq!(data.error, None);
    let stores: Vec<_> = data.stores.iter().map(|s| (s.store.as_str(), s.name.as_str())).collect();
    assert_eq!(stores, [("a", "api/user"), ("b", "api-user")]);
    assert!(data.stores.iter().all(|s| s.version.as_deref() == Some(rotation_id.to_string().as_str())));
    let json = event.to_cloudevent("rotavault://host/etc/rotavault/config.toml");
    assert_eq!(json["type"], "io.rotavault.rotation.rotated");
    assert_eq!(json["subject"], JOB);
    rig.assert_no_secret_in_events().await;
}

#[tokio::test(start_paused = true)]
async fn a_pending_value_the_target_has_emits_completed_when_recovery_promotes_it() {
    let rig = rig();
    let id = rig.stage_by_hand("applied-before-the-crash", true).await;
    rig.target.set_behind_the_back("applied-before-the-crash");
    rig.engine.recover(&rig.job).await.expect("recovery");
    let event = rig.only_event(EventKind::Completed);
    assert_eq!(event.data.rotation_id, Some(id.to_string()));
    rig.assert_no_secret_in_events().await;
}

#[tokio::test(start_paused = true)]
async fn a_pending_value_no_apply_was_sent_for_emits_discarded_with_the_reason() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.events.clear();
    let id = rig.stage_by_hand("never-sent", false).await;
    rig.engine.recover(&rig.job).await.expect("recovery");
    let event = rig.only_event(EventKind::Discarded);
    assert_eq!(event.data.rotation_id, Some(id.to_string()));
    assert!(event.data.detail.as_deref().is_some_and(|d| d.contains("no apply was ever sent")), "{event:?}");
    let json = rig.events.json();
    assert!(!json.contains("never-sent"), "{json}");
}

#[tokio::test(start_paused = true)]
async fn a_discard_before_a_new_rotation_and_the_rotation_each_emit_their_event_in_order() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.events.clear();
    rig.stage_by_hand("never-sent", false).await;
    rig.rotate().await.expect("rotation");
    assert_eq!(rig.events.kinds(), [EventKind::Discarded, EventKind::Rotated]);
}

#[tokio::test(start_paused = true)]
async fn a_refused_value_emits_refused_with_its_error_kind() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.events.clear();
    rig.target.queue_apply(ApplyFault::Refuse);
    rig.rotate().await.expect_err("refused");
    let event = rig.only_event(EventKind::Refused);
    assert_eq!(event.data.error_kind.as_deref(), Some("refused"));
    assert!(event.data.error.as_deref().is_some_and(|e| e.contains("refused")), "{event:?}");
    rig.assert_no_secret_in_events().await;
}

#[tokio::test(start_paused = true)]
async fn a_verify_the_target_refuses_emits_verify_failed_with_the_pending_rotation() {
    let rig = rig();
    rig.target.queue_verify(VerifyFault::RejectRegardless, 3);
    let err = rig.rotate().await.expect_err("verify fails");
    let event = rig.only_event(EventKind::VerifyFailed);
    assert_eq!(event.data.rotation_id, err_rotation_id(&err));
    assert_eq!(event.data.error_kind.as_deref(), Some("verify_failed"));
    rig.assert_no_secret_in_events().await;
}

#[tokio::test(start_paused = true)]
async fn an_apply_whose_answer_was_lost_emits_unsettled_within_the_horizon() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.events.clear();
    rig.target.queue_apply(ApplyFault::LoseAnswerWithoutApplying);
    let err = rig.rotate().await.expect_err("unsettled");
    let event = rig.only_event(EventKind::Unsettled);
    assert_eq!(event.data.rotation_id, err_rotation_id(&err));
    rig.assert_no_secret_in_events().await;
}

#[tokio::test(start_paused = true)]
async fn a_job_emits_diverged_once_and_resolved_when_a_person_clears_it() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.target.set_behind_the_back("changed-by-a-person");
    rig.events.clear();
    rig.rotate().await.expect_err("diverged");
    let event = rig.only_event(EventKind::Diverged);
    assert_eq!(event.data.error_kind.as_deref(), Some("diverged"));

    // Refused again because it is marked: nothing new was decided.
    rig.rotate().await.expect_err("still diverged");
    rig.engine.recover(&rig.job).await.expect_err("still diverged");
    assert_eq!(rig.events.kinds(), [EventKind::Diverged]);

    rig.events.clear();
    rig.engine.resolve(&rig.job).await.expect("resolve");
    rig.only_event(EventKind::Resolved);
    let json = rig.events.json();
    assert!(!json.contains("changed-by-a-person"), "{json}");
}

#[tokio::test(start_paused = true)]
async fn an_account_at_the_lockout_cap_emits_blocked() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.events.clear();
    for _ in 0..3 {
        rig.engine.lockout().begin("scripted:account", 0).expect("a login").unknown();
    }
    rig.rotate().await.expect_err("blocked");
    let event = rig.only_event(EventKind::Blocked);
    assert_eq!(event.data.error_kind.as_deref(), Some("blocked"));
}

#[tokio::test(start_paused = true)]
async fn a_promote_failing_in_one_store_emits_promote_incomplete_then_completed() {
    let rig = rig();
    rig.b.inject(Op::Promote, Fault::Fail(FaultyStore::permanent("denied")), 1);
    let err = rig.rotate().await.expect_err("promote incomplete");
    let event = rig.only_event(EventKind::PromoteIncomplete);
    assert_eq!(event.data.rotation_id, err_rotation_id(&err));
    assert!(event.data.error.as_deref().is_some_and(|e| e.contains("`b`")), "names the store: {event:?}");
    rig.events.clear();
    rig.rotate().await.expect("completed");
    rig.only_event(EventKind::Completed);
    rig.assert_no_secret_in_events().await;
}

#[tokio::test(start_paused = true)]
async fn a_stage_failure_emits_failed_with_the_store_error() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.events.clear();
    rig.b.inject(Op::Stage, Fault::Fail(FaultyStore::permanent("no write access")), 1);
    rig.rotate().await.expect_err("stage fails");
    let event = rig.only_event(EventKind::Failed);
    assert_eq!(event.data.error_kind.as_deref(), Some("store"));
    assert!(event.data.error.as_deref().is_some_and(|e| e.contains("no write access")), "{event:?}");
    rig.assert_no_secret_in_events().await;
}

#[tokio::test(start_paused = true)]
async fn an_import_emits_imported_with_the_generation_written() {
    let rig = rig();
    rig.target.set_behind_the_back("a-person-had-this");
    let generation =
        rig.engine.import(&rig.job, &SecretValue::new("a-person-had-this")).await.expect("import");
    let event = rig.only_event(EventKind::Imported);
    assert_eq!(event.data.generation, Some(generation));
    let json = rig.events.json();
    assert!(!json.contains("a-person-had-this"), "{json}");
}

#[tokio::test(start_paused = true)]
async fn replacing_a_value_rotavault_did_not_write_emits_adopted_naming_the_store() {
    let rig = rig();
    // Store a holds a value that was there before rotavault (generation 0, as an adopted secret reads).
    let a = &rig.job.stores[0];
    let foreign = rotavault::store::Metadata::synthesized(None);
    a.store
        .write_current(&a.secret, &SecretValue::new("there-before-rotavault"), &foreign)
        .await
        .expect("seed");
    rig.target.set_behind_the_back("there-before-rotavault");
    rig.rotate().await.expect("rotation");
    let kinds = rig.events.kinds();
    assert_eq!(kinds, vec![EventKind::Adopted, EventKind::Rotated], "{kinds:?}");
    let adopted = rig.events.events().into_iter().next().expect("adopted");
    assert_eq!(adopted.data.detail.as_deref(), Some("adopted in a"));
    rig.assert_no_secret_in_events().await;
    // A later rotation replaces rotavault's own value: no second adoption.
    let before = rig.events.events().len();
    rig.rotate().await.expect("second rotation");
    let later: Vec<_> = rig.events.kinds().into_iter().skip(before).collect();
    assert_eq!(later, vec![EventKind::Rotated]);
}

#[tokio::test(start_paused = true)]
async fn a_run_refused_because_the_job_is_busy_emits_nothing() {
    let rig = rig();
    let (one, two) = tokio::join!(rig.rotate(), rig.rotate());
    assert!([&one, &two].iter().any(|r| matches!(r, Err(RotationError::Busy(_)))));
    assert_eq!(rig.events.kinds(), [EventKind::Rotated], "the busy one emitted nothing");
}

fn err_rotation_id(err: &RotationError) -> Option<String> {
    match err {
        RotationError::VerifyFailed { rotation_id, .. }
        | RotationError::Unsettled { rotation_id, .. }
        | RotationError::PromoteIncomplete { rotation_id, .. } => Some(rotation_id.to_string()),
        other => panic!("no rotation id in {other:?}"),
    }
}

/// Hooks run real processes, so these run on real time, with no settle delay to wait through.
fn real_time_rig() -> Rig {
    rig_with(Settings { settle: Duration::ZERO, ..settings() })
}

fn command(argv: &[&str], timeout: Duration) -> rotavault::hooks::Hook {
    rotavault::hooks::Hook::Command(rotavault::hooks::CommandHook {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        timeout,
    })
}

#[tokio::test]
async fn a_reload_hook_runs_after_promote_and_is_told_the_job_rotation_and_stores() {
    let mut rig = real_time_rig();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("hook");
    let script =
        format!("echo \"$ROTAVAULT_JOB $ROTAVAULT_ROTATION_ID $ROTAVAULT_STORES\" > '{}'", out.display());
    let hooks = [(JOB.to_owned(), vec![command(&["/bin/sh", "-c", &script], Duration::from_secs(20))])];
    rig.rebuild(|e| e.with_hooks(hooks.into_iter().collect()));
    let Outcome::Rotated { rotation_id, .. } = rig.rotate().await.expect("rotation") else {
        panic!("rotated")
    };
    let written = std::fs::read_to_string(&out).expect("the hook ran");
    assert_eq!(written, format!("{JOB} {rotation_id} a:api/user,b:api-user\n"));
    assert!(!written.contains(&rig.target.accepted().expect("secret")));
    assert_eq!(rig.states.load(JOB).expect("state").hook_failure, None);
}

#[tokio::test]
async fn a_failed_or_timed_out_hook_emits_hook_failed_is_recorded_and_the_rotation_stands() {
    let mut rig = real_time_rig();
    let hooks = vec![
        command(&["/bin/false"], Duration::from_secs(20)),
        command(&["/bin/sleep", "30"], Duration::from_millis(200)),
        command(&["/nonexistent/reload"], Duration::from_secs(20)),
    ];
    rig.rebuild(|e| e.with_hooks([(JOB.to_owned(), hooks)].into_iter().collect()));
    let outcome = rig.rotate().await.expect("the rotation stands");
    let Outcome::Rotated { rotation_id, .. } = outcome else { panic!("rotated") };
    assert_eq!(rig.current(0).await, rig.target.accepted(), "nothing rolled back");
    assert_eq!(
        rig.events.kinds(),
        [EventKind::Rotated, EventKind::HookFailed, EventKind::HookFailed, EventKind::HookFailed]
    );
    let details: Vec<String> =
        rig.events.events()[1..].iter().filter_map(|e| e.data.detail.clone()).collect();
    assert!(details[0].starts_with("exited: command `/bin/false`"), "{details:?}");
    assert!(details[1].starts_with("timeout: command `/bin/sleep`"), "{details:?}");
    assert!(details[2].starts_with("spawn: command `/nonexistent/reload`"), "{details:?}");
    let failure = rig.states.load(JOB).expect("state").hook_failure.expect("recorded for status");
    assert_eq!(failure.rotation_id, rotation_id);
    assert!(failure.error.contains("/bin/false"), "{failure:?}");
    rig.assert_no_secret_in_events().await;

    // A later rotation whose hooks all run clears the mark.
    rig.rebuild(|e| {
        e.with_hooks(
            [(JOB.to_owned(), vec![command(&["/bin/true"], Duration::from_secs(20))])].into_iter().collect(),
        )
    });
    rig.rotate().await.expect("rotation");
    assert_eq!(rig.states.load(JOB).expect("state").hook_failure, None);
}

/// A webhook hook to `server`, signed with the receiver's key, retrying quickly.
fn webhook(server: &crate::support::receiver::Server) -> rotavault::hooks::Hook {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode(crate::support::receiver::KEY_BYTES);
    rotavault::hooks::Hook::Webhook(rotavault::hooks::WebhookHook {
        url_file: "/etc/rotavault/app-reload.url".into(),
        channel: Arc::new(rotavault::notify::WebhookChannel {
            url: SecretValue::new(format!("{}/reload/URL-TOKEN-9f3e", server.base)),
            key: rotavault::notify::SigningKey::parse(&format!("whsec_{key}")).expect("a valid key"),
        }),
        client: rotavault::notify::files::client().expect("a client"),
        source: "rotavault://test/etc/rotavault/config.toml".into(),
        attempts: rotavault::notify::Attempts {
            backoff: Backoff { attempts: 2, first: Duration::from_millis(1), max: Duration::from_millis(5) },
            timeout: Duration::from_secs(5),
        },
        shutdown: tokio_util::sync::CancellationToken::new(),
    })
}

#[tokio::test]
async fn a_webhook_hook_gets_the_rotated_event_signed_after_promote() {
    let mut server = crate::support::receiver::Server::start(None).await;
    let mut rig = real_time_rig();
    rig.rebuild(|e| e.with_hooks([(JOB.to_owned(), vec![webhook(&server)])].into_iter().collect()));
    let Outcome::Rotated { rotation_id, .. } = rig.rotate().await.expect("rotation") else {
        panic!("rotated")
    };
    let got = server.next().await;
    assert!(got.signature_is_valid(), "the receiver's own HMAC accepts it");
    let event = got.json();
    assert_eq!(event["type"], "io.rotavault.rotation.rotated");
    assert_eq!(event["subject"], JOB);
    assert_eq!(event["data"]["rotation_id"], rotation_id.to_string());
    assert_eq!(event["data"]["stores"][0]["store"], "a");
    assert_eq!(event["data"]["stores"][1]["name"], "api-user");
    let body = String::from_utf8_lossy(&got.body);
    assert!(!body.contains(&rig.target.accepted().expect("secret")), "never the secret");
    assert_eq!(rig.states.load(JOB).expect("state").hook_failure, None);
}

#[tokio::test]
async fn a_webhook_hook_answered_500_emits_hook_failed_without_its_url_and_the_rotation_stands() {
    let mut server = crate::support::receiver::Server::start(None).await;
    server.answer(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut rig = real_time_rig();
    rig.rebuild(|e| e.with_hooks([(JOB.to_owned(), vec![webhook(&server)])].into_iter().collect()));
    let Outcome::Rotated { rotation_id, .. } = rig.rotate().await.expect("the rotation stands") else {
        panic!("rotated")
    };
    server.next().await;
    server.next().await;
    assert_eq!(rig.current(0).await, rig.target.accepted(), "nothing rolled back");
    assert_eq!(rig.events.kinds(), [EventKind::Rotated, EventKind::HookFailed]);
    let detail = rig.events.events()[1].data.detail.clone().expect("a detail");
    assert_eq!(
        detail,
        "delivery: webhook `/etc/rotavault/app-reload.url`: not delivered: the receiver answered HTTP 500 \
         (after 2 attempt(s))"
    );
    let failure = rig.states.load(JOB).expect("state").hook_failure.expect("recorded for status");
    assert_eq!(failure.rotation_id, rotation_id);
    assert!(!failure.error.contains("URL-TOKEN") && !failure.error.contains("127.0.0.1"), "{failure:?}");
    rig.assert_no_secret_in_events().await;
}

#[tokio::test(start_paused = true)]
async fn an_audit_file_that_cannot_be_written_does_not_fail_a_rotation() {
    let mut rig = rig();
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = Arc::new(rotavault::events::AuditFile::new(
        dir.path().join("missing").join("audit.jsonl"),
        "rotavault://t/c",
    ));
    rig.rebuild(|e| e.with_events(audit));
    rig.rotate().await.expect("the rotation does not depend on the audit file");
    assert_eq!(rig.current(0).await, rig.target.accepted());
}
