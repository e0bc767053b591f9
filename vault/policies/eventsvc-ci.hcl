# eventsvc-ci: the trusted orchestrator (CI job or deploy pipeline) that starts
# an eventsvc instance. It hands the instance a *wrapped* secret_id, and nothing else.
#
# It cannot log in as the service:
#   - every secret_id it creates must be response-wrapped (min/max_wrapping_ttl);
#   - it cannot read the role_id. The operator puts the role_id in the service's
#     configuration (EVENTSVC_VAULT_ROLE_ID); a login needs both halves, so a
#     secret_id alone is useless to CI;
#   - it cannot unwrap wrapping tokens by value (sys/wrapping/unwrap is denied,
#     overriding the default policy). Whoever holds a wrapping token can still
#     unwrap it by presenting it as their token: Vault cannot tell CI from the
#     instance there. Such an unwrap is visible: the instance's own unwrap then
#     fails loudly, and the audit device records who unwrapped.
# It cannot issue mongod member certificates (pki_int/issue/eventsvc-mongod-server):
# those authenticate to MongoDB as __system (policy eventsvc-mongod-member).

path "auth/approle/role/eventsvc/secret-id" {
  capabilities = ["update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "10m"
}

path "sys/wrapping/unwrap" {
  capabilities = ["deny"]
}

# The CRL, so CI can hand it to mongod (--tlsCRLFile) after a revocation.
path "pki_int/crl/pem" {
  capabilities = ["read"]
}
