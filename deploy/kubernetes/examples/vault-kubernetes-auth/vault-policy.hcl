# The Vault policy `rotavault` (bao/vault policy write rotavault vault-policy.hcl): KV v2 under the mount `secret`,
# for the secrets under rotavault/ and their pending companions (PATH-pending), and for `rotavault-check`, whose
# capabilities the store's readiness check asks for (it writes nothing there). Nothing is ever deleted.
path "secret/data/rotavault*" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/rotavault*" {
  capabilities = ["create", "read", "update", "patch"]
}
