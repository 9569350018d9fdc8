//! The store contract, run against AWS Secrets Manager on a real moto server (being written).
