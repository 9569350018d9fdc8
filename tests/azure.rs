//! Azure Key Vault end to end (being written).
