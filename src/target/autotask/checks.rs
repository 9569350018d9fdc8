//! `rotavault check --connect` for an Autotask job: named probes that prove, before the first rotation, that every
//! step a rotation takes can work, and say plainly what to fix when one cannot. They change nothing.
//!
//! Order matters for the lockout: the admin's credential is tried once on REST, and when Autotask refuses it the
//! SOAP login is not tried, so a wrong admin secret costs one failed login here, not two. The job's own users are
//! looked at through the admin (`Resources/query`), never by logging in as them: their secret is the store's
//! business, and a failed login would count toward their lockout.

use super::answer::{CallFailure, Refusal};
use super::payload::Credential;
use super::{AdminSource, AutotaskTarget};
use super::{rest, soap};
use crate::target::ConnectCheck;

impl ConnectCheck {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { name: name.into(), ok: true, detail: detail.into(), fix: None }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name: name.into(), ok: false, detail: detail.into(), fix: Some(fix.into()) }
    }
}

/// The detail of a failed admin call, and whether Autotask refused the credential itself (a failed login).
fn admin_failure(source: &AdminSource, failure: CallFailure, admin: &Credential) -> (String, bool) {
    let refused_login = matches!(failure, CallFailure::Refused(Refusal::WrongSecret | Refusal::Locked));
    (source.failure(failure, admin).to_string(), refused_login)
}

/// What `check --connect` adds where rotavault cannot set passwords on the tenant: the mode that still works there.
const MANUAL_FIX: &str = "or set apply = \"manual\" on the job or its target: a person then sets the secret in the \
                          Autotask UI and pipes it to `rotavault import JOB`, and rotavault verifies, stores, checks \
                          and reminds as before";

impl AutotaskTarget {
    /// For `rotavault check --connect`: each probe passed or failed, with what to do. Changes nothing.
    pub async fn connect_checks(&self) -> Vec<ConnectCheck> {
        let mut checks = Vec::new();

        // The users' zones, first: they need no credential, and say at once whether the names are right.
        let mut soap_url = None;
        for user in &self.users {
            let name = format!("zone of `{user}`");
            match self.tenant.zone(user).await {
                Ok(zone) => {
                    soap_url.get_or_insert((zone.soap.clone(), user.clone()));
                    checks.push(ConnectCheck::pass(name, format!("REST {}, SOAP {}", zone.rest, zone.soap)));
                }
                Err(e) => checks.push(ConnectCheck::fail(
                    name,
                    e.to_string(),
                    "check the user name (Autotask's \"Username (Key)\" of the API user) and the target's \
                     zone_lookup_url",
                )),
            }
        }

        if self.manual {
            checks.push(ConnectCheck::pass(
                "apply = \"manual\"",
                "rotavault sets no password: a person sets it in the Autotask UI and pipes it to `rotavault import`; \
                 no admin or SOAP call is needed",
            ));
            return checks;
        }
        let source = match self.tenant.admin() {
            Ok(source) => source,
            Err(e) => {
                checks.push(ConnectCheck::fail("admin credential", e.to_string(), MANUAL_FIX));
                return checks;
            }
        };
        let label = source.label();

        // SOAP 1.6 is documented as end-of-life; an unauthenticated getZoneInfo shows whether it still answers.
        if let Some((url, user)) = soap_url {
            let name = "SOAP 1.6 endpoint";
            match soap::zone_info(&self.tenant, &url, &user).await {
                Ok(info) if info.error_code >= 0 && info.url.eq_ignore_ascii_case(&url) => {
                    checks.push(ConnectCheck::pass(name, format!("{url} answers getZoneInfo")));
                }
                Ok(info) if info.error_code >= 0 => checks.push(ConnectCheck::fail(
                    name,
                    format!("getZoneInfo names {} but rotavault derived {url} from the REST zone", info.url),
                    "report this: rotavault's SOAP URL derivation does not hold for this zone",
                )),
                Ok(info) => checks.push(ConnectCheck::fail(
                    name,
                    format!("getZoneInfo for `{user}` answered ErrorCode {}", info.error_code),
                    "check the user name",
                )),
                Err(e) => checks.push(ConnectCheck::fail(
                    name,
                    e.to_string(),
                    format!(
                        "rotavault sets passwords through SOAP 1.6; if Autotask has switched it off for this \
                         tenant, rotation cannot work there: {MANUAL_FIX}"
                    ),
                )),
            }
        }

        let (admin, metadata) = match source.read_with_metadata().await {
            Ok((admin, metadata)) => {
                checks.push(ConnectCheck::pass(
                    "admin credential",
                    format!("API user `{}` from {label}", admin.username),
                ));
                (admin, metadata)
            }
            Err(e) => {
                checks.push(ConnectCheck::fail(
                    "admin credential",
                    e.to_string(),
                    format!(
                        "write the admin API user's credential to {label} as JSON {{\"username\", \"secret\", \
                         \"integration_code\"}} (`rotavault import` does, if the admin user is itself a job)"
                    ),
                ));
                return checks;
            }
        };

        // A credential Autotask refused before, in this process or any other, is not presented again.
        if let Err(e) = self.tenant.admin_may_log_in(&admin.username, &metadata) {
            checks.push(ConnectCheck::fail(
                "admin REST login",
                format!("not tried: {e}"),
                format!("store the admin API user's working credential in {label}"),
            ));
            return checks;
        }
        let fix_login = format!(
            "make sure {label} holds the admin API user's current secret and integration code, and that the \
             user is active, API-only and not locked"
        );
        let mut refused = false;
        match rest::threshold(&self.tenant, &admin).await {
            Ok(t) => checks.push(ConnectCheck::pass(
                "admin REST login",
                format!(
                    "authenticated; the tenant has used {} of {} requests in the last {} minutes",
                    t.current_timeframe_request_count,
                    t.external_request_threshold,
                    t.request_threshold_timeframe
                ),
            )),
            Err(failure) => {
                let (detail, login_refused) = admin_failure(source, failure, &admin);
                refused = login_refused;
                if login_refused {
                    self.tenant.admin_refused(&metadata, &detail);
                }
                checks.push(ConnectCheck::fail("admin REST login", detail, fix_login.clone()));
            }
        }

        if refused {
            checks.push(ConnectCheck::fail(
                "admin SOAP login",
                "not tried: Autotask refused the admin credential on REST, and another failed login would only \
                 bring the account closer to its lockout",
                fix_login,
            ));
            return checks;
        }
        match soap::query_resource(&self.tenant, &admin, &admin.username).await {
            Ok(entity) => checks.push(ConnectCheck::pass(
                "admin SOAP login",
                format!(
                    "SOAP query answers; the admin's resource id is {}",
                    entity.field("id").unwrap_or("?")
                ),
            )),
            Err(failure) => {
                let (detail, _) = admin_failure(source, failure, &admin);
                checks.push(ConnectCheck::fail("admin SOAP login", detail, fix_login));
            }
        }

        let fix_level = format!(
            "give the admin API user the \"API User (system) (API-only)\" security level (System Administrator \
             level): only it may update resources; {MANUAL_FIX}"
        );
        match rest::resource_update_access(&self.tenant, &admin).await {
            Ok(access) if !access.eq_ignore_ascii_case("None") => checks.push(ConnectCheck::pass(
                "admin may update resources",
                format!("userAccessForUpdate is {access}"),
            )),
            Ok(access) => checks.push(ConnectCheck::fail(
                "admin may update resources",
                format!("userAccessForUpdate is {access}"),
                fix_level,
            )),
            Err(failure) => {
                let (detail, _) = admin_failure(source, failure, &admin);
                checks.push(ConnectCheck::fail("admin may update resources", detail, fix_level));
            }
        }

        for user in &self.users {
            let name = format!("API user `{user}`");
            let check = match rest::find_resource(&self.tenant, &admin, user).await {
                Ok(found) => match found.as_slice() {
                    [one] if one.is_active != Some(false) => {
                        ConnectCheck::pass(name, format!("resource {} exists and is active", one.id))
                    }
                    [one] => ConnectCheck::fail(
                        name,
                        format!("resource {} is inactive", one.id),
                        "activate the API user in Autotask (Admin > Resources/Users)",
                    ),
                    [] => ConnectCheck::fail(
                        name,
                        "no resource has this user name",
                        "create the API-only user in Autotask (Admin > Resources/Users > New API User), or fix \
                         the job's `users`",
                    ),
                    many => ConnectCheck::fail(
                        name,
                        format!("{} resources have this user name", many.len()),
                        "make the user name unique in Autotask",
                    ),
                },
                Err(failure) => {
                    let (detail, _) = admin_failure(source, failure, &admin);
                    ConnectCheck::fail(name, detail, "see the admin checks above")
                }
            };
            checks.push(check);
        }
        checks
    }
}
