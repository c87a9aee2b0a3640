"""The only door to the Neo4j driver.

Every query provgraph runs goes through `Graph`: writes in managed transactions that the
driver retries on transient errors, reads in read-access transactions, batches of rows
per transaction. Query text is always a constant; values travel as parameters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import neo4j
from neo4j import GraphDatabase, ManagedTransaction
from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable, SessionExpired
from provgraph.core.errors import ProvgraphError
from provgraph.graph.target import Neo4jTarget, resolve_target

T = TypeVar("T")

# The server's notifications (e.g. "property key not in the database yet" on an empty graph)
# are advice for query authors, not news for users; real errors still raise. The driver asks
# the server not to send them at all (below); the logger stays quiet for servers that would.
logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)


class GraphUnavailable(ProvgraphError):
    """Neo4j stopped answering and retries with backoff did not bring it back."""


@dataclass(frozen=True)
class Retry:
    attempts: int = 6
    first_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 8.0

    def delays(self) -> Iterator[float]:
        delay = self.first_delay
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * self.factor, self.max_delay)


class Graph:
    """A connected Neo4j database. Thread-safe: the driver pools sessions."""

    def __init__(self, target: Neo4jTarget, retry: Retry | None = None) -> None:
        self.target = target
        self.retry = retry or Retry()
        self.driver = GraphDatabase.driver(
            target.uri,
            auth=(target.user, target.password),
            max_transaction_retry_time=5.0,
            connection_acquisition_timeout=30.0,
            user_agent="provgraph",
            # Not even sent: the server skips them and the driver parses none (8% of a
            # lineage request's API time went to the summaries' notifications).
            notifications_min_severity="OFF",
        )

    @classmethod
    def connect(cls, instance: str | None = None) -> Graph:
        return cls(resolve_target(instance))

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sessions ------------------------------------------------------------------------------
    def _session(self, access: str) -> neo4j.Session:
        return self.driver.session(database=self.target.database, default_access_mode=access)

    def _with_backoff(self, work: Callable[[], T], what: str) -> T:
        """The driver retries transient errors briefly; a dead server gets a longer backoff."""
        last: Exception | None = None
        for delay in [*self.retry.delays(), None]:
            try:
                return work()
            except (ServiceUnavailable, SessionExpired, OSError) as error:
                last = error
                if delay is None:
                    break
                time.sleep(delay)
        raise GraphUnavailable(
            f"Neo4j at {self.target.uri} did not answer while {what} "
            f"({self.retry.attempts} attempts with backoff): {last}"
        )

    # -- writes --------------------------------------------------------------------------------
    # Query parameters travel as one mapping, apart from the method's own options, so a query
    # parameter may have any name (`timeout`, `query` …).
    def write(self, query: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        def work() -> list[dict[str, Any]]:
            with self._session(neo4j.WRITE_ACCESS) as session:
                return session.execute_write(_collect, query, params or {})

        return self._with_backoff(work, "writing")

    def write_autocommit(self, query: str, params: Mapping[str, Any] | None = None) -> None:
        """An implicit transaction: what `CALL { … } IN TRANSACTIONS` batch jobs require."""

        def work() -> None:
            with self._session(neo4j.WRITE_ACCESS) as session:
                session.run(query, params or {}).consume()  # type: ignore[arg-type]

        self._with_backoff(work, "writing")

    def write_tx(self, unit: Callable[[ManagedTransaction], T], what: str = "writing") -> T:
        """Run several statements as one transaction (one batch = one transaction)."""

        def work() -> T:
            with self._session(neo4j.WRITE_ACCESS) as session:
                return session.execute_write(unit)

        return self._with_backoff(work, what)

    # -- reads ---------------------------------------------------------------------------------
    def read(
        self, query: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """A read-access transaction: the server itself refuses writes in it. With `timeout`
        (seconds) the server stops the transaction when it runs longer (`TransactionTimedOut`)."""
        return self.read_tx(lambda tx: _collect(tx, query, params or {}), timeout=timeout)

    def read_plain(
        self, query: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """`read` for queries that return only projected values (maps, lists, scalars; no
        nodes, relationships or paths): rows as the driver decoded them, without
        `Record.data()`'s recursive conversion walk, which was half the client time of a
        2,000-row subgraph read."""
        return self.read_tx(lambda tx: plain_rows(tx, query, params or {}), timeout=timeout)

    def read_tx(
        self,
        unit: Callable[[ManagedTransaction], T],
        what: str = "reading",
        *,
        timeout: float | None = None,
    ) -> T:
        """A read-access transaction the caller drives (e.g. to stop reading at a row cap)."""
        bounded = neo4j.unit_of_work(timeout=timeout)(unit) if timeout else unit

        def work() -> T:
            with self._session(neo4j.READ_ACCESS) as session:
                return session.execute_read(bounded)

        return self._with_backoff(work, what)

    def reads(self, unit: Callable[[TxReads], T], what: str = "reading") -> T:
        """Several reads in one read transaction: `unit` gets `read`/`read_plain` bound to
        it, so a request's queries share one session, one BEGIN and one COMMIT."""
        return self.read_tx(lambda tx: unit(TxReads(tx)), what)

    def ping(self) -> str:
        """Server name and version, or raise GraphUnavailable."""
        try:
            rows = self.read(
                "CALL dbms.components() YIELD name, versions, edition "
                "RETURN name, versions[0] AS version, edition"
            )
        except (Neo4jError, DriverError) as error:
            raise GraphUnavailable(f"Neo4j at {self.target.uri}: {error}") from error
        row = rows[0]
        return f"{row['name']} {row['version']} {row['edition']}"


class TxReads:
    """`Graph.read` and `Graph.read_plain` inside a transaction the caller holds (see
    `Graph.reads`); code that only reads takes either."""

    def __init__(self, tx: ManagedTransaction) -> None:
        self.tx = tx

    def read(self, query: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return _collect(self.tx, query, params or {})

    def read_plain(
        self, query: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return plain_rows(self.tx, query, params or {})


def plain_rows(
    tx: ManagedTransaction, query: Any, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Rows of projected values in a transaction the caller holds (see `Graph.read_plain`)."""
    result = tx.run(query, dict(params))  # the driver's signature asks for a dict (a shallow copy)
    keys = result.keys()
    return [dict(zip(keys, record.values(), strict=True)) for record in result]


def _collect(tx: ManagedTransaction, query: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    result = tx.run(query, dict(params))
    return [record.data() for record in result]
