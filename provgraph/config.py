"""Where provgraph finds its Neo4j, from the environment or a config file.

NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD / NEO4J_DATABASE point provgraph at any Neo4j
(bolt://, neo4j:// routing for a cluster, neo4j+s:// for Aura). With none set it uses
the managed local server (`provgraph neo4j start`). A YAML file named by
PROVGRAPH_CONFIG (default ./provgraph.yaml when present) may hold the same keys in
lower case; the environment wins over the file.

The same file carries site settings for the rules, over their shipped defaults:

    rules:
      dependency_compromise_network:
        registry_allow_list: ["registry.corp.example"]
      build_process_compromise:
        allow_list: ["devenv.exe"]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provgraph.errors import ProvgraphError

KEYS = ("neo4j_uri", "neo4j_user", "neo4j_password", "neo4j_database")


@dataclass(frozen=True)
class Neo4jTarget:
    uri: str
    user: str
    password: str
    database: str = "neo4j"
    managed_instance: str | None = None  # name of the local instance, when it is ours


def _config_file() -> dict[str, Any]:
    named = os.environ.get("PROVGRAPH_CONFIG")
    path = Path(named) if named else Path("provgraph.yaml")
    if not path.exists():
        if named:
            raise ProvgraphError(f"PROVGRAPH_CONFIG names {path}, which does not exist")
        return {}
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ProvgraphError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(loaded, dict):
        raise ProvgraphError(f"{path}: expected a mapping of settings")
    return loaded


def resolve_target(instance: str | None = None) -> Neo4jTarget:
    """The Neo4j to talk to: explicit settings first, else the managed local instance."""
    settings = {k: v for k, v in _config_file().items() if k in KEYS}
    for key in KEYS:
        if os.environ.get(key.upper()):
            settings[key] = os.environ[key.upper()]
    database = settings.get("neo4j_database", "neo4j")
    if settings.get("neo4j_uri") and instance is None:
        return Neo4jTarget(
            uri=settings["neo4j_uri"],
            user=settings.get("neo4j_user", "neo4j"),
            password=settings.get("neo4j_password", ""),
            database=database,
        )
    from provgraph.localneo4j.server import USER, Instance

    local = Instance(instance or os.environ.get("PROVGRAPH_INSTANCE", "default"))
    if not local.is_running():
        raise ProvgraphError(
            f"No Neo4j configured and the managed instance '{local.name}' is not running: "
            "run `provgraph neo4j start`, or set NEO4J_URI (and NEO4J_USER, NEO4J_PASSWORD)."
        )
    return Neo4jTarget(
        uri=local.uri, user=USER, password=local.password(), database=database,
        managed_instance=local.name,
    )


def rule_settings() -> dict[str, dict[str, Any]]:
    """Per-rule parameter settings from the config file's `rules:` mapping."""
    rules = _config_file().get("rules") or {}
    if not isinstance(rules, dict) or not all(isinstance(v, dict) for v in rules.values()):
        raise ProvgraphError("config 'rules:' must map rule ids to mappings of parameter values")
    return {str(k): dict(v) for k, v in rules.items()}
