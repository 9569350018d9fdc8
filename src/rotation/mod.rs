//! The rotation engine (stub, being written).
