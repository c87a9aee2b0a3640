"""provgraph: graph-based provenance analytics for security telemetry.

One namespace over the folders at the top of the repository (see pyproject.toml): `core`,
`ingest`, `graph`, `queries` and `api` are its layers, bottom to top; this folder holds the
application on top of them, the command line.
"""

from provgraph.core import __version__

__all__ = ["__version__"]
