"""A gunicorn worker signs its chain heads when it exits: no unsigned tail is left.

Real server (``python -m eventsvc.server``, gunicorn, TLS) on the test mongod.
Creating an event writes an ``event.create`` record in the worker's chain;
the interval checkpoint (30 s) cannot have run by then, so a checkpoint with
reason ``exit`` that signs that record can only come from the exit hook.
"""

from __future__ import annotations

from collections.abc import Callable

import requests
from pymongo.database import Database

from devstack.mongod import RunningMongod
from eventsvc.audit.record import AUDIT, AUDIT_CHECKPOINTS, Document
from eventsvc.audit.verify import verify
from eventsvc.settings import Settings
from support import CHECKPOINT_KEYS, ApiServer


def test_a_worker_exit_writes_a_final_checkpoint(
    start_test_api: Callable[..., ApiServer],
    mongod: RunningMongod,
    settings: Settings,
    audit_key: bytes,
) -> None:
    server = start_test_api(workers=1)
    created = requests.post(
        f"{server.base_url}/api/v1/events",
        json={"name": "exit checkpoint", "start_event": "2026-01-01T00:00:00Z"},
        headers=server.headers,
        verify=str(server.ca_file),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    with mongod.admin_client() as admin:
        database: Database[Document] = admin[settings.mongodb_database]
        record = database[AUDIT].find_one(
            {"action": "event.create", "target": created.json()["id"]}
        )
        assert record is not None
        writer = str(record["chain"]).split("/")[0]
        assert database[AUDIT_CHECKPOINTS].count_documents({"writer_id": writer}) == 0

        server.stop()  # SIGTERM: gunicorn stops its workers gracefully

        final = database[AUDIT_CHECKPOINTS].find_one({"writer_id": writer, "reason": "exit"})
        assert final is not None, "the exiting worker signed no checkpoint"
        head = final["heads"][record["chain"]]
        assert head["sequence"] >= record["sequence"]
        report = verify(database, audit_key, CHECKPOINT_KEYS)
        assert report.bad_checkpoints == 0
        assert not [c for c in report.checkpoint_chain_problems if writer in c]
