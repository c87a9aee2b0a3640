"""The layers' import order, held against the code.

provgraph is one namespace over the folders at the top of the repository, one floor each:

    core (settings, errors) <- ingest (formats) <- graph (Neo4j) <- queries (rules, alerts,
    domain reads) <- api (HTTP) <- the application (provgraph/: the command line)

A module may import its own floor and the floors below it, never one above; and no package
imports another in a loop. Imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# folder -> (package, floor)
LAYERS = {
    "core": ("provgraph.core", 0),
    "ingest": ("provgraph.ingest", 1),
    "graph": ("provgraph.graph", 2),
    "queries": ("provgraph.queries", 3),
    "api": ("provgraph.api", 4),
    "provgraph": ("provgraph", 5),
}
TOP_LEVEL_NAMES = {"core", "ingest", "graph", "queries", "api"}


def _module_of(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    package = LAYERS[folder][0]
    parts = [p for p in rest if p != "__init__"]
    return ".".join([package, *parts])


def _floor(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (length of the matched package, floor)
    for package, floor in LAYERS.values():
        inside = module == package or module.startswith(package + ".")
        if inside and (best is None or len(package) > best[0]):
            best = (len(package), floor)
    return None if best is None else best[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from provgraph.api import alerts` imports provgraph.api.alerts
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _product_files() -> list[Path]:
    return sorted(p for folder in LAYERS for p in (ROOT / folder).rglob("*.py"))


def test_no_import_runs_up_a_floor() -> None:
    upward = []
    for path in _product_files():
        here = _floor(_module_of(path))
        assert here is not None
        for line, module in _imports(path):
            there = _floor(module)
            if there is not None and there > here:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert upward == []


def test_nothing_imports_the_folders_as_top_level_packages() -> None:
    generic = []
    for path in [
        *_product_files(),
        *sorted((ROOT / "tests").rglob("*.py")),
        *sorted((ROOT / "bench").rglob("*.py")),
    ]:
        for line, module in _imports(path):
            if module.split(".", 1)[0] in TOP_LEVEL_NAMES:
                generic.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert generic == []


def _package_of(module: str, packages: set[str]) -> str:
    while module not in packages and "." in module:
        module = module.rsplit(".", 1)[0]
    return module


def test_no_package_imports_another_in_a_loop() -> None:
    modules = {_module_of(p): p for p in _product_files()}
    packages = {_module_of(p) for p in _product_files() if p.name == "__init__.py"}
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        source = _package_of(module, packages)
        for _, imported in _imports(path):
            if _floor(imported) is None:
                continue
            target = _package_of(imported, packages)
            # a package's parent is not a dependency worth a loop (it is its namespace)
            if target != source and not source.startswith(target + "."):
                edges[source].add(target)

    def loop_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(edges[node]):
                if nxt == start:
                    return [*trail, nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
        return None

    loops = [" -> ".join(found) for p in sorted(packages) if (found := loop_from(p))]
    assert loops == []


def test_the_distribution_lists_every_package_and_maps_each_folder() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {_module_of(p) for p in _product_files() if p.name == "__init__.py"}
    assert set(config["packages"]) == on_disk
    assert config["package-dir"] == {package: folder for folder, (package, _) in LAYERS.items()}


def test_resolving_the_target_never_imports_the_managed_server(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from provgraph.graph.target import resolve_target\n"
        "try:\n"
        "    resolve_target()\n"
        "except Exception as error:\n"
        "    print(type(error).__name__)\n"
        "print('provgraph.graph.local.server' in sys.modules)\n"
    )
    env = {"PROVGRAPH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=True,
    )
    # no instance has ever run under this home: resolving says so, and starts nothing
    assert done.stdout.split() == ["ProvgraphError", "False"]


def test_the_wheel_holds_only_the_provgraph_namespace(tmp_path: Path) -> None:
    """Built as a user installs it: every module under provgraph/, the layer folders mapped
    into it, and the data the code reads beside it (jars.lock, the shipped rules)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("provgraph-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"provgraph", next(t for t in tops if t.endswith(".dist-info"))}
    for module in (
        "provgraph/ingest/model.py",
        "provgraph/graph/local/server.py",
        "provgraph/queries/engine.py",
        "provgraph/api/app.py",
        "provgraph/core/config.py",
        "provgraph/cli/main.py",
        "provgraph/graph/local/jars.lock",
        "provgraph/queries/rules/msbuild_network.yml",
    ):
        assert module in names


def test_api_relationship_whitelist_is_the_model() -> None:
    """The relationship types a client may walk are the model's provenance edges (plus ON_HOST
    and INVOLVES): an edge type added to graph.model is walkable, and nothing else is."""
    from provgraph.api.graphs.models import Rel
    from provgraph.graph.model import PROVENANCE_RELS

    assert {r.value for r in Rel} == {*PROVENANCE_RELS, "ON_HOST", "INVOLVES"}
