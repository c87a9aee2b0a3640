"""`provgraph keys create|list|revoke`: API keys from the terminal."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from provgraph.api.keys import service as keys
from provgraph.api.keys.models import Scope
from provgraph.cli import terminal
from provgraph.cli.terminal import emit_json, fail, nothing_found, when

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
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the key, secret included, as JSON.")
    ] = False,
) -> None:
    """Create a key and print its secret (this once; only a hash is kept)."""
    if not name.strip() or len(name) > 200:
        fail("--name: give the key a name of 1 to 200 characters")
    with terminal.connect() as graph:
        try:
            created = keys.create_key(graph, name=name, scopes=scope)
        except ValidationError as error:
            fail(f"cannot create the key: {error.errors()[0]['msg']}")
    if json_out:
        emit_json(created)
        return
    typer.echo(f"key id:  {created.id}\nscopes:  {', '.join(s.value for s in created.scopes)}")
    typer.echo("secret (shown once, store it now):")
    typer.echo(created.secret)


@keys_app.command("list")
def keys_list(
    json_out: Annotated[bool, typer.Option("--json", help="Print the keys as JSON.")] = False,
) -> None:
    """Every key: name, id, scopes, created, revoked (never secrets)."""
    with terminal.connect() as graph:
        found = keys.list_keys(graph)
    if json_out:
        emit_json(found)
        return
    for key in found:
        scopes = ",".join(s.value for s in key.scopes)
        parts = [key.name, key.id, scopes, when(key.created_at), "revoked" if key.revoked else ""]
        typer.echo("  ".join(p for p in parts if p))
    typer.echo(f"{len(found)} key(s)")


@keys_app.command("revoke", epilog="Exit status: 0 revoked; 5 no key with that id.")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id (API processes stop accepting it within seconds)."""
    with terminal.connect() as graph:
        revoked = keys.revoke_key(graph, key_id=key_id)
    if revoked is None:
        nothing_found(f"no API key with id {key_id}")
    typer.echo(f"revoked {revoked.name} ({revoked.id})")
