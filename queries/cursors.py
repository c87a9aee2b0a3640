"""Opaque page cursors: what a page hands out for the next one, kind-checked on the way back."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from provgraph.queries.errors import InvalidCursor


def encode_cursor(kind: str, payload: dict[str, Any]) -> str:
    text = json.dumps({"k": kind, **payload}, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(kind: str, token: str) -> dict[str, Any]:
    """The payload of a cursor issued for `kind` pages; InvalidCursor otherwise."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(data, dict) or data.get("k") != kind:
            raise ValueError(kind)
        return data
    except (ValueError, binascii.Error, UnicodeError) as error:
        raise InvalidCursor(
            f"the cursor is not one this API issued for {kind} pages; "
            "start without a cursor or pass back `next_cursor` unchanged"
        ) from error
