"""API keys: a random secret handed out once; the graph keeps only its keyed hash, sealed.

A key reads `pgk_<id>_<secret>`: the id finds the node, the secret is checked against the
stored hash in constant time. 32 random bytes leave nothing for a slow hash to protect. The
stored `hash` is the HMAC-SHA256 of the secret under a key derived from the sealing key
(`api.sealing`), and sealed itself: whoever reads the graph (an ad-hoc Cypher query) sees
neither the secret nor anything to check a guess against offline.

Keys made before sealing hold a plain SHA-256 (64 hex digits). API start-up seals those as they
are (`sha256:<hex>`, `seal_legacy_hashes`); either form keeps working, and is replaced by the
keyed hash on the key's first good use.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any

from provgraph.api.keys.models import ApiKeyCreated, ApiKeyRead, Principal, Scope
from provgraph.api.sealing import PREFIX as SEALED_PREFIX
from provgraph.api.sealing import Sealer, default_sealer
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

FIND_LEGACY = """
MATCH (k:ApiKey)
WHERE NOT k.hash STARTS WITH $prefix
RETURN k.id AS id, k.hash AS hash
"""

# Only the hash that was read or checked is replaced: a concurrent upgrade wins once.
UPGRADE_HASH = """
MATCH (k:ApiKey {id: $id})
WHERE k.hash = $legacy
SET k.hash = $hash
"""

REVOKE_KEY = """
MATCH (k:ApiKey {id: $id})
SET k.revoked = true, k.revoked_at = datetime()
RETURN k.id AS id, k.name AS name, k.scopes AS scopes, k.created_at AS created_at,
       k.revoked AS revoked
"""


def _legacy_hash(secret: str) -> str:
    """How keys were stored before sealing: plain SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_context(key_id: str) -> str:
    return f"api-key.hash:{key_id}"


def stored_hash(sealer: Sealer, key_id: str, secret: str) -> str:
    """What the graph keeps for a key's secret: its keyed hash, sealed to this key's record."""
    return sealer.seal(sealer.keyed_hash(secret), context=hash_context(key_id))


LEGACY_PREFIX = "sha256:"


def _is_legacy(stored: object) -> bool:
    return (
        isinstance(stored, str)
        and len(stored) == 64
        and all(c in "0123456789abcdef" for c in stored)
    )


def _read(row: dict[str, Any]) -> ApiKeyRead:
    created = row.get("created_at")
    return ApiKeyRead(
        id=row["id"],
        name=row["name"],
        scopes=[Scope(s) for s in row["scopes"]],
        created_at=created.to_native() if created is not None else None,
        revoked=bool(row["revoked"]),
    )


def create_key(
    graph: Graph, *, name: str, scopes: Iterable[Scope | str], sealer: Sealer | None = None
) -> ApiKeyCreated:
    """A new key. `sealer`: the API's (default: the one this process's settings name)."""
    sealer = sealer or default_sealer()
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    scope_values = sorted({Scope(s).value for s in scopes})
    if not scope_values:
        raise ValueError("a key needs at least one scope")
    rows = graph.write(
        CREATE_KEY,
        {
            "id": key_id,
            "name": name,
            "hash": stored_hash(sealer, key_id, secret),
            "scopes": scope_values,
        },
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
    """Checks presented keys against Neo4j, remembering answers for a few seconds
    (revocation takes effect within `ttl`; 0 disables the cache). A stored hash this host's
    key cannot open raises `SealingError` (a configuration fault, not a bad key)."""

    def __init__(self, graph: Graph, ttl: float, sealer: Sealer) -> None:
        self.graph = graph
        self.ttl = ttl
        self.sealer = sealer
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> tuple[bool, Principal | None]:
        """(True, the answer) when the token's answer is remembered and fresh, or the token
        is malformed (no lookup can make it valid); (False, None) when only `verify`, which
        may ask Neo4j, can tell. Never blocks on I/O: the API calls it on its event loop."""
        if parse_token(token) is None:
            return True, None
        if self.ttl <= 0:
            return False, None
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            hit = self._cache.get(digest)
        if hit and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def forget(self) -> None:
        """Drop every remembered answer (this host revoked or created a key)."""
        with self._lock:
            self._cache.clear()

    def verify(self, token: str) -> Principal | None:
        parsed = parse_token(token)
        if parsed is None:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()  # cache key, not the secret itself
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
        presented = self.sealer.keyed_hash(secret)
        if not rows:
            hmac.compare_digest(presented, "0" * 64)  # the same comparison as a known id
            return None
        row = rows[0]
        stored = row["hash"]
        if not isinstance(stored, str):
            return None
        if Sealer.is_sealed(stored):
            opened = self.sealer.unseal(stored, context=hash_context(key_id))
            legacy = opened.removeprefix(LEGACY_PREFIX) if opened.startswith(LEGACY_PREFIX) else ""
        else:
            opened, legacy = "", stored  # not sealed: only a pre-sealing SHA-256 may be here
        if legacy:  # made before keyed hashes: SHA-256, sealed at start-up or not yet
            good = _is_legacy(legacy) and hmac.compare_digest(legacy, _legacy_hash(secret))
            if good and not row["revoked"]:
                fresh = stored_hash(self.sealer, key_id, secret)
                self.graph.write(UPGRADE_HASH, {"id": key_id, "legacy": stored, "hash": fresh})
        else:
            good = bool(opened) and hmac.compare_digest(opened.encode(), presented.encode())
        if not good or row["revoked"]:
            return None
        scopes = frozenset(Scope(s) for s in row["scopes"] if s in Scope._value2member_map_)
        return Principal(key_id=key_id, name=row["name"], scopes=scopes)


def seal_legacy_hashes(graph: Graph, sealer: Sealer) -> int:
    """Seal the plain SHA-256 hashes of keys made before sealing, as they are (the keyed hash
    needs the secret, so it waits for the key's next use). Idempotent; returns how many."""
    sealed = 0
    for row in graph.read(FIND_LEGACY, {"prefix": SEALED_PREFIX}):
        if not _is_legacy(row["hash"]):
            continue
        key_id = str(row["id"])
        wrapped = sealer.seal(LEGACY_PREFIX + row["hash"], context=hash_context(key_id))
        sealed += len(
            graph.write(
                UPGRADE_HASH + "RETURN k.id AS id",
                {"id": key_id, "legacy": row["hash"], "hash": wrapped},
            )
        )
    return sealed
