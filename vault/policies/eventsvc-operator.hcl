# eventsvc-operator: what `bootstrap` needs to build the eventsvc layout on a
# fresh Vault/OpenBao (mounts, PKI, roles, policies, AppRole, KV seeds).
#
# Give it to a short-lived operator token used for bootstrap and rotation, not
# to a person's everyday token, and never to the service. It cannot read the
# service's secrets after they are seeded (no "read" on kv/data/eventsvc/*),
# cannot use, export or reconfigure the checkpoint signing key, and cannot
# touch audit devices (declared in the server configuration).
#
# It cannot change who may do what: no write on any ACL policy (its own
# included) and none on the service's AppRole role. Those are
# eventsvc-break-glass; bootstrap only reads them and stops if they differ.

# Enable and tune the pki, pki_int and kv mounts and the approle auth method.
path "sys/mounts/pki" { capabilities = ["create", "read", "update"] }
path "sys/mounts/pki_int" { capabilities = ["create", "read", "update"] }
path "sys/mounts/kv" { capabilities = ["create", "read", "update"] }
path "sys/mounts/transit" { capabilities = ["create", "read", "update"] }
path "sys/mounts/audit-anchors" { capabilities = ["create", "read", "update"] }
path "sys/mounts/pki/tune" { capabilities = ["create", "read", "update"] }
path "sys/mounts/pki_int/tune" { capabilities = ["create", "read", "update"] }
path "sys/mounts" { capabilities = ["read"] }
path "sys/auth/approle" { capabilities = ["create", "read", "update", "sudo"] }
path "sys/auth" { capabilities = ["read"] }
path "sys/audit" { capabilities = ["read", "sudo"] }

# The eventsvc policies: read, to see that they match vault/policies/. Never write.
path "sys/policies/acl/eventsvc-*" { capabilities = ["read"] }

# PKI: root CA, intermediate CA, roles, CRL configuration.
path "pki/root/generate/internal" { capabilities = ["update"] }
path "pki/root/sign-intermediate" { capabilities = ["update"] }
path "pki/issuers" { capabilities = ["list", "read"] }
path "pki/cert/ca" { capabilities = ["read"] }
path "pki/config/*" { capabilities = ["create", "read", "update"] }
path "pki_int/intermediate/generate/internal" { capabilities = ["update"] }
path "pki_int/intermediate/set-signed" { capabilities = ["update"] }
path "pki_int/issuers" { capabilities = ["list", "read"] }
path "pki_int/cert/ca_chain" { capabilities = ["read"] }
path "pki_int/config/*" { capabilities = ["create", "read", "update"] }
path "pki_int/roles/eventsvc-*" { capabilities = ["create", "read", "update"] }
path "pki_int/crl/pem" { capabilities = ["read"] }

# AppRole "eventsvc": compare it with bootstrap.yaml and read its role_id, which
# the operator puts in the service's configuration. Not its secret_ids, and no write.
path "auth/approle/role/eventsvc" { capabilities = ["read"] }
path "auth/approle/role/eventsvc/role-id" { capabilities = ["read"] }

# Transit: create the checkpoint signing key once (Ed25519, not exportable) and
# read its public key. Not sign, export, backup, or keys/<name>/config (which
# could make it exportable). Transit key creation is a POST without an existence
# check, so it needs "update"; on an existing key that changes nothing.
path "transit/keys/eventsvc-audit-checkpoint" { capabilities = ["create", "read", "update"] }
# The same for the key that signs the security gate's report bundles.
path "transit/keys/secgate-report" { capabilities = ["create", "read", "update"] }

# Seed KV secrets only when absent: see that one exists from its metadata (no
# values), create it with check-and-set=0. Never read, update or delete values.
path "kv/metadata/eventsvc/*" { capabilities = ["read"] }
path "kv/data/eventsvc/*" { capabilities = ["create"] }
path "kv/config" { capabilities = ["create", "read", "update"] }
