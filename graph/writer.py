"""Normalised events become nodes and edges: batched UNWIND … MERGE, one transaction a batch.

A batch is first folded in Python (one row per node key, one row per edge, times merged),
then its process references are resolved to one key per real process (`graph.identity`,
which rewrites the rows), then written nodes before edges, each statement's rows sorted by
key so concurrent writers take locks in the same order. Re-ingesting the same events changes
nothing: every node and edge is MERGEd on its key and edge time lists only take times they do
not already hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from neo4j import ManagedTransaction, Transaction
from provgraph.core.times import EPOCH
from provgraph.graph.model import IMAGE_PROPS, PROCESS_PROPS
from provgraph.graph.schema import MAX_SOURCES, MAX_TIMES
from provgraph.graph.tx import Graph
from provgraph.ingest.model import (
    WELL_KNOWN_LOGONS,
    AccountRef,
    Event,
    FileOp,
    ImageFacts,
    Kind,
    ProcessRef,
    WmiKind,
    account_ref,
    classify_ip,
    is_pid_only,
    platform_of,
    split_user,
)

BATCH_SIZE = 5000  # events per batch: one transaction, the default everywhere
RAW_LIMIT = 4096  # bytes of raw record kept on an edge as evidence
MICROSECOND = timedelta(microseconds=1)
# A batch's statements by name (see STATEMENTS), so a folded batch pickles small.
Statements = list[tuple[str, list[dict[str, Any]]]]


def micros(value: datetime | None) -> int | None:
    """Exact integer microseconds since the epoch (float timestamps can be off by one)."""
    return None if value is None else (value - EPOCH) // MICROSECOND


# -- statements (constant text; every value is a parameter) ------------------------------------
# Times travel as integer microseconds since the epoch and become DateTime on the server:
# the driver converts Python datetimes one by one in Python, which profiling showed to be the
# largest single cost of a batch (a WROTE row carries a list of them).
def _dt(expr: str) -> str:
    return (
        f"CASE WHEN {expr} IS NULL THEN null ELSE datetime({{epochSeconds: {expr} / 1000000, "
        f"nanosecond: {expr} % 1000000 * 1000}}) END"
    )


def _rows(scalars: tuple[str, ...] = (), lists: tuple[str, ...] = ()) -> str:
    """`UNWIND $rows AS row`, with the named time fields turned back into DateTime."""
    fields = [f"{f}: {_dt('wire.' + f)}" for f in scalars]
    fields += [f"{f}: [x IN wire.{f} | {_dt('x')}]" for f in lists]
    return "UNWIND $rows AS wire\nWITH wire {.*, " + ", ".join(fields) + "} AS row\n"


def _sorted_union(a: str, b: str) -> str:
    """Cypher: the distinct elements of lists a and b, sorted (Community has no APOC)."""
    return f"COLLECT {{ UNWIND {a} + {b} AS x WITH DISTINCT x RETURN x ORDER BY x }}"


# In the loader, a batch only creates the hosts it names; their first/last-seen times are
# written apart with MERGE_HOSTS_SEEN (see graph.loader). Every batch names the same few
# hosts, and a SET on them would make each batch wait for the previous one's commit, which
# the loader overlaps with the next batch. A single transaction (loader.write_batch) does both.
MERGE_HOSTS = (
    _rows(("first", "last"))
    + """
MERGE (h:Host {name: row.name})
ON CREATE SET h.fqdn = row.fqdn, h.os = row.os, h.first_seen = row.first, h.last_seen = row.last
"""
)

MERGE_HOSTS_SEEN = (
    MERGE_HOSTS
    + """\
ON MATCH SET h.fqdn = coalesce(h.fqdn, row.fqdn), h.os = coalesce(h.os, row.os),
             h.first_seen = CASE WHEN row.first < h.first_seen THEN row.first ELSE h.first_seen END,
             h.last_seen = CASE WHEN row.last > h.last_seen THEN row.last ELSE h.last_seen END
"""
)

# A process written under one key that a better one now names (graph.identity): the node
# takes the new key and keeps the old one among its aliases; its children's parent_uid
# follows. MERGE, not MATCH: a node an earlier batch created may not be committed yet, and
# MERGE waits for it (the key constraint) where MATCH would not see it. The resolver only
# renames to a key no node holds; should one appear meanwhile (another writer), the rename
# is skipped rather than failing the batch.
REKEY_PROCESSES = """
UNWIND $rows AS row
OPTIONAL MATCH (taken:Process {uid: row.new})
WITH row, taken IS NOT NULL AS taken
WHERE NOT taken
MERGE (p:Process {uid: row.old})
ON CREATE SET p.host = row.host, p.placeholder = true, p.sources = [], p.created_now = true
SET p._lock = true  // read the aliases under the write lock (see MERGE_PROCESSES)
SET p.uid = row.new, p.guid = coalesce(row.guid, p.guid),
    p.aliases = CASE WHEN row.alias = [] THEN p.aliases
                ELSE COLLECT { UNWIND coalesce(p.aliases, []) + row.alias AS x
                               WITH DISTINCT x RETURN x ORDER BY x } END
REMOVE p._lock
WITH p, row
CALL (p, row) {
  MATCH (p)-[:SPAWNED]->(child:Process)
  SET child.parent_uid = row.new
}
WITH p, row WHERE p.created_now
REMOVE p.created_now
WITH p, row
MATCH (h:Host {name: row.host})
CREATE (p)-[:ON_HOST]->(h)
"""

_FILL = ",\n      ".join(
    f"p.{k} = coalesce(p.{k}, row.props.{k}, row.fill.{k})" for k in PROCESS_PROPS
)
_NEW_FILL = "\n                        ".join(
    f"OR (p.{k} IS NULL AND row.fill.{k} IS NOT NULL)" for k in PROCESS_PROPS
)

# Rows come resolved (graph.identity): `props` are what start records say, `fill` what other
# records say. A start record whose own key is the node's key (`primary`) is authoritative;
# another start record is, while the node has no start record yet; everything else only
# fills what is missing. That makes the final node the same whatever order the records come
# in. The earliest end wins. A placeholder keeps, besides its end, the earliest record that
# named it (named_by, named_at in microseconds); a start record replaces that: a process's
# sources are the records that describe it. (`created_now` is a marker that lives only inside
# this statement; the one-element FOREACH lists bind names, as FOREACH allows no WITH.)
_NAMED_EARLIER = (
    "(p.placeholder AND NOT row.full AND row.named IS NOT NULL "
    "AND (p.named_by IS NULL OR row.named_at < p.named_at))"
)
_KEPT = (
    "[s IN p.sources WHERE p.named_by IS NULL OR s <> p.named_by "
    f"OR NOT (row.full OR {_NAMED_EARLIER})]"
)
# facts_before: every timed fact of the process (an edge from it) is before this time, its
# latest rounded up to the next hour, so a process running for hours is written again once an
# hour of its activity, not in every batch (each write locks it until commit). The timeline
# reads the processes that can have facts in a window by it (queries.provenance); a process
# that never ends (no Linux source records an end) is alive there only up to its facts.
_LATER_FACTS = (
    "(facts_before IS NOT NULL AND (p.facts_before IS NULL OR facts_before > p.facts_before))"
)
FACTS_BEFORE_STEP = timedelta(hours=1)
MERGE_PROCESSES = (
    """
UNWIND $rows AS row
WITH row, %(start)s AS start, %(end)s AS end, %(first_seen)s AS first_seen,
     %(facts_before)s AS facts_before, coalesce(row.aliases, []) AS aliases,
     coalesce(row.primary, row.full) AS primary,
     CASE WHEN row.uid STARTS WITH 'g:' THEN substring(row.uid, 2) END AS guid
MERGE (p:Process {uid: row.uid})
ON CREATE SET p += row.fill, p += row.props, p.host = row.host, p.placeholder = NOT row.full,
              p.start_time = start, p.end_time = end, p.facts_before = facts_before,
              p.first_seen = CASE WHEN row.full THEN null ELSE first_seen END,
              p.ppid = row.ppid, p.aliases = CASE WHEN aliases = [] THEN null ELSE aliases END,
              p.guid = guid, p.created_now = true,
              p.sources = row.sources + CASE WHEN row.full OR row.named IS NULL THEN []
                                        ELSE [row.named] END,
              p.named_by = CASE WHEN row.full THEN null ELSE row.named END,
              p.named_at = CASE WHEN row.full THEN null ELSE row.named_at END
// An existing process is only touched when the row can tell it something new: most rows
// come from the file and network events of a process already in the graph, and a write
// would lock it until commit, stalling the next batch (see graph.loader).
FOREACH (_ IN CASE WHEN p.created_now IS NULL AND (row.full
                        OR (end IS NOT NULL AND (p.end_time IS NULL OR end < p.end_time))
                        OR %(later_facts)s
                        OR (p.start_time IS NULL AND start IS NOT NULL)
                        OR (p.placeholder AND (p.first_seen IS NULL OR first_seen < p.first_seen))
                        OR (p.ppid IS NULL AND row.ppid IS NOT NULL)
                        OR (p.guid IS NULL AND guid IS NOT NULL)
                        OR (aliases <> [] AND any(a IN aliases
                                                  WHERE NOT a IN coalesce(p.aliases, [])))
                        OR %(named_earlier)s
                        %(new_fill)s)
                   THEN [1] ELSE [] END |
  // The write lock first, so what the items below read is what they replace (read
  // committed: an overlapping batch's commit could otherwise be lost). Items run in order:
  // each reads the node as the items before it left it, so placeholder is set last.
  SET p._lock = true
  SET p += CASE WHEN primary OR (row.full AND p.placeholder) THEN row.props ELSE {} END,
      p.start_time = CASE WHEN primary OR (row.full AND p.placeholder)
                     THEN coalesce(start, p.start_time) ELSE coalesce(p.start_time, start) END,
      %(fill)s,
      p.ppid = coalesce(p.ppid, row.ppid),
      p.guid = coalesce(p.guid, guid),
      p.end_time = CASE WHEN end IS NOT NULL AND (p.end_time IS NULL OR end < p.end_time)
                   THEN end ELSE p.end_time END,
      p.facts_before = CASE WHEN %(later_facts)s THEN facts_before ELSE p.facts_before END,
      p.first_seen = CASE WHEN row.full THEN null
                     WHEN p.placeholder AND (p.first_seen IS NULL OR first_seen < p.first_seen)
                     THEN first_seen ELSE p.first_seen END,
      p.aliases = CASE WHEN aliases = [] THEN p.aliases ELSE %(aliases)s END,
      // a placeholder's earliest naming record is replaced by a start or an earlier one
      p.sources = (%(kept)s
                   + [s IN row.sources + CASE WHEN %(named_earlier)s THEN [row.named] ELSE [] END
                      WHERE NOT s IN %(kept)s])[0..$max_sources],
      p += CASE WHEN row.full THEN {named_by: null, named_at: null}
           WHEN %(named_earlier)s THEN {named_by: row.named, named_at: row.named_at}
           ELSE {} END,
      p.placeholder = p.placeholder AND NOT row.full
  REMOVE p._lock)
// Only a process created just now needs its host edge (a process never changes host).
WITH p, row WHERE p.created_now
REMOVE p.created_now
WITH p, row
MATCH (h:Host {name: row.host})
CREATE (p)-[:ON_HOST]->(h)
""".replace("%(start)s", _dt("row.start"))
    .replace("%(end)s", _dt("row.end"))
    .replace("%(first_seen)s", _dt("row.first_seen"))
    .replace("%(facts_before)s", _dt("row.facts_before"))
    .replace("%(later_facts)s", _LATER_FACTS)
    .replace("%(new_fill)s", _NEW_FILL)
    .replace("%(fill)s", _FILL)
    .replace("%(aliases)s", _sorted_union("coalesce(p.aliases, [])", "aliases"))
    .replace("%(kept)s", _KEPT)
    .replace("%(named_earlier)s", _NAMED_EARLIER)
)

_FACTS_FILL = ",\n    ".join(f"f.{k} = coalesce(f.{k}, row.facts.{k})" for k in IMAGE_PROPS)

# PE facts: a record that disagrees with the node (the binary at that path changed) replaces
# them when it is newer than the facts, and only fills what is missing when it is older.
# facts_time is the earliest time the facts in place were reported, so a record that agrees
# writes nothing unless it is earlier still (every start of a common binary names the same
# file, and a write would lock it until commit, stalling the next batch).
MERGE_FILES = """
UNWIND $rows AS row
MERGE (f:File {key: row.key})
ON CREATE SET f.host = row.host, f.path = row.path, f.name = row.name, f.ext = row.ext,
              f += row.facts, f.facts_time = %(seen)s
WITH f, row
WHERE row.facts_time IS NOT NULL
  AND any(k IN keys(row.facts) WHERE f[k] IS NULL OR f[k] <> row.facts[k]
          OR f.facts_time IS NULL OR %(seen)s < f.facts_time)
SET f._lock = true  // read what is replaced under the write lock (see MERGE_PROCESSES)
WITH f, row, %(seen)s AS seen,
     any(k IN keys(row.facts) WHERE f[k] IS NOT NULL AND f[k] <> row.facts[k]) AS differ
WITH f, row, seen, differ, differ AND (f.facts_time IS NULL OR seen > f.facts_time) AS replace
SET f += CASE WHEN replace THEN row.facts ELSE {} END,
    %(fill)s,
    f.facts_time = CASE WHEN replace OR f.facts_time IS NULL
                        OR (NOT differ AND seen < f.facts_time)
                   THEN seen ELSE f.facts_time END
WITH f REMOVE f._lock
""".replace("%(fill)s", _FACTS_FILL).replace("%(seen)s", _dt("row.facts_time"))

MERGE_CONNECTIONS = """
UNWIND $rows AS row
MERGE (c:Connection {key: row.key})
ON CREATE SET c.ip = row.ip, c.port = row.port, c.protocol = row.protocol,
              c.hostname = row.hostname, c.is_public = row.is_public,
              c.is_loopback = row.is_loopback
ON MATCH SET c.hostname = coalesce(c.hostname, row.hostname)
"""

MERGE_DOMAINS = """
UNWIND $rows AS row
MERGE (:Domain {name: row.name})
"""

# Two records of one spawn (Sysmon 1 and Security 4688) resolve to one edge; the earliest
# time wins, with its record, whichever came first.
MERGE_SPAWNED = (
    _rows(("time",))
    + """
MATCH (parent:Process {uid: row.parent}), (child:Process {uid: row.child})
MERGE (parent)-[r:SPAWNED]->(child)
ON CREATE SET r.time = row.time, r.source = row.source, r.raw = row.raw
ON MATCH SET r.source = CASE WHEN row.time < r.time THEN row.source ELSE r.source END,
             r.raw = CASE WHEN row.time < r.time THEN row.raw ELSE r.raw END,
             r.time = CASE WHEN row.time < r.time THEN row.time ELSE r.time END
SET child.parent_uid = row.parent
"""
)

# Like SPAWNED: the earliest start record's time, whichever came first.
MERGE_EXECUTED = (
    _rows(("time",))
    + """
MATCH (p:Process {uid: row.uid}), (f:File {key: row.file})
MERGE (p)-[r:EXECUTED]->(f)
ON CREATE SET r.time = row.time
ON MATCH SET r.time = CASE WHEN row.time < r.time THEN row.time ELSE r.time END
"""
)

# Timed edges: one edge per (process, target) holding its recent distinct times and the hours
# of the older ones (see graph.schema), so window rules can test exact times while the graph
# stays one hop per relationship. A row's times come sorted and never empty, so its first and
# last are times[0] and times[-1]. Times newer than everything on the edge (in-order ingest)
# are appended; others are merged in order (an insertion: subquery expressions, which could
# sort, are not allowed inside MERGE). Once the list is full, the hours of every time are kept
# too (those of the list itself when it first overflows, then each batch's); SET items run in
# order, so hours and count read `times` before it changes. A time older than a full list's
# oldest is taken as counted already (graph.schema).
_INSERT = (
    "reduce(acc = %(into)s, x IN %(new)s | CASE WHEN x IN acc THEN acc "
    "ELSE [y IN acc WHERE y < x] + [x] + [y IN acc WHERE y > x] END)"
)
# the distinct hours of a sorted list of times, in order
_HOURS_OF = (
    "reduce(hs = [], ts IN %(times)s | CASE WHEN hs <> [] "
    "AND hs[-1] = datetime.truncate('hour', ts) THEN hs "
    "ELSE hs + datetime.truncate('hour', ts) END)"
)
_MERGED = (
    "CASE WHEN times[0] > r.times[-1] THEN r.times + times "
    "WHEN all(x IN times WHERE x IN r.times) THEN r.times "
    "ELSE " + _INSERT % {"into": "r.times", "new": "times"} + " END"
)
_TIMED_EDGE = (
    """
UNWIND $rows AS row
WITH row, [x IN row.times |
           datetime({epochSeconds: x / 1000000, nanosecond: x %% 1000000 * 1000})] AS times
MATCH (p:%(start)s {%(start_key)s: row.uid}), (t:%(label)s {%(key)s: row.target})
MERGE (p)-[r:%(rel)s]->(t)
ON CREATE SET r.times = times[-$max_times..], r.count = size(times),
              r.hours = CASE WHEN size(times) > $max_times THEN %(hours_of_times)s END,
              r.first_time = times[0], r.last_time = times[-1], r.sources = row.sources,
              r.raw = row.raw %(create_extra)s
ON MATCH SET r.hours = CASE WHEN size(r.times) + size(times) <= $max_times
                            OR all(x IN times WHERE x IN r.times) THEN r.hours
                       ELSE %(hours_insert)s END,
             r.count = r.count + CASE WHEN times[0] > r.times[-1] THEN size(times)
                       ELSE size([t IN times WHERE NOT t IN r.times
                                  AND (size(r.times) < $max_times OR t > r.times[0])]) END,
             r.times = (%(merged)s)[-$max_times..],
             r.first_time = CASE WHEN times[0] < r.first_time THEN times[0] ELSE r.first_time END,
             r.last_time = CASE WHEN times[-1] > r.last_time THEN times[-1] ELSE r.last_time END,
             r.sources = CASE WHEN size(r.sources) >= $max_sources THEN r.sources
                         ELSE r.sources + [s IN row.sources WHERE NOT s IN r.sources] END
             %(match_extra)s
""".replace("%(hours_of_times)s", _HOURS_OF % {"times": "times"})
    .replace(
        "%(hours_insert)s",
        _INSERT
        % {
            "into": "coalesce(r.hours, " + _HOURS_OF % {"times": "r.times"} + ")",
            "new": _HOURS_OF % {"times": "times"},
        },
    )
    .replace("%(merged)s", _MERGED)
)


def _timed(
    label: str,
    key: str,
    rel: str,
    create_extra: str,
    match_extra: str,
    start: str = "Process",
    start_key: str = "uid",
) -> str:
    """A timed edge's MERGE: from a process (`row.uid`) unless `start` names another label
    (a Host's driver loads, a WMI binding, an account), to the `label` node keyed `row.target`."""
    return _TIMED_EDGE % {
        "start": start,
        "start_key": start_key,
        "label": label,
        "key": key,
        "rel": rel,
        "create_extra": create_extra,
        "match_extra": match_extra,
    }


# -- k1: what a process does to the system ----------------------------------------------------
# Union lists on timed edges (op, access and value lists): the row's new values are appended,
# each list capped at LIST_CAP values (a value list is evidence, not a log: `raw` and the
# times are). Values longer than VALUE_LIMIT characters (registry data, call traces) are cut
# in Python with a trailing "…".
LIST_CAP = 16
VALUE_LIMIT = 1024


def _union_lists(*props: str) -> tuple[str, str, str, str]:
    """(create, match, move-create, move) extras for union-list edge properties."""
    create = "".join(f", r.{p} = row.{p}[0..{LIST_CAP}]" for p in props)
    # coalesce: an edge written before a list property existed (WROTE.contents) gains it
    match = "".join(
        f", r.{p} = CASE WHEN size(coalesce(r.{p}, [])) >= {LIST_CAP} THEN r.{p} "
        f"ELSE (coalesce(r.{p}, []) + [x IN row.{p} WHERE NOT x IN coalesce(r.{p}, [])])"
        f"[0..{LIST_CAP}] END"
        for p in props
    )
    move_create = "".join(f", r.{p} = []" for p in props)
    move = "".join(
        f", r.{p} = (coalesce(r.{p}, []) + [x IN coalesce(old.{p}, [])"
        f" WHERE NOT x IN coalesce(r.{p}, [])])[0..{LIST_CAP}]"
        for p in props
    )
    return create, match, move_create, move


# WROTE's stream contents (Sysmon 15) are a union list like the k1 edges' value lists
_WROTE_CONTENTS = _union_lists("contents")
MERGE_WROTE = _timed(
    "File",
    "key",
    "WROTE",
    ", r.ops = row.ops, r.access_masks = row.masks" + _WROTE_CONTENTS[0],
    ", r.ops = r.ops + [o IN row.ops WHERE NOT o IN r.ops],"
    " r.access_masks = r.access_masks + [m IN row.masks WHERE NOT m IN r.access_masks]"
    + _WROTE_CONTENTS[1],
)
MERGE_CONNECTED = _timed(
    "Connection",
    "key",
    "CONNECTED_TO",
    ", r.local_port = row.local_port",
    ", r.local_port = coalesce(r.local_port, row.local_port)",
)
MERGE_ACCEPTED = _timed(
    "Connection",
    "key",
    "ACCEPTED",
    ", r.local_ports = row.local_ports",
    ", r.local_ports = r.local_ports + [x IN row.local_ports WHERE NOT x IN r.local_ports]",
)
MERGE_RESOLVED = _timed(
    "Domain",
    "name",
    "RESOLVED",
    ", r.answers = row.answers",
    ", r.answers = r.answers + [a IN row.answers WHERE NOT a IN r.answers]",
)


# -- accounts, logons and Windows system changes (graph v2, part 2) ----------------------------
# Accounts are keyed by SID or by name (graph.accounts resolves names to SIDs and links an
# account first known by name to its SID before these run: LINK_ACCOUNTS).
MERGE_ACCOUNTS = """
UNWIND $rows AS row
MERGE (a:Account {key: row.key})
ON CREATE SET a.sid = row.sid, a.domain = row.domain, a.name = row.name,
              a.name_key = row.name_key, a.names = row.names, a.created_now = true
WITH a, row, a.created_now IS NOT NULL AS created
REMOVE a.created_now
WITH a, row
WHERE NOT created
  AND ((row.sid IS NOT NULL AND a.sid IS NULL) OR (row.name IS NOT NULL AND a.name IS NULL)
       OR any(n IN row.names WHERE NOT n IN coalesce(a.names, [])))
SET a._lock = true  // read what is replaced under the write lock (see MERGE_PROCESSES)
SET a.sid = coalesce(a.sid, row.sid), a.domain = coalesce(a.domain, row.domain),
    a.name = coalesce(a.name, row.name), a.name_key = coalesce(a.name_key, row.name_key),
    a.names = (coalesce(a.names, []) + [n IN row.names WHERE NOT n IN coalesce(a.names, [])])
              [0..$max_sources]
REMOVE a._lock
"""


def _move_account_edge(rel: str, outgoing: bool, timed: bool, lists: tuple[str, ...]) -> str:
    """Cypher moving `rel` edges of the name-keyed account `n` onto the SID account `s`."""
    old_pat = f"(n)-[old:{rel}]->(t)" if outgoing else f"(n)<-[old:{rel}]-(t)"
    new_pat = f"(s)-[r:{rel}]->(t)" if outgoing else f"(s)<-[r:{rel}]-(t)"
    if timed:
        merged = ",\n      ".join(
            [
                "r.hours = CASE WHEN r.hours IS NULL AND old.hours IS NULL THEN null ELSE "
                + _sorted_union("coalesce(r.hours, [])", "coalesce(old.hours, [])")
                + " END",
                "r.count = r.count + old.count - size([x IN old.times WHERE x IN r.times])",
                "r.times = " + _sorted_union("r.times", "old.times") + "[-$max_times..]",
                "r.first_time = CASE WHEN old.first_time < r.first_time THEN old.first_time "
                "ELSE r.first_time END",
                "r.last_time = CASE WHEN old.last_time > r.last_time THEN old.last_time "
                "ELSE r.last_time END",
                "r.sources = (r.sources + [x IN old.sources WHERE NOT x IN r.sources])"
                "[0..$max_sources]",
                *(
                    f"r.{k} = coalesce(r.{k}, []) + "
                    f"[x IN coalesce(old.{k}, []) WHERE NOT x IN coalesce(r.{k}, [])]"
                    for k in lists
                ),
            ]
        )
    else:
        merged = (
            "r.source = CASE WHEN old.time < r.time THEN old.source ELSE r.source END,\n"
            "      r.time = CASE WHEN old.time < r.time THEN old.time ELSE r.time END"
        )
    return f"""
CALL (n, s) {{
  MATCH {old_pat}
  MERGE {new_pat}
  ON CREATE SET r = properties(old), r.moved_now = true
  WITH old, r
  FOREACH (_ IN CASE WHEN r.moved_now IS NULL THEN [1] ELSE [] END |
    SET {merged})
  REMOVE r.moved_now
  DELETE old
}}"""


# The account edges (graph.model), for moving them: (type, outgoing, timed, list props)
ACCOUNT_EDGES = (
    ("RAN_AS", False, False, ()),
    ("LOGGED_ON", True, False, ()),
    (
        "FAILED_LOGON",
        True,
        True,
        ("statuses", "sub_statuses", "failure_reasons", "logon_types", "source_ips"),
    ),
    (
        "USED_CREDENTIALS",
        False,
        True,
        ("target_servers", "target_infos", "subject_names", "source_ips"),
    ),
    ("ACCESSED_SHARE", True, True, ("access_masks", "relative_targets", "source_ips")),
    ("INSTALLED_SERVICE", True, True, ("image_paths",)),
    ("CHANGED_TASK", True, True, ("ops",)),
)

# An account known by name (key = name_key) learns its SID: renamed to it when no SID node
# exists, else its edges move onto the SID node and it goes (graph.accounts). MERGE, not
# MATCH, on the name node: an earlier batch of the run may not have committed it yet.
LINK_ACCOUNTS = (
    """
UNWIND $rows AS row
MERGE (n:Account {key: row.name_key})
ON CREATE SET n.name_key = row.name_key
WITH n, row
OPTIONAL MATCH (s:Account {key: row.sid})
SET n._lock = true
WITH n, s, row
CALL (n, s, row) {
  WITH n, s, row WHERE s IS NULL
  SET n.key = row.sid, n.sid = row.sid,
      n.names = coalesce(n.names, []) + [x IN [row.name_key] WHERE NOT x IN coalesce(n.names, [])]
  REMOVE n._lock
}
CALL (n, s, row) {
  WITH n, s, row WHERE s IS NOT NULL
  SET s._lock = true
  WITH n, s, row"""
    + "".join(_move_account_edge(*spec) for spec in ACCOUNT_EDGES)
    + """
  SET s.names = coalesce(s.names, []) + [x IN coalesce(n.names, []) + [row.name_key]
                                          WHERE NOT x IN coalesce(s.names, [])],
      s.name_key = coalesce(s.name_key, n.name_key), s.name = coalesce(s.name, n.name),
      s.domain = coalesce(s.domain, n.domain)
  REMOVE s._lock
  DETACH DELETE n
}
"""
)

LOGON_PROPS = (
    "logon_type",
    "source_ip",
    "source_port",
    "workstation",
    "auth_package",
    "logon_process",
    "logon_guid",
    # 4624's facts of the request (Sigma's ProcessName, KeyLength, ImpersonationLevel,
    # TargetOutboundUserName, SubjectUserSid)
    "process_name",
    "key_length",
    "impersonation_level",
    "outbound_user",
    "subject_sid",
)
_LOGON_FILL = ",\n      ".join(f"l.{k} = coalesce(l.{k}, row.props.{k})" for k in LOGON_PROPS)

# A logon from its own records (4624, 4634, 4672, DeviceLogonEvents…: `described`), or only
# mentioned by a process or an access in it, which writes nothing on an existing node.
MERGE_LOGONS = (
    _rows(("start", "end"))
    + """
MERGE (l:Logon {key: row.key})
ON CREATE SET l.host = row.host, l.logon_id = row.logon_id, l += row.props,
              l.start_time = row.start, l.end_time = row.end, l.elevated = row.elevated,
              l.privileges = row.privileges, l.sources = row.sources, l.created_now = true
FOREACH (_ IN CASE WHEN l.created_now IS NULL AND row.described THEN [1] ELSE [] END |
  SET l._lock = true
  SET %(fill)s,
      l.start_time = CASE WHEN row.start IS NOT NULL
                          AND (l.start_time IS NULL OR row.start < l.start_time)
                     THEN row.start ELSE l.start_time END,
      l.end_time = CASE WHEN row.end IS NOT NULL AND (l.end_time IS NULL OR row.end < l.end_time)
                   THEN row.end ELSE l.end_time END,
      l.elevated = CASE WHEN row.elevated THEN true ELSE coalesce(l.elevated, row.elevated) END,
      l.privileges = coalesce(l.privileges, []) +
                     [p IN row.privileges WHERE NOT p IN coalesce(l.privileges, [])],
      l.sources = CASE WHEN size(l.sources) >= $max_sources THEN l.sources
                  ELSE l.sources + [s IN row.sources WHERE NOT s IN l.sources] END
  REMOVE l._lock)
WITH l, row WHERE l.created_now
REMOVE l.created_now
WITH l, row
MATCH (h:Host {name: row.host})
CREATE (l)-[:ON_HOST]->(h)
""".replace("%(fill)s", _LOGON_FILL)
)


def _first_link(start: str, start_key: str, rel: str, end: str, raw: bool = False) -> str:
    """An untimed edge whose earliest record wins (like SPAWNED), rows {uid, target, time,
    source[, raw]}."""
    keep = "r.source = row.source" + (", r.raw = row.raw" if raw else "")
    pick = (
        "r.source = CASE WHEN row.time < r.time THEN row.source ELSE r.source END,\n"
        + ("    r.raw = CASE WHEN row.time < r.time THEN row.raw ELSE r.raw END,\n" if raw else "")
        + "    r.time = CASE WHEN row.time < r.time THEN row.time ELSE r.time END"
    )
    return (
        _rows(("time",))
        + f"""
MATCH (a:{start} {{{start_key}: row.uid}}), (b:{end} {{key: row.target}})
MERGE (a)-[r:{rel}]->(b)
ON CREATE SET r.time = row.time, {keep}
ON MATCH SET {pick}
"""
    )


MERGE_RAN_AS = _first_link("Process", "uid", "RAN_AS", "Account")
MERGE_IN_LOGON = _first_link("Process", "uid", "IN_LOGON", "Logon")
MERGE_LOGGED_ON = _first_link("Account", "key", "LOGGED_ON", "Logon", raw=True)


def _union(*names: str) -> tuple[str, str]:
    """create / match extras of a timed edge for union-list props (row field = edge prop)."""
    create = "".join(f", r.{n} = row.{n}" for n in names)
    # coalesce: an edge written before a list prop existed (failure_reasons) gains it
    match = "".join(
        f", r.{n} = coalesce(r.{n}, []) + [x IN row.{n} WHERE NOT x IN coalesce(r.{n}, [])]"
        for n in names
    )
    return create, match


_FAILED = ("statuses", "sub_statuses", "failure_reasons", "logon_types", "source_ips")
_CREDS = ("target_servers", "target_infos", "subject_names", "source_ips")
_SHARE = ("access_masks", "relative_targets", "source_ips")
MERGE_FAILED_LOGON = _timed("Host", "name", "FAILED_LOGON", *_union(*_FAILED), "Account", "key")
MERGE_USED_CREDENTIALS = _timed("Account", "key", "USED_CREDENTIALS", *_union(*_CREDS))

MERGE_SHARES = """
UNWIND $rows AS row
MERGE (s:Share {key: row.key})
ON CREATE SET s.host = row.host, s.share_name = row.share_name, s.share_path = row.share_path
ON MATCH SET s.share_path = coalesce(s.share_path, row.share_path)
"""

MERGE_SERVICES = (
    _rows(("installed_time",))
    + """
MERGE (s:Service {key: row.key})
ON CREATE SET s.host = row.host, s.service_name = row.service_name, s += row.props,
              s.installed_time = row.installed_time
ON MATCH SET s.image_path = coalesce(s.image_path, row.props.image_path),
             s.service_type = coalesce(s.service_type, row.props.service_type),
             s.start_type = coalesce(s.start_type, row.props.start_type),
             s.service_account = coalesce(s.service_account, row.props.service_account),
             s.installed_time = CASE WHEN row.installed_time < s.installed_time
                                THEN row.installed_time ELSE s.installed_time END
"""
)

MERGE_RUNS = (
    _rows(("time",))
    + """
MATCH (s:Service {key: row.uid}), (f:File {key: row.target})
MERGE (s)-[r:RUNS]->(f)
ON CREATE SET r.time = row.time
ON MATCH SET r.time = CASE WHEN row.time < r.time THEN row.time ELSE r.time END
"""
)

# A task's content is the newest record's (an update replaces it; a delete says it last).
MERGE_TASKS = (
    _rows(("content_time",))
    + """
MERGE (t:ScheduledTask {key: row.key})
ON CREATE SET t.host = row.host, t.task_name = row.task_name, t.content = row.content,
              t.content_time = CASE WHEN row.content IS NULL THEN null ELSE row.content_time END
ON MATCH SET t.content = CASE WHEN row.content IS NOT NULL
                              AND (t.content_time IS NULL OR row.content_time > t.content_time)
                         THEN row.content ELSE t.content END,
             t.content_time = CASE WHEN row.content IS NOT NULL
                                   AND (t.content_time IS NULL OR row.content_time > t.content_time)
                              THEN row.content_time ELSE t.content_time END
"""
)

SCRIPT_TEXT_LIMIT = 1_048_576  # characters of a reassembled script block kept as `text`

# A script block's parts, whatever order or batch they come in: each part is kept once
# (part_numbers / part_texts, parallel lists), and text is the parts so far, in order.
MERGE_SCRIPTS = (
    _rows(("first_time",))
    + """
MERGE (s:ScriptBlock {key: row.key})
ON CREATE SET s.host = row.host, s.script_block_id = row.block_id, s.path = row.path,
              s.parts_total = row.total, s.part_numbers = [], s.part_texts = [],
              s.first_time = row.first_time
WITH s, row, [i IN range(0, size(row.numbers) - 1)
              WHERE NOT row.numbers[i] IN s.part_numbers] AS new
WHERE new <> [] OR row.first_time < s.first_time
SET s._lock = true
SET s.part_numbers = s.part_numbers + [i IN new | row.numbers[i]],
    s.part_texts = s.part_texts + [i IN new | row.texts[i]],
    s.path = coalesce(s.path, row.path),
    s.first_time = CASE WHEN row.first_time < s.first_time THEN row.first_time
                   ELSE s.first_time END
WITH s
SET s.parts_seen = size(s.part_numbers),
    s.complete = size(s.part_numbers) >= s.parts_total,
    s.text = left(reduce(acc = '', n IN COLLECT { UNWIND s.part_numbers AS x
                                                  RETURN x ORDER BY x } |
                         acc + s.part_texts[head([i IN range(0, size(s.part_numbers) - 1)
                                                  WHERE s.part_numbers[i] = n])]), %(limit)s)
REMOVE s._lock
""".replace("%(limit)s", str(SCRIPT_TEXT_LIMIT))
)

MERGE_RAN_SCRIPT = _timed("ScriptBlock", "key", "RAN_SCRIPT", "", "")
_ACTORS = (("logon", "Logon", "key"), ("account", "Account", "key"))
MERGE_SHARE_ACCESS = {
    who: _timed("Share", "key", "ACCESSED_SHARE", *_union(*_SHARE), label, key)
    for who, label, key in _ACTORS
}
MERGE_INSTALLED = {
    who: _timed("Service", "key", "INSTALLED_SERVICE", *_union("image_paths"), label, key)
    for who, label, key in _ACTORS
}
MERGE_CHANGED_TASK = {
    who: _timed("ScheduledTask", "key", "CHANGED_TASK", *_union("ops"), label, key)
    for who, label, key in (*_ACTORS, ("process", "Process", "uid"))
}

# name -> (rel, start label, start key, target label, target key, union-list properties)
K1_TIMED: dict[str, tuple[str, str, str, str, str, tuple[str, ...]]] = {
    "loaded": ("LOADED", "Process", "uid", "File", "key", ()),
    "loaded_driver": ("LOADED_DRIVER", "Host", "name", "File", "key", ()),
    "accessed": ("ACCESSED", "Process", "uid", "Process", "uid", ("granted_access", "call_trace")),
    "injected": (
        "INJECTED",
        "Process",
        "uid",
        "Process",
        "uid",
        ("start_address", "start_module", "start_function", "actions"),
    ),
    "read_raw": ("READ_RAW", "Process", "uid", "File", "key", ()),
    "wrote_registry": (
        "WROTE_REGISTRY",
        "Process",
        "uid",
        "RegistryKey",
        "key",
        ("ops", "event_types", "details", "new_names", "access_masks"),
    ),
    "created_pipe": ("CREATED_PIPE", "Process", "uid", "Pipe", "key", ()),
    "connected_pipe": ("CONNECTED_PIPE", "Process", "uid", "Pipe", "key", ()),
    "registered_wmi": (
        "REGISTERED_WMI",
        "Host",
        "name",
        "WmiObject",
        "key",
        ("operations", "users"),
    ),
    "bound_to": ("BOUND_TO", "WmiObject", "key", "WmiObject", "key", ("operations", "users")),
    "set_clipboard": ("SET_CLIPBOARD", "Process", "uid", "Host", "name", ("hashes",)),
    "tampered": ("TAMPERED", "Process", "uid", "File", "key", ("types",)),
}
# k1 timed statements whose start is a process (identity rewrites their `uid`), and those
# whose target is one too (it rewrites `target` as well)
K1_PROCESS_TIMED = tuple(n for n, spec in K1_TIMED.items() if spec[1] == "Process")
PROCESS_TARGETS = tuple(n for n, spec in K1_TIMED.items() if spec[3] == "Process")
K1_MERGE = {
    name: _timed(target, tkey, rel, *_union_lists(*lists)[:2], start=start, start_key=skey)
    for name, (rel, start, skey, target, tkey, lists) in K1_TIMED.items()
}

MERGE_REGISTRY_KEYS = """
UNWIND $rows AS row
MERGE (k:RegistryKey {key: row.key})
ON CREATE SET k.host = row.host, k.path = row.path, k.name = row.name
"""
MERGE_PIPES = """
UNWIND $rows AS row
MERGE (p:Pipe {key: row.key})
ON CREATE SET p.host = row.host, p.name = row.name
"""
# A filter's query or a consumer's command may change (Sysmon logs "Modified"): the newest
# record's facts win, older ones only fill what is missing.
MERGE_WMI_OBJECTS = (
    """
UNWIND $rows AS row
WITH row, %(seen)s AS seen
MERGE (w:WmiObject {key: row.key})
ON CREATE SET w.host = row.host, w.kind = row.kind, w.name = row.name, w += row.facts,
              w.facts_time = CASE WHEN row.facts = {} THEN null ELSE seen END
WITH w, row, seen WHERE row.facts <> {} AND any(k IN keys(row.facts) WHERE w[k] IS NULL
                                              OR w[k] <> row.facts[k])
SET w += CASE WHEN w.facts_time IS NULL OR seen >= w.facts_time THEN row.facts ELSE {} END,
    """
    + ",\n    ".join(
        f"w.{k} = coalesce(w.{k}, row.facts.{k})"
        for k in ("namespace", "query", "consumer_type", "destination")
    )
    + """,
    w.facts_time = CASE WHEN w.facts_time IS NULL OR seen >= w.facts_time THEN seen
                   ELSE w.facts_time END
"""
).replace("%(seen)s", _dt("row.facts_time"))

# A placeholder by host and pid written before anything told which process had that pid, now
# known to be `into` (graph.identity): its edges move to that node, merged with any it has,
# and the placeholder goes. Only such placeholders are ever absorbed: they have no parent, no
# image edge and no aliases, just children, timed edges, an end and sources.
_MOVE_TIMED = """
CALL (ph, n) {
  MATCH (ph)-[old:%(rel)s]->(t)
  MERGE (n)-[r:%(rel)s]->(t)
  ON CREATE SET r.times = [], r.count = 0, r.sources = [], r.raw = old.raw
                %(create_extra)s
  WITH old, r
  SET r.hours = %(hours_union)s,
      r.count = r.count + old.count - size([x IN old.times WHERE x IN r.times]),
      r.times = %(times_union)s[-$max_times..],
      r.first_time = CASE WHEN r.first_time IS NULL OR old.first_time < r.first_time
                     THEN old.first_time ELSE r.first_time END,
      r.last_time = CASE WHEN r.last_time IS NULL OR old.last_time > r.last_time
                    THEN old.last_time ELSE r.last_time END,
      r.sources = (r.sources + [s IN old.sources WHERE NOT s IN r.sources])[0..$max_sources]
      %(move_extra)s
  DELETE old
}
"""
_MOVE_EXTRA = {
    "WROTE": (
        ", r.ops = [], r.access_masks = []" + _WROTE_CONTENTS[2],
        ", r.ops = r.ops + [o IN old.ops WHERE NOT o IN r.ops],"
        " r.access_masks = r.access_masks + [m IN old.access_masks WHERE NOT m IN r.access_masks]"
        + _WROTE_CONTENTS[3],
    ),
    "CONNECTED_TO": ("", ", r.local_port = coalesce(r.local_port, old.local_port)"),
    "ACCEPTED": (
        ", r.local_ports = []",
        ", r.local_ports = r.local_ports + [x IN old.local_ports WHERE NOT x IN r.local_ports]",
    ),
    "RESOLVED": (
        ", r.answers = []",
        ", r.answers = r.answers + [a IN old.answers WHERE NOT a IN r.answers]",
    ),
    # -- accounts, logons and Windows system changes (graph v2, part 2) --
    "USED_CREDENTIALS": (
        "".join(f", r.{k} = []" for k in _CREDS),
        "".join(
            f", r.{k} = r.{k} + [x IN coalesce(old.{k}, []) WHERE NOT x IN r.{k}]" for k in _CREDS
        ),
    ),
    "CHANGED_TASK": (", r.ops = []", ", r.ops = r.ops + [o IN old.ops WHERE NOT o IN r.ops]"),
    "RAN_SCRIPT": ("", ""),
}
# A placeholder's untimed links to its account and logon move too (earliest record wins).
_MOVE_FIRST_LINKS = "".join(
    f"""
CALL (ph, n) {{
  MATCH (ph)-[old:{rel}]->(t)
  MERGE (n)-[r:{rel}]->(t)
  ON CREATE SET r.time = old.time, r.source = old.source
  WITH old, r
  SET r.source = CASE WHEN old.time < r.time THEN old.source ELSE r.source END,
      r.time = CASE WHEN old.time < r.time THEN old.time ELSE r.time END
  DELETE old
}}"""
    for rel in ("RAN_AS", "IN_LOGON")
)
for _name in K1_PROCESS_TIMED:
    _rel, *_, _lists = K1_TIMED[_name]
    _MOVE_EXTRA[_rel] = _union_lists(*_lists)[2:]
# Process -> Process edges also end at a placeholder (the accessed or injected process)
_MOVE_IN = {K1_TIMED[n][0]: _union_lists(*K1_TIMED[n][5])[2:] for n in PROCESS_TARGETS}
_MOVE_TIMED_IN = _MOVE_TIMED.replace(
    "MATCH (ph)-[old:%(rel)s]->(t)\n  MERGE (n)-[r:%(rel)s]->(t)",
    "MATCH (t)-[old:%(rel)s]->(ph)\n  MERGE (t)-[r:%(rel)s]->(n)",
)


def _moves(template: str, extras: dict[str, tuple[str, str]]) -> str:
    return "".join(
        template
        % {
            "rel": rel,
            "create_extra": create,
            "move_extra": move,
            "times_union": _sorted_union("r.times", "old.times"),
            "hours_union": "CASE WHEN size(r.times) + size(old.times) <= $max_times "
            "THEN r.hours ELSE "
            + _sorted_union(
                "coalesce(r.hours, " + _HOURS_OF % {"times": "r.times"} + ")",
                "coalesce(old.hours, " + _HOURS_OF % {"times": "old.times"} + ")",
            )
            + " END",
        }
        for rel, (create, move) in extras.items()
    )


ABSORB_PLACEHOLDERS = (
    """
UNWIND $rows AS row
MATCH (ph:Process {uid: row.placeholder}), (n:Process {uid: row.into})
SET ph._lock = true, n._lock = true  // read both under their write locks
WITH ph, n
CALL (ph, n) {
  MATCH (ph)-[old:SPAWNED]->(child:Process)
  MERGE (n)-[s:SPAWNED]->(child)
  ON CREATE SET s.time = old.time, s.source = old.source, s.raw = old.raw
  WITH old, s, child
  SET s.source = CASE WHEN old.time < s.time THEN old.source ELSE s.source END,
      s.raw = CASE WHEN old.time < s.time THEN old.raw ELSE s.raw END,
      s.time = CASE WHEN old.time < s.time THEN old.time ELSE s.time END,
      child.parent_uid = n.uid
  DELETE old
}
"""
    + _moves(_MOVE_TIMED, _MOVE_EXTRA)
    + _moves(_MOVE_TIMED_IN, _MOVE_IN)
    + _MOVE_FIRST_LINKS
    + """
// what describes the placeholder (its end) moves; what named it only if it named the node
// earlier than anything else did (MERGE_PROCESSES keeps a placeholder's earliest)
WITH ph, n, [s IN ph.sources WHERE s <> coalesce(ph.named_by, '')] AS described,
     n.placeholder AND ph.named_by IS NOT NULL
     AND (n.named_at IS NULL OR ph.named_at < n.named_at) AS named_earlier
WITH ph, n, named_earlier, described + CASE WHEN named_earlier THEN [ph.named_by] ELSE [] END
     AS moving, CASE WHEN named_earlier THEN coalesce(n.named_by, '') ELSE '' END AS dropped
SET n.end_time = CASE WHEN ph.end_time IS NOT NULL
                      AND (n.end_time IS NULL OR ph.end_time < n.end_time)
                 THEN ph.end_time ELSE n.end_time END,
    n.facts_before = CASE WHEN ph.facts_before IS NOT NULL
                          AND (n.facts_before IS NULL OR ph.facts_before > n.facts_before)
                     THEN ph.facts_before ELSE n.facts_before END,
    n.first_seen = CASE WHEN n.placeholder AND (n.first_seen IS NULL
                                                OR ph.first_seen < n.first_seen)
                   THEN ph.first_seen ELSE n.first_seen END,
    n.sources = ([s IN n.sources WHERE s <> dropped]
                 + [s IN moving WHERE NOT s IN n.sources])[0..$max_sources],
    n.named_by = CASE WHEN named_earlier THEN ph.named_by ELSE n.named_by END,
    n.named_at = CASE WHEN named_earlier THEN ph.named_at ELSE n.named_at END,
    """
    + ",\n    ".join(f"n.{k} = coalesce(n.{k}, ph.{k})" for k in PROCESS_PROPS)
    + """
REMOVE n._lock
DETACH DELETE ph
"""
)


# The writer's statements are planned once: their plans are seeks on node keys whatever the
# graph's statistics say. Without `replan=skip`, Neo4j plans them again and again while a
# fresh graph grows (its statistics diverge every few seconds at first); a JFR profile of a
# 60,000-event ingest showed that query compilation as the server's hottest code.
REPLAN_SKIP = "CYPHER replan=skip\n"


@dataclass(frozen=True)
class Statement:
    """One write statement and which of its row fields hold process uids (the resolver
    rewrites those; see graph.identity). `query` is the text sent (REPLAN_SKIP added)."""

    cypher: str
    process_fields: tuple[str, ...] = ()
    account_fields: tuple[str, ...] = ()  # fields holding Account keys (graph.accounts)

    @property
    def query(self) -> str:
        return REPLAN_SKIP + self.cypher


# In write order: nodes before edges; renames before the processes they rename.
STATEMENTS: dict[str, Statement] = {
    "hosts": Statement(MERGE_HOSTS),
    "hosts_seen": Statement(MERGE_HOSTS_SEEN),
    "rekey": Statement(REKEY_PROCESSES),
    "processes": Statement(MERGE_PROCESSES, ("uid",)),
    "absorb": Statement(ABSORB_PLACEHOLDERS),
    "files": Statement(MERGE_FILES),
    "connections": Statement(MERGE_CONNECTIONS),
    "domains": Statement(MERGE_DOMAINS),
    "spawned": Statement(MERGE_SPAWNED, ("parent", "child")),
    "executed": Statement(MERGE_EXECUTED, ("uid",)),
    "wrote": Statement(MERGE_WROTE, ("uid",)),
    "connected": Statement(MERGE_CONNECTED, ("uid",)),
    "accepted": Statement(MERGE_ACCEPTED, ("uid",)),
    "resolved": Statement(MERGE_RESOLVED, ("uid",)),
    # -- accounts, logons and Windows system changes (graph v2, part 2) --
    "account_links": Statement(LINK_ACCOUNTS),
    "accounts": Statement(MERGE_ACCOUNTS, account_fields=("key",)),
    "logons": Statement(MERGE_LOGONS),
    "shares": Statement(MERGE_SHARES),
    "services": Statement(MERGE_SERVICES),
    "tasks": Statement(MERGE_TASKS),
    "scripts": Statement(MERGE_SCRIPTS),
    "ran_as": Statement(MERGE_RAN_AS, ("uid",), ("target",)),
    "in_logon": Statement(MERGE_IN_LOGON, ("uid",)),
    "logged_on": Statement(MERGE_LOGGED_ON, account_fields=("uid",)),
    "failed_logon": Statement(MERGE_FAILED_LOGON, account_fields=("uid",)),
    "used_credentials": Statement(MERGE_USED_CREDENTIALS, ("uid",), ("target",)),
    "share_by_logon": Statement(MERGE_SHARE_ACCESS["logon"]),
    "share_by_account": Statement(MERGE_SHARE_ACCESS["account"], account_fields=("uid",)),
    "service_by_logon": Statement(MERGE_INSTALLED["logon"]),
    "service_by_account": Statement(MERGE_INSTALLED["account"], account_fields=("uid",)),
    "runs": Statement(MERGE_RUNS),
    "task_by_logon": Statement(MERGE_CHANGED_TASK["logon"]),
    "task_by_account": Statement(MERGE_CHANGED_TASK["account"], account_fields=("uid",)),
    "task_by_process": Statement(MERGE_CHANGED_TASK["process"], ("uid",)),
    "ran_script": Statement(MERGE_RAN_SCRIPT, ("uid",)),
    # -- k1: what a process does to the system --
    "registry_keys": Statement(MERGE_REGISTRY_KEYS),
    "pipes": Statement(MERGE_PIPES),
    "wmi_objects": Statement(MERGE_WMI_OBJECTS),
    **{
        name: Statement(
            K1_MERGE[name],
            ("uid", "target")
            if name in PROCESS_TARGETS
            else ("uid",)
            if spec[1] == "Process"
            else (),
        )
        for name, spec in K1_TIMED.items()
    },
}
# Timed edges from a process (row fields uid, target): graph.identity rewrites them.
TIMED = (
    "wrote",
    "connected",
    "accepted",
    "resolved",
    "used_credentials",
    "task_by_process",
    "ran_script",
    *K1_PROCESS_TIMED,
)
# Untimed edges from a process whose earliest record wins (rows uid, target, time)
FIRST_LINKS = ("ran_as", "in_logon")


# -- folding a batch ---------------------------------------------------------------------------
def file_key(host: str, path: str) -> str:
    return f"{host}|{path.lower()}"


def file_parts(path: str) -> tuple[str, str]:
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    ext = "." + name.rsplit(".", 1)[1] if "." in name.strip(".") else ""
    return name, ext


def connection_key(ip: str, port: int | None, protocol: str | None) -> str:
    return f"{ip}|{'' if port is None else port}|{protocol or ''}"


def _raw(event: Event) -> str | None:
    if event.raw is None:
        return None
    text = orjson.dumps(event.raw, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    return text if len(text) <= RAW_LIMIT else text[: RAW_LIMIT - 1] + "…"


_REF_PROPS = (
    "pid",
    "image",
    "command_line",
    "user",
    "logon_id",
    "integrity_level",
    "current_directory",
)


def _process_props(ref: ProcessRef) -> dict[str, Any]:
    """A process's node properties as one event tells them (None values left out)."""
    props: dict[str, Any] = {}
    for key in _REF_PROPS:
        value = getattr(ref, key)
        if value is not None:
            props[key] = value
    if name := ref.name:
        props["name"] = name.lower()
    return props


def image_props(facts: ImageFacts) -> dict[str, Any]:
    """ImageFacts as File properties (graph.schema IMAGE_PROPS)."""
    props = facts.present()
    if (original := props.pop("original_file_name", None)) is not None:
        props["original_name"] = original.lower()
    return props


def registry_key(host: str, path: str) -> str:
    return f"{host}|{path.lower()}"


def _cut(value: str | None) -> str | None:
    if value is None or len(value) <= VALUE_LIMIT:
        return value
    return value[: VALUE_LIMIT - 1] + "…"


def _add(timed: _Timed, prop: str, value: Any) -> None:
    """A value into a union-list property of a k1 edge (LIST_CAP values at most)."""
    if value is None:
        return
    values = timed.extra[prop]
    if value not in values and len(values) < LIST_CAP:
        values.append(value)


@dataclass
class _Timed:
    times: set[datetime] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)
    raw: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, event: Event, keep_raw: bool, source: str) -> None:
        self.times.add(event.ts)
        if len(self.sources) < MAX_SOURCES:
            self.sources.append(source)
        if self.raw is None and keep_raw:
            self.raw = _raw(event)

    def row(self, uid: str, target: str) -> dict[str, Any]:
        return {
            "uid": uid,
            "target": target,
            "times": [micros(t) for t in sorted(self.times)],
            "sources": self.sources,
            "raw": self.raw,
            **self.extra,
        }


@dataclass(frozen=True)
class Folded:
    """A batch folded into statement rows (possibly in a parser process), ready to resolve
    (graph.identity) and write.

    `statements` are the batch's own transaction, by name (STATEMENTS); `hosts` are its
    MERGE_HOSTS_SEEN rows, which the loader writes apart (see MERGE_HOSTS)."""

    statements: Statements
    hosts: list[dict[str, Any]]
    events: int
    first: datetime | None
    last: datetime | None
    origin: str | None  # the batch's last record

    def rows(self, name: str) -> list[dict[str, Any]]:
        for statement, rows in self.statements:
            if statement == name:
                return rows
        return []


# -- accounts, logons and Windows system changes (graph v2, part 2) ----------------------------
def host_key(host: str, name: str) -> str:
    """`host|lower(name)`: the key of host-scoped things (Share, Service, ScheduledTask)."""
    return f"{host}|{name.lower()}"


def logon_key(host: str, logon_id: str) -> str:
    return f"{host}|{logon_id.lower()}"


def _add_unique(values: list[Any], value: Any) -> None:
    if value is not None and value not in values:
        values.append(value)


@dataclass
class SystemFold:
    """What a batch says of accounts, logons, shares, services, tasks and script blocks,
    folded into rows like the rest of `Batch` (one row per node key and per edge)."""

    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    logons: dict[str, dict[str, Any]] = field(default_factory=dict)
    shares: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    scripts: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    timed: dict[tuple[str, str, str], _Timed] = field(default_factory=dict)

    def account(self, ref: AccountRef | None) -> str | None:
        """Fold an account reference; its node key (None when it names nobody)."""
        if ref is None:
            return None
        key = ref.key
        if key is None:
            return None
        name_key = ref.name_key
        row = self.accounts.get(key)
        if row is None:
            row = self.accounts[key] = {
                "key": key,
                "sid": ref.sid,
                "domain": ref.domain,
                "name": ref.name,
                "name_key": name_key,
                "names": [name_key] if name_key else [],
            }
        else:
            row["domain"] = row["domain"] or ref.domain
            row["name"] = row["name"] or ref.name
            row["name_key"] = row["name_key"] or name_key
            if name_key and name_key not in row["names"] and len(row["names"]) < MAX_SOURCES:
                row["names"].append(name_key)
        return key

    def logon(self, host: str, logon_id: str | None, event: Event | None = None) -> str | None:
        """Fold a logon session; `event` when the record describes it (else a mention)."""
        if not logon_id:
            return None
        key = logon_key(host, logon_id)
        row = self.logons.get(key)
        if row is None:
            row = self.logons[key] = {
                "key": key,
                "host": host,
                "logon_id": logon_id.lower(),
                "described": False,
                "props": {},
                "start": None,
                "end": None,
                "elevated": None,
                "privileges": [],
                "sources": [],
            }
        if event is None or event.logon is None:
            return key
        facts = event.logon
        row["described"] = True
        if len(row["sources"]) < MAX_SOURCES:
            _add_unique(row["sources"], event.origin.ref())
        props = row["props"]
        for name in LOGON_PROPS:
            value = getattr(facts, name)
            if value is not None and name not in props:
                props[name] = value
        if event.kind is Kind.LOGON and not facts.failed:
            row["start"] = event.ts if row["start"] is None else min(row["start"], event.ts)
        elif event.kind is Kind.LOGOFF:
            row["end"] = event.ts if row["end"] is None else min(row["end"], event.ts)
        if facts.elevated is not None:
            row["elevated"] = bool(row["elevated"]) or facts.elevated
        for privilege in facts.privileges:
            _add_unique(row["privileges"], privilege)
        return key

    def link(self, name: str, uid: str, target: str, event: Event, raw: str | None) -> None:
        """An untimed edge (ran_as, in_logon, logged_on, runs): the earliest record wins."""
        row = self.links.get((name, uid, target))
        if row is None or event.ts < row["_ts"]:
            self.links[(name, uid, target)] = {
                "uid": uid,
                "target": target,
                "time": micros(event.ts),
                "source": event.origin.ref(),
                "_ts": event.ts,
                **({"raw": raw} if name == "logged_on" else {}),
            }

    def edge(self, name: str, uid: str, target: str, lists: tuple[str, ...] = ()) -> _Timed:
        timed = self.timed.get((name, uid, target))
        if timed is None:
            timed = self.timed[(name, uid, target)] = _Timed(extra={k: [] for k in lists})
        return timed

    def node_statements(self) -> Statements:
        def listed(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
            return [rows[k] for k in sorted(rows)]

        logons = []
        for key in sorted(self.logons):
            row = self.logons[key]
            logons.append({**row, "start": micros(row["start"]), "end": micros(row["end"])})
        services = []
        for key in sorted(self.services):
            row = self.services[key]
            services.append({**row, "installed_time": micros(row["installed_time"])})
        tasks = []
        for key in sorted(self.tasks):
            row = self.tasks[key]
            tasks.append({**row, "content_time": micros(row["content_time"])})
        scripts = []
        for key in sorted(self.scripts):
            row = self.scripts[key]
            numbers = sorted(row["parts"])
            scripts.append(
                {
                    "key": key,
                    "host": row["host"],
                    "block_id": row["block_id"],
                    "path": row["path"],
                    "total": row["total"],
                    "numbers": numbers,
                    "texts": [row["parts"][n] for n in numbers],
                    "first_time": micros(row["first_time"]),
                }
            )
        return [
            ("accounts", listed(self.accounts)),
            ("logons", logons),
            ("shares", listed(self.shares)),
            ("services", services),
            ("tasks", tasks),
            ("scripts", scripts),
        ]

    def edge_statements(self) -> Statements:
        names = sorted({k[0] for k in self.links} | {k[0] for k in self.timed})
        out: Statements = []
        for name in names:
            if name in _LINK_NAMES:
                rows = [
                    {k: v for k, v in self.links[key].items() if k != "_ts"}
                    for key in sorted(k for k in self.links if k[0] == name)
                ]
            else:
                rows = [
                    self.timed[key].row(key[1], key[2])
                    for key in sorted(k for k in self.timed if k[0] == name)
                ]
            out.append((name, rows))
        return out

    # -- folding one event -------------------------------------------------------------------
    def process_links(self, ref: ProcessRef, event: Event) -> None:
        """RAN_AS and IN_LOGON (and the account's LOGGED_ON) of a process reference that
        names its user or logon. A process in a fixed session (SYSTEM's 0x3e7…) runs as
        that session's account whatever name the record gives."""
        fixed = WELL_KNOWN_LOGONS.get(ref.logon_id or "")
        if fixed is not None:
            account = self.account(account_ref(fixed))
        elif ref.user or ref.user_sid:
            account = self.account(split_user(ref.user, ref.user_sid))
        else:
            account = None
        logon = self.logon(event.host, ref.logon_id)
        if account is not None:
            self.link("ran_as", ref.uid, account, event, None)
        if logon is not None:
            self.link("in_logon", ref.uid, logon, event, None)
            if account is not None:
                self.link("logged_on", account, logon, event, None)

    def add(self, event: Event, raw: str | None, source: str, keep_raw: bool) -> None:
        kind, host = event.kind, event.host
        if event.logon is not None:
            facts = event.logon
            account = self.account(facts.account)
            if kind is Kind.EXPLICIT_CREDENTIALS:
                subject = self.account(facts.subject)
                logon = self.logon(host, facts.logon_id)
                if subject is not None and logon is not None:
                    self.link("logged_on", subject, logon, event, raw)
                if event.process is not None and account is not None:
                    timed = self.edge("used_credentials", event.process.uid, account, _CREDS)
                    timed.add(event, keep_raw, source)
                    _add_unique(timed.extra["target_servers"], facts.target_server)
                    _add_unique(timed.extra["target_infos"], facts.target_info)
                    if facts.subject is not None:
                        _add_unique(timed.extra["subject_names"], facts.subject.name)
                    _add_unique(timed.extra["source_ips"], facts.source_ip)
                return
            if facts.failed:
                if account is not None:
                    timed = self.edge("failed_logon", account, host, _FAILED)
                    timed.add(event, keep_raw, source)
                    _add_unique(timed.extra["statuses"], facts.status)
                    _add_unique(timed.extra["sub_statuses"], facts.sub_status)
                    _add_unique(timed.extra["failure_reasons"], facts.failure_reason)
                    _add_unique(timed.extra["logon_types"], facts.logon_type)
                    _add_unique(timed.extra["source_ips"], facts.source_ip)
                return
            logon = self.logon(host, facts.logon_id, event)
            if account is not None and logon is not None:
                self.link("logged_on", account, logon, event, raw)
            return
        if event.share is not None:
            share = event.share
            key = host_key(host, share.share_name)
            if key not in self.shares:
                self.shares[key] = {
                    "key": key,
                    "host": host,
                    "share_name": share.share_name,
                    "share_path": share.share_path,
                }
            actor = self._actor(share.account, share.logon_id, event, raw)
            if actor is not None:
                timed = self.edge(f"share_by_{actor[0]}", actor[1], key, _SHARE)
                timed.add(event, keep_raw, source)
                _add_unique(timed.extra["access_masks"], share.access_mask)
                if len(timed.extra["relative_targets"]) < MAX_RELATIVE_TARGETS:
                    _add_unique(timed.extra["relative_targets"], share.relative_target)
                _add_unique(timed.extra["source_ips"], share.source_ip)
            return
        if event.service is not None:
            svc = event.service
            key = host_key(host, svc.service_name)
            row = self.services.get(key)
            props = {
                k: v
                for k in ("image_path", "service_type", "start_type", "service_account")
                if (v := getattr(svc, k)) is not None
            }
            if row is None:
                self.services[key] = {
                    "key": key,
                    "host": host,
                    "service_name": svc.service_name,
                    "props": props,
                    "installed_time": event.ts,
                }
            else:
                row["props"] = {**props, **row["props"]}
                row["installed_time"] = min(row["installed_time"], event.ts)
            actor = self._actor(svc.account, svc.logon_id, event, raw)
            if actor is not None:
                timed = self.edge(f"service_by_{actor[0]}", actor[1], key, ("image_paths",))
                timed.add(event, keep_raw, source)
                _add_unique(timed.extra["image_paths"], svc.image_path)
            return
        if event.task is not None:
            task = event.task
            key = host_key(host, task.task_name)
            row = self.tasks.get(key)
            if row is None:
                row = self.tasks[key] = {
                    "key": key,
                    "host": host,
                    "task_name": task.task_name,
                    "content": None,
                    "content_time": None,
                }
            if task.content is not None and (
                row["content_time"] is None or event.ts > row["content_time"]
            ):
                row["content"], row["content_time"] = task.content, event.ts
            actors = []
            if (actor := self._actor(task.account, task.logon_id, event, raw)) is not None:
                actors.append(actor)
            if event.process is not None:
                actors.append(("process", event.process.uid))
            for who, uid in actors:
                timed = self.edge(f"task_by_{who}", uid, key, ("ops",))
                timed.add(event, keep_raw, source)
                _add_unique(timed.extra["ops"], task.op)
            return
        if event.script is not None:
            script = event.script
            key = f"{host}|{script.block_id}"
            row = self.scripts.get(key)
            if row is None:
                row = self.scripts[key] = {
                    "host": host,
                    "block_id": script.block_id,
                    "path": script.path,
                    "total": script.total,
                    "parts": {},
                    "first_time": event.ts,
                }
            row["parts"].setdefault(script.number, script.text)
            row["path"] = row["path"] or script.path
            row["first_time"] = min(row["first_time"], event.ts)
            if event.process is not None:
                self.edge("ran_script", event.process.uid, key).add(event, keep_raw, source)
            self.account(script.account)

    def _actor(
        self, ref: AccountRef | None, logon_id: str | None, event: Event, raw: str | None
    ) -> tuple[str, str] | None:
        """Who did a share access, service install or task change: the logon session when the
        record names it (linked to its account), else the account."""
        account = self.account(ref)
        logon = self.logon(event.host, logon_id)
        if logon is not None:
            if account is not None:
                self.link("logged_on", account, logon, event, raw)
            return ("logon", logon)
        if account is not None:
            return ("account", account)
        return None


_LINK_NAMES = frozenset({"ran_as", "in_logon", "logged_on", "runs"})
MAX_RELATIVE_TARGETS = 100  # distinct 5145 relative target names kept on one edge
# the kinds SystemFold folds (besides the process links every kind may carry)
SYSTEM_KINDS = frozenset(
    {
        Kind.LOGON,
        Kind.LOGOFF,
        Kind.SPECIAL_LOGON,
        Kind.EXPLICIT_CREDENTIALS,
        Kind.SHARE_ACCESS,
        Kind.SERVICE_INSTALL,
        Kind.TASK_CHANGE,
        Kind.SCRIPT_BLOCK,
    }
)


@dataclass
class Batch:
    """One batch of events folded into rows, ready for one transaction.

    `keep_raw=False` keeps evidence as source references only (no raw record on edges)."""

    keep_raw: bool = True

    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    domains: set[str] = field(default_factory=set)
    spawned: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    executed: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    wrote: dict[tuple[str, str], _Timed] = field(default_factory=dict)
    connected: dict[tuple[str, str], _Timed] = field(default_factory=dict)
    accepted: dict[tuple[str, str], _Timed] = field(default_factory=dict)
    resolved: dict[tuple[str, str], _Timed] = field(default_factory=dict)
    system: SystemFold = field(default_factory=SystemFold)  # accounts, logons… (v2 part 2)
    # -- k1: nodes by key, timed edges by statement name (K1_TIMED) then (start, target)
    registry_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    pipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    wmi_objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    k1: dict[str, dict[tuple[str, str], _Timed]] = field(default_factory=dict)
    events: int = 0
    _source: str = ""  # the latest event's source reference, formatted once
    _linked: set[str] = field(default_factory=set)  # processes whose user/logon is linked
    _converted: bool = False  # rows made (see process_rows)

    def add(self, event: Event) -> None:
        self.events += 1
        self._source = event.origin.ref()
        self._host(event)
        kind = event.kind
        proc = event.process
        if kind in SYSTEM_KINDS:
            self._system(event, proc)
            return
        if proc is None:
            if kind is Kind.DRIVER_LOAD:
                self._driver_load(event)
            elif kind is Kind.WMI:
                self._wmi(event)
            return  # the kinds below are all done by a process
        if kind is Kind.PROCESS_START:
            self._process_start(event, proc)
        elif kind is Kind.PROCESS_END:
            self._process(proc, event, full=False, end_time=event.ts)
        elif kind is Kind.FILE_WRITE:
            self._file_write(event, proc)
        elif kind is Kind.NETWORK_CONNECT:
            self._connect(event, proc)
        elif kind is Kind.DNS_QUERY:
            self._dns(event, proc)
        elif kind in _K1_KINDS:
            _K1_KINDS[kind](self, event, proc)

    # -- folding helpers -------------------------------------------------------------------
    def _system(self, event: Event, proc: ProcessRef | None) -> None:
        """Accounts, logons, shares, services, tasks and script blocks (SystemFold)."""
        if proc is not None:
            self._process(proc, event, full=False)
        raw = _raw(event) if self.keep_raw else None
        self.system.add(event, raw, self._source, self.keep_raw)
        service = event.service
        if service is not None and service.image_file:
            image = self._file(event.host, service.image_file)
            self.system.link("runs", host_key(event.host, service.service_name), image, event, None)

    def _host(self, event: Event) -> None:
        row = self.hosts.get(event.host)
        if row is None:
            self.hosts[event.host] = {
                "name": event.host,
                "fqdn": event.host_fqdn,
                "os": platform_of(event),
                "first": event.ts,
                "last": event.ts,
            }
        else:
            row["first"] = min(row["first"], event.ts)
            row["last"] = max(row["last"], event.ts)
            row["fqdn"] = row["fqdn"] or event.host_fqdn
            if row["os"] is None:
                row["os"] = platform_of(event)

    def _process(
        self,
        ref: ProcessRef,
        event: Event,
        *,
        full: bool,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        ppid: int | None = None,
    ) -> None:
        """Fold what one event says of a process. Times stay datetimes until `rows()`."""
        current = self.processes.get(ref.uid)
        ts = event.ts
        describes = full or end_time is not None  # else it only names the process
        if current is None:
            props = _process_props(ref)
            self.processes[ref.uid] = {
                "uid": ref.uid,
                "host": event.host,
                "full": full,
                "props": props if full else {},
                "fill": {} if full else props,
                "start": start_time or ref.start_time,
                "end": end_time,
                "ppid": ppid,
                "first_seen": ts,
                "sources": [self._source] if describes else [],
                "named": None if describes else (ts, self._source),
                "seen": {ts} if is_pid_only(ref.uid) else None,
            }
            if ref.image and ref.image_facts is not None:
                self._file(event.host, ref.image, ref.image_facts, ts)
            if ref.user or ref.user_sid or ref.logon_id:
                self._linked.add(ref.uid)
                self.system.process_links(ref, event)
            return
        if ts < current["first_seen"]:
            current["first_seen"] = ts
        if current["seen"] is not None:
            current["seen"].add(ts)
        if full:
            # a start record (again, or after mentions): its view of the process wins
            current["full"] = True
            current["props"] = _process_props(ref)
            current["start"] = start_time or ref.start_time or current["start"]
            current["ppid"] = ppid if ppid is not None else current["ppid"]
            if ref.image and ref.image_facts is not None:
                self._file(event.host, ref.image, ref.image_facts, ts)
            if ref.user or ref.user_sid or ref.logon_id:
                self._linked.add(ref.uid)
                self.system.process_links(ref, event)
        else:
            # A mention naming the user or logon of a process an earlier record of this
            # batch left without: linked now, so the links never depend on how records fall
            # into batches (re-ingest in other batch sizes adds nothing).
            if ref.uid not in self._linked and (ref.user or ref.user_sid or ref.logon_id):
                self._linked.add(ref.uid)
                self.system.process_links(ref, event)
            # Most rows are the same process seen again by its file and network events:
            # only fill what neither its start record nor an earlier mention said, without
            # building a second property map.
            fill, props = current["fill"], current["props"]
            for key in _REF_PROPS:
                if key not in fill and key not in props:
                    value = getattr(ref, key)
                    if value is not None:
                        fill[key] = value
            if "name" not in fill and "name" not in props and (name := ref.name):
                fill["name"] = name.lower()
            if current["start"] is None:
                current["start"] = start_time or ref.start_time
            if end_time is None:
                # a mention: the record is kept on the edge it made; a process with no start
                # record keeps the earliest one (MERGE_PROCESSES)
                named = current["named"]
                if not current["full"] and (
                    named is None or ts < named[0] or (ts == named[0] and self._source < named[1])
                ):
                    current["named"] = (ts, self._source)
                return
        if end_time is not None:
            current["end"] = end_time if current["end"] is None else min(current["end"], end_time)
        if len(current["sources"]) < MAX_SOURCES:
            current["sources"].append(self._source)

    def _process_start(self, event: Event, proc: ProcessRef) -> None:
        parent = event.parent
        self._process(
            proc,
            event,
            full=True,
            start_time=proc.start_time or event.ts,
            ppid=parent.pid if parent is not None else None,
        )
        if proc.image:
            key = self._file(event.host, proc.image)
            edge = (proc.uid, key)
            if edge not in self.executed:
                self.executed[edge] = {"uid": proc.uid, "file": key, "time": micros(event.ts)}
        if parent is None:
            return
        # A creator known only by host and pid (Security 4688, auditd) is resolved to the
        # process that had that pid then (graph.identity), like every other reference.
        self._process(parent, event, full=False)
        self.spawned.setdefault(
            (parent.uid, proc.uid),
            {
                "parent": parent.uid,
                "child": proc.uid,
                "time": micros(event.ts),
                "source": self._source,
                "raw": _raw(event) if self.keep_raw else None,
            },
        )

    def _file(
        self,
        host: str,
        path: str,
        facts: ImageFacts | None = None,
        seen: datetime | None = None,
    ) -> str:
        key = file_key(host, path)
        row = self.files.get(key)
        if row is None:
            name, ext = file_parts(path)
            row = self.files[key] = {
                "key": key,
                "host": host,
                "path": path,
                "name": name,
                "ext": ext,
                "facts": {},
                "facts_time": None,
            }
        if facts is not None and seen is not None:
            held = row["facts"]
            sha = facts.sha256 or facts.sha1 or facts.md5
            if sha is not None and sha in (held.get("sha256"), held.get("sha1"), held.get("md5")):
                # the same binary again (every start of it repeats its facts): only an
                # earlier sighting changes anything
                if seen < row["facts_time"]:
                    row["facts"] = {**image_props(facts), **held}
                    row["facts_time"] = seen
                return key
            # as MERGE_FILES does: a newer record that disagrees replaces, else fill in
            given = image_props(facts)
            if row["facts_time"] is None:
                row["facts"], row["facts_time"] = given, seen
            elif any(held.get(k, v) != v for k, v in given.items()):
                if seen > row["facts_time"]:
                    row["facts"], row["facts_time"] = {**held, **given}, seen
                else:
                    row["facts"] = {**given, **held}
            else:
                row["facts"] = {**given, **held}
                row["facts_time"] = min(seen, row["facts_time"])
        return key

    def _file_write(self, event: Event, proc: ProcessRef) -> None:
        if not event.file_path:
            return
        self._process(proc, event, full=False)
        hashes = event.system.hashes if event.system is not None else None
        key = self._file(event.host, event.file_path, hashes, event.ts if hashes else None)
        timed = self.wrote.get((proc.uid, key))
        if timed is None:
            extra: dict[str, Any] = {"ops": [], "masks": [], "contents": []}
            timed = self.wrote[(proc.uid, key)] = _Timed(extra=extra)
        timed.add(event, self.keep_raw, self._source)
        op = (event.file_op or FileOp.CREATE).value
        if op not in timed.extra["ops"]:
            timed.extra["ops"].append(op)
        if event.system is not None and event.system.contents is not None:
            _add(timed, "contents", _cut(event.system.contents))
        if event.access_mask and event.access_mask.lower() not in timed.extra["masks"]:
            timed.extra["masks"].append(event.access_mask.lower())

    def _connect(self, event: Event, proc: ProcessRef) -> None:
        if not event.remote_ip:
            return
        self._process(proc, event, full=False)
        inbound = event.direction == "inbound"
        # Inbound, the remote port is the client's ephemeral one: the peer is its address.
        port = None if inbound else event.remote_port
        key = connection_key(event.remote_ip, port, event.protocol)
        if key not in self.connections:
            public, loopback = classify_ip(event.remote_ip)
            self.connections[key] = {
                "key": key,
                "ip": event.remote_ip,
                "port": port,
                "protocol": event.protocol,
                "hostname": event.remote_hostname,
                "is_public": public,
                "is_loopback": loopback,
            }
        elif event.remote_hostname and not self.connections[key]["hostname"]:
            self.connections[key]["hostname"] = event.remote_hostname
        if inbound:
            timed = self.accepted.setdefault((proc.uid, key), _Timed(extra={"local_ports": []}))
            if event.local_port is not None and event.local_port not in timed.extra["local_ports"]:
                timed.extra["local_ports"].append(event.local_port)
        else:
            timed = self.connected.setdefault(
                (proc.uid, key), _Timed(extra={"local_port": event.local_port})
            )
        timed.add(event, self.keep_raw, self._source)

    def _dns(self, event: Event, proc: ProcessRef) -> None:
        if not event.query_name:
            return
        self._process(proc, event, full=False)
        name = event.query_name.lower().rstrip(".")
        self.domains.add(name)
        timed = self.resolved.setdefault((proc.uid, name), _Timed(extra={"answers": []}))
        timed.add(event, self.keep_raw, self._source)
        for answer in event.query_results:
            if answer not in timed.extra["answers"]:
                timed.extra["answers"].append(answer)

    # -- k1: what a process does to the system ----------------------------------------------
    def _k1(self, name: str, start: str, target: str, event: Event) -> _Timed:
        """The timed edge `name` (K1_TIMED) from start to target, with this event's time."""
        edges = self.k1.setdefault(name, {})
        timed = edges.get((start, target))
        if timed is None:
            timed = edges[(start, target)] = _Timed(extra={p: [] for p in K1_TIMED[name][5]})
        timed.add(event, self.keep_raw, self._source)
        return timed

    def _image_load(self, event: Event, proc: ProcessRef) -> None:
        load = event.image_load
        if load is None:
            return
        self._process(proc, event, full=False)
        key = self._file(event.host, load.path, load.facts, event.ts if load.facts else None)
        self._k1("loaded", proc.uid, key, event)

    def _driver_load(self, event: Event) -> None:
        load = event.image_load
        if load is None:
            return
        key = self._file(event.host, load.path, load.facts, event.ts if load.facts else None)
        self._k1("loaded_driver", event.host, key, event)

    def _access(self, event: Event, proc: ProcessRef) -> None:
        access = event.access
        if access is None:
            return
        self._process(proc, event, full=False)
        self._process(access.target, event, full=False)
        if event.kind is Kind.PROCESS_ACCESS:
            timed = self._k1("accessed", proc.uid, access.target.uid, event)
            _add(timed, "granted_access", access.granted_access)
            _add(timed, "call_trace", _cut(access.call_trace))
        else:
            timed = self._k1("injected", proc.uid, access.target.uid, event)
            _add(timed, "start_address", access.start_address)
            _add(timed, "start_module", access.start_module)
            _add(timed, "start_function", access.start_function)
            _add(timed, "actions", access.action)

    def _registry(self, event: Event, proc: ProcessRef) -> None:
        reg = event.registry
        if reg is None:
            return
        self._process(proc, event, full=False)
        key = registry_key(event.host, reg.path)
        if key not in self.registry_keys:
            self.registry_keys[key] = {
                "key": key,
                "host": event.host,
                "path": reg.path,
                "name": reg.path.rstrip("\\").rsplit("\\", 1)[-1],
            }
        timed = self._k1("wrote_registry", proc.uid, key, event)
        _add(timed, "ops", reg.op.value)
        _add(timed, "event_types", reg.event_type)
        _add(timed, "details", _cut(reg.details))
        _add(timed, "new_names", reg.new_name)
        _add(timed, "access_masks", reg.access_mask)

    def _pipe(self, event: Event, proc: ProcessRef) -> None:
        pipe = event.pipe
        if pipe is None:
            return
        self._process(proc, event, full=False)
        key = f"{event.host}|{pipe.name.lower()}"
        if key not in self.pipes:
            self.pipes[key] = {"key": key, "host": event.host, "name": pipe.name}
        self._k1("created_pipe" if pipe.created else "connected_pipe", proc.uid, key, event)

    def _wmi_object(self, event: Event, kind: str, name: str, facts: dict[str, Any]) -> str:
        key = f"{event.host}|{kind}:{name.lower()}"
        row = self.wmi_objects.get(key)
        if row is None:
            row = self.wmi_objects[key] = {
                "key": key,
                "host": event.host,
                "kind": kind,
                "name": name,
                "facts": {},
                "facts_time": None,
            }
        if facts and (row["facts_time"] is None or event.ts >= row["facts_time"]):
            row["facts"] = {**row["facts"], **facts}
            row["facts_time"] = event.ts
        elif facts:
            row["facts"] = {**facts, **row["facts"]}
        return key

    def _wmi(self, event: Event) -> None:
        wmi = event.wmi
        if wmi is None:
            return
        if wmi.kind is WmiKind.BINDING:
            if not (wmi.filter and wmi.consumer):
                return
            start = self._wmi_object(event, WmiKind.FILTER.value, wmi.filter, {})
            end = self._wmi_object(event, WmiKind.CONSUMER.value, wmi.consumer, {})
            timed = self._k1("bound_to", start, end, event)
        else:
            if not wmi.name:
                return
            facts = {
                k: v
                for k in ("namespace", "query", "consumer_type", "destination")
                if (v := _cut(getattr(wmi, k))) is not None
            }
            key = self._wmi_object(event, wmi.kind.value, wmi.name, facts)
            timed = self._k1("registered_wmi", event.host, key, event)
        _add(timed, "operations", wmi.operation)
        _add(timed, "users", wmi.user)

    def _raw_clipboard_tampering(self, event: Event, proc: ProcessRef) -> None:
        """Sysmon 9 raw reads (the volume as a File), 24 clipboard, 25 tampering (the
        process's own image)."""
        facts = event.system
        kind = event.kind
        if kind is Kind.RAW_READ:
            if facts is None or not facts.device:
                return
            self._process(proc, event, full=False)
            self._k1("read_raw", proc.uid, self._file(event.host, facts.device), event)
        elif kind is Kind.CLIPBOARD:
            self._process(proc, event, full=False)
            timed = self._k1("set_clipboard", proc.uid, event.host, event)
            _add(timed, "hashes", facts.clipboard_hashes if facts else None)
        elif kind is Kind.TAMPERING:
            if not proc.image:
                return
            self._process(proc, event, full=False)
            timed = self._k1("tampered", proc.uid, self._file(event.host, proc.image), event)
            _add(timed, "types", facts.tamper_type if facts else None)

    def k1_rows(self) -> Statements:
        rows: Statements = [
            ("registry_keys", [self.registry_keys[k] for k in sorted(self.registry_keys)]),
            ("pipes", [self.pipes[k] for k in sorted(self.pipes)]),
        ]
        wmi = []
        for k in sorted(self.wmi_objects):
            row = self.wmi_objects[k]
            wmi.append({**row, "facts_time": micros(row["facts_time"])})
        rows.append(("wmi_objects", wmi))
        return rows

    def k1_edges(self) -> Statements:
        return [
            (name, [edges[k].row(*k) for k in sorted(edges)])
            for name in K1_TIMED
            if (edges := self.k1.get(name))
        ]

    # -- writing ---------------------------------------------------------------------------
    def process_rows(self) -> list[dict[str, Any]]:
        """The process rows, times as microseconds (converted in place, once: a batch is
        folded into rows only once)."""
        if self._converted:
            raise RuntimeError("a batch's rows are made once")
        self._converted = True
        facts_before = self._facts_before()
        rows = []
        # Only what was said travels (a missing key reads as null in Cypher, and the rows are
        # packed, pickled and unpacked): until resolved (graph.identity) each key is its own
        # node, so a row is `primary` exactly when it is `full`, and it has no aliases.
        for uid in sorted(self.processes):
            row = self.processes[uid]
            for key in ("start", "end", "ppid"):
                if row[key] is None:
                    del row[key]
                elif key != "ppid":
                    row[key] = micros(row[key])
            if row["full"]:
                del row["first_seen"]  # a start record has its start
            else:
                row["first_seen"] = micros(row["first_seen"])
            named = row.pop("named")
            if named is not None:
                row["named_at"], row["named"] = micros(named[0]), named[1]
            seen = row.pop("seen")
            if seen is not None:
                row["seen"] = sorted(micros(t) for t in seen)
            if (before := facts_before.get(uid)) is not None:
                row["facts_before"] = micros(before)
            rows.append(row)
        return rows

    def _facts_before(self) -> dict[str, datetime]:
        """Each process's latest timed fact of the batch, rounded up to the next hour (see
        MERGE_PROCESSES)."""
        latest: dict[str, datetime] = {}

        def see(uid: str, timed: _Timed) -> None:
            last = max(timed.times)
            if uid not in latest or last > latest[uid]:
                latest[uid] = last

        for edges in (self.wrote, self.connected, self.accepted, self.resolved):
            for (uid, _), timed in edges.items():
                see(uid, timed)
        for name, k1_edges in self.k1.items():
            if K1_TIMED[name][1] == "Process":
                for (uid, _), timed in k1_edges.items():
                    see(uid, timed)
        for (_, uid, _), timed in self.system.timed.items():
            if uid in self.processes:  # a process's, not an account's or a host's
                see(uid, timed)
        hour = FACTS_BEFORE_STEP
        return {uid: EPOCH + ((t - EPOCH) // hour + 1) * hour for uid, t in latest.items()}

    def file_rows(self) -> list[dict[str, Any]]:
        for row in self.files.values():
            if row["facts_time"] is not None:
                row["facts_time"] = micros(row["facts_time"])
        return [self.files[k] for k in sorted(self.files)]

    def statements(self, host_times: bool = False) -> Statements:
        """Nodes before edges, rows sorted by key (consistent lock order). `host_times`
        updates the hosts' first/last-seen in the same statement (else the loader writes them
        apart)."""

        def timed_rows(edges: dict[tuple[str, str], _Timed]) -> list[dict[str, Any]]:
            return [edges[k].row(*k) for k in sorted(edges)]

        return [
            ("hosts_seen" if host_times else "hosts", self.host_rows()),
            ("processes", self.process_rows()),
            ("files", self.file_rows()),
            ("connections", [self.connections[k] for k in sorted(self.connections)]),
            ("domains", [{"name": n} for n in sorted(self.domains)]),
            *self.system.node_statements(),
            *self.k1_rows(),
            ("spawned", [self.spawned[k] for k in sorted(self.spawned)]),
            ("executed", [self.executed[k] for k in sorted(self.executed)]),
            ("wrote", timed_rows(self.wrote)),
            ("connected", timed_rows(self.connected)),
            ("accepted", timed_rows(self.accepted)),
            ("resolved", timed_rows(self.resolved)),
            *self.system.edge_statements(),
            *self.k1_edges(),
        ]

    def host_rows(self) -> list[dict[str, Any]]:
        return [
            {**row, "first": micros(row["first"]), "last": micros(row["last"])}
            for _, row in sorted(self.hosts.items())
        ]

    def folded(self, host_times: bool = False) -> Folded:
        """The batch as rows only (small to pickle, nothing left to compute but identity)."""
        return Folded(
            [(name, rows) for name, rows in self.statements(host_times) if rows],
            self.host_rows(),
            self.events,
            min((h["first"] for h in self.hosts.values()), default=None),
            max((h["last"] for h in self.hosts.values()), default=None),
            self._source or None,
        )


# the process-done k1 kinds and the Batch method that folds each
_K1_KINDS = {
    Kind.IMAGE_LOAD: Batch._image_load,
    Kind.PROCESS_ACCESS: Batch._access,
    Kind.REMOTE_THREAD: Batch._access,
    Kind.REGISTRY: Batch._registry,
    Kind.PIPE: Batch._pipe,
    Kind.RAW_READ: Batch._raw_clipboard_tampering,
    Kind.CLIPBOARD: Batch._raw_clipboard_tampering,
    Kind.TAMPERING: Batch._raw_clipboard_tampering,
}


def run_statements(tx: Transaction | ManagedTransaction, statements: Statements) -> None:
    """Run a batch's statements in a transaction the caller holds. They are sent one after
    another and consumed at the end: Neo4j executes a statement while the driver packs the
    next, instead of each waiting for the previous one's result."""
    results = [
        tx.run(STATEMENTS[name].query, rows=rows, max_times=MAX_TIMES, max_sources=MAX_SOURCES)
        for name, rows in statements
        if rows
    ]
    for result in results:
        result.consume()


def write_statements(graph: Graph, statements: Statements, events: int) -> None:
    """One folded batch, one transaction (the folding may have happened in another process)."""
    graph.write_tx(
        lambda tx: run_statements(tx, statements), what=f"writing a batch of {events} events"
    )


def merge_timed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two rows of one timed edge as one: times and sources unioned (sources capped), the
    first raw evidence kept, list properties unioned in order, other values first-known."""
    merged = dict(a)
    merged["times"] = sorted(set(a["times"]) | set(b["times"]))
    merged["sources"] = (a["sources"] + [s for s in b["sources"] if s not in a["sources"]])[
        :MAX_SOURCES
    ]
    merged["raw"] = a["raw"] if a["raw"] is not None else b["raw"]
    for key, value in b.items():
        if key in merged and isinstance(merged[key], list) and key not in ("times", "sources"):
            merged[key] = merged[key] + [v for v in value if v not in merged[key]]
        elif merged.get(key) is None:
            merged[key] = value
    return merged
