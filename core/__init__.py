"""The ground floor every layer stands on: settings, errors, the version."""

__version__ = "0.1.0"
