"""The alert change number, owned by the rule engine (`queries.alerts`).

Every write to an Alert takes the next value of the `(:Counter {name: 'alert_seq'})` node
inside its own transaction (`next_seq`). The counter's write lock is held until commit, so
writers commit in seq order, and every seq up to the counter's committed value is visible:
a reader that caps its page at that value never sees seq n+1 before seq n.
"""

from __future__ import annotations

from queries.alerts import COUNTER, next_seq

WATERMARK = """
OPTIONAL MATCH (c:Counter {name: $name})
RETURN coalesce(c.value, 0) AS high
"""

__all__ = ["COUNTER", "WATERMARK", "next_seq"]
