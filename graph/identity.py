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
seen, reads the committed graph once per batch (by uid, by host + pid through a composite
index, and by start time for the creator-pid case); a host with no process in the graph when
the run first meets it needs no reads at all. That makes it a single-writer design: two runs
writing the same host at the same moment can each miss what the other has not committed. A
placeholder by host and pid written before anything told which process had that pid is
absorbed into that process when it is told (ABSORB_PLACEHOLDERS): it is the one kind of node
whose edges are simple enough to move. Two nodes otherwise both written before anything
linked them stay apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from provgraph.graph.accounts import AccountResolver
from provgraph.graph.schema import MAX_SOURCES
from provgraph.graph.tx import Graph
from provgraph.graph.writer import FIRST_LINKS, PROCESS_TARGETS, TIMED, Folded, merge_timed
from provgraph.ingest.model import is_pid_only, uid_rank

SECOND = 1_000_000  # times here are integer microseconds since the epoch, as in the rows
TOLERANCE = 5 * SECOND
# The run cache keeps at most this many processes; past it, those no batch has referred to
# for longest are forgotten, and their hosts are read from the graph again. A process costs
# about 850 bytes here with its pid and creator-pid index entries (measured on the Sigma
# bench's 1M events: 70 MB for 81k); 100k made an ingest's memory grow some 55 MB from 100k
# to 1M events, 30k keeps it near a 100k-event ingest's (25k processes).
MAX_KNOWN = 30_000

_PROJECTION = (
    "p {.uid, .host, .pid, .ppid, .name, .logon_id, .aliases, "
    "start: p.start_time.epochSeconds * 1000000 + p.start_time.microsecond, "
    "end: p.end_time.epochSeconds * 1000000 + p.end_time.microsecond, "
    "first_seen: p.first_seen.epochSeconds * 1000000 + p.first_seen.microsecond} AS p"
)


def _at_micros(expr: str) -> str:
    return f"datetime({{epochSeconds: {expr} / 1000000, nanosecond: {expr} % 1000000 * 1000}})"


# Which of a batch's hosts the graph already has processes on (the others need no LOOKUP).
HOSTS_SEEN = """
UNWIND $hosts AS h
RETURN h AS host, EXISTS { MATCH (:Process {host: h}) } AS seen
"""
# Candidates for the references a batch brings that this run has not seen: by key, by host
# and pid (composite index), and for a start whose pid is missing (or a node's that is), by
# creator pid among the processes started within the window (start_time index).
LOOKUP = f"""
UNWIND $uids AS u MATCH (p:Process {{uid: u}}) RETURN {_PROJECTION}
UNION
UNWIND $pids AS k MATCH (p:Process {{host: k[0], pid: k[1]}}) RETURN {_PROJECTION}
UNION
UNWIND $ppids AS k
MATCH (p:Process)
WHERE p.start_time >= {_at_micros("k[2]")} AND p.start_time <= {_at_micros("k[3]")}
  AND p.host = k[0] AND p.ppid = k[1] AND (k[4] OR p.pid IS NULL)
RETURN {_PROJECTION}
"""


def better(a: str, b: str) -> bool:
    """Whether key a should name the node rather than key b: the higher rank, and between
    equals the smaller key (for p:host:pid:start, the earlier start)."""
    ra, rb = uid_rank(a), uid_rank(b)
    return ra > rb or (ra == rb and a < b)


@dataclass(slots=True, eq=False)
class Known:
    """What the resolver knows of one node (times in microseconds). The object stays the
    same when the node is renamed, so the indexes hold objects, not keys."""

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
    aliases: set[str] | None = None  # made when there is one (fewer objects for the GC)
    dead: bool = False  # absorbed into another node, or forgotten (see _forget)
    batch: int = 0  # the last batch that referred to it


@dataclass(slots=True)
class _Ref:
    """One reference in a batch, with what its row says."""

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
    pid_only: bool


def _ref(row: dict[str, Any]) -> _Ref:
    props = row["props"] if row["full"] else row["fill"]
    fill = row["fill"]
    uid = row["uid"]
    return _Ref(
        uid=uid,
        host=row["host"],
        pid=props.get("pid", fill.get("pid")),
        ppid=row.get("ppid"),
        start=row.get("start"),
        end=row.get("end"),
        first_seen=row.get("first_seen", row.get("start")),
        name=props.get("name", fill.get("name")),
        logon_id=props.get("logon_id", fill.get("logon_id")),
        full=row["full"],
        pid_only=is_pid_only(uid),
    )


def _ref_of(known: Known) -> _Ref:
    return _Ref(
        uid=known.uid,
        host=known.host,
        pid=known.pid,
        ppid=known.ppid,
        start=known.start,
        end=known.end,
        first_seen=known.first_seen,
        name=known.name,
        logon_id=known.logon_id,
        full=False,
        pid_only=False,
    )


def _agree(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


class ProcessResolver:
    """Resolves the process references of folded batches, in order, for one run."""

    def __init__(
        self, graph: Graph | None, tolerance: int = TOLERANCE, max_known: int = MAX_KNOWN
    ) -> None:
        self.graph = graph
        self.tolerance = tolerance
        self.max_known = max_known
        self._batch = 0
        self._canon: dict[str, str] = {}  # any key seen -> the key it resolved to (chains)
        self._known: dict[str, Known] = {}  # node key -> facts
        self._by_pid: dict[tuple[str, int], list[Known]] = defaultdict(list)
        # started nodes by (host, creator pid, start // tolerance)
        self._by_ppid: dict[tuple[str, int, int], list[Known]] = defaultdict(list)
        # placeholders by host and pid alone (p:host:pid), which a node learning its pid claims
        self._placeholders: dict[tuple[str, int], list[Known]] = defaultdict(list)
        self._hosts: dict[str, bool] = {}  # host -> the graph had processes on it
        self._asked_uids: set[str] = set()
        self._asked_pids: set[tuple[str, int]] = set()
        self._asked_ppids: set[tuple[str, int, int, bool]] = set()
        self._touched: list[Known] = []  # nodes this batch created or renamed
        self._absorbs: list[dict[str, Any]] = []  # ABSORB_PLACEHOLDERS rows of this batch
        self.accounts = AccountResolver(graph)  # account keys, after the processes (k2)

    # -- the cache -------------------------------------------------------------------------
    def root(self, uid: str) -> str:
        """The node key a key resolved to, following renames (unknown: itself)."""
        nxt = self._canon.get(uid)
        if nxt is None or nxt == uid:
            return uid
        seen = nxt
        while (nxt := self._canon.get(seen, seen)) != seen:
            seen = nxt
        self._canon[uid] = seen  # shorten the chain
        return seen

    def aliases(self, uid: str) -> list[str]:
        known = self._known.get(uid)
        return sorted(known.aliases) if known is not None and known.aliases else []

    def _bucket(self, start: int) -> int:
        return start // self.tolerance

    def _index(self, known: Known, pid: bool = True, ppid: bool = True) -> None:
        if pid and known.pid is not None:
            self._by_pid[(known.host, known.pid)].append(known)
            if is_pid_only(known.uid):
                self._placeholders[(known.host, known.pid)].append(known)
        if ppid and known.ppid is not None and known.start is not None:
            self._by_ppid[(known.host, known.ppid, self._bucket(known.start))].append(known)

    def _by_pid_of(self, host: str, pid: int) -> list[Known]:
        found = self._by_pid.get((host, pid))
        if not found:
            return []
        live = [k for k in found if not k.dead and k.pid == pid]
        if len(live) != len(found):
            self._by_pid[(host, pid)] = live
        return live

    def _by_ppid_near(self, host: str, ppid: int, start: int) -> list[Known]:
        """Started nodes with that creator pid in the buckets around `start` (a node whose
        start changed is in two; each comes once)."""
        bucket = self._bucket(start)
        out: dict[int, Known] = {}
        for b in (bucket - 1, bucket, bucket + 1):
            for k in self._by_ppid.get((host, ppid, b), ()):
                if not k.dead and k.ppid == ppid:
                    out[id(k)] = k
        return list(out.values())

    def _learn(self, refs: list[_Ref]) -> None:
        """One read of the committed graph for the references this run has not seen."""
        if self.graph is None:
            return
        new_hosts = sorted({r.host for r in refs} - self._hosts.keys())
        if new_hosts:
            for row in self.graph.read(HOSTS_SEEN, {"hosts": new_hosts}):
                self._hosts[row["host"]] = row["seen"]
        uids: set[str] = set()
        pids: set[tuple[str, int]] = set()
        ppids: set[tuple[str, int, int, bool]] = set()
        for ref in refs:
            if not self._hosts[ref.host]:
                continue  # nothing there before this run: the run cache knows all
            uid, host = ref.uid, ref.host
            if not ref.pid_only:
                if uid in self._canon:
                    known = self._known.get(self.root(uid))
                    if known is None or known.pid is not None or ref.pid is None:
                        continue  # known: no candidates needed
                    # it learns its pid now: a placeholder by that pid may be it (_claim)
                elif uid not in self._asked_uids:
                    uids.add(uid)
            if ref.pid is not None and (host, ref.pid) not in self._asked_pids:
                pids.add((host, ref.pid))
            if ref.ppid is not None and ref.start is not None:
                key = (host, ref.ppid, self._bucket(ref.start), ref.pid is None)
                if key not in self._asked_ppids:
                    ppids.add(key)
        self._asked_uids |= uids
        self._asked_pids |= pids
        self._asked_ppids |= ppids
        if not (uids or pids or ppids):
            return
        tol = self.tolerance
        found = self.graph.read(
            LOOKUP,
            {
                "uids": sorted(uids),
                "pids": [list(k) for k in sorted(pids)],
                "ppids": [
                    [h, pp, (b - 1) * tol, (b + 2) * tol, any_pid]
                    for h, pp, b, any_pid in sorted(ppids)
                ],
            },
        )
        for record in found:
            p = record["p"]
            uid = p["uid"]
            if uid in self._known or self.root(uid) != uid:
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
                aliases=set(p["aliases"]) if p["aliases"] else None,
            )
            self._known[uid] = known
            self._canon[uid] = uid
            for alias in known.aliases or ():
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
            found = [k for k in self._by_pid_of(ref.host, ref.pid) if self._same(ref, k, False)]
            start = ref.start
            if found:
                if start is None:  # the process that had the pid when ref was seen
                    return max(found, key=lambda k: (k.start or 0, k.uid))
                return min(
                    found,
                    key=lambda k: (
                        abs(k.start - start) if k.start is not None else self.tolerance + 1,
                        -uid_rank(k.uid),
                        k.uid,
                    ),
                )
        if ref.ppid is not None and ref.start is not None:
            found = [
                k
                for k in self._by_ppid_near(ref.host, ref.ppid, ref.start)
                if (k.pid is None or ref.pid is None) and self._same(ref, k, True)
            ]
            if len(found) == 1:  # by creator and name alone, only when unambiguous
                return found[0]
        return None

    def _at(self, host: str, pid: int, t: int, name: str | None, logon: str | None) -> Known | None:
        """The process that had `pid` on `host` at time t, as far as anything says."""
        tol = self.tolerance
        alive = [
            k
            for k in self._by_pid_of(host, pid)
            if not (k.end is not None and k.end < t - tol)
            and _agree(name, k.name)
            and _agree(logon, k.logon_id)
        ]
        if not alive:
            return None
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
    def _fold(self, known: Known, ref: _Ref, primary: bool) -> None:
        """Fold a reference's facts into its node (mirrors MERGE_PROCESSES)."""
        known.batch = self._batch
        pid_was, ppid_was, start_was = known.pid, known.ppid, known.start
        if (primary and ref.start is not None) or known.start is None:
            known.start = ref.start
        if ref.end is not None and (known.end is None or ref.end < known.end):
            known.end = ref.end
        if ref.first_seen is not None and (
            known.first_seen is None or ref.first_seen < known.first_seen
        ):
            known.first_seen = ref.first_seen
        if known.pid is None:
            known.pid = ref.pid
        if known.ppid is None:
            known.ppid = ref.ppid
        known.name = known.name or ref.name
        known.logon_id = known.logon_id or ref.logon_id
        if known.pid != pid_was or known.ppid != ppid_was or known.start != start_was:
            self._index(known, pid=known.pid != pid_was)
        if pid_was is None and known.pid is not None and not is_pid_only(known.uid):
            self._claim(known)

    def _claim(self, known: Known) -> None:
        """A node that just learnt its pid takes over a placeholder by host and pid that was
        it all along (a pid-only reference came before anything told the node's pid): renamed
        into it if the node is new in this batch, else absorbed (ABSORB_PLACEHOLDERS)."""
        tol = self.tolerance
        assert known.pid is not None
        waiting = self._placeholders.get((known.host, known.pid))
        if not waiting:
            return
        for k in list(waiting):
            if k.dead or k is known or k.start is not None or not is_pid_only(k.uid):
                continue
            if not (_agree(k.name, known.name) and _agree(k.logon_id, known.logon_id)):
                continue
            if (
                known.start is not None
                and k.first_seen is not None
                and k.first_seen < known.start - tol
            ):
                continue  # alive before this one started: another process
            if (
                k.end is not None
                and known.first_seen is not None
                and known.first_seen > k.end + tol
            ):
                continue  # seen alive after the placeholder's process ended
            k.dead = True
            waiting.remove(k)
            del self._known[k.uid]
            self._canon[k.uid] = known.uid
            if k.written is not None:
                if known.written is None and not any(
                    row["into"] == known.uid for row in self._absorbs
                ):
                    known.written = k.written  # renamed into this node (REKEY_PROCESSES)
                else:
                    self._absorbs.append({"placeholder": k.written, "into": known.uid})
            self._fold(known, replace(_ref_of(k), uid=known.uid), primary=False)
            return

    def _rename(self, known: Known, new: str) -> None:
        old = known.uid
        del self._known[old]
        known.uid = new
        if not is_pid_only(old):
            known.aliases = (known.aliases or set()) | {old}
        self._known[new] = known
        self._canon[old] = new
        self._canon[new] = new
        self._touched.append(known)

    def _new(self, ref: _Ref) -> Known:
        known = Known(uid=ref.uid, host=ref.host)
        self._known[ref.uid] = known
        self._canon[ref.uid] = ref.uid
        self._fold(known, ref, primary=True)
        self._touched.append(known)
        return known

    def _resolve_keyed(self, ref: _Ref) -> str:
        canon = self._canon.get(ref.uid)
        if canon is not None:
            known = self._known[self.root(ref.uid)]
            self._fold(known, ref, primary=ref.full and known.uid == ref.uid)
            return known.uid
        match = self._match(ref)
        if match is None:
            return self._new(ref).uid
        if better(ref.uid, match.uid):
            self._rename(match, ref.uid)
            self._fold(match, ref, primary=ref.full)
        else:
            self._canon[ref.uid] = match.uid
            match.aliases = (match.aliases or set()) | {ref.uid}
            self._fold(match, ref, primary=False)
        return match.uid

    def _resolve_pid_only(self, ref: _Ref, t: int) -> str:
        assert ref.pid is not None
        known = self._at(ref.host, ref.pid, t, ref.name, ref.logon_id)
        if known is None:
            # a placeholder keyed by host and pid, which a later start record claims
            placeholder = self._known.get(ref.uid)
            known = placeholder if placeholder is not None else self._new(ref)
        point = replace(ref, first_seen=t, end=ref.end if ref.end == t else None)
        self._fold(known, point, primary=False)
        return known.uid

    # -- a batch ---------------------------------------------------------------------------
    def resolve(self, folded: Folded) -> Folded:
        """The batch with every process reference resolved, duplicates folded together, and
        the renames and absorptions it needs first."""
        rows = folded.rows("processes")
        if not rows:
            return self.accounts.resolve(folded)
        self._batch += 1
        if len(self._known) > self.max_known:
            self._forget()
        refs = [_ref(row) for row in rows]
        self._learn(refs)
        # start records first (earliest first), then mentions: a mention then finds the node
        # its start made, whatever order the batch has them in
        keyed = sorted(
            (r for r in refs if not r.pid_only),
            key=lambda r: (not r.full, r.start is None, r.start or 0, -uid_rank(r.uid), r.uid),
        )
        changed = False
        for ref in keyed:
            changed |= self._resolve_keyed(ref) != ref.uid
        # A reference by host and pid alone, at each time the batch has it (every mention
        # time is in the row's `seen`): pids are reused, so two times may be two processes.
        at: dict[str, dict[int, str]] = {}
        for ref, row in zip(refs, rows, strict=True):
            if ref.pid_only and ref.pid is not None:
                at[ref.uid] = {t: self._resolve_pid_only(ref, t) for t in row["seen"]}
        # a key that a later reference renamed (or a placeholder absorbed) needs rewriting too
        changed = changed or any(self.root(r.uid) != r.uid for r in keyed)
        renames = self._renames()
        resolved = _rewrite(folded, self, at, renames, self._absorbs, changed or bool(at))
        for known in self._touched:  # the batch will be written under these keys
            known.written = known.uid
        self._touched, self._absorbs = [], []
        return self.accounts.resolve(resolved)

    def _forget(self) -> None:
        """Bound the run cache: forget the processes no batch has referred to for longest,
        down to three quarters of max_known. Only those written two batches ago or earlier
        go (committed: the loader has at most one batch's commit in flight), and their hosts
        are read from the graph again from now on, so forgetting costs reads, not nodes."""
        ready = [k for k in self._known.values() if k.batch <= self._batch - 2]
        ready.sort(key=lambda k: k.batch)
        gone = ready[: len(self._known) - self.max_known * 3 // 4]
        if not gone:
            return
        for k in gone:
            k.dead = True
            del self._known[k.uid]
            self._hosts[k.host] = True
        self._canon = {a: u for a, u in self._canon.items() if self.root(u) in self._known}
        indexes: tuple[dict[Any, list[Known]], ...] = (
            self._by_pid,
            self._by_ppid,
            self._placeholders,
        )
        for index in indexes:
            for key in [key for key, found in index.items() if all(k.dead for k in found)]:
                del index[key]
        # what was asked of the graph before may have been answered by the cache since
        self._asked_uids.clear()
        self._asked_pids.clear()
        self._asked_ppids.clear()

    def _renames(self) -> list[dict[str, Any]]:
        """REKEY_PROCESSES rows: nodes written under a key this batch replaced."""
        renamed = {k.uid: k for k in self._touched if k.written is not None and k.written != k.uid}
        return [
            {
                "old": k.written,
                "new": k.uid,
                "host": k.host,
                "alias": [] if is_pid_only(k.written or "") else [k.written],
                "guid": k.uid[2:] if k.uid.startswith("g:") else None,
            }
            for _, k in sorted(renamed.items())
        ]


# -- rewriting the rows ------------------------------------------------------------------------
def _rewrite(
    folded: Folded,
    resolver: ProcessResolver,
    at: dict[str, dict[int, str]],
    renames: list[dict[str, Any]],
    absorbs: list[dict[str, Any]],
    changed: bool,
) -> Folded:
    """The batch's statements under the resolved keys (as they were when nothing changed),
    with the renames before the processes and the absorptions right after them."""

    def one(uid: str, t: int) -> str:
        if uid in at:
            return at[uid][t]
        return resolver.root(uid)

    statements: list[tuple[str, list[dict[str, Any]]]] = []
    for name, rows in folded.statements:
        if name == "processes":
            if renames:
                statements.append(("rekey", renames))
            statements.append(("processes", _processes(rows, resolver, at) if changed else rows))
            if absorbs:
                statements.append(("absorb", absorbs))
            continue
        if changed:
            if name == "spawned":
                rows = _spawned(rows, one)
            elif name == "executed":
                rows = _dedupe(
                    [{**r, "uid": resolver.root(r["uid"])} for r in rows], ("uid", "file")
                )
            elif name in TIMED:
                rows = _timed(rows, resolver, at, name in PROCESS_TARGETS)
            elif name in FIRST_LINKS:
                rows = _first_links(rows, one)
        statements.append((name, rows))
    return Folded(statements, folded.hosts, folded.events, folded.first, folded.last, folded.origin)


def _first_links(rows: list[dict[str, Any]], one: Any) -> list[dict[str, Any]]:
    """RAN_AS / IN_LOGON rows under the resolved process keys, the earliest per edge."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        uid = one(row["uid"], row["time"])
        current = out.get((uid, row["target"]))
        if current is None or row["time"] < current["time"]:
            out[(uid, row["target"])] = {**row, "uid": uid}
    return [out[k] for k in sorted(out)]


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
    fill in. A row split by time keeps its facts_before on every piece (a bound, not exact)."""
    parts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        uid = row["uid"]
        if uid in at:
            by_node: dict[str, list[int]] = defaultdict(list)
            for t, node in at[uid].items():
                by_node[node].append(t)
            bare = {k: v for k, v in row.items() if k != "seen"}
            for node, times in by_node.items():
                end = row.get("end")
                named_at = row.get("named_at")
                here = named_at is not None and named_at in times
                parts[node].append(
                    {
                        **bare,
                        "first_seen": min(times),
                        "end": end if end is not None and end in times else None,
                        "named": row.get("named") if here else None,
                        "named_at": named_at if here else None,
                    }
                )
        else:
            parts[resolver.root(uid)].append(row)
    out = []
    for node in sorted(parts):
        group = parts[node]
        if len(group) == 1 and group[0]["uid"] == node:  # the common case: nothing to fold
            row = group[0]
            if aliases := resolver.aliases(node):
                row["aliases"] = aliases  # (missing `primary` reads as `full`)
            out.append(row)
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
        start_times = [r["start"] for r in starts if r.get("start") is not None]
        mention_starts = [r["start"] for r in mentions if r.get("start") is not None]
        ends = [r["end"] for r in group if r.get("end") is not None]
        ppids = [r["ppid"] for r in starts if r.get("ppid") is not None]
        sources: list[str] = []
        for r in starts + mentions:
            sources += [s for s in r["sources"] if s not in sources]
        named = min(((r["named_at"], r["named"]) for r in group if r.get("named")), default=None)
        facts_before = max((r["facts_before"] for r in group if "facts_before" in r), default=None)
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
                "first_seen": min(r.get("first_seen", r.get("start", 0)) for r in group),
                "sources": sources[:MAX_SOURCES],
                "named_at": named[0] if named else None,
                "named": named[1] if named else None,
                "aliases": resolver.aliases(node),
                **({} if facts_before is None else {"facts_before": facts_before}),
            }
        )
    return out


def _timed(
    rows: list[dict[str, Any]],
    resolver: ProcessResolver,
    at: dict[str, dict[int, str]],
    target_process: bool = False,
) -> list[dict[str, Any]]:
    """Timed edge rows under the resolved keys: the start's (`uid`), and for a Process ->
    Process edge (ACCESSED, INJECTED) the target's too; a reference by host and pid alone
    splits a row by the process each of its times names."""
    out: dict[tuple[str, str], dict[str, Any]] = {}

    def end(target: str, t: int) -> str:
        if not target_process:
            return target
        return at[target][t] if target in at else resolver.root(target)

    for row in rows:
        uid, target = row["uid"], row["target"]
        if uid in at or (target_process and target in at):
            by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
            for t in row["times"]:
                start = at[uid][t] if uid in at else resolver.root(uid)
                by_pair[(start, end(target, t))].append(t)
            pieces = [
                {**row, "uid": a, "target": b, "times": times} for (a, b), times in by_pair.items()
            ]
        else:
            node = resolver.root(uid)
            goal = resolver.root(target) if target_process else target
            pieces = [
                row if node == uid and goal == target else {**row, "uid": node, "target": goal}
            ]
        for piece in pieces:
            key = (piece["uid"], piece["target"])
            current = out.get(key)
            out[key] = piece if current is None else merge_timed(current, piece)
    return [out[k] for k in sorted(out)]
