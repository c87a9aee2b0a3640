"""Single-event Sigma rules evaluated as events stream through ingest, not as Cypher afterwards.

The same Sigma rule the Cypher backend compiles is compiled here into a Python matcher: the
rule goes through the same pySigma pipeline (so fields are the same graph expressions,
`p.image`, `f.path`), then its parsed condition tree becomes closures with the Cypher
backend's semantics exactly (case-insensitive unless `cased`, wildcards as a whole-string
match, `re` as a search with its flags, null matches nothing and `not` holds for it, lists OR,
`all` AND, `cidr` on the parsed address, base64 / windash / wide values as pySigma expands
them, `exists`, `fieldref`, numeric comparisons).

Which rules stream: a single-event rule whose every field is a fact of the event itself with
the value the graph will hold (see `STREAMED`). Lineage rules (a walk over SPAWNED),
correlations, rules with `expand` placeholders (site-filled parameters), and rules reading a
fact the graph may learn from another event (the command line of a file event's process, a
connection's host name) stay Cypher: `stream_plan` says which and why.

Candidates per event: rules are indexed by logsource (the event's kind), and each rule keeps a
set of literals of which at least one must occur in the event's text if it can match
(`required_literals`); one Aho-Corasick automaton per logsource finds, in one pass over the
event's lower-cased field values, every rule with a literal present. Only those (and the rules
with no literal to require) are confirmed with their matcher: a thousand rules are not a
thousand passes.

A hit is only an identity (the process, and the file / connection / domain); after the ingest
the rows are read back from the graph with the rule's own columns (`fetch_rows`), so a
streamed match becomes the same `Match`, suppression, entities and alert as the Cypher run
would make (the differential tests check the matches are the same).

Fixed costs: what pySigma's pipeline makes of each rule (`sigma_spec`) is kept on disk by the
rule's content hash (`SpecCache`, made at `provgraph sigma import`), so a process builds its
matchers without putting every rule through pySigma again. Files ingested in parallel run the
stream's twin, made from the same specs, in the parser process (`SigmaStream.remote`, see
`graph.parallel.Remote`), and its hits are absorbed after the parse.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import ipaddress
import json
import logging
import os
import pickle
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import ahocorasick
from provgraph.core.times import span
from provgraph.graph.local.jars import cache_dir
from provgraph.graph.tx import Graph
from provgraph.graph.writer import connection_key, file_key, image_props
from provgraph.ingest.model import Event, FileOp, ImageFacts, Kind, is_pid_only
from provgraph.queries.alerts import Match, apply_matches, match_from_row
from provgraph.queries.engine import RuleRun, ensure_engine_schema, evaluate, run_rules
from provgraph.queries.exceptions import drop_excepted
from provgraph.queries.rule import Rule
from provgraph.queries.sigma.backend import CypherBackend, classify
from provgraph.queries.sigma.errors import Unsupported
from provgraph.queries.sigma.mapping import (
    HASH_ORDER,
    HASHES,
    IMAGE_FIELDS,
    LOGSOURCES,
    Field,
    Logsource,
    image_fact,
)
from provgraph.queries.sigma.pipeline import provgraph_pipeline
from provgraph.queries.sigma.query import build_query, pattern_lines
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

log = logging.getLogger(__name__)

Facts = dict[str, Any]  # graph expression -> the event's value (None: not known)
Test = Callable[[Facts, Facts], bool]  # (facts, lower-cased text facts) -> matches
# a gate's test (`MatcherCompiler(gate=True)`): False, the event cannot match; True or None
# (it reads a fact the event does not tell), it may
Gate = Callable[[Facts, Facts], bool | None]

_PROCESS = (
    "p.image",
    "p.command_line",
    "p.user",
    "p.pid",
    "p.logon_id",
    "p.host",
    "p.integrity_level",
    "p.current_directory",
)
_PARENT = ("parent.image", "parent.command_line", "parent.user", "parent.pid")
_NET = {f.sigma: f.expr for f in LOGSOURCES["network_connection"].fields if f.expr is not None}
# what a connection record tells as it is, in either direction (not the outbound source port:
# the edge keeps its first; nor host names: the first seen for an address)
_NET_STREAMED = tuple(
    _NET[name]
    for name in (
        "DestinationIp",
        "DestinationPort",
        "DestinationIsIpv6",
        "Protocol",
        "SourceIp",
        "SourceIsIpv6",
        "Initiated",
    )
)
# the image's PE facts: those of the start record itself (graph.writer keeps them on the File)
_IMAGE = tuple(f.expr for f in IMAGE_FIELDS if f.expr is not None)
_SIGNED = f"toString({image_fact('signed')})"
# Per logsource, the expressions an event gives with the value the graph holds after it.
# process_creation: the new process's own record (a start overwrites what mentions said) and
# its creator as the record names it. Other logsources: the acting process's image and pid
# (its command line and user come from its own start, maybe another ingest: Cypher), and the
# target's key facts (a connection's host name is the first one seen for its address: Cypher).
STREAMED: dict[str, frozenset[str]] = {
    "process_creation": frozenset(_PROCESS + _PARENT + _IMAGE),
    "file_event": frozenset(("p.image", "p.pid", "p.host", "f.path")),
    "file_delete": frozenset(("p.image", "p.pid", "p.host", "f.path")),
    "network_connection": frozenset(("p.image", "p.pid", "p.host", *_NET_STREAMED)),
    "dns_query": frozenset(("p.image", "p.pid", "p.host", "d.name")),
}
# Facts the graph may know from another event when this one lacks them (a process's image from
# its own start, a creator's command line from the creator's start): an event without one of
# them leaves the rules reading it to Cypher for that ingest (`SigmaStream.incomplete`). A
# start record is taken as the whole truth about its own process (the graph's value differs
# only if an earlier mention of the process told a fact its start record lacks).
FILLABLE: dict[str, tuple[str, ...]] = {
    "process_creation": _PARENT,
    "file_event": ("p.image", "p.pid"),
    "file_delete": ("p.image", "p.pid"),
    "network_connection": ("p.image", "p.pid"),
    "dns_query": ("p.image", "p.pid"),
}
# Logsources whose match is one node (and its creator) read back by key: an event of one of
# them lacking a fact the graph may hold is decided after the ingest on the graph's values
# (`SigmaStream.recheck`), for the rules reading that fact only, instead of sending those
# rules to Cypher for the whole ingest (one MDE start without PE facts would send every
# OriginalFileName rule there). The others defer the rule (`SigmaStream.deferred`).
RECHECKED = frozenset({"process_creation"})
# Past this many undecided identities in one ingest, a missing fact defers the rules reading it
# instead (exact, slower), so the stream's memory stays bounded whatever the ingest's size.
MAX_UNDECIDED = 200_000


# -- the event's facts ---------------------------------------------------------------------------
def category_of(event: Event) -> str | None:
    """The Sigma logsource an event is a record of (None: none the graph models)."""
    kind = event.kind
    if kind is Kind.PROCESS_START:
        return "process_creation"
    if kind is Kind.FILE_WRITE:
        op = event.file_op or FileOp.CREATE
        if op is FileOp.CREATE:
            return "file_event" if event.file_path else None
        if op is FileOp.DELETE:
            return "file_delete" if event.file_path else None
        return None
    if kind is Kind.NETWORK_CONNECT:
        return "network_connection" if event.remote_ip else None
    if kind is Kind.DNS_QUERY:
        return "dns_query" if event.query_name else None
    return None


def facts_of(event: Event, category: str) -> Facts:
    """The event's values under the graph expressions the matchers read (`category_of` gave a
    category: the event has a process)."""
    proc = event.process
    assert proc is not None
    facts: Facts = {"p.image": proc.image, "p.pid": proc.pid, "p.host": event.host}
    if category == "process_creation":
        facts["p.command_line"] = proc.command_line
        facts["p.user"] = proc.user
        facts["p.logon_id"] = proc.logon_id
        facts["p.integrity_level"] = proc.integrity_level
        facts["p.current_directory"] = proc.current_directory
        facts.update(image_facts(proc.image_facts if proc.image else None))
        parent = event.parent
        if parent is not None:
            facts["parent.image"] = parent.image
            facts["parent.command_line"] = parent.command_line
            facts["parent.user"] = parent.user
            facts["parent.pid"] = parent.pid
    elif category in ("file_event", "file_delete"):
        facts["f.path"] = event.file_path
    elif category == "network_connection":
        ip = event.remote_ip or ""
        six = "true" if ":" in ip else "false"
        inbound = event.direction == "inbound"
        facts[_NET["Protocol"]] = event.protocol
        facts[_NET["Initiated"]] = "false" if inbound else "true"
        facts[_NET["DestinationIp"]] = None if inbound else event.remote_ip
        facts[_NET["DestinationIsIpv6"]] = None if inbound else six
        facts[_NET["DestinationPort"]] = event.local_port if inbound else event.remote_port
        facts[_NET["SourceIp"]] = event.remote_ip if inbound else None
        facts[_NET["SourceIsIpv6"]] = six if inbound else None
    elif category == "dns_query":
        facts["d.name"] = (event.query_name or "").lower().rstrip(".")
    return facts


def proc_without_facts(event: Event) -> bool:
    """A start record naming an image but none of its PE facts (Security 4688, a Sysmon config
    that logs no hashes…): the graph may know them from another record of the image. A record
    with PE facts is taken as the whole truth about its image (as a start is about its process)."""
    proc = event.process
    return proc is not None and proc.image is not None and proc.image_facts is None


def image_facts(facts: ImageFacts | None) -> Facts:
    """A start record's PE facts under the graph expressions (`mapping.IMAGE_FIELDS`), with
    the values the image File holds after it (graph.writer.image_props)."""
    if facts is None:
        return dict.fromkeys(_IMAGE)
    props = image_props(facts)
    out: Facts = {
        image_fact(prop): props.get(prop)
        for prop in (
            "original_name",
            "company",
            "product",
            "description",
            "file_version",
            "imphash",
            "md5",
            "sha1",
            "sha256",
            "signer",
            "signature_status",
        )
    }
    signed = props.get("signed")
    out[_SIGNED] = None if signed is None else ("true" if signed else "false")
    hashes = [f"{name}={props[prop].upper()}" for name, prop in HASH_ORDER if props.get(prop)]
    out[HASHES] = ",".join(hashes) if hashes else None
    return out


def lowered(facts: Facts) -> Facts:
    """Each fact as Cypher's `toLower(toString(x))` would give it."""
    return {k: (None if v is None else str(v).lower()) for k, v in facts.items()}


def hit_key(event: Event, category: str) -> tuple[str, str]:
    """The graph identity of the event's match: the process, and the file / connection /
    domain it touched ("" for a process creation)."""
    assert event.process is not None
    uid = event.process.uid
    if category == "process_creation":
        return uid, ""
    if category in ("file_event", "file_delete"):
        return uid, file_key(event.host, event.file_path or "")
    if category == "network_connection":
        if event.direction == "inbound":  # the peer, on one of the process's listening ports
            key = connection_key(event.remote_ip or "", None, event.protocol)
            return uid, _port_key(key, event.local_port)
        key = connection_key(event.remote_ip or "", event.remote_port, event.protocol)
        return uid, _port_key(key, event.remote_port)
    return uid, (event.query_name or "").lower().rstrip(".")


def _port_key(connection: str, port: int | None) -> str:
    """A network event's target: the Connection, and the port of the row (an inbound edge has a
    row per listening port)."""
    return f"{connection}#{'' if port is None else port}"


def row_key(category: str, row: Mapping[str, Any]) -> tuple[str, str]:
    """The identity of a rule's row, as `hit_key` gives it for the event."""
    target = _KEYED[category][2]
    if target is None:
        return row["process_uid"], ""
    if category == "network_connection":
        return row["process_uid"], _port_key(row["connection_key"], row["remote_port"])
    return row["process_uid"], row[target]


# -- compiling a rule's condition into a matcher ------------------------------------------------
class NotStreamable(Exception):
    """The rule runs as Cypher; why, in words."""


@dataclass(frozen=True)
class _Compiled:
    test: Test
    literals: frozenset[str] | None  # one of these occurs in the event text, else no match


_NONE = _Compiled(lambda f, low: False, None)
# a gate's leaf on a fact the event does not tell: no literal can be required of the event
_UNKNOWN = _Compiled(lambda f, low: None, None)  # type: ignore[arg-type,return-value]


def _kleene_not(inner: Any) -> Any:
    def test(f: Facts, low: Facts) -> bool | None:
        v = inner(f, low)
        return None if v is None else not v

    return test


def _kleene(tests: Sequence[Any], is_or: bool) -> Any:
    """`and` / `or` in three-valued logic: the deciding value wins, else None if any is."""
    decides = is_or

    def test(f: Facts, low: Facts) -> bool | None:
        out: bool | None = not decides
        for t in tests:
            v = t(f, low)
            if v is decides:
                return decides
            if v is None:
                out = None
        return out

    return test


def _junction_test(tests: Sequence[Test], is_or: bool) -> Test:
    """`or` / `and` of two-valued tests, short-circuiting. Plain `or` / `and` on two or three
    parts and a loop past that: `any(...)` over a generator built one generator object per
    call, and the matchers' junctions were the largest share of the stream's time (a py-spy
    profile of the Sigma bench at 1M: 53 s of its 85 s of matching)."""
    if len(tests) == 2:
        a, b = tests
        if is_or:
            return lambda f, low: bool(a(f, low) or b(f, low))
        return lambda f, low: bool(a(f, low) and b(f, low))
    if len(tests) == 3:
        a, b, c = tests
        if is_or:
            return lambda f, low: bool(a(f, low) or b(f, low) or c(f, low))
        return lambda f, low: bool(a(f, low) and b(f, low) and c(f, low))

    if is_or:

        def any_of(f: Facts, low: Facts) -> bool:
            for t in tests:  # noqa: SIM110 - a loop: no generator object per call
                if t(f, low):
                    return True
            return False

        return any_of

    def all_of(f: Facts, low: Facts) -> bool:
        for t in tests:  # noqa: SIM110 - a loop: no generator object per call
            if not t(f, low):
                return False
        return True

    return all_of


def _wild_regex(value: SigmaString, lower: bool) -> re.Pattern[str]:
    parts = []
    for part in value.s:
        if part is SpecialChars.WILDCARD_MULTI:
            parts.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            parts.append(".")
        elif isinstance(part, str):
            parts.append(re.escape(part.lower() if lower else part))
        else:
            raise NotStreamable("a placeholder inside a wildcard pattern")
    return re.compile("".join(parts), re.DOTALL)


def _longest_literal(value: SigmaString) -> str:
    runs, current = [], ""
    for part in value.s:
        if isinstance(part, str):
            current += part
        else:
            runs.append(current)
            current = ""
    runs.append(current)
    return max(runs, key=len).lower()


_INT = re.compile(r"^-?\d+$")
_V4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_V6 = re.compile(r"[0-9a-f:]+")


def _v4_octets(text: str) -> list[int] | None:
    x = text[7:] if text.startswith("::ffff:") else text
    return [int(o) for o in x.split(".")] if _V4.fullmatch(x) else None


def _v6_groups(text: str) -> list[int] | None:
    x = text.split("%")[0]
    if not _V6.fullmatch(x) or ":" not in x:
        return None
    try:
        packed = ipaddress.IPv6Address(x).packed
    except ValueError:
        return None
    return [packed[i] << 8 | packed[i + 1] for i in range(0, 16, 2)]


class MatcherCompiler:
    """A rule's parsed condition (fields already mapped by the pipeline) into a `_Compiled`.

    `gate=True`: a condition reading facts the graph learns from other events (the command
    line of a file event's process) compiles too, in three-valued logic: a leaf on such a fact
    is None (unknown), `not` keeps None, `and` is False when a part is False, `or` True when
    one is True, else None when one is None. False is then exact: whatever the graph learns,
    the event's own facts already rule the match out (`SigmaStream` gates)."""

    def __init__(self, logsource: Logsource, gate: bool = False) -> None:
        self.logsource = logsource
        self.rows: dict[str, Field] = {f.expr: f for f in logsource.fields if f.expr is not None}
        self.streamed = STREAMED[logsource.category]
        self.reads: set[str] = set()
        self.gate = gate

    def _unknown(self, expr: str) -> bool:
        """A gate's field the event does not tell (mapped, no lineage walk): its leaf is None."""
        if not self.gate or expr in self.streamed:
            return False
        row = self.rows.get(expr)
        # unmapped or walked through lineage: not unknown, `_row` says why it cannot compile
        return row is not None and row.lineage is None

    def _row(self, expr: str) -> Field:
        row = self.rows.get(expr)
        if row is None:
            raise NotStreamable(f"field '{expr}' has no graph mapping")
        if row.lineage is not None:
            raise NotStreamable(f"{row.sigma} walks the process lineage (Cypher)")
        if expr not in self.streamed:
            raise NotStreamable(
                f"{row.sigma} on {self.logsource.category} is known from other events"
            )
        self.reads.add(expr)
        return row

    def compile(self, cond: Any) -> _Compiled:
        if isinstance(cond, ConditionAND | ConditionOR):
            return self._junction(cond)
        if isinstance(cond, ConditionNOT):
            inner = self.compile(cond.args[0]).test
            if self.gate:
                return _Compiled(_kleene_not(inner), None)
            return _Compiled(lambda f, low: not inner(f, low), None)
        if isinstance(cond, ConditionFieldEqualsValueExpression):
            ref = cond.value
            if self._unknown(cond.field) or (
                isinstance(ref, SigmaFieldReference) and self._unknown(ref.field)
            ):
                return _UNKNOWN
            return self._leaf(cond.field, cond.value)
        raise NotStreamable(f"a {type(cond).__name__} condition")

    def _junction(self, cond: ConditionAND | ConditionOR) -> _Compiled:
        is_or = isinstance(cond, ConditionOR)
        parts = [self.compile(arg) for arg in cond.args]
        if is_or:
            parts = self._grouped(cond.args, parts)
        tests = tuple(p.test for p in parts)
        if is_or:
            literals: frozenset[str] | None = frozenset()
            for p in parts:
                if p.literals is None or literals is None:
                    literals = None
                else:
                    literals |= p.literals
        else:
            known = [p.literals for p in parts if p.literals is not None]
            # the best requirement: the one whose shortest literal is longest
            literals = max(known, key=lambda s: min(map(len, s), default=0), default=None)
        if len(tests) == 1:
            return _Compiled(tests[0], literals)
        if self.gate:
            return _Compiled(_kleene(tests, is_or), literals)
        return _Compiled(_junction_test(tests, is_or), literals)

    def _grouped(self, args: Sequence[Any], parts: list[_Compiled]) -> list[_Compiled]:
        """OR-ed plain string leaves on one field with one operator as one test (a set for
        equality, a tuple for startswith / endswith)."""
        groups: dict[tuple[str, str, bool], list[str]] = {}
        rest: list[_Compiled] = []
        for arg, part in zip(args, parts, strict=True):
            simple = self._simple(arg)
            if simple is None:
                rest.append(part)
            else:
                expr, op, cased, literal = simple
                groups.setdefault((expr, op, cased), []).append(literal)
        for (expr, op, cased), literals in groups.items():
            rest.append(self._string_test(expr, op, cased, literals))
        return rest

    def _simple(self, cond: Any) -> tuple[str, str, bool, str] | None:
        if not isinstance(cond, ConditionFieldEqualsValueExpression):
            return None
        value = cond.value
        if not isinstance(value, SigmaString) or value.contains_placeholder():
            return None
        row = self.rows.get(cond.field)
        if row is None or row.kind != "str" or self._unknown(cond.field):
            return None
        found = classify(value)
        if found is None or found == ("eq", ""):
            return None
        cased = isinstance(value, SigmaCasedString)
        op, literal = found
        return cond.field, op, cased, literal if cased else literal.lower()

    def _string_test(self, expr: str, op: str, cased: bool, values: list[str]) -> _Compiled:
        row = self._row(expr)
        as_int = row.kind == "int"
        literals = frozenset(v.lower() for v in values) if all(values) else None
        if cased:

            def text(f: Facts, low: Facts) -> str | None:
                v = f.get(expr)
                return None if v is None else (str(v) if as_int else v)

        else:

            def text(f: Facts, low: Facts) -> str | None:
                return low.get(expr)

        if op == "eq":
            wanted = frozenset(values)
            return _Compiled(lambda f, low: text(f, low) in wanted, literals)
        needles = tuple(values)
        if op == "startswith":
            return _Compiled(
                lambda f, low: (v := text(f, low)) is not None and v.startswith(needles), literals
            )
        if op == "endswith":
            return _Compiled(
                lambda f, low: (v := text(f, low)) is not None and v.endswith(needles), literals
            )
        return _Compiled(
            lambda f, low: (v := text(f, low)) is not None and any(n in v for n in needles),
            literals,
        )

    def _leaf(self, expr: str, value: Any) -> _Compiled:
        if isinstance(value, SigmaExpansion):
            return self._junction(
                ConditionOR([ConditionFieldEqualsValueExpression(expr, v) for v in value.values])
            )
        row = self._row(expr)
        if isinstance(value, SigmaFieldReference):
            return self._fieldref(expr, value)
        if isinstance(value, SigmaExists):
            wanted = value.exists
            return _Compiled(lambda f, low: (f.get(expr) is not None) is wanted, None)
        if isinstance(value, SigmaNull):
            return _Compiled(lambda f, low: f.get(expr) is None, None)
        if isinstance(value, SigmaBool):
            if row.kind != "str":
                raise NotStreamable(f"a boolean against {row.sigma}")
            text = "true" if value.boolean else "false"
            return _Compiled(lambda f, low: low.get(expr) == text, None)
        if isinstance(value, SigmaNumber):
            number = value.number
            if row.kind == "int" and isinstance(number, int):
                return _Compiled(lambda f, low: f.get(expr) == number, None)
            wanted_text = str(number)
            return _Compiled(
                lambda f, low: (v := f.get(expr)) is not None and str(v) == wanted_text, None
            )
        if isinstance(value, SigmaRegularExpression):
            return self._regex(expr, value)
        if isinstance(value, SigmaCIDRExpression):
            return self._cidr(expr, value, row)
        if isinstance(value, SigmaCompareExpression):
            return self._compare(expr, value, row)
        if isinstance(value, SigmaString):
            return self._string(expr, value, row)
        raise NotStreamable(f"a {type(value).__name__} value")

    def _string(self, expr: str, value: SigmaString, row: Field) -> _Compiled:
        if value.contains_placeholder():
            raise NotStreamable("expand placeholders are filled by the site (Cypher)")
        cased = isinstance(value, SigmaCasedString)
        found = classify(value)
        if found is not None:
            op, literal = found
            if row.kind == "int" and op == "eq" and _INT.match(literal):
                number = int(literal)
                return _Compiled(lambda f, low: f.get(expr) == number, None)
            if op == "eq" and literal == "":
                return _Compiled(lambda f, low: (v := low.get(expr)) is None or v == "", None)
            return self._string_test(expr, op, cased, [literal if cased else literal.lower()])
        pattern = _wild_regex(value, lower=not cased)
        need = _longest_literal(value)
        literals = frozenset((need,)) if need else None
        if cased:
            as_int = row.kind == "int"
            return _Compiled(
                lambda f, low: (
                    (v := f.get(expr)) is not None
                    and pattern.fullmatch(str(v) if as_int else v) is not None
                ),
                literals,
            )
        return _Compiled(
            lambda f, low: (v := low.get(expr)) is not None and pattern.fullmatch(v) is not None,
            literals,
        )

    def _regex(self, expr: str, value: SigmaRegularExpression) -> _Compiled:
        if value.regexp.contains_placeholder():
            raise NotStreamable("expand placeholders inside a regex")
        flags = 0
        if SigmaRegularExpressionFlag.IGNORECASE in value.flags:
            flags |= re.IGNORECASE
        if SigmaRegularExpressionFlag.MULTILINE in value.flags:
            flags |= re.MULTILINE
        if SigmaRegularExpressionFlag.DOTALL in value.flags:
            flags |= re.DOTALL
        try:
            pattern = re.compile(str(value.regexp), flags)
        except re.error as error:
            raise NotStreamable(f"regex Python cannot compile: {error}") from error
        return _Compiled(
            lambda f, low: (v := f.get(expr)) is not None and pattern.search(str(v)) is not None,
            None,
        )

    def _cidr(self, expr: str, value: SigmaCIDRExpression, row: Field) -> _Compiled:
        if not row.ip:
            raise NotStreamable(f"cidr on {row.sigma}")
        net = value.network
        if isinstance(net, ipaddress.IPv4Network):
            lo4, hi4 = list(net.network_address.packed), list(net.broadcast_address.packed)

            def test(f: Facts, low: Facts) -> bool:
                v = low.get(expr)
                octets = None if v is None else _v4_octets(v)
                return octets is not None and lo4 <= octets <= hi4

            return _Compiled(test, None)

        def groups(address: ipaddress.IPv6Address) -> list[int]:
            packed = address.packed
            return [packed[i] << 8 | packed[i + 1] for i in range(0, 16, 2)]

        lo6, hi6 = groups(net.network_address), groups(net.broadcast_address)

        def test6(f: Facts, low: Facts) -> bool:
            v = low.get(expr)
            found = None if v is None else _v6_groups(v)
            return found is not None and lo6 <= found <= hi6

        return _Compiled(test6, None)

    def _compare(self, expr: str, value: SigmaCompareExpression, row: Field) -> _Compiled:
        number = value.number.number
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise NotStreamable("comparison with a timestamp part")
        op = value.op
        compare: Callable[[float, float], bool] = {
            CompareOperators.LT: lambda a, b: a < b,
            CompareOperators.LTE: lambda a, b: a <= b,
            CompareOperators.GT: lambda a, b: a > b,
            CompareOperators.GTE: lambda a, b: a >= b,
            CompareOperators.NEQ: lambda a, b: a != b,
        }[op]
        is_int = row.kind == "int"

        def test(f: Facts, low: Facts) -> bool:
            v = f.get(expr)
            if v is None:
                return False
            if is_int:
                return bool(compare(v, number))
            try:
                return bool(compare(float(v), number))
            except ValueError:
                return False

        return _Compiled(test, None)

    def _fieldref(self, expr: str, ref: SigmaFieldReference) -> _Compiled:
        other = ref.field
        self._row(other)
        starts, ends = ref.starts_with, ref.ends_with

        def test(f: Facts, low: Facts) -> bool:
            left, right = low.get(expr), low.get(other)
            if left is None or right is None:
                return False
            if starts and ends:
                return right in left
            if starts:
                return left.startswith(right)
            if ends:
                return left.endswith(right)
            return left == right

        return _Compiled(test, None)


# -- the rules that stream -----------------------------------------------------------------------
@dataclass(frozen=True)
class StreamRule:
    """One provgraph rule's Sigma condition as a matcher over one event."""

    rule: Rule
    category: str
    test: Test
    literals: frozenset[str] | None
    reads: frozenset[str] = frozenset()  # the graph expressions the condition reads
    platform: str | None = None  # the rule's product: hosts known to run another are left out
    # what it was made from (`sigma_spec`): the parser process makes the same matcher of it
    spec: Spec | None = field(default=None, compare=False, repr=False)


def sigma_source(rule: Rule) -> dict[str, Any] | None:
    """The Sigma rule a compiled provgraph rule came from, as pySigma's dict (None: not a
    single-event Sigma rule)."""
    meta = rule.metadata.get("sigma") if isinstance(rule.metadata, Mapping) else None
    if not isinstance(meta, Mapping):
        return None
    source = meta.get("rule")
    return dict(source) if isinstance(source, Mapping) else None


# What pySigma's pipeline makes of a Sigma rule that may stream: its conditions with the fields
# mapped to graph expressions, its logsource, product and query parameters (or why it cannot
# stream). Making it is most of a matcher's cost (the pipeline is built and applied per rule:
# 6 s for SigmaHQ's 2,277 rules); `stream_plan` keeps it on disk between processes
# (`SpecCache`).
@dataclass(frozen=True)
class Spec:
    conditions: list[Any]
    category: str
    platform: str | None
    parameters: dict[str, Any]


def sigma_spec(sigma: SigmaRule | Mapping[str, Any]) -> Spec | str:
    """The Sigma rule through the provgraph pipeline, or the reason it runs as Cypher."""
    parsed = sigma if isinstance(sigma, SigmaRule) else SigmaRule.from_dict(dict(sigma))
    backend = CypherBackend(provgraph_pipeline())
    try:
        compiled = backend.compile_once(parsed)
    except (Unsupported, SigmaError) as error:
        return f"does not compile: {error}"
    if compiled.lineage:
        return "walks the process lineage (Cypher)"
    if compiled.placeholders:
        return "expand placeholders are filled by the site (Cypher)"
    category = LOGSOURCES[compiled.logsource].category
    if category not in STREAMED:
        return f"{category} runs as Cypher"
    return Spec(
        [_detached(c.parsed) for c in parsed.detection.parsed_condition],
        category,
        compiled.platform,
        compiled.parameters(),
    )


def _detached(cond: Any) -> Any:
    """The condition tree without its links back to the rule's detections (`parent`,
    `source`): what a matcher reads, a tenth of the size to keep."""
    if isinstance(cond, ConditionAND | ConditionOR | ConditionNOT):
        return type(cond)([_detached(arg) for arg in cond.args])
    if isinstance(cond, ConditionFieldEqualsValueExpression):
        return ConditionFieldEqualsValueExpression(cond.field, cond.value)
    return cond


def compile_stream(
    rule: Rule, sigma: SigmaRule | Mapping[str, Any], spec: Spec | str | None = None
) -> StreamRule:
    """The matcher for `rule`, compiled from its Sigma rule (or the `sigma_spec` made of it
    before); NotStreamable says why not."""
    if spec is None:
        spec = sigma_spec(sigma)
    return _stream_rule(rule, spec, gate=False)


def compile_gate(rule: Rule, spec: Spec | str) -> StreamRule:
    """The gate of a Cypher rule that reads facts the graph learns from other events: its
    condition on the event's own facts in three-valued logic (`MatcherCompiler(gate=True)`).
    An ingest none of whose events the gate lets through cannot match; NotStreamable: no
    gate (the rule cannot be compiled, or nothing the event tells can rule a match out)."""
    return _stream_rule(rule, spec, gate=True)


def _any_part(tests: Sequence[Test]) -> Test:
    return lambda f, low: any(t(f, low) for t in tests)


def _stream_rule(rule: Rule, spec: Spec | str, *, gate: bool) -> StreamRule:
    """A streamed rule's matcher, or (`gate`) a Cypher rule's gate, from its spec: the
    condition's parts joined by `or`, in three-valued logic for a gate."""
    if isinstance(spec, str):
        raise NotStreamable(spec)
    if rule.params() != spec.parameters:
        raise NotStreamable("the site set its parameters (Cypher)")
    compiler = MatcherCompiler(LOGSOURCES[spec.category], gate=gate)
    parts = [compiler.compile(c) for c in spec.conditions]
    if gate and not compiler.reads:
        raise NotStreamable("no fact of the event itself bears on the condition")
    if len(parts) == 1:
        test, literals = parts[0].test, parts[0].literals
    else:
        tests = tuple(p.test for p in parts)
        test = _kleene(tests, is_or=True) if gate else _any_part(tests)
        literals = (
            None
            if any(p.literals is None for p in parts)
            else frozenset().union(*(p.literals or () for p in parts))
        )
    return StreamRule(
        rule, spec.category, test, literals, frozenset(compiler.reads), spec.platform, spec
    )


# the code a spec depends on: any change to it (a field mapping, the backend, which logsources
# stream here) is a new cache
_SPEC_CODE = (
    "backend.py",
    "pipeline.py",
    "mapping.py",
    "query.py",
    "correlation.py",
    "errors.py",
    "stream.py",
)


def _code_hash() -> str:
    digest = hashlib.sha256(importlib.metadata.version("pysigma").encode())
    here = Path(__file__).parent
    for name in _SPEC_CODE:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    return digest.hexdigest()[:20]


def spec_key(source: Mapping[str, Any]) -> str:
    """A Sigma rule's content hash (its parsed YAML, keys sorted)."""
    text = json.dumps(source, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class SpecCache:
    """`sigma_spec` results by the Sigma rule's content hash, in one pickle per version of
    the code that makes them (pySigma's version and the sources of this package's pipeline,
    backend, mapping and stream hashed: a changed mapping is a new file, never a stale
    spec). A rule set imported once (`provgraph sigma import` builds the plan) then costs
    its matchers' closures only in later processes. The file is the user's own cache
    (`graph.local.jars.cache_dir`, PROVGRAPH_CACHE), as trusted as the code beside it; an
    unreadable one is rebuilt."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or cache_dir() / "sigma-stream") / f"specs-{_code_hash()}.pickle"
        self.specs: dict[str, Spec | str] = {}
        self.added = 0
        try:
            with self.path.open("rb") as handle:
                loaded = pickle.load(handle)
            if isinstance(loaded, dict):
                self.specs = loaded
        except FileNotFoundError:
            pass
        except Exception as error:  # noqa: BLE001 - a broken cache is rebuilt, not fatal
            log.warning("sigma matcher cache %s unreadable (%s): rebuilding it", self.path, error)

    def get(self, source: Mapping[str, Any]) -> Spec | str:
        key = spec_key(source)
        spec = self.specs.get(key)
        if spec is None:
            spec = self.specs[key] = sigma_spec(source)
            self.added += 1
        return spec

    def save(self) -> None:
        """Write the cache if it learned a spec (atomically: concurrent processes each leave
        a whole file)."""
        if not self.added:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                pickle.dump(self.specs, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, self.path)
            self.added = 0
        except (OSError, pickle.PicklingError) as error:
            log.warning("sigma matcher cache %s not written: %s", self.path, error)


@dataclass
class StreamPlan:
    streamed: list[StreamRule] = field(default_factory=list)
    cypher: list[Rule] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)  # rule id -> why it runs as Cypher
    # Cypher rules with a gate (`compile_gate`): their query runs only when an event may match
    gates: list[StreamRule] = field(default_factory=list)


def stream_plan(rules: Iterable[Rule], cache: SpecCache | None | bool = True) -> StreamPlan:
    """Split rules into those streamed and those run as Cypher (with the reason). `cache`:
    True, the user's `SpecCache` (read, and written when it learned a rule); a SpecCache of
    one's own; False / None, none (every rule through pySigma's pipeline)."""
    specs = SpecCache() if cache is True else (cache or None)
    plan = StreamPlan()
    for rule in rules:
        source = sigma_source(rule)
        if source is None:
            plan.cypher.append(rule)
            plan.why[rule.id] = "not a single-event Sigma rule"
            continue
        spec = specs.get(source) if specs is not None else sigma_spec(source)
        try:
            plan.streamed.append(compile_stream(rule, source, spec))
        except NotStreamable as error:
            plan.cypher.append(rule)
            plan.why[rule.id] = str(error)
            with contextlib.suppress(NotStreamable):  # no gate: the query always runs
                plan.gates.append(compile_gate(rule, spec))
    if specs is not None:
        specs.save()
    return plan


# -- the index and the stream --------------------------------------------------------------------
@dataclass
class _Index:
    always: list[int] = field(default_factory=list)  # rules with no literal to require
    automaton: Any = None  # literal -> its group (an index of `groups`)
    groups: list[list[int]] = field(default_factory=list)  # a literal's rule indexes


class SigmaStream:
    """Sigma rules over events as they pass (`observe`), then their matches become alerts
    (`apply`), and `hook` is the pipeline's rules hook for everything else."""

    def __init__(
        self,
        rules: Sequence[StreamRule],
        cypher: Sequence[Rule] = (),
        gates: Sequence[StreamRule] = (),
    ) -> None:
        self.rules = list(rules)
        self.cypher = list(cypher)
        # Cypher rules' gates (`compile_gate`), given only to a stream that observes every
        # event of the ingest its hook runs for: a gate no event opened skips its query
        self.gates = [g for g in gates if g.rule.id in {r.id for r in self.cypher}]
        self.opened: set[int] = set()  # gates some event of this ingest let through
        self.hits: list[set[tuple[str, str]]] = [set() for _ in self.rules]
        self.events = 0
        self.confirmed = 0  # matcher calls
        # (category, expression): some event lacked the fact, the graph may hold it
        self.incomplete: set[tuple[str, str]] = set()
        # RECHECKED logsources: identity -> the facts its events lacked (decided by `recheck`)
        self.undecided: dict[str, dict[tuple[str, str], frozenset[str]]] = {}
        self.seconds = 0.0
        # a hit's process -> its host: a rule's hits on hosts known to run another product
        # are dropped before their rows are read (a Windows rule matching every macOS start)
        self.host_of: dict[str, str | None] = {}
        self._gapsets: dict[frozenset[str], frozenset[str]] = {}
        self._reads: dict[str, frozenset[str]] = {}  # what some rule of the logsource reads
        for sr in self.rules:
            self._reads[sr.category] = self._reads.get(sr.category, frozenset()) | sr.reads
        # one index over the rules and then the gates (index len(rules) + i: gate i), so an
        # event's text is searched once for both
        self._index = _indexed([*self.rules, *self.gates])

    @classmethod
    def from_rules(cls, rules: Iterable[Rule]) -> SigmaStream:
        plan = stream_plan(rules)
        return cls(plan.streamed, plan.cypher)

    def candidates(self, category: str, low: Facts) -> set[int]:
        """The rules (not gates) that may match facts `low` (`_candidates`)."""
        n = len(self.rules)
        return {i for i in _candidates(self._index.get(category), low) if i < n}

    def _gate(self, i: int, facts: Facts, low: Facts, missing: set[str]) -> None:
        """Open gate `i` if the event may match it (or lacks a fact it reads)."""
        if i in self.opened:
            return
        gate = self.gates[i]
        self.confirmed += 1
        if not missing.isdisjoint(gate.reads) or gate.test(facts, low) is not False:
            self.opened.add(i)

    def observe(self, event: Event) -> None:
        """One event: its candidate rules confirmed, their hits remembered."""
        started = time.perf_counter()
        self.events += 1
        category = category_of(event) if event.process is not None else None
        if category is None or category not in self._index:
            self.seconds += time.perf_counter() - started
            return
        facts = facts_of(event, category)
        gaps = {expr for expr in FILLABLE[category] if facts.get(expr) is None}
        if event.parent is not None and is_pid_only(event.parent.uid):
            gaps.update(_PARENT)
        if category == "process_creation" and proc_without_facts(event):
            gaps.update(_IMAGE)
        low = lowered(facts)
        key: tuple[str, str] | None = None
        skip: frozenset[str] = frozenset()
        missing = gaps
        gaps = gaps & self._reads.get(category, frozenset())
        undecided = (
            self.undecided.setdefault(category, {}) if gaps and category in RECHECKED else None
        )
        if undecided is not None and len(undecided) < MAX_UNDECIDED:
            # the rules reading a missing fact are decided on the graph's values (recheck)
            key = hit_key(event, category)
            skip = self._interned(frozenset(gaps))
            known = undecided.get(key)
            undecided[key] = skip if known is None else self._interned(known | skip)
        elif gaps:
            self.incomplete.update((category, e) for e in gaps)
        rules = self.rules
        n = len(rules)
        for i in _candidates(self._index[category], low):
            if i >= n:
                self._gate(i - n, facts, low, missing)
                continue
            if skip and not skip.isdisjoint(rules[i].reads):
                continue
            self.confirmed += 1
            if rules[i].test(facts, low):
                if key is None:
                    key = hit_key(event, category)
                self.hits[i].add(key)
                self.host_of[key[0]] = event.host
        self.seconds += time.perf_counter() - started

    # -- in the parser process (graph.parallel.Remote) ------------------------------------------
    def remote(self) -> tuple[Callable[..., Any], tuple[Any, ...]] | None:
        """How the parser process makes this stream's twin: its rules and gates and their specs
        (None when one was made without a spec: the events are then observed here)."""
        watched = [*self.rules, *self.gates]
        if not watched or any(sr.spec is None for sr in watched):
            return None
        pairs = [(sr.rule, sr.spec) for sr in self.rules]
        return _twin, (pairs, [(g.rule, g.spec) for g in self.gates])

    def state(self) -> dict[str, Any]:
        """What was observed, for `absorb` in the ingesting process."""
        return {
            "ids": [sr.rule.id for sr in self.rules],
            "gates": [g.rule.id for g in self.gates],
            "opened": self.opened,
            "hits": self.hits,
            "host_of": self.host_of,
            "incomplete": self.incomplete,
            "undecided": self.undecided,
            "events": self.events,
            "confirmed": self.confirmed,
            "seconds": self.seconds,
        }

    def absorb(self, state: Mapping[str, Any]) -> None:
        """Merge what the twin observed (`state`) into this stream, rule by rule."""
        if state["ids"] != [sr.rule.id for sr in self.rules] or state["gates"] != [
            g.rule.id for g in self.gates
        ]:
            raise ValueError("the parser process observed another rule set")
        self.opened.update(state["opened"])
        for mine, theirs in zip(self.hits, state["hits"], strict=True):
            mine.update(theirs)
        self.host_of.update(state["host_of"])
        self.incomplete.update(state["incomplete"])
        for category, keys in state["undecided"].items():
            undecided = self.undecided.setdefault(category, {})
            for key, gaps in keys.items():
                known = undecided.get(key)
                undecided[key] = self._interned(gaps if known is None else known | gaps)
        self.events += state["events"]
        self.confirmed += state["confirmed"]
        self.seconds += state["seconds"]

    def _interned(self, gaps: frozenset[str]) -> frozenset[str]:
        """One object per distinct set of missing facts (two at the bench's 100k, for 18,036
        identities): about 500 bytes an identity otherwise, some 90 MiB at 1M's 181,912."""
        return self._gapsets.setdefault(gaps, gaps)

    def deferred(self, sr: StreamRule) -> bool:
        """The rule reads a fact some event of this ingest lacked: its matches come from its
        Cypher query instead (exact, slower)."""
        return any((sr.category, expr) in self.incomplete for expr in sr.reads)

    def matched(self) -> dict[str, set[tuple[str, str]]]:
        """Rule id -> the identities it matched so far."""
        return {sr.rule.id: set(h) for sr, h in zip(self.rules, self.hits, strict=True)}

    def recheck(
        self, graph: Graph, since: datetime | None = None, until: datetime | None = None
    ) -> int:
        """Decide the undecided identities (events that lacked a fact the graph may hold) on the
        facts the graph now holds for them, for the rules reading a fact they lacked: the
        values the rule's Cypher query reads, so the same matches. Returns how many identities
        were read back; they are then decided (`matched` includes their hits)."""
        start, end = span(since, until)
        read = 0
        for category, undecided in sorted(self.undecided.items()):
            exprs = sorted(STREAMED[category])
            query = recheck_query(category, exprs)
            listed = sorted(undecided)
            for i in range(0, len(listed), 5000):
                part = listed[i : i + 5000]
                rows = graph.read(
                    query, {"uids": [uid for uid, _ in part], "since": start, "until": end}
                )
                read += len(part)
                for row in rows:
                    key = (row["uid"], "")
                    gaps = undecided.get(key)
                    if gaps is None:
                        continue
                    facts = dict(zip(exprs, row["facts"], strict=True))
                    low = lowered(facts)
                    for r in self.candidates(category, low):
                        sr = self.rules[r]
                        if gaps.isdisjoint(sr.reads):
                            continue  # decided on the event itself
                        self.confirmed += 1
                        if sr.test(facts, low):
                            self.hits[r].add(key)
                            self.host_of[row["uid"]] = facts["p.host"]
        self.undecided = {}
        return read

    def matches(
        self, graph: Graph, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, list[Match]]:
        """Each streamed rule's matches, its rows read from the graph (the rule's own columns),
        analysts' exceptions dropped: what `engine.evaluate` gives for it."""
        self.recheck(graph, since, until)
        start, end = span(since, until)
        # the product test the compiled query makes (query.PLATFORM_CHECK), on the hosts as
        # the graph now knows them: first on the hits' hosts, so no row is read for a hit the
        # test drops, then on the rows' own
        platform = host_platforms(graph, {h for h in self.host_of.values() if h is not None})
        kept: list[set[tuple[str, str]]] = []
        wanted: dict[str, set[tuple[str, str]]] = {}
        for sr, hits in zip(self.rules, self.hits, strict=True):
            if sr.platform is not None:
                hits = {
                    k
                    for k in hits
                    if platform.get(self.host_of.get(k[0]) or "") in (None, sr.platform)
                }
            kept.append(hits)
            if not self.deferred(sr):
                wanted.setdefault(sr.category, set()).update(hits)
        rows = {c: fetch_rows(graph, c, keys, start, end) for c, keys in wanted.items() if keys}
        hosts = {row["host"] for found in rows.values() for r in found.values() for row in r}
        platform.update(host_platforms(graph, hosts - set(platform)))
        out: dict[str, list[Match]] = {}
        for sr, hits in zip(self.rules, kept, strict=True):
            if self.deferred(sr):
                out[sr.rule.id] = evaluate(graph, sr.rule, start, end)
                continue
            found = rows.get(sr.category, {})
            picked = [
                row
                for key in sorted(hits)
                for row in found.get(key, [])
                if sr.platform is None or platform.get(row["host"]) in (None, sr.platform)
            ]
            out[sr.rule.id] = drop_excepted(
                graph, sr.rule, [match_from_row(sr.rule, row) for row in picked]
            )
        return out

    def apply(
        self,
        graph: Graph,
        since: datetime | None = None,
        until: datetime | None = None,
        now: datetime | None = None,
    ) -> list[RuleRun]:
        """The streamed matches written as alerts (the engine's writer), one run per rule;
        the hits are then forgotten."""
        ensure_engine_schema(graph)
        start, end = span(since, until)
        runs = []
        for sr in self.rules:
            run = RuleRun(sr.rule.id, start, end)
            runs.append(run)
        by_id = self.matches(graph, since, until)
        for sr, run in zip(self.rules, runs, strict=True):
            started = time.perf_counter()
            found = by_id.get(sr.rule.id, [])
            applied = apply_matches(graph, sr.rule, found, now)
            run.matches = len(found)
            run.created, run.updated = applied.created, applied.updated
            run.unchanged, run.alert_ids = applied.unchanged, applied.alert_ids
            run.seconds = time.perf_counter() - started
        self.hits = [set() for _ in self.rules]
        self.host_of = {}
        self.incomplete = set()
        self.undecided = {}
        return runs

    def run_cypher(
        self, graph: Graph, since: datetime | None = None, until: datetime | None = None
    ) -> list[RuleRun]:
        """The rules that run as Cypher (`engine.run_rules`), except those whose query begins
        with the pattern of a Sigma logsource that has no row in the window (no script block,
        no service install…), and the gated ones no event of the ingest may match (their
        gates stayed shut, `compile_gate`): they match nothing, and get a run with no matches
        without their query being planned and run (most of SigmaHQ's ps_script and service
        rules; on the bench's telemetry, most file and network rules reading a process's
        command line or a connection's host name)."""
        start, end = span(since, until)
        empty: dict[str, bool] = {}
        # gated rules no event of the ingest may match (their gates forgotten for the next)
        idle = {g.rule.id for i, g in enumerate(self.gates) if i not in self.opened}
        self.opened = set()
        for rule in self.cypher:
            if rule.id in idle:
                continue
            match = next((m for m in _MATCHES if rule.query.startswith(m + "\n")), None)
            if match is None:
                continue
            if match not in empty:
                probe = match + "\nRETURN true AS found LIMIT 1"
                empty[match] = not graph.read(probe, {"since": start, "until": end})
            if empty[match]:
                idle.add(rule.id)
        ran = iter(run_rules(graph, since, until, [r for r in self.cypher if r.id not in idle]))
        return [RuleRun(r.id, start, end) if r.id in idle else next(ran) for r in self.cypher]

    def hook(self, graph: Graph, since: datetime, until: datetime) -> list[RuleRun]:
        """The pipeline's rules hook: streamed rules' alerts, then the other rules as Cypher."""
        return self.apply(graph, since, until) + self.run_cypher(graph, since, until)


def _twin(
    pairs: Sequence[tuple[Rule, Spec]], gates: Sequence[tuple[Rule, Spec]] = ()
) -> SigmaStream:
    """The parser process's stream: the same matchers and gates, made from the same specs."""
    return SigmaStream(
        [compile_stream(rule, {}, spec) for rule, spec in pairs],
        [rule for rule, _ in gates],
        [compile_gate(rule, spec) for rule, spec in gates],
    )


def _indexed(rules: Sequence[StreamRule]) -> dict[str, _Index]:
    """Rules by logsource: those with no literal to require, and an automaton of the others'."""
    out: dict[str, _Index] = {}
    for i, sr in enumerate(rules):
        index = out.setdefault(sr.category, _Index())
        if sr.literals is None or not all(sr.literals):
            index.always.append(i)
            continue
        if index.automaton is None:
            index.automaton = ahocorasick.Automaton()
        for literal in sr.literals:
            group = index.automaton.get(literal, None)
            if group is None:
                index.automaton.add_word(literal, len(index.groups))
                index.groups.append([i])
            else:
                index.groups[group].append(i)
    for index in out.values():
        if index.automaton is not None:
            index.automaton.make_automaton()
    return out


def _candidates(index: _Index | None, low: Facts) -> set[int]:
    """The rules of `index` that may match the event: those with a literal in its text (one
    Aho-Corasick pass over its lower-cased values) and those requiring none."""
    if index is None:
        return set()
    found = set(index.always)
    if index.automaton is not None:
        text = "\x00".join(v for v in low.values() if v)
        # a literal occurs many times in one text (a path's "\\"): each group once
        groups = index.groups
        found.update(*[groups[g] for g in {g for _, g in index.automaton.iter(text)}])
    return found


# -- reading a hit's row back --------------------------------------------------------------------
_KEYED = {
    "process_creation": ("(p:Process)", "(p:Process {uid: k.uid})", None),
    "file_event": ("(f:File)", "(f:File {key: k.target})", "file_key"),
    "file_delete": ("(f:File)", "(f:File {key: k.target})", "file_key"),
    "network_connection": (
        "(c:Connection)",
        "(c:Connection {key: k.target})",
        "connection_key",
    ),
    "dns_query": ("(d:Domain)", "(d:Domain {name: k.target})", "query_name"),
}


def fetch_query(category: str) -> str:
    """The logsource's rule query for given identities (`$keys`, maps of uid and target)
    instead of a condition: the same columns a compiled rule returns."""
    logsource = LOGSOURCES[category]
    plain, keyed, _ = _KEYED[category]
    match = logsource.match.replace(plain, keyed)
    if category != "process_creation":
        match = match.replace("(p:Process)", "(p:Process {uid: k.uid})")
    keyed_source = dataclasses.replace(logsource, match="UNWIND $keys AS k\n" + match)
    return build_query(keyed_source, "true", needs_parent=False)


# the logsources' patterns, longest first (a rule query begins with its logsource's)
_MATCHES = sorted({ls.match for ls in LOGSOURCES.values()}, key=len, reverse=True)


def recheck_query(category: str, exprs: Sequence[str]) -> str:
    """The facts `exprs` (the logsource's graph expressions, `STREAMED`) of the processes
    `$uids` in the window, one row per process and creator, as the rule queries read them."""
    if category not in RECHECKED:
        raise ValueError(f"{category} identities are not read back by process")
    logsource = LOGSOURCES[category]
    plain = _KEYED[category][0]
    # by key whatever the plan cache holds: a plan made on a small graph (a first, small
    # ingest) scanned the window by start_time for each key, 13 s instead of 2 for 18k keys
    keyed = "(p:Process {uid: uid}) USING INDEX p:Process(uid)"
    match = "UNWIND $uids AS uid\n" + logsource.match.replace(plain, keyed)
    lines = pattern_lines(dataclasses.replace(logsource, match=match), "true", join_parent=True)
    lines.append("RETURN p.uid AS uid, [" + ", ".join(exprs) + "] AS facts")
    return "\n".join(lines) + "\n"


def host_platforms(graph: Graph, hosts: Iterable[str]) -> dict[str, str | None]:
    """Host.os by host name (None where the graph does not know it)."""
    names = sorted(set(hosts))
    if not names:
        return {}
    rows = graph.read(
        "UNWIND $names AS n MATCH (h:Host {name: n}) RETURN h.name AS name, h.os AS os",
        {"names": names},
    )
    return {r["name"]: r["os"] for r in rows}


def fetch_rows(
    graph: Graph,
    category: str,
    keys: Iterable[tuple[str, str]],
    since: datetime,
    until: datetime,
    chunk: int = 5000,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The rows of the given identities in [since, until], by identity."""
    query = fetch_query(category)
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    listed = sorted(keys)
    for i in range(0, len(listed), chunk):
        wanted = set(listed[i : i + chunk])
        # a network target names its row's port too (`_port_key`): the edge is keyed without it
        net = category == "network_connection"
        pairs = {(u, t.rsplit("#", 1)[0] if net else t) for u, t in wanted}
        part = [{"uid": u, "target": t} for u, t in sorted(pairs)]
        for row in graph.read(query, {"keys": part, "since": since, "until": until}):
            data = dict(row)
            key = row_key(category, data)
            if key in wanted:
                out.setdefault(key, []).append(data)
    return out


# -- wiring: the catalog's rules as an ingest's observer and rules hook ------------------------
_PLANS: dict[tuple[Any, ...], StreamPlan] = {}


def _plan_key(rules: Sequence[Rule]) -> tuple[Any, ...]:
    return tuple((r.id, r.query, repr(sorted(r.params().items()))) for r in rules)


def catalog_stream(rules: Iterable[Rule] | None = None) -> SigmaStream | None:
    """A fresh stream over the catalog's rules (site settings applied; default: every enabled
    rule), or None when none of them streams. Plans are remembered per rule set, so an API
    process compiles the matchers once, not per request."""
    if rules is None:
        from provgraph.queries.catalog import default_catalog

        rules = default_catalog().rules()
    chosen = list(rules)
    key = _plan_key(chosen)
    plan = _PLANS.get(key)
    if plan is None:
        plan = stream_plan(chosen)
        _PLANS.clear()  # one rule set at a time: the catalog's current one
        _PLANS[key] = plan
    if not plan.streamed:
        return None
    return SigmaStream(plan.streamed, plan.cypher, plan.gates)
