"""Length caps on text fields.

Decision: an over-long field is truncated and named in `Event.truncated`, not rejected.
Padding a command line past a limit is an evasion trick; rejecting would drop the process
from the graph and break every ancestry through it, while a truncated, flagged command line
keeps the provenance and tells rules the value is partial.
"""

from __future__ import annotations

from dataclasses import replace

from provgraph.ingest.model import Event, ProcessRef

MAX_FIELD = 32 * 1024  # characters

_EVENT_FIELDS = ("file_path", "previous_path", "remote_hostname", "query_name")
_PROCESS_FIELDS = ("image", "command_line", "user")


def _fits(event: Event, limit: int) -> bool:
    """The common case, checked without building anything: every capped field is short."""
    for name in _EVENT_FIELDS:
        value = getattr(event, name)
        if value is not None and len(value) > limit:
            return False
    for ref in (event.process, event.parent):
        if ref is not None:
            for name in _PROCESS_FIELDS:
                value = getattr(ref, name)
                if value is not None and len(value) > limit:
                    return False
    return True


def cap_event(event: Event, limit: int = MAX_FIELD) -> Event:
    if _fits(event, limit):
        return event
    cut: list[str] = []
    changes: dict[str, object] = {}
    for name in _EVENT_FIELDS:
        value = getattr(event, name)
        if isinstance(value, str) and len(value) > limit:
            changes[name] = value[:limit]
            cut.append(name)
    for role in ("process", "parent"):
        ref = getattr(event, role)
        if ref is not None:
            capped, names = _cap_process(ref, limit)
            if names:
                changes[role] = capped
                cut.extend(f"{role}.{n}" for n in names)
    if not cut:
        return event
    return replace(event, truncated=event.truncated + tuple(cut), **changes)  # type: ignore[arg-type]


def _cap_process(ref: ProcessRef, limit: int) -> tuple[ProcessRef, list[str]]:
    changes = {
        name: getattr(ref, name)[:limit]
        for name in _PROCESS_FIELDS
        if isinstance(getattr(ref, name), str) and len(getattr(ref, name)) > limit
    }
    return (replace(ref, **changes) if changes else ref), list(changes)
