//! A wrapper that traces and counts every store call (stub, being written).
