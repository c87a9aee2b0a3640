"""The processing pipeline that puts Sigma rules onto the graph (pySigma's own machinery).

For each modelled logsource (see `mapping.LOGSOURCES`), gated by a `LogsourceCondition`:
  1. `SetStateTransformation` records the logsource, so the backend knows the graph pattern;
  2. `RequireGraphFields` fails the rule on any field the graph does not hold, naming it and why
     (fields of field references included), before anything is renamed;
  3. `FieldMappingTransformation` renames Sigma fields to Cypher expressions (`Image` ->
     `p.image`).
A rule whose logsource is not modelled fails at `RequireModelledLogsource`. Placeholders of the
`expand` modifier with values given here are replaced by them
(`ValueListPlaceholderTransformation`); the backend turns the others into rule parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from provgraph.queries.sigma.errors import Unsupported
from provgraph.queries.sigma.mapping import (
    BY_CATEGORY,
    BY_EVENT_ID,
    LOGSOURCES,
    PRODUCTS,
    Logsource,
)
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.conditions import RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    FieldMappingTransformation,
    SetStateTransformation,
    ValueListPlaceholderTransformation,
)
from sigma.processing.transformations.base import PreprocessingTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaFieldReference

STATE_KEY = "provgraph_logsource"


def _describe(rule: SigmaRule | SigmaCorrelationRule) -> str:
    if not isinstance(rule, SigmaRule):
        return "a correlation rule"
    ls = rule.logsource
    parts = [
        f"{k}: {v}"
        for k, v in (("product", ls.product), ("category", ls.category), ("service", ls.service))
        if v
    ]
    return "{" + ", ".join(parts) + "}" if parts else "no logsource"


def _event_ids(rule: SigmaRule) -> set[int | str]:
    """The EventID values the rule's detection tests anywhere (selections and filters)."""
    out: set[int | str] = set()
    for detection in rule.detection.detections.values():
        for item in _items(detection):
            if item.field == "EventID":
                for value in item.value:
                    text = str(getattr(value, "number", value))
                    out.add(int(text) if text.isdigit() else text)
    return out


def select_logsource(rule: SigmaRule) -> str:
    """The graph logsource (a key of `mapping.LOGSOURCES`) a rule's logsource and EventIDs
    name; Unsupported says why none does. A Windows event log rule (product and service, no
    category) stands for the event types its EventID values name, and must name one modelled
    type: a rule over several graph patterns, or an unmodelled EventID, is reported."""
    ls = rule.logsource
    if ls.product is not None and ls.product not in PRODUCTS:
        raise _unmodelled(rule, f"product {ls.product}")
    if ls.category is not None:
        if ls.category in BY_CATEGORY:
            return ls.category
        raise _unmodelled(rule, f"category {ls.category}")
    service = ls.service
    if service is None or not any(key[0] == service for key in BY_EVENT_ID):
        raise _unmodelled(rule, f"service {service}" if service else _describe(rule))
    ids = _event_ids(rule)
    if not ids:
        raise _unmodelled(rule, f"service {service} without EventID")
    found = {BY_EVENT_ID.get((service, i)) if isinstance(i, int) else None for i in ids}
    if None in found:
        missing = sorted(
            str(i) for i in ids if not isinstance(i, int) or (service, i) not in BY_EVENT_ID
        )
        raise _unmodelled(rule, f"{service} EventID {', '.join(missing)}")
    if len(found) > 1:
        raise Unsupported(
            "logsource",
            f"the rule tests EventIDs {', '.join(sorted(map(str, ids)))} of {service}, which are"
            " different graph patterns; one rule per event type compiles",
            (f"{service} several event types",),
            source=rule.source,
        )
    (name,) = found
    assert name is not None
    return name


def _unmodelled(rule: SigmaRule, what: str) -> Unsupported:
    modelled = sorted(BY_CATEGORY) + sorted(
        f"{service} {event_id}" for service, event_id in BY_EVENT_ID
    )
    return Unsupported(
        "logsource",
        f"logsource {_describe(rule)} is not modelled by the graph "
        f"(modelled: {', '.join(modelled)})",
        (what,),
        source=rule.source,
    )


@dataclass
class RequireModelledLogsource(PreprocessingTransformation):
    """Fails every rule whose logsource the graph does not model."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if isinstance(rule, SigmaRule):
            select_logsource(rule)


@dataclass
class GraphLogsource(RuleProcessingCondition):
    """The rule is one of the graph logsource `name` (`select_logsource`)."""

    name: str = ""

    def match(self, rule: SigmaRule | SigmaCorrelationRule) -> bool:
        if not isinstance(rule, SigmaRule):
            return False
        try:
            return select_logsource(rule) == self.name
        except Unsupported:
            return False


def _items(detection: SigmaDetection) -> Iterator[SigmaDetectionItem]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _items(item)
        else:
            yield item


@dataclass
class RequireGraphFields(PreprocessingTransformation):
    """Fails the rule on every field (or referenced field) with no graph expression, naming each
    with its reason, so one report line says everything a rule lacks."""

    category: str = ""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if not isinstance(rule, SigmaRule):
            return
        logsource = LOGSOURCES[self.category]
        problems: dict[str, str] = {}
        keywords = False
        for detection in rule.detection.detections.values():
            for item in _items(detection):
                names = [item.field] if item.field is not None else []
                if item.field is None:
                    keywords = True
                names += [v.field for v in item.value if isinstance(v, SigmaFieldReference)]
                for name in names:
                    problem = _field_problem(logsource, name)
                    if problem:
                        problems.setdefault(name, problem)
        if problems:
            raise Unsupported(
                "field",
                "; ".join(problems.values()),
                tuple(sorted(problems)),
                source=rule.source,
            )
        if keywords:
            raise Unsupported(
                "keyword",
                "keyword detection (a value without a field) is a full-text search; the graph "
                "has no raw event text to search",
                ("keywords",),
                source=rule.source,
            )


def _field_problem(logsource: Logsource, name: str) -> str | None:
    row = logsource.field(name)
    if row is None:
        return f"field '{name}' has no mapping for {logsource.category}"
    if row.expr is None:
        return f"field '{name}' is not in the graph: {row.reason}"
    return None


def provgraph_pipeline(
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> ProcessingPipeline:
    """Sigma logsources and fields onto the provenance graph. `placeholders` give values for
    `%name%` placeholders of the `expand` modifier at compile time; others become rule
    parameters (see the backend)."""
    items: list[ProcessingItem] = [
        ProcessingItem(
            identifier="provgraph_modelled_logsource", transformation=RequireModelledLogsource()
        )
    ]
    if placeholders:
        items.append(
            ProcessingItem(
                identifier="provgraph_placeholder_values",
                transformation=ValueListPlaceholderTransformation(include=list(placeholders)),
            )
        )
    for category, logsource in LOGSOURCES.items():
        mapping: dict[str | None, str | list[str]] = {
            f.sigma: f.expr for f in logsource.fields if f.expr is not None
        }
        items += [
            ProcessingItem(
                identifier=f"provgraph_{category}_state",
                transformation=SetStateTransformation(STATE_KEY, category),
                rule_conditions=[GraphLogsource(category)],
            ),
            ProcessingItem(
                identifier=f"provgraph_{category}_require_fields",
                transformation=RequireGraphFields(category=category),
                rule_conditions=[GraphLogsource(category)],
            ),
            ProcessingItem(
                identifier=f"provgraph_{category}_fields",
                transformation=FieldMappingTransformation(mapping),
                rule_conditions=[GraphLogsource(category)],
            ),
        ]
    return ProcessingPipeline(
        name="provgraph graph pattern pipeline",
        priority=20,
        items=items,
        vars={k: list(v) for k, v in (placeholders or {}).items()},
    )
