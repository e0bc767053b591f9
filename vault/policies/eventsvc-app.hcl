# eventsvc-app: the policy of the running eventsvc API (AppRole "eventsvc").
#
# Least privilege. The service may:
#   - read the four KV v2 secrets it needs, each named (no wildcard, no list, no write):
#     the token pepper, the audit-record HMAC key, the SCRAM login, the bootstrap record;
#   - sign audit checkpoints with the transit Ed25519 key, which it can use but
#     never read, export, back up, rotate or reconfigure;
#   - append (create, never update or delete) checkpoint anchors;
#   - issue a MongoDB *client* certificate and its own HTTPS *server* certificate;
#   - revoke certificates it holds the private key of;
#   - look up, renew and revoke its own token.
# It may NOT issue mongod member certificates (pki_int/issue/eventsvc-mongod-server):
# a certificate from that role would authenticate to MongoDB as __system.
#
# The AppRole sets token_no_default_policy=true, so this file is the whole grant.
# PKI certificates are not leases (generate_lease=false), so no sys/leases/* path is
# needed: certificates are revoked with revoke-with-key, the token with revoke-self.

path "kv/data/eventsvc/token-pepper" {
  capabilities = ["read"]
}

path "kv/data/eventsvc/audit-hmac" {
  capabilities = ["read"]
}

path "kv/data/eventsvc/mongodb" {
  capabilities = ["read"]
}

path "kv/data/eventsvc/bootstrap-token" {
  capabilities = ["read"]
}

# Sign only: transit/keys/*, transit/export/*, transit/backup/* are not granted.
path "transit/sign/eventsvc-audit-checkpoint" {
  capabilities = ["update"]
}

# Checkpoint anchors, append-only: "create" only succeeds where nothing exists yet,
# so the service can add eventsvc/<writer>/<number> but never overwrite, delete,
# destroy or re-configure an anchor (no update, delete, metadata or destroy).
path "audit-anchors/data/eventsvc/*" {
  capabilities = ["create"]
}

path "pki_int/issue/eventsvc-mongo-client" {
  capabilities = ["update"]
}

path "pki_int/issue/eventsvc-api-server" {
  capabilities = ["update"]
}

# Revocation needs proof of possession of the private key, so the service can
# revoke only certificates it was issued (unlike pki_int/revoke, which takes any serial).
path "pki_int/revoke-with-key" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
