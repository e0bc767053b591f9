"""Small assertion helpers shared by test modules."""

from __future__ import annotations

from typing import Any


def problem_of(response: Any) -> dict[str, Any]:
    """The problem+json body of an error response (asserting its media type)."""
    assert response.mimetype == "application/problem+json", response.data
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == response.status_code
    return body
