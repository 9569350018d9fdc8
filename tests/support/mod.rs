//! Test-only parts shared by the integration tests: a target that can refuse, fail, hang or lose the answer at each
//! step, and a store wrapper that injects faults into any store.
#![allow(dead_code)]

pub mod faulty_store;
pub mod scripted_target;
