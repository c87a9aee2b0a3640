"""The alert change number: one `(:Counter {name: "alert_seq"})` node, written and published.

`seq` is a change number taken inside the writing transaction. The counter's write lock is
held until commit, so two writers serialise on it and seq order equals commit order: a client
paging with `seq > cursor` never skips or repeats an alert. Whoever changes an alert (the rule
engine, triage updates) calls `next_seq(tx)` in the same transaction; take it *before* touching
the alert to keep one lock order (counter, then alert).

Readers page up to the counter's `published` value (`watermark`), not its `value`. Neo4j reads
are read-committed and a concurrent reader can observe a transaction while it is still being
applied: the counter already showing seq n while alert n is not yet in the seq index. A reader
that paged up to `value` then moved its cursor past n would skip alert n for good (the API's
cursor test caught this about once in ten runs). So every writer, after its commit, calls
`publish_seq`: its SET reads `value` under the counter's write lock, which is granted only once
every earlier writer has finished committing, so everything up to `published` is visible.
A writer that dies between its commit and its publish only delays readers until the next
publish (any writer's, or the API's at start-up).

`epoch` is a random id the counter gets when it is created: a cache of pages keyed by the
watermark (the API's) keys by (epoch, watermark), so a graph emptied and filled again, whose
counter counts from 0 anew, never matches a page of the graph before.
"""

from __future__ import annotations

import logging

from neo4j import ManagedTransaction
from neo4j.exceptions import DriverError, Neo4jError
from provgraph.graph.tx import Graph, GraphUnavailable, TxReads

log = logging.getLogger(__name__)

COUNTER = "alert_seq"

NEXT_SEQ = """
MERGE (c:Counter {name: $name})
ON CREATE SET c.value = 0, c.epoch = randomUUID()
SET c.value = c.value + $n
RETURN c.value AS value
"""

# Take the counter's write lock without changing it: serialises alert writers from here on.
LOCK_COUNTER = """
MERGE (c:Counter {name: $name})
ON CREATE SET c.value = 0, c.epoch = randomUUID()
SET c.lock_probe = true
REMOVE c.lock_probe
"""

# After a commit: everything up to the counter's value is now fully applied (see the module
# docstring). Never lowers `published`. (A counter from before epochs gets one here.)
PUBLISH_SEQ = """
MATCH (c:Counter {name: $name})
SET c.published = c.value, c.epoch = coalesce(c.epoch, randomUUID())
"""

WATERMARK = """
OPTIONAL MATCH (c:Counter {name: $name})
RETURN coalesce(c.published, 0) AS high
"""


# The watermark and the counter's epoch (null before the first alert change: no counter yet).
STAMP = """
OPTIONAL MATCH (c:Counter {name: $name})
RETURN coalesce(c.published, 0) AS high, c.epoch AS epoch
"""


def next_seq(tx: ManagedTransaction, n: int = 1) -> int:
    """Reserve `n` change numbers in this transaction; returns the first. Holds the counter's
    write lock until the transaction ends, so commit order equals seq order."""
    record = tx.run(NEXT_SEQ, name=COUNTER, n=n).single()
    assert record is not None
    return int(record["value"]) - n + 1


def lock_counter(tx: ManagedTransaction) -> None:
    tx.run(LOCK_COUNTER, name=COUNTER).consume()


def publish_seq(graph: Graph) -> bool:
    """Make every committed change number visible to readers (call after a commit).

    Best effort: the change it follows is already committed, and failing the caller now would
    invite a retry that repeats it (a second audit entry). Until the next publish (any alert
    writer's, or the API's at start-up) readers only see it later; nothing is skipped."""
    try:
        graph.write(PUBLISH_SEQ, {"name": COUNTER})
    except (GraphUnavailable, Neo4jError, DriverError) as error:
        log.warning("alert changes committed but not yet published to readers: %s", error)
        return False
    return True


def watermark(graph: Graph | TxReads) -> int:
    """The newest published change number: every alert change up to it is visible."""
    return int(graph.read_plain(WATERMARK, {"name": COUNTER})[0]["high"])


def stamp(graph: Graph | TxReads) -> tuple[int, str | None]:
    """The watermark and the counter's epoch (see the module docstring)."""
    row = graph.read_plain(STAMP, {"name": COUNTER})[0]
    return int(row["high"]), row["epoch"]
