"""Workers racing to create the schema on a fresh database all succeed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from devstack.mongod import RunningMongod
from eventsvc.schema import ensure_collection

VALIDATOR = {"$jsonSchema": {"bsonType": "object", "required": ["name"]}}


def test_concurrent_creation_is_not_an_error(mongod: RunningMongod) -> None:
    with mongod.admin_client() as admin:
        for round_number in range(5):
            database = admin[f"schema_race_{round_number}"]
            with ThreadPoolExecutor(max_workers=4) as pool:
                futures = [
                    pool.submit(ensure_collection, database, "things", VALIDATOR) for _ in range(4)
                ]
                results = [future.result() for future in futures]
            assert results == [None] * 4
            options = database["things"].options()
            assert options["validator"] == VALIDATOR
            admin.drop_database(database.name)
