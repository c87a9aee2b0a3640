"""The same correlations as DuckDB SQL over the raw normalised events (one `events` table, the
columns of `queries.reference.events_frame`). For the benchmark: what a columnar SQL engine
needs to express the rules, and how fast it runs them. Window joins, the new-terms history and
ancestry (a recursive CTE) are all here; tunables travel as `$parameters`.

Not the oracle (that is `queries.reference`); the benchmark prints both counts side by side.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
from duckdb.func import FunctionNullHandling
from provgraph.queries.rule import Rule

# processes as the graph sees them: a start event fills a process, other mentions fill gaps
PROCESSES = """
CREATE OR REPLACE TEMP TABLE procs AS
WITH mentions AS (
    SELECT uid, host, name, command_line, "user", seq,
           kind = 'process_start' AS is_full, CASE WHEN kind = 'process_start'
           THEN coalesce(start_time, ts) END AS start_time, original_name
    FROM events
    UNION ALL
    SELECT parent_uid, host, parent_name, parent_command_line, NULL, seq, false, NULL::TIMESTAMPTZ,
           NULL
    FROM events WHERE kind = 'process_start' AND parent_uid IS NOT NULL
)
SELECT uid, arg_min(host, seq) AS host,
       arg_min(original_name, CASE WHEN is_full AND original_name IS NOT NULL THEN seq END)
           AS original_name,
       coalesce(arg_min(name, CASE WHEN is_full AND name IS NOT NULL THEN seq END),
                arg_min(name, CASE WHEN name IS NOT NULL THEN seq END)) AS name,
       coalesce(arg_min(command_line, CASE WHEN is_full AND command_line IS NOT NULL THEN seq END),
                arg_min(command_line, CASE WHEN command_line IS NOT NULL THEN seq END))
           AS command_line,
       min(start_time) AS start_time
FROM mentions GROUP BY uid;
CREATE OR REPLACE TEMP TABLE spawns AS
SELECT parent_uid, uid AS child_uid, min(ts) AS time
FROM events WHERE kind = 'process_start' AND parent_uid IS NOT NULL GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE ancestry AS
WITH RECURSIVE up(uid, ancestor, depth) AS (
    SELECT child_uid, parent_uid, 1 FROM spawns
    UNION
    SELECT up.uid, s.parent_uid, up.depth + 1 FROM up JOIN spawns s ON s.child_uid = up.ancestor
    WHERE up.depth < 64
)
SELECT uid, ancestor, min(depth) AS depth FROM up GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE conns AS
SELECT e.*, e.remote_ip || '|' || coalesce(CAST(e.remote_port AS VARCHAR), '') || '|'
       || coalesce(e.protocol, '') AS connection_key, p.name AS proc_name,
       p.start_time AS proc_start
FROM events e JOIN procs p USING (uid)
WHERE e.kind = 'network_connect' AND e.remote_ip IS NOT NULL
  AND coalesce(e.direction, 'outbound') <> 'inbound';  -- CONNECTED_TO is outbound
CREATE OR REPLACE TEMP TABLE writes AS
SELECT e.*, e.host || '|' || lower(e.file_path) AS file_key,
       lower(regexp_extract(replace(e.file_path, '\\', '/'), '[^/]*$')) AS fname,
       p.name AS writer_name
FROM events e JOIN procs p USING (uid)
WHERE e.kind = 'file_write' AND e.file_path IS NOT NULL;
"""

_STEM = "(CASE WHEN {n} LIKE '%.%' THEN regexp_replace({n}, '\\.[^.]*$', '') ELSE {n} END)"


def _name_or_stem(column: str, param: str) -> str:
    return (
        f"(list_contains(${param}, {column}) OR list_contains(${param}, {_STEM.format(n=column)}))"
    )


SQL: dict[str, str] = {
    "build_process_compromise": """
WITH w AS (
    SELECT *, bool_or(file_op IN (SELECT unnest($write_ops))) OVER edge AS op_ok,
           count(access_mask) OVER edge AS masks,
           bool_or(list_contains($access_masks, access_mask)) OVER edge AS mask_ok
    FROM writes
    WHERE list_contains($source_extensions, lower(regexp_extract(file_path, '\\.[^.\\\\/]*$')))
      AND NOT list_contains($allow_list, coalesce(writer_name, ''))
    WINDOW edge AS (PARTITION BY uid, file_key)
)
SELECT b.host, b.uid AS build_uid, b.start_time AS first_seen, max(w.ts) AS last_seen,
       count(DISTINCT w.file_key) AS files
FROM procs b JOIN w ON w.host = b.host
     AND w.ts BETWEEN b.start_time AND b.start_time + to_seconds($window_seconds)
WHERE list_contains($build_processes, b.name) AND w.op_ok AND (w.masks = 0 OR w.mask_ok)
GROUP BY ALL
HAVING b.start_time BETWEEN $since AND $until OR bool_or(w.ts BETWEEN $since AND $until)
""",
    "msbuild_script_parent": """
WITH s AS (
    SELECT s.time, c.uid, c.host, coalesce(c.command_line, '') AS command_line,
           coalesce(p.name, '') AS parent_name, s.parent_uid
    FROM spawns s JOIN procs c ON c.uid = s.child_uid JOIN procs p ON p.uid = s.parent_uid
    WHERE (list_contains($msbuild_names, c.name)
           OR list_contains($msbuild_names, c.original_name))
      AND list_contains($script_parents, p.name)
)
SELECT a.host, a.uid AS msbuild_uid, a.parent_uid, a.time AS first_seen, a.time AS last_seen
FROM s a
WHERE a.time BETWEEN $since AND $until AND NOT EXISTS (
    SELECT 1 FROM s b WHERE b.time < a.time AND b.time >= a.time - to_seconds($history_seconds)
      AND (NOT list_contains($new_terms_fields, 'host') OR b.host = a.host)
      AND (NOT list_contains($new_terms_fields, 'parent_name') OR b.parent_name = a.parent_name)
      AND (NOT list_contains($new_terms_fields, 'command_line')
           OR b.command_line = a.command_line))
""",
    "msbuild_network": """
SELECT host, uid AS msbuild_uid, any_value(proc_start) AS first_seen, max(ts) AS last_seen
FROM conns
WHERE list_contains($msbuild_names, proc_name) AND proc_start IS NOT NULL AND ts >= proc_start
  AND NOT is_loopback(remote_ip) AND NOT list_contains($excluded_ips, remote_ip)
GROUP BY ALL
HAVING any_value(proc_start) BETWEEN $since AND $until OR bool_or(ts BETWEEN $since AND $until)
""",
    "script_msbuild_network_chain": """
SELECT c.host, c.uid AS msbuild_uid, arg_min(a.ancestor, a.depth) AS script_uid,
       coalesce(any_value(c.proc_start), min(c.ts)) AS first_seen, max(c.ts) AS last_seen
FROM conns c JOIN ancestry a ON a.uid = c.uid JOIN procs s ON s.uid = a.ancestor
WHERE list_contains($msbuild_names, c.proc_name) AND list_contains($script_hosts, s.name)
  AND NOT is_loopback(c.remote_ip) AND NOT list_contains($excluded_ips, c.remote_ip)
  AND (c.proc_start IS NULL OR c.ts >= c.proc_start)
GROUP BY ALL
HAVING any_value(c.proc_start) BETWEEN $since AND $until OR bool_or(c.ts BETWEEN $since AND $until)
""",
    "dependency_compromise_shell_child": f"""
WITH n AS (
    SELECT *, norm_cmd(command_line, $program_suffixes) AS cmd FROM procs
)
SELECT c.host, arg_min(a.ancestor, a.depth) AS package_manager_uid, c.uid AS process_uid,
       c.start_time AS first_seen, c.start_time AS last_seen
FROM n c JOIN ancestry a ON a.uid = c.uid JOIN n pm ON pm.uid = a.ancestor
WHERE c.start_time BETWEEN $since AND $until
  AND ({_name_or_stem("c.name", "suspicious_children")}
       OR len(list_filter($suspicious_patterns, lambda x: contains(c.cmd, x))) > 0)
  AND ({_name_or_stem("pm.name", "package_managers")}
       OR ({_name_or_stem("pm.name", "package_runtimes")}
           AND (list_contains($package_managers, split_part(pm.cmd, ' ', 1))
                OR len(list_filter($install_markers,
                                   lambda m: contains(pm.cmd || ' ', m))) > 0)))
GROUP BY ALL
""",
    "dependency_compromise_network": f"""
SELECT host, uid AS process_uid, connection_key, min(ts) AS first_seen, max(ts) AS last_seen
FROM conns
WHERE is_public(remote_ip) AND {_name_or_stem("proc_name", "package_managers")}
  AND NOT allowed(remote_hostname, $registry_allow_list)
GROUP BY ALL HAVING bool_or(ts BETWEEN $since AND $until)
""",
    "dependency_compromise_cicd_write": """
WITH q AS (
    SELECT DISTINCT uid, file_key FROM writes
    WHERE (len(list_filter($pipeline_paths,
                           lambda x: contains(replace(lower(file_path), '\\', '/'), x))) > 0
           AND list_contains($pipeline_ops, file_op))
       OR (list_contains($build_file_names, fname) AND list_contains($build_file_ops, file_op))
)
SELECT host, uid AS process_uid, file_key, min(ts) AS first_seen, max(ts) AS last_seen
FROM writes JOIN q USING (uid, file_key)
GROUP BY ALL HAVING bool_or(ts BETWEEN $since AND $until)
""",
    "docker_build_suspicious": f"""
WITH d AS (
    SELECT d.*, lower(coalesce(d.command_line, '')) AS cmd, p.name AS parent_name
    FROM procs d LEFT JOIN spawns s ON s.child_uid = d.uid LEFT JOIN procs p ON p.uid = s.parent_uid
    WHERE list_contains($docker_names, d.name) AND d.start_time BETWEEN $since AND $until
), scored AS (
    SELECT *, $weight_temp
              * (len(list_filter($temp_paths, lambda x: contains(cmd, lower(x)))) > 0)::INT
            + $weight_no_cache * contains(cmd, $no_cache_flag)::INT
            + $weight_external_file
              * regexp_matches(coalesce(command_line, ''), $external_file_regex)::INT
            + $weight_parent * coalesce({_name_or_stem("parent_name", "suspicious_parents")},
                                        false)::INT AS seed_score
    FROM d
    WHERE len(list_filter($build_terms,
              lambda x: regexp_matches(cmd, '(^|[^a-z0-9])' || x || '($|[^a-z0-9])'))) > 0
)
SELECT host, uid AS process_uid, seed_score, start_time AS first_seen, start_time AS last_seen
FROM scored WHERE seed_score >= $min_score
""",
    "dockerfile_temp_write": """
SELECT host, uid AS process_uid, file_key, min(ts) AS first_seen, max(ts) AS last_seen
FROM writes
WHERE (list_contains($dockerfile_names, fname)
       OR len(list_filter($dockerfile_suffixes, lambda x: ends_with(fname, x))) > 0)
  AND len(list_filter($temp_paths, lambda x: contains(lower(file_path), lower(x)))) > 0
GROUP BY ALL HAVING bool_or(ts BETWEEN $since AND $until)
""",
    "dockerd_nonregistry_network": """
SELECT host, uid AS process_uid, connection_key, min(ts) AS first_seen, max(ts) AS last_seen
FROM conns
WHERE list_contains($dockerd_names, proc_name) AND list_contains($remote_ports, remote_port)
  AND is_public(remote_ip) AND NOT allowed(remote_hostname, $registry_allow_list)
GROUP BY ALL HAVING bool_or(ts BETWEEN $since AND $until)
""",
}


def connect(frame: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding `events` and the derived process tables. Process keys are
    resolved to one per real process first, by the pandas reference's transcription of
    graph.identity (joining records across sources is not a SQL window's job)."""
    from provgraph.queries.reference import (
        allowed_host,
        classify_ip,
        normalise_command_line,
        resolve_identities,
    )

    con = duckdb.connect()
    con.create_function("is_public", lambda ip: classify_ip(ip)[0], ["VARCHAR"], "BOOLEAN")
    con.create_function("is_loopback", lambda ip: classify_ip(ip)[1], ["VARCHAR"], "BOOLEAN")
    # the rule's command-line normalisation, the same function as the pandas reference's
    con.create_function(
        "norm_cmd",
        normalise_command_line,
        ["VARCHAR", "VARCHAR[]"],
        "VARCHAR",
        null_handling=FunctionNullHandling.SPECIAL,
    )
    con.create_function(
        "allowed",
        lambda host, allow: allowed_host(host, allow),
        ["VARCHAR", "VARCHAR[]"],
        "BOOLEAN",
        null_handling=FunctionNullHandling.SPECIAL,
    )
    events = resolve_identities(frame)
    for column in ("ts", "start_time"):
        events[column] = pd.to_datetime(events[column], utc=True)
    events["remote_port"] = pd.to_numeric(events["remote_port"]).astype("Int64")
    events["parent_pid"] = pd.to_numeric(events["parent_pid"]).astype("Int64")
    con.register("events_df", events)
    con.execute("CREATE TEMP TABLE events AS SELECT * FROM events_df")
    con.execute(PROCESSES)
    return con


def _lowered(rule: Rule, overrides: dict[str, Any]) -> dict[str, Any]:
    params = rule.params(overrides)
    keep_case = {
        "external_file_regex",
        "write_ops",
        "pipeline_ops",
        "build_file_ops",
        "excluded_ips",
        "new_terms_fields",
    }
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in keep_case:
            out[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = [v.lower() for v in value]
        elif isinstance(value, str):
            out[key] = value.lower()
        else:
            out[key] = value
    return out


def evaluate_duckdb(
    con: duckdb.DuckDBPyConnection, rule: Rule, since: Any, until: Any, **overrides: Any
) -> pd.DataFrame:
    sql = SQL[rule.id]
    params = {k: v for k, v in _lowered(rule, overrides).items() if f"${k}" in sql}
    params.update(since=since, until=until)
    return con.execute(sql, params).df()
