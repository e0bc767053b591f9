"""Export the OpenAPI document generated from the code (``make openapi``).

The committed ``openapi.json`` is what API consumers and the DAST stage read;
a test fails when it drifts from the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from eventsvc.api.docs import openapi_document
from eventsvc.app import create_app
from eventsvc.audit.signing import LocalCheckpointSigner
from eventsvc.services import build_services
from eventsvc.settings import Settings


def render() -> str:
    """The OpenAPI document as stable, pretty JSON (no database needed)."""
    settings = Settings(profile="test", mongodb_tls=False)
    # connect=False: the client never opens a connection; routes are not called.
    client: MongoClient[dict[str, Any]] = MongoClient(connect=False)
    unused_key = b"\0" * 32  # the export never checks a token or writes a record
    services = build_services(
        client[settings.mongodb_database],
        audit_key=unused_key,
        token_pepper=unused_key,
        checkpoint_signer=LocalCheckpointSigner.generate(),
    )
    app = create_app(settings, services)
    with app.app_context():
        document = openapi_document()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("openapi.json")
    target.write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
