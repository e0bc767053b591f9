# eventsvc-operator: what `bootstrap` needs to build the eventsvc layout on a
# fresh Vault/OpenBao (mounts, PKI, roles, policies, AppRole, KV seeds).
#
# Give it to a short-lived operator token used for bootstrap and rotation, not
# to a person's everyday token, and never to the service. It cannot read the
# service's secrets after they are seeded (no "read" on kv/data/eventsvc/*), and
# cannot touch audit devices (declared in the server configuration).

# Enable and tune the pki, pki_int and kv mounts and the approle auth method.
path "sys/mounts/pki" { capabilities = ["create", "read", "update"] }
path "sys/mounts/pki_int" { capabilities = ["create", "read", "update"] }
path "sys/mounts/kv" { capabilities = ["create", "read", "update"] }
path "sys/mounts/pki/tune" { capabilities = ["create", "read", "update"] }
path "sys/mounts/pki_int/tune" { capabilities = ["create", "read", "update"] }
path "sys/mounts" { capabilities = ["read"] }
path "sys/auth/approle" { capabilities = ["create", "read", "update", "sudo"] }
path "sys/auth" { capabilities = ["read"] }
path "sys/audit" { capabilities = ["read", "sudo"] }

# The eventsvc policies, and only those.
path "sys/policies/acl/eventsvc-*" { capabilities = ["create", "read", "update"] }

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

# AppRole "eventsvc": define it and read its role_id (not its secret_ids).
path "auth/approle/role/eventsvc" { capabilities = ["create", "read", "update"] }
path "auth/approle/role/eventsvc/role-id" { capabilities = ["read"] }

# Seed KV secrets only when absent: see that one exists from its metadata (no
# values), create it with check-and-set=0. Never read, update or delete values.
path "kv/metadata/eventsvc/*" { capabilities = ["read"] }
path "kv/data/eventsvc/*" { capabilities = ["create"] }
path "kv/config" { capabilities = ["create", "read", "update"] }
