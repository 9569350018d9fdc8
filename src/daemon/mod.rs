//! The long-running process around the engine: for now its systemd integration (`systemd`: sd_notify, the
//! watchdog) and the SIGHUP reload (`reload`). The scheduler loop joins it from `cli::run`.

pub mod reload;
pub mod systemd;
