# eventsvc-ci: the trusted orchestrator (CI job or deploy pipeline) that starts
# an eventsvc instance. It hands the instance a *wrapped* secret_id and the
# role_id, and issues mongod member certificates for the test replica set.
#
# It cannot log in as the service itself in a useful way: every secret_id it
# creates must be response-wrapped (min/max_wrapping_ttl), and only the
# instance unwraps it. An unwrap by anyone else makes the instance's login fail
# loudly, which is the point of wrapping.

path "auth/approle/role/eventsvc/role-id" {
  capabilities = ["read"]
}

path "auth/approle/role/eventsvc/secret-id" {
  capabilities = ["update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "10m"
}

# mongod members of the CI replica set (OU=eventsvc-mongod).
path "pki_int/issue/eventsvc-mongod-server" {
  capabilities = ["update"]
}

# The CRL, so CI can hand it to mongod (--tlsCRLFile) after a revocation.
path "pki_int/crl/pem" {
  capabilities = ["read"]
}
