"""A delivery-record factory shared by the tests. Each module passes the fields it checks."""

from __future__ import annotations

from typing import Any

from core.records import DeliveryRecord


def delivery_record(record_id: str, **fields: Any) -> DeliveryRecord:
    """Return a 200 POST record with an empty body, with ``fields`` in place of the defaults."""
    defaults: dict[str, Any] = {
        "id": record_id,
        "delivery_id": f"d-{record_id}",
        "received_at": 1.0,
        "plugin": "p",
        "path": "/",
        "method": "POST",
        "headers": [],
        "query": "",
        "body": b"",
        "body_truncated": False,
        "status": 200,
        "duration_ms": 1.0,
    }
    return DeliveryRecord(**(defaults | fields))
