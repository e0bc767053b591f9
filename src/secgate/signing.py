"""A report bundle an auditor can check: the manifest's hashes, and a signature over it.

``manifest.json`` lists the SHA-256 of every file of a run. :func:`verify_report`
recomputes them and refuses a bundle with a changed, missing or unlisted file.
The manifest itself is signed where a signing identity exists:

* on the local stack, by an Ed25519 key in Vault's transit engine that the
  signer may use but never read (:func:`sign_with_vault_transit`); the
  signature goes to ``manifest.sig.json``, and the auditor checks it with the
  public key they fetched from Vault themselves (``--public-key``);
* in GitHub Actions, keyless with cosign (the workflow's identity); that
  ``manifest.json.sigstore.json`` bundle is checked with ``cosign verify-blob``.

A public key found *inside* the bundle proves nothing, so verification never
takes one from there.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from secgate.reports.manifest import sha256

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig.json"
COSIGN_BUNDLE = "manifest.json.sigstore.json"
NOT_IN_MANIFEST = {MANIFEST, SIGNATURE, COSIGN_BUNDLE}
VAULT_SCHEME = "vault-transit-ed25519"


class SigningError(RuntimeError):
    """The bundle could not be signed; the message says why (never the token)."""


@dataclass(frozen=True)
class VerifyResult:
    """What verify-report found: problems fail it; notes say what was not checked."""

    problems: list[str]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def sign_with_vault_transit(
    report_dir: Path, *, addr: str, token: str, ca_file: str | None, key: str, mount: str
) -> Path:
    """Sign ``manifest.json`` with ``<mount>/sign/<key>`` and write ``manifest.sig.json``."""
    manifest = (report_dir / MANIFEST).read_bytes()
    client = hvac.Client(url=addr, token=token, verify=ca_file or True)
    path = f"{mount}/sign/{key}"
    try:
        response = client.write_data(path, data={"input": base64.b64encode(manifest).decode()})
    except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
        raise SigningError(f"vault refused to sign at {path}: {type(exc).__name__}") from None
    signature = (response or {}).get("data", {}).get("signature")
    if not isinstance(signature, str) or not signature.startswith("vault:v"):
        raise SigningError(f"vault returned no signature from {path}")
    document = {
        "scheme": VAULT_SCHEME,
        "vault_addr": addr,
        "key": f"{mount}/keys/{key}",
        "signature": signature,
        "signed_file": MANIFEST,
        "manifest_sha256": sha256(report_dir / MANIFEST),
    }
    target = report_dir / SIGNATURE
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return target


def verify_report(report_dir: Path, public_key: bytes | None = None) -> VerifyResult:
    """Check every hash of the manifest, that nothing is unlisted, and the signature."""
    problems: list[str] = []
    notes: list[str] = []
    try:
        manifest = json.loads((report_dir / MANIFEST).read_text(encoding="utf-8"))
        artifacts: dict[str, str] = dict(manifest["artifacts"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return VerifyResult([f"{MANIFEST}: missing or unreadable ({type(exc).__name__})"], [])
    for name, expected in sorted(artifacts.items()):
        path = report_dir / name
        if not _inside(report_dir, path) or not path.is_file():
            problems.append(f"{name}: listed in the manifest but missing")
        elif sha256(path) != expected:
            problems.append(f"{name}: SHA-256 differs from the manifest (changed after the run)")
    for path in sorted(report_dir.rglob("*")):
        relative = path.relative_to(report_dir)
        name = relative.as_posix()
        listed = name in artifacts or name in NOT_IN_MANIFEST
        if path.is_file() and not listed:
            problems.append(f"{name}: in the bundle but not in the manifest")
    problems += _check_signature(report_dir, public_key, notes)
    return VerifyResult(problems, notes)


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def _check_signature(report_dir: Path, public_key: bytes | None, notes: list[str]) -> list[str]:
    if (report_dir / COSIGN_BUNDLE).is_file():
        notes.append(
            f"{COSIGN_BUNDLE}: keyless signature from CI; check it with `cosign verify-blob "
            f"--bundle {COSIGN_BUNDLE} --certificate-identity-regexp ... {MANIFEST}`"
        )
    signature_file = report_dir / SIGNATURE
    if not signature_file.is_file():
        if not (report_dir / COSIGN_BUNDLE).is_file():
            notes.append("unsigned: no signing identity was available to this run")
        return []
    try:
        document: dict[str, Any] = json.loads(signature_file.read_text(encoding="utf-8"))
        scheme, signature = document["scheme"], str(document["signature"])
    except (OSError, ValueError, KeyError) as exc:
        return [f"{SIGNATURE}: unreadable ({type(exc).__name__})"]
    if scheme != VAULT_SCHEME:
        return [f"{SIGNATURE}: unknown scheme {scheme!r}"]
    if public_key is None:
        notes.append(
            f"{SIGNATURE}: signed with {document.get('key')} at {document.get('vault_addr')}; "
            "signature NOT checked: give --public-key (fetch it from Vault yourself)"
        )
        return []
    try:
        key = load_public_key(public_key)
        key.verify(_vault_signature_bytes(signature), (report_dir / MANIFEST).read_bytes())
    except (ValueError, InvalidSignature):
        return [f"{SIGNATURE}: the signature does not match {MANIFEST} and the given public key"]
    notes.append(f"{SIGNATURE}: signature checked with the given public key")
    return []


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key as PEM, or as Vault transit shows it (base64 of the raw 32 bytes)."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except binascii.Error as exc:
        raise ValueError("public key is neither PEM nor base64") from exc


def _vault_signature_bytes(signature: str) -> bytes:
    """``vault:v<N>:<base64>`` -> the raw signature."""
    parts = signature.split(":")
    if len(parts) != 3 or parts[0] != "vault" or not parts[1].startswith("v"):
        raise ValueError("not a Vault transit signature")
    try:
        return base64.b64decode(parts[2], validate=True)
    except binascii.Error as exc:
        raise ValueError("signature is not base64") from exc
