"""Sigma rules to provgraph `Rule`s, and the per-rule report of what compiled and why not.

A compiled rule (single-event or correlation) is written as provgraph rule YAML and loaded by
`queries.rule.parse_rule`, so it meets every check a shipped rule meets (read-only query,
declared parameters, returned columns); `sigma import` stores that text (`store`). Its
`metadata.sigma` carries the Sigma id, title, level, status, tags, references, false positives
and author (DRL 1.1 requires crediting the authors).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from provgraph.queries.rule import Rule, parse_rule
from provgraph.queries.sigma.backend import CypherBackend
from provgraph.queries.sigma.correlation import CompiledCorrelation
from provgraph.queries.sigma.errors import ReasonKind, Unsupported
from provgraph.queries.sigma.mapping import LOGSOURCES
from provgraph.queries.sigma.pipeline import provgraph_pipeline
from provgraph.queries.sigma.query import CompiledQuery
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

# ATT&CK enterprise tactics by the names Sigma tags use (attack.defense_evasion)
TACTICS = {
    "reconnaissance": "TA0043",
    "resource_development": "TA0042",
    "initial_access": "TA0001",
    "execution": "TA0002",
    "persistence": "TA0003",
    "privilege_escalation": "TA0004",
    "defense_evasion": "TA0005",
    "credential_access": "TA0006",
    "discovery": "TA0007",
    "lateral_movement": "TA0008",
    "collection": "TA0009",
    "exfiltration": "TA0010",
    "command_and_control": "TA0011",
    "impact": "TA0040",
}
RISK = {"informational": 10, "low": 21, "medium": 47, "high": 73, "critical": 99}
_TECHNIQUE = re.compile(r"^t(\d{4})(?:\.(\d{3}))?$")


Status = Literal["compiled", "part", "failed"]


@dataclass
class RuleResult:
    """One Sigma rule's outcome: compiled into a provgraph rule, compiled as part of the
    correlations that name it (Sigma's `generate: false`: it never alerts alone), or not, and
    why not."""

    path: str
    sigma_id: str | None
    title: str
    logsource: str
    compiled: bool
    kind: ReasonKind | None = None  # why not, as a category
    reason: str | None = None  # why not, in words
    details: tuple[str, ...] = ()  # what exactly (field names, modifier, logsource)
    caveats: tuple[str, ...] = ()
    placeholders: tuple[str, ...] = ()
    rule: Rule | None = None
    compiled_query: CompiledQuery | None = None
    correlation: CompiledCorrelation | None = None
    text: str | None = None  # the provgraph rule as YAML, as `sigma import` stores it
    part_of: tuple[str, ...] = ()  # the correlations a generate: false rule runs inside

    @property
    def status(self) -> Status:
        if self.compiled:
            return "compiled"
        return "part" if self.part_of and self.kind is None else "failed"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "sigma_id": self.sigma_id,
            "title": self.title,
            "logsource": self.logsource,
            "compiled": self.compiled,
            "status": self.status,
        }
        if self.compiled:
            out["rule_id"] = self.rule.id if self.rule else None
            out["caveats"] = list(self.caveats)
            out["placeholders"] = list(self.placeholders)
        elif self.status == "part":
            out["part_of"] = list(self.part_of)
        else:
            out.update(kind=self.kind, reason=self.reason, details=list(self.details))
        return out


@dataclass
class Report:
    results: list[RuleResult] = field(default_factory=list)

    @property
    def compiled(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "compiled"]

    @property
    def parts(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "part"]

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def rules(self) -> list[Rule]:
        return [r.rule for r in self.results if r.rule is not None]

    def reasons(self) -> Counter[str]:
        """Rules per reason ("field: OriginalFileName"); a rule lacking two fields counts for
        both."""
        counts: Counter[str] = Counter()
        for result in self.failed:
            for detail in dict.fromkeys(result.details):
                counts[f"{result.kind}: {detail}"] += 1
        return counts

    def kinds(self) -> Counter[str]:
        return Counter(str(r.kind) for r in self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": len(self.results),
            "compiled": len(self.compiled),
            "part_of_correlations": len(self.parts),
            "failed": len(self.failed),
            "by_kind": dict(self.kinds().most_common()),
            "top_reasons": dict(self.reasons().most_common(20)),
            "rules": [r.to_dict() for r in self.results],
        }

    def format(self, limit: int = 15) -> str:
        lines = []
        for r in self.results:
            if r.status == "compiled":
                extra = f" (placeholders: {', '.join(r.placeholders)})" if r.placeholders else ""
                lines.append(f"compiled  {r.path}: {r.title}{extra}")
            elif r.status == "part":
                lines.append(f"part      {r.path}: {r.title}: runs inside {', '.join(r.part_of)}")
            else:
                lines.append(f"failed    {r.path}: {r.title}: {r.kind}: {r.reason}")
        lines.append("\n" + self.summary())
        if self.failed:
            lines.append("by kind: " + ", ".join(f"{k} {n}" for k, n in self.kinds().most_common()))
            lines.append("top reasons (rules):")
            lines += [f"  {n:5d}  {reason}" for reason, n in self.reasons().most_common(limit)]
        return "\n".join(lines)

    def summary(self) -> str:
        counted = len(self.compiled) + len(self.failed)
        share = f" ({100 * len(self.compiled) / counted:.1f}%)" if counted else ""
        parts = f", {len(self.parts)} only inside correlations" if self.parts else ""
        return (
            f"{len(self.compiled)} of {counted} rules compiled{share}, "
            f"{len(self.failed)} failed{parts}"
        )


def rule_id(sigma: SigmaRule | SigmaCorrelationRule, path: Path) -> str:
    """A provgraph rule id from the Sigma id (`sigma_` + the UUID, lower_snake_case)."""
    return rule_id_for(str(sigma.id) if sigma.id else (sigma.name or path.stem))


def rule_id_for(sigma_id: str) -> str:
    return ("sigma_" + re.sub(r"[^a-z0-9]+", "_", sigma_id.lower()).strip("_"))[:64]


def attack_tags(sigma: SigmaRule | SigmaCorrelationRule) -> tuple[list[str], list[str]]:
    tactics: list[str] = []
    techniques: list[str] = []
    for tag in sigma.tags:
        if tag.namespace != "attack":
            continue
        name = tag.name.lower().replace("-", "_")
        if name in TACTICS and TACTICS[name] not in tactics:
            tactics.append(TACTICS[name])
        elif match := _TECHNIQUE.match(name):
            technique = "T" + match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
            if technique not in techniques:
                techniques.append(technique)
    return tactics, techniques


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _credit(sigma: SigmaRule | SigmaCorrelationRule, path: Path) -> str:
    """Who wrote the rule and where it came from (DRL 1.1: credit the authors)."""
    parts = [f"Sigma rule {sigma.id or path.stem}" + (f" ({sigma.status})" if sigma.status else "")]
    parts.append(f"author: {sigma.author or 'not named'}")
    if sigma.date:
        parts.append(f"date: {sigma.date}")
    if sigma.modified:
        parts.append(f"modified: {sigma.modified}")
    parts.append(f"source: {path}")
    credit = "; ".join(parts) + "."
    if sigma.license:
        credit += f" Licence: {sigma.license}."
    credit += (
        " SigmaHQ rules are published under the Detection Rule License (DRL) 1.1, which requires"
        " crediting the rule authors and the SigmaHQ repository."
    )
    return credit


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def sigma_metadata(
    sigma: SigmaRule | SigmaCorrelationRule, path: Path, **extra: Any
) -> dict[str, Any]:
    """What a provgraph rule keeps of its Sigma rule (`Rule.metadata["sigma"]`): shown by the
    API and carried onto its alerts, the author credited as DRL 1.1 requires."""
    level = str(sigma.level.name).lower() if sigma.level else None
    status = str(sigma.status.name).lower() if sigma.status else None
    return {
        "sigma": {
            "id": _text(sigma.id),
            "name": sigma.name,
            "title": sigma.title,
            "level": level,
            "status": status,
            "author": sigma.author,
            "date": _text(sigma.date),
            "modified": _text(sigma.modified),
            "license": sigma.license,
            "tags": [str(t) for t in sigma.tags],
            "references": [str(r) for r in sigma.references],
            "falsepositives": [str(f) for f in sigma.falsepositives],
            "source": str(path),
            **extra,
        }
    }


def _check(doc: dict[str, Any], rid: str) -> tuple[Rule, str]:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    rule, problems = parse_rule(text, Path(f"{rid}.yml"))
    if rule is None:
        raise Unsupported(
            "server",
            "the compiled rule fails provgraph's rule checks: " + str(problems[0]),
            ("rule check",),
        )
    return rule, text


def _common(sigma: SigmaRule | SigmaCorrelationRule, path: Path) -> dict[str, Any]:
    rid = rule_id(sigma, path)
    tactics, techniques = attack_tags(sigma)
    level = str(sigma.level.name).lower() if sigma.level else "medium"
    return {
        "id": rid,
        "name": sigma.title,
        "description": ((sigma.description or sigma.title).strip() + "\n\n" + _credit(sigma, path)),
        "severity": level if level in RISK else "medium",
        "risk_score": RISK.get(level, 47),
        "mitre": {"tactics": tactics, "techniques": techniques},
        "references": [str(r) for r in sigma.references],
    }


def to_rule(sigma: SigmaRule, compiled: CompiledQuery, path: Path) -> Rule:
    """The provgraph rule for a compiled Sigma rule (built and checked by the rule loader)."""
    return _base_doc(sigma, compiled, path)[0]


def stream_source(sigma: SigmaRule) -> dict[str, Any] | None:
    """What `stream` needs to compile the rule's matcher again, in pySigma's dict form (taken
    before the pipeline renames fields): its id, title, logsource and detection. None when
    pySigma cannot write the rule back (it then runs as Cypher only)."""
    try:
        whole = sigma.to_dict()
    except (SigmaError, ValueError, TypeError, AttributeError):
        return None
    return {k: whole[k] for k in ("title", "id", "logsource", "detection") if k in whole}


def _base_doc(
    sigma: SigmaRule, compiled: CompiledQuery, path: Path, source: dict[str, Any] | None = None
) -> tuple[Rule, str]:
    logsource = LOGSOURCES[compiled.logsource]
    doc = _common(sigma, path)
    first_entity = logsource.entities[0][2]
    mapped = ", ".join(
        f"{f.sigma} -> {f.expr}" for f in logsource.fields if f.sigma in compiled.fields
    )
    investigation = [
        f"Compiled from Sigma (logsource category {compiled.logsource}); fields: {mapped}."
    ]
    if compiled.lineage:
        investigation.append(
            "Uses provgraph's lineage extension (Ancestor*/Descendant* fields): a condition on "
            "a process anywhere above or below this one, through SPAWNED."
        )
    investigation += _caveat_notes(compiled.caveats, compiled.placeholders)
    doc.update(
        {
            "parameters": compiled.parameters(),
            "query": compiled.query,
            "entities": [
                {
                    "role": role,
                    "type": kind,
                    "column": column,
                    **({"identity": False} if kind == "account" else {}),
                }
                for role, kind, column in logsource.entities
            ],
            "summary": "Sigma: " + _escape_braces(sigma.title) + ": " + logsource.summary,
            "schedule": {"interval": "5m", "lookback": "10m"},
            "suppression": {"fields": ["host", first_entity], "duration": "1h"},
            "false_positives": [str(f) for f in sigma.falsepositives],
            "investigation": "\n".join(investigation),
            "metadata": sigma_metadata(
                sigma,
                path,
                logsource={
                    "product": sigma.logsource.product,
                    "category": sigma.logsource.category,
                    "service": sigma.logsource.service,
                },
                **({"rule": source} if source is not None else {}),
            ),
        }
    )
    if not doc["parameters"]:
        del doc["parameters"]
    return _check(doc, doc["id"])


def _correlation_doc(
    sigma: SigmaCorrelationRule, compiled: CompiledCorrelation, path: Path
) -> tuple[Rule, str]:
    doc = _common(sigma, path)
    titles = ", ".join(f"{title} ({rid})" for rid, title in compiled.rules)
    group = ", ".join(compiled.group_by) or "nothing (all events together)"
    investigation = [
        f"Compiled from a Sigma {compiled.type} correlation over {titles}, grouped by {group}, "
        f"within {compiled.timespan_s} s (see the README, Sigma correlations, for the window "
        "semantics). The alert lists the processes involved; their own facts are one hop away.",
    ]
    investigation += _caveat_notes(compiled.caveats, compiled.placeholders)
    doc.update(
        {
            "parameters": compiled.params,
            "query": compiled.query,
            "entities": [
                {"role": "group", "type": "value", "column": "group_key"},
                {"role": "window", "type": "value", "column": "window_start"},
                {"role": "host", "type": "host", "column": "hosts", "identity": False},
                {"role": "process", "type": "process", "column": "process_uids", "identity": False},
            ],
            "summary": "Sigma correlation: "
            + _escape_braces(sigma.title)
            + ": {events} events ({rules_matched}) for {group_key} on {host}",
            "schedule": {"interval": "5m", "lookback": "10m"},
            "suppression": {
                "fields": ["group_key"],
                "duration": f"{max(compiled.timespan_s, 60)}s",
            },
            "false_positives": [str(f) for f in sigma.falsepositives],
            "investigation": "\n".join(investigation),
            "metadata": sigma_metadata(
                sigma,
                path,
                correlation={
                    "type": compiled.type,
                    "rules": [rid for rid, _ in compiled.rules],
                    "group_by": list(compiled.group_by),
                    "timespan": sigma.timespan.spec,
                    "condition": sigma.condition.to_dict(),
                },
            ),
        }
    )
    return _check(doc, doc["id"])


def _logsource_text(sigma: SigmaRule | SigmaCorrelationRule) -> str:
    if not isinstance(sigma, SigmaRule):
        return "correlation"
    ls = sigma.logsource
    return "/".join(x for x in (ls.product, ls.category, ls.service) if x) or "-"


def _result(path: Path, sigma: SigmaRule | SigmaCorrelationRule) -> RuleResult:
    title = sigma.title or path.stem
    sid = str(sigma.id) if sigma.id else None
    return RuleResult(str(path), sid, title, _logsource_text(sigma), False)


def _fail(result: RuleResult, error: Unsupported | SigmaError) -> RuleResult:
    if isinstance(error, Unsupported):
        result.kind, result.reason, result.details = error.kind, error.message, error.details
    else:
        result.kind, result.reason = "modifier", str(error)
        result.details = (type(error).__name__,)
    return result


def compile_rule(
    sigma: SigmaRule,
    path: Path,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    backend: CypherBackend | None = None,
    source: dict[str, Any] | None = None,
) -> RuleResult:
    """One parsed Sigma rule to a result (compiled, or why not). `source`: the rule as
    `stream_source` gave it before any conversion touched it (default: taken now)."""
    base = _result(path, sigma)
    backend = backend or CypherBackend(provgraph_pipeline(placeholders))
    try:
        if source is None and id(sigma) not in backend._compiled:
            source = stream_source(sigma)
        compiled = backend.compile_once(sigma)
        if not sigma._output:
            base.part_of = tuple(_describe(r) for r in sigma._backreferences) or ("a correlation",)
            base.compiled_query = compiled
            return base
        rule, text = _base_doc(sigma, compiled, path, source)
    except (Unsupported, SigmaError) as error:
        return _fail(base, error)
    base.compiled, base.rule, base.compiled_query, base.text = True, rule, compiled, text
    base.caveats, base.placeholders = compiled.caveats, compiled.placeholders
    return base


def compile_correlation(
    sigma: SigmaCorrelationRule, path: Path, backend: CypherBackend
) -> RuleResult:
    """One correlation rule (its references resolved) to a result."""
    base = _result(path, sigma)
    try:
        compiled = backend.compile_correlation(sigma)
        if not sigma._output:
            base.part_of = tuple(_describe(r) for r in sigma._backreferences) or ("a correlation",)
            base.correlation = compiled
            return base
        rule, text = _correlation_doc(sigma, compiled, path)
    except (Unsupported, SigmaError) as error:
        return _fail(base, error)
    base.compiled, base.rule, base.correlation, base.text = True, rule, compiled, text
    base.caveats, base.placeholders = compiled.caveats, compiled.placeholders
    return base


def _describe(rule: Any) -> str:
    return str(rule.title or rule.name or rule.id)


def _files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for item in paths:
        path = Path(item)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml"))
        else:
            yield path


def _parse_failure(path: Path, reason: str, detail: str) -> RuleResult:
    return RuleResult(str(path), None, path.stem, "-", False, "parse", reason, (detail,))


def compile_path(
    paths: Iterable[str | Path], placeholders: Mapping[str, Sequence[str]] | None = None
) -> Report:
    """Every Sigma rule in the given files and folders (SigmaHQ layout), compiled or not.

    All files are read first, so a correlation may name rules (by id or name) in any of them;
    a rule named only by correlations (generate: false) is reported as running inside them."""
    report = Report()
    backend = CypherBackend(provgraph_pipeline(placeholders))
    loaded: list[tuple[Path, SigmaRule | SigmaCorrelationRule | RuleResult]] = []
    for path in _files(paths):
        try:
            collection = SigmaCollection.from_yaml(
                path.read_text(encoding="utf-8"), collect_errors=True, resolve_references=False
            )
        except (OSError, UnicodeDecodeError, SigmaError, yaml.YAMLError) as error:
            loaded.append((path, _parse_failure(path, str(error), "unreadable")))
            continue
        for problem in collection.errors:
            loaded.append((path, _parse_failure(path, str(problem), type(problem).__name__)))
        loaded += [(path, rule) for rule in collection.rules]
    # taken before any conversion: a correlation converts the rules it names in place
    sources = {
        id(r): stream_source(r) for _, r in loaded if isinstance(r, SigmaRule) and not r.errors
    }
    every = SigmaCollection(
        [r for _, r in loaded if isinstance(r, SigmaRule | SigmaCorrelationRule)],
        resolve_references=False,
    )
    unresolved: dict[int, SigmaError] = {}
    for _, sigma in loaded:
        if isinstance(sigma, SigmaCorrelationRule) and not sigma.errors:
            try:
                sigma.resolve_rule_references(every)
            except SigmaError as error:
                unresolved[id(sigma)] = error
    for path, sigma in loaded:
        if isinstance(sigma, RuleResult):
            report.results.append(sigma)
        elif sigma.errors:
            first = sigma.errors[0]
            failed = _result(path, sigma)
            failed.kind, failed.reason, failed.details = (
                "parse",
                str(first),
                (type(first).__name__,),
            )
            report.results.append(failed)
        elif isinstance(sigma, SigmaCorrelationRule):
            if id(sigma) in unresolved:
                failed = _fail(_result(path, sigma), unresolved[id(sigma)])
                failed.kind = "correlation"
                report.results.append(failed)
            else:
                report.results.append(compile_correlation(sigma, path, backend))
        else:
            report.results.append(
                compile_rule(sigma, path, backend=backend, source=sources.get(id(sigma)))
            )
    return report


def _caveat_notes(caveats: Sequence[str], placeholders: Sequence[str]) -> list[str]:
    """What an analyst reading a compiled rule must know: its caveats, and the placeholder
    lists it needs filled in before it can match."""
    notes = []
    if caveats:
        notes.append("Caveats: " + "; ".join(caveats) + ".")
    if placeholders:
        notes.append(
            "Fill these list parameters in the rule settings (empty matches nothing): "
            + ", ".join(placeholders)
            + "."
        )
    return notes
