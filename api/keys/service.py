"""API keys: a random secret handed out once, stored only as its SHA-256.

A key reads `pgk_<id>_<secret>`: the id finds the node, the secret is checked against the
stored hash in constant time. 32 random bytes leave nothing for a slow hash to protect.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable

from provgraph.api.keys.models import ApiKeyCreated, ApiKeyRead, Principal, Scope
from provgraph.graph.tx import Graph

PREFIX = "pgk_"

CREATE_KEY = """
CREATE (k:ApiKey {id: $id, name: $name, hash: $hash, scopes: $scopes,
                  created_at: datetime(), revoked: false})
RETURN k.id AS id, k.name AS name, k.scopes AS scopes, k.created_at AS created_at,
       k.revoked AS revoked
"""

LIST_KEYS = """
MATCH (k:ApiKey)
RETURN k.id AS id, k.name AS name, k.scopes AS scopes, k.created_at AS created_at,
       k.revoked AS revoked
ORDER BY k.created_at, k.id
"""

GET_KEY_FOR_AUTH = """
MATCH (k:ApiKey {id: $id})
RETURN k.name AS name, k.hash AS hash, k.scopes AS scopes, k.revoked AS revoked
"""

REVOKE_KEY = """
MATCH (k:ApiKey {id: $id})
SET k.revoked = true, k.revoked_at = datetime()
RETURN k.id AS id, k.name AS name, k.scopes AS scopes, k.created_at AS created_at,
       k.revoked AS revoked
"""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _read(row: dict) -> ApiKeyRead:
    created = row.get("created_at")
    return ApiKeyRead(
        id=row["id"],
        name=row["name"],
        scopes=[Scope(s) for s in row["scopes"]],
        created_at=created.to_native() if created is not None else None,
        revoked=bool(row["revoked"]),
    )


def create_key(graph: Graph, *, name: str, scopes: Iterable[Scope | str]) -> ApiKeyCreated:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    scope_values = sorted({Scope(s).value for s in scopes})
    if not scope_values:
        raise ValueError("a key needs at least one scope")
    rows = graph.write(
        CREATE_KEY, {"id": key_id, "name": name, "hash": _hash(secret), "scopes": scope_values}
    )
    created = _read(rows[0])
    return ApiKeyCreated(**created.model_dump(), secret=f"{PREFIX}{key_id}_{secret}")


def list_keys(graph: Graph) -> list[ApiKeyRead]:
    return [_read(row) for row in graph.read(LIST_KEYS)]


def revoke_key(graph: Graph, *, key_id: str) -> ApiKeyRead | None:
    rows = graph.write(REVOKE_KEY, {"id": key_id})
    return _read(rows[0]) if rows else None


def parse_token(token: str) -> tuple[str, str] | None:
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


class KeyVerifier:
    """Checks presented keys against Neo4j, remembering good answers for a few seconds
    (revocation takes effect within `ttl`; 0 disables the cache)."""

    def __init__(self, graph: Graph, ttl: float) -> None:
        self.graph = graph
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal | None:
        parsed = parse_token(token)
        if parsed is None:
            return None
        digest = _hash(token)  # cache key: never keep the secret itself
        now = time.monotonic()
        if self.ttl > 0:
            with self._lock:
                hit = self._cache.get(digest)
            if hit and hit[0] > now:
                return hit[1]
        principal = self._lookup(*parsed)
        if self.ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + self.ttl, principal)
        return principal

    def _lookup(self, key_id: str, secret: str) -> Principal | None:
        rows = self.graph.read(GET_KEY_FOR_AUTH, {"id": key_id})
        presented = _hash(secret)
        # Compare even when the key is unknown, so timing does not tell ids apart.
        stored = rows[0]["hash"] if rows else "0" * 64
        if not hmac.compare_digest(stored, presented) or not rows or rows[0]["revoked"]:
            return None
        scopes = frozenset(Scope(s) for s in rows[0]["scopes"] if s in Scope._value2member_map_)
        return Principal(key_id=key_id, name=rows[0]["name"], scopes=scopes)
