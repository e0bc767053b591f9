# eventsvc-report-signer: signs the security gate's report bundles (`make sign-report`).
#
# The manifest of a report bundle (the SHA-256 of every file) is signed with an
# Ed25519 key that never leaves Vault's transit engine. This policy may ask for
# a signature and nothing else: it cannot read, export, back up or reconfigure
# the key, sign audit checkpoints, or read any secret. Auditors check the
# signature with the public key (eventsvc-auditor reads transit/keys/secgate-report).

path "transit/sign/secgate-report" {
  capabilities = ["update"]
}
