"""One real process, one node: process references resolved across sources.

Sources name the same process differently: Sysmon by its ProcessGuid (`g:`), Elastic by its
entity id (`e:`), Security 4688 and Defender by host + pid + start time (`p:host:pid:start`),
and Security 4689/4663, a 4688's creator and auditd by host + pid alone (`p:host:pid`).
`ProcessResolver` turns every reference in a folded batch into the key of one node and
rewrites the batch's rows (`Statement.process_fields` say which fields hold uids).

Two references are the same process when, on the same host,
- their pids are equal and their start times are within TOLERANCE of each other (or one has
  no start yet and was seen alive after the other's start); or
- one pid is unknown (NXLog drops Sysmon's ProcessId: the Mordor sets), and their creator
  pids, image names and start times (within TOLERANCE) agree, with exactly one candidate;
and nothing contradicts it: image names and logon ids agree where both have one, neither
ended before the other started, and they are not two different GUIDs (or two entity ids).

TOLERANCE comes from the data: in OTRF's Empire MSBuild set (the one public recording with
both Sysmon 1 and Security 4688 for the same processes) the 4688 time (the collector's
@timestamp) trails Sysmon's UtcTime by 0.72 to 2.08 s (11 pairs, median 1.44 s). Five
seconds covers that with room for a busier collector, and is far shorter than the time
Windows takes to hand a pid to a new process on an ordinary host; the pid, image and logon
checks guard the rest.

The best key wins whatever the order records arrive in (g: > e: > p:host:pid:start; among
two of the last kind, the earlier start): a node first written under a worse key is renamed
(REKEY_PROCESSES) and keeps the old one in `aliases`. A reference by host + pid alone at
time t names the process that had that pid then: the latest one started at or before t (and
not ended before it), else a placeholder `p:host:pid` that a later start record claims.

Nodes are never merged after the fact (Community Neo4j has no APOC to move relationships):
the resolver avoids creating the second node instead. It keeps what this run has resolved
(a run cache, so batch k+1 needs nothing of batch k's commit) and, for references it has not
seen, reads the committed graph once per batch (by uid, and by host + pid and host + creator
pid through composite indexes). Two nodes both written before anything linked them (say, a
pid-only placeholder written before the process's pid was known) stay apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from provgraph.graph.schema import MAX_SOURCES
from provgraph.graph.tx import Graph
from provgraph.graph.writer import TIMED, Folded, hour_starts
from provgraph.ingest.model import is_pid_only, uid_rank

SECOND = 1_000_000  # times here are integer microseconds since the epoch, as in the rows
TOLERANCE = 5 * SECOND

_PROJECTION = (
    "p {.uid, .host, .pid, .ppid, .name, .logon_id, .aliases, "
    "start: p.start_time.epochSeconds * 1000000 + p.start_time.microsecond, "
    "end: p.end_time.epochSeconds * 1000000 + p.end_time.microsecond, "
    "first_seen: p.first_seen.epochSeconds * 1000000 + p.first_seen.microsecond} AS p"
)
# Candidates for the references a batch brings that this run has not seen.
LOOKUP = f"""
UNWIND $uids AS u MATCH (p:Process {{uid: u}}) RETURN {_PROJECTION}
UNION
UNWIND $pids AS k MATCH (p:Process {{host: k[0], pid: k[1]}}) RETURN {_PROJECTION}
UNION
UNWIND $ppids AS k MATCH (p:Process {{host: k[0], ppid: k[1]}}) RETURN {_PROJECTION}
"""


def better(a: str, b: str) -> bool:
    """Whether key a should name the node rather than key b: the higher rank, and between
    equals the smaller key (for p:host:pid:start, the earlier start)."""
    ra, rb = uid_rank(a), uid_rank(b)
    return ra > rb or (ra == rb and a < b)


@dataclass(slots=True)
class Known:
    """What the resolver knows of one node (times in microseconds)."""

    uid: str
    host: str
    pid: int | None = None
    ppid: int | None = None
    start: int | None = None
    end: int | None = None
    first_seen: int | None = None
    name: str | None = None
    logon_id: str | None = None
    # the node's key in the graph when this batch began; None if no batch has written it
    written: str | None = None
    aliases: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Ref:
    """One reference in a batch, with what its rows say."""

    uid: str
    host: str
    pid: int | None
    ppid: int | None
    start: int | None
    end: int | None
    first_seen: int | None
    name: str | None
    logon_id: str | None
    full: bool


def _ref(row: dict[str, Any]) -> _Ref:
    props = row["props"] if row["full"] else row["fill"]
    fill = row["fill"]
    return _Ref(
        uid=row["uid"],
        host=row["host"],
        pid=props.get("pid", fill.get("pid")),
        ppid=row["ppid"],
        start=row["start"],
        end=row["end"],
        first_seen=row["first_seen"],
        name=props.get("name", fill.get("name")),
        logon_id=props.get("logon_id", fill.get("logon_id")),
        full=row["full"],
    )


def _agree(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


class ProcessResolver:
    """Resolves the process references of folded batches, in order, for one run."""

    def __init__(self, graph: Graph | None, tolerance: int = TOLERANCE) -> None:
        self.graph = graph
        self.tolerance = tolerance
        self._canon: dict[str, str] = {}  # any key seen -> the key it resolved to (chains)
        self._known: dict[str, Known] = {}  # node key -> facts
        self._by_pid: dict[tuple[str, int], set[str]] = defaultdict(set)
        self._by_ppid: dict[tuple[str, int], set[str]] = defaultdict(set)
        self._asked_uids: set[str] = set()
        self._asked_pids: set[tuple[str, int]] = set()
        self._asked_ppids: set[tuple[str, int]] = set()
        self._touched: list[Known] = []  # nodes this batch created or renamed

    # -- the cache -------------------------------------------------------------------------
    def root(self, uid: str) -> str:
        """The node key a key resolved to, following renames (None-safe: unknown -> itself)."""
        seen = uid
        while (nxt := self._canon.get(seen, seen)) != seen:
            seen = nxt
        if seen != uid:
            self._canon[uid] = seen  # shorten the chain
        return seen

    def _index(self, known: Known) -> None:
        if known.pid is not None:
            self._by_pid[(known.host, known.pid)].add(known.uid)
        if known.ppid is not None:
            self._by_ppid[(known.host, known.ppid)].add(known.uid)

    def _candidates(
        self, index: dict[tuple[str, int], set[str]], key: tuple[str, int]
    ) -> list[Known]:
        found = {self.root(u) for u in index.get(key, ())}
        return [self._known[u] for u in sorted(found) if u in self._known]

    def _learn(self, rows: list[dict[str, Any]]) -> None:
        """One read of the committed graph for the references this run has not seen."""
        uids, pids, ppids = set(), set(), set()
        for row in rows:
            uid, host = row["uid"], row["host"]
            ref = _ref(row)
            if not is_pid_only(uid) and uid not in self._canon and uid not in self._asked_uids:
                uids.add(uid)
            if uid in self._canon and not is_pid_only(uid):
                continue  # known: no candidates needed
            if ref.pid is not None and (host, ref.pid) not in self._asked_pids:
                pids.add((host, ref.pid))
            if ref.ppid is not None and (host, ref.ppid) not in self._asked_ppids:
                ppids.add((host, ref.ppid))
        self._asked_uids |= uids
        self._asked_pids |= pids
        self._asked_ppids |= ppids
        if self.graph is None or not (uids or pids or ppids):
            return
        found = self.graph.read(
            LOOKUP,
            {
                "uids": sorted(uids),
                "pids": [list(k) for k in sorted(pids)],
                "ppids": [list(k) for k in sorted(ppids)],
            },
        )
        for record in found:
            p = record["p"]
            uid = p["uid"]
            if uid in self._known:
                continue  # this run knows more than the committed graph
            known = Known(
                uid=uid,
                host=p["host"],
                pid=p["pid"],
                ppid=p["ppid"],
                start=p["start"],
                end=p["end"],
                first_seen=p["first_seen"],
                name=p["name"],
                logon_id=p["logon_id"],
                written=uid,
                aliases=set(p["aliases"] or ()),
            )
            self._known[uid] = known
            self._canon[uid] = uid
            for alias in known.aliases:
                if not is_pid_only(alias):
                    self._canon.setdefault(alias, uid)
            self._index(known)

    # -- matching --------------------------------------------------------------------------
    def _same(self, ref: _Ref, known: Known, by_ppid: bool) -> bool:
        tol = self.tolerance
        if ref.host != known.host or ref.uid == known.uid:
            return False
        if uid_rank(ref.uid) >= 2 and uid_rank(known.uid) >= 2 and ref.uid[:2] == known.uid[:2]:
            return False  # two GUIDs (or two entity ids) are two processes
        if not (_agree(ref.name, known.name) and _agree(ref.logon_id, known.logon_id)):
            return False
        for a_end, b_start, b_seen in (
            (ref.end, known.start, known.first_seen),
            (known.end, ref.start, ref.first_seen),
        ):
            if a_end is not None:
                if b_start is not None and a_end < b_start - tol:
                    return False
                if b_start is None and b_seen is not None and b_seen > a_end + tol:
                    return False
        if by_ppid:  # one of the two pids unknown
            return (
                ref.ppid is not None
                and ref.ppid == known.ppid
                and ref.name is not None
                and known.name is not None
                and ref.start is not None
                and known.start is not None
                and abs(ref.start - known.start) <= tol
            )
        if ref.pid is None or ref.pid != known.pid:
            return False
        if ref.start is not None and known.start is not None:
            return abs(ref.start - known.start) <= tol
        if ref.start is not None:  # known is a placeholder: seen alive after ref started?
            return known.first_seen is None or known.first_seen >= ref.start - tol
        if known.start is not None:
            return ref.first_seen is not None and ref.first_seen >= known.start - tol
        # Neither has a start: only a placeholder by host and pid is claimed (a pid-only
        # reference would have resolved to this node had it come second).
        return is_pid_only(known.uid)

    def _match(self, ref: _Ref) -> Known | None:
        if ref.pid is not None:
            found = [
                k
                for k in self._candidates(self._by_pid, (ref.host, ref.pid))
                if k.pid is not None and self._same(ref, k, by_ppid=False)
            ]
            if found:
                return min(
                    found,
                    key=lambda k: (
                        abs(k.start - ref.start)
                        if k.start is not None and ref.start is not None
                        else self.tolerance + 1,
                        -uid_rank(k.uid),
                        k.uid,
                    ),
                )
        if ref.ppid is not None and ref.start is not None:
            found = [
                k
                for k in self._candidates(self._by_ppid, (ref.host, ref.ppid))
                if (k.pid is None or ref.pid is None) and self._same(ref, k, by_ppid=True)
            ]
            if len(found) == 1:  # by creator and name alone, only when unambiguous
                return found[0]
        return None

    def _at(self, host: str, pid: int, t: int, name: str | None, logon: str | None) -> Known | None:
        """The process that had `pid` on `host` at time t, as far as anything says."""
        tol = self.tolerance
        alive = [
            k
            for k in self._candidates(self._by_pid, (host, pid))
            if k.pid == pid
            and not (k.end is not None and k.end < t - tol)
            and _agree(name, k.name)
            and _agree(logon, k.logon_id)
        ]
        started = [k for k in alive if k.start is not None and k.start <= t + tol]
        if started:
            return max(started, key=lambda k: (k.start, k.uid))
        unstarted = [k for k in alive if k.start is None]
        if not unstarted:
            return None
        before = [k for k in unstarted if k.first_seen is None or k.first_seen <= t + tol]
        if before:
            return max(before, key=lambda k: (k.first_seen or 0, k.uid))
        return min(unstarted, key=lambda k: (k.first_seen or 0, k.uid))

    # -- updating what is known ------------------------------------------------------------
    def _absorb(self, known: Known, ref: _Ref, primary: bool) -> None:
        """Fold a reference's facts into its node (mirrors MERGE_PROCESSES)."""
        pid_was, ppid_was = known.pid, known.ppid
        if (primary and ref.start is not None) or known.start is None:
            known.start = ref.start
        if ref.end is not None and (known.end is None or ref.end < known.end):
            known.end = ref.end
        if ref.first_seen is not None and (
            known.first_seen is None or ref.first_seen < known.first_seen
        ):
            known.first_seen = ref.first_seen
        known.pid = known.pid if known.pid is not None else ref.pid
        known.ppid = known.ppid if known.ppid is not None else ref.ppid
        known.name = known.name or ref.name
        known.logon_id = known.logon_id or ref.logon_id
        if known.pid != pid_was or known.ppid != ppid_was:
            self._index(known)

    def _rename(self, known: Known, new: str) -> None:
        old = known.uid
        del self._known[old]
        known.uid = new
        if not is_pid_only(old):
            known.aliases.add(old)
        self._known[new] = known
        self._canon[old] = new
        self._canon[new] = new
        self._index(known)
        self._touched.append(known)

    def _new(self, ref: _Ref) -> Known:
        known = Known(uid=ref.uid, host=ref.host)
        self._known[ref.uid] = known
        self._canon[ref.uid] = ref.uid
        self._absorb(known, ref, primary=True)
        self._index(known)
        self._touched.append(known)
        return known

    def _resolve_keyed(self, ref: _Ref) -> str:
        if ref.uid in self._canon:
            known = self._known[self.root(ref.uid)]
            self._absorb(known, ref, primary=ref.full and known.uid == ref.uid)
            return known.uid
        match = self._match(ref)
        if match is None:
            return self._new(ref).uid
        if better(ref.uid, match.uid):
            self._rename(match, ref.uid)
            self._absorb(match, ref, primary=ref.full)
        else:
            self._canon[ref.uid] = match.uid
            if not is_pid_only(ref.uid):
                match.aliases.add(ref.uid)
            self._absorb(match, ref, primary=False)
        return match.uid

    def _resolve_pid_only(self, ref: _Ref, t: int) -> str:
        assert ref.pid is not None
        known = self._at(ref.host, ref.pid, t, ref.name, ref.logon_id)
        if known is None:
            # a placeholder keyed by host and pid, which a later start record claims
            placeholder = self._known.get(ref.uid)
            known = placeholder if placeholder is not None else self._new(ref)
        point = replace(ref, first_seen=t, end=ref.end if ref.end == t else None)
        self._absorb(known, point, primary=False)
        return known.uid

    # -- a batch ---------------------------------------------------------------------------
    def resolve(self, folded: Folded) -> Folded:
        """The batch with every process reference resolved, duplicates folded together, and
        the renames it needs first."""
        rows = folded.rows("processes")
        if not rows:
            return folded
        self._learn(rows)
        refs = [_ref(row) for row in rows]
        keyed = [r for r in refs if not is_pid_only(r.uid)]
        # start records first (earliest first), then mentions: a mention then finds the node
        # its start made, whatever order the batch has them in
        keyed.sort(
            key=lambda r: (not r.full, r.start is None, r.start or 0, -uid_rank(r.uid), r.uid)
        )
        for ref in keyed:
            self._resolve_keyed(ref)
        # A reference by host and pid alone, at each time the batch has it (every mention
        # time is in the row's `seen`): pids are reused, so two times may be two processes.
        at: dict[str, dict[int, str]] = {}
        for ref, row in zip(refs, rows, strict=True):
            if is_pid_only(ref.uid) and ref.pid is not None:
                at[ref.uid] = {t: self._resolve_pid_only(ref, t) for t in row["seen"]}
        resolved = _rewrite(folded, self, at, self._renames())
        for known in self._touched:  # the batch will be written under these keys
            known.written = known.uid
        self._touched = []
        return resolved

    def _renames(self) -> list[dict[str, Any]]:
        """REKEY_PROCESSES rows: nodes written under a key this batch replaced."""
        renamed = {k.uid: k for k in self._touched if k.written is not None and k.written != k.uid}
        return [
            {
                "old": k.written,
                "new": k.uid,
                "host": k.host,
                "alias": [] if is_pid_only(k.written) else [k.written],  # type: ignore[arg-type]
                "guid": k.uid[2:] if k.uid.startswith("g:") else None,
            }
            for _, k in sorted(renamed.items())
        ]

    def aliases(self, uid: str) -> list[str]:
        known = self._known.get(uid)
        return sorted(known.aliases) if known else []


# -- rewriting the rows ------------------------------------------------------------------------
def _rewrite(
    folded: Folded,
    resolver: ProcessResolver,
    at: dict[str, dict[int, str]],
    renames: list[dict[str, Any]],
) -> Folded:
    def one(uid: str, t: int) -> str:
        if uid in at:
            return at[uid][t]
        return resolver.root(uid)

    statements: list[tuple[str, list[dict[str, Any]]]] = []
    for name, rows in folded.statements:
        if name == "processes":
            if renames:
                statements.append(("rekey", renames))
            rows = _processes(rows, resolver, at)
        elif name == "spawned":
            rows = _spawned(rows, one)
        elif name == "executed":
            rows = _dedupe([{**r, "uid": resolver.root(r["uid"])} for r in rows], ("uid", "file"))
        elif name in TIMED:
            rows = _timed(rows, resolver, at)
        statements.append((name, rows))
    return Folded(statements, folded.hosts, folded.events, folded.first, folded.last, folded.origin)


def _dedupe(rows: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        out.setdefault(tuple(row[k] for k in key), row)
    return [out[k] for k in sorted(out)]


def _spawned(rows: list[dict[str, Any]], one: Any) -> list[dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        parent, child = one(row["parent"], row["time"]), one(row["child"], row["time"])
        if parent == child:
            continue
        current = out.get((parent, child))
        if current is None or row["time"] < current["time"]:
            out[(parent, child)] = {**row, "parent": parent, "child": child}
    return [out[k] for k in sorted(out)]


def _processes(
    rows: list[dict[str, Any]], resolver: ProcessResolver, at: dict[str, dict[int, str]]
) -> list[dict[str, Any]]:
    """One row per node: start records' props (the node's own first), then what the rest
    fill in."""
    parts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        uid = row["uid"]
        if uid in at:
            by_node: dict[str, list[int]] = defaultdict(list)
            for t, node in at[uid].items():
                by_node[node].append(t)
            bare = {k: v for k, v in row.items() if k != "seen"}
            for node, times in by_node.items():
                end = row["end"] if row["end"] is not None and row["end"] in times else None
                parts[node].append({**bare, "first_seen": min(times), "end": end})
        else:
            parts[resolver.root(uid)].append(row)
    out = []
    for node in sorted(parts):
        group = parts[node]
        if len(group) == 1 and group[0]["uid"] == node:  # the common case: nothing to fold
            row = group[0]
            out.append({**row, "primary": row["full"], "aliases": resolver.aliases(node)})
            continue
        # start records, the node's own first, then the others best key first
        starts = sorted(
            (r for r in group if r["full"]),
            key=lambda r: (r["uid"] != node, -uid_rank(r["uid"]), r["uid"]),
        )
        mentions = [r for r in group if not r["full"]]
        props: dict[str, Any] = {}
        for r in reversed(starts):
            props.update(r["props"])
        fill: dict[str, Any] = {}
        for r in group:
            for key, value in r["fill"].items():
                fill.setdefault(key, value)
        start_times = [r["start"] for r in starts if r["start"] is not None]
        mention_starts = [r["start"] for r in mentions if r["start"] is not None]
        ends = [r["end"] for r in group if r["end"] is not None]
        ppids = [r["ppid"] for r in starts if r["ppid"] is not None]
        sources: list[str] = []
        for r in starts + mentions:
            sources += [s for s in r["sources"] if s not in sources]
        out.append(
            {
                "uid": node,
                "host": group[0]["host"],
                "full": bool(starts),
                "primary": bool(starts) and starts[0]["uid"] == node,
                "props": props,
                "fill": fill,
                "start": start_times[0] if start_times else min(mention_starts, default=None),
                "end": min(ends) if ends else None,
                "ppid": ppids[0] if ppids else None,
                "first_seen": min(r["first_seen"] for r in group),
                "sources": sources[:MAX_SOURCES],
                "aliases": resolver.aliases(node),
                "guid": node[2:] if node.startswith("g:") else None,
            }
        )
    return out


def _timed(
    rows: list[dict[str, Any]], resolver: ProcessResolver, at: dict[str, dict[int, str]]
) -> list[dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        uid = row["uid"]
        if uid in at:
            by_node: dict[str, list[int]] = defaultdict(list)
            for t in row["times"]:
                by_node[at[uid][t]].append(t)
            pieces = [
                {**row, "uid": node, "times": times, "hours": hour_starts(times)}
                for node, times in by_node.items()
            ]
        else:
            pieces = [{**row, "uid": resolver.root(uid)}]
        for piece in pieces:
            key = (piece["uid"], piece["target"])
            current = out.get(key)
            out[key] = piece if current is None else _merge_timed(current, piece)
    return [out[k] for k in sorted(out)]


def _merge_timed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = dict(a)
    merged["times"] = sorted(set(a["times"]) | set(b["times"]))
    merged["hours"] = hour_starts(merged["times"])
    merged["sources"] = (a["sources"] + [s for s in b["sources"] if s not in a["sources"]])[
        :MAX_SOURCES
    ]
    merged["raw"] = a["raw"] if a["raw"] is not None else b["raw"]
    for key, value in b.items():
        if (
            key in merged
            and isinstance(merged[key], list)
            and key
            not in (
                "times",
                "hours",
                "sources",
            )
        ):
            merged[key] = merged[key] + [v for v in value if v not in merged[key]]
        elif merged.get(key) is None:
            merged[key] = value
    return merged
