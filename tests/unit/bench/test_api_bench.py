"""The API bench's per-endpoint figures from its samples."""

from __future__ import annotations

from bench.api_bench import Endpoint, Sample, summarise


def test_summarise_one_endpoint_among_interleaved_samples() -> None:
    timeline = Endpoint("host_timeline", lambda i: "/", 250.0)
    samples = [Sample("host_timeline", 0.0, (i + 1) / 1000, 200) for i in range(200)]
    samples += [Sample("alerts_list", 0.0, 5.0, 200)]  # another endpoint's: not counted
    samples[10] = Sample("host_timeline", 0.0, 0.011, 500)
    result = summarise(samples, timeline, wall=10.0)
    assert result["requests"] == 200 and result["rps"] == 20.0
    assert result["p50_ms"] == 100.5 and result["p99_ms"] == 199.0 and result["max_ms"] == 200.0
    assert result["errors"] == 1 and result["error_statuses"] == [500]
    assert result["met"] is False  # fast enough, but an error is a miss
    clean = summarise([s for s in samples if s.status == 200], timeline, wall=10.0)
    assert clean["met"] is True and clean["errors"] == 0


def test_side_by_side_asks_both_servers_for_the_same_targets() -> None:
    from bench.api_bench import BASELINE, side_by_side

    endpoints = [Endpoint("a", lambda i: f"/a/{i}", 100.0), Endpoint("b", lambda i: f"/b/{i}", 1)]
    both = side_by_side(endpoints)
    assert [(e.name, e.server) for e in both] == [
        ("a", ""),
        (f"a@{BASELINE}", BASELINE),
        ("b", ""),
        (f"b@{BASELINE}", BASELINE),
    ]
    assert both[0].path(3) == both[1].path(3) == "/a/3" and both[1].target_ms == 100.0
