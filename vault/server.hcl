# Production OpenBao/Vault server for eventsvc: integrated (raft) storage, TLS only.
# One file per node; change node_id, the addresses and the retry_join list.
# Start: bao server -config=/etc/openbao/server.hcl   (or: vault server -config=...)

ui        = false
log_level = "info"
# No disable_mlock: OpenBao dropped mlock. Run on hosts with encrypted swap, or none.

api_addr     = "https://bao-1.eventsvc.internal:8200"
cluster_addr = "https://bao-1.eventsvc.internal:8201"

storage "raft" {
  path    = "/var/lib/openbao/raft"
  node_id = "bao-1"

  retry_join {
    leader_api_addr     = "https://bao-2.eventsvc.internal:8200"
    leader_ca_cert_file = "/etc/openbao/tls/ca.pem"
  }
  retry_join {
    leader_api_addr     = "https://bao-3.eventsvc.internal:8200"
    leader_ca_cert_file = "/etc/openbao/tls/ca.pem"
  }
}

# The only listener. There is no plaintext listener and no tls_disable anywhere.
listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_cert_file   = "/etc/openbao/tls/server-chain.pem"
  tls_key_file    = "/etc/openbao/tls/server-key.pem"
  tls_min_version = "tls12"
  # Only trust X-Forwarded-For from the load balancer, if there is one.
  # x_forwarded_for_authorized_addrs = "10.0.0.0/24"
}

# Declarative audit device (OpenBao refuses to enable audit devices through the
# API). bootstrap checks that it exists before configuring anything.
audit "file" "file" {
  options {
    file_path = "/var/log/openbao/audit.log"
    mode      = "0600"
  }
}

# Auto-unseal with a KMS or HSM belongs here in production, e.g.:
# seal "pkcs11" { ... }   or   seal "awskms" { region = "...", kms_key_id = "..." }
