//! `file`: the embedded default store, an age-encrypted file (stub, being written).
pub const BACKEND: &str = "file";
