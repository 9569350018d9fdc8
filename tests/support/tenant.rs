//! An Autotask tenant for end-to-end tests: the sandbox seeded with an admin API user (System Administrator level)
//! and one API user, and the one-time import of the admin credential that every such test starts with.

use rotavault::rotation::RotationError;
use rotavault::runtime::Runtime;
use rotavault::sandbox::{Sandbox, Seed};
use rotavault::secret::SecretValue;
use rotavault::store::RotationId;
use rotavault::target::RotationInfo;
use tokio_util::sync::CancellationToken;

/// Who the tenant knows, and the integration code it accepts.
pub struct Accounts<'a> {
    pub code: &'a str,
    pub admin: &'a str,
    pub admin_password: &'a str,
    pub user: &'a str,
    pub user_password: &'a str,
}

/// A sandbox on a free loopback port, serving until `shutdown`.
pub async fn start_sandbox(accounts: &Accounts<'_>, shutdown: &CancellationToken) -> Sandbox {
    let Accounts { code, admin, admin_password, user, user_password } = accounts;
    let seed = Seed::from_toml(&format!(
        r#"integration_codes = ["{code}"]

[[resources]]
id = 1
user_name = "{admin}"
password = "{admin_password}"
security_level = "api_admin"

[[resources]]
id = 2
user_name = "{user}"
password = "{user_password}"
security_level = "api_user"
"#
    ))
    .expect("a valid seed");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    Sandbox::start(listener, seed, false, shutdown.clone()).await.expect("the sandbox starts")
}

/// The config sections of the tenant at `zone`: its Autotask target, the admin job (kept in store `local`, whose
/// admin credential the target reads there) and the API job kept in `api_stores` (the items of a TOML array), both
/// with a `max_age` of 30 days and the integration code in the file `code`.
pub fn config_sections(zone: &str, accounts: &Accounts<'_>, api_stores: &str) -> String {
    let Accounts { admin, user, .. } = accounts;
    format!(
        r#"[targets.autotask]
kind = "autotask"
zone_lookup_url = "{zone}"
admin = {{ store = "local", name = "autotask/admin" }}

[jobs.admin]
target = "autotask"
users = ["{admin}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "autotask/admin" }} ]
max_age = "30d"

[jobs.api]
target = "autotask"
users = ["{user}"]
integration_code_file = "code"
stores = [ {api_stores} ]
max_age = "30d"
"#
    )
}

/// What `rotavault import JOB --user USER --no-rotate` does with `secret` on standard input.
pub async fn import(runtime: &Runtime, job: &str, user: &str, secret: &str) -> Result<u64, RotationError> {
    let job = &runtime.job(job).expect("the job exists").job;
    let info = RotationInfo {
        job: job.name.clone(),
        rotation_id: RotationId::new(),
        rotated_at: chrono::Utc::now(),
    };
    let payload = job
        .target
        .import_payload(Some(user), &SecretValue::new(secret), &info)
        .await
        .expect("an import payload");
    runtime.engine.import(job, &payload).await
}

/// The moto server `scripts/test` starts; a test that needs it fails, and says why, when it is not there.
pub fn moto_endpoint() -> String {
    std::env::var("ROTAVAULT_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "moto is not running: ROTAVAULT_TEST_AWS_ENDPOINT is unset; run the tests through scripts/test"
        )
    })
}
