"""Sigma rules to provgraph `Rule`s, and the per-rule report of what compiled and why not.

A compiled rule is written as provgraph rule YAML and loaded by `queries.rule.parse_rule`, so it
meets every check a shipped rule meets (read-only query, declared parameters, returned columns)
and can be saved as a file later. Its metadata carries the Sigma id, title, level, status, tags,
references, false positives and author (DRL 1.1 requires crediting the authors).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from provgraph.queries.rule import Rule, parse_rule
from provgraph.queries.sigma.backend import CompiledQuery, CypherBackend
from provgraph.queries.sigma.errors import ReasonKind, Unsupported
from provgraph.queries.sigma.mapping import LOGSOURCES
from provgraph.queries.sigma.pipeline import provgraph_pipeline
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


@dataclass
class RuleResult:
    """One Sigma rule's outcome."""

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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "sigma_id": self.sigma_id,
            "title": self.title,
            "logsource": self.logsource,
            "compiled": self.compiled,
        }
        if self.compiled:
            out["rule_id"] = self.rule.id if self.rule else None
            out["caveats"] = list(self.caveats)
            out["placeholders"] = list(self.placeholders)
        else:
            out.update(kind=self.kind, reason=self.reason, details=list(self.details))
        return out


@dataclass
class Report:
    results: list[RuleResult] = field(default_factory=list)

    @property
    def compiled(self) -> list[RuleResult]:
        return [r for r in self.results if r.compiled]

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if not r.compiled]

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
            "failed": len(self.failed),
            "by_kind": dict(self.kinds().most_common()),
            "top_reasons": dict(self.reasons().most_common(20)),
            "rules": [r.to_dict() for r in self.results],
        }

    def format(self, limit: int = 15) -> str:
        lines = []
        for r in self.results:
            if r.compiled:
                extra = f" (placeholders: {', '.join(r.placeholders)})" if r.placeholders else ""
                lines.append(f"compiled  {r.path}: {r.title}{extra}")
            else:
                lines.append(f"failed    {r.path}: {r.title}: {r.kind}: {r.reason}")
        total = len(self.results)
        share = f" ({100 * len(self.compiled) / total:.1f}%)" if total else ""
        lines.append(
            f"\n{len(self.compiled)} of {total} rules compiled{share}, {len(self.failed)} failed"
        )
        if self.failed:
            lines.append("by kind: " + ", ".join(f"{k} {n}" for k, n in self.kinds().most_common()))
            lines.append("top reasons (rules):")
            lines += [f"  {n:5d}  {reason}" for reason, n in self.reasons().most_common(limit)]
        return "\n".join(lines)


def rule_id(sigma: SigmaRule, path: Path) -> str:
    """A provgraph rule id from the Sigma id (`sigma_` + the UUID, lower_snake_case)."""
    base = str(sigma.id) if sigma.id else (sigma.name or path.stem)
    return ("sigma_" + re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_"))[:64]


def attack_tags(sigma: SigmaRule) -> tuple[list[str], list[str]]:
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


def _credit(sigma: SigmaRule, path: Path) -> str:
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


def to_rule(sigma: SigmaRule, compiled: CompiledQuery, path: Path) -> Rule:
    """The provgraph rule for a compiled Sigma rule (built and checked by the rule loader)."""
    logsource = LOGSOURCES[compiled.logsource]
    rid = rule_id(sigma, path)
    tactics, techniques = attack_tags(sigma)
    level = str(sigma.level.name).lower() if sigma.level else "medium"
    first_entity = logsource.entities[0][2]
    mapped = ", ".join(
        f"{f.sigma} -> {f.expr}" for f in logsource.fields if f.sigma in compiled.fields
    )
    investigation = [
        f"Compiled from Sigma (logsource category {compiled.logsource}); fields: {mapped}."
    ]
    if compiled.caveats:
        investigation.append("Caveats: " + "; ".join(compiled.caveats) + ".")
    if compiled.placeholders:
        investigation.append(
            "Fill these list parameters in the rule settings (empty matches nothing): "
            + ", ".join(compiled.placeholders)
            + "."
        )
    doc = {
        "id": rid,
        "name": sigma.title,
        "description": ((sigma.description or sigma.title).strip() + "\n\n" + _credit(sigma, path)),
        "severity": level if level in RISK else "medium",
        "risk_score": RISK.get(level, 47),
        "mitre": {"tactics": tactics, "techniques": techniques},
        "references": [str(r) for r in sigma.references],
        "parameters": compiled.params,
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
    }
    if not doc["parameters"]:
        del doc["parameters"]
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    rule, problems = parse_rule(text, Path(f"{rid}.yml"))
    if rule is None:
        raise Unsupported(
            "server",
            "the compiled rule fails provgraph's rule checks: " + str(problems[0]),
            ("rule check",),
        )
    return rule


def _logsource_text(sigma: SigmaRule | SigmaCorrelationRule) -> str:
    if not isinstance(sigma, SigmaRule):
        return "correlation"
    ls = sigma.logsource
    return "/".join(x for x in (ls.product, ls.category, ls.service) if x) or "-"


def compile_rule(
    sigma: SigmaRule,
    path: Path,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    backend: CypherBackend | None = None,
) -> RuleResult:
    """One parsed Sigma rule to a result (compiled, or why not)."""
    title = sigma.title or path.stem
    sid = str(sigma.id) if sigma.id else None
    base = RuleResult(str(path), sid, title, _logsource_text(sigma), False)
    backend = backend or CypherBackend(provgraph_pipeline(placeholders))
    try:
        compiled = backend.compile(sigma)
        rule = to_rule(sigma, compiled, path)
    except Unsupported as error:
        base.kind, base.reason, base.details = error.kind, error.message, error.details
        return base
    except SigmaError as error:
        base.kind, base.reason = "modifier", str(error)
        base.details = (type(error).__name__,)
        return base
    base.compiled, base.rule, base.compiled_query = True, rule, compiled
    base.caveats, base.placeholders = compiled.caveats, compiled.placeholders
    return base


def _files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for item in paths:
        path = Path(item)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml"))
        else:
            yield path


def compile_path(
    paths: Iterable[str | Path], placeholders: Mapping[str, Sequence[str]] | None = None
) -> Report:
    """Every Sigma rule in the given files and folders (SigmaHQ layout), compiled or not."""
    report = Report()
    backend = CypherBackend(provgraph_pipeline(placeholders))
    for path in _files(paths):
        try:
            collection = SigmaCollection.from_yaml(
                path.read_text(encoding="utf-8"), collect_errors=True
            )
        except (OSError, UnicodeDecodeError, SigmaError, yaml.YAMLError) as error:
            report.results.append(
                RuleResult(
                    str(path), None, path.stem, "-", False, "parse", str(error), ("unreadable",)
                )
            )
            continue
        for problem in collection.errors:
            report.results.append(
                RuleResult(
                    str(path),
                    None,
                    path.stem,
                    "-",
                    False,
                    "parse",
                    str(problem),
                    (type(problem).__name__,),
                )
            )
        for sigma in collection.rules:
            if isinstance(sigma, SigmaCorrelationRule):
                report.results.append(
                    RuleResult(
                        str(path),
                        str(sigma.id) if sigma.id else None,
                        sigma.title or path.stem,
                        "correlation",
                        False,
                        "correlation",
                        "correlation rules are not compiled yet",
                        (str(sigma.type.name).lower(),),
                    )
                )
                continue
            if not isinstance(sigma, SigmaRule):
                continue
            if sigma.errors:
                first = sigma.errors[0]
                report.results.append(
                    RuleResult(
                        str(path),
                        str(sigma.id) if sigma.id else None,
                        sigma.title or path.stem,
                        _logsource_text(sigma),
                        False,
                        "parse",
                        str(first),
                        (type(first).__name__,),
                    )
                )
                continue
            report.results.append(compile_rule(sigma, path, backend=backend))
    return report
