//! The simulated tenant: its resources, each API user's password with its history and the moment it takes
//! effect, the consecutive failed-login counter and the lock, and the tenant settings (integration codes,
//! lockout threshold, strong passwords, propagation delay). Pure state, no I/O: the REST and SOAP front ends
//! and the in-process controls all change it through these methods, under the sandbox's one lock.

use super::fields::{Field, Record};
use super::password;
use super::seed::{SecurityLevel, Seed};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

pub(crate) struct Account {
    pub(crate) record: Record,
    pub(crate) level: SecurityLevel,
    password: String,
    /// The password is accepted from this instant on (the propagation delay of a change).
    effective_at: Instant,
    /// The last passwords, newest (the current one) first, at most `password::HISTORY`.
    history: VecDeque<String>,
    pub(crate) failed_logins: u32,
    /// The highest `failed_logins` ever reached: a test proves "never above N" with it, not only "not now".
    pub(crate) most_failed_logins: u32,
    pub(crate) locked: bool,
}

impl Account {
    fn accepts(&self, secret: &str, now: Instant) -> bool {
        now >= self.effective_at && self.password == secret
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

/// The outcome of a login, in the wire page's order (steps 3–6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Login {
    Locked,
    WrongSecret,
    NotApiOnly,
    Ok,
}

pub(crate) struct Tenant {
    accounts: Vec<Account>,
    pub(crate) integration_codes: Vec<String>,
    lockout_threshold: u32,
    strong_passwords: bool,
    pub(crate) propagation_delay: Duration,
    /// SOAP `update` drops elements out of the WSDL sequence (the seed's `strict_reader`).
    pub(crate) strict_reader: bool,
}

impl Tenant {
    pub(crate) fn from_seed(seed: &Seed, now: Instant) -> Tenant {
        let accounts = seed
            .resources
            .iter()
            .zip(seed.resource_ids())
            .map(|(r, id)| {
                let mut record = Record::new(id);
                let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
                let int = |v: Option<i64>| v.map_or(Value::Null, Value::from);
                record.set(Field::UserName, Value::String(r.user_name.clone()));
                record.set(Field::FirstName, text(&r.first_name));
                record.set(Field::LastName, text(&r.last_name));
                record.set(Field::Email, text(&r.email));
                record.set(Field::IsActive, Value::Bool(r.active));
                record.set(Field::LicenseType, int(r.license_type));
                record.set(Field::UserType, int(r.user_type));
                record.set(Field::ResourceType, text(&r.resource_type));
                record.set(Field::Title, text(&r.title));
                record.set(Field::OfficePhone, text(&r.office_phone));
                record.set(Field::MobilePhone, text(&r.mobile_phone));
                record.set(Field::DefaultServiceDeskRoleId, int(r.default_service_desk_role_id));
                Account {
                    record,
                    level: r.security_level,
                    password: r.password.clone(),
                    effective_at: now,
                    history: VecDeque::from([r.password.clone()]),
                    failed_logins: 0,
                    most_failed_logins: 0,
                    locked: false,
                }
            })
            .collect();
        Tenant {
            accounts,
            integration_codes: seed.integration_codes.clone(),
            lockout_threshold: seed.lockout_threshold,
            strong_passwords: seed.strong_passwords,
            propagation_delay: seed.propagation_delay,
            strict_reader: seed.strict_reader,
        }
    }

    pub(crate) fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// User names are compared exactly, as filter values are (docs/autotask-wire.md).
    pub(crate) fn find(&self, user: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.record.user_name() == Some(user))
    }

    pub(crate) fn find_mut(&mut self, user: &str) -> Option<&mut Account> {
        self.accounts.iter_mut().find(|a| a.record.user_name() == Some(user))
    }

    pub(crate) fn by_id(&self, id: i64) -> Option<&Account> {
        self.accounts.iter().find(|a| a.record.id() == id)
    }

    pub(crate) fn by_id_mut(&mut self, id: i64) -> Option<&mut Account> {
        self.accounts.iter_mut().find(|a| a.record.id() == id)
    }

    pub(crate) fn code_is_valid(&self, code: &str) -> bool {
        self.integration_codes.iter().any(|c| c == code)
    }

    /// A login attempt: the lock first (no counter change), then the secret (a miss counts and may lock), then
    /// the security level; success resets the counter.
    pub(crate) fn login(&mut self, user: &str, secret: &str, now: Instant) -> Option<Login> {
        let threshold = self.lockout_threshold;
        let account = self.find_mut(user)?;
        if account.locked {
            return Some(Login::Locked);
        }
        if !account.accepts(secret, now) {
            account.failed_logins = account.failed_logins.saturating_add(1);
            account.most_failed_logins = account.most_failed_logins.max(account.failed_logins);
            if account.failed_logins >= threshold {
                account.locked = true;
                tracing::info!(user, failed_logins = account.failed_logins, "sandbox: account locked");
            }
            return Some(Login::WrongSecret);
        }
        if account.level == SecurityLevel::UiUser {
            return Some(Login::NotApiOnly);
        }
        account.failed_logins = 0;
        Some(Login::Ok)
    }

    /// Whether `login` would succeed now, without counting anything.
    pub(crate) fn would_accept(&self, user: &str, secret: &str, now: Instant) -> bool {
        self.find(user)
            .is_some_and(|a| !a.locked && a.level != SecurityLevel::UiUser && a.accepts(secret, now))
    }

    /// `Err(why)` when the password rules refuse `new` for the resource `id`.
    pub(crate) fn check_password(&self, id: i64, new: &str) -> Result<(), &'static str> {
        let recent = self.by_id(id).map(|a| a.history.iter().map(String::as_str));
        password::check(new, self.strong_passwords, recent.into_iter().flatten())
    }

    /// Sets a password: the old one stops working at once, the new one works from `effective_at`.
    pub(crate) fn set_password(&mut self, id: i64, new: &str, effective_at: Instant) {
        if let Some(account) = self.by_id_mut(id) {
            account.password = new.to_string();
            account.effective_at = effective_at;
            account.history.push_front(new.to_string());
            account.history.truncate(password::HISTORY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Login, Tenant};
    use crate::sandbox::{SecurityLevel, Seed, SeedResource};
    use std::time::Duration;
    use tokio::time::{Instant, advance};

    #[tokio::test(start_paused = true)]
    async fn a_changed_password_works_after_the_delay_and_the_old_one_stops_at_once() {
        let seed = Seed {
            resources: vec![SeedResource::new("u", "Old-pass!1", SecurityLevel::ApiUser)],
            lockout_threshold: 10,
            ..Seed::default()
        };
        let mut tenant = Tenant::from_seed(&seed, Instant::now());
        let id = tenant.find("u").map(|a| a.record.id()).expect("seeded");
        tenant.set_password(id, "New-pass!2", Instant::now() + Duration::from_secs(300));
        assert_eq!(tenant.login("u", "Old-pass!1", Instant::now()), Some(Login::WrongSecret));
        assert_eq!(tenant.login("u", "New-pass!2", Instant::now()), Some(Login::WrongSecret));
        advance(Duration::from_secs(299)).await;
        assert!(!tenant.would_accept("u", "New-pass!2", Instant::now()));
        advance(Duration::from_secs(1)).await;
        assert_eq!(tenant.login("u", "New-pass!2", Instant::now()), Some(Login::Ok));
        assert_eq!(tenant.find("u").map(|a| a.failed_logins), Some(0));
    }
}
