"""A detection rule, built from one YAML file, and the loader that collects every problem.

A rule is data: metadata, tunable parameters, one read-only parameterised Cypher query, and
which returned columns name the entities an alert involves. Loading never stops at the first
bad file: each problem becomes a `RuleError` carrying the file, line and column it points at,
and the good rules still load (pySigma's collect-errors habit). The engine, the CLI and the
API take rules from the catalog (`provgraph.queries.catalog`), which uses this loader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import yaml
from provgraph.core.errors import ProvgraphError

RULES_DIR = Path(__file__).parent / "rules"
SEVERITIES = ("informational", "low", "medium", "high", "critical")
# "value": something an alert is about that is not a graph node, such as the group-by values of
# a Sigma correlation; it takes part in the alert's identity but links to nothing
ENTITY_TYPES = ("host", "process", "file", "connection", "account", "value")
# the engine supplies these to every query: the time range being evaluated
ENGINE_PARAMETERS = frozenset({"since", "until"})
# every query returns these, besides its entity columns
REQUIRED_COLUMNS = ("host", "first_seen", "last_seen")

_ID = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_PARAM_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# Clauses that change the graph or reach outside it. The server refuses writes anyway (rules
# run in read-access transactions); this catches them at load time, with a line number.
_FORBIDDEN = re.compile(
    r"\b(CREATE|MERGE|SET|DELETE|DETACH|REMOVE|DROP|LOAD\s+CSV|FOREACH|GRANT|DENY|REVOKE)\b"
    r"|\bIN\s+TRANSACTIONS\b|\bCALL\s+(dbms|db\.create|apoc)\b",
    re.IGNORECASE,
)
_STRINGS_AND_COMMENTS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|//[^\n]*|`[^`]*`")
_RETURN_ALIAS = re.compile(r"\bAS\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


class RuleError(ProvgraphError):
    """A problem in a rule file, located: 'queries/rules/x.yml:12:3: reason'."""

    def __init__(self, path: Path | str, line: int | None, reason: str, column: int | None = None):
        self.path = str(path)
        self.line = line
        self.column = column
        self.reason = reason
        where = self.path if line is None else f"{self.path}:{line}"
        if line is not None and column is not None:
            where += f":{column}"
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Entity:
    role: str  # what the entity is to the alert: "msbuild", "editor", "file"…
    type: str  # one of ENTITY_TYPES
    column: str  # the returned column holding its key (or a list of keys)
    identity: bool = True  # part of the alert id (a summary's growing sets are not)


@dataclass(frozen=True)
class Schedule:
    interval: timedelta
    lookback: timedelta


@dataclass(frozen=True)
class Suppression:
    fields: tuple[str, ...]  # returned columns; equal values within `duration` fold into one alert
    duration: timedelta


@dataclass(frozen=True)
class Example:
    """A small event story embedded in a rule, with the number of matches it must give."""

    name: str
    events: tuple[dict[str, Any], ...]
    expect: int


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    description: str
    severity: str
    risk_score: int
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    references: tuple[str, ...]
    parameters: dict[str, Any]
    query: str
    entities: tuple[Entity, ...]
    schedule: Schedule
    suppression: Suppression
    summary: str  # str.format template over the returned row
    false_positives: tuple[str, ...]
    investigation: str
    examples: tuple[Example, ...] = ()
    path: Path | None = None
    query_line: int = 1  # file line of the query's first line, for server error positions
    columns: tuple[str, ...] = field(default=())
    # how long the query may run on the server; None: the catalog's default (a site setting)
    time_limit: timedelta | None = None
    # free-form facts about where the rule came from, shown by the API and on its alerts; a rule
    # compiled from Sigma keeps its Sigma id, title, level, status, tags, author… under "sigma"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The query's parameters: the rule's, with `overrides` (a mapping) over them."""
        return {**self.parameters, **(overrides or {})}


# -- YAML with positions -----------------------------------------------------------------------
class _Located(dict[str, Any]):
    """A mapping that remembers the (1-based) line and column of each key, and its own."""

    line: int = 1
    column: int = 1
    key_marks: dict[str, tuple[int, int]]
    value_nodes: dict[str, yaml.Node]


class _LocatingLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        mapping = _Located(cast("dict[str, Any]", super().construct_mapping(node, deep=True)))
        mapping.line, mapping.column = node.start_mark.line + 1, node.start_mark.column + 1
        mapping.key_marks = {}
        mapping.value_nodes = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in mapping.key_marks:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            mapping.key_marks[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            mapping.value_nodes[key] = value_node
        return mapping


_LocatingLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LocatingLoader.construct_mapping
)


def parse_duration(value: Any) -> timedelta:
    """ "30s", "5m", "1h", "5d" (or a number of seconds)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float) and value >= 0:
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration (use 30s, 5m, 1h or 5d): {value!r}")
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def returned_columns(query: str) -> tuple[str, ...]:
    """Aliases of the final RETURN clause (every rule names its columns with AS)."""
    text = _STRINGS_AND_COMMENTS.sub("''", query)
    tail = re.split(r"\bRETURN\b", text, flags=re.IGNORECASE)[-1]
    tail = re.split(r"\b(ORDER\s+BY|SKIP|LIMIT)\b", tail, flags=re.IGNORECASE)[0]
    return tuple(_RETURN_ALIAS.findall(tail))


# -- building a rule, collecting problems ------------------------------------------------------
class _Builder:
    def __init__(self, path: Path, doc: _Located) -> None:
        self.path = path
        self.doc = doc
        self.errors: list[RuleError] = []

    def error(self, reason: str, key: str | None = None, within: _Located | None = None) -> None:
        mapping = within if within is not None else self.doc
        line, column = (
            mapping.key_marks.get(key, (mapping.line, mapping.column))
            if key
            else (mapping.line, mapping.column)
        )
        self.errors.append(RuleError(self.path, line, reason, column))

    def take(
        self,
        key: str,
        kind: type | tuple[type, ...],
        *,
        within: _Located | None = None,
        required: bool = True,
        default: Any = None,
    ) -> Any:
        mapping = within if within is not None else self.doc
        if key not in mapping:
            if required:
                self.error(f"missing required key '{key}'", within=mapping)
            return default
        value = mapping[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, (int,)):
            expected = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            self.error(f"'{key}' must be {expected}, not {type(value).__name__}", key, mapping)
            return default
        return value

    def strings(
        self, key: str, *, within: _Located | None = None, required: bool = True
    ) -> tuple[str, ...]:
        values = self.take(key, list, within=within, required=required, default=[])
        if not all(isinstance(v, str) for v in values):
            self.error(f"'{key}' must be a list of strings", key, within)
            return ()
        return tuple(values)

    def duration(self, key: str, within: _Located) -> timedelta:
        if key not in within:
            self.error(f"missing required key '{key}'", within=within)
            return timedelta(0)
        try:
            return parse_duration(within[key])
        except ValueError as error:
            self.error(f"'{key}': {error}", key, within)
            return timedelta(0)


_TOP_KEYS = {
    "id",
    "name",
    "description",
    "severity",
    "risk_score",
    "mitre",
    "references",
    "parameters",
    "query",
    "entities",
    "schedule",
    "suppression",
    "summary",
    "false_positives",
    "investigation",
    "examples",
    "time_limit",
    "metadata",
}


def parse_rule(text: str, path: Path | str) -> tuple[Rule | None, list[RuleError]]:
    """Build one rule from YAML text; every problem found is returned, not just the first."""
    path = Path(path)
    try:
        doc = yaml.load(text, Loader=_LocatingLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        reason = f"not valid YAML: {error.problem or error.context}"
        return None, [RuleError(path, line, reason, column)]
    except yaml.YAMLError as error:
        return None, [RuleError(path, None, f"not valid YAML: {error}")]
    if not isinstance(doc, _Located):
        return None, [RuleError(path, 1, "a rule file must be a YAML mapping")]
    b = _Builder(path, doc)
    for key in doc:
        if key not in _TOP_KEYS:
            b.error(f"unknown key '{key}'", key)
    rule_id = b.take("id", str, default="")
    if rule_id and not _ID.match(rule_id):
        b.error(f"id {rule_id!r} must be lower_snake_case (3-64 characters)", "id")
    if rule_id and path.suffix in (".yml", ".yaml") and path.stem != rule_id:
        b.error(f"id {rule_id!r} does not match the file name {path.name!r}", "id")
    severity = b.take("severity", str, default="")
    if severity and severity not in SEVERITIES:
        b.error(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}", "severity")
    risk = b.take("risk_score", int, default=0)
    if not 0 <= risk <= 100:
        b.error(f"risk_score {risk} is outside 0-100", "risk_score")
    mitre = b.take("mitre", dict, default=_Located())
    tactics = b.strings("tactics", within=mitre) if isinstance(mitre, _Located) else ()
    techniques = b.strings("techniques", within=mitre) if isinstance(mitre, _Located) else ()
    for technique in techniques:
        if not re.match(r"^T\d{4}(\.\d{3})?$", technique):
            b.error(f"technique {technique!r} is not an ATT&CK id like T1127.001", "mitre")
    for tactic in tactics:
        if not re.match(r"^TA\d{4}$", tactic):
            b.error(f"tactic {tactic!r} is not an ATT&CK id like TA0002", "mitre")
    parameters = b.take("parameters", dict, required=False, default=_Located())
    for key in parameters:
        if key in ENGINE_PARAMETERS:
            b.error(f"parameter '{key}' is reserved: the engine supplies it", key, parameters)
    query, query_line = _query(b, parameters)
    columns = returned_columns(query) if query else ()
    entities = _entities(b, columns)
    schedule = _schedule(b)
    suppression = _suppression(b, columns)
    if query:
        for required in REQUIRED_COLUMNS:
            if required not in columns:
                b.error(f"the query must return a column named '{required}'", "query")
    rule = Rule(
        id=rule_id,
        name=b.take("name", str, default=""),
        description=b.take("description", str, default="").strip(),
        severity=severity,
        risk_score=risk,
        tactics=tactics,
        techniques=techniques,
        references=b.strings("references", required=False),
        parameters=dict(parameters),
        query=query,
        entities=entities,
        schedule=schedule,
        suppression=suppression,
        summary=b.take("summary", str, default="").strip(),
        false_positives=b.strings("false_positives"),
        investigation=b.take("investigation", str, default="").strip(),
        examples=_examples(b),
        path=path,
        query_line=query_line,
        columns=columns,
        time_limit=_time_limit(b),
        metadata=_metadata(b),
    )
    return (None, b.errors) if b.errors else (rule, [])


def _query(b: _Builder, parameters: dict[str, Any]) -> tuple[str, int]:
    query = b.take("query", str, default="")
    if not query:
        return "", 1
    node = b.doc.value_nodes["query"]
    # a block scalar's text starts on the line after its indicator
    first_line = node.start_mark.line + (2 if getattr(node, "style", None) in ("|", ">") else 1)
    scrubbed = _STRINGS_AND_COMMENTS.sub("''", query)
    forbidden = _FORBIDDEN.search(scrubbed)
    if forbidden:
        line = first_line + scrubbed.count("\n", 0, forbidden.start())
        b.errors.append(
            RuleError(b.path, line, f"rules are read-only: '{forbidden.group(0)}' is not allowed")
        )
    for match in _PARAM_REF.finditer(query):
        name = match.group(1)
        if name not in parameters and name not in ENGINE_PARAMETERS:
            line = first_line + query.count("\n", 0, match.start())
            b.errors.append(
                RuleError(b.path, line, f"query uses ${name}, which is not a parameter")
            )
    used = {m.group(1) for m in _PARAM_REF.finditer(query)}
    for name in parameters:
        if name not in used:
            within = parameters if isinstance(parameters, _Located) else None
            b.error(f"parameter '{name}' is not used by the query", name, within)
    return query, first_line


def _entities(b: _Builder, columns: tuple[str, ...]) -> tuple[Entity, ...]:
    items = b.take("entities", list, default=[])
    entities: list[Entity] = []
    for item in items:
        if not isinstance(item, _Located):
            b.error("each entity must be a mapping with role, type and column", "entities")
            continue
        role = b.take("role", str, within=item, default="")
        kind = b.take("type", str, within=item, default="")
        column = b.take("column", str, within=item, default="")
        identity = b.take("identity", bool, within=item, required=False, default=True)
        if kind and kind not in ENTITY_TYPES:
            b.error(f"entity type {kind!r} is not one of {', '.join(ENTITY_TYPES)}", "type", item)
        if column and columns and column not in columns:
            b.error(f"entity column '{column}' is not returned by the query", "column", item)
        if role in {e.role for e in entities}:
            b.error(f"entity role '{role}' is declared twice", "role", item)
        entities.append(Entity(role=role, type=kind, column=column, identity=identity))
    if items and not any(e.identity for e in entities):
        b.error("at least one entity must be part of the alert identity", "entities")
    return tuple(entities)


def _schedule(b: _Builder) -> Schedule:
    section = b.take("schedule", dict, default=None)
    if section is None:
        return Schedule(timedelta(0), timedelta(0))
    interval, lookback = b.duration("interval", section), b.duration("lookback", section)
    if interval and lookback < interval:
        b.error("lookback shorter than interval would leave gaps between runs", "lookback", section)
    return Schedule(interval, lookback)


def _suppression(b: _Builder, columns: tuple[str, ...]) -> Suppression:
    section = b.take("suppression", dict, default=None)
    if section is None:
        return Suppression((), timedelta(0))
    fields = b.strings("fields", within=section)
    for name in fields:
        if columns and name not in columns:
            b.error(f"suppression field '{name}' is not returned by the query", "fields", section)
    return Suppression(fields, b.duration("duration", section))


def _time_limit(b: _Builder) -> timedelta | None:
    if "time_limit" not in b.doc:
        return None
    problems = len(b.errors)
    limit = b.duration("time_limit", b.doc)
    if len(b.errors) > problems:
        return None
    if limit <= timedelta(0):
        b.error("'time_limit' must be longer than 0s", "time_limit")
        return None
    return limit


def _metadata(b: _Builder) -> dict[str, Any]:
    section = b.take("metadata", dict, required=False, default={})
    return _plain(section) if isinstance(section, dict) else {}


def _plain(value: Any) -> Any:
    """YAML as plain dicts and lists (the loader's located mappings are dict subclasses)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _examples(b: _Builder) -> tuple[Example, ...]:
    items = b.take("examples", list, required=False, default=[])
    examples = []
    for item in items:
        if not isinstance(item, _Located):
            b.error("each example must be a mapping with name, events and expect", "examples")
            continue
        events = b.take("events", list, within=item, default=[])
        examples.append(
            Example(
                name=b.take("name", str, within=item, default=""),
                events=tuple(events),
                expect=b.take("expect", int, within=item, default=0),
            )
        )
    return tuple(examples)


# -- collections -------------------------------------------------------------------------------
@dataclass
class RuleSet:
    rules: list[Rule]
    errors: list[RuleError]

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def load_rules(directory: Path | str = RULES_DIR) -> RuleSet:
    """Every `*.yml` under `directory`; a broken file is reported and the others still load."""
    rules: list[Rule] = []
    errors: list[RuleError] = []
    seen: dict[str, Path] = {}
    for path in sorted(Path(directory).glob("*.y*ml")):
        rule, problems = parse_rule(path.read_text(encoding="utf-8"), path)
        errors.extend(problems)
        if rule is None:
            continue
        if rule.id in seen:
            errors.append(
                RuleError(path, None, f"id {rule.id!r} is already used by {seen[rule.id]}")
            )
            continue
        seen[rule.id] = path
        rules.append(rule)
    return RuleSet(rules, errors)


def load_rule(path: Path | str) -> Rule:
    """One rule file; raises the first problem (all of them are in its `errors` note)."""
    path = Path(path)
    rule, problems = parse_rule(path.read_text(encoding="utf-8"), path)
    if rule is None:
        raise problems[0]
    return rule
