//! The store contract, run against Azure Key Vault through the official client and the fake (being written).
