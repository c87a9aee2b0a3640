"""The alert change number, owned by the rule engine (`queries.alerts`).

Every write to an Alert takes the next value of the `(:Counter {name: 'alert_seq'})` node
inside its own transaction (`next_seq`). The counter's write lock is held until commit, so
writers commit in seq order. After committing, a writer publishes (`publish_seq`), and
readers cap their pages at the published value: everything up to it is committed and fully
visible, so a reader never sees seq n+1 before seq n (why `value` alone is not enough is in
`queries.alerts`).
"""

from __future__ import annotations

from provgraph.queries.alerts import COUNTER, next_seq, publish_seq

WATERMARK = """
OPTIONAL MATCH (c:Counter {name: $name})
RETURN coalesce(c.published, 0) AS high
"""

__all__ = ["COUNTER", "WATERMARK", "next_seq", "publish_seq"]
