"""Every way we know to change MongoDB metadata or erase audit records: the app must be refused.

Shared by the SCRAM attack test (tests/integration/test_schema_privileges.py)
and the X.509 one with a Vault-issued certificate (test_vault_mongo.py), so
both credentials face the same list. Each attack is one command as a
compromised app instance would send it; each must fail with code 13
(Unauthorized), never "ns not found" or success.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo.database import Database
from pymongo.errors import OperationFailure

from eventsvc.audit.record import AUDIT, AUDIT_CHECKPOINTS
from eventsvc.dbschema import SCHEMAS

UNAUTHORIZED = 13
APP_ROLE = "eventsvcApp"
Db = Database[dict[str, Any]]

# One index each collection has, by name (for dropIndexes and collMod-to-TTL).
AN_INDEX = {schema.name: str(schema.indexes[0].document["name"]) for schema in SCHEMAS}
COLLECTIONS = tuple(AN_INDEX)
AUDIT_COLLECTIONS = (AUDIT, AUDIT_CHECKPOINTS)


@dataclass(frozen=True)
class Attack:
    name: str
    run: Callable[[Db], Any]


def _on_each_collection() -> list[Attack]:
    attacks: list[Attack] = []
    for name in COLLECTIONS:
        index = AN_INDEX[name]
        attacks += [
            Attack(
                f"{name}: createIndex TTL expireAfterSeconds=0",
                lambda db, c=name: db.command(
                    "createIndexes",
                    c,
                    indexes=[{"key": {"time": 1}, "name": "attack_ttl", "expireAfterSeconds": 0}],
                ),
            ),
            Attack(
                f"{name}: createIndex unique (blocks inserts)",
                lambda db, c=name: db.command(
                    "createIndexes",
                    c,
                    indexes=[{"key": {"x": 1}, "name": "attack_unique", "unique": True}],
                ),
            ),
            Attack(
                f"{name}: collMod validator={{}} validationLevel=off",
                lambda db, c=name: db.command("collMod", c, validator={}, validationLevel="off"),
            ),
            Attack(
                f"{name}: collMod validationAction=warn",
                lambda db, c=name: db.command("collMod", c, validationAction="warn"),
            ),
            Attack(
                f"{name}: collMod index {index} to TTL",
                lambda db, c=name, i=index: db.command(
                    "collMod", c, index={"name": i, "expireAfterSeconds": 1}
                ),
            ),
            Attack(
                f"{name}: dropIndexes {index}",
                lambda db, c=name, i=index: db.command("dropIndexes", c, index=i),
            ),
            Attack(
                f"{name}: dropIndexes *",
                lambda db, c=name: db.command("dropIndexes", c, index="*"),
            ),
            Attack(
                f"{name}: convertToCapped",
                lambda db, c=name: db.command("convertToCapped", c, size=4096),
            ),
            Attack(
                f"{name}: renameCollection",
                lambda db, c=name: db.client.admin.command(
                    "renameCollection", f"{db.name}.{c}", to=f"{db.name}.{c}_renamed"
                ),
            ),
            Attack(f"{name}: drop", lambda db, c=name: db.command("drop", c)),
            Attack(f"{name}: compact", lambda db, c=name: db.command("compact", c)),
        ]
    return attacks


def _on_audit_records() -> list[Attack]:
    attacks: list[Attack] = []
    for name in AUDIT_COLLECTIONS:
        attacks += [
            Attack(f"{name}: delete", lambda db, c=name: db[c].delete_many({})),
            Attack(f"{name}: update", lambda db, c=name: db[c].update_many({}, {"$set": {"x": 1}})),
            Attack(f"{name}: replace", lambda db, c=name: db[c].replace_one({}, {"x": 1})),
            Attack(
                f"{name}: findAndModify remove", lambda db, c=name: db[c].find_one_and_delete({})
            ),
            Attack(
                f"{name}: aggregate $out over it",
                lambda db, c=name: list(db["events"].aggregate([{"$match": {}}, {"$out": c}])),
            ),
        ]
    return attacks


def _on_the_database() -> list[Attack]:
    def grant_self(db: Db) -> Any:
        user = db.client.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"][0]
        return db.client[user["db"]].command(
            "grantRolesToUser", user["user"], roles=[{"role": "dbOwner", "db": db.name}]
        )

    return [
        Attack("create a new collection", lambda db: db.command("create", "attack_new")),
        Attack("insert into an unknown collection", lambda db: db["attack_new"].insert_one({})),
        Attack(
            "create a view over audit",
            lambda db: db.command("create", "attack_view", viewOn=AUDIT, pipeline=[]),
        ),
        Attack(
            "api_tokens: delete (tokens are revoked, not deleted)",
            lambda db: db["api_tokens"].delete_many({}),
        ),
        Attack("rate_limit_counters: delete", lambda db: db["rate_limit_counters"].delete_many({})),
        Attack("dropDatabase", lambda db: db.command("dropDatabase")),
        Attack(
            "createUser",
            lambda db: db.command("createUser", "attacker", pwd="attacker-pw-123", roles=[]),
        ),
        Attack("grantRolesToUser dbOwner to itself", grant_self),
        Attack(
            "createRole",
            lambda db: db.command("createRole", "attackRole", privileges=[], roles=["dbOwner"]),
        ),
        Attack(
            f"grantPrivilegesToRole {APP_ROLE}",
            lambda db: db.command(
                "grantPrivilegesToRole",
                APP_ROLE,
                privileges=[
                    {"resource": {"db": db.name, "collection": ""}, "actions": ["createIndex"]}
                ],
            ),
        ),
        Attack(
            "setParameter ttlMonitorSleepSecs",
            lambda db: db.client.admin.command("setParameter", 1, ttlMonitorSleepSecs=1),
        ),
    ]


ATTACKS = _on_each_collection() + _on_audit_records() + _on_the_database()
ATTACK_PARAMS = [pytest.param(attack, id=attack.name) for attack in ATTACKS]


def assert_refused(database: Db, attack: Attack) -> None:
    """The command fails with Unauthorized (13): refused by the role, not by chance."""
    with pytest.raises(OperationFailure) as refused:
        attack.run(database)
    assert refused.value.code == UNAUTHORIZED, refused.value.details
