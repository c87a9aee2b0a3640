"""Webhook signatures: HMAC-SHA256 over `<timestamp>.<body>`, sent as

    X-Provgraph-Timestamp: 1714557600
    X-Provgraph-Signature: v1=<hex digest>

A receiver recomputes the digest with its secret, compares in constant time, and refuses
timestamps too far from its clock (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Provgraph-Timestamp"
SIGNATURE_HEADER = "X-Provgraph-Signature"
DELIVERY_HEADER = "X-Provgraph-Delivery"
EVENT_HEADER = "X-Provgraph-Event"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - stamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), signature)
