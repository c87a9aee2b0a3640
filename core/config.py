"""provgraph's settings file: `provgraph.yaml`, or the file PROVGRAPH_CONFIG names.

It may hold the Neo4j connection keys (`neo4j_uri`, `neo4j_user`, `neo4j_password`,
`neo4j_database`; the NEO4J_* environment variables win over them, see `neo4j_settings`), and
site settings for the rules, over their shipped defaults, and where site rules live:

    rules:
      dependency_compromise_network:
        registry_allow_list: ["registry.corp.example"]
      build_process_compromise:
        allow_list: ["devenv.exe"]
    rule_time_limit: 2m          # how long one rule's query may run (default 120 s)
    rule_dirs: [site-rules/]     # more rule folders beside the shipped ones
    rules_home: /srv/provgraph/rules   # imported Sigma rules and the enabled/disabled state

This module only reads the file; the rule catalog (`provgraph.queries.catalog`) checks the
values against the rules and applies them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from provgraph.core.errors import ProvgraphError

KEYS = ("neo4j_uri", "neo4j_user", "neo4j_password", "neo4j_database")


def config_path() -> Path:
    """The settings file in effect: the one PROVGRAPH_CONFIG names, else ./provgraph.yaml
    (which may not exist)."""
    named = os.environ.get("PROVGRAPH_CONFIG")
    return Path(named) if named else Path("provgraph.yaml")


def _config_file() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        if os.environ.get("PROVGRAPH_CONFIG"):
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
        raise ProvgraphError(
            f"{config_path()}: 'rules' must map rule ids to mappings of parameter values"
        )
    return {str(k): dict(v) for k, v in rules.items()}


def rule_time_limit() -> Any:
    """`rule_time_limit:` as written (a duration such as "90s" or "2m", or a number of
    seconds), or None when unset; the rule layer parses and checks it."""
    return _config_file().get("rule_time_limit")


def rule_dirs() -> list[Path]:
    """`rule_dirs:`, folders of site rules loaded beside the shipped ones. A relative path is
    taken from the settings file's own folder, so the file means the same from any cwd."""
    dirs = _config_file().get("rule_dirs") or []
    if isinstance(dirs, str):
        dirs = [dirs]
    if not isinstance(dirs, list) or not all(isinstance(d, str) and d for d in dirs):
        raise ProvgraphError(f"{config_path()}: 'rule_dirs' must be a list of folder paths")
    base = config_path().parent
    return [Path(d).expanduser() if Path(d).expanduser().is_absolute() else base / d for d in dirs]


def rules_home() -> Path | None:
    """`rules_home:`, where imported Sigma rules and the rules' enabled/disabled state live
    (None: the catalog's default under the state root). Relative to the settings file."""
    home = _config_file().get("rules_home")
    if home is None:
        return None
    if not isinstance(home, str) or not home:
        raise ProvgraphError(f"{config_path()}: 'rules_home' must be a folder path")
    path = Path(home).expanduser()
    return path if path.is_absolute() else config_path().parent / path
