"""A managed instance's state on disk: where it lives, its ports, its password, its process.

Reading this never starts anything: `graph.target` resolves a managed instance's Bolt URI and
password from here, and only `graph.local.server` runs Java.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from provgraph.core.errors import ProvgraphError

MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"
USER = "neo4j"


def state_root() -> Path:
    base = os.environ.get("PROVGRAPH_HOME")
    if base:
        return Path(base)
    data = os.environ.get("XDG_DATA_HOME")
    return (Path(data) if data else Path.home() / ".local" / "share") / "provgraph"


@dataclass
class Instance:
    """One managed server: everything it owns lives under `home`."""

    name: str = "default"
    heap: str = ""
    pagecache: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.name):
            raise ProvgraphError(f"instance name {self.name!r}: use letters, digits, . _ -")
        default_heap, default_cache = ("1g", "512m") if self.name != "default" else ("2g", "2g")
        self.heap = self.heap or os.environ.get("PROVGRAPH_NEO4J_HEAP", default_heap)
        self.pagecache = self.pagecache or os.environ.get(
            "PROVGRAPH_NEO4J_PAGECACHE", default_cache
        )

    # -- paths ---------------------------------------------------------------------------------
    @property
    def home(self) -> Path:
        return state_root() / "neo4j" / self.name

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "neo4j.pid"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def state_file(self) -> Path:
        return self.home / "state.json"

    # -- state ---------------------------------------------------------------------------------
    def _state(self) -> dict[str, int]:
        if self.state_file.exists():
            return dict(json.loads(self.state_file.read_text()))
        return {}

    @property
    def bolt_port(self) -> int | None:
        return self._state().get("bolt_port")

    @property
    def http_port(self) -> int | None:
        return self._state().get("http_port")

    @property
    def uri(self) -> str:
        port = self.bolt_port
        if port is None:
            raise ProvgraphError(f"Neo4j instance '{self.name}' has never been started")
        return f"bolt://127.0.0.1:{port}"

    def password(self) -> str:
        if not self.password_file.exists():
            raise ProvgraphError(f"no password yet for instance '{self.name}' (start it first)")
        return self.password_file.read_text().strip()

    def pid(self) -> int | None:
        """The pid of the server this instance started, if that very process still runs."""
        if not self.pid_file.exists():
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (ValueError, OSError):
            return None
        # A reused pid belongs to someone else: only our own java with our home counts.
        ours = MAIN_CLASS.encode() in cmdline and f"--home-dir={self.home}".encode() in cmdline
        return pid if ours else None

    def is_running(self) -> bool:
        return self.pid() is not None
