"""A gate (`stream.compile_gate`) is a Cypher rule's condition on the facts an event tells
itself, in three-valued logic: a leaf on a fact the graph learns from another event is None
(unknown); False only where those facts cannot change the outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
from provgraph.queries.sigma import compile_path
from provgraph.queries.sigma.stream import NotStreamable, compile_gate, lowered, sigma_spec

RULE = """
title: gate
id: 6a7e0000-0000-4000-8000-0000000000{n:02d}
logsource: {{category: file_event, product: windows}}
detection:
{detection}
"""


def _gate(tmp_path: Path, detection: str, n: int = 1):  # type: ignore[no-untyped-def]
    path = tmp_path / f"rule{n}.yml"
    path.write_text(RULE.format(n=n, detection=detection), encoding="utf-8")
    (rule,) = compile_path([path]).rules
    spec = sigma_spec(rule.metadata["sigma"]["rule"])

    def test(image: str, path: str) -> bool | None:
        facts = {"p.image": image, "p.pid": 4, "p.host": "ws1", "f.path": path}
        return compile_gate(rule, spec).test(facts, lowered(facts))

    return test


def test_unknown_facts_are_none_and_known_ones_decide(tmp_path: Path) -> None:
    gate = _gate(
        tmp_path,
        "  sel:\n    Image|endswith: '\\\\winword.exe'\n    TargetFilename|endswith: '.docm'\n"
        "  safe:\n    CommandLine|contains: '/safe'\n  condition: sel and not safe",
    )
    assert gate("C:\\Office\\WINWORD.EXE", "C:\\a.docm") is None  # the command line decides
    assert gate("C:\\Office\\WINWORD.EXE", "C:\\a.txt") is False
    assert gate("C:\\cmd.exe", "C:\\a.docm") is False


def test_or_with_a_known_true_part_is_true(tmp_path: Path) -> None:
    gate = _gate(
        tmp_path,
        "  a:\n    TargetFilename|endswith: '.ps1'\n  b:\n    ParentImage|endswith: '\\\\x.exe'\n"
        "  condition: a or not b",
    )
    assert gate("C:\\cmd.exe", "C:\\run.ps1") is True
    assert gate("C:\\cmd.exe", "C:\\run.txt") is None  # not b: the creator decides


def test_a_gate_needs_a_fact_of_the_event(tmp_path: Path) -> None:
    path = tmp_path / "only.yml"
    path.write_text(
        RULE.format(n=3, detection="  sel:\n    CommandLine|contains: 'x'\n  condition: sel"),
        encoding="utf-8",
    )
    (rule,) = compile_path([path]).rules
    with pytest.raises(NotStreamable, match="no fact of the event"):
        compile_gate(rule, sigma_spec(rule.metadata["sigma"]["rule"]))
