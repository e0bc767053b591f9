# eventsvc-bootstrap-admin: mints the first API admin token (`eventsvc token bootstrap`).
#
# Give it to a short-lived operator token, once per deployment. It may:
#   - read the token pepper (kv/data/eventsvc/app), to compute the new token's digest;
#   - create kv/data/eventsvc/bootstrap-token, only while it does not exist
#     ("create" without "update": a second bootstrap cannot replace the first;
#     the CLI also writes with check-and-set 0). The record holds the digest,
#     never the token.
# The eventsvc-operator policy already grants "create" on kv/data/eventsvc/*;
# this one is narrower (one path) plus the read it needs. The service reads the
# record with its existing read on kv/data/eventsvc/* (eventsvc-app).

path "kv/data/eventsvc/app" {
  capabilities = ["read"]
}

path "kv/data/eventsvc/bootstrap-token" {
  capabilities = ["create"]
}
