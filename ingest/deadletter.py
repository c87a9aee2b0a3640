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

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "records": self.records,
            "accepted": self.accepted,
            "events": self.events,
            "skipped": dict(self.skipped),
            "rejected": dict(self.rejected),
            "unrecognised": self.unrecognised,
        }


@dataclass
class Summary:
    files: dict[str, FileSummary] = field(default_factory=dict)

    def file(self, path: str) -> FileSummary:
        return self.files.setdefault(path, FileSummary())

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "accepted": self.accepted,
            "skipped": dict(self.skipped),
            "rejected": dict(self.rejected),
            "files": {path: f.to_dict() for path, f in self.files.items()},
        }
