"""Imported Sigma rules on disk: one provgraph rule file per compiled Sigma rule.

`provgraph sigma import` compiles, then `store` writes each compiled rule as
`<rules home>/sigma/<rule id>.yml` (the catalog's `sigma` source reads that folder), so an
imported rule is a file like a shipped one: it survives restarts, runs through the same
catalog, engine and alerts, and can be read and diffed. The file name is the rule id, which
is the Sigma id, so importing the same rules again changes nothing (the text is compared, the
file left alone), and an updated Sigma rule replaces its older version. A rule that was
imported before but no longer compiles (or now runs only inside a correlation) has its file
removed: what runs always follows the Sigma source last imported.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from provgraph.queries.sigma.compile import Report, RuleResult, rule_id_for

Action = Literal["new", "updated", "unchanged", "removed", "skipped"]


@dataclass
class Stored:
    """What the import did with one Sigma rule."""

    result: RuleResult
    action: Action | None  # None: nothing stored and nothing to remove
    rule_id: str | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = self.result.to_dict()
        out["rule_id"] = self.rule_id
        out["stored"] = self.action
        if self.note:
            out["note"] = self.note
        return out


def stored_id(result: RuleResult) -> str | None:
    """The provgraph id a Sigma rule has (or would have) once imported."""
    if result.rule is not None:
        return result.rule.id
    return rule_id_for(result.sigma_id) if result.sigma_id else None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".import-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def store(report: Report, folder: Path, *, dry_run: bool = False) -> list[Stored]:
    """Write the report's compiled rules into `folder` and remove the files of rules that no
    longer compile. `dry_run`: say what would happen, change nothing."""
    outcomes: list[Stored] = []
    written: dict[str, str] = {}
    for result in report.results:
        rid = stored_id(result)
        path = folder / f"{rid}.yml" if rid else None
        if result.status == "compiled" and path is not None and result.text is not None:
            assert rid is not None
            if rid in written:
                outcomes.append(
                    Stored(
                        result,
                        "skipped",
                        rid,
                        f"the same Sigma id was imported from {written[rid]}",
                    )
                )
                continue
            written[rid] = result.path
            before = path.read_text(encoding="utf-8") if path.exists() else None
            if before == result.text:
                outcomes.append(Stored(result, "unchanged", rid))
                continue
            if not dry_run:
                _write(path, result.text)
            outcomes.append(Stored(result, "new" if before is None else "updated", rid))
        elif path is not None and path.exists() and rid not in written:
            why = (
                f"it now runs only inside {', '.join(result.part_of)}"
                if result.status == "part"
                else f"the new version does not compile ({result.kind})"
            )
            if not dry_run:
                path.unlink()
            outcomes.append(Stored(result, "removed", rid, f"previously imported; {why}"))
        else:
            outcomes.append(Stored(result, None, rid))
    return outcomes


def remove(folder: Path, rule_ids: Iterable[str]) -> list[str]:
    """Delete imported rules by id; returns the ids that were there."""
    gone = []
    for rid in rule_ids:
        path = folder / f"{rid}.yml"
        if path.exists():
            path.unlink()
            gone.append(rid)
    return gone
