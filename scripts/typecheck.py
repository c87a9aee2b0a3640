"""Type-check the product code as the installed `provgraph` package.

mypy finds modules by their place on disk, and the folders at the top of the repository are
subpackages of `provgraph` only through pyproject's package-dir mapping (which the editable
install's import hook resolves at run time, out of mypy's sight). So this lays out the same
package as symlinks under build/typecheck/ (read from pyproject, so it cannot drift) and runs
mypy over it with the project's settings. Errors name build/typecheck/provgraph/<layer>/… paths:
the file is the one in the layer's folder (`graph/tx.py` for provgraph/graph/tx.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"


def lay_out() -> Path:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    shutil.rmtree(TREE, ignore_errors=True)
    package = TREE / "provgraph"
    package.mkdir(parents=True)
    root_folder = ROOT / mapping["provgraph"]
    for entry in root_folder.iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, folder in mapping.items():
        if name != "provgraph":
            (package / name.split(".", 1)[1]).symlink_to(ROOT / folder)
    return package


def main() -> int:
    package = lay_out()
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        str(package),
        *sys.argv[1:],
    ]
    return subprocess.run(command, cwd=TREE).returncode


if __name__ == "__main__":
    sys.exit(main())
