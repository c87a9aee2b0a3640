"""Stream events into Neo4j with parsing and writing overlapped.

The caller's thread parses and folds events into batches; one writer thread commits them,
one transaction a batch. On two cores this keeps both busy: Python parses while Neo4j
writes. A single writer keeps lock order simple (no deadlocks between batches).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from graph.tx import Graph, GraphUnavailable
from graph.writer import Batch, Statements, write_statements
from ingest.model import Event
from provgraph.errors import ProvgraphError

_DONE = object()


class IngestInterrupted(ProvgraphError):
    """Neo4j went away mid-run; says exactly what had been committed."""


@dataclass
class LoadStats:
    events: int = 0  # committed
    batches: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    last_origin: str | None = None  # last record of the last committed batch

    def note(self, events: int, first: datetime | None, last: datetime | None,
             origin: str | None) -> None:
        self.events += events
        self.batches += 1
        if first and (self.first_ts is None or first < self.first_ts):
            self.first_ts = first
        if last and (self.last_ts is None or last > self.last_ts):
            self.last_ts = last
        self.last_origin = origin


@dataclass(frozen=True)
class Folded:
    """A batch already folded into statement rows (by a parser process), ready to write."""

    statements: Statements
    events: int
    first: datetime | None
    last: datetime | None
    origin: str | None


@dataclass
class _Pending:
    batch: Batch = field(default_factory=Batch)
    first: datetime | None = None
    last: datetime | None = None
    origin: str | None = None

    def add(self, event: Event) -> None:
        self.batch.add(event)
        if self.first is None or event.ts < self.first:
            self.first = event.ts
        if self.last is None or event.ts > self.last:
            self.last = event.ts
        self.origin = event.origin.ref()


class Loader:
    """`with Loader(graph) as load: load.add(event)…`; `load.stats` tells what was committed."""

    def __init__(
        self,
        graph: Graph,
        batch_size: int = 5000,
        on_commit: Callable[[LoadStats], None] | None = None,
        queue_depth: int = 2,
    ) -> None:
        self.graph = graph
        self.batch_size = batch_size
        self.on_commit = on_commit
        self.stats = LoadStats()
        self._pending = _Pending()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="provgraph-writer", daemon=True)
        self._thread.start()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(flush=exc_type is None)

    def add(self, event: Event) -> None:
        self._pending.add(event)
        if self._pending.batch.events >= self.batch_size:
            self._submit()

    def add_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.add(event)

    def add_folded(self, folded: Folded) -> None:
        """Queue a batch folded elsewhere; pending single events are submitted first."""
        if self._pending.batch.events:
            self._submit()
        self._put(folded)

    def flush(self) -> None:
        """Commit what is pending and wait until every submitted batch is written."""
        if self._pending.batch.events:
            self._submit()
        self._queue.join()
        self._raise_if_failed()

    def close(self, flush: bool = True) -> None:
        try:
            if flush:
                self.flush()
        finally:
            self._queue.put(_DONE)
            self._thread.join()
        if flush:
            self._raise_if_failed()

    # -- internals ---------------------------------------------------------------------------
    def _submit(self) -> None:
        pending, self._pending = self._pending, _Pending()
        self._put(Folded([(q, rows) for q, rows in pending.batch.statements() if rows],
                         pending.batch.events, pending.first, pending.last, pending.origin))

    def _put(self, item: Folded) -> None:
        self._raise_if_failed()
        while True:
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                self._raise_if_failed()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _DONE:
                    return
                if self._error is not None:
                    continue  # drain: nothing more is written after a failure
                assert isinstance(item, Folded)
                write_statements(self.graph, item.statements, item.events)
                self.stats.note(item.events, item.first, item.last, item.origin)
                if self.on_commit:
                    self.on_commit(self.stats)
            except BaseException as error:  # reported to the caller's thread
                self._error = error
            finally:
                self._queue.task_done()

    def _raise_if_failed(self) -> None:
        error = self._error
        if error is None:
            return
        if isinstance(error, GraphUnavailable):
            where = f", through {self.stats.last_origin}" if self.stats.last_origin else ""
            raise IngestInterrupted(
                f"{error}\nCommitted before it stopped: {self.stats.events} events in "
                f"{self.stats.batches} batches{where}. Rerun the same command once Neo4j is back: "
                "re-ingesting creates no duplicates."
            ) from error
        raise error
