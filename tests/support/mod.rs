//! Test-only parts shared by the integration tests: a target that can refuse, fail, hang or lose the answer at each
//! step, a store wrapper that injects faults into any store, one that slows every call and counts how many overlap, an event sink that records what it is given, a
//! webhook receiver that checks signatures, a fake of Azure Key Vault, a fake of the Kubernetes API's Leases, and an Autotask tenant
//! (the sandbox with an admin and an API user), and the real binary run as a command or as the daemon.
#![allow(dead_code)]

pub mod binary;
pub mod engine_rig;
pub mod faulty_store;
#[cfg(feature = "azure")]
pub mod keyvault;
#[cfg(feature = "kubernetes")]
pub mod lease_api;
pub mod receiver;
pub mod recording_sink;
pub mod scripted_target;
pub mod slow_store;
#[cfg(feature = "sandbox")]
pub mod tenant;
