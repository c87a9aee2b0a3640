"""The correctness oracle: every rule transcribed into plain pandas over the normalised events.

No graph here. Each function reads the seed's logic straight off the events (a DataFrame built
from `ingest.model.Event`s) and returns one row per match with the same identity columns and
times as the rule's Cypher, so tests can assert both find the same matches. Where the graph
necessarily differs from a per-event reading (a process's name is that of its start event,
a connection's host name the first one logged), the same convention is used here and named.

    frame = events_frame(events)
    matches = evaluate_reference(rule, frame, since, until)   # a DataFrame
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from provgraph.core.times import span
from provgraph.graph.schema import MAX_TIMES
from provgraph.ingest.model import Event, classify_ip, is_pid_only, uid_rank
from provgraph.queries.rule import Rule

COLUMNS = [
    "seq",
    "kind",
    "ts",
    "host",
    "uid",
    "image",
    "name",
    "command_line",
    "user",
    "start_time",
    "parent_uid",
    "parent_pid",
    "parent_image",
    "parent_name",
    "parent_command_line",
    "file_path",
    "file_op",
    "access_mask",
    "remote_ip",
    "remote_port",
    "protocol",
    "remote_hostname",
    "pid",
    "logon_id",
    "parent_logon_id",
    "direction",
    "original_name",
]


def _basename(image: str | None) -> str | None:
    if not image:
        return None
    return image.replace("\\", "/").rsplit("/", 1)[-1].lower()


def _original_name(event: Event) -> str | None:
    facts = event.process.image_facts if event.process is not None else None
    if event.kind.value != "process_start" or facts is None or not facts.original_file_name:
        return None
    return facts.original_file_name.lower()


def events_frame(events: Iterable[Event]) -> pd.DataFrame:
    rows = []
    for seq, e in enumerate(events):
        if e.process is None:
            continue  # what no process did is not what the rules read
        parent = e.parent
        rows.append(
            {
                "seq": seq,
                "kind": e.kind.value,
                "ts": e.ts,
                "host": e.host,
                "uid": e.process.uid,
                "image": e.process.image,
                "name": _basename(e.process.image),
                "command_line": e.process.command_line,
                "user": e.process.user,
                "start_time": e.process.start_time,
                "parent_uid": parent.uid if parent else None,
                "parent_pid": parent.pid if parent else None,
                "parent_image": parent.image if parent else None,
                "parent_name": _basename(parent.image) if parent else None,
                "parent_command_line": parent.command_line if parent else None,
                "file_path": e.file_path,
                "file_op": e.file_op.value if e.file_op else None,
                "access_mask": e.access_mask.lower() if e.access_mask else None,
                "remote_ip": e.remote_ip,
                "remote_port": e.remote_port,
                "protocol": e.protocol,
                "remote_hostname": e.remote_hostname,
                "pid": e.process.pid,
                "logon_id": e.process.logon_id,
                "parent_logon_id": parent.logon_id if parent else None,
                "direction": e.direction,
                "original_name": _original_name(e),
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS).astype(object)
    # one "absent" for every column: None (pandas would otherwise mix in NaN)
    return frame.where(frame.notna(), None)


# -- the process model the rules read (one row per process identity) --------------------------
@dataclass
class Model:
    frame: pd.DataFrame
    processes: pd.DataFrame  # uid -> host, name, command_line, user, start_time
    spawns: pd.DataFrame  # parent_uid, child_uid, time
    parents: dict[str, list[str]]  # child uid -> parent uids

    def ancestors(self, uid: str) -> list[tuple[str, int]]:
        """(ancestor uid, depth) nearest first; each ancestor once, at its shortest depth."""
        seen: dict[str, int] = {}
        frontier, depth = [uid], 0
        while frontier:
            depth += 1
            nxt = []
            for child in frontier:
                for parent in self.parents.get(child, []):
                    if parent not in seen and parent != uid:
                        seen[parent] = depth
                        nxt.append(parent)
            frontier = nxt
        return sorted(seen.items(), key=lambda item: item[1])


# -- one node per real process (graph.identity, read off all the events at once) --------------
TOLERANCE = timedelta(seconds=5)


@dataclass
class _Proc:
    uid: str
    host: str
    pid: Any = None
    ppid: Any = None
    start: Any = None
    end: Any = None
    seen: Any = None  # earliest time any record shows it
    name: Any = None
    logon: Any = None


def _agree(a: Any, b: Any) -> bool:
    return a is None or b is None or a == b


def _same_start(a: _Proc, b: _Proc) -> bool:
    """Two start records, one process? (pid, or creator pid + name when a pid is missing)"""
    if a.host != b.host or not (_agree(a.name, b.name) and _agree(a.logon, b.logon)):
        return False
    if uid_rank(a.uid) >= 2 and uid_rank(b.uid) >= 2 and a.uid[:2] == b.uid[:2]:
        return False
    if abs(a.start - b.start) > TOLERANCE:
        return False
    if a.pid is not None and b.pid is not None:
        return bool(a.pid == b.pid)
    return a.ppid is not None and a.ppid == b.ppid and a.name is not None and b.name is not None


def resolve_identities(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with `uid` and `parent_uid` replaced by the key of the one process they name
    (the record's own key kept as `own_uid`): start records on one host whose pids are equal
    and whose starts are within TOLERANCE (or, with a pid missing, whose creator pids and
    names agree, one candidate only) are one process, named by the best key (GUID > entity id
    > host + pid + start, then the smaller key); a process known by key and pid but no start
    is the started one it was alive after; a reference by host and pid alone at time t is the
    latest process with that pid started by t and not ended before it."""
    procs: dict[str, _Proc] = {}

    def proc(uid: str, host: str) -> _Proc:
        return procs.setdefault(uid, _Proc(uid, host))

    for row in frame.itertuples(index=False):
        refs = [(row.uid, row.pid, row.name, row.logon_id)]
        if row.parent_uid:
            refs.append((row.parent_uid, row.parent_pid, row.parent_name, row.parent_logon_id))
        for uid, pid, name, logon in refs:
            if is_pid_only(uid):
                continue
            p = proc(uid, row.host)
            p.pid = p.pid if p.pid is not None else pid
            p.seen = row.ts if p.seen is None else min(p.seen, row.ts)
            if row.kind == "process_start" and uid == row.uid:
                p.start, p.ppid = row.start_time or row.ts, row.parent_pid
                p.name, p.logon = name or p.name, logon or p.logon
            else:
                p.name, p.logon = p.name or name, p.logon or logon
            if row.kind == "process_end" and uid == row.uid:
                p.end = row.ts if p.end is None else min(p.end, row.ts)
    # start records that are one process
    group = {uid: uid for uid in procs}

    def find(uid: str) -> str:
        while group[uid] != uid:
            uid = group[uid]
        return uid

    keys: dict[str, set[str]] = {uid: {uid} for uid in procs}

    def join(a: str, b: str) -> None:
        """One group, unless that would make one process of two GUIDs (or entity ids)."""
        ra, rb = find(a), find(b)
        kinds = [u[:2] for u in keys[ra] | keys[rb] if uid_rank(u) >= 2]
        if ra != rb and len(kinds) == len(set(kinds)):
            group[ra] = rb
            keys[rb] |= keys.pop(ra)

    started = sorted((p for p in procs.values() if p.start is not None), key=lambda p: p.start)
    for i, a in enumerate(started):
        pairs = [b for b in started[:i] if _same_start(a, b)]
        by_pid = [b for b in pairs if a.pid is not None and b.pid is not None]
        nearest = sorted(by_pid, key=lambda b: (abs(a.start - b.start), b.uid))
        for b in nearest[:1] or (pairs if len(pairs) == 1 else []):
            join(a.uid, b.uid)
    # a keyed process with no start record: the latest started one with its pid it was
    # alive after
    for p in procs.values():
        if p.start is not None or p.pid is None:
            continue
        alive = [
            q
            for q in started
            if q.host == p.host
            and q.pid == p.pid
            and q.start - TOLERANCE <= p.seen
            and _agree(p.name, q.name)
            and _agree(p.logon, q.logon)
            and not (q.end is not None and p.seen > q.end + TOLERANCE)
        ]
        if alive:
            join(p.uid, max(alive, key=lambda q: (q.start, q.uid)).uid)
    members: dict[str, list[str]] = {}
    for uid in procs:
        members.setdefault(find(uid), []).append(uid)
    canon = {}
    for uids in members.values():
        best = min(uids, key=lambda u: (-uid_rank(u), u))
        canon.update(dict.fromkeys(uids, best))
    nodes: dict[str, _Proc] = {}
    for uid, p in procs.items():  # a node's facts: its best start record's, then the rest
        node = nodes.setdefault(canon[uid], _Proc(canon[uid], p.host))
        for attr in ("pid", "name", "logon"):
            setattr(
                node,
                attr,
                getattr(node, attr) if getattr(node, attr) is not None else getattr(p, attr),
            )
        if p.start is not None and (node.start is None or uid == canon[uid]):
            node.start = p.start
        if p.end is not None:
            node.end = p.end if node.end is None else min(node.end, p.end)

    def at(uid: str, host: str, pid: Any, t: Any, name: Any, logon: Any) -> str:
        alive = [
            n
            for n in nodes.values()
            if n.host == host
            and n.pid == pid
            and not (n.end is not None and n.end < t - TOLERANCE)
            and _agree(name, n.name)
            and _agree(logon, n.logon)
        ]
        begun = [n for n in alive if n.start is not None and n.start <= t + TOLERANCE]
        if begun:
            return max(begun, key=lambda n: (n.start, n.uid)).uid
        unstarted = [n for n in alive if n.start is None]
        return min(unstarted, key=lambda n: n.uid).uid if unstarted else uid

    out = frame.copy()
    out["own_uid"] = frame.uid
    out["uid"] = [
        at(u, h, p, t, n, lg) if is_pid_only(u) else canon.get(u, u)
        for u, h, p, t, n, lg in zip(
            frame.uid, frame.host, frame.pid, frame.ts, frame.name, frame.logon_id, strict=True
        )
    ]
    out["parent_uid"] = [
        None if u is None else at(u, h, p, t, n, lg) if is_pid_only(u) else canon.get(u, u)
        for u, h, p, t, n, lg in zip(
            frame.parent_uid,
            frame.host,
            frame.parent_pid,
            frame.ts,
            frame.parent_name,
            frame.parent_logon_id,
            strict=True,
        )
    ]
    return out


def build_model(frame: pd.DataFrame) -> Model:
    frame = resolve_identities(frame)
    procs: dict[str, dict[str, Any]] = {}

    def note(uid: str, host: str, full: bool, **props: Any) -> None:
        props = {k: v for k, v in props.items() if v is not None and v == v}
        current = procs.get(uid)
        if current is None:
            procs[uid] = {"uid": uid, "host": host, "full": full, **props}
        elif full and not current["full"]:
            procs[uid] = {**current, **props, "full": True}
        else:
            for key, value in props.items():
                current.setdefault(key, value)

    starts = frame[frame.kind == "process_start"]
    # writer convention: the node's own start record fills it, then its other start records,
    # then everything else only fills gaps
    own = starts.own_uid == starts.uid
    for row in pd.concat([starts[own], starts[~own]]).itertuples(index=False):
        note(
            row.uid,
            row.host,
            True,
            name=row.name,
            command_line=row.command_line,
            user=row.user,
            start_time=row.start_time or row.ts,
            original_name=row.original_name,
        )
    for row in frame.itertuples(index=False):
        note(row.uid, row.host, False, name=row.name, command_line=row.command_line, user=row.user)
        if row.kind == "process_start" and row.parent_uid:
            note(
                row.parent_uid,
                row.host,
                False,
                name=row.parent_name,
                command_line=row.parent_command_line,
            )
    spawn_rows = [
        {"parent_uid": row.parent_uid, "child_uid": row.uid, "time": row.ts}
        for row in starts.itertuples(index=False)
        if row.parent_uid and row.parent_uid != row.uid
    ]
    spawns = pd.DataFrame(spawn_rows, columns=["parent_uid", "child_uid", "time"])
    # two records of one spawn are one edge, at the earliest time
    spawns = spawns.sort_values("time", kind="stable").drop_duplicates(
        ["parent_uid", "child_uid"], keep="first"
    )
    parents: dict[str, list[str]] = {}
    for row in spawns.itertuples(index=False):
        parents.setdefault(row.child_uid, []).append(row.parent_uid)
    table = pd.DataFrame(
        list(procs.values()),
        columns=[
            "uid",
            "host",
            "full",
            "name",
            "command_line",
            "user",
            "start_time",
            "original_name",
        ],
    ).set_index("uid", drop=False)
    return Model(frame, table, spawns, parents)


# -- helpers shared by the transcriptions ------------------------------------------------------
def _lower(values: Iterable[str]) -> set[str]:
    return {v.lower() for v in values}


def name_or_stem(name: Any, names: set[str]) -> bool:
    """KQL has_any on a file name, as the rules read it: the name, or the name without its
    last extension, is listed."""
    if not isinstance(name, str) or not name:
        return False
    return name in names or ("." in name and name.rsplit(".", 1)[0] in names)


def allowed_host(hostname: Any, allow: Iterable[str]) -> bool:
    host = hostname.lower() if isinstance(hostname, str) else ""
    for entry in _lower(allow):
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry or host.endswith("." + entry):
            return True
    return False


def _in(ts: Any, since: datetime, until: datetime) -> bool:
    return ts is not None and since <= ts <= until


def _file_key(host: str, path: str) -> str:
    return f"{host}|{path.lower()}"


def _ext(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return "." + name.rsplit(".", 1)[1] if "." in name.strip(".") else ""


def _writes(model: Model) -> pd.DataFrame:
    writes = model.frame[(model.frame.kind == "file_write") & model.frame.file_path.notna()].copy()
    writes["file_key"] = [
        _file_key(h, p) for h, p in zip(writes.host, writes.file_path, strict=True)
    ]
    first_path = writes.groupby("file_key").file_path.first()
    writes["path"] = writes.file_key.map(first_path).astype(object)
    writes["ext"] = writes.file_path.map(_ext).astype(object)
    writes["fname"] = writes.file_path.map(_basename).astype(object)
    writes["writer_name"] = writes.uid.map(model.processes["name"])
    writes["writer_user"] = writes.uid.map(model.processes["user"])
    writes["retained"] = _retained(writes, "file_key")
    return writes


def _retained(events: pd.DataFrame, target: str) -> pd.Series:
    """Whether each event's time is one its edge's `times` keeps: the newest MAX_TIMES
    distinct times of that (process, target) pair."""
    if events.empty:
        return pd.Series([], dtype=bool, index=events.index)
    stamps = pd.to_datetime(events.ts, utc=True)
    ranks = stamps.groupby([events.uid, events[target]]).rank(method="dense", ascending=False)
    return ranks <= MAX_TIMES


def _connects(model: Model) -> pd.DataFrame:
    """Outbound connections (CONNECTED_TO): a record that does not say is outbound, as its
    own process reached out; an accepted (inbound) one is the graph's ACCEPTED."""
    frame = model.frame
    conns = frame[
        (frame.kind == "network_connect")
        & frame.remote_ip.notna()
        & (frame.direction.fillna("outbound") != "inbound")
    ].copy()
    conns["connection_key"] = [
        f"{ip}|{'' if port is None or port != port else int(port)}|{proto or ''}"
        for ip, port, proto in zip(conns.remote_ip, conns.remote_port, conns.protocol, strict=True)
    ]
    first_name = (
        conns.dropna(subset=["remote_hostname"]).groupby("connection_key").remote_hostname.first()
    )
    conns["hostname"] = conns.connection_key.map(first_name)
    flags = conns.remote_ip.map(classify_ip)
    conns["is_public"] = flags.map(lambda f: f[0])
    conns["is_loopback"] = flags.map(lambda f: f[1])
    conns["proc_name"] = conns.uid.map(model.processes["name"])
    conns["start_time"] = conns.uid.map(model.processes["start_time"])
    conns["retained"] = _retained(conns, "connection_key")
    return conns


def _result(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


# -- the rules ---------------------------------------------------------------------------------
def build_process_compromise(
    model: Model, p: dict[str, Any], since: datetime, until: datetime
) -> pd.DataFrame:
    window = timedelta(seconds=p["window_seconds"])
    procs = model.processes
    builds = procs.loc[procs.name.isin(_lower(p["build_processes"])) & procs.start_time.notna()]
    writes = _writes(model)
    masks, allow = _lower(p["access_masks"]), _lower(p["allow_list"])
    writes = writes.loc[
        writes.ext.isin(_lower(p["source_extensions"])) & ~writes.writer_name.fillna("").isin(allow)
    ]
    # Graph convention: a WROTE edge (one process, one file) keeps its operations and masks as
    # sets beside its times, so qualification is per edge and every time of a qualifying edge
    # counts (a delete after a create shows in last_seen). The seed itself reads per event.
    edges = writes.groupby(["uid", "file_key"]).agg(
        ops=("file_op", lambda ops: set(ops)), masks=("access_mask", lambda m: set(m.dropna()))
    )
    good = edges[
        edges.ops.map(lambda ops: bool(ops & set(p["write_ops"])))
        & edges.masks.map(lambda m: not m or bool(m & masks))
    ].index
    writes = (
        writes.set_index(["uid", "file_key"])
        .loc[lambda frame: frame.index.isin(good)]
        .reset_index()
    )
    writes = writes.loc[writes.retained]  # the window reads the edge's times
    rows = []
    for build in builds.itertuples(index=False):
        start = build.start_time
        hits = writes.loc[
            (writes.host == build.host) & (writes.ts >= start) & (writes.ts <= start + window)
        ]
        if hits.empty:
            continue
        if not (_in(start, since, until) or hits.ts.map(lambda t: _in(t, since, until)).any()):
            continue
        rows.append(
            {
                "host": build.host,
                "build_uid": build.uid,
                "first_seen": start,
                "last_seen": hits.ts.max(),
                "file_keys": sorted(set(hits.file_key)),
                "editor_uids": sorted(set(hits.uid)),
            }
        )
    return _result(
        rows, ["host", "build_uid", "first_seen", "last_seen", "file_keys", "editor_uids"]
    )


def _script_spawns(model: Model, p: dict[str, Any]) -> pd.DataFrame:
    procs = model.processes
    spawns = model.spawns.copy()
    spawns["child_name"] = spawns.child_uid.map(procs["name"])
    spawns["child_original"] = spawns.child_uid.map(procs["original_name"])
    spawns["parent_name"] = spawns.parent_uid.map(procs["name"])
    msbuild = _lower(p["msbuild_names"])
    spawns = spawns.loc[
        (spawns.child_name.isin(msbuild) | spawns.child_original.isin(msbuild))
        & spawns.parent_name.isin(_lower(p["script_parents"]))
    ].copy()
    terms = {"host": procs["host"], "user": procs["user"], "command_line": procs["command_line"]}
    for field_name, column in terms.items():
        spawns[field_name] = spawns.child_uid.map(column).astype(object).fillna("")
    spawns["parent_name"] = spawns.parent_name.fillna("")
    return spawns


def msbuild_script_parent(
    model: Model, p: dict[str, Any], since: datetime, until: datetime
) -> pd.DataFrame:
    """Elastic new_terms: the spawn's new-terms values unseen in the history window before it."""
    history = timedelta(seconds=p["history_seconds"])
    spawns = _script_spawns(model, p)
    fields = list(p["new_terms_fields"])
    rows = []
    for spawn in spawns.itertuples(index=False):
        if not _in(spawn.time, since, until):
            continue
        earlier = spawns.loc[(spawns.time < spawn.time) & (spawns.time >= spawn.time - history)]
        for name in fields:
            earlier = earlier.loc[earlier[name] == getattr(spawn, name)]
        if earlier.empty:
            rows.append(
                {
                    "host": spawn.host,
                    "msbuild_uid": spawn.child_uid,
                    "parent_uid": spawn.parent_uid,
                    "first_seen": spawn.time,
                    "last_seen": spawn.time,
                }
            )
    return _result(rows, ["host", "msbuild_uid", "parent_uid", "first_seen", "last_seen"])


def msbuild_network(
    model: Model, p: dict[str, Any], since: datetime, until: datetime
) -> pd.DataFrame:
    conns = _connects(model)
    conns = conns.loc[
        conns.proc_name.isin(_lower(p["msbuild_names"]))
        & conns.start_time.notna()
        & ~conns.is_loopback
        & ~conns.remote_ip.isin(p["excluded_ips"])
        & conns.retained
    ]
    conns = conns.loc[conns.ts >= conns.start_time]
    rows = []
    for uid, group in conns.groupby("uid"):
        start = group.start_time.iloc[0]
        if not (_in(start, since, until) or group.ts.map(lambda t: _in(t, since, until)).any()):
            continue
        rows.append(
            {
                "host": group.host.iloc[0],
                "msbuild_uid": uid,
                "first_seen": start,
                "last_seen": group.ts.max(),
                "connection_keys": sorted(set(group.connection_key)),
            }
        )
    return _result(rows, ["host", "msbuild_uid", "first_seen", "last_seen", "connection_keys"])


def script_msbuild_network_chain(
    model: Model, p: dict[str, Any], since: datetime, until: datetime
) -> pd.DataFrame:
    conns = _connects(model)
    conns = conns.loc[
        conns.proc_name.isin(_lower(p["msbuild_names"]))
        & ~conns.is_loopback
        & ~conns.remote_ip.isin(p["excluded_ips"])
        & conns.retained
    ]
    conns = conns.loc[conns.start_time.isna() | (conns.ts >= conns.start_time)]
    scripts = _lower(p["script_hosts"])
    names = model.processes["name"]
    rows = []
    for uid, group in conns.groupby("uid"):
        start = group.start_time.iloc[0]
        start = None if start is None or start != start else start
        if not (_in(start, since, until) or group.ts.map(lambda t: _in(t, since, until)).any()):
            continue
        above = [(a, d) for a, d in model.ancestors(uid) if names.get(a) in scripts]
        if not above:
            continue
        rows.append(
            {
                "host": group.host.iloc[0],
                "msbuild_uid": uid,
                "script_uid": above[0][0],
                "script_depth": above[0][1],
                "first_seen": start or group.ts.min(),
                "last_seen": group.ts.max(),
                "connection_keys": sorted(set(group.connection_key)),
            }
        )
    return _result(
        rows,
        [
            "host",
            "msbuild_uid",
            "script_uid",
            "script_depth",
            "first_seen",
            "last_seen",
            "connection_keys",
        ],
    )


def normalise_command_line(command_line: Any, suffixes: Iterable[str]) -> str:
    """A command line as dependency_compromise_shell_child reads it: lower-cased, the program
    named by its file name without the first of `suffixes` it ends with (a leading quoted path
    honoured), the arguments' double quotes dropped and runs of spaces made one.
    `"C:\\Python311\\python.exe"  -c "x"` -> `python -c x`."""
    raw = command_line.lower() if isinstance(command_line, str) else ""
    quoted = raw.startswith('"')
    exe = raw[1:].split('"')[0] if quoted else raw.split(" ")[0]
    rest = raw[len(exe) + (2 if quoted else 0) :]
    program = exe.replace("/", "\\").split("\\")[-1]
    for suffix in suffixes:
        if program.endswith(suffix.lower()):
            program = program[: -len(suffix)]
            break
    return program + "".join(" " + t for t in rest.replace('"', "").split(" ") if t)


def installing(name: Any, command_line: Any, p: dict[str, Any]) -> bool:
    """Is this process a package manager at work? Package managers always; runtimes only while
    their command line runs a package manager or holds an install marker."""
    if name_or_stem(name, _lower(p["package_managers"])):
        return True
    if not name_or_stem(name, _lower(p["package_runtimes"])):
        return False
    cmd = normalise_command_line(command_line, p["program_suffixes"]) + " "
    program = cmd.split(" ", 1)[0]
    return program in _lower(p["package_managers"]) or any(
        m.lower() in cmd for m in p["install_markers"]
    )


def dependency_compromise_shell_child(
    model: Model, p: dict[str, Any], since: datetime, until: datetime
) -> pd.DataFrame:
    children = _lower(p["suspicious_children"])
    patterns = [x.lower() for x in p["suspicious_patterns"]]
    procs = model.processes
    rows = []
    for proc in procs[procs.start_time.notna()].itertuples(index=False):
        if not _in(proc.start_time, since, until):
            continue
        cmd = normalise_command_line(proc.command_line, p["program_suffixes"])
        if not (name_or_stem(proc.name, children) or any(x in cmd for x in patterns)):
            continue
        above = [
            (a, d)
            for a, d in model.ancestors(proc.uid)
            if installing(procs["name"].get(a), procs["command_line"].get(a), p)
        ]
        if above:
            rows.append(
                {
                    "host": proc.host,
                    "package_manager_uid": above[0][0],
                    "process_uid": proc.uid,
                    "depth": above[0][1],
                    "first_seen": proc.start_time,
                    "last_seen": proc.start_time,
                }
            )
    return _result(
        rows, ["host", "package_manager_uid", "process_uid", "depth", "first_seen", "last_seen"]
    )


HOUR = timedelta(hours=1)


def edge_active(times: list[datetime], since: datetime, until: datetime) -> bool:
    """Did a timed edge with these event times have one in [since, until], as the graph can
    tell? Exactly over the newest MAX_TIMES distinct times it keeps; before them, to the hour
    (a UTC hour with an event, overlapping the window, counts; see graph.schema)."""
    distinct = sorted(set(times))
    kept = distinct[-MAX_TIMES:]
    if any(_in(t, since, until) for t in kept):
        return True
    if len(distinct) <= MAX_TIMES or since >= kept[0]:
        return False
    hours = {t.replace(minute=0, second=0, microsecond=0) for t in distinct}
    return any(h < kept[0] and h <= until and h + HOUR > since for h in hours)


def _per_edge(
    frame: pd.DataFrame,
    target: str,
    since: datetime,
    until: datetime,
    extra: Callable[[pd.DataFrame], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    rows = []
    for (uid, key), group in frame.groupby(["uid", target]):
        if not edge_active(list(group.ts), since, until):
            continue
        row = {
            "process_uid": uid,
            target: key,
            "first_seen": group.ts.min(),
            "last_seen": group.ts.max(),
            "host": group.host.iloc[0],
        }
        rows.append({**row, **(extra(group) if extra else {})})
    return rows


def dependency_compromise_network(
    model: Model, p: dict[str, Any], since: datetime, until: datetime
) -> pd.DataFrame:
    managers = _lower(p["package_managers"])
    conns = _connects(model)
    conns = conns.loc[
        conns.is_public
        & conns.proc_name.map(lambda n: name_or_stem(n, managers))
        & ~conns.hostname.map(lambda h: allowed_host(h, p["registry_allow_list"]))
    ]
    return _result(
        _per_edge(conns, "connection_key", since, until),
        ["host", "process_uid", "connection_key", "first_seen", "last_seen"],
    )


def dependency_compromise_cicd_write(
    model: Model, p: dict[str, Any], since: datetime, until: datetime
) -> pd.DataFrame:
    writes = _writes(model)
    path = writes.path.str.lower().str.replace("\\", "/", regex=False)
    pipeline = path.map(lambda x: any(q.lower() in x for q in p["pipeline_paths"]))
    build = writes.fname.isin(_lower(p["build_file_names"]))
    # A or (B and C), then the ActionType filter: per event, as the KQL reads
    keep = (pipeline & writes.file_op.isin(p["pipeline_ops"])) | (
        build & writes.file_op.isin(p["build_file_ops"])
    )
    qualifying = writes.loc[keep.astype(bool)][["uid", "file_key"]].drop_duplicates()
    # times come from every write of a qualifying (process, file) pair, as the edge holds them
    edges = writes.merge(qualifying, on=["uid", "file_key"])
    return _result(
        _per_edge(edges, "file_key", since, until),
        ["host", "process_uid", "file_key", "first_seen", "last_seen"],
    )


def docker_build_suspicious(
    model: Model, p: dict[str, Any], since: datetime, until: datetime
) -> pd.DataFrame:
    procs = model.processes
    docker = procs.loc[procs.name.isin(_lower(p["docker_names"])) & procs.start_time.notna()]
    parents = model.spawns.drop_duplicates("child_uid").set_index("child_uid").parent_uid
    suspicious_parents = _lower(p["suspicious_parents"])
    rows = []
    for proc in docker.itertuples(index=False):
        if not _in(proc.start_time, since, until):
            continue
        raw = proc.command_line if isinstance(proc.command_line, str) else ""
        cmd = raw.lower()
        if not any(
            re.search(rf"(^|[^a-z0-9]){re.escape(t.lower())}($|[^a-z0-9])", cmd, re.S)
            for t in p["build_terms"]
        ):
            continue
        parent = parents.get(proc.uid)
        parent_name = procs["name"].get(parent) if parent is not None else None
        score = (
            p["weight_temp"] * any(t.lower() in cmd for t in p["temp_paths"])
            + p["weight_no_cache"] * (p["no_cache_flag"].lower() in cmd)
            + p["weight_external_file"] * bool(re.search(p["external_file_regex"], raw))
            + p["weight_parent"] * name_or_stem(parent_name, suspicious_parents)
        )
        if score >= p["min_score"]:
            rows.append(
                {
                    "host": proc.host,
                    "process_uid": proc.uid,
                    "seed_score": score,
                    "risk_score": min(100, score * p["risk_multiplier"]),
                    "first_seen": proc.start_time,
                    "last_seen": proc.start_time,
                }
            )
    return _result(
        rows, ["host", "process_uid", "seed_score", "risk_score", "first_seen", "last_seen"]
    )


def dockerfile_temp_write(
    model: Model, p: dict[str, Any], since: datetime, until: datetime
) -> pd.DataFrame:
    writes = _writes(model)
    names = _lower(p["dockerfile_names"])
    suffixes = tuple(_lower(p["dockerfile_suffixes"]))
    is_dockerfile = writes.fname.isin(names) | writes.fname.map(
        lambda n: isinstance(n, str) and n.endswith(suffixes)
    )
    in_temp = writes.path.str.lower().map(lambda x: any(t.lower() in x for t in p["temp_paths"]))
    hits = writes.loc[(is_dockerfile & in_temp).astype(bool)]
    return _result(
        _per_edge(hits, "file_key", since, until),
        ["host", "process_uid", "file_key", "first_seen", "last_seen"],
    )


def dockerd_nonregistry_network(
    model: Model, p: dict[str, Any], since: datetime, until: datetime
) -> pd.DataFrame:
    conns = _connects(model)
    conns = conns.loc[
        conns.proc_name.isin(_lower(p["dockerd_names"]))
        & conns.remote_port.isin(p["remote_ports"])
        & conns.is_public
        & ~conns.hostname.map(lambda h: allowed_host(h, p["registry_allow_list"]))
    ]
    return _result(
        _per_edge(conns, "connection_key", since, until),
        ["host", "process_uid", "connection_key", "first_seen", "last_seen"],
    )


REFERENCES: dict[str, Callable[[Model, dict[str, Any], datetime, datetime], pd.DataFrame]] = {
    "build_process_compromise": build_process_compromise,
    "msbuild_script_parent": msbuild_script_parent,
    "msbuild_network": msbuild_network,
    "script_msbuild_network_chain": script_msbuild_network_chain,
    "dependency_compromise_shell_child": dependency_compromise_shell_child,
    "dependency_compromise_network": dependency_compromise_network,
    "dependency_compromise_cicd_write": dependency_compromise_cicd_write,
    "docker_build_suspicious": docker_build_suspicious,
    "dockerfile_temp_write": dockerfile_temp_write,
    "dockerd_nonregistry_network": dockerd_nonregistry_network,
}


def evaluate_reference(
    rule: Rule,
    model: Model | pd.DataFrame,
    since: datetime | None = None,
    until: datetime | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    if isinstance(model, pd.DataFrame):
        model = build_model(model)
    return REFERENCES[rule.id](model, rule.params(overrides), *span(since, until))
