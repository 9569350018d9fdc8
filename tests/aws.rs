//! AWS Secrets Manager end to end (being written).
