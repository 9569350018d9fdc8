//! Configuration (stub, being written).
