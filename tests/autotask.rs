//! The Autotask target end to end, through its real REST and SOAP clients against the sandbox: rotations, the
//! awkward parts of the wire (update clearing unsent fields, password history, propagation delay, throttling,
//! lost answers), admin self-rotation, alternating users, import and `check --connect`.

use rotavault::rotation::{Outcome, RotationError, Trigger};
use rotavault::runtime::Runtime;
use rotavault::sandbox::{Call, Fault, FaultAction, Sandbox, Seed};
use rotavault::schedule::SystemClock;
use rotavault::secret::SecretValue;
use rotavault::store::RotationId;
use rotavault::target::autotask::{
    AdminSource, AutotaskTarget, AutotaskTenant, PayloadFormat, TenantSettings,
};
use rotavault::target::{RotationInfo, Target, TargetError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "rotavault-admin@sandbox.example";
const ADMIN_PASSWORD: &str = "Adm!n-initial-Pa55word";
const USER: &str = "backup-api@sandbox.example";
const USER_A: &str = "reporting-a@sandbox.example";
const USER_B: &str = "reporting-b@sandbox.example";
const CODE: &str = "SANDBOX-INTEGRATION-CODE";

struct Rig {
    sandbox: Sandbox,
    runtime: Runtime,
    /// The config's text, to build the runtime of another process on the same state directory.
    source: String,
    dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

fn seed(extra: &str) -> Seed {
    let text = format!(
        r#"
lockout_threshold = 5
strong_passwords = true
integration_codes = ["{CODE}"]
{extra}

[[resources]]
id = 100
user_name = "{ADMIN}"
password = "{ADMIN_PASSWORD}"
security_level = "api_admin"
first_name = "Rota"
last_name = "Admin"
license_type = 1

[[resources]]
id = 101
user_name = "{USER}"
password = "B@ckup-initial-1"
security_level = "api_user"
first_name = "Backup"
last_name = "Vendor"
email = "backup@vendor.example"
title = "Integration"
office_phone = "+31 20 555 0101"
license_type = 7

[[resources]]
id = 102
user_name = "{USER_A}"
password = "R3p#rting-a-initial"
security_level = "api_user"

[[resources]]
id = 103
user_name = "{USER_B}"
password = "R3p#rting-b-initial"
security_level = "api_user"
"#
    );
    Seed::from_toml(&text).expect("a valid seed")
}

async fn rig_with(seed: Seed, rotation: &str) -> Rig {
    rig_with_timeout(seed, rotation, "2s").await
}

/// A rig whose tenant gives each HTTP call `timeout`.
async fn rig_with_timeout(seed: Seed, rotation: &str, timeout: &str) -> Rig {
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sandbox = Sandbox::start(listener, seed, false, shutdown.clone()).await.expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("code"), CODE).expect("code");
    rotavault::store::file::keygen(&dir.path().join("store.key")).expect("a store key");
    let source = format!(
        r#"
state_dir = "state"

# Port 0: daemons of parallel tests never meet on the default port.
[http]
listen = "127.0.0.1:0"

[rotation]
{rotation}

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[targets.autotask]
kind = "autotask"
zone_lookup_url = "{zone}"
admin = {{ store = "local", name = "autotask/admin" }}
timeout = "{timeout}"

[jobs.admin]
target = "autotask"
users = ["{ADMIN}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "autotask/admin" }} ]
max_age = "30d"

[jobs.backup]
target = "autotask"
users = ["{USER}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "autotask/backup" }} ]
max_age = "30d"

[jobs.reporting]
target = "autotask"
users = ["{USER_A}", "{USER_B}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "autotask/reporting" }} ]
max_age = "30d"
"#,
        zone = sandbox.zone_lookup_url()
    );
    let config = rotavault::config::parse(&source, &dir.path().join("config.toml")).expect("config");
    let runtime = Runtime::build(config, Arc::new(SystemClock), shutdown.clone()).await.expect("runtime");
    let rig = Rig { sandbox, runtime, source, dir, shutdown };
    rig.import("admin", ADMIN, ADMIN_PASSWORD).await.expect("the admin credential imports");
    rig
}

async fn rig() -> Rig {
    rig_with(seed(""), "settle = \"50ms\"\nverify_backoff = \"200ms\"\napply_horizon = \"1500ms\"").await
}

impl Rig {
    /// The runtime a new process on the same config and state directory builds (its memory store starts empty).
    async fn another_process(&self) -> Runtime {
        let config =
            rotavault::config::parse(&self.source, &self.dir.path().join("config.toml")).expect("config");
        Runtime::build(config, Arc::new(SystemClock), self.shutdown.clone()).await.expect("runtime")
    }

    fn zone_lookups(&self) -> usize {
        self.sandbox.request_log().iter().filter(|e| e.call == Some(Call::ZoneInformation)).count()
    }

    fn job(&self, name: &str) -> &rotavault::rotation::Job {
        &self.runtime.job(name).expect("job").job
    }

    async fn rotate(&self, name: &str) -> Result<Outcome, RotationError> {
        self.runtime.engine.rotate(self.job(name), Trigger::Manual).await
    }

    async fn import(&self, name: &str, user: &str, secret: &str) -> Result<u64, RotationError> {
        let job = self.job(name);
        let info =
            RotationInfo { job: name.into(), rotation_id: RotationId::new(), rotated_at: chrono::Utc::now() };
        let payload = job
            .target
            .import_payload(Some(user), &SecretValue::new(secret), &info)
            .await
            .expect("an import payload");
        self.runtime.engine.import(job, &payload).await
    }

    /// The stored current payload of `job`, as JSON.
    async fn current(&self, name: &str) -> serde_json::Value {
        let js = &self.job(name).stores[0];
        let stored = js.store.current(&js.secret).await.expect("read").expect("a current value");
        serde_json::from_str(stored.value.expose()).expect("a JSON payload")
    }

    async fn pending(&self, name: &str) -> Option<serde_json::Value> {
        let js = &self.job(name).stores[0];
        js.store
            .pending(&js.secret)
            .await
            .expect("read")
            .map(|p| serde_json::from_str(p.value.expose()).expect("a JSON payload"))
    }
}

fn user_and_secret(payload: &serde_json::Value) -> (String, String) {
    (
        payload["username"].as_str().expect("username").to_owned(),
        payload["secret"].as_str().expect("secret").to_owned(),
    )
}

#[tokio::test]
async fn a_rotation_sets_a_new_password_that_the_store_holds_and_the_old_one_dies() {
    let rig = rig().await;
    let before = rig.sandbox.password_of(USER).expect("seeded");
    let outcome = rig.rotate("backup").await.expect("rotation");
    assert!(matches!(outcome, Outcome::Rotated { generation: 1, .. }), "{outcome:?}");
    let payload = rig.current("backup").await;
    let (user, secret) = user_and_secret(&payload);
    assert_eq!(user, USER);
    assert!(rig.sandbox.authenticates(USER, &secret));
    assert!(!rig.sandbox.authenticates(USER, &before));
    assert_eq!(payload["integration_code"], CODE);
    assert_eq!(payload["zone_url"], rig.sandbox.zone_lookup_url());
    assert!(payload["rotation_id"].is_string() && payload["rotated_at"].is_string());
    assert_eq!(rig.sandbox.failed_logins(USER), 0);
}

#[tokio::test]
async fn a_whole_rotation_succeeds_through_a_strict_reader_of_the_wsdl_sequence() {
    // A strict reader drops a Password sent after LicenseType and still answers ReturnCode 1: only a Password in
    // its WSDL place gets through, for an API user and for the admin rotating itself.
    let rig = rig_with(seed("strict_reader = true"), "settle = \"50ms\"\nverify_backoff = \"200ms\"").await;
    let before = rig.sandbox.resource(USER).expect("resource");
    let outcome = rig.rotate("backup").await.expect("rotation through a strict reader");
    assert!(matches!(outcome, Outcome::Rotated { generation: 1, .. }), "{outcome:?}");
    let (_, secret) = user_and_secret(&rig.current("backup").await);
    assert!(rig.sandbox.authenticates(USER, &secret));
    assert_eq!(rig.sandbox.resource(USER), Some(before), "every field survives");
    rig.rotate("admin").await.expect("self-rotation through a strict reader");
    let (_, admin_secret) = user_and_secret(&rig.current("admin").await);
    assert!(rig.sandbox.authenticates(ADMIN, &admin_secret));
    assert_eq!(rig.sandbox.failed_logins(USER) + rig.sandbox.failed_logins(ADMIN), 0);
}

#[tokio::test]
async fn a_zone_lookup_url_that_names_v2_0_still_speaks_v1_0() {
    // The sandbox, like Autotask, lists 2.0 in versioninformation and answers 404 to V2.0/zoneInformation.
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sandbox = Sandbox::start(listener, seed(""), false, shutdown.clone()).await.expect("sandbox");
    let settings = TenantSettings {
        zone_lookup_url: format!("{}V2.0/", sandbox.zone_lookup_url()),
        ..TenantSettings::default()
    };
    let store = Arc::new(rotavault::store::memory::MemoryStore::new());
    let admin = AdminSource { store, secret: rotavault::store::SecretRef::new("autotask/admin", "admin") };
    let tenant = AutotaskTenant::new(settings, admin).expect("tenant");
    let target =
        AutotaskTarget::new(tenant, vec![USER.into()], CODE.into(), PayloadFormat::Json).expect("target");
    let info =
        RotationInfo { job: "backup".into(), rotation_id: RotationId::new(), rotated_at: chrono::Utc::now() };
    let payload =
        target.prepare(None, &SecretValue::new("B@ckup-initial-1"), &info).await.expect("zone found");
    target.verify(&payload).await.expect("verified at V1.0");
    let zone_lookups: Vec<_> =
        sandbox.request_log().into_iter().filter(|e| e.call == Some(Call::ZoneInformation)).collect();
    assert_eq!(zone_lookups.len(), 1);
    assert_eq!(zone_lookups[0].status, Some(200), "looked up at V1.0, not at V2.0 (404)");
    shutdown.cancel();
}

#[tokio::test]
async fn a_new_process_takes_zones_from_the_state_directory_and_looks_up_an_expired_one_again() {
    let rig = rig().await;
    rig.rotate("backup").await.expect("rotation");
    let payload = SecretValue::new(rig.current("backup").await.to_string());
    let before = rig.zone_lookups();
    assert!(before >= 1, "the first process looked the zones up");
    let cache = rig.dir.path().join("state/zones/autotask.json");
    let text = std::fs::read_to_string(&cache).expect("the zone cache file");
    assert!(
        text.contains(&USER.to_ascii_lowercase()) && text.contains(&rig.sandbox.zone_lookup_url()),
        "{text}"
    );

    let second = rig.another_process().await;
    second.job("backup").expect("job").job.target.verify(&payload).await.expect("verified");
    assert_eq!(rig.zone_lookups(), before, "no zone lookup in a process that finds the zone on disk");

    // An entry past its lifetime (24 h) is looked up again, and the file gets the fresh time.
    let mut file: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let stale = (chrono::Utc::now() - chrono::Duration::hours(25)).to_rfc3339();
    file["zones"][USER.to_ascii_lowercase()]["resolved_at"] = serde_json::json!(stale);
    std::fs::write(&cache, file.to_string()).expect("write");
    let third = rig.another_process().await;
    third.job("backup").expect("job").job.target.verify(&payload).await.expect("verified");
    assert_eq!(rig.zone_lookups(), before + 1, "the expired zone is looked up again");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).expect("read")).expect("JSON");
    assert_ne!(file["zones"][USER.to_ascii_lowercase()]["resolved_at"], serde_json::json!(stale));
    for secret in [user_and_secret(&rig.current("backup").await).1, ADMIN_PASSWORD.to_owned()] {
        assert!(!std::fs::read_to_string(&cache).expect("read").contains(&secret), "no secret in the cache");
    }
}

#[tokio::test]
async fn zones_half_their_lifetime_old_are_refreshed_ahead_so_the_next_rotation_looks_none_up() {
    let rig = rig().await;
    rig.rotate("backup").await.expect("rotation");
    let cache = rig.dir.path().join("state/zones/autotask.json");
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).expect("the zone cache file")).expect("JSON");
    let users: Vec<String> = file["zones"].as_object().expect("zones").keys().cloned().collect();
    assert!(users.len() >= 2, "the user's and the admin's zones are cached: {users:?}");
    // One entry resolved 13 hours ago (past half its lifetime, not expired), the others an hour ago.
    let aged = USER.to_ascii_lowercase();
    for user in &users {
        let hours = if *user == aged { 13 } else { 1 };
        let at = (chrono::Utc::now() - chrono::Duration::hours(hours)).to_rfc3339();
        file["zones"][user]["resolved_at"] = serde_json::json!(at);
    }
    std::fs::write(&cache, file.to_string()).expect("write");

    let daemon = rig.another_process().await;
    let tenant = daemon.tenants.get("autotask").expect("the tenant");
    let before = rig.zone_lookups();
    assert_eq!(tenant.refresh_zones().await, 1, "only the aged entry is looked up again");
    assert_eq!(rig.zone_lookups(), before + 1);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).expect("read")).expect("JSON");
    let resolved_at = file["zones"][&aged]["resolved_at"].as_str().expect("time");
    let resolved_at = chrono::DateTime::parse_from_rfc3339(resolved_at).expect("rfc3339");
    assert!(chrono::Utc::now() - resolved_at.with_timezone(&chrono::Utc) < chrono::Duration::minutes(5));
    assert_eq!(tenant.refresh_zones().await, 0, "nothing is aged any more");

    // The refreshed entries serve the next rotation: it looks no zone up.
    let rotations = rig.zone_lookups();
    daemon.engine.rotate(&daemon.job("backup").expect("job").job, Trigger::Manual).await.expect("rotation");
    assert_eq!(rig.zone_lookups(), rotations, "the rotation looked no zone up");
}

#[tokio::test]
async fn the_update_sends_the_whole_entity_so_no_field_is_cleared() {
    let rig = rig().await;
    let before = rig.sandbox.resource(USER).expect("resource");
    rig.rotate("backup").await.expect("rotation");
    let after = rig.sandbox.resource(USER).expect("resource");
    assert_eq!(before, after, "every field survives the SOAP update");
    assert_eq!(after["email"], "backup@vendor.example");
    assert_eq!(after["title"], "Integration");
}

#[tokio::test]
async fn a_refused_password_is_discarded_and_the_account_keeps_working() {
    let rig = rig().await;
    rig.rotate("backup").await.expect("first rotation");
    let (_, working) = user_and_secret(&rig.current("backup").await);
    let refusal = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><updateResponse xmlns="http://autotask.net/ATWS/v1_6/"><updateResult><EntityResults/><EntityResultType>resource</EntityResultType><Errors><ATWSError><Message>The password must be different from the previous 5 passwords.</Message></ATWSError></Errors><ReturnCode>-1</ReturnCode></updateResult></updateResponse></soap:Body></soap:Envelope>"#;
    rig.sandbox.add_fault(Fault {
        call: Call::SoapUpdate,
        action: FaultAction::Fail { status: 200, body: refusal.into() },
        times: Some(1),
    });
    let err = rig.rotate("backup").await.expect_err("refused");
    assert!(matches!(err, RotationError::Refused(_)), "{err:?}");
    assert!(err.to_string().contains("previous 5 passwords"), "says why: {err}");
    assert!(rig.pending("backup").await.is_none(), "the refused value was discarded");
    assert!(rig.sandbox.authenticates(USER, &working));
    let (_, still) = user_and_secret(&rig.current("backup").await);
    assert_eq!(still, working);
}

#[tokio::test]
async fn a_refusal_that_echoes_the_password_and_the_admins_header_leaks_neither() {
    use rotavault::sandbox::{ECHO_AUTHORIZATION, ECHO_PASSWORD};
    let rig = rig().await;
    let message = format!("The password '{ECHO_PASSWORD}' sent with {ECHO_AUTHORIZATION} is not allowed.");
    let refusal = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><updateResponse xmlns="http://autotask.net/ATWS/v1_6/"><updateResult><EntityResults/><EntityResultType>resource</EntityResultType><Errors><ATWSError><Message>{message}</Message></ATWSError></Errors><ReturnCode>-1</ReturnCode></updateResult></updateResponse></soap:Body></soap:Envelope>"#
    );
    rig.sandbox.add_fault(Fault {
        call: Call::SoapUpdate,
        action: FaultAction::Fail { status: 200, body: refusal },
        times: Some(1),
    });
    let err = rig.rotate("backup").await.expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, RotationError::Refused(_)), "{err:?}");
    // Where the sandbox put the new password and the Basic-auth value, the marker stands instead.
    assert!(text.contains("The password '[redacted]' sent with Basic [redacted] is not allowed."), "{text}");
    assert!(!text.contains(ADMIN_PASSWORD), "{text}");
}

#[tokio::test]
async fn a_propagation_delay_is_waited_out_without_locking_the_account() {
    // The tenant locks at 5: the guard may let the account reach 4, of which a verify after apply may spend 2 (2
    // are kept for settling the value later).
    let rig = rig_with(
        seed("propagation_delay = \"1500ms\""),
        "settle = \"1s\"\nverify_backoff = \"1s\"\nmax_failed_logins = 4",
    )
    .await;
    rig.rotate("backup").await.expect("accepted after the delay");
    let (_, secret) = user_and_secret(&rig.current("backup").await);
    assert!(rig.sandbox.authenticates(USER, &secret));
    assert!(!rig.sandbox.is_locked(USER));
    assert_eq!(rig.sandbox.failed_logins(USER), 0, "the counter resets on the successful login");
}

#[tokio::test]
async fn a_long_propagation_delay_stops_at_the_cap_and_the_next_run_completes() {
    let rig = rig_with(
        seed("propagation_delay = \"2500ms\""),
        // The tenant locks at 5: the guard lets the account reach 4. The job's first rotation has no old value to
        // prove anything with, so a verify after apply keeps one login (for the new value, after the horizon).
        "settle = \"50ms\"\nverify_backoff = \"200ms\"\nverify_attempts = 3\nmax_failed_logins = 4\n\
         apply_horizon = \"2s\"",
    )
    .await;
    let err = rig.rotate("backup").await.expect_err("not accepted yet");
    assert!(matches!(err, RotationError::VerifyFailed { failures: 3, .. }), "{err:?}");
    assert!(!rig.sandbox.is_locked(USER), "3 failed logins stay under the lockout of 5");
    assert!(rig.pending("backup").await.is_some());
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let outcome = rig.rotate("backup").await.expect("recovery promotes");
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let (_, secret) = user_and_secret(&rig.current("backup").await);
    assert!(rig.sandbox.authenticates(USER, &secret));
    assert!(!rig.sandbox.is_locked(USER));
}

#[tokio::test]
async fn throttling_and_itgenatr005_are_backed_off_and_never_count_as_failed_logins() {
    let rig = rig().await;
    rig.sandbox.add_fault(Fault { call: Call::SoapQuery, action: FaultAction::Throttle, times: Some(2) });
    rig.sandbox.add_fault(Fault {
        call: Call::ThresholdInformation,
        action: FaultAction::Itgenatr005,
        times: Some(2),
    });
    rig.rotate("backup").await.expect("the rotation gets through");
    let (_, secret) = user_and_secret(&rig.current("backup").await);
    assert!(rig.sandbox.authenticates(USER, &secret));
    assert_eq!(rig.sandbox.failed_logins(USER), 0);
}

#[tokio::test]
async fn an_update_applied_whose_answer_is_dropped_is_settled_by_recovery() {
    let rig = rig().await;
    rig.sandbox.add_fault(Fault {
        call: Call::SoapUpdate,
        action: FaultAction::ApplyThenDrop,
        times: Some(1),
    });
    let outcome = rig.rotate("backup").await.expect("recovery finds the new password works");
    assert!(matches!(outcome, Outcome::Rotated { .. }), "{outcome:?}");
    let (_, secret) = user_and_secret(&rig.current("backup").await);
    assert!(rig.sandbox.authenticates(USER, &secret));
    assert!(rig.pending("backup").await.is_none());
}

#[tokio::test]
async fn the_admin_rotates_itself_and_later_calls_use_its_new_secret() {
    let rig = rig().await;
    rig.rotate("admin").await.expect("self-rotation");
    let (user, admin_secret) = user_and_secret(&rig.current("admin").await);
    assert_eq!(user, ADMIN);
    assert!(rig.sandbox.authenticates(ADMIN, &admin_secret));
    assert!(!rig.sandbox.authenticates(ADMIN, ADMIN_PASSWORD), "the imported value died");
    rig.rotate("backup").await.expect("a rotation with the new admin secret");
    rig.rotate("admin").await.expect("and again");
    rig.rotate("backup").await.expect("and again");
    assert_eq!(rig.sandbox.failed_logins(ADMIN), 0);
}

#[tokio::test]
async fn alternating_users_keep_the_other_user_valid() {
    let rig = rig().await;
    rig.rotate("reporting").await.expect("first");
    let (first_user, first_secret) = user_and_secret(&rig.current("reporting").await);
    rig.rotate("reporting").await.expect("second");
    let (second_user, second_secret) = user_and_secret(&rig.current("reporting").await);
    assert_ne!(first_user, second_user, "the users alternate");
    assert!(rig.sandbox.authenticates(&first_user, &first_secret), "the user not rotated keeps working");
    assert!(rig.sandbox.authenticates(&second_user, &second_secret));
    rig.rotate("reporting").await.expect("third");
    let (third_user, third_secret) = user_and_secret(&rig.current("reporting").await);
    assert_eq!(third_user, first_user);
    assert!(
        !rig.sandbox.authenticates(&first_user, &first_secret),
        "its old secret died with the third rotation"
    );
    assert!(rig.sandbox.authenticates(&third_user, &third_secret));
    assert!(rig.sandbox.authenticates(&second_user, &second_secret), "the other user still works");
}

#[tokio::test]
async fn import_verifies_and_a_wrong_credential_writes_nothing() {
    let rig = rig().await;
    let err = rig.import("backup", USER, "not-the-password").await.expect_err("refused");
    assert!(matches!(err, RotationError::ImportRejected(_)), "{err:?}");
    let js = &rig.job("backup").stores[0];
    assert!(js.store.current(&js.secret).await.expect("read").is_none(), "nothing written");
    let generation = rig.import("backup", USER, "B@ckup-initial-1").await.expect("imports");
    assert_eq!(generation, 1);
    let (_, secret) = user_and_secret(&rig.current("backup").await);
    assert_eq!(secret, "B@ckup-initial-1");
}

#[tokio::test]
async fn check_connect_passes_on_a_good_setup() {
    let rig = rig().await;
    for name in ["backup", "reporting", "admin"] {
        let checks = rig.job(name).target.connect_checks().await;
        assert!(!checks.is_empty());
        for check in &checks {
            assert!(check.ok, "{name}: {check:?}");
        }
    }
}

#[tokio::test]
async fn check_connect_reports_each_failure_with_a_fix() {
    // An admin without System Administrator level, a user that does not exist, and an inactive one.
    let text = format!(
        r#"
integration_codes = ["{CODE}"]

[[resources]]
id = 100
user_name = "{ADMIN}"
password = "{ADMIN_PASSWORD}"
security_level = "api_user"

[[resources]]
id = 102
user_name = "{USER_A}"
password = "R3p#rting-a-initial"
security_level = "api_user"
active = false
"#
    );
    let rig = rig_with(Seed::from_toml(&text).expect("seed"), "").await;
    let checks = rig.job("backup").target.connect_checks().await;
    let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert!(failed.iter().any(|c| c.name.to_lowercase().contains("update")), "admin rights: {checks:?}");
    assert!(
        failed.iter().any(|c| c.detail.contains(USER) || c.name.contains(USER)),
        "missing user: {checks:?}"
    );
    assert!(failed.iter().all(|c| c.fix.is_some()), "every failure says what to do: {checks:?}");
    let checks = rig.job("reporting").target.connect_checks().await;
    assert!(
        checks.iter().any(|c| !c.ok && (c.detail.contains("active") || c.name.contains("active"))),
        "inactive user: {checks:?}"
    );

    // A wrong admin secret: authentication fails on REST and SOAP.
    rig.sandbox.set_password_behind_the_back(ADMIN, "Ch@nged-by-someone-1");
    let checks = rig.job("backup").target.connect_checks().await;
    assert!(checks.iter().any(|c| !c.ok && c.name.contains("REST")), "{checks:?}");
    assert!(checks.iter().any(|c| !c.ok && c.name.contains("SOAP")), "{checks:?}");
}

#[tokio::test]
async fn an_update_committed_after_the_timeout_is_unknown_and_then_the_new_password_is_the_one_accepted() {
    // The fact recovery must survive: the client gave up, the server finished anyway.
    let rig = rig_with_timeout(seed(""), "settle = \"50ms\"", "300ms").await;
    rig.sandbox.add_fault(Fault {
        call: Call::SoapUpdate,
        action: FaultAction::CommitLate(Duration::from_secs(1)),
        times: Some(1),
    });
    let target = &rig.job("backup").target;
    let info =
        RotationInfo { job: "backup".into(), rotation_id: RotationId::new(), rotated_at: chrono::Utc::now() };
    let new = "L@te-commit-Pa55word";
    let payload = target.prepare(None, &SecretValue::new(new), &info).await.expect("a payload");
    let err = target
        .apply(&payload, Duration::from_secs(60))
        .await
        .expect_err("no answer within the tenant's timeout");
    assert!(matches!(err, TargetError::Unknown { .. }), "{err:?}");
    assert!(
        rig.sandbox.authenticates(USER, "B@ckup-initial-1"),
        "not landed yet: the old password still works"
    );

    tokio::time::timeout(Duration::from_secs(30), rig.sandbox.until_late_commits(1))
        .await
        .expect("the update lands without its client");
    assert!(rig.sandbox.authenticates(USER, new), "the new password is now the one Autotask accepts");
    assert!(!rig.sandbox.authenticates(USER, "B@ckup-initial-1"));
}

#[tokio::test]
async fn a_hanging_update_times_out_and_recovery_finds_it_never_happened() {
    let rig =
        rig_with(seed(""), "settle = \"50ms\"\nverify_backoff = \"200ms\"\napply_horizon = \"4s\"").await;
    rig.rotate("backup").await.expect("first rotation");
    let (_, working) = user_and_secret(&rig.current("backup").await);
    rig.sandbox.add_fault(Fault { call: Call::SoapUpdate, action: FaultAction::Hang, times: Some(1) });
    let err = rig.rotate("backup").await.expect_err("the update never answered");
    // Until the apply horizon has passed, the server may still carry the update out: kept, never discarded.
    assert!(matches!(err, RotationError::Unsettled { .. }), "{err:?}");
    assert!(rig.pending("backup").await.is_some(), "kept pending within the apply horizon");
    assert!(rig.sandbox.authenticates(USER, &working));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let outcome = rig.rotate("backup").await.expect("settled after the horizon, then rotated");
    assert!(matches!(outcome, Outcome::Rotated { .. }), "{outcome:?}");
    let (_, secret) = user_and_secret(&rig.current("backup").await);
    assert!(rig.sandbox.authenticates(USER, &secret));
    assert!(!rig.sandbox.is_locked(USER));
}

#[tokio::test]
async fn an_unexplained_500_on_update_is_settled_by_recovery_and_a_500_on_verify_is_retried() {
    let rig = rig().await;
    rig.rotate("backup").await.expect("first rotation");
    let (_, working) = user_and_secret(&rig.current("backup").await);
    rig.sandbox.add_fault(Fault {
        call: Call::SoapUpdate,
        action: FaultAction::Fail { status: 500, body: "Internal Server Error".into() },
        times: Some(1),
    });
    // A 500 may or may not have changed the password: recovery asks the target after the apply horizon, and it
    // still takes the old one.
    rig.rotate("backup").await.expect_err("not applied");
    assert!(rig.pending("backup").await.is_some(), "kept pending within the apply horizon");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let recovery = rig.runtime.engine.recover(rig.job("backup")).await.expect("settled");
    assert!(matches!(recovery, rotavault::rotation::Recovery::Discarded { .. }), "{recovery:?}");
    assert!(rig.pending("backup").await.is_none());
    assert!(rig.sandbox.authenticates(USER, &working));

    rig.sandbox.add_fault(Fault {
        call: Call::ThresholdInformation,
        action: FaultAction::Fail { status: 503, body: "Service Unavailable".into() },
        times: Some(2),
    });
    rig.rotate("backup").await.expect("the verify gets through after the 503s");
    let (_, secret) = user_and_secret(&rig.current("backup").await);
    assert!(rig.sandbox.authenticates(USER, &secret));
    assert_eq!(rig.sandbox.failed_logins(USER), 0, "a 5xx is not a failed login");
}
