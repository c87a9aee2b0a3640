"""Dead letters (records we could not use, with why) and the per-file ingest summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from provgraph.ingest.model import Origin

MAX_RAW = 64 * 1024  # raw text kept per dead letter; the source file has the rest


@dataclass(frozen=True, slots=True)
class DeadLetter:
    origin: Origin
    reason: str
    field: str | None
    raw_line: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.origin.source,
            "path": self.origin.path,
            "line": self.origin.line,
            "reason": self.reason,
            "field": self.field,
            "raw": self.raw_line[:MAX_RAW],
            "raw_truncated": len(self.raw_line) > MAX_RAW,
        }


class DeadLetterWriter:
    """Appends dead letters as NDJSON to a path or an open text stream."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, (str, Path)):
            self._stream: IO[str] = open(target, "a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._stream, self._owned = target, False
        self.count = 0

    def write(self, letter: DeadLetter) -> None:
        self._stream.write(json.dumps(letter.to_dict(), ensure_ascii=False) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()

    def __enter__(self) -> DeadLetterWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class FileSummary:
    format: str | None = None
    records: int = 0  # records seen (an auditd event counts once, however many lines)
    accepted: int = 0  # records that gave events
    events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # irrelevant, by reason
    rejected: Counter[str] = field(default_factory=Counter)  # dead-lettered, by reason
    unrecognised: str | None = None  # the first line's shape when no parser fits
    unreadable: str | None = None  # why the file (or the rest of it) could not be read
    cut_short: str | None = None  # how the file ends before its last record does (EVTX)
    empty: bool = False  # nothing but blank space: not a failure, but worth saying

    @property
    def problem(self) -> str | None:
        """Why this input failed as a whole, or None. A failed input is one that could not be
        read (to its end), was not recognised, was cut short, or held records and gave no
        events while rejecting some: what a script must be able to tell from a few rejects."""
        if self.unreadable:
            return f"could not be read: {self.unreadable}"
        if self.unrecognised:
            return f"format not recognised ({self.unrecognised})"
        if self.cut_short:
            return f"cut short: {self.cut_short}"
        rejected = sum(self.rejected.values())
        if rejected and not self.accepted:
            return f"no events from {self.records:,} record(s): {rejected:,} rejected"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "records": self.records,
            "accepted": self.accepted,
            "events": self.events,
            "skipped": dict(self.skipped),
            "rejected": dict(self.rejected),
            "unrecognised": self.unrecognised,
            "unreadable": self.unreadable,
            "cut_short": self.cut_short,
            "empty": self.empty,
            "problem": self.problem,
        }


MAX_SHOWN = 100  # rejections a summary keeps to show (the dead-letter file has them all)
SHOWN_RAW = 500  # characters of each shown rejection's raw record


@dataclass
class Summary:
    files: dict[str, FileSummary] = field(default_factory=dict)
    shown: list[dict[str, Any]] = field(default_factory=list)  # the first MAX_SHOWN rejections

    def file(self, path: str) -> FileSummary:
        return self.files.setdefault(path, FileSummary())

    def reject(self, letter: DeadLetter) -> None:
        """Keep one rejection to show, while fewer than MAX_SHOWN are kept."""
        if len(self.shown) < MAX_SHOWN:
            shown = letter.to_dict()
            shown["raw_truncated"] = len(letter.raw_line) > SHOWN_RAW
            shown["raw"] = letter.raw_line[:SHOWN_RAW]
            self.shown.append(shown)

    def merge(self, other: Summary) -> None:
        """Fold in the summary of another reader (the parser process's)."""
        self.files.update(other.files)
        self.shown.extend(other.shown[: MAX_SHOWN - len(self.shown)])

    @property
    def events(self) -> int:
        return sum(f.events for f in self.files.values())

    @property
    def accepted(self) -> int:
        return sum(f.accepted for f in self.files.values())

    @property
    def skipped(self) -> Counter[str]:
        return sum((f.skipped for f in self.files.values()), Counter())

    @property
    def rejected(self) -> Counter[str]:
        return sum((f.rejected for f in self.files.values()), Counter())

    @property
    def problems(self) -> dict[str, str]:
        """Inputs that failed as a whole, path -> why."""
        return {path: f.problem for path, f in self.files.items() if f.problem}

    def to_dict(self) -> dict[str, Any]:
        rejected = self.rejected
        return {
            "events": self.events,
            "accepted": self.accepted,
            "skipped": dict(self.skipped),
            "rejected": dict(rejected),
            "problems": self.problems,
            "rejections": {"total": sum(rejected.values()), "shown": self.shown},
            "files": {path: f.to_dict() for path, f in self.files.items()},
        }
