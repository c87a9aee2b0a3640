"""Realistic, reproducible security telemetry for benchmarks and detection tests.

Windows hosts write Sysmon in the evtx-rs JSON shape, Linux hosts write Microsoft Defender
Advanced Hunting rows (one JSON object per line, the table named by a leading "Table"
key). Attacks and near misses for every seed rule are injected and listed in
`ground_truth.ndjson`.

    python -m bench.generate --events 100000 --seed 7 --out DIR [--hosts N]
        [--start 2026-01-01T00:00:00Z] [--days 1] [--attack-rate 5000] [--gzip]
        [--shard-events N] [--mix today|realistic] [--no-progress]

    from bench.generate import Config, generate
    manifest = generate(Config(events=100_000, seed=7, out=Path("out")))

Streaming: time is cut into slices; each slice's events (all hosts) are generated, sorted
and written before the next slice starts, and events that spill past a slice's end are
carried into the next one. Memory therefore depends on the slice size, not on the total,
and the output is globally sorted by time. Same seed and parameters -> identical bytes.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import gzip
import hashlib
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench import gen_catalog as CAT
from bench import gen_realistic
from bench.gen_core import (
    ACCESS,
    DAY,
    DELETE,
    DNS,
    END,
    FILE,
    HOUR,
    IMAGE,
    LOGOFF,
    LOGON,
    MINUTE,
    NET,
    PRIVILEGES,
    REG_KEY,
    REG_SET,
    SECURITY_KINDS,
    START,
    US,
    Host,
    iso_us,
    seeded,
)
from bench.gen_render import MdeRenderer, SecurityRenderer, SysmonRenderer
from bench.gen_scenarios import (
    NEW_TERMS_HISTORY,
    RULES,
    SCRIPT_HOST_NAMES,
    TEMPLATES,
    Planned,
    materialise,
    script_msbuild_spawns,
)
from bench.gen_sessions import MENUS, linux_single, win_single
from bench.gen_world import Ctx, build_hosts

SLICE_EVENTS = 1_000  # events per time slice: with sessions in flight, this bounds memory
SCENARIO_LEAD = 15 * MINUTE  # scenario events may start this long before the anchor time
SCENARIO_GUARD = 30 * MINUTE  # no two scenarios this close on one host
BUILD_BLACKOUT = 20 * MINUTE  # no background build starts this close to a build-window scenario
SESSION_TAIL = 15 * MINUTE  # sessions are not started this close to the end of the range

# The tunables the generated data assumes. Rules configured differently will see the
# near misses noted in ground truth as `seed_literal: true` fire, and nothing else changes.
TUNABLES: dict[str, Any] = {
    "build_process_compromise": {
        "build_processes": ["MSBuild.exe", "dotnet.exe", "VBCSCompiler.exe"],
        "code_extensions": [".cs", ".cpp"],
        "window_seconds": 300,
        "allow_list": ["devenv.exe", "Code.exe"],
        "semantics": "sliding window: build start <= write <= build start + 5 min, same host",
    },
    "msbuild_script_parent": {
        "script_hosts": list(SCRIPT_HOST_NAMES),
        "match_original_file_name": True,
    },
    "msbuild_network": {
        "excluded": (
            "loopback and RFC 1918 (project); the Elastic query excludes only 127.0.0.1 and ::1"
        )
    },
    "dependency_compromise": {
        "package_registries_dns_suffixes": list(CAT.PACKAGE_REGISTRIES),
        "public": "not RFC 1918 and not loopback (MDE RemoteIPType == 'Public')",
    },
    "dockerd_nonregistry_network": {
        "container_registries_dns_suffixes": list(CAT.CONTAINER_REGISTRIES),
        "ports": [80, 443, 8080, 8443],
    },
    "docker_build_suspicious": {
        "threshold": 2,
        "temp_paths": ["/tmp/", "/dev/shm/", "/var/tmp/", "/run/user/"],
    },
}


@dataclass
class Config:
    events: int = 100_000
    seed: int = 7
    out: Path = Path("bench/out")
    hosts: int | None = None
    start: str = "2026-01-01T00:00:00Z"
    days: float = 1.0
    attack_rate: int = 5000  # one scenario per this many events; 0 disables injection
    gzip: bool = False
    shard_events: int = 0  # 0: one file per format
    progress: bool = True
    # "today": Sysmon 1/3/5/11/22/23 and MDE rows; "realistic": also Sysmon 7/10/12/13 and
    # Security 4624/4634/4672 on Windows hosts, in real proportions (bench.gen_realistic)
    mix: str = "today"

    def n_hosts(self) -> int:
        return self.hosts if self.hosts else max(12, min(400, self.events // 25_000))

    def start_us(self) -> int:
        dt = datetime.fromisoformat(self.start.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp()) * US + dt.microsecond


# ---- output ------------------------------------------------------------------------------------


@dataclass
class _Sink:
    """One output stream (optionally gzip, optionally sharded); hashes what it writes."""

    out: Path
    stem: str
    gz: bool
    shard: int
    files: list[dict[str, Any]] = field(default_factory=list)
    _fh: IO[bytes] | None = None
    _raw: IO[bytes] | None = None
    _hash: Any = None
    _lines: int = 0
    _bytes: int = 0

    def _name(self) -> str:
        base = self.stem if not self.shard else f"{self.stem}-{len(self.files):05d}"
        return base + (".ndjson.gz" if self.gz else ".ndjson")

    def _open(self) -> None:
        path = self.out / self._name()
        self._raw = open(path, "wb")  # noqa: SIM115 -- lives across write() calls; closed in _close
        # mtime=0 and no file name in the gzip header: byte-identical reruns
        self._fh = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6)
            if self.gz
            else self._raw
        )
        self._hash, self._lines, self._bytes = hashlib.sha256(), 0, 0
        self.files.append({"path": path.name})

    def _close(self) -> None:
        if self._fh is None:
            return
        self._fh.close()
        if self._raw is not self._fh and self._raw is not None:
            self._raw.close()
        self.files[-1].update(
            lines=self._lines,
            bytes=self._bytes,
            sha256=self._hash.hexdigest(),
            sha256_of="uncompressed content" if self.gz else "file",
        )
        self._fh = None

    def write(self, lines: list[str]) -> None:
        i = 0
        while i < len(lines):
            if self._fh is None:
                self._open()
            take = (
                len(lines) - i if not self.shard else min(len(lines) - i, self.shard - self._lines)
            )
            data = ("\n".join(lines[i : i + take]) + "\n").encode()
            assert self._fh is not None
            self._fh.write(data)
            self._hash.update(data)
            self._lines += take
            self._bytes += len(data)
            i += take
            if self.shard and self._lines >= self.shard:
                self._close()

    def close(self) -> None:
        if self._fh is None and not self.files:
            self._open()  # an empty stream still gets its (empty) file
        self._close()


# ---- planning ----------------------------------------------------------------------------------


def plan_scenarios(
    cfg: Config, hosts: list[Host], t_start: int, t_end: int
) -> tuple[list[Planned], list[str]]:
    if cfg.attack_rate <= 0:
        return [], []
    rng = seeded(cfg.seed, "plan")
    n = max(len(TEMPLATES), round(cfg.events / cfg.attack_rate))
    lo, hi = t_start + SCENARIO_LEAD + 2 * MINUTE, t_end - SESSION_TAIL
    if hi <= lo:
        raise ValueError(
            "time range too short to place scenarios (need > 35 minutes); use --attack-rate 0"
        )
    by_role: dict[str, list[Host]] = {}
    for h in hosts:
        by_role.setdefault(h.role, []).append(h)
    taken: dict[int, list[int]] = {}
    plans: list[Planned] = []
    skipped: list[str] = []
    order: list[int] = []
    while len(order) < n:
        cycle = list(range(len(TEMPLATES)))
        rng.shuffle(cycle)  # each full cycle in its own order: a cut-off cycle stays balanced
        order += cycle
    for k in order[:n]:
        tpl = TEMPLATES[k]
        cands = [h for r in tpl.roles for h in by_role.get(r, [])]
        others = [h for r in tpl.other_roles for h in by_role.get(r, [])]
        if not cands or (tpl.other_roles and len(set(id(h) for h in others + cands)) < 2):
            skipped.append(f"{tpl.rule}/{tpl.label}/{tpl.variant}")
            continue
        plans.append(_place(tpl, cands, others, rng, lo, hi, taken))
    plans.sort(key=lambda p: (p.t0, p.host.idx))
    for i, p in enumerate(plans):
        p.sid = f"gt-{i + 1:06d}"
    return plans, skipped


def _free(taken: dict[int, list[int]], h: Host, t: int) -> bool:
    ts = taken.get(h.idx, [])
    i = bisect.bisect_left(ts, t - SCENARIO_GUARD)
    return i >= len(ts) or ts[i] > t + SCENARIO_GUARD


def _place(
    tpl: Any,
    cands: list[Host],
    others: list[Host],
    rng: Any,
    lo: int,
    hi: int,
    taken: dict[int, list[int]],
) -> Planned:
    host, other, t0 = cands[0], None, lo
    for _ in range(60):
        host = cands[int(rng.random() * len(cands))]
        t0 = lo + int(rng.random() * (hi - lo))
        other = None
        if others:
            pool = [o for o in others if o is not host]
            other = pool[int(rng.random() * len(pool))]
        if _free(taken, host, t0) and (other is None or _free(taken, other, t0)):
            break  # otherwise keep the last draw: a crowded estate tolerates overlap
    for h in (host, other):
        if h is not None:
            bisect.insort(taken.setdefault(h.idx, []), t0)
    return Planned(sid="", tpl=tpl, host=host, t0=t0, other=other)


def _dry_run(plan: Planned, seed: int) -> list[tuple]:
    """Dry-run a scenario on copies of its hosts: how many events it emits, and when."""

    def clone(h: Host) -> Host:
        c = copy.copy(h)
        c.long_lived, c.services = dict(h.long_lived), list(h.services)
        return c

    dry = copy.copy(plan)
    dry.host = clone(plan.host)
    dry.other = clone(plan.other) if plan.other else None
    ctx = Ctx(dry.host, seeded(seed, "scenario", plan.sid), [])
    octx = Ctx(dry.other, seeded(seed, "scenario-other", plan.sid), []) if dry.other else None
    return materialise(dry, ctx, octx)


# ---- budgets -----------------------------------------------------------------------------------

_ROLE_WEIGHT = {
    "win_workstation": 1.0,
    "win_dev": 2.2,
    "win_build": 2.5,
    "win_server": 0.8,
    "linux_dev": 1.8,
    "linux_build": 2.5,
    "linux_server": 1.0,
}


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [int(x) for x in raw]
    rest = total - sum(out)
    for i in sorted(range(len(raw)), key=lambda i: (out[i] - raw[i], i))[:rest]:
        out[i] += 1
    return out


def _activity(role: str, t: int) -> float:
    """Relative activity by time of day and weekday: people work office hours, servers less so."""
    hour = (t // HOUR) % 24
    weekday = ((t // DAY) + 3) % 7 < 5  # 1970-01-01 was a Thursday
    office = 1.0 if (weekday and 7 <= hour < 19) else 0.0
    if role in ("win_workstation", "win_dev", "linux_dev"):
        return 0.12 + office
    if role in ("win_build", "linux_build"):
        return 0.5 + 0.5 * office
    return 0.7 + 0.3 * office


# ---- the run -----------------------------------------------------------------------------------


@dataclass
class _HostState:
    budget: int
    emitted: int = 0
    menu: list[tuple[Any, float, bool]] = field(default_factory=list)
    blackouts: list[tuple[int, int]] = field(default_factory=list)
    # Ledger for the build/write correlation: background must never put a code-file write
    # within 5 minutes after a build start on the same host, whoever wrote it.
    builds: list[int] = field(default_factory=list)
    code_writes: list[int] = field(default_factory=list)
    rng: Any = None  # one stream per host for the whole run: seeding per slice costs too much

    def prune(self, before: int) -> None:
        if not self.builds and not self.code_writes:
            return
        self.builds = self.builds[bisect.bisect_left(self.builds, before) :]
        self.code_writes = self.code_writes[bisect.bisect_left(self.code_writes, before) :]


_BUILD_NAMES = frozenset(n.lower() for n in TUNABLES["build_process_compromise"]["build_processes"])
_CODE_EXT = tuple(TUNABLES["build_process_compromise"]["code_extensions"])
_WINDOW = TUNABLES["build_process_compromise"]["window_seconds"] * US + 5 * US  # 5 s of margin


def _build_facts(events: list[tuple]) -> tuple[list[int], list[int]]:
    builds = [e[0] for e in events if e[1] == START and e[2].name.lower() in _BUILD_NAMES]
    writes = [e[0] for e in events if e[1] == FILE and e[3].lower().endswith(_CODE_EXT)]
    return builds, writes


def _correlates(builds: list[int], writes: list[int]) -> bool:
    """Does any write fall within the window after any build start? (both sorted)"""
    for w in writes:
        i = bisect.bisect_right(builds, w) - 1
        if i >= 0 and w - builds[i] <= _WINDOW:
            return True
    return False


def _session_ok(st: _HostState, events: list[tuple]) -> bool:
    builds, writes = _build_facts(events)
    if not builds and not writes:
        return True
    all_builds = sorted(st.builds + builds)
    if writes and _correlates(all_builds, sorted(writes)):
        return False
    return not (builds and _correlates(sorted(builds), st.code_writes))


def _record(st: _HostState, events: list[tuple]) -> None:
    builds, writes = _build_facts(events)
    for b in builds:
        bisect.insort(st.builds, b)
    for w in writes:
        bisect.insort(st.code_writes, w)


def generate(cfg: Config) -> dict[str, Any]:
    """Write the data set to cfg.out and return the manifest (also written as manifest.json)."""
    if cfg.events < 1000:
        raise ValueError("--events must be at least 1000")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = cfg.start_us()
    t_end = t_start + int(cfg.days * DAY)
    n_hosts = cfg.n_hosts()
    if n_hosts < 7:
        raise ValueError("--hosts must be at least 7 (one per host role)")
    if cfg.mix not in gen_realistic.MIXES:
        raise ValueError(f"--mix must be one of {', '.join(gen_realistic.MIXES)}")
    hosts = build_hosts(n_hosts, cfg.seed, t_start)
    if cfg.mix == "realistic":
        for h in hosts:
            if h.windows:
                h.realistic = True
                gen_realistic.add_lsass(h)
    plans, skipped = plan_scenarios(cfg, hosts, t_start, t_end)
    dry = {p.sid: _dry_run(p, cfg.seed) for p in plans}
    for p in plans:
        p.n_events = len(dry[p.sid])
    _note_new_terms(plans, dry)
    scenario_events = sum(p.n_events for p in plans)
    background = cfg.events - scenario_events
    if background < 0:
        raise ValueError(
            f"{len(plans)} scenarios need {scenario_events} events; raise --events or --attack-rate"
        )

    jitter = seeded(cfg.seed, "jitter")
    weights = [_ROLE_WEIGHT[h.role] * (0.6 + 0.8 * jitter.random()) for h in hosts]
    states = [
        _HostState(b, menu=_menu(h))
        for h, b in zip(hosts, _largest_remainder(background, weights), strict=True)
    ]
    for h, st in zip(hosts, states, strict=True):
        st.rng = seeded(cfg.seed, "background", h.idx)
    for p in plans:  # scenario builds and code writes are known from the dry run
        for h in (p.host, p.other):
            if h is not None:
                _record(states[h.idx], [e for e in dry[p.sid] if e[2].host.idx == h.idx])
    del dry
    for p in plans:
        if p.tpl.rule == "build_process_compromise":
            for h in (p.host, p.other):
                if h is not None:
                    states[h.idx].blackouts.append((p.t0 - BUILD_BLACKOUT, p.t0 + BUILD_BLACKOUT))
    for st in states:
        st.blackouts.sort()

    n_slices = max(math.ceil(cfg.events / SLICE_EVENTS), math.ceil(cfg.days * 24), 1)
    bounds = [t_start + (t_end - t_start) * i // n_slices for i in range(n_slices + 1)]
    cum = _cumulative_activity(bounds)

    sinks = {
        "sysmon": _Sink(out, "sysmon", cfg.gzip, cfg.shard_events),
        "mde": _Sink(out, "mde", cfg.gzip, cfg.shard_events),
    }
    renderers = {"sysmon": SysmonRenderer(), "mde": MdeRenderer(), "security": SecurityRenderer()}
    if cfg.mix == "realistic":  # today's mix writes no Security file at all
        sinks["security"] = _Sink(out, "security", cfg.gzip, cfg.shard_events)
    counts: Counter[str] = Counter()
    span = [None, None]
    gt_path = out / "ground_truth.ndjson"
    progress = _progress(cfg)
    started, cpu = time.perf_counter(), time.process_time()
    carry: list[tuple] = []
    next_plan = 0
    with open(gt_path, "w", encoding="utf-8") as gt:
        for s in range(n_slices):
            s0, s1 = bounds[s], bounds[s + 1]
            buf = carry
            for h, st in zip(hosts, states, strict=True):
                st.prune(s0 - HOUR)
                target = st.budget if s == n_slices - 1 else round(st.budget * cum[h.role][s + 1])
                if st.emitted < target:
                    _fill_host(h, st, target, s0, s1, t_end, st.rng, buf)
            while next_plan < len(plans) and max(plans[next_plan].t0 - SCENARIO_LEAD, t_start) < s1:
                buf.extend(_inject(plans[next_plan], cfg.seed, gt))
                next_plan += 1
            buf.sort(key=_ts)
            if s == n_slices - 1:
                emit, carry = buf, []
            else:
                cut = bisect.bisect_left(buf, s1, key=_ts)
                emit, carry = buf[:cut], buf[cut:]
            _emit(emit, sinks, renderers, counts, span)
            progress.update(len(emit))
    progress.close()
    for sink in sinks.values():
        sink.close()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    total = sum(v for k, v in counts.items() if k.startswith("format:"))
    # CPU time too: on a shared machine wall time mostly measures the neighbours
    print(
        f"bench.generate: {total} events in {elapsed:.1f} s wall, {cpu:.1f} s CPU "
        f"({total / max(elapsed, 1e-9):,.0f} events/s wall, "
        f"{total / max(cpu, 1e-9):,.0f} events/s CPU)",
        file=sys.stderr,
    )
    manifest = _manifest(cfg, hosts, plans, skipped, sinks, counts, span, t_start, t_end, n_slices)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _note_new_terms(plans: list[Planned], dry: dict[str, list[tuple]]) -> None:
    """msbuild_script_parent is a new_terms rule keyed on host: only the first script->MSBuild
    spawn per host in its 5-day history alerts. Say which scenarios are that first one."""
    last: dict[int, int] = {}
    for p in plans:  # plans are in time order
        for t in script_msbuild_spawns(dry[p.sid]):
            prev = last.get(p.host.idx)
            p.notes["msbuild_script_parent_new_term"] = prev is None or t - prev > NEW_TERMS_HISTORY
            last[p.host.idx] = t


def _ts(ev: tuple) -> int:
    return ev[0]


def _cumulative_activity(bounds: list[int]) -> dict[str, list[float]]:
    """Per role, the share of the day's activity done by each slice boundary (0 .. 1)."""
    out = {}
    for role in _ROLE_WEIGHT:
        acc = [0.0]
        for a, b in zip(bounds, bounds[1:], strict=False):
            acc.append(acc[-1] + _activity(role, (a + b) // 2) * (b - a))
        out[role] = [x / acc[-1] for x in acc]
    return out


def _menu(h: Host) -> list[tuple[Any, float, bool]]:
    menu = MENUS[h.role]
    if h.realistic:
        menu = [*menu, (gen_realistic.logon_session, gen_realistic.LOGON_WEIGHT[h.role], False)]
    return menu


def _realistic_single(ctx: Ctx, t: int) -> None:
    if not gen_realistic.single(ctx.out, ctx.rng, ctx.host, t):
        win_single(ctx, t)


def _blacked_out(st: _HostState, t: int) -> bool:
    i = bisect.bisect_right(st.blackouts, (t, 1 << 62)) - 1
    return i >= 0 and st.blackouts[i][0] <= t <= st.blackouts[i][1]


def _fill_host(
    h: Host, st: _HostState, target: int, s0: int, s1: int, t_end: int, rng: Any, buf: list[tuple]
) -> None:
    """Generate background for one host in one slice until it reaches its cumulative target.

    Sessions may overshoot a slice's target (later slices catch up) but never the host's
    total budget: a session that would is thrown away and singles fill the rest exactly.
    """
    menu = st.menu
    total_w = sum(w for _, w, _ in menu)
    latest = max(s0, min(s1, t_end - SESSION_TAIL))
    single = win_single if h.windows else linux_single
    if h.realistic:
        single = _realistic_single
    tries = 0
    while st.emitted < target:
        room = st.budget - st.emitted
        t = s0 + int(rng.random() * (latest - s0))
        # A session may overshoot this slice (later ones catch up); none start in the last
        # minutes of the range, where they would run past its end.
        if room >= 8 and tries < 4 and s0 < t_end - SESSION_TAIL:
            fn = _pick(menu, total_w, rng)
            if fn[2] and _blacked_out(st, t):
                continue
            tmp: list[tuple] = []
            fn[0](Ctx(h, rng, tmp), t)
            if len(tmp) <= room and (not h.windows or _session_ok(st, tmp)):
                if h.windows:
                    _record(st, tmp)
                buf.extend(tmp)
                st.emitted += len(tmp)
                tries = 0
                continue
            tries += 1  # too big for what is left, or would correlate: try another
            continue
        tmp = []
        single(Ctx(h, rng, tmp), s0 + int(rng.random() * (s1 - s0)))
        buf.extend(tmp)
        st.emitted += len(tmp)


def _pick(menu: list[tuple[Any, float, bool]], total_w: float, rng: Any) -> tuple[Any, float, bool]:
    x = rng.random() * total_w
    for item in menu:
        x -= item[1]
        if x < 0:
            return item
    return menu[-1]


def _inject(plan: Planned, seed: int, gt: IO[str]) -> list[tuple]:
    ctx = Ctx(plan.host, seeded(seed, "scenario", plan.sid), [])
    octx = Ctx(plan.other, seeded(seed, "scenario-other", plan.sid), []) if plan.other else None
    expected = plan.n_events
    events = materialise(plan, ctx, octx)
    assert len(events) == expected, f"{plan.sid}: dry run said {expected} events, got {len(events)}"
    gt.write(json.dumps(plan.truth) + "\n")
    return events


_KIND = {
    START: "process_start",
    END: "process_end",
    FILE: "file_write",
    DELETE: "file_delete",
    NET: "network_connect",
    DNS: "dns_query",
    IMAGE: "image_load",
    ACCESS: "process_access",
    REG_KEY: "registry_key",
    REG_SET: "registry_set",
    LOGON: "logon",
    LOGOFF: "logoff",
    PRIVILEGES: "special_logon",
}


def _emit(
    events: list[tuple],
    sinks: dict[str, _Sink],
    renderers: dict[str, Any],
    counts: Counter[str],
    span: list[Any],
) -> None:
    if not events:
        return
    win_lines, lin_lines, sec_lines = [], [], []
    sysmon, mde = renderers["sysmon"].render, renderers["mde"].render
    security = renderers["security"].render
    kinds: Counter[tuple[str, int]] = Counter()
    for ev in events:
        kind = ev[1]
        if kind in SECURITY_KINDS:
            kinds[("security", kind)] += 1
            sec_lines.append(security(ev))
        elif ev[2].host.windows:
            kinds[("sysmon", kind)] += 1
            win_lines.append(sysmon(ev))
        else:
            kinds[("mde", kind)] += 1
            lin_lines.append(mde(ev))
    for (fmt, k), n in kinds.items():
        counts[f"{fmt}:{_KIND[k]}"] += n
    counts["format:sysmon"] += len(win_lines)
    counts["format:mde"] += len(lin_lines)
    sinks["sysmon"].write(win_lines)
    sinks["mde"].write(lin_lines)
    if sec_lines:
        counts["format:security"] += len(sec_lines)
        sinks["security"].write(sec_lines)
    span[0] = events[0][0] if span[0] is None else min(span[0], events[0][0])
    span[1] = events[-1][0] if span[1] is None else max(span[1], events[-1][0])


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(cfg: Config) -> Any:
    if not cfg.progress:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional: generation works without a bar
        return _NoBar()
    return tqdm(
        total=cfg.events,
        unit="ev",
        unit_scale=True,
        file=sys.stderr,
        desc="generate",
        disable=cfg.events < 200_000,
    )


def _manifest(
    cfg: Config,
    hosts: list[Host],
    plans: list[Planned],
    skipped: list[str],
    sinks: dict[str, _Sink],
    counts: Counter[str],
    span: list[Any],
    t_start: int,
    t_end: int,
    n_slices: int,
) -> dict[str, Any]:
    by_kind: dict[str, dict[str, int]] = {}
    for k, v in sorted(counts.items()):
        fmt, kind = k.split(":", 1)
        if fmt != "format":
            by_kind.setdefault(fmt, {})[kind] = v
    kind_totals: Counter[str] = Counter()
    for fmt in by_kind.values():
        for kind, v in fmt.items():
            kind_totals[kind] += v
    scen: Counter[str] = Counter(f"{p.tpl.rule}/{p.tpl.label}" for p in plans)
    return {
        "generator": "bench.generate",
        "schema_version": 1,
        "seed": cfg.seed,
        "events_requested": cfg.events,
        "events_written": counts["format:sysmon"]
        + counts["format:mde"]
        + counts["format:security"],
        "mix": cfg.mix,
        "attack_rate": cfg.attack_rate,
        "time_range": {"start": iso_us(t_start), "end": iso_us(t_end), "days": cfg.days},
        "time_span": {
            "first": iso_us(span[0]) if span[0] else None,
            "last": iso_us(span[1]) if span[1] else None,
        },
        "slices": n_slices,
        "counts_by_format": {
            fmt: counts[f"format:{fmt}"]
            for fmt in sinks  # security: realistic mix only
        },
        "counts_by_format_and_kind": by_kind,
        "counts_by_kind": dict(sorted(kind_totals.items())),
        "hosts": {
            "count": len(hosts),
            "by_role": dict(sorted(Counter(h.role for h in hosts).items())),
            "list": [
                {
                    "name": h.fqdn,
                    "short": h.short,
                    "role": h.role,
                    "ip": h.ip,
                    "format": "sysmon" if h.windows else "mde",
                }
                for h in hosts
            ],
        },
        "scenarios": {
            "count": len(plans),
            "events": sum(p.n_events for p in plans),
            "by_rule_and_label": dict(sorted(scen.items())),
            "templates": len(TEMPLATES),
            "skipped_templates": skipped,
            "rules": list(RULES),
        },
        "files": {
            **{fmt: sink.files for fmt, sink in sinks.items()},
            "ground_truth": "ground_truth.ndjson",
        },
        "formats": {
            "sysmon": (
                'evtx-rs JSON: {"Event": {"#attributes", "System", "EventData"}}; '
                "EventID 1,3,5,11,22,23" + (",7,10,12,13" if cfg.mix == "realistic" else "")
            ),
            **(
                {"security": "evtx-rs JSON, Security-Auditing; EventID 4624,4634,4672"}
                if cfg.mix == "realistic"
                else {}
            ),
            "mde": 'Advanced Hunting rows; key "Table" names DeviceProcessEvents / '
            "DeviceFileEvents / "
            "DeviceNetworkEvents; FolderPath is the full path including the file name; "
            "no process-end or DNS rows (MDE has none for these)",
        },
        "tunables": TUNABLES,
    }


# ---- CLI ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.generate", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--events", type=int, default=100_000, help="total events to write (exact)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument(
        "--hosts", type=int, default=None, help="number of hosts (default: scales with --events)"
    )
    ap.add_argument(
        "--start", default="2026-01-01T00:00:00Z", help="ISO-8601 UTC start of the time range"
    )
    ap.add_argument("--days", type=float, default=1.0, help="length of the time range in days")
    ap.add_argument(
        "--attack-rate",
        type=int,
        default=5000,
        help="one injected scenario per N events (at least one per template; 0 disables)",
    )
    ap.add_argument("--gzip", action="store_true", help="write .ndjson.gz")
    ap.add_argument(
        "--shard-events", type=int, default=0, help="split each format into files of N lines"
    )
    ap.add_argument(
        "--mix",
        choices=gen_realistic.MIXES,
        default="today",
        help="today: Sysmon 1/3/5/11/22/23 + MDE (default); realistic: also image loads, "
        "registry, process access and logons at real proportions (see bench.gen_realistic)",
    )
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    cfg = Config(
        events=a.events,
        seed=a.seed,
        out=a.out,
        hosts=a.hosts,
        start=a.start,
        days=a.days,
        attack_rate=a.attack_rate,
        gzip=a.gzip,
        shard_events=a.shard_events,
        progress=not a.no_progress,
        mix=a.mix,
    )
    try:
        generate(cfg)
    except ValueError as e:
        print(f"bench.generate: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
