# eventsvc-bootstrap-admin: mints the first API admin token (`eventsvc token bootstrap`).
#
# Give it to a short-lived operator token, once per deployment. It may:
#   - read the token pepper (kv/data/eventsvc/token-pepper), to compute the new
#     token's digest. Not the audit keys: they are separate secrets;
#   - create kv/data/eventsvc/bootstrap-token, only while it does not exist
#     ("create" without "update": a second bootstrap cannot replace the first;
#     the CLI also writes with check-and-set 0). The record holds the digest,
#     never the token.
# The service reads the record with its read on kv/data/eventsvc/bootstrap-token.

path "kv/data/eventsvc/token-pepper" {
  capabilities = ["read"]
}

path "kv/data/eventsvc/bootstrap-token" {
  capabilities = ["create"]
}
