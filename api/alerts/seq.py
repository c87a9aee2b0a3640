"""The alert change number, shared with the rule engine.

Every write to an Alert takes the next value of the `(:Counter {name: 'alert_seq'})` node
inside its own transaction. The counter's write lock is held until commit, so writers
commit in seq order, and every seq up to the counter's committed value is visible: a
reader that caps its page at that value never sees seq n+1 before seq n.
"""

from __future__ import annotations

from neo4j import ManagedTransaction

COUNTER = "alert_seq"

try:  # the rule engine owns the counter; use its helper when it is there
    from queries.alerts import next_seq as _engine_next_seq
except ImportError:  # pragma: no cover - until queries/alerts.py lands
    _engine_next_seq = None

# Fallback following the same contract, kept only until queries.alerts.next_seq exists.
NEXT_SEQ = """
MERGE (c:Counter {name: $name})
ON CREATE SET c.value = 0
SET c.value = c.value + 1
RETURN c.value AS seq
"""

WATERMARK = """
OPTIONAL MATCH (c:Counter {name: $name})
RETURN coalesce(c.value, 0) AS high
"""


def next_seq(tx: ManagedTransaction) -> int:
    if _engine_next_seq is not None:
        return int(_engine_next_seq(tx))
    return int(tx.run(NEXT_SEQ, name=COUNTER).single(strict=True)["seq"])
