//! The seed: the tenant the sandbox starts with (settings, API users and their passwords, faults), read from a
//! TOML file or built in code. Every key is optional; unknown keys are refused so a typo is never silently a
//! default. Seed passwords are test-only values, yet `Debug` still redacts them.

use super::faults::Fault;
use super::limits::ThreadLimitResponse;
use serde::{Deserialize, Deserializer};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first id given to a seeded resource that names none (the id of the reference's PATCH example).
const FIRST_ID: i64 = 29682885;

/// The tenant a sandbox starts with.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Seed {
    /// Consecutive failed logins (REST or SOAP) that lock an account.
    pub lockout_threshold: u32,
    /// Autotask's "strong password" site setting: adds length, position and class rules to `update`.
    pub strong_passwords: bool,
    /// Authenticated requests allowed in any rolling 60 minutes.
    pub hourly_limit: u64,
    /// Requests allowed in flight per (integration code, endpoint).
    pub thread_limit: u32,
    /// How a request over the thread limit is answered.
    pub thread_limit_response: ThreadLimitResponse,
    /// Time between a password change and the moment the new password is accepted.
    #[serde(deserialize_with = "duration_text")]
    pub propagation_delay: Duration,
    /// Read SOAP `update` entities as a strict, schema-bound reader does: an element out of the WSDL sequence (a
    /// `Password` after `LicenseType`, say) is dropped without an error, and the update succeeds without it.
    /// Whether the real service does this is not documented; a client must work either way.
    pub strict_reader: bool,
    /// The tenant's valid API integration codes (tracking identifiers).
    pub integration_codes: Vec<String>,
    pub resources: Vec<SeedResource>,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
}

impl Default for Seed {
    fn default() -> Seed {
        Seed {
            lockout_threshold: 5,
            strong_passwords: true,
            hourly_limit: 10_000,
            thread_limit: 3,
            thread_limit_response: ThreadLimitResponse::Status429,
            propagation_delay: Duration::ZERO,
            strict_reader: false,
            integration_codes: vec!["SANDBOX-INTEGRATION-CODE".to_string()],
            resources: Vec::new(),
            faults: Vec::new(),
        }
    }
}

/// What an API user may do, standing for its Autotask security level.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SecurityLevel {
    /// "API User (system) (API-only)": System Administrator level; may update Resources (and so passwords).
    ApiAdmin,
    /// An API-only level without admin access to Resources.
    #[default]
    ApiUser,
    /// A UI user: the APIs refuse it (REST and SOAP 1.6 need an API-only level).
    UiUser,
}

/// One resource (user) of the seeded tenant.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeedResource {
    /// Given in order from 29682885 when absent.
    #[serde(default)]
    pub id: Option<i64>,
    pub user_name: String,
    /// A test-only value: the seed is the one place a sandbox password is written down.
    pub password: String,
    #[serde(default)]
    pub security_level: SecurityLevel,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub license_type: Option<i64>,
    #[serde(default)]
    pub user_type: Option<i64>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub office_phone: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub default_service_desk_role_id: Option<i64>,
}

fn yes() -> bool {
    true
}

impl SeedResource {
    /// An active resource with only a user name, a password and a level; set other fields with `..`.
    pub fn new(user_name: &str, password: &str, security_level: SecurityLevel) -> SeedResource {
        SeedResource {
            id: None,
            user_name: user_name.to_string(),
            password: password.to_string(),
            security_level,
            first_name: None,
            last_name: None,
            email: None,
            active: true,
            title: None,
            license_type: None,
            user_type: None,
            resource_type: None,
            office_phone: None,
            mobile_phone: None,
            default_service_desk_role_id: None,
        }
    }
}

impl fmt::Debug for SeedResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedResource")
            .field("id", &self.id)
            .field("user_name", &self.user_name)
            .field("password", &"[redacted]")
            .field("security_level", &self.security_level)
            .finish_non_exhaustive()
    }
}

/// Why a seed could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    #[error("sandbox seed {path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The TOML does not parse or does not fit the seed's schema; `at` is "line L, column C" when known.
    #[error("sandbox seed{}: {at}{message}", origin(.path))]
    Syntax { path: Option<PathBuf>, at: String, message: String },
    /// The seed parses but cannot describe a tenant (duplicate users, a zero limit…).
    #[error("sandbox seed{}: {message}", origin(.path))]
    Invalid { path: Option<PathBuf>, message: String },
}

fn origin(path: &Option<PathBuf>) -> String {
    path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default()
}

impl Seed {
    /// Parses and validates a seed file's text.
    pub fn from_toml(text: &str) -> Result<Seed, SeedError> {
        Seed::parse(text, None)
    }

    /// Reads, parses and validates a seed file.
    pub fn load(path: &Path) -> Result<Seed, SeedError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SeedError::Read { path: path.to_path_buf(), source })?;
        Seed::parse(&text, Some(path))
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Seed, SeedError> {
        let seed: Seed = toml::from_str(text).map_err(|e| SeedError::Syntax {
            path: path.map(Path::to_path_buf),
            // Only the position and the message: toml's own Display quotes the offending source line, which
            // in a seed may be a password line.
            at: e.span().map(|s| line_column(text, s.start)).unwrap_or_default(),
            message: e.message().trim().to_string(),
        })?;
        seed.validate().map_err(|e| match e {
            SeedError::Invalid { message, .. } => {
                SeedError::Invalid { path: path.map(Path::to_path_buf), message }
            }
            other => other,
        })?;
        Ok(seed)
    }

    /// The tenant `rotavault sandbox` serves when no seed file is given: one admin API user, one API user,
    /// weak test-only passwords known from this source.
    pub fn demo() -> Seed {
        Seed {
            resources: vec![
                SeedResource {
                    id: Some(FIRST_ID),
                    first_name: Some("Rota".to_string()),
                    last_name: Some("Admin".to_string()),
                    email: Some("rotavault-admin@sandbox.example".to_string()),
                    title: Some("Credential rotation".to_string()),
                    ..SeedResource::new(
                        "rotavault-admin@sandbox.example",
                        "initial-Pa$$word-1",
                        SecurityLevel::ApiAdmin,
                    )
                },
                SeedResource {
                    id: Some(FIRST_ID + 1),
                    first_name: Some("Integration".to_string()),
                    last_name: Some("User".to_string()),
                    email: Some("integration@sandbox.example".to_string()),
                    ..SeedResource::new(
                        "integration@sandbox.example",
                        "initial-Pa$$word-2",
                        SecurityLevel::ApiUser,
                    )
                },
            ],
            ..Seed::default()
        }
    }

    /// Checks what the schema cannot: limits above zero, unique ids and user names.
    pub fn validate(&self) -> Result<(), SeedError> {
        let invalid = |message: String| Err(SeedError::Invalid { path: None, message });
        if self.lockout_threshold == 0 {
            return invalid("lockout_threshold must be at least 1".to_string());
        }
        if self.thread_limit == 0 {
            return invalid("thread_limit must be at least 1".to_string());
        }
        if self.hourly_limit == 0 {
            return invalid("hourly_limit must be at least 1".to_string());
        }
        if self.integration_codes.iter().any(|c| c.is_empty()) {
            return invalid("integration_codes must not contain an empty code".to_string());
        }
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        for (index, (resource, id)) in self.resources.iter().zip(self.resource_ids()).enumerate() {
            if resource.user_name.is_empty() {
                return invalid(format!("resources[{index}]: user_name must not be empty"));
            }
            if !names.insert(resource.user_name.as_str()) {
                return invalid(format!(
                    "resources[{index}]: user_name {:?} appears twice",
                    resource.user_name
                ));
            }
            if !ids.insert(id) {
                return invalid(format!("resources[{index}]: id {id} appears twice"));
            }
        }
        Ok(())
    }

    /// The id of each resource: its own, or the next one after the largest id so far.
    pub(crate) fn resource_ids(&self) -> Vec<i64> {
        let mut next = self.resources.iter().filter_map(|r| r.id).max().map_or(FIRST_ID, |m| m + 1);
        self.resources
            .iter()
            .map(|r| {
                r.id.unwrap_or_else(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    }
}

fn line_column(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: ")
}

/// A duration written as humantime text ("0s", "5s", "2m").
pub(crate) fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?} ({e}); write e.g. \"5s\"")))
}
