"""`provgraph keys create|list|revoke`: API keys from the terminal."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from provgraph.api.keys import service as keys
from provgraph.api.keys.models import Scope
from provgraph.cli import terminal
from provgraph.cli.terminal import console
from provgraph.core.errors import ProvgraphError

keys_app = typer.Typer(
    help="API keys: create (secret shown once), list, revoke.", no_args_is_help=True
)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="who or what uses the key")],
    scope: Annotated[
        list[Scope],
        typer.Option(
            "--scope", help="repeat: ingest, read, hunt, triage, admin (admin implies all)"
        ),
    ],
) -> None:
    """Create a key and print its secret (this once; only a hash is kept)."""
    with terminal.connect() as graph:
        created = keys.create_key(graph, name=name, scopes=scope)
    console.print(f"key id:  {created.id}\nscopes:  {', '.join(s.value for s in created.scopes)}")
    console.print("secret (shown once, store it now):")
    typer.echo(created.secret)


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, name, scopes, created, revoked (never secrets)."""
    with terminal.connect() as graph:
        found = keys.list_keys(graph)
    table = Table("id", "name", "scopes", "created", "revoked")
    for key in found:
        table.add_row(
            key.id,
            key.name,
            ",".join(s.value for s in key.scopes),
            str(key.created_at or ""),
            "yes" if key.revoked else "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id (API processes stop accepting it within seconds)."""
    with terminal.connect() as graph:
        revoked = keys.revoke_key(graph, key_id=key_id)
    if revoked is None:
        raise ProvgraphError(f"no API key with id {key_id}")
    console.print(f"revoked {revoked.id} ({revoked.name})")
