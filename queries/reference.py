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
from provgraph.ingest.model import Event, classify_ip, is_pid_only, parse_process_uid
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
]


def _basename(image: str | None) -> str | None:
    if not image:
        return None
    return image.replace("\\", "/").rsplit("/", 1)[-1].lower()


def events_frame(events: Iterable[Event]) -> pd.DataFrame:
    rows = []
    for seq, e in enumerate(events):
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


def build_model(frame: pd.DataFrame) -> Model:
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
    # writer convention: a start event fills a process fully; anything else only fills gaps
    for row in frame.itertuples(index=False):
        full = row.kind == "process_start"
        extra = {"start_time": row.start_time or row.ts} if full else {}
        note(
            row.uid,
            row.host,
            full,
            name=row.name,
            command_line=row.command_line,
            user=row.user,
            **extra,
        )
        if full and row.parent_uid and not is_pid_only(row.parent_uid):
            note(
                row.parent_uid,
                row.host,
                False,
                name=row.parent_name,
                command_line=row.parent_command_line,
            )
    spawn_rows = []
    started_pids = starts["uid"].map(_started_pid_uid)
    for row in starts.itertuples(index=False):
        if not row.parent_uid:
            continue
        parent = row.parent_uid
        if is_pid_only(parent):
            parent = _resolve_pid(starts, started_pids, row) or parent
            note(parent, row.host, False, name=row.parent_name)
        spawn_rows.append({"parent_uid": parent, "child_uid": row.uid, "time": row.ts})
    spawns = pd.DataFrame(spawn_rows, columns=["parent_uid", "child_uid", "time"])
    spawns = spawns.drop_duplicates(["parent_uid", "child_uid"], keep="first")
    parents: dict[str, list[str]] = {}
    for row in spawns.itertuples(index=False):
        parents.setdefault(row.child_uid, []).append(row.parent_uid)
    table = pd.DataFrame(
        list(procs.values()),
        columns=["uid", "host", "full", "name", "command_line", "user", "start_time"],
    ).set_index("uid", drop=False)
    return Model(frame, table, spawns, parents)


def _started_pid_uid(uid: str) -> str | None:
    """p:host:pid:start -> p:host:pid, the uid a creator known only by host and pid carries."""
    key = parse_process_uid(uid)
    return key.pid_uid if key is not None and key.start is not None else None


def _resolve_pid(starts: pd.DataFrame, started_pids: pd.Series, row: Any) -> str | None:
    """A creator known by host and pid: the latest process with that pid started before."""
    if row.parent_pid is None:
        return None
    candidates = starts.loc[
        (started_pids == row.parent_uid) & (starts.ts <= row.ts) & (starts.uid != row.uid)
    ]
    if candidates.empty:
        return None
    return str(candidates.sort_values("ts").iloc[-1].uid)


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
    return writes


def _connects(model: Model) -> pd.DataFrame:
    conns = model.frame[
        (model.frame.kind == "network_connect") & model.frame.remote_ip.notna()
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
    spawns["parent_name"] = spawns.parent_uid.map(procs["name"])
    spawns = spawns.loc[
        spawns.child_name.isin(_lower(p["msbuild_names"]))
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


def _per_edge(
    frame: pd.DataFrame,
    target: str,
    since: datetime,
    until: datetime,
    extra: Callable[[pd.DataFrame], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    rows = []
    for (uid, key), group in frame.groupby(["uid", target]):
        if not group.ts.map(lambda t: _in(t, since, until)).any():
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
