"""Every knob of the API in one place, read from PROVGRAPH_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROVGRAPH_", extra="ignore")

    # serving (where to bind is `provgraph serve --host/--port`'s, not a setting)
    public_docs: bool = Field(
        default=False,
        description="serve /openapi.json without an API key (the /docs page is always "
        "public and signs the reader in with a key to fetch it)",
    )

    # endpoints answered at once: each runs in a thread of anyio's pool (its default, 40)
    request_threads: int = Field(default=40, ge=1, le=1000)

    # authentication: how long a verified key is trusted before Neo4j is asked again
    key_cache_seconds: float = 5.0

    # sealing (api/sealing.py): the key that seals webhook secrets and URLs and keys the API key
    # hashes, kept outside Neo4j. Several API hosts need the same one: set PROVGRAPH_SECRET_KEY.
    secret_key: SecretStr | None = Field(
        default=None, description="the master secret itself (at least 32 characters)"
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="a file holding it; default <state root>/api/secret.key, made on first use",
    )

    # ingest over HTTP
    max_ingest_bytes: int = 64 * 1024 * 1024  # as sent (possibly gzip)
    max_decompressed_bytes: int = 512 * 1024 * 1024  # after gunzip: a gzip bomb stops here

    # ad-hoc Cypher
    query_timeout_seconds: float = 10.0
    query_max_rows: int = 10_000

    # subgraphs
    subgraph_max_nodes: int = 2_000
    ancestry_max_hops: int = 64

    # pages
    page_max: int = 1_000

    # webhooks
    webhook_enabled: bool = True
    webhook_poll_seconds: float = 2.0
    webhook_timeout_seconds: float = 5.0
    webhook_max_attempts: int = 5
    webhook_backoff_seconds: float = 1.0  # first retry delay; doubles each attempt
    webhook_backoff_max_seconds: float = 60.0
    webhook_batch: int = 100  # alerts per subscription per cycle
    webhook_lease_seconds: float = 120.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
