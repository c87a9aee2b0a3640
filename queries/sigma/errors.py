"""Why a Sigma rule did not compile, in a form the report can count."""

from __future__ import annotations

from typing import Literal

from sigma.exceptions import SigmaFeatureNotSupportedByBackendError, SigmaRuleLocation

# logsource: the graph does not model the rule's events; field: a field with no mapping or not
# in the graph; modifier: a value type or modifier the backend cannot express; keyword: a value
# without a field (full-text search); correlation: correlation rules (a later stage); parse: the
# file is not a valid Sigma rule; server: the compiled query fails on the server.
ReasonKind = Literal["logsource", "field", "modifier", "keyword", "correlation", "parse", "server"]


class Unsupported(SigmaFeatureNotSupportedByBackendError):
    """A rule that cannot become a graph query, and why. `details` are the short names the report
    counts (a field name, a modifier, a logsource), `kind` what sort of reason it is."""

    def __init__(
        self,
        kind: ReasonKind,
        message: str,
        details: tuple[str, ...] = (),
        source: SigmaRuleLocation | None = None,
    ) -> None:
        super().__init__(message, source=source)
        self.kind: ReasonKind = kind
        self.message = message
        self.details = details or (message,)
