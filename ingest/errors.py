"""How a parser says "this record is bad" versus "this record is not for us"."""

from __future__ import annotations

from typing import Any


class ParseError(ValueError):
    """A malformed or mistyped record. `field` names the offending field so a dead letter
    points the analyst at it; `reason` says what was wrong with it."""

    def __init__(self, field: str | None, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


class Skipped(list[Any]):
    """The zero-event result, carrying why the record is irrelevant.

    Parsers return a list of events; an empty one means "skipped". Returning `Skipped(reason)`
    instead of `[]` keeps that contract (it is an empty list) while letting the reader count
    skips by reason. It is never filled.
    """

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def __repr__(self) -> str:
        return f"Skipped({self.reason!r})"


def skip_reason(events: list[Any]) -> str:
    """The reason an empty parser result carries, or a generic one for a plain `[]`."""
    return events.reason if isinstance(events, Skipped) else "irrelevant record"
