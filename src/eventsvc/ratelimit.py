"""Rate-limit counters in MongoDB: one fixed-window counter document, one round trip per hit.

Counters live in the application database (``rate_limit_counters``), so
every instance behind the load balancer shares them: limits hold for the
service, not for one process. A hit is one ``find_one_and_update`` that
upserts the window's counter and returns its new count; that one answer
decides the request and fills its ``X-RateLimit-*`` headers, with no second
read. Which key a request counts against is decided in
:mod:`eventsvc.api.ratelimits` (the Flask side).

Tolerance, stated once (README "Rate limits" says the same):

- **Fixed windows.** Windows start at multiples of the period since the
  epoch; a caller may send up to twice the limit across a window boundary
  (the end of one window and the start of the next). Cheaper and simpler
  than a sliding window, and the gateway's per-address limit smooths bursts.
- **w:1, not journaled.** Counters are acknowledged by the primary alone. A
  failover may lose the increments the old primary had not replicated: for
  the keys concerned, at most the window in progress is counted from a lower
  number (looser, never stricter). Events and the audit trail keep w:majority.
- **Fail closed.** When MongoDB cannot be reached the request gets 503
  (StoreUnavailable), never an unlimited pass.
- **Expiry.** Each counter carries ``expireAt`` (its window's end); the TTL
  index the migration creates removes it within about a minute after. An
  expired counter is never read again: its window is part of its ``_id``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

from eventsvc.schema import CollectionSchema
from eventsvc.settings import Rate
from eventsvc.store import unavailable_on_connection_errors

Document = dict[str, Any]

COUNTERS = "rate_limit_counters"
RATE_LIMIT_SCHEMA = CollectionSchema(
    COUNTERS,
    None,
    (IndexModel([("expireAt", ASCENDING)], name="expireAt_1", expireAfterSeconds=0),),
)
"""What :mod:`eventsvc.dbschema` creates (migration) and checks (app start)."""


@dataclass(frozen=True)
class WindowCount:
    """A key's count in the current window, after this request was counted."""

    limit: int
    count: int
    reset_at: int
    """When the window ends, in seconds since the epoch (``X-RateLimit-Reset``)."""

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(self.limit - self.count, 0)

    def retry_after(self, now: float) -> int:
        """Whole seconds until the window ends (at least 1): ``Retry-After``."""
        return max(math.ceil(self.reset_at - now), 1)


class RateCounter:
    """Fixed-window counters keyed by who is counted (a token id, an address)."""

    def __init__(self, database: Database[Document]) -> None:
        self._counters: Collection[Document] = database.get_collection(
            COUNTERS, write_concern=WriteConcern(w=1, j=False)
        )

    def hit(self, key: str, rate: Rate, now: float | None = None) -> WindowCount:
        """Count one request against ``key`` in the current window: one round trip."""
        moment = time.time() if now is None else now
        window_start = int(moment // rate.seconds) * rate.seconds
        reset_at = window_start + rate.seconds
        counter_id = f"{key}|{rate.seconds}s|{window_start}"
        count = unavailable_on_connection_errors(lambda: self._increment(counter_id, reset_at))
        return WindowCount(limit=rate.count, count=count, reset_at=reset_at)

    def _increment(self, counter_id: str, reset_at: int) -> int:
        """``$inc`` with upsert; returns the count after this hit.

        Two first hits of a window may race to insert its counter: MongoDB
        (4.2 and later) retries such an upsert itself, because the filter is
        an equality on ``_id``, so neither fails with a duplicate key.
        """
        counter = self._counters.find_one_and_update(
            {"_id": counter_id},
            {
                "$inc": {"count": 1},
                "$setOnInsert": {"expireAt": datetime.fromtimestamp(reset_at, UTC)},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
            projection={"count": True, "_id": False},
        )
        if counter is None:  # an upsert returning the new document always finds one
            raise RuntimeError(f"counter {counter_id} not returned by its upsert")
        return int(counter["count"])
