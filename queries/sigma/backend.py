"""`CypherBackend`: pySigma's text-query backend, emitting parameterised Cypher over the graph.

pySigma backends normally format values into the query text; this one never does. Every value
becomes a parameter (`$p0`, `$p1`, … in the returned `CompiledQuery.params`); the query text
holds only field expressions from `mapping` and constant Cypher.

Semantics (Sigma's):
  * strings compare case-insensitively (`toLower(field)` against a lower-cased parameter) unless
    `cased`; `*`/`?` wildcards become STARTS WITH / ENDS WITH / CONTAINS where they can, else a
    Java regex (`=~`, whole-string match, `(?s)` so `*` spans lines);
  * `re` is a search, not a whole-string match: `(?s:.*)(?:RE)(?s:.*)`, flags i/m/s inline;
  * value lists are OR (`field IN $p` / `any(v IN $p WHERE …)`), `all` is AND (`all(…)`);
  * a missing property (null) matches nothing: every NOT is `NOT coalesce(…, false)`, so
    `not filter` holds for an event without the filtered field (as in Sigma's SIEM targets);
  * `cidr` is an exact range test on the parsed address (IPv4 octets, IPv6 groups compared as
    lists), with no expansion into text prefixes;
  * `expand` placeholders without a value at compile time become list parameters `$ph_<name>`
    (empty by default: set them in the rule settings);
  * lineage fields (`AncestorImage`, `DescendantCommandLine`, …, see `mapping.LINEAGE`) become
    `EXISTS { MATCH <variable-length SPAWNED path> WHERE … }`: conditions on ancestors joined by
    AND (within a selection or across selections) hold for one and the same ancestor, OR-ed ones
    for any, and `not` means no ancestor matches (likewise for descendants).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from provgraph.queries.sigma.correlation import CompiledCorrelation, CorrelationBuilder
from provgraph.queries.sigma.errors import Unsupported
from provgraph.queries.sigma.mapping import LINEAGE, LOGSOURCES, PRODUCTS, Field, Logsource
from provgraph.queries.sigma.pipeline import STATE_KEY, provgraph_pipeline
from provgraph.queries.sigma.query import CompiledQuery, build_query
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaFieldReference,
    SigmaNumber,
    SigmaQueryExpression,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

# string operators a value's wildcards reduce to (None: needs a regex)
_OPS = {"eq": "=", "startswith": "STARTS WITH", "endswith": "ENDS WITH", "contains": "CONTAINS"}
_COMPARE = {
    CompareOperators.LT: "<",
    CompareOperators.LTE: "<=",
    CompareOperators.GT: ">",
    CompareOperators.GTE: ">=",
    CompareOperators.NEQ: "<>",
}
_INT = re.compile(r"^-?\d+$")


@dataclass
class _Group:
    """Leaves of one AND/OR that test one subject with one operator: one list parameter."""

    subject: str
    op: str  # a key of _OPS, "int" (integer equality) or "cidr"
    values: list[Any] = field(default_factory=list)


def java_literal(text: str) -> str:
    """`text` as a literal inside a Java regex: ASCII punctuation escaped with a backslash
    (always literal in Java), control characters as \\xhh, everything else as itself."""
    out = []
    for ch in text:
        if ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        elif ch.isascii() and not ch.isalnum():
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def wildcard_regex(value: SigmaString, lower: bool) -> str:
    """A Sigma string with wildcards as a Java regex matching the whole subject."""
    parts = []
    for part in value.s:
        if part is SpecialChars.WILDCARD_MULTI:
            parts.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            parts.append(".")
        elif isinstance(part, str):
            parts.append(java_literal(part.lower() if lower else part))
        else:
            raise Unsupported("modifier", "a placeholder inside a wildcard pattern", ("expand",))
    return "(?s)" + "".join(parts)


_PY_NAMED_GROUP = re.compile(r"\(\?P<")
_PY_NAMED_BACKREF = re.compile(r"\(\?P=(\w+)\)")


def sigma_regex(value: SigmaRegularExpression) -> str:
    """A Sigma `re` value as a Java regex for Cypher's whole-string `=~`, searching anywhere."""
    body = str(value.regexp)
    body = _PY_NAMED_GROUP.sub("(?<", body)
    body = _PY_NAMED_BACKREF.sub(lambda m: rf"\k<{m.group(1)}>", body)
    flags = ""
    if SigmaRegularExpressionFlag.IGNORECASE in value.flags:
        flags += "iu"
    if SigmaRegularExpressionFlag.MULTILINE in value.flags:
        flags += "m"
    if SigmaRegularExpressionFlag.DOTALL in value.flags:
        flags += "s"
    prefix = f"(?{flags})" if flags else ""
    return f"{prefix}(?s:.*)(?:{body})(?s:.*)"


def classify(value: SigmaString) -> tuple[str, str] | None:
    """(operator, literal) when the wildcards sit only at the ends; None when a regex is needed."""
    s = value.s
    multi = SpecialChars.WILDCARD_MULTI
    if not value.contains_special():
        return "eq", "".join(p for p in s if isinstance(p, str))
    if s == [multi]:
        return "contains", ""
    inner = s[1:] if s and s[0] is multi else s
    inner = inner[:-1] if inner and inner[-1] is multi else inner
    if any(not isinstance(p, str) for p in inner):
        return None
    literal = "".join(p for p in inner if isinstance(p, str))
    starts, ends = s[0] is multi, s[-1] is multi
    if starts and ends:
        return "contains", literal
    return ("endswith", literal) if starts else ("startswith", literal)


# -- CIDR: an address parsed into a list of integers, compared as a list against a range -------
_V4 = "'\\\\d{1,3}(\\\\.\\\\d{1,3}){3}'"
_V6 = "'[0-9a-f:]+'"


def _v6_groups(x: str) -> str:
    head = f"[h IN split(split({x}, '::')[0], ':') WHERE h <> '']"
    tail = f"[h IN split(coalesce(split({x}, '::')[1], ''), ':') WHERE h <> '']"
    groups = (
        f"CASE WHEN {x} CONTAINS '::' THEN {head} + "
        f"[i IN range(1, 8 - size({head}) - size({tail})) | '0'] + {tail} "
        f"ELSE split({x}, ':') END"
    )
    digit = "size(split('0123456789abcdef', ch)[0])"
    return f"[g IN {groups} | reduce(n = 0, ch IN split(g, '') | n * 16 + {digit})]"


def cidr_expression(subject: str, v4: str | None, v6: str | None) -> str:
    """`subject` (an address text) lies in one of the ranges in parameter `v4` (pairs of octet
    lists) or `v6` (pairs of 8-group lists)."""
    tests = []
    if v4:
        tests.append(
            "any(a IN [x IN [CASE WHEN ip STARTS WITH '::ffff:' THEN substring(ip, 7) ELSE ip END]"
            f" WHERE x =~ {_V4} | [o IN split(x, '.') | toInteger(o)]]"
            f" WHERE any(rg IN {v4} WHERE a >= rg[0] AND a <= rg[1]))"
        )
    if v6:
        tests.append(
            f"any(a IN [x IN [split(ip, '%')[0]] WHERE x =~ {_V6} AND x CONTAINS ':'"
            f" | {_v6_groups('x')}]"
            f" WHERE size(a) = 8 AND any(rg IN {v6} WHERE a >= rg[0] AND a <= rg[1]))"
        )
    return f"any(ip IN [toLower(toString({subject}))] WHERE {' OR '.join(tests)})"


def cidr_range(cidr: SigmaCIDRExpression) -> tuple[int, list[list[int]]]:
    """(IP version, [low, high]) of a network, as octets (v4) or 16-bit groups (v6)."""
    net = cidr.network
    if isinstance(net, ipaddress.IPv4Network):
        return 4, [list(net.network_address.packed), list(net.broadcast_address.packed)]

    def groups(address: ipaddress.IPv6Address) -> list[int]:
        packed = address.packed
        return [packed[i] << 8 | packed[i + 1] for i in range(0, 16, 2)]

    return 6, [groups(net.network_address), groups(net.broadcast_address)]


class CypherBackend(TextQueryBackend):
    """Sigma rules to parameterised Cypher over the provenance graph (see the module doc)."""

    name: ClassVar[str] = "provgraph Cypher"
    formats: ClassVar[dict[str, str]] = {"default": "Cypher query with its parameters"}
    requires_pipeline: ClassVar[bool] = False
    correlation_methods: ClassVar[dict[str, str] | None] = {
        "default": "one Cypher query over the events of the rules it names"
    }

    precedence: ClassVar[tuple[type[ConditionItem], type[ConditionItem], type[ConditionItem]]] = (
        ConditionNOT,
        ConditionAND,
        ConditionOR,
    )
    group_expression: ClassVar[str] = "({expr})"
    token_separator: str = " "
    or_token: ClassVar[str] = "OR"
    and_token: ClassVar[str] = "AND"
    not_token: ClassVar[str] = "NOT"
    eq_token: ClassVar[str] = " = "
    field_null_expression: ClassVar[str] = "{field} IS NULL"
    field_exists_expression: ClassVar[str] = "{field} IS NOT NULL"
    field_not_exists_expression: ClassVar[str] = "{field} IS NULL"

    def __init__(
        self,
        processing_pipeline: ProcessingPipeline | None = None,
        collect_errors: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(processing_pipeline or provgraph_pipeline(), collect_errors, **options)
        self._params: dict[str, Any] = {}
        self._placeholders: dict[str, str] = {}
        self._fields: dict[str, Field] = {}  # mapped expression -> row, for this rule's logsource
        self._logsource: Logsource | None = None
        self._compiled: dict[int, tuple[SigmaRule, CompiledQuery | Unsupported]] = {}
        self._lineage: str | None = None  # inside the EXISTS of this lineage variable
        self._walks: set[str] = set()  # lineage variables the rule's condition walks

    # -- parameters ------------------------------------------------------------------------
    def _param(self, value: Any) -> str:
        name = f"p{len(self._params)}"
        self._params[name] = value
        return "$" + name

    def _row(self, expr: str) -> Field:
        row = self._fields.get(expr)
        if row is None:
            raise Unsupported("field", f"field '{expr}' has no graph mapping", (expr,))
        return row

    def _subject(self, expr: str, cased: bool) -> str:
        """The field as text to compare: toString for integers, toLower unless cased."""
        text = expr if self._row(expr).kind == "str" else f"toString({expr})"
        return text if cased else f"toLower({text})"

    # -- rules -----------------------------------------------------------------------------
    def convert_rule(
        self, rule: SigmaRule, output_format: str | None = None, callback: Any = None
    ) -> list[Any]:
        self._params, self._placeholders, self._fields, self._logsource = {}, {}, {}, None
        self._lineage, self._walks = None, set()
        return super().convert_rule(rule, output_format, callback)

    def _bind_logsource(self, state: ConversionState) -> Logsource:
        category = state.processing_state.get(STATE_KEY)
        if category not in LOGSOURCES:
            raise Unsupported(
                "logsource", "the rule passed no provgraph logsource mapping", ("unmapped",)
            )
        logsource = LOGSOURCES[category]
        self._logsource = logsource
        self._fields = {f.expr: f for f in logsource.fields if f.expr is not None}
        return logsource

    def convert_condition(self, cond: Any, state: ConversionState) -> Any:
        if self._logsource is None:
            self._bind_logsource(state)
        if self._lineage is None:
            walk = self._lineage_of(cond)
            if walk is not None:
                return self._exists(
                    walk, lambda: super(CypherBackend, self).convert_condition(cond, state)
                )
        return super().convert_condition(cond, state)

    # -- lineage ---------------------------------------------------------------------------
    def _lineage_of(self, cond: Any) -> str | None:
        """The lineage variable when every leaf of `cond` tests one (the same) lineage field
        and no `not` sits inside; None otherwise."""
        if isinstance(cond, ConditionFieldEqualsValueExpression):
            row = self._fields.get(cond.field)
            return row.lineage if row is not None else None
        if isinstance(cond, ConditionAND | ConditionOR):
            kinds = {self._lineage_of(arg) for arg in cond.args}
            return kinds.pop() if len(kinds) == 1 else None
        return None

    def _exists(self, walk: str, render: Any) -> str:
        """`render()`'s condition on the lineage variable, inside its SPAWNED path."""
        self._lineage = walk
        try:
            inner = render()
        finally:
            self._lineage = None
        self._walks.add(walk)
        return f"EXISTS {{ MATCH {LINEAGE[walk]} WHERE {inner} }}"

    def finalize_query_default(
        self, rule: SigmaRule, query: Any, index: int, state: ConversionState
    ) -> str:
        return str(query)

    def compile(self, rule: SigmaRule) -> CompiledQuery:
        """The rule as one query: several conditions (rare) are OR-ed, as Sigma means them.
        A rule only a correlation uses (generate: false) compiles the same way."""
        conditions = self.convert_rule(rule)
        if not conditions and not rule._output:
            conditions = [str(c) for c in rule.get_conversion_result()]
        logsource = self._logsource
        if logsource is None or not conditions:
            raise Unsupported("logsource", "the rule produced no query", ("empty",))
        condition = (
            conditions[0] if len(conditions) == 1 else " OR ".join(f"({c})" for c in conditions)
        )
        # A Windows rule never judges a Linux host's processes (nor the reverse): hosts known
        # to run another platform are left out; a host of unknown platform is not.
        product = rule.logsource.product
        platform = product if product in PRODUCTS else None
        # after the pipeline, the rule's fields are graph expressions (`p.image`)
        used = {name for d in rule.detection.detections.values() for name in _fields_of(d)}
        rows = [row for row in logsource.fields if row.expr in used]
        variables = set().union(*(row.variables for row in rows)) if rows else set()
        caveats = tuple(dict.fromkeys(f"{r.sigma}: {r.note}" for r in rows if r.note))
        return CompiledQuery(
            query=build_query(logsource, condition, "parent" in variables, platform),
            params=dict(self._params),
            logsource=logsource.category,
            condition=condition,
            fields=tuple(dict.fromkeys(row.sigma for row in rows)),
            caveats=caveats,
            placeholders=tuple(self._placeholders.values()),
            needs_parent="parent" in variables,
            lineage=tuple(sorted(self._walks)),
            platform=platform,
        )

    def compile_once(self, rule: SigmaRule) -> CompiledQuery:
        """`compile`, remembered per rule object: the pipeline changes a rule as it applies,
        so a rule that is also named by correlations is compiled exactly once."""
        entry = self._compiled.get(id(rule))
        if entry is None:
            outcome: CompiledQuery | Unsupported
            try:
                outcome = self.compile(rule)
            except Unsupported as error:
                outcome = error
            except SigmaError as error:
                outcome = Unsupported("modifier", str(error), (type(error).__name__,))
            entry = self._compiled[id(rule)] = (rule, outcome)
        if isinstance(entry[1], Unsupported):
            raise entry[1]
        return entry[1]

    # -- correlations ----------------------------------------------------------------------
    # pySigma dispatches a correlation by type to convert_correlation_<type>_rule; each
    # returns the one query of `correlation.CorrelationBuilder` (its parameters travel with
    # `compile_correlation`'s result).
    def compile_correlation(self, rule: SigmaCorrelationRule) -> CompiledCorrelation:
        return CorrelationBuilder(self.compile_once).build(rule)

    def _correlation_query(
        self, rule: SigmaCorrelationRule, output_format: str | None = None, method: str = ""
    ) -> list[str]:
        return [self.compile_correlation(rule).query]

    convert_correlation_event_count_rule = _correlation_query
    convert_correlation_value_count_rule = _correlation_query
    convert_correlation_temporal_rule = _correlation_query
    convert_correlation_temporal_ordered_rule = _correlation_query
    convert_correlation_extended_temporal_rule = _correlation_query

    # -- boolean structure -----------------------------------------------------------------
    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> str:
        inner = self.convert_condition(cond.args[0], state)
        return f"NOT coalesce({inner}, false)"

    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> str:
        return self._junction(cond, state, "any")

    def convert_condition_and(self, cond: ConditionAND, state: ConversionState) -> str:
        return self._junction(cond, state, "all")

    def _junction(self, cond: ConditionOR | ConditionAND, state: ConversionState, q: str) -> str:
        """Arguments joined by OR/AND; leaves testing one subject with one operator share one
        list parameter (`toLower(p.image) ENDS WITH` x 40 values -> one `any(…)`)."""
        token = self.or_token if q == "any" else self.and_token
        if isinstance(cond, ConditionAND) and self._lineage is None:
            cond = self._same_relative(cond)
        keys: list[tuple[str, str] | None] = []
        groups: dict[tuple[str, str], _Group] = {}
        for arg in cond.args:
            group = (
                self._groupable(arg)
                if isinstance(arg, ConditionFieldEqualsValueExpression)
                else None
            )
            if group is None or (group.op == "cidr" and q != "any"):
                keys.append(None)
                continue
            found = (group.subject, group.op)
            keys.append(found)
            if found in groups:
                groups[found].values += group.values
            else:
                groups[found] = group
        out: list[str] = []
        for arg, key in zip(cond.args, keys, strict=True):
            if key is not None:  # a group is rendered where its first member stood
                if key in groups:
                    out.append(self._render(groups.pop(key), q))
                continue
            converted = (
                self.convert_condition(arg, state)
                if self.compare_precedence(cond, arg)
                else self.convert_condition_group(arg, state)
            )
            if converted is not None:
                out.append(str(converted))
        if not out:
            raise Unsupported("modifier", "an empty condition", ("empty condition",))
        return f" {token} ".join(out)

    def _same_relative(self, cond: ConditionAND) -> ConditionAND:
        """The AND with its lineage-only arguments merged, one AND per lineage variable, so
        they render as one EXISTS: one and the same ancestor (descendant) meets them all."""
        merged: dict[str, list[Any]] = {}
        for arg in cond.args:
            walk = self._lineage_of(arg)
            if walk is not None:
                merged.setdefault(walk, []).append(arg)
        if not any(len(args) > 1 for args in merged.values()):
            return cond
        out: list[Any] = []
        placed: set[str] = set()
        for arg in cond.args:
            walk = self._lineage_of(arg)
            if walk is None:
                out.append(arg)
            elif walk not in placed:
                placed.add(walk)
                group = merged[walk]
                out.append(group[0] if len(group) == 1 else ConditionAND(list(group)))
        return ConditionAND(out)

    def _groupable(self, cond: ConditionFieldEqualsValueExpression) -> _Group | None:
        value, expr = cond.value, cond.field
        if expr not in self._fields:
            return None
        row = self._fields[expr]
        if row.lineage is not None and self._lineage is None:
            return None  # rendered inside its EXISTS, never grouped with the pattern's leaves
        if isinstance(value, SigmaCIDRExpression):
            return _Group(expr, "cidr", [value]) if row.ip else None
        if isinstance(value, SigmaNumber) and not isinstance(value, SigmaBool):
            if row.kind == "int" and isinstance(value.number, int):
                return _Group(expr, "int", [value.number])
            return None
        if not isinstance(value, SigmaString) or value.contains_placeholder():
            return None
        cased = isinstance(value, SigmaCasedString)
        found = classify(value)
        if found is None:
            return None
        op, literal = found
        if row.kind == "int" and op == "eq" and _INT.match(literal):
            return _Group(expr, "int", [int(literal)])
        if op == "eq" and literal == "":
            return None  # empty value: see _string
        return _Group(self._subject(expr, cased), op, [literal if cased else literal.lower()])

    def _render(self, group: _Group, q: str) -> str:
        subject, op, values = group.subject, group.op, group.values
        if op == "cidr":
            v4 = [r for v, r in map(cidr_range, values) if v == 4]
            v6 = [r for v, r in map(cidr_range, values) if v == 6]
            return cidr_expression(
                subject, self._param(v4) if v4 else None, self._param(v6) if v6 else None
            )
        symbol = "=" if op == "int" else _OPS[op]
        if len(values) == 1:
            return f"{subject} {symbol} {self._param(values[0])}"
        if symbol == "=" and q == "any":
            return f"{subject} IN {self._param(values)}"
        return f"{q}(v IN {self._param(values)} WHERE {subject} {symbol} v)"

    # -- leaves ----------------------------------------------------------------------------
    def _leaf(self, cond: ConditionFieldEqualsValueExpression) -> str:
        group = self._groupable(cond)
        if group is None:
            raise TypeError("not a groupable leaf")
        return self._render(group, "any")

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self._string(cond, cased=False)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self._string(cond, cased=True)

    def _string(self, cond: ConditionFieldEqualsValueExpression, cased: bool) -> str:
        value = cond.value
        assert isinstance(value, SigmaString)
        expr = cond.field
        if value.contains_placeholder():
            return self._placeholder(expr, value, cased)
        if self._groupable(cond) is not None:
            return self._leaf(cond)
        found = classify(value)
        if found == ("eq", ""):
            return f"({expr} IS NULL OR {self._subject(expr, cased)} = {self._param('')})"
        regex = wildcard_regex(value, lower=not cased)
        return f"{self._subject(expr, cased)} =~ {self._param(regex)}"

    def _placeholder(self, expr: str, value: SigmaString, cased: bool) -> str:
        """`%name%` left for the site to fill: a list parameter `$ph_name`, default empty."""
        s = list(value.s)
        starts = bool(s) and s[0] is SpecialChars.WILDCARD_MULTI
        ends = len(s) > 1 and s[-1] is SpecialChars.WILDCARD_MULTI
        core = s[1 if starts else 0 : len(s) - 1 if ends else len(s)]
        if len(core) != 1 or not isinstance(core[0], Placeholder):
            raise Unsupported(
                "modifier",
                "expand: a placeholder with other text around it has no graph form",
                ("expand",),
            )
        name = "ph_" + re.sub(r"[^a-z0-9_]", "_", core[0].name.lower())
        self._placeholders[name] = name
        self._params.setdefault(name, [])
        op = {(True, True): "contains", (True, False): "endswith", (False, True): "startswith"}.get(
            (starts, ends), "eq"
        )
        subject = self._subject(expr, cased)
        other = "v" if cased else "toLower(v)"
        return f"any(v IN ${name} WHERE {subject} {_OPS[op]} {other})"

    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        if self._groupable(cond) is not None:
            return self._leaf(cond)
        assert isinstance(cond.value, SigmaNumber)
        # a number against a text field compares as text (Sysmon logs numbers as strings)
        return f"{self._subject(cond.field, True)} = {self._param(str(cond.value.number))}"

    def convert_condition_field_eq_val_bool(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaBool)
        if self._row(cond.field).kind != "str":
            raise Unsupported("modifier", f"a boolean against {cond.field}", ("boolean value",))
        text = "true" if cond.value.boolean else "false"
        return f"{self._subject(cond.field, False)} = {self._param(text)}"

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaRegularExpression)
        if cond.value.regexp.contains_placeholder():
            raise Unsupported("modifier", "expand: a placeholder inside a regex", ("expand",))
        return f"{self._subject(cond.field, True)} =~ {self._param(sigma_regex(cond.value))}"

    def convert_condition_field_eq_val_cidr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        if not self._row(cond.field).ip:
            raise Unsupported(
                "modifier", f"cidr on {cond.field}, which holds no IP address", ("cidr",)
            )
        return self._leaf(cond)

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        value = cond.value
        assert isinstance(value, SigmaCompareExpression)
        number = value.number.number
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise Unsupported("modifier", "comparison with a timestamp part", ("timestamp part",))
        row = self._row(cond.field)
        subject = cond.field if row.kind == "int" else f"toFloat({cond.field})"
        return f"{subject} {_COMPARE[value.op]} {self._param(number)}"

    def convert_condition_field_eq_field(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        ref = cond.value
        assert isinstance(ref, SigmaFieldReference)
        left, right = self._subject(cond.field, False), self._subject(ref.field, False)
        if ref.starts_with and ref.ends_with:
            return f"{left} CONTAINS {right}"
        if ref.starts_with:
            return f"{left} STARTS WITH {right}"
        if ref.ends_with:
            return f"{left} ENDS WITH {right}"
        return f"{left} = {right}"

    def convert_condition_field_eq_query_expr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaQueryExpression)
        return cond.value.finalize(cond.field)

    def convert_condition_field_eq_val_timestamp_part(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        raise Unsupported(
            "modifier",
            "timestamp part modifiers (minute, hour, day, week, month, year) are not supported",
            ("timestamp part",),
        )

    def _keyword(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        raise Unsupported(
            "keyword",
            "keyword detection (a value without a field) is a full-text search",
            ("keywords",),
        )

    convert_condition_val_str = _keyword
    convert_condition_val_num = _keyword
    convert_condition_val_re = _keyword
    convert_condition_query_expr = _keyword


def _fields_of(detection: Any) -> Sequence[str]:
    from sigma.rule import SigmaDetection

    out: list[str] = []
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            out += _fields_of(item)
        else:
            if item.field is not None:
                out.append(item.field)
            out += [v.field for v in item.value if isinstance(v, SigmaFieldReference)]
    return out
