"""Baseline 2 of ``make loadtest``: raw pymongo ``insert_one`` (w:majority) at the same concurrency.

No HTTP at all: ``threads`` threads in one process, each inserting in a loop
for ``seconds`` on the stack's mongod, each insert a sample in the same CSV
format as the locust side. The configuration (with the SCRAM password) comes
on stdin as JSON, never in argv or the environment.

    python -m perf.loadtest.rawmongo < config.json     (started by the harness)
"""

from __future__ import annotations

import csv
import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern

from perf.loadtest.baseline_app import mongo_client

NAME = "insert_one w:majority (raw pymongo)"


def run(config: dict[str, Any]) -> list[tuple[float, str, float, int, int, int]]:
    client = mongo_client(config)
    collection = client[config["database"]].get_collection(
        "events", write_concern=WriteConcern("majority")
    )
    collection.insert_one({"name": "warm-up"})  # connect and authenticate outside the window
    samples: list[tuple[float, str, float, int, int, int]] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + float(config["seconds"])

    def worker() -> None:
        mine = []
        while time.perf_counter() < deadline:
            started_wall, started = time.time(), time.perf_counter()
            document = {
                "name": "loadtest",
                "attributes": {"site": "lab-1", "env": "perf"},
                "start_event": datetime.now(UTC),
            }
            try:
                collection.insert_one(document)
                ok = 1
            except PyMongoError:
                ok = 0
            mine.append((started_wall, NAME, (time.perf_counter() - started) * 1000, 0, ok, ok))
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(int(config["threads"]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    return samples


def main() -> None:
    config = json.load(sys.stdin)
    samples = run(config)
    with Path(config["output"]).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start", "name", "ms", "status", "ok", "events"])
        writer.writerows(samples)


if __name__ == "__main__":
    main()
