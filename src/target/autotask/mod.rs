//! Stand-in for the Autotask target while it is written (replaced on merge).
use crate::secret::{CharClass, PositionRule, SecretPolicy};

pub const KIND: &str = "autotask";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadFormat {
    Json,
    Secret,
}

pub fn autotask_policy() -> SecretPolicy {
    SecretPolicy {
        length: 32,
        min_length: 7,
        max_length: 64,
        forbidden: [' ', '\''].into_iter().collect(),
        min_groups: 2,
        positions: vec![PositionRule { class: CharClass::Special, from: 2, to: 6 }],
        ..SecretPolicy::default()
    }
}

// Stand-ins for the client types, so that the rest compiles until the real target is merged.
use crate::store::{SecretRef, Store};
use std::sync::Arc;
use std::time::Duration;

pub struct AdminSource {
    pub store: Arc<dyn Store>,
    pub secret: SecretRef,
}

#[derive(Default)]
pub struct TenantSettings {
    pub zone_lookup_url: String,
    pub threads: usize,
    pub hourly_budget: u32,
    pub timeout: Duration,
    pub max_backoff: Duration,
}

#[derive(Debug)]
pub struct AutotaskTenant;

impl AutotaskTenant {
    pub fn new(_settings: TenantSettings, _admin: AdminSource) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self))
    }
}

#[derive(Debug)]
pub struct AutotaskTarget;

impl AutotaskTarget {
    pub fn new(
        _tenant: Arc<AutotaskTenant>,
        _users: Vec<String>,
        _code: String,
        _format: PayloadFormat,
    ) -> Result<crate::target::generated::GeneratedTarget, String> {
        Ok(crate::target::generated::GeneratedTarget::default())
    }
}
