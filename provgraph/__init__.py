"""provgraph: graph-based provenance analytics for security telemetry."""

__version__ = "0.1.0"
