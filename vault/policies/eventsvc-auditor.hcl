# eventsvc-auditor: verifies exported audit trails offline (`eventsvc audit verify`).
#
# The audit HMAC key is never served by the API (whoever holds it could forge
# records), so the auditor reads it from Vault with their own token. Read only,
# one path, nothing else: no list, no other secret path, no write.
#
# Caveat: KV policies are per path, not per field. kv/eventsvc/app also holds
# token_pepper; splitting the audit key into its own secret (e.g.
# kv/eventsvc/audit) would let this policy exclude the pepper.

path "kv/data/eventsvc/app" {
  capabilities = ["read"]
}
