# eventsvc-gateway: the API gateway's (Traefik's) HTTPS certificate, nothing else.
#
# The gateway terminates client TLS with a certificate from pki_int's
# eventsvc-gateway-server role (server usage, OU=eventsvc-gateway) and
# re-issues it before it expires. It reads no secret, signs nothing, and
# cannot reach the API's, the MongoDB clients' or the members' roles.

path "pki_int/issue/eventsvc-gateway-server" {
  capabilities = ["update"]
}

# Its own token (created without the default policy): renewed at each re-issue,
# revoked when the gateway stops.
path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
