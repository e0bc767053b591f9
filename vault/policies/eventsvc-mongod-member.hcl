# eventsvc-mongod-member: provisions the certificates of mongod replica-set members.
#
# A member certificate (OU=eventsvc-mongod) authenticates to MongoDB as __system,
# so this is the only policy that reaches the member role: give it to the
# database hosts' provisioning, never to the service, CI or auditors.

path "pki_int/issue/eventsvc-mongod-server" {
  capabilities = ["update"]
}

path "pki_int/crl/pem" {
  capabilities = ["read"]
}
