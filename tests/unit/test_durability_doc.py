"""docs/reliability.md's durability settings are the ones store.connect() really configures."""

from __future__ import annotations

from pathlib import Path

from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from eventsvc.settings import Settings
from eventsvc.store import connect

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def test_the_documented_durability_settings_are_the_clients() -> None:
    settings = Settings(profile="test", mongodb_tls=False, mongodb_replica_set="rs0")
    client = connect(settings)
    try:
        options = client.options
        assert client.write_concern == WriteConcern(w="majority", j=True)
        assert client.read_concern == ReadConcern("majority")
        assert options.retry_writes is True
        assert options.retry_reads is True
        seconds = settings.mongodb_timeout_ms / 1000
        assert options.timeout == seconds
        assert options.server_selection_timeout == seconds
        assert options.pool_options.connect_timeout == seconds
        assert options.pool_options.max_pool_size == settings.mongodb_max_pool_size
    finally:
        client.close()
    text = DOC.read_text(encoding="utf-8")
    assert f"`EVENTSVC_MONGODB_TIMEOUT_MS` ({settings.mongodb_timeout_ms})" in text
    assert f"`EVENTSVC_MONGODB_MAX_POOL_SIZE` ({settings.mongodb_max_pool_size})" in text
    for documented in ('`w: "majority"`, `j: true`', "`retryWrites=true`", "`retryReads=true`"):
        assert documented in text
