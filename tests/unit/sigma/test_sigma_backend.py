"""The compiled Cypher of each Sigma modifier: the condition's shape and its parameters.

The query text may only hold field expressions and constant Cypher; every value travels as a
parameter, checked here rule by rule and, for any value, by `test_query_text_never_holds_values`.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from provgraph.queries.sigma import CompiledQuery, CypherBackend, Unsupported, provgraph_pipeline
from provgraph.queries.sigma.mapping import HASHES, LOGSOURCES
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule


def sigma(detection: dict[str, Any], category: str = "process_creation", **extra: Any) -> SigmaRule:
    doc = {
        "title": "test rule",
        "id": "5b0d5c1a-0000-4000-8000-000000000001",
        "logsource": {"category": category, "product": "windows"},
        "detection": detection,
        **extra,
    }
    (rule,) = SigmaCollection.from_yaml(yaml.safe_dump(doc)).rules
    assert isinstance(rule, SigmaRule)
    return rule


def compile_(
    detection: dict[str, Any], category: str = "process_creation", **kw: Any
) -> CompiledQuery:
    placeholders = kw.pop("placeholders", None)
    return CypherBackend(provgraph_pipeline(placeholders)).compile(sigma(detection, category, **kw))


def cond(
    detection: dict[str, Any], category: str = "process_creation"
) -> tuple[str, dict[str, Any]]:
    compiled = compile_(detection, category)
    return compiled.condition, compiled.params


def sel(**fields: Any) -> dict[str, Any]:
    return {"selection": fields, "condition": "selection"}


# -- strings and wildcards ---------------------------------------------------------------------
def test_plain_value_is_case_insensitive_equality() -> None:
    assert cond(sel(Image="C:\\Windows\\System32\\CMD.exe")) == (
        "toLower(p.image) = $p0",
        {"p0": "c:\\windows\\system32\\cmd.exe"},
    )


@pytest.mark.parametrize(
    ("modifier", "operator"),
    [("contains", "CONTAINS"), ("startswith", "STARTS WITH"), ("endswith", "ENDS WITH")],
)
def test_contains_startswith_endswith(modifier: str, operator: str) -> None:
    text, params = cond(sel(**{f"CommandLine|{modifier}": "-EncodedCommand"}))
    assert text == f"toLower(p.command_line) {operator} $p0"
    assert params == {"p0": "-encodedcommand"}


def test_wildcards_at_the_ends_become_string_operators() -> None:
    assert cond(sel(Image="*\\rundll32.exe")) == (
        "toLower(p.image) ENDS WITH $p0",
        {"p0": "\\rundll32.exe"},
    )
    # a backslash before a wildcard escapes it (Sigma): two backslashes are one literal one
    assert cond(sel(Image="C:\\Temp\\\\*")) == (
        "toLower(p.image) STARTS WITH $p0",
        {"p0": "c:\\temp\\"},
    )
    assert cond(sel(Image="*Temp*")) == ("toLower(p.image) CONTAINS $p0", {"p0": "temp"})


def test_inner_wildcards_become_an_anchored_java_regex() -> None:
    text, params = cond(sel(CommandLine="*reg* add ?KLM*"))
    assert text == "toLower(p.command_line) =~ $p0"
    assert params == {"p0": "(?s).*reg.*\\ add\\ .klm.*"}


def test_escaped_wildcard_is_a_literal_star() -> None:
    assert cond(sel(CommandLine="a\\*b")) == ("toLower(p.command_line) = $p0", {"p0": "a*b"})


def test_empty_value_matches_missing_or_empty() -> None:
    assert cond(sel(CommandLine="")) == (
        "(p.command_line IS NULL OR toLower(p.command_line) = $p0)",
        {"p0": ""},
    )


def test_null_value() -> None:
    assert cond(sel(CommandLine=None)) == ("p.command_line IS NULL", {})


def test_cased_keeps_the_case() -> None:
    assert cond(sel(**{"CommandLine|cased|contains": "AbC"})) == (
        "p.command_line CONTAINS $p0",
        {"p0": "AbC"},
    )


# -- lists, all, not ---------------------------------------------------------------------------
def test_value_list_is_or_with_one_list_parameter() -> None:
    assert cond(sel(Image=["A.exe", "B.exe"])) == (
        "toLower(p.image) IN $p0",
        {"p0": ["a.exe", "b.exe"]},
    )
    assert cond(sel(**{"Image|endswith": ["\\a.exe", "\\b.exe"]})) == (
        "any(v IN $p0 WHERE toLower(p.image) ENDS WITH v)",
        {"p0": ["\\a.exe", "\\b.exe"]},
    )


def test_all_modifier_is_and() -> None:
    assert cond(sel(**{"CommandLine|contains|all": ["net", "user"]})) == (
        "all(v IN $p0 WHERE toLower(p.command_line) CONTAINS v)",
        {"p0": ["net", "user"]},
    )


def test_not_treats_a_missing_field_as_no_match() -> None:
    text, params = cond(
        {
            "selection": {"Image|endswith": "\\x.exe"},
            "filter": {"ParentImage|endswith": "\\y.exe"},
            "condition": "selection and not filter",
        }
    )
    assert text == (
        "toLower(p.image) ENDS WITH $p0"
        " AND NOT coalesce(toLower(parent.image) ENDS WITH $p1, false)"
    )
    assert params == {"p0": "\\x.exe", "p1": "\\y.exe"}


def test_mixed_operators_stay_apart_and_or_groups_are_parenthesised() -> None:
    text, params = cond(
        {
            "a": {"Image|endswith": "\\a.exe"},
            "b": [{"CommandLine|contains": "x"}, {"CommandLine|startswith": "y"}],
            "condition": "a and b",
        }
    )
    assert text == (
        "toLower(p.image) ENDS WITH $p0 AND (toLower(p.command_line) CONTAINS $p1"
        " OR toLower(p.command_line) STARTS WITH $p2)"
    )
    assert params == {"p0": "\\a.exe", "p1": "x", "p2": "y"}


# -- regular expressions -----------------------------------------------------------------------
def test_re_is_a_search_and_case_sensitive() -> None:
    assert cond(sel(**{"CommandLine|re": "\\s-e(nc)?\\s"})) == (
        "p.command_line =~ $p0",
        {"p0": "(?s:.*)(?:\\s-e(nc)?\\s)(?s:.*)"},
    )


@pytest.mark.parametrize(("flag", "inline"), [("i", "(?iu)"), ("m", "(?m)"), ("s", "(?s)")])
def test_re_flags(flag: str, inline: str) -> None:
    _, params = cond(sel(**{f"CommandLine|re|{flag}": "a.b"}))
    assert params == {"p0": inline + "(?s:.*)(?:a.b)(?s:.*)"}


def test_re_python_named_groups_become_java_ones() -> None:
    _, params = cond(sel(**{"CommandLine|re": "(?P<q>['\"])x"}))
    assert params == {"p0": "(?s:.*)(?:(?<q>['\"])x)(?s:.*)"}


# -- encodings ---------------------------------------------------------------------------------
def test_base64_encodes_the_value() -> None:
    assert cond(sel(**{"CommandLine|base64|contains": "http://"})) == (
        "toLower(p.command_line) CONTAINS $p0",
        {"p0": base64.b64encode(b"http://").decode().lower()},
    )


def test_base64offset_is_an_or_of_its_three_offsets() -> None:
    text, params = cond(sel(**{"CommandLine|base64offset|contains": "IEX"}))
    assert text == "any(v IN $p0 WHERE toLower(p.command_line) CONTAINS v)"
    assert len(params["p0"]) == 3
    assert "suvy" in params["p0"]  # base64("IEX"), lower-cased like every compared value


@pytest.mark.parametrize("modifier", ["wide", "utf16be", "utf16"])
def test_utf16_modifiers_compile_to_encoded_base64(modifier: str) -> None:
    text, params = cond(sel(**{f"CommandLine|{modifier}|base64offset|contains": "ping"}))
    assert text == "any(v IN $p0 WHERE toLower(p.command_line) CONTAINS v)"
    assert len(params["p0"]) == 3


def test_windash_expands_dash_variants() -> None:
    text, params = cond(sel(**{"CommandLine|windash|contains": " -s "}))
    assert text == "any(v IN $p0 WHERE toLower(p.command_line) CONTAINS v)"
    assert " -s " in params["p0"] and " /s " in params["p0"] and " \u2013s " in params["p0"]


# -- existence, references, numbers ------------------------------------------------------------
def test_exists() -> None:
    assert cond(sel(**{"CommandLine|exists": True})) == ("p.command_line IS NOT NULL", {})
    assert cond(sel(**{"CommandLine|exists": False})) == ("p.command_line IS NULL", {})


def test_fieldref_compares_two_graph_properties() -> None:
    assert cond(sel(**{"User|fieldref": "ParentUser"})) == (
        "toLower(p.user) = toLower(parent.user)",
        {},
    )
    assert cond(sel(**{"Image|fieldref|endswith": "ParentImage"})) == (
        "toLower(p.image) ENDS WITH toLower(parent.image)",
        {},
    )


def test_neq_negates() -> None:
    assert cond(sel(**{"Image|neq": "x.exe"})) == (
        "NOT coalesce(toLower(p.image) = $p0, false)",
        {"p0": "x.exe"},
    )


@pytest.mark.parametrize(
    ("modifier", "op"), [("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<=")]
)
def test_numeric_comparisons(modifier: str, op: str) -> None:
    assert cond(sel(**{f"ProcessId|{modifier}": 4})) == (f"p.pid {op} $p0", {"p0": 4})


def test_integer_field_takes_numbers_and_numeric_text() -> None:
    assert cond(sel(ProcessId=[443, "8080"])) == ("p.pid IN $p0", {"p0": [443, 8080]})
    assert cond(sel(ProcessId="44*")) == (
        "toLower(toString(p.pid)) STARTS WITH $p0",
        {"p0": "44"},
    )


def test_cidr_is_a_range_test_with_parameterised_ranges() -> None:
    text, params = cond(
        sel(**{"DestinationIp|cidr": ["10.0.0.0/8", "fe80::/10"]}), "network_connection"
    )
    assert text.startswith(f"any(ip IN [toLower(toString({_expr('DestinationIp')}))] WHERE ")
    assert "$p0" in text and "$p1" in text
    assert params == {
        "p0": [[[10, 0, 0, 0], [10, 255, 255, 255]]],
        "p1": [[[0xFE80, 0, 0, 0, 0, 0, 0, 0], [0xFEBF, *[0xFFFF] * 7]]],
    }


def test_cidr_on_a_field_without_addresses_is_unsupported() -> None:
    with pytest.raises(Unsupported) as caught:
        compile_(sel(**{"Image|cidr": "10.0.0.0/8"}))
    assert caught.value.kind == "modifier"


# -- expand ------------------------------------------------------------------------------------
def test_expand_without_values_becomes_a_list_parameter() -> None:
    compiled = compile_(sel(**{"User|expand": "%Admins%"}))
    assert compiled.condition == "any(v IN $ph_admins WHERE toLower(p.user) = toLower(v))"
    assert compiled.params == {"ph_admins": []}
    assert compiled.placeholders == ("ph_admins",)


def test_expand_with_values_at_compile_time() -> None:
    compiled = compile_(sel(**{"User|expand": "%Admins%"}), placeholders={"Admins": ["A", "B"]})
    assert compiled.condition == "toLower(p.user) IN $p0"
    assert compiled.params == {"p0": ["a", "b"]}
    assert compiled.placeholders == ()


def test_expand_with_text_around_the_placeholder_is_unsupported() -> None:
    with pytest.raises(Unsupported) as caught:
        compile_(sel(**{"User|expand": "x%Admins%y"}))
    assert caught.value.kind == "modifier"


# -- what does not compile, and why ------------------------------------------------------------
def test_field_not_in_the_graph_fails_with_its_reason() -> None:
    detection = {
        "a": {"Image|endswith": "\\x.exe"},
        "b": {"TerminalSessionId": "1"},
        "condition": "a or b",
    }
    with pytest.raises(Unsupported) as caught:
        compile_(detection)
    assert caught.value.kind == "field"
    assert caught.value.details == ("TerminalSessionId",)
    assert "no modelled source records it" in caught.value.message


def test_unknown_field_has_no_mapping() -> None:
    with pytest.raises(Unsupported) as caught:
        compile_(sel(NoSuchField="x"))
    assert caught.value.details == ("NoSuchField",)
    assert "has no mapping for process_creation" in caught.value.message


def test_unknown_field_in_a_field_reference() -> None:
    with pytest.raises(Unsupported) as caught:
        compile_(sel(**{"Image|fieldref": "NoSuchField"}))
    assert caught.value.details == ("NoSuchField",)


def test_keywords_are_unsupported() -> None:
    with pytest.raises(Unsupported) as caught:
        compile_({"keywords": ["mimikatz"], "condition": "keywords"})
    assert caught.value.kind == "keyword"


def test_logsource_not_modelled() -> None:
    with pytest.raises(Unsupported) as caught:
        compile_(sel(Payload="x"), "ps_module")
    assert caught.value.kind == "logsource"
    assert caught.value.details == ("category ps_module",)


def test_timestamp_modifiers_are_unsupported() -> None:
    with pytest.raises(Unsupported) as caught:
        compile_(sel(**{"ProcessId|minute": 5}))
    assert caught.value.kind == "modifier"


# -- the whole query ---------------------------------------------------------------------------
def test_process_creation_query_has_the_window_and_the_engine_columns() -> None:
    compiled = compile_(sel(Image="x"))
    assert compiled.query == (
        "MATCH (p:Process)\n"
        "WHERE p.placeholder = false AND p.start_time >= $since AND p.start_time <= $until\n"
        "OPTIONAL MATCH (parent:Process)-[:SPAWNED]->(p)\n"
        "WITH p, parent\n"
        "WHERE (toLower(p.image) = $p0) AND NOT EXISTS { MATCH (h:Host {name: p.host}) "
        "WHERE h.os IS NOT NULL AND h.os <> $sigma_product }\n"
        "RETURN p.host AS host,\n"
        "       p.start_time AS first_seen,\n"
        "       p.start_time AS last_seen,\n"
        "       p.uid AS process_uid,\n"
        "       parent.uid AS parent_uid,\n"
        "       p.image AS image,\n"
        "       p.command_line AS command_line,\n"
        "       parent.image AS parent_image,\n"
        "       p.user AS account\n"
    )


def test_edge_logsources_window_on_edge_times_and_join_the_parent_only_when_asked() -> None:
    plain = compile_(sel(TargetFilename="x"), "file_event").query
    assert "OPTIONAL MATCH" not in plain
    assert "'create' IN w.ops" in plain
    assert "any(t IN w.times WHERE t >= $since AND t <= $until)" in plain
    assert "f.key AS file_key" in plain
    with_parent = compile_(sel(ParentImage="x"), "file_event").query
    assert "OPTIONAL MATCH (parent:Process)-[:SPAWNED]->(p)" in with_parent
    assert "'delete' IN w.ops" in compile_(sel(TargetFilename="x"), "file_delete").query
    assert (
        "c.key AS connection_key" in compile_(sel(DestinationPort=4444), "network_connection").query
    )
    assert "d.name AS query_name" in compile_(sel(QueryName="x.test"), "dns_query").query


def test_caveats_are_reported() -> None:
    compiled = compile_(sel(DestinationIp="192.0.2.1"), "network_connection")
    assert any(c.startswith("DestinationIp: DestinationIp / Destination") for c in compiled.caveats)


# any text but Sigma's wildcards and escape, which change the shape of a condition
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="*?\\"),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(a=_text, b=_text)
def test_query_text_never_holds_values(a: str, b: str) -> None:
    """The same rule with any two values gives the same query text: values are parameters.
    (Quotes, newlines, `$`, braces and Cypher keywords included.)"""

    def text(value: str) -> str:
        return compile_(
            {
                "s": {"CommandLine|contains": value, "Image|endswith": [value, "x"]},
                "f": {"ParentCommandLine|re": "x" + __import__("re").escape(value)},
                "condition": "s and not f",
            }
        ).query

    assert text(a) == text(b)


def _expr(name: str, category: str = "network_connection") -> str:
    row = LOGSOURCES[category].field(name)
    assert row is not None and row.expr is not None
    return row.expr


# -- graph v2 facts ------------------------------------------------------------------------------
def test_pe_facts_read_the_image_file_the_process_executed() -> None:
    text, params = cond(sel(OriginalFileName="MSBuild.exe", Company="Microsoft*"))
    assert text == (
        "toLower(head([(p)-[:EXECUTED]->(img:File) | img.company])) STARTS WITH $p0"
        " AND toLower(head([(p)-[:EXECUTED]->(img:File) | img.original_name])) = $p1"
    )
    assert params == {"p0": "microsoft", "p1": "msbuild.exe"}
    assert cond(sel(Signed="false")) == (
        "toLower(toString(head([(p)-[:EXECUTED]->(img:File) | img.signed]))) = $p0",
        {"p0": "false"},
    )


def test_hashes_is_sysmons_text_rebuilt_from_the_hash_properties() -> None:
    text, params = cond(sel(**{"Hashes|contains": ["IMPHASH=F34D", "SHA256=AB"]}))
    assert text == f"any(v IN $p0 WHERE toLower({HASHES}) CONTAINS v)"
    assert params == {"p0": ["imphash=f34d", "sha256=ab"]}
    assert "coalesce(',IMPHASH=' + toUpper(img.imphash), '')" in HASHES
    assert HASHES.index("SHA1=") < HASHES.index("MD5=") < HASHES.index("SHA256=")


def test_initiated_tells_the_edge_type_and_ports_follow_the_direction() -> None:
    text, params = cond(sel(Initiated="false", DestinationPort=3389), "network_connection")
    assert text == (
        "CASE WHEN type(r) = 'CONNECTED_TO' THEN c.port ELSE lport END = $p0"
        " AND toLower(CASE WHEN type(r) = 'CONNECTED_TO' THEN 'true' ELSE 'false' END) = $p1"
    )
    assert params == {"p0": 3389, "p1": "false"}
    query = compile_(sel(SourceIp="198.51.100.7"), "network_connection").query
    assert "MATCH (p:Process)-[r:CONNECTED_TO|ACCEPTED]->(c:Connection)" in query
    assert "UNWIND CASE WHEN type(r) = 'CONNECTED_TO' THEN [r.local_port]" in query


def _windows(logsource: dict[str, str], detection: dict[str, Any]) -> CompiledQuery:
    rule = SigmaRule.from_dict(
        {
            "title": "t",
            "id": "00000000-0000-4000-8000-0000000000aa",
            "logsource": {"product": "windows", **logsource},
            "detection": detection,
        }
    )
    return CypherBackend().compile(rule)


def test_ps_script_reads_the_script_block_and_its_host_process() -> None:
    compiled = _windows(
        {"category": "ps_script"},
        {"s": {"ScriptBlockText|contains": "Invoke-Mimikatz"}, "condition": "s"},
    )
    assert compiled.logsource == "ps_script" and compiled.condition == (
        "toLower(sb.text) CONTAINS $p0"
    )
    assert "OPTIONAL MATCH (p:Process)-[:RAN_SCRIPT]->(sb)" in compiled.query
    assert "MATCH (h:Host {name: sb.host})" in compiled.query  # the product test, on sb's host
    assert "RETURN sb.host AS host" in compiled.query


def test_windows_event_logs_pick_the_pattern_by_event_id() -> None:
    service = _windows(
        {"service": "system"},
        {"s": {"EventID": 7045, "ImagePath|contains": "\\Users\\"}, "condition": "s"},
    )
    assert service.logsource == "system_7045"
    assert service.condition == "7045 = $p0 AND toLower(svc.image_path) CONTAINS $p1"
    assert "MATCH (who)-[r:INSTALLED_SERVICE]->(svc:Service)" in service.query
    task = _windows(
        {"service": "security"},
        {"s": {"EventID": [4699, 4701], "TaskName|contains": "Defender"}, "condition": "s"},
    )
    assert task.logsource == "security_task" and "UNWIND r.ops AS op" in task.query
    assert task.params["p0"] == [4699, 4701]
    logon = _windows(
        {"service": "security"},
        {"s": {"EventID": 4624, "IpAddress": "-"}, "condition": "s"},
    )
    assert logon.logsource == "security_logon"
    assert "MATCH (acct:Account)-[r:LOGGED_ON]->(lg:Logon)" in logon.query
    assert logon.condition == "4624 = $p0 AND toLower(coalesce(lg.source_ip, '-')) = $p1"
    with pytest.raises(Unsupported) as caught:
        _windows({"service": "security"}, {"s": {"EventID": 4776}, "condition": "s"})
    assert caught.value.kind == "logsource" and caught.value.details == ("security EventID 4776",)
