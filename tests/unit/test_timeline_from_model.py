"""The host timeline's facts are generated from graph.model: every timed edge type is on it
(or said not to be, with why), and each reads as one kind."""

from __future__ import annotations

from provgraph.graph.model import EDGES
from provgraph.queries import provenance

from provgraph.cli.trace import VERBS


def _timed() -> set[str]:
    return {e.type for e in EDGES if "times" in e.times}


def test_every_timed_edge_type_has_a_place_on_the_timeline() -> None:
    placed = [
        *provenance.PROCESS_FACTS,
        *provenance.HOST_FACTS,
        *provenance.SYSTEM_FACTS,
        *provenance.OFF_TIMELINE,
    ]
    assert len(placed) == len(set(placed))  # in one place only
    assert set(placed) == _timed()
    for rel in provenance.PROCESS_FACTS + provenance.HOST_FACTS:
        assert f"WHEN '{rel}' THEN" in provenance.HOST_TIMELINE


def test_each_named_kind_is_a_model_edge_and_reads_as_one_kind() -> None:
    assert set(provenance.TIMELINE_KINDS) <= _timed()
    kinds = [k.kind for k in provenance.TIMELINE_KINDS.values()]
    assert len(kinds) == len(set(kinds))
    # the CLI has a verb for every kind the timeline can hold
    assert set(kinds) <= set(VERBS)


def test_a_timed_edge_the_table_does_not_name_still_reads() -> None:
    kind = provenance._kind_of("SOME_NEW_EDGE")
    assert kind.kind == "some_new_edge" and "x." in kind.target and kind.details == "{}"
