"""`python -m provgraph.queries.sigma PATH... [--json]`: compile Sigma rules, print the report.

Exit status: 0 when every rule compiled, 1 when some did not, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from provgraph.queries.sigma.compile import compile_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m provgraph.queries.sigma",
        description="Compile Sigma rules into provgraph rules and report what compiled.",
    )
    parser.add_argument("paths", nargs="+", help="Sigma rule files or folders")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--top", type=int, default=15, help="how many top reasons to list")
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    report = compile_path(args.paths)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(report.format(limit=args.top))
    return 0 if not report.failed else 1


if __name__ == "__main__":
    sys.exit(main())
