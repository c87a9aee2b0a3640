"""k1's event types on the real SigmaHQ regression recordings: none is skipped as not
modelled, and what each gives, read from the .evtx files beside the rules."""

from __future__ import annotations

import re
from collections import Counter

from provgraph.ingest.deadletter import Summary
from provgraph.ingest.model import Kind, RegistryOp
from provgraph.ingest.reader import iter_results

from tests.unit.ingest.evtx_samples import REGRESSION

# Sysmon ids of this family (4 and 16, service state and configuration, are out of scope)
SYSMON_IDS = {2, 6, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29}


def _results() -> tuple[list[object], Counter[str]]:
    summary = Summary()
    results = list(iter_results(sorted(REGRESSION.rglob("*.evtx")), summary=summary))
    skipped: Counter[str] = Counter()
    for stats in summary.files.values():
        skipped.update(stats.skipped)
        assert not stats.rejected, stats.rejected
    return results, skipped


def test_no_regression_recording_of_these_types_is_skipped_as_not_modelled() -> None:
    results, skipped = _results()
    assert len(results) >= 200  # the whole corpus was read
    for reason in skipped:
        found = re.fullmatch(r"sysmon EventID (\d+) not modelled", reason)
        assert not (found and int(found.group(1)) in SYSMON_IDS), reason
        assert not re.fullmatch(r"security EventID (4656|4657|4663) not modelled", reason)
    kinds = Counter(e.kind for r in results for e in r.events)  # type: ignore[attr-defined]
    # the corpus holds Sysmon 7, 10, 12, 13 and 17: each became its kind
    assert kinds[Kind.IMAGE_LOAD] and kinds[Kind.PROCESS_ACCESS] and kinds[Kind.PIPE]
    assert kinds[Kind.REGISTRY] >= 38


def test_regression_lsass_access_and_registry_facts() -> None:
    events = [e for r in _results()[0] for e in r.events]  # type: ignore[attr-defined]
    [lsass] = [
        e
        for e in events
        if e.kind is Kind.PROCESS_ACCESS
        and e.access.target.image
        and e.access.target.image.lower().endswith("lsass.exe")
    ]
    assert lsass.process.image == r"C:\Users\Public\wsass\WerFaultSecure.exe"
    assert lsass.access.granted_access == "0x1fffff"
    assert lsass.access.target.uid == "g:0197231e-2dd5-691e-0c00-000000000d00"
    assert lsass.access.target.user == r"NT AUTHORITY\SYSTEM"
    assert "dbgcore.DLL+44c34" in (lsass.access.call_trace or "")
    [delete] = [
        e
        for e in events
        if e.kind is Kind.REGISTRY and e.registry.path.endswith("RequirePlatformSecurityFeatures")
    ]
    assert delete.registry.op is RegistryOp.DELETE and delete.registry.event_type == "DeleteValue"
    [hidden] = [e for e in events if e.kind is Kind.REGISTRY and "hideme0007$" in e.registry.path]
    assert hidden.registry.op is RegistryOp.SET_VALUE and hidden.registry.details == "Binary Data"
