"""The compiled Cypher of the logsources on graph v2's k1 kinds (registry, loads, process
access, remote threads, pipes, WMI, raw reads, tampering, the other Sysmon file events) and of
the process facts IntegrityLevel and CurrentDirectory: the pattern, the condition's shape, the
parameters, the engine's columns, and the fields that fail with their reason."""

from __future__ import annotations

from typing import Any

import pytest
from provgraph.queries.sigma import CompiledQuery, Unsupported
from provgraph.queries.sigma.mapping import LIST_NOTE, LOGSOURCES, REGISTRY_EVENT_TYPE
from test_sigma_backend import compile_, cond, sel


def _query(detection: dict[str, Any], category: str) -> CompiledQuery:
    compiled = compile_(detection, category)
    assert compiled.logsource == category
    return compiled


# -- registry --------------------------------------------------------------------------------
def test_registry_set_is_one_row_per_value_set() -> None:
    compiled = _query(
        sel(**{"TargetObject|endswith": "\\DisableSR", "Details": "DWORD (0x00000001)"}),
        "registry_set",
    )
    # (the selection's fields in name order: the test writes the rule with sorted keys)
    assert compiled.condition == (
        "toLower(CASE WHEN op = 'set_value' THEN val END) = $p0 AND toLower(rk.path) ENDS WITH $p1"
    )
    assert compiled.params == {"p0": "dword (0x00000001)", "p1": "\\disablesr"}
    query = compiled.query
    assert query.startswith(
        "MATCH (p:Process)-[r:WROTE_REGISTRY]->(rk:RegistryKey)\n"
        "WHERE any(o IN r.ops WHERE o IN ['set_value']) AND r.first_time <= $until"
    )
    assert "UNWIND [o IN r.ops WHERE o IN ['set_value']] AS op\n" in query
    assert (
        "UNWIND CASE op WHEN 'set_value' THEN CASE WHEN size(coalesce(r.details, [])) = 0"
        " THEN [null] ELSE r.details END" in query
    )
    assert "WITH p, r, rk, op, val\nWHERE true\n  AND (" in query
    assert "rk.key AS registry_key" in query and "rk.path AS target_object" in query
    assert "MATCH (h:Host {name: p.host})" in query  # the product test, on the actor's host
    assert any(c.startswith("Details: the value in Sysmon's form") for c in compiled.caveats)


@pytest.mark.parametrize(
    ("category", "ops"),
    [
        ("registry_add", ["create", "create_or_delete"]),
        ("registry_delete", ["delete", "create_or_delete"]),
        ("registry_rename", ["rename"]),
        ("registry_event", ["create", "delete", "set_value", "rename", "create_or_delete"]),
    ],
)
def test_registry_logsources_choose_their_ops(category: str, ops: list[str]) -> None:
    query = _query(sel(TargetObject="x"), category).query
    assert f"WHERE any(o IN r.ops WHERE o IN {ops})" in query
    assert "'modify'" not in query  # an ACL or owner change is no Sysmon registry event


def test_registry_event_type_and_event_id_follow_the_op() -> None:
    text, params = cond(sel(EventType="DeleteValue", EventID=12), "registry_event")
    assert text == (
        "CASE op WHEN 'set_value' THEN 13 WHEN 'rename' THEN 14 ELSE 12 END = $p0"
        f" AND toLower({REGISTRY_EVENT_TYPE}) = $p1"
    )
    assert params == {"p0": 12, "p1": "deletevalue"}
    assert "WHEN 'delete' THEN CASE WHEN any(x IN coalesce(r.event_types, [])" in (
        REGISTRY_EVENT_TYPE
    )
    text, _ = cond(sel(NewName="HKLM\\x"), "registry_event")
    assert text == "toLower(CASE WHEN op = 'rename' THEN val END) = $p0"


def test_registry_rules_read_the_acting_process() -> None:
    compiled = _query(sel(Image="C:\\x.exe", ParentImage="y"), "registry_set")
    assert "OPTIONAL MATCH (parent:Process)-[:SPAWNED]->(p)" in compiled.query
    assert "WITH op, p, parent, r, rk, val" in compiled.query


# -- image and driver loads --------------------------------------------------------------------
def test_image_load_pe_facts_are_the_loaded_modules() -> None:
    text, params = cond(
        sel(
            **{"ImageLoaded|endswith": "\\dbghelp.dll", "Signed": "false", "OriginalFileName": "X"}
        ),
        "image_load",
    )
    assert text == (
        "toLower(f.path) ENDS WITH $p0 AND toLower(f.original_name) = $p1"
        " AND toLower(toString(f.signed)) = $p2"
    )
    assert params == {"p0": "\\dbghelp.dll", "p1": "x", "p2": "false"}
    compiled = _query(sel(**{"Hashes|contains": "IMPHASH=AB"}), "image_load")
    assert "coalesce(',IMPHASH=' + toUpper(f.imphash), '')" in compiled.condition
    assert "EXECUTED" not in compiled.query  # not the process image's facts
    assert "MATCH (p:Process)-[r:LOADED]->(f:File)" in compiled.query
    assert cond(sel(Image="x"), "image_load")[0] == "toLower(p.image) = $p0"


def test_driver_load_is_done_by_no_process() -> None:
    compiled = _query(
        sel(**{"ImageLoaded|endswith": ".sys", "Hashes|contains": "SHA1="}), "driver_load"
    )
    query = compiled.query
    assert "MATCH (hst:Host)-[r:LOADED_DRIVER]->(f:File)" in query
    assert "MATCH (h:Host {name: hst.name})" in query
    assert "RETURN hst.name AS host" in query and "(p:" not in query
    with pytest.raises(Unsupported) as caught:
        compile_(sel(Image="x"), "driver_load")
    assert caught.value.details == ("Image",)


# -- one process on another -------------------------------------------------------------------
def test_process_access_rows_pair_access_and_call_trace() -> None:
    compiled = _query(
        {
            "s": {"TargetImage|endswith": "\\lsass.exe", "GrantedAccess": ["0x1010", "0x1410"]},
            "f": {"CallTrace|contains": "dbghelp"},
            "condition": "s and not f",
        },
        "process_access",
    )
    assert compiled.condition == (
        "(toLower(ga) IN $p0) AND toLower(tgt.image) ENDS WITH $p1"
        " AND NOT coalesce(toLower(ct) CONTAINS $p2, false)"
    )
    assert compiled.params == {"p0": ["0x1010", "0x1410"], "p1": "\\lsass.exe", "p2": "dbghelp"}
    query = compiled.query
    assert "MATCH (p:Process)-[r:ACCESSED]->(tgt:Process)" in query
    assert "AS ga\nUNWIND" in query and "AS ct\nWITH p, r, tgt, ga, ct\nWHERE true" in query
    assert "tgt.uid AS target_uid" in query
    assert f"GrantedAccess: lower-case hex without leading zeros (0x1fffff); {LIST_NOTE}" in (
        compiled.caveats
    )
    entities = LOGSOURCES["process_access"].entities
    assert ("target", "process", "target_uid") in entities


def test_remote_thread_fields_and_the_source_parent() -> None:
    compiled = _query(
        sel(SourceParentImage="x", StartModule="y", StartFunction="LoadLibraryA"),
        "create_remote_thread",
    )
    assert compiled.condition == (
        "toLower(parent.image) = $p0 AND toLower(sf) = $p1 AND toLower(sm) = $p2"
    )
    assert "MATCH (p:Process)-[r:INJECTED]->(tgt:Process)" in compiled.query
    assert "OPTIONAL MATCH (parent:Process)-[:SPAWNED]->(p)" in compiled.query
    text, params = cond(sel(TargetParentProcessId=4), "create_remote_thread")
    assert (text, params) == ("tgt.ppid = $p0", {"p0": 4})


# -- pipes, WMI, raw reads, tampering, clipboard ---------------------------------------------
def test_pipe_created_covers_both_ends() -> None:
    compiled = _query(sel(PipeName="\\lsadump", EventType="ConnectPipe"), "pipe_created")
    assert "MATCH (p:Process)-[r:CREATED_PIPE|CONNECTED_PIPE]->(pipe:Pipe)" in compiled.query
    assert compiled.condition == (
        "toLower(CASE type(r) WHEN 'CREATED_PIPE' THEN 'CreatePipe' ELSE 'ConnectPipe' END)"
        " = $p0 AND toLower(pipe.name) = $p1"
    )
    assert ("pipe", "value", "pipe_key") in LOGSOURCES["pipe_created"].entities


def test_wmi_event_reads_filters_consumers_and_bindings() -> None:
    compiled = _query(sel(**{"Destination|contains": "powershell", "EventID": 20}), "wmi_event")
    assert "MATCH (src)-[r:REGISTERED_WMI|BOUND_TO]->(wmi:WmiObject)" in compiled.query
    assert "RETURN wmi.host AS host" in compiled.query
    assert compiled.condition.startswith(
        "toLower(CASE WHEN NOT type(r) = 'BOUND_TO' AND wmi.kind = 'consumer' THEN"
        " wmi.destination END) CONTAINS $p0"
    )
    with pytest.raises(Unsupported) as caught:
        compile_(sel(Consumer="x"), "wmi_event")
    assert caught.value.kind == "field" and "stored by name" in caught.value.message


@pytest.mark.parametrize(
    ("category", "field", "pattern"),
    [
        ("raw_access_thread", "Device", "(p:Process)-[r:READ_RAW]->(f:File)"),
        ("process_tampering", "Type", "(p:Process)-[r:TAMPERED]->(f:File)"),
        ("clipboard_change", "Hashes", "(p:Process)-[r:SET_CLIPBOARD]->(hst:Host)"),
    ],
)
def test_the_small_sysmon_kinds(category: str, field: str, pattern: str) -> None:
    compiled = _query(sel(**{field: "x", "Image|endswith": "\\y.exe"}), category)
    assert f"MATCH {pattern}" in compiled.query
    assert "RETURN p.host AS host" in compiled.query


# -- the other Sysmon file events (WROTE ops) ------------------------------------------------
@pytest.mark.parametrize(
    ("category", "op"),
    [
        ("create_stream_hash", "stream"),
        ("file_change", "time_change"),
        ("file_rename", "rename"),
        ("file_executable_detected", "exe_detected"),
        ("file_block_executable", "blocked_exe"),
        ("file_block_shred", "blocked_shred"),
    ],
)
def test_file_events_by_op(category: str, op: str) -> None:
    query = _query(sel(TargetFilename="x"), category).query
    assert f"MATCH (p:Process)-[w:WROTE]->(f:File)\nWHERE '{op}' IN w.ops AND" in query


def test_a_stream_contents_is_one_row_per_text() -> None:
    compiled = _query(sel(**{"Contents|contains": "HostUrl=http"}), "create_stream_hash")
    assert compiled.condition == "toLower(sc) CONTAINS $p0"
    assert "ELSE w.contents END AS sc\nWITH p, w, f, sc\n" in compiled.query
    assert any(c.startswith("Contents: the stream texts of the edge") for c in compiled.caveats)


@pytest.mark.parametrize(
    ("category", "field", "reason"),
    [
        ("file_rename", "SourceFilename", "the old name of a renamed file is not stored"),
        ("file_change", "PreviousCreationUtcTime", "the old creation time is not stored"),
        ("process_access", "SourceThreadId", "SourceThreadId"),
    ],
)
def test_fields_the_graph_does_not_hold_fail_with_the_reason(
    category: str, field: str, reason: str
) -> None:
    with pytest.raises(Unsupported) as caught:
        compile_(sel(**{field: "x"}), category)
    assert caught.value.kind == "field" and caught.value.details == (field,)
    assert reason in caught.value.message


def test_stream_hash_is_sysmons_text_of_the_file() -> None:
    text, params = cond(sel(**{"Hash|contains": "IMPHASH=AB"}), "create_stream_hash")
    assert "coalesce(',SHA1=' + toUpper(f.sha1), '')" in text
    assert params == {"p0": "imphash=ab"}


# -- process facts --------------------------------------------------------------------------------
def test_integrity_level_and_current_directory_are_process_properties() -> None:
    compiled = compile_(
        sel(IntegrityLevel=["High", "S-1-16-12288"], **{"CurrentDirectory|contains": "\\Temp\\"})
    )
    assert compiled.condition == (
        "toLower(p.current_directory) CONTAINS $p0 AND (toLower(p.integrity_level) IN $p1)"
    )
    assert compiled.params == {"p0": "\\temp\\", "p1": ["high", "s-1-16-12288"]}
    assert any(c.startswith("IntegrityLevel: stored in Sysmon's words") for c in compiled.caveats)
    # on the edge logsources too: the acting process's own facts
    assert cond(sel(IntegrityLevel="System"), "registry_set")[0] == (
        "toLower(p.integrity_level) = $p0"
    )


def test_every_logsource_returns_the_engine_columns_its_entities_name() -> None:
    for logsource in LOGSOURCES.values():
        columns = {"host"} | {column for _, column in logsource.returns}
        assert {column for _, _, column in logsource.entities} <= columns, logsource.category
        names = set(__import__("re").findall(r"\{(\w+)\}", logsource.summary))
        assert names <= columns, logsource.category


def test_grandparent_image_is_two_spawns_up() -> None:
    text, params = cond(sel(**{"GrandParentImage|endswith": "\\rundll32.exe"}))
    assert text == (
        "toLower(head([(gp:Process)-[:SPAWNED]->(:Process)-[:SPAWNED]->(p) | gp.image]))"
        " ENDS WITH $p0"
    )
    assert params == {"p0": "\\rundll32.exe"}


def test_pattern_variables_never_shadow_the_engines_own() -> None:
    """`k` binds the stream's identities (stream.fetch_query), `t` and `x` the list predicates
    of the windows and op tests, `h` the product test's host, `img`/`gp`/`tp` the pattern
    comprehensions, `anc`/`desc` the lineage walks: a logsource binding one of them breaks
    the query it joins."""
    reserved = {"k", "t", "x", "o", "h", "img", "gp", "tp", "anc", "desc", "m", "v", "hits"}
    for logsource in LOGSOURCES.values():
        assert not logsource.variables & reserved, logsource.category
