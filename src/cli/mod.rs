//! The command line (stub, being written).
