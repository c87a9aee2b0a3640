"""The realistic generator mix: image loads, registry, process access and logons at real
proportions, in the shapes Sysmon and Security write, without changing today's mix."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from provgraph.ingest.deadletter import Summary
from provgraph.ingest.reader import iter_results

from bench.generate import Config, generate

N = 20_000
REGRESSION = Path(__file__).resolve().parents[4] / "shared" / "sigmahq" / "regression_data"
REAL_SAMPLES = {  # a real evtx-rs record of each realistic Sysmon kind (SigmaHQ regression)
    7: "rules/windows/image_load/image_load_susp_offreg_dll_load",
    10: "rules/windows/process_access/proc_access_win_werfaultsecure_msmpeng_access",
    13: "rules/windows/registry/registry_set/registry_set_disable_system_restore",
}


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("realistic")
    generate(Config(events=N, seed=7, out=out, progress=False, mix="realistic"))
    return out


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _kinds(path: Path) -> Counter[int]:
    return Counter(r["Event"]["System"]["EventID"] for r in _lines(path))


def test_size_is_exact_and_reproducible(realistic: Path, tmp_path: Path) -> None:
    manifest = json.loads((realistic / "manifest.json").read_text())
    lines = sum(
        len((realistic / f"{fmt}.ndjson").read_text().splitlines())
        for fmt in ("sysmon", "mde", "security")
    )
    assert lines == N == manifest["events_written"] and manifest["mix"] == "realistic"
    generate(Config(events=N, seed=7, out=tmp_path, progress=False, mix="realistic"))
    for name in ("sysmon.ndjson", "security.ndjson", "mde.ndjson", "ground_truth.ndjson"):
        a, b = (hashlib.sha256((d / name).read_bytes()).hexdigest() for d in (realistic, tmp_path))
        assert a == b, name


def test_image_loads_and_registry_outnumber_process_starts(realistic: Path) -> None:
    sysmon = _kinds(realistic / "sysmon.ndjson")
    starts = sysmon[1]
    assert starts > 100
    assert sysmon[7] > 5 * starts  # image loads
    assert sysmon[12] + sysmon[13] > 2 * starts  # registry
    assert starts < sysmon[10] < 3 * starts  # process access
    security = _kinds(realistic / "security.ndjson")
    assert set(security) == {4624, 4634, 4672}
    assert security[4624] == security[4634] > security[4672] > 0


def test_output_stays_time_sorted(realistic: Path) -> None:
    times = [
        r["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"]
        for r in _lines(realistic / "security.ndjson")
    ]
    assert times == sorted(times)
    utc = [r["Event"]["EventData"]["UtcTime"] for r in _lines(realistic / "sysmon.ndjson")]
    # the channel stamps a record a little after UtcTime; UtcTime itself is in order
    assert utc == sorted(utc)


def test_today_mix_writes_no_security_file(tmp_path: Path) -> None:
    manifest = generate(Config(events=N, seed=7, out=tmp_path, progress=False))
    assert not (tmp_path / "security.ndjson").exists()
    assert manifest["mix"] == "today" and set(manifest["counts_by_format"]) == {"sysmon", "mde"}
    assert set(_kinds(tmp_path / "sysmon.ndjson")) == {1, 3, 5, 11, 22, 23}


def _real_record(folder: str, eid: int) -> dict[str, Any]:
    text = next((REGRESSION / folder).glob("*.json")).read_text()
    decoder, at = json.JSONDecoder(), 0
    while True:
        while text[at].isspace():
            at += 1
        record, at = decoder.raw_decode(text, at)
        if record["Event"]["System"]["EventID"] == eid:
            return dict(record)


@pytest.mark.skipif(not REGRESSION.exists(), reason="sigmahq regression data not mounted")
def test_realistic_sysmon_records_have_the_fields_of_real_ones(realistic: Path) -> None:
    generated = {}
    for record in _lines(realistic / "sysmon.ndjson"):
        generated.setdefault(record["Event"]["System"]["EventID"], record["Event"])
    for eid, folder in REAL_SAMPLES.items():
        real = _real_record(folder, eid)["Event"]
        assert set(generated[eid]["System"]) == set(real["System"]), eid
        assert list(generated[eid]["EventData"]) == list(real["EventData"]), eid
        for key, value in real["EventData"].items():
            assert type(generated[eid]["EventData"][key]) is type(value), (eid, key)


def test_every_generated_record_is_read_without_a_dead_letter(realistic: Path) -> None:
    for name in ("sysmon.ndjson", "security.ndjson"):
        summary = Summary()
        data = (realistic / name).read_bytes()
        results = list(iter_results(io.BytesIO(data), summary=summary))
        assert len(results) == len(data.splitlines())
        assert [r.dead for r in results if r.dead is not None] == [], name
        # (before the new kinds are modelled their records are skipped, never rejected)
        sources = {e.origin.source for r in results for e in r.events}
        assert sources <= ({"security"} if name.startswith("security") else {"sysmon"})
