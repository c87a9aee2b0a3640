"""One account, one node: account references resolved to SIDs across records and runs.

Records name accounts differently: Security, Defender and PowerShell give the SID (with or
without the name), Sysmon only `DOMAIN\\name`, ECS `user.id` and/or `user.domain` +
`user.name`. An Account node is keyed by its lower-case SID when any record gave one, else
by its `name_key` (lower-case `domain\\name`, a DNS domain cut to its first label, so
"THESHIRE.LOCAL\\pgustavo" and "THESHIRE\\pgustavo" are one name). The well-known local
accounts (SYSTEM, LOCAL SERVICE, NETWORK SERVICE) are resolved by the parsers from their
fixed names (`ingest.model.WELL_KNOWN_SIDS`).

Like the process resolver (graph.identity), `AccountResolver` runs on every folded batch, in
order, for one run:

- a record giving both SID and name teaches the run "name_key -> SID" (the first SID wins
  should two records disagree; a well-known SID never claims a name but its own);
- a reference by name alone is rewritten to the SID the run knows, or the committed graph
  knows (one read per batch for the names the run has not met: `name_key` is indexed);
- an account already written under its name (this run, or in the graph) when its SID becomes
  known is linked once (LINK_ACCOUNTS): renamed to the SID key (the name stays in
  `names`, whichever record came first) when no SID node exists, else its edges move onto
  the SID node and it goes.

So the final graph is the same whichever record comes first. Two names for one SID are both
in `names`; a name is never split between two SIDs.
"""

from __future__ import annotations

from typing import Any

from provgraph.graph.tx import Graph
from provgraph.graph.writer import STATEMENTS, Folded, merge_timed
from provgraph.ingest.model import WELL_KNOWN_SIDS

# For names this run has not met: the SID account that holds the name, and whether a node
# keyed by the name itself exists (to be linked).
LOOKUP_NAMES = """
UNWIND $names AS k
OPTIONAL MATCH (a:Account {name_key: k}) WHERE a.sid IS NOT NULL
WITH k, min(a.key) AS sid
OPTIONAL MATCH (n:Account {key: k})
RETURN k AS name_key, sid, n IS NOT NULL AS named
"""


class AccountResolver:
    """Resolves the account keys of folded batches, in order, for one run."""

    def __init__(self, graph: Graph | None) -> None:
        self.graph = graph
        self._sid_of: dict[str, str] = {}  # name_key -> SID key
        self._named: set[str] = set()  # name keys that are (or will be) a node of their own
        self._linked: set[str] = set()  # name keys already linked to their SID this run
        self._asked: set[str] = set()

    def resolve(self, folded: Folded) -> Folded:
        rows = folded.rows("accounts")
        if not rows:
            return folded
        batch_sids: dict[str, str] = {}
        for row in rows:
            sid, name_key = row["sid"], row["name_key"]
            if sid and name_key and sid not in WELL_KNOWN_SIDS:
                for name in row["names"]:
                    batch_sids.setdefault(name, sid)
        unknown = sorted({r["name_key"] for r in rows if r["name_key"]} - self._asked)
        if unknown and self.graph is not None:
            self._asked |= set(unknown)
            for found in self.graph.read(LOOKUP_NAMES, {"names": unknown}):
                if found["sid"] is not None:
                    self._sid_of.setdefault(found["name_key"], found["sid"])
                if found["named"]:
                    self._named.add(found["name_key"])
        for name, sid in sorted(batch_sids.items()):
            self._sid_of.setdefault(name, sid)
        links = []
        for row in rows:
            if row["sid"] is None and row["name_key"] and row["name_key"] not in self._sid_of:
                self._named.add(row["name_key"])  # written under its name
        for name in sorted(self._named - self._linked):
            sid = self._sid_of.get(name)
            if sid is not None:
                links.append({"name_key": name, "sid": sid})
                self._linked.add(name)
        return _rewrite(folded, self._sid_of, links)

    def key(self, key: str) -> str:
        """The key an account reference resolves to (a name with a known SID: the SID)."""
        return key if key.startswith("s-") else self._sid_of.get(key, key)


def _rewrite(folded: Folded, sid_of: dict[str, str], links: list[dict[str, Any]]) -> Folded:
    def one(key: str) -> str:
        return key if key.startswith("s-") else sid_of.get(key, key)

    statements: list[tuple[str, list[dict[str, Any]]]] = []
    for name, rows in folded.statements:
        fields = STATEMENTS[name].account_fields
        if name == "accounts":
            if links:
                statements.append(("account_links", links))
            rows = _accounts(rows, one)
        elif fields and any(one(row[f]) != row[f] for row in rows for f in fields):
            rows = _merge_rows(
                [{**row, **{f: one(row[f]) for f in fields}} for row in rows],
            )
        statements.append((name, rows))
    return Folded(statements, folded.hosts, folded.events, folded.first, folded.last, folded.origin)


def _accounts(rows: list[dict[str, Any]], one: Any) -> list[dict[str, Any]]:
    """One row per resolved key: a name-only row folds into its SID's."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = one(row["key"])
        current = out.get(key)
        if current is None:
            out[key] = {
                **row,
                "key": key,
                "sid": row["sid"] or (key if key != row["key"] else None),
            }
            continue
        for k in ("sid", "domain", "name", "name_key"):
            current[k] = current[k] or row[k]
        current["names"] = current["names"] + [n for n in row["names"] if n not in current["names"]]
    return [out[k] for k in sorted(out)]


def _merge_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Edge rows that now share (uid, target): timed ones merge their times and lists,
    untimed ones keep the earliest."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["uid"], row["target"])
        current = out.get(key)
        if current is None:
            out[key] = row
        elif "times" in row:
            out[key] = merge_timed(current, row)
        elif row["time"] < current["time"]:
            out[key] = row
    return [out[k] for k in sorted(out)]
