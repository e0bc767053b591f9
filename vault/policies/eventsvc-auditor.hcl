# eventsvc-auditor: verifies exported audit trails offline (`eventsvc audit verify`).
#
# Verification needs three things and this policy grants exactly those, read only:
#   - the audit-record HMAC key (kv/data/eventsvc/audit-hmac): records are
#     HMAC-chained, so checking them needs the key. It is a secret of its own,
#     so this policy does not reach the token pepper or any other secret;
#   - the public half of the checkpoint signing key (transit/keys/<name> returns
#     public keys only; the key is not exportable). Checkpoints are Ed25519
#     signatures, so the HMAC key alone cannot forge one;
#   - the checkpoint anchors kept outside MongoDB (audit-anchors/);
#   - the public half of the report-signing key (transit/keys/secgate-report), to
#     check a security report bundle's signature.

# Checkpoint anchors (`audit verify --anchors`): list writers and their checkpoint
# numbers, read the anchored checkpoints. Read only.
path "audit-anchors/metadata/eventsvc/*" {
  capabilities = ["list"]
}

path "audit-anchors/data/eventsvc/*" {
  capabilities = ["read"]
}

path "kv/data/eventsvc/audit-hmac" {
  capabilities = ["read"]
}

path "transit/keys/eventsvc-audit-checkpoint" {
  capabilities = ["read"]
}

# The public half of the key that signs the security gate's report bundles
# (`secgate verify-report --public-key`).
path "transit/keys/secgate-report" {
  capabilities = ["read"]
}
