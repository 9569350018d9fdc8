//! The store contract, run against OpenBao (being written).
