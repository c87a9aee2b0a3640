"""Stream events into Neo4j with parsing and writing overlapped.

The caller's thread (or a parser process, see provgraph.graph.parallel) folds events into batches;
one writer thread writes them, one transaction a batch, in order.

Before it is written, each batch's process references are resolved to one key per real
process by the run's `ProcessResolver` (graph.identity), in the writer thread, in order. The
resolver remembers what earlier batches of the run resolved, so nothing in a batch needs an
earlier batch to be committed; for references the run has not seen it reads the committed
graph (earlier runs). A batch that renames a node an earlier batch created waits for that
batch's commit in its MERGE (the key constraint), like any MERGE of an uncommitted key.

The writer overlaps each batch's commit with the next batch's statements (a commit is about
a third of a batch's time in Neo4j). This cannot deadlock: batch k+1 starts only after batch
k has run all its statements, so k holds its locks without asking for more, and k+1 at worst
waits for k's commit. Commits stay in order, so what `stats` reports committed is always a
prefix of the input. Host first/last-seen times (MERGE_HOSTS_SEEN) need batch k committed
first: they are written in their own small transaction when the writer is idle, every
HOST_TIMES_EVERY seconds and at flush.
When anything fails, the open transactions are rolled back and the batches concerned are
written again one at a time through `write_statements` (the driver's retries, then backoff),
as resolved the first time: every statement is an idempotent MERGE (a rename of a key no
longer there renames nothing), so writing a batch twice changes nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import neo4j
from neo4j.exceptions import Neo4jError
from provgraph.core.errors import ProvgraphError
from provgraph.graph.identity import ProcessResolver
from provgraph.graph.schema import has_node_keys
from provgraph.graph.tx import Graph, GraphUnavailable
from provgraph.graph.writer import (
    BATCH_SIZE,
    STATEMENTS,
    Batch,
    Folded,
    run_statements,
    write_statements,
)
from provgraph.ingest.model import Event

log = logging.getLogger(__name__)

_DONE = object()
_FLUSH = object()
COMMIT_PATIENCE = 15.0  # seconds, see _OverlappedWriter.settle
HOST_TIMES_EVERY = 10.0  # seconds between host first/last-seen updates during a long run


class IngestInterrupted(ProvgraphError):
    """Neo4j went away mid-run; says exactly what had been committed."""


@dataclass
class LoadStats:
    events: int = 0  # committed
    batches: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    last_origin: str | None = None  # last record of the last committed batch

    def note(
        self, events: int, first: datetime | None, last: datetime | None, origin: str | None
    ) -> None:
        self.events += events
        self.batches += 1
        if first and (self.first_ts is None or first < self.first_ts):
            self.first_ts = first
        if last and (self.last_ts is None or last > self.last_ts):
            self.last_ts = last
        self.last_origin = origin


def _discard(tx: neo4j.Transaction | None) -> None:
    if tx is None:
        return
    try:
        tx.close()  # rolls back if still open
    except Exception as error:  # the connection may be gone already; nothing to undo then
        log.debug("rolling back an abandoned batch transaction: %s", error)


class _OverlappedWriter:
    """Writes Folded batches in order, committing batch k while batch k+1 runs."""

    def __init__(self, graph: Graph, committed: Callable[[Folded], None]) -> None:
        self.graph = graph
        self.committed = committed
        self.overlap: bool | None = None  # decided at the first write (see _can_overlap)
        self._commits = ThreadPoolExecutor(1, thread_name_prefix="provgraph-commit")
        self._sessions: list[neo4j.Session | None] = [None, None]
        self._turn = 0
        self._inflight: tuple[Future[None], Folded] | None = None

    def write(self, item: Folded) -> None:
        if self.overlap is None:
            self.overlap = self._can_overlap()
        if not self.overlap:
            self._rewrite(item)
            return
        tx: neo4j.Transaction | None = None
        try:
            tx = self._session().begin_transaction()
            run_statements(tx, item.statements)
        except Exception as error:
            self._fall_back(tx, item, error)
            return
        if not self.settle(rollback=tx):
            self._rewrite(item)
            return
        try:
            self._inflight = (self._commits.submit(tx.commit), item)
        except Exception as error:
            self._fall_back(tx, item, error)

    def settle(self, rollback: neo4j.Transaction | None = None) -> bool:
        """Wait for the commit in flight and report it. `rollback` is the later batch's open
        transaction: it is rolled back (and False returned) when its locks could stand in the
        way, that is when the commit failed and the batch must be written again, or when the
        commit waits longer than COMMIT_PATIENCE (a commit waiting for a lock the later batch
        holds would otherwise wait forever: the server cannot see that cycle)."""
        if self._inflight is None:
            return True
        future, item = self._inflight
        self._inflight = None
        usable = True
        try:
            try:
                future.result(timeout=COMMIT_PATIENCE if rollback is not None else None)
            except FutureTimeout:
                log.warning(
                    "a batch commit is taking over %.0f s; rolling back the next batch "
                    "to write it on its own",
                    COMMIT_PATIENCE,
                )
                _discard(rollback)
                usable = False
                future.result()
        except Exception as error:
            log.info("committing a batch failed (%s); writing it again", error)
            if usable:
                _discard(rollback)
            self._reset()
            self._rewrite(item)
            return False
        self.committed(item)
        return usable

    def close(self, wait: bool = True) -> None:
        """`wait=False` (after a failure): report the commit in flight if it succeeds, but
        write nothing again."""
        try:
            if wait:
                self.settle()
            elif self._inflight is not None:
                future, item = self._inflight
                self._inflight = None
                if future.exception() is None:
                    self.committed(item)
        finally:
            self._reset()
            self._commits.shutdown(wait=True)

    # -- internals ---------------------------------------------------------------------------
    def _can_overlap(self) -> bool:
        # Overlapping needs the key constraints: they make a MERGE wait for a node another
        # transaction created but has not committed, instead of creating it a second time.
        try:
            if has_node_keys(self.graph):
                return True
        except GraphUnavailable:
            return False  # the first write will say so, with what was committed
        except Neo4jError as error:  # e.g. a user not allowed to list constraints
            log.warning(
                "could not list the graph's constraints (%s); writing batches one at a time", error
            )
            return False
        log.warning(
            "the graph has no uniqueness constraints on its node keys; writing "
            "batches one at a time (provgraph creates them: graph.schema)"
        )
        return False

    def _session(self) -> neo4j.Session:
        # Two sessions taking turns: one commits batch k while the other runs batch k+1.
        self._turn ^= 1
        session = self._sessions[self._turn]
        if session is None:
            session = self.graph.driver.session(
                database=self.graph.target.database, default_access_mode=neo4j.WRITE_ACCESS
            )
            self._sessions[self._turn] = session
        return session

    def _fall_back(self, tx: neo4j.Transaction | None, item: Folded, error: Exception) -> None:
        log.info("a batch failed in overlapped mode (%s); writing it again on its own", error)
        _discard(tx)
        self.settle()
        self._reset()
        self._rewrite(item)

    def _rewrite(self, item: Folded) -> None:
        write_statements(self.graph, item.statements, item.events)
        self.committed(item)

    def _reset(self) -> None:
        sessions, self._sessions = self._sessions, [None, None]
        for session in sessions:
            if session is not None:
                try:
                    session.close()
                except Exception as error:
                    log.debug("closing a broken session: %s", error)


class Loader:
    """`with Loader(graph) as load: load.add(event)…`; `load.stats` tells what was committed.

    `keep_raw=False` keeps evidence as source references only (for events added here;
    folded batches were folded with their own setting)."""

    def __init__(
        self,
        graph: Graph,
        batch_size: int = BATCH_SIZE,
        on_commit: Callable[[LoadStats], None] | None = None,
        queue_depth: int = 2,
        keep_raw: bool = True,
    ) -> None:
        self.graph = graph
        self.batch_size = batch_size
        self.on_commit = on_commit
        self.keep_raw = keep_raw
        self.stats = LoadStats()
        self._pending = Batch(keep_raw=keep_raw)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_depth)
        self._error: BaseException | None = None
        self._hosts: dict[str, dict[str, Any]] = {}  # committed, not yet written host times
        self._hosts_written = time.monotonic()
        self._writer = _OverlappedWriter(graph, self._committed)
        self.resolver = ProcessResolver(graph)  # touched by the writer thread only
        self._thread = threading.Thread(target=self._run, name="provgraph-writer", daemon=True)
        self._thread.start()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(flush=exc_type is None)

    def add(self, event: Event) -> None:
        self._pending.add(event)
        if self._pending.events >= self.batch_size:
            self._submit()

    def add_folded(self, folded: Folded) -> None:
        """Queue a batch folded elsewhere; pending single events are submitted first."""
        if self._pending.events:
            self._submit()
        self._put(folded)

    def flush(self) -> None:
        """Commit what is pending and wait until every submitted batch is written."""
        if self._pending.events:
            self._submit()
        self._put(_FLUSH)
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
        pending, self._pending = self._pending, Batch(keep_raw=self.keep_raw)
        self._put(pending.folded())

    def _put(self, item: object) -> None:
        self._raise_if_failed()
        while True:
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                self._raise_if_failed()

    def _run(self) -> None:
        writer = self._writer
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                item = None
            try:
                if item is None:  # nothing waiting: finish the commit in flight meanwhile
                    if self._error is None:
                        writer.settle()
                        if self._hosts_due():
                            self._write_hosts()
                    item = self._queue.get()
                if item is _DONE:
                    writer.close(wait=self._error is None)
                    return
                if self._error is not None:
                    continue  # drain: nothing more is written after a failure
                if item is _FLUSH:
                    writer.settle()
                    self._write_hosts()
                    continue
                assert isinstance(item, Folded)
                if self._hosts_due():
                    writer.settle()  # host times are written only with no batch in flight
                    self._write_hosts()
                writer.write(self.resolver.resolve(item))
            except BaseException as error:  # reported to the caller's thread
                self._error = error
            finally:
                if item is not None:
                    self._queue.task_done()

    def _committed(self, item: Folded) -> None:
        self.stats.note(item.events, item.first, item.last, item.origin)
        for row in item.hosts:
            known = self._hosts.get(row["name"])
            if known is None:
                self._hosts[row["name"]] = dict(row)
            else:
                known["first"] = min(known["first"], row["first"])
                known["last"] = max(known["last"], row["last"])
                known["fqdn"] = known["fqdn"] or row["fqdn"]
                known["os"] = known.get("os") or row.get("os")
        if self.on_commit:
            self.on_commit(self.stats)

    def _hosts_due(self) -> bool:
        return time.monotonic() - self._hosts_written >= HOST_TIMES_EVERY

    def _write_hosts(self) -> None:
        if not self._hosts:
            return
        rows = [self._hosts[name] for name in sorted(self._hosts)]
        self.graph.write(STATEMENTS["hosts_seen"].query, {"rows": rows})
        self._hosts = {}
        self._hosts_written = time.monotonic()

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


# -- the simple path: no threads, one transaction a batch ------------------------------------
def write_batch(graph: Graph, batch: Batch, resolver: ProcessResolver | None = None) -> None:
    """The simple path (tests, small writes, the naive benchmark): one transaction, host
    times included. Without a `resolver`, one is made for this batch alone."""
    resolver = resolver or ProcessResolver(graph)
    folded = resolver.resolve(batch.folded(host_times=True))
    write_statements(graph, folded.statements, batch.events)


def write_events(graph: Graph, events: Iterable[Event], batch_size: int = BATCH_SIZE) -> int:
    """Write events in batches; returns how many were written. Simple, single-threaded; one
    process resolver for the whole call, as the loader has one per run."""
    resolver = ProcessResolver(graph)
    written = 0
    batch = Batch()
    for event in events:
        batch.add(event)
        if batch.events >= batch_size:
            write_batch(graph, batch, resolver)
            written += batch.events
            batch = Batch()
    if batch.events:
        write_batch(graph, batch, resolver)
        written += batch.events
    return written
