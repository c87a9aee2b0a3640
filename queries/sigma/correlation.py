"""Sigma correlation rules as one Cypher query over the same graph.

A correlation reads the events of the rules it names (each compiled by `CypherBackend` into a
graph pattern, or, chained, the matches of another correlation) as rows

    rule (index in the correlation's list), host, t (the event's time), uid (the acting
    process), g (the group-by values), v (the counted field's value, for value_count)

gathered with `CALL { … UNION ALL … }`, grouped by `g` and ordered by time. Then, per group:

  * `gte`/`gt` conditions (and `temporal`, `temporal_ordered`): sliding windows. Every event
    opens a window of `timespan` (its end found by binary search over the sorted times); a
    window qualifies when it holds enough events (`event_count`), distinct values of the field
    (`value_count`), distinct rules (`temporal`; an extended condition such as `a and not b`
    tests which rules are present) or the rules in their order (`temporal_ordered`, greedy:
    exact for a fixed first event). Qualifying windows that overlap merge into one match, so a
    burst is one alert however long it lasts. Exact: a burst that straddles any boundary is
    found, unlike SIEM `bin` buckets.
  * `lt`/`lte`/`eq`/`neq` conditions: a count that must stay small has no sliding form (some
    window always holds one event), so these use fixed buckets of `timespan` from the epoch,
    as the SIEM backends' `bin` does; only buckets that hold at least one event count.

The engine's range: events are read from [since - timespan, until + timespan] (widened again
per chained level) so windows at the edges are whole; a match is kept when its events reach
into [since, until]. An event whose group-by value is missing is left out (as `stats … by`
does). An event that two of the named rules match counts for both. Equal times are ordered
by the rules' order. All values are parameters: the threshold (`threshold`), the timespan in
seconds (`timespan_s`), the group-by names and rule titles used in the returned text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from provgraph.queries.sigma.errors import Unsupported
from provgraph.queries.sigma.mapping import LOGSOURCES, Field
from provgraph.queries.sigma.query import PLATFORM_PARAM, CompiledQuery, pattern_lines
from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionItem,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)
from sigma.rule import SigmaRule

SUPPORTED = (
    SigmaCorrelationType.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED,
)
_OPS = {
    SigmaCorrelationConditionOperator.GTE: ">=",
    SigmaCorrelationConditionOperator.GT: ">",
    SigmaCorrelationConditionOperator.LTE: "<=",
    SigmaCorrelationConditionOperator.LT: "<",
    SigmaCorrelationConditionOperator.EQ: "=",
    SigmaCorrelationConditionOperator.NEQ: "<>",
}
_SLIDING = (SigmaCorrelationConditionOperator.GTE, SigmaCorrelationConditionOperator.GT)
_COLUMNS = "g, ts, rs, hs, us, vs"
MAX_PROCESSES = 100  # process uids an alert of a correlation links to


@dataclass
class CompiledCorrelation:
    """One correlation rule as one query, with what it stands on."""

    query: str
    params: dict[str, Any]
    type: str  # event_count, value_count, temporal, temporal_ordered
    timespan_s: int
    group_by: tuple[str, ...]
    rules: tuple[tuple[str, str], ...]  # (Sigma id or name, title) of the rules it names
    logsources: tuple[str, ...]
    fields: tuple[str, ...]
    caveats: tuple[str, ...] = ()
    placeholders: tuple[str, ...] = ()


def describe(rule: SigmaRule | SigmaCorrelationRule) -> str:
    return str(rule.name or rule.id or rule.title)


def _type_name(rule: SigmaCorrelationRule) -> str:
    return str(rule.type.name).lower()


@dataclass
class _Level:
    """What one correlation (at some chain depth) contributes: text, parameters, facts."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)
    logsources: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)


BaseCompiler = Callable[[SigmaRule], CompiledQuery]


class CorrelationBuilder:
    """Builds the query of one correlation rule; `compile_base` compiles a named Sigma rule
    into its graph pattern (raising Unsupported when it cannot)."""

    def __init__(self, compile_base: BaseCompiler) -> None:
        self.compile_base = compile_base
        self._levels = 0

    def build(self, rule: SigmaCorrelationRule) -> CompiledCorrelation:
        self._levels = 0
        level = self._correlation(rule, depth=0, prefix="", seen=())
        rules = tuple(
            (str(ref.rule.id or ref.rule.name or ref.reference), str(ref.rule.title))
            for ref in rule.referenced_rules
        )
        level.params["group_by"] = list(rule.group_by or [])
        level.params["rule_titles"] = [title for _, title in rules]
        return CompiledCorrelation(
            query=level.text + "\n" + returns() + "\n",
            params=level.params,
            type=_type_name(rule),
            timespan_s=int(rule.timespan.seconds),
            group_by=tuple(rule.group_by or ()),
            rules=rules,
            logsources=tuple(dict.fromkeys(level.logsources)),
            fields=tuple(dict.fromkeys(level.fields)),
            caveats=tuple(dict.fromkeys(level.caveats)),
            placeholders=tuple(dict.fromkeys(level.placeholders)),
        )

    # -- one correlation -------------------------------------------------------------------
    def _correlation(
        self,
        rule: SigmaCorrelationRule,
        depth: int,
        prefix: str,
        seen: tuple[int, ...],
        outer: tuple[str, str] | None = None,
    ) -> _Level:
        """The correlation's matches. At depth 0 the final rows come later (`_returns`); a
        chained correlation (depth > 0) ends on `(rule, host, t, uid, g, v)` rows for its
        caller, which picks and renames the columns."""
        if id(rule) in seen:
            raise Unsupported(
                "correlation", f"correlation {describe(rule)} refers to itself", ("cycle",)
            )
        if rule.type not in SUPPORTED:
            raise Unsupported(
                "correlation",
                f"{_type_name(rule)} correlations are not supported (event_count, value_count, "
                "temporal and temporal_ordered are)",
                (_type_name(rule),),
            )
        if not rule.referenced_rules:
            raise Unsupported("correlation", "the correlation names no rules", ("no rules",))
        since, until = f"since_{depth}", f"until_{depth}"
        span = f"${prefix}timespan_s"
        params: dict[str, Any] = {f"{prefix}timespan_s": int(rule.timespan.seconds)}
        level = _Level(text="", params=params)
        group_by = list(rule.group_by or [])
        value_field = self._value_field(rule)
        branches = []
        for index, ref in enumerate(rule.referenced_rules):
            names = [self._alias(rule, name, ref) for name in group_by]
            value = self._alias(rule, value_field, ref) if value_field else None
            branch = self._branch(
                ref, index, f"{prefix}r{index}_", depth, since, until, names, value, seen, rule
            )
            branches.append(branch.text)
            level.params.update(branch.params)
            level.logsources += branch.logsources
            level.fields += branch.fields
            level.caveats += branch.caveats
            level.placeholders += branch.placeholders
        level.fields += group_by + ([value_field] if value_field else [])
        if outer is None:
            head = (
                f"WITH $since - duration({{seconds: {span}}}) AS {since}, "
                f"$until + duration({{seconds: {span}}}) AS {until}"
            )
            carry: list[str] = []
            low, high = "$since", "$until"
        else:
            outer_since, outer_until = outer
            head = (
                f"WITH {outer_since}, {outer_until}, "
                f"{outer_since} - duration({{seconds: {span}}}) AS {since}, "
                f"{outer_until} + duration({{seconds: {span}}}) AS {until}"
            )
            carry = [outer_since, outer_until]
            low, high = outer
        union = "\n  UNION ALL\n".join(_indent(text, "  ") for text in branches)
        lines = [head, f"CALL ({since}, {until}) {{", union, "}"]
        lines += self._aggregate(rule, prefix, span, carry, low, high, level.params)
        level.text = "\n".join(lines)
        return level

    def _value_field(self, rule: SigmaCorrelationRule) -> str | None:
        if rule.type != SigmaCorrelationType.VALUE_COUNT:
            return None
        condition = rule.condition
        assert isinstance(condition, SigmaCorrelationCondition)
        fieldref = condition.fieldref
        if isinstance(fieldref, list):
            if len(fieldref) != 1:
                raise Unsupported(
                    "correlation",
                    "value_count over several fields (distinct combinations) is not supported",
                    ("value_count fields",),
                )
            fieldref = fieldref[0]
        if not fieldref:
            raise Unsupported("correlation", "value_count without a field", ("value_count",))
        return str(fieldref)

    @staticmethod
    def _alias(rule: SigmaCorrelationRule, name: str, ref: SigmaRuleReference) -> str:
        """The field a named rule's events hold `name` in (Sigma's correlation aliases)."""
        alias = rule.aliases.aliases.get(name)
        if alias is None:
            return name
        target = ref.rule
        for key, field_name in alias.mapping.items():
            if key.reference in (ref.reference, str(target.id), target.name):
                return str(field_name)
        raise Unsupported(
            "correlation",
            f"alias '{name}' names no field for rule {describe(target)}",
            (f"alias {name}",),
        )

    # -- the rows of one named rule ----------------------------------------------------------
    def _branch(
        self,
        ref: SigmaRuleReference,
        index: int,
        prefix: str,
        depth: int,
        since: str,
        until: str,
        group: list[str],
        value: str | None,
        seen: tuple[int, ...],
        parent: SigmaCorrelationRule,
    ) -> _Level:
        target = ref.rule
        if isinstance(target, SigmaCorrelationRule):
            return self._chained(target, index, depth, since, until, group, value, seen, parent)
        try:
            compiled = self.compile_base(target)
        except Unsupported as error:
            raise Unsupported(
                error.kind,
                f"rule {describe(target)} named by the correlation does not compile: "
                f"{error.message}",
                error.details,
            ) from error
        logsource = LOGSOURCES[compiled.logsource]
        expressions = [
            _expression(logsource.field(name), name, logsource.category) for name in group
        ]
        value_expr = (
            _expression(logsource.field(value), value, logsource.category) if value else "null"
        )

        def rename(text: str) -> str:
            text = re.sub(r"\$p(\d+)\b", lambda m: f"${prefix}p{m.group(1)}", text)
            text = re.sub(rf"\${PLATFORM_PARAM}\b", f"${prefix}{PLATFORM_PARAM}", text)
            text = re.sub(r"\$since\b", since, text)
            return re.sub(r"\$until\b", until, text)

        params = {
            (f"{prefix}{name}" if re.fullmatch(r"p\d+", name) else name): item
            for name, item in compiled.params.items()
        }
        if compiled.platform is not None:  # each rule of the correlation keeps its own product
            params[f"{prefix}{PLATFORM_PARAM}"] = compiled.platform
        reads = [*expressions, value_expr]
        join_parent = compiled.needs_parent or any(re.search(r"\bparent\.", e) for e in reads)
        lines = pattern_lines(logsource, compiled.condition, join_parent, compiled.platform)
        if logsource.times is None:
            time = logsource.time
        else:
            variables = sorted(logsource.variables | ({"parent"} if join_parent else set()))
            lines.append(f"WITH {', '.join(variables)}, {logsource.times} AS hits")
            lines.append("UNWIND hits AS t")
            time = "t"
        lines.append(
            f"RETURN {index} AS rule, {logsource.host} AS host, {time} AS t, "
            f"{'p.uid' if 'p' in logsource.variables else 'null'} AS uid, "
            f"[{', '.join(expressions)}] AS g, {value_expr} AS v"
        )
        return _Level(
            text=rename("\n".join(lines)),
            params=params,
            logsources=[compiled.logsource],
            fields=list(compiled.fields),
            caveats=list(compiled.caveats),
            placeholders=list(compiled.placeholders),
        )

    def _chained(
        self,
        target: SigmaCorrelationRule,
        index: int,
        depth: int,
        since: str,
        until: str,
        group: list[str],
        value: str | None,
        seen: tuple[int, ...],
        parent: SigmaCorrelationRule,
    ) -> _Level:
        """A correlation named by a correlation: each of its matches is one event, at the time
        of its last event, carrying its group-by values."""
        inner_groups = list(target.group_by or [])
        positions = []
        for name in group + ([value] if value else []):
            if name not in inner_groups:
                raise Unsupported(
                    "correlation",
                    f"'{name}' is not a group-by field of the chained correlation "
                    f"{describe(target)} (its group-by: {', '.join(inner_groups) or 'none'})",
                    (f"chained field {name}",),
                )
            positions.append(inner_groups.index(name))
        self._levels += 1
        inner = self._correlation(
            target, depth + 1, f"c{self._levels}_", (*seen, id(parent)), outer=(since, until)
        )
        picks = [f"g[{i}]" for i in positions[: len(group)]]
        value_expr = f"g[{positions[-1]}]" if value else "null"
        inner.text += (
            f"\nRETURN {index} AS rule, hs[z] AS host, ts[z] AS t, us[z] AS uid, "
            f"[{', '.join(picks)}] AS g, {value_expr} AS v"
        )
        return inner

    # -- per group: windows, qualifying windows, merged matches ---------------------------------
    def _aggregate(
        self,
        rule: SigmaCorrelationRule,
        prefix: str,
        span: str,
        carry: list[str],
        low: str,
        high: str,
        params: dict[str, Any],
    ) -> list[str]:
        keep = "".join(f"{name}, " for name in carry)
        condition = rule.condition
        lines = [
            f"WITH {keep}rule, host, t, uid, g, v",
            "WHERE all(x IN g WHERE x IS NOT NULL)",
            f"WITH {keep}rule, host, t, uid, g, v ORDER BY t, rule",
        ]
        threshold = f"${prefix}threshold"
        sliding = isinstance(condition, SigmaExtendedCorrelationCondition) or (
            condition.op in _SLIDING
        )
        if rule.type == SigmaCorrelationType.TEMPORAL_ORDERED:
            qualifies = self._ordered(rule)
            sliding = True
        elif isinstance(condition, SigmaExtendedCorrelationCondition):
            names = [ref.reference for ref in rule.referenced_rules]
            qualifies = _extended(condition.parsed, names, "w[0]", "w[1]")
        else:
            params[f"{prefix}threshold"] = condition.count
            metric = _metric(rule.type, "w[0]" if sliding else "a", "w[1]" if sliding else "z")
            qualifies = f"{metric} {_OPS[condition.op]} {threshold}"
        collect = (
            "collect(t) AS ts, collect(rule) AS rs, collect(host) AS hs, collect(uid) AS us, "
            "collect(v) AS vs"
        )
        if sliding:
            lines += [
                f"WITH {keep}g, {collect}",
                f"WITH {keep}{_COLUMNS}, [i IN range(0, size(ts) - 1) | [i, {_window_end(span)}]]"
                " AS spans",
                f"WITH {keep}{_COLUMNS}, [w IN spans WHERE {qualifies}] AS hits",
                f"WITH {keep}{_COLUMNS}, reduce(bs = [], w IN hits | CASE WHEN size(bs) > 0 "
                "AND w[0] <= bs[-1][1] THEN bs[0..-1] + [[bs[-1][0], CASE WHEN w[1] > bs[-1][1] "
                "THEN w[1] ELSE bs[-1][1] END]] ELSE bs + [w] END) AS bursts",
                "UNWIND bursts AS b",
                f"WITH {keep}{_COLUMNS}, b[0] AS a, b[1] AS z",
            ]
        else:
            lines += [
                f"WITH {keep}g, t.epochSeconds / {span} AS bucket, {collect}",
                f"WITH {keep}{_COLUMNS}, 0 AS a, size(ts) - 1 AS z",
                f"WHERE {qualifies}",
                f"WITH {keep}{_COLUMNS}, a, z",
            ]
        if carry:  # a chained level: its matches at times inside the caller's window
            lines.append(f"WHERE ts[z] >= {low} AND ts[z] <= {high}")
        else:
            lines.append(f"WHERE ts[z] >= {low} AND ts[a] <= {high}")
        return lines

    @staticmethod
    def _ordered(rule: SigmaCorrelationRule) -> str:
        condition = rule.condition
        count = len(rule.referenced_rules)
        if isinstance(condition, SigmaExtendedCorrelationCondition):
            raise Unsupported(
                "correlation",
                "an extended condition on a temporal_ordered correlation is not supported",
                ("extended temporal_ordered",),
            )
        if not (condition.op == SigmaCorrelationConditionOperator.GTE and condition.count == count):
            raise Unsupported(
                "correlation",
                "temporal_ordered is supported with its default condition (all rules, in order)",
                ("temporal_ordered condition",),
            )
        return (
            "rs[w[0]] = 0 AND reduce(k = 0, x IN rs[w[0]..w[1] + 1] | "
            f"CASE WHEN k < {count} AND x = k THEN k + 1 ELSE k END) = {count}"
        )


def _expression(row: Field | None, name: str, category: str) -> str:
    if row is None:
        raise Unsupported("field", f"field '{name}' has no mapping for {category}", (name,))
    if row.expr is None:
        raise Unsupported("field", f"field '{name}' is not in the graph: {row.reason}", (name,))
    if row.lineage is not None:
        raise Unsupported(
            "correlation",
            f"a lineage field ({name}) cannot be a correlation's group-by or counted field",
            (name,),
        )
    return row.expr


def _metric(kind: SigmaCorrelationType, a: str, z: str) -> str:
    if kind == SigmaCorrelationType.EVENT_COUNT:
        return f"({z} - {a} + 1)"
    column = "vs" if kind == SigmaCorrelationType.VALUE_COUNT else "rs"
    return (
        f"COUNT {{ UNWIND {column}[{a}..{z} + 1] AS x WITH DISTINCT x WHERE x IS NOT NULL "
        "RETURN x }"
    )


def _window_end(span: str) -> str:
    """The last index whose time lies within `span` seconds of event i (binary search over
    the sorted times: a window costs log n steps, not n)."""
    mid = "(b[0] + b[1] + 1) / 2"
    return (
        "reduce(b = [i, size(ts) - 1], step IN range(0, toInteger(ceil(log(size(ts) + 1) / "
        f"log(2)))) | CASE WHEN b[0] >= b[1] THEN b WHEN ts[{mid}] <= ts[i] + duration("
        f"{{seconds: {span}}}) THEN [{mid}, b[1]] ELSE [b[0], {mid} - 1] END)[0]"
    )


def _extended(node: Any, names: Sequence[str], a: str, z: str) -> str:
    """An extended temporal condition (`a and (b or not c)`) over which rules the window holds."""
    if isinstance(node, SigmaRuleReference):
        return f"{names.index(node.reference)} IN rs[{a}..{z} + 1]"
    assert isinstance(node, CorrelationConditionItem)
    parts = [_extended(arg, names, a, z) for arg in node.args]
    if isinstance(node, CorrelationConditionNOT):
        return f"NOT ({parts[0]})"
    if isinstance(node, CorrelationConditionAND):
        return "(" + " AND ".join(parts) + ")"
    if isinstance(node, CorrelationConditionOR):
        return "(" + " OR ".join(parts) + ")"
    raise Unsupported("correlation", "an unknown extended condition", ("extended condition",))


def returns(prefix: str = "") -> str:
    """The final columns of a top-level correlation: the engine's, the alert's entities, and
    what the analyst reads first. (The subqueries sit in a WITH: a rule's RETURN clause is
    read for its column names.)"""
    return (
        f"WITH {_COLUMNS}, a, z,\n"
        "     COLLECT { UNWIND us[a..z + 1] AS x WITH DISTINCT x WHERE x IS NOT NULL "
        f"RETURN x LIMIT {MAX_PROCESSES} }} AS process_uids,\n"
        "     COLLECT { UNWIND hs[a..z + 1] AS x WITH DISTINCT x WHERE x IS NOT NULL "
        "RETURN x } AS hosts\n"
        "RETURN hs[a] AS host, ts[a] AS first_seen, ts[z] AS last_seen,\n"
        "       reduce(s = '', i IN range(0, size(g) - 1) | s + CASE WHEN i = 0 THEN '' "
        f"ELSE ', ' END + ${prefix}group_by[i] + '=' + toString(g[i])) AS group_key,\n"
        "       g AS group_values, toString(ts[a]) AS window_start, z - a + 1 AS events,\n"
        "       process_uids AS process_uids, hosts AS hosts,\n"
        f"       [k IN range(0, size(${prefix}rule_titles) - 1) WHERE k IN rs[a..z + 1] "
        f"| ${prefix}rule_titles[k]] AS rules_matched"
    )


def _indent(text: str, pad: str) -> str:
    return "\n".join(pad + line for line in text.splitlines())
