"""The telemetry generator: reproducible, exact in size, streaming, and in the real shapes."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.gen_scenarios import RULES, TEMPLATES
from bench.generate import Config, generate, main

DATASETS = Path(__file__).resolve().parents[4] / "shared" / "datasets"
EVTX_SAMPLE = DATASETS / "evtxattack_visual_studio_prebuild_event.sysmon.ndjson"
MORDOR_SAMPLE = DATASETS / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"
N = 20_000
GUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
UTC = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _run(out: Path, **kw: Any) -> dict[str, Any]:
    return generate(Config(out=out, progress=False, **{"events": N, "seed": 7, **kw}))


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    _run(out)
    return out


def _lines(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def sysmon(ds: Path) -> list[dict[str, Any]]:
    return _lines(ds / "sysmon.ndjson")


@pytest.fixture(scope="module")
def mde(ds: Path) -> list[dict[str, Any]]:
    return _lines(ds / "mde.ndjson")


@pytest.fixture(scope="module")
def truth(ds: Path) -> list[dict[str, Any]]:
    return _lines(ds / "ground_truth.ndjson")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- reproducibility and size ----------------------------------------------------------------


def test_same_seed_same_bytes(ds: Path, tmp_path: Path) -> None:
    _run(tmp_path)
    for name in ("sysmon.ndjson", "mde.ndjson", "ground_truth.ndjson", "manifest.json"):
        assert _sha(ds / name) == _sha(tmp_path / name), name


def test_other_seed_other_bytes(ds: Path, tmp_path: Path) -> None:
    _run(tmp_path, seed=8)
    assert _sha(ds / "sysmon.ndjson") != _sha(tmp_path / "sysmon.ndjson")


def test_size_is_exact(ds: Path, sysmon: list[dict[str, Any]], mde: list[dict[str, Any]]) -> None:
    manifest = json.loads((ds / "manifest.json").read_text())
    assert len(sysmon) + len(mde) == N == manifest["events_written"]
    assert manifest["counts_by_format"] == {"sysmon": len(sysmon), "mde": len(mde)}


@pytest.mark.parametrize("events", [10_000, 33_333])
def test_other_sizes_honoured(tmp_path: Path, events: int) -> None:
    m = _run(tmp_path, events=events, hosts=9)
    assert abs(m["events_written"] - events) <= events // 100


def _assert_mix(kinds: dict[str, int]) -> None:
    total = sum(kinds.values())
    share = {k: v / total for k, v in kinds.items()}
    assert 0.20 <= share["process_start"] + share["process_end"] <= 0.32, share
    assert 0.38 <= share["file_write"] + share["file_delete"] <= 0.52, share
    assert 0.18 <= share["network_connect"] <= 0.32, share
    assert share["dns_query"] > 0.02, share


def test_mix_of_event_kinds(ds: Path) -> None:
    _assert_mix(json.loads((ds / "manifest.json").read_text())["counts_by_kind"])


def test_mix_holds_with_many_hosts_and_thin_slices(tmp_path: Path) -> None:
    # 2-3 events per host and slice: the regime of 10M events over 400 hosts
    m = _run(tmp_path, events=40_000, hosts=300)
    _assert_mix(m["counts_by_kind"])
    assert m["time_span"]["last"] < m["time_range"]["end"]


# ---- shapes ------------------------------------------------------------------------------------


def _evtx_keys() -> dict[int, tuple[set[str], set[str]]]:
    out: dict[int, tuple[set[str], set[str]]] = {}
    for rec in _lines(EVTX_SAMPLE):
        e = rec["Event"]
        out[e["System"]["EventID"]] = (set(e["System"]), set(e["EventData"]))
    return out


# NXLog/Logstash envelope fields in the Mordor rows: not part of Sysmon's EventData.
_NXLOG = {
    "@timestamp",
    "@version",
    "AccountName",
    "AccountType",
    "Category",
    "Channel",
    "Domain",
    "EventID",
    "EventReceivedTime",
    "EventTime",
    "EventType",
    "ExecutionProcessID",
    "Hostname",
    "Keywords",
    "Opcode",
    "OpcodeValue",
    "ProviderGuid",
    "RecordNumber",
    "Severity",
    "SeverityValue",
    "SourceModuleName",
    "SourceModuleType",
    "SourceName",
    "Task",
    "ThreadID",
    "UserID",
    "Version",
    "host",
    "port",
    "tags",
}


def _mordor_keys() -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    with open(MORDOR_SAMPLE, encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            if d.get("SourceName") == "Microsoft-Windows-Sysmon" and d["EventID"] in (3, 5, 22, 23):
                out.setdefault(d["EventID"], set(d) - _NXLOG)
    return out


@pytest.mark.skipif(not EVTX_SAMPLE.exists(), reason="shared datasets not mounted")
def test_sysmon_keys_match_real_evtx_rs(sysmon: list[dict[str, Any]]) -> None:
    real = _evtx_keys()
    seen = set()
    for rec in sysmon:
        e = rec["Event"]
        eid = e["System"]["EventID"]
        seen.add(eid)
        if eid in real:
            assert set(e["System"]) == real[eid][0]
            assert set(e["EventData"]) == real[eid][1], eid
    assert seen == {1, 3, 5, 11, 22, 23}


@pytest.mark.skipif(not MORDOR_SAMPLE.exists(), reason="shared datasets not mounted")
def test_sysmon_keys_match_mordor_sysmon_fields(sysmon: list[dict[str, Any]]) -> None:
    # Mordor (NXLog) drops ProcessId; everything else Sysmon logs must be there, no more.
    real = _mordor_keys()
    for rec in sysmon:
        eid = rec["Event"]["System"]["EventID"]
        if eid in real:
            assert set(rec["Event"]["EventData"]) - {"ProcessId"} == real[eid], eid


def test_sysmon_types(sysmon: list[dict[str, Any]]) -> None:
    for rec in sysmon:
        s, d = rec["Event"]["System"], rec["Event"]["EventData"]
        assert ISO.match(s["TimeCreated"]["#attributes"]["SystemTime"])
        assert isinstance(s["EventRecordID"], int) and s["Computer"].endswith(".corp.example")
        assert UTC.match(d["UtcTime"]) and GUID.match(d["ProcessGuid"])
        assert isinstance(d["ProcessId"], int)
        if s["EventID"] == 1:
            assert GUID.match(d["ParentProcessGuid"]) and isinstance(d["ParentProcessId"], int)
            assert isinstance(d["TerminalSessionId"], int) and d["LogonId"].startswith("0x")
        if s["EventID"] == 3:
            assert isinstance(d["Initiated"], bool) and isinstance(d["DestinationPort"], int)
            assert isinstance(d["SourcePort"], int) and isinstance(d["DestinationIsIpv6"], bool)
        if s["EventID"] == 23:
            assert isinstance(d["IsExecutable"], bool)


_MDE_COMMON = {
    "Table",
    "Timestamp",
    "DeviceId",
    "DeviceName",
    "ActionType",
    "ReportId",
    "InitiatingProcessAccountDomain",
    "InitiatingProcessAccountName",
    "InitiatingProcessFileName",
    "InitiatingProcessFolderPath",
    "InitiatingProcessId",
    "InitiatingProcessCommandLine",
    "InitiatingProcessCreationTime",
    "InitiatingProcessUniqueId",
    "InitiatingProcessParentFileName",
    "InitiatingProcessParentId",
    "InitiatingProcessParentCreationTime",
}
_MDE_TABLES = {
    "DeviceProcessEvents": {
        "FileName",
        "FolderPath",
        "ProcessId",
        "ProcessCommandLine",
        "ProcessCreationTime",
        "ProcessUniqueId",
        "AccountDomain",
        "AccountName",
    },
    "DeviceFileEvents": {"FileName", "FolderPath", "PreviousFileName", "PreviousFolderPath"},
    "DeviceNetworkEvents": {
        "RemoteIP",
        "RemotePort",
        "RemoteUrl",
        "RemoteIPType",
        "LocalIP",
        "LocalPort",
        "LocalIPType",
        "Protocol",
    },
}


def test_mde_columns_and_types(mde: list[dict[str, Any]]) -> None:
    tables = Counter()
    for row in mde:
        t = row["Table"]
        tables[t] += 1
        assert set(row) == _MDE_COMMON | _MDE_TABLES[t], t
        assert ISO.match(row["Timestamp"]) and isinstance(row["InitiatingProcessId"], int)
        if t == "DeviceNetworkEvents":
            assert isinstance(row["RemotePort"], int) and row["RemoteIPType"] in {
                "Public",
                "Private",
                "Loopback",
            }
        if t == "DeviceProcessEvents":
            assert row["FolderPath"].endswith("/" + row["FileName"]) and isinstance(
                row["ProcessId"], int
            )
    assert set(tables) == set(_MDE_TABLES)


def test_output_is_time_sorted_and_in_range(
    sysmon: list[dict[str, Any]], mde: list[dict[str, Any]]
) -> None:
    times = [r["Event"]["EventData"]["UtcTime"] for r in sysmon]
    assert times == sorted(times)
    stamps = [r["Timestamp"] for r in mde]
    assert stamps == sorted(stamps)
    assert times[0] >= "2026-01-01 00:00:00.000" and times[-1] < "2026-01-02"
    assert stamps[0] >= "2026-01-01T00" and stamps[-1] < "2026-01-02"


def test_guids_are_unique_per_process(sysmon: list[dict[str, Any]]) -> None:
    starts = [r["Event"]["EventData"] for r in sysmon if r["Event"]["System"]["EventID"] == 1]
    guids = [d["ProcessGuid"] for d in starts]
    assert len(guids) == len(set(guids))
    # every event of a GUID names the same process (image, pid), wherever it appears
    identity: dict[str, tuple[str, int]] = {}
    for r in sysmon:
        d = r["Event"]["EventData"]
        key = (d["Image"], d["ProcessId"])
        assert identity.setdefault(d["ProcessGuid"], key) == key
        if "ParentProcessGuid" in d:
            pkey = (d["ParentImage"], d["ParentProcessId"])
            assert identity.setdefault(d["ParentProcessGuid"], pkey) == pkey


def test_mde_unique_process_ids(mde: list[dict[str, Any]]) -> None:
    ids = [
        (r["DeviceId"], r["ProcessUniqueId"]) for r in mde if r["Table"] == "DeviceProcessEvents"
    ]
    assert len(ids) == len(set(ids))


def test_every_network_name_is_reserved(
    sysmon: list[dict[str, Any]], mde: list[dict[str, Any]]
) -> None:
    names = {r["RemoteUrl"] for r in mde if r["Table"] == "DeviceNetworkEvents"}
    for r in sysmon:
        d = r["Event"]["EventData"]
        names |= {d.get("DestinationHostname", ""), d.get("QueryName", "")}
    names -= {"", "-"}
    names = {n for n in names if not n.endswith(".corp.example") or n.count(".") > 2}
    assert names and all(n.endswith((".example", ".test", ".invalid")) for n in names), sorted(
        names
    )[:10]


# ---- ground truth --------------------------------------------------------------------------------


def _sysmon_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    s, d = rec["Event"]["System"], rec["Event"]["EventData"]
    eid = s["EventID"]
    target = {
        3: d.get("DestinationIp"),
        11: d.get("TargetFilename"),
        23: d.get("TargetFilename"),
        22: d.get("QueryName"),
    }.get(eid)
    if eid == 3 and d.get("Initiated") is False:
        target = d["SourceIp"]
    return ("sysmon", s["Computer"], eid, d["UtcTime"], d["ProcessGuid"], target)


def _mde_key(row: dict[str, Any]) -> tuple[Any, ...]:
    t = row["Table"]
    uid = row["ProcessUniqueId"] if t == "DeviceProcessEvents" else row["InitiatingProcessUniqueId"]
    target = {
        "DeviceFileEvents": row.get("FolderPath"),
        "DeviceNetworkEvents": row.get("RemoteIP"),
    }.get(t)
    return ("mde", row["DeviceName"], t, row["Timestamp"], uid, target)


def _ref_key(ref: dict[str, Any]) -> tuple[Any, ...]:
    if ref["format"] == "sysmon":
        return (
            "sysmon",
            ref["host"],
            ref["event_id"],
            ref["time"],
            ref["process_guid"],
            ref["target"],
        )
    return ("mde", ref["host"], ref["table"], ref["time"], ref["process_unique_id"], ref["target"])


def test_every_scenario_event_is_in_the_output(
    truth: list[dict[str, Any]], sysmon: list[dict[str, Any]], mde: list[dict[str, Any]]
) -> None:
    have = Counter(_sysmon_key(r) for r in sysmon) + Counter(_mde_key(r) for r in mde)
    for sc in truth:
        assert sc["events"], sc["id"]
        for ref in sc["events"]:
            assert have[_ref_key(ref)] >= 1, (sc["id"], sc["variant"], ref)


def test_ground_truth_schema_and_coverage(truth: list[dict[str, Any]]) -> None:
    assert len(truth) >= len(TEMPLATES)
    ids = [t["id"] for t in truth]
    assert len(ids) == len(set(ids))
    labels = Counter((t["rule"], t["label"]) for t in truth)
    for rule in RULES:  # every seed rule has positives and near misses
        assert labels[(rule, "positive")] >= 1 and labels[(rule, "near_miss")] >= 1, rule
    required = {
        "id",
        "rule",
        "label",
        "variant",
        "seed_literal",
        "also_matches",
        "format",
        "host",
        "hosts",
        "time",
        "time_end",
        "anchor_time",
        "processes",
        "files",
        "addresses",
        "events",
        "notes",
        "description",
    }
    for t in truth:
        assert set(t) == required
        assert t["label"] in ("positive", "near_miss") and t["rule"] in RULES
        assert set(t["also_matches"]) <= set(RULES)
        assert t["time"] <= t["anchor_time"] <= t["time_end"] or t["time"] <= t["time_end"]


def test_near_miss_timing_is_exact(truth: list[dict[str, Any]]) -> None:
    for t in truth:
        if t["rule"] != "build_process_compromise" or t["variant"] not in (
            "write_1s_before_build",
            "write_5m1s_after_build",
        ):
            continue
        build = next(p for p in t["processes"] if p["role"] == "build_process")
        write = t["files"][0]
        delta = _seconds(write["time"]) - _seconds(build["start"])
        assert delta == (-1.0 if t["variant"] == "write_1s_before_build" else 301.0)


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# ---- streaming -----------------------------------------------------------------------------------


def _peak_rss_kb(out: Path, events: int) -> int:
    """Peak RSS of a fresh interpreter generating `events` (tracemalloc would take minutes)."""
    code = (
        "import resource, sys; from pathlib import Path; "
        "from bench.generate import Config, generate; "
        f"generate(Config(events={events}, seed=7, out=Path(sys.argv[1]), hosts=12, "
        "progress=False)); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    return int(res.stdout.strip().splitlines()[-1])


def test_memory_is_flat(tmp_path: Path) -> None:
    small, large = _peak_rss_kb(tmp_path / "s", 20_000), _peak_rss_kb(tmp_path / "l", 200_000)
    assert large < 1.3 * small, (small, large)


def test_gzip_and_shards(tmp_path: Path) -> None:
    m = _run(tmp_path, events=6_000, gzip=True, shard_events=2_000, hosts=8)
    files = m["files"]["sysmon"] + m["files"]["mde"]
    assert all(f["path"].endswith(".ndjson.gz") and f["lines"] <= 2_000 for f in files)
    total = 0
    for f in files:
        with gzip.open(tmp_path / f["path"], "rt", encoding="utf-8") as fh:
            total += sum(1 for line in fh if json.loads(line))
    assert total == m["events_written"] == 6_000


def test_cli(tmp_path: Path) -> None:
    rc = main(
        [
            "--events",
            "5000",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--hosts",
            "8",
            "--days",
            "0.5",
            "--start",
            "2026-03-02T06:00:00Z",
            "--no-progress",
        ]
    )
    assert rc == 0
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["seed"] == 3 and m["events_written"] == 5000
    assert m["time_span"]["first"] >= "2026-03-02T06" and m["time_span"]["last"] < "2026-03-02T18"


def test_cli_rejects_too_small(tmp_path: Path) -> None:
    assert (
        main(["--events", "1000", "--out", str(tmp_path), "--no-progress", "--attack-rate", "1"])
        == 2
    )
