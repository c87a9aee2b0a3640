"""What a domain read can fail with, for the API to answer and the CLI to print.

The messages are the CLI's ("no process g:1"); the API builds its problem details from the
attributes (`what`, `key`), so each side words it its own way from one error.
"""

from __future__ import annotations

from typing import ClassVar

from provgraph.core.errors import ProvgraphError


class NotFound(ProvgraphError, LookupError):
    """The thing asked for by its key is not in the graph."""

    what: ClassVar[str] = "thing"

    def __init__(self, key: str, *, where: str | None = None) -> None:
        self.key = key
        self.where = where  # e.g. the host a file was looked for on
        super().__init__(f"no {self.what} {key}" + (f" on {where}" if where else ""))


class AlertNotFound(NotFound):
    what = "alert"


class ProcessNotFound(NotFound):
    what = "process"


class FileNotFound(NotFound):
    what = "file"


class AccountNotFound(NotFound):
    what = "account"


class NodeNotFound(NotFound):
    """No node with that id (`<Label>:<key>`), or a label clients may not name."""

    what = "node"


class InvalidCursor(ProvgraphError, ValueError):
    """A page cursor that was not handed out for these pages (or was altered)."""


class InvalidChange(ProvgraphError, ValueError):
    """A triage change that does not fit the alert as it is (a resolution for an open one)."""
