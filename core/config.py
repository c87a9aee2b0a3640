"""provgraph's settings file: `provgraph.yaml`, or the file PROVGRAPH_CONFIG names.

It may hold the Neo4j connection keys (`neo4j_uri`, `neo4j_user`, `neo4j_password`,
`neo4j_database`; the NEO4J_* environment variables win over them, see `neo4j_settings`), and
site settings for the rules, over their shipped defaults:

    rules:
      dependency_compromise_network:
        registry_allow_list: ["registry.corp.example"]
      build_process_compromise:
        allow_list: ["devenv.exe"]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from provgraph.core.errors import ProvgraphError

KEYS = ("neo4j_uri", "neo4j_user", "neo4j_password", "neo4j_database")


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


def neo4j_settings() -> dict[str, str]:
    """The Neo4j connection keys that are set: the file's, overridden by the environment."""
    settings = {k: str(v) for k, v in _config_file().items() if k in KEYS and v is not None}
    for key in KEYS:
        if os.environ.get(key.upper()):
            settings[key] = os.environ[key.upper()]
    return settings


def rule_settings() -> dict[str, dict[str, Any]]:
    """Per-rule parameter settings from the config file's `rules:` mapping."""
    rules = _config_file().get("rules") or {}
    if not isinstance(rules, dict) or not all(isinstance(v, dict) for v in rules.values()):
        raise ProvgraphError("config 'rules:' must map rule ids to mappings of parameter values")
    return {str(k): dict(v) for k, v in rules.items()}
