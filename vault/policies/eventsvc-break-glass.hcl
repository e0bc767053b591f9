# eventsvc-break-glass: changes who may do what. Not a standing grant.
#
# The only policy that may write the eventsvc ACL policies and the service's
# AppRole role (its policies, TTLs, CIDR bindings). Whoever holds it can grant
# anything to anyone, itself included, so: a short-lived token, issued for one
# change by two people, its use reviewed in the audit device afterwards.
# `bootstrap` needs it only when a policy or the AppRole differs from vault/
# (the first run, or a reviewed change); re-applying an unchanged layout works
# with eventsvc-operator alone.

path "sys/policies/acl/eventsvc-*" {
  capabilities = ["create", "read", "update"]
}

path "auth/approle/role/eventsvc" {
  capabilities = ["create", "read", "update"]
}
