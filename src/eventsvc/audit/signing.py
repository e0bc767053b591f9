"""Checkpoint signatures: Ed25519, so that whoever can verify cannot forge.

Records are HMAC-chained with the audit key, which auditors must hold to
check them. If checkpoints used that key too, every auditor (and anyone who
stole the key from one) could sign a checkpoint blessing a cut-down trail.
So checkpoints are signed with an Ed25519 key whose private half never
leaves Vault's transit engine (the service may only ask Vault to sign), and
verified with the public half alone.

A signature is ``<prefix>:v<key version>:<base64>``, which is exactly what
Vault's ``transit/sign`` returns (``vault:v1:...``); the version picks the
public key, so a rotated transit key still verifies old checkpoints.
:class:`LocalCheckpointSigner` signs in process, for dev/test without Vault.

No pymongo, no hvac: ``eventsvc audit verify`` runs on an auditor's machine.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

CheckpointKeys = Mapping[int, Ed25519PublicKey]
"""Public keys by key version; a key given without a version serves every version."""
ANY_VERSION = 0

_SIGNATURE = re.compile(r"^[a-z0-9]{1,16}:v([0-9]{1,6}):([A-Za-z0-9+/=]{1,200})$")


class CheckpointSigningFailed(RuntimeError):
    """The signer (Vault transit) could not sign; the checkpoint is retried later."""


class CheckpointAnchor(Protocol):
    """Keeps a copy of each stored checkpoint where the database's admin cannot reach it."""

    def append(self, checkpoint: Mapping[str, Any]) -> None: ...


class CheckpointSigner(Protocol):
    """Signs a checkpoint's canonical bytes; returns ``<prefix>:v<version>:<base64>``."""

    def sign(self, message: bytes) -> str: ...


class LocalCheckpointSigner:
    """An Ed25519 key held in this process: dev/test only (prod signs through Vault)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key

    def __repr__(self) -> str:
        return "LocalCheckpointSigner(<key>)"

    @classmethod
    def from_seed(cls, seed: bytes) -> LocalCheckpointSigner:
        """From 32 random bytes (the private key's seed)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls) -> LocalCheckpointSigner:
        return cls(Ed25519PrivateKey.generate())

    def sign(self, message: bytes) -> str:
        return "ed25519:v1:" + base64.b64encode(self._private_key.sign(message)).decode()

    def public_keys(self) -> CheckpointKeys:
        return {1: self._private_key.public_key()}


def signature_ok(message: bytes, signature: object, keys: CheckpointKeys) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` by one of ``keys``."""
    if not isinstance(signature, str):
        return False
    match = _SIGNATURE.match(signature)
    if match is None:
        return False
    key = keys.get(int(match.group(1))) or keys.get(ANY_VERSION)
    if key is None:
        return False
    try:
        key.verify(base64.b64decode(match.group(2), validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def load_public_key(text: str) -> CheckpointKeys:
    """A public key as PEM, or as the base64 of its 32 raw bytes (what transit shows).

    It serves every key version: an auditor given one key file trusts that key only.
    """
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(stripped.encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM public key is not an Ed25519 key")
        return {ANY_VERSION: key}
    try:
        raw = base64.b64decode(stripped, validate=True)
    except binascii.Error:
        raise ValueError("not a PEM or base64 Ed25519 public key") from None
    if len(raw) != 32:
        raise ValueError("a raw Ed25519 public key has 32 bytes")
    return {ANY_VERSION: Ed25519PublicKey.from_public_bytes(raw)}


def public_keys_from_transit(key_data: Mapping[str, object]) -> CheckpointKeys:
    """The public keys in a ``transit/keys/<name>`` read (its ``data``), by version."""
    if key_data.get("type") != "ed25519":
        raise ValueError(f"the transit key is {key_data.get('type')!r}, not ed25519")
    versions = key_data.get("keys")
    if not isinstance(versions, Mapping):
        raise ValueError("the transit key lists no versions")
    keys: dict[int, Ed25519PublicKey] = {}
    for version, entry in versions.items():
        public = entry.get("public_key") if isinstance(entry, Mapping) else None
        if not isinstance(public, str):
            raise ValueError(f"version {version} of the transit key has no public key")
        keys[int(version)] = Ed25519PublicKey.from_public_bytes(base64.b64decode(public))
    return keys


def public_key_pem(keys: CheckpointKeys) -> str:
    """The newest key as PEM, for an auditor's key file."""
    newest = keys[max(keys)]
    return newest.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
