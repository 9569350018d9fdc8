//! Schedules (stub, being written).
