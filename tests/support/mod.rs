//! Test-only parts shared by the integration tests: a target that can refuse, fail, hang or lose the answer at each
//! step, a store wrapper that injects faults into any store, and a fake of Azure Key Vault.
#![allow(dead_code)]

pub mod faulty_store;
#[cfg(feature = "azure")]
pub mod keyvault;
pub mod scripted_target;
