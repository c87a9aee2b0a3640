"""One root for provgraph's own errors, so the CLI can print them without a stack trace."""


class ProvgraphError(Exception):
    """An error with a message meant for the user."""
