//! The Autotask sandbox through real HTTP: each test starts a `Sandbox` on `127.0.0.1:0` and speaks to it with
//! reqwest (or a raw socket) exactly as docs/autotask-wire.md says rotavault's client does. One test binary,
//! its modules named `sandbox_*` so that `cargo test sandbox` selects them.

#![cfg(feature = "sandbox")]

#[path = "sandbox/support.rs"]
mod support;

#[path = "sandbox/control.rs"]
mod sandbox_control;
#[path = "sandbox/limits.rs"]
mod sandbox_limits;
#[path = "sandbox/rest.rs"]
mod sandbox_rest;
#[path = "sandbox/soap.rs"]
mod sandbox_soap;
