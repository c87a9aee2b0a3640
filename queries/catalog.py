"""The rule catalog: the one path by which rules reach the engine, scheduler, CLI and API.

    catalog = default_catalog()     # shipped rules plus the site's `rule_dirs`
    view = catalog.snapshot()       # cached; re-read when a rule file or the settings file changes
    view.rules                      # effective rules: site parameter values and time limit applied
    view.select(["msbuild_network"])  # by id; UnknownRules names the ids that are not there
    catalog.validate(graph)         # loader problems plus the server's EXPLAIN of every query

Where rules come from is a list of `RuleSource`s, built from the site settings by a
`SourcesFor` function (`site_sources` for the default catalog). A source says what it holds
(`load`) and when that changed (`stamp`); the catalog merges sources in order (the first to
use an id keeps it, later ones are reported), applies the settings file's `rules:` values
(`tune`) and resolves each rule's time limit. Rules compiled from Sigma (`provgraph sigma
import`) join as one more source, the folder `<rules home>/sigma/`. Any rule can be disabled:
the state file `<rules home>/state.json` lists the disabled ids; a disabled rule stays in the
catalog's `entries` (listed, shown) but not in `rules` (what runs). The rules home is
`rules_home:` in the settings file, by default `<state root>/rules`
(`provgraph.graph.local.instance.state_root`).

Site settings live in `provgraph.yaml` (see `provgraph.core.config`). They must name rules
and parameters that exist, with values of the shipped type, so a typo in an allow list fails
loudly instead of leaving the shipped default in force. A catalog over folders the user named
(`provgraph rules … --rules-dir DIR`) applies the settings that name its rules and ignores
the others.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from neo4j.exceptions import CypherSyntaxError, Neo4jError
from provgraph.core.config import (
    config_path,
    rule_dirs,
    rule_settings,
    rule_time_limit,
    rules_home,
)
from provgraph.core.errors import ProvgraphError
from provgraph.core.times import EPOCH, FAR_FUTURE
from provgraph.graph.local.instance import state_root
from provgraph.graph.tx import Graph
from provgraph.queries.rule import RULES_DIR, Rule, RuleError, RuleSet, load_rules, parse_duration

log = logging.getLogger(__name__)

# how long one rule's query may run on the server unless the rule or the site says otherwise
DEFAULT_TIME_LIMIT = timedelta(seconds=120)


class RuleSettingsError(ProvgraphError):
    """The settings file's rule section does not fit the rules (unknown rule, parameter, type)."""


class UnknownRules(ProvgraphError):
    """Rule ids asked for that the catalog does not hold (or holds disabled)."""

    def __init__(self, missing: Iterable[str], disabled: Iterable[str] = ()) -> None:
        self.missing = tuple(sorted(set(missing)))
        self.disabled = tuple(sorted(set(disabled)))
        parts = [f"no such rule: {', '.join(self.missing)}"] if self.missing else []
        if self.disabled:
            parts.append(
                f"disabled: {', '.join(self.disabled)} (provgraph rules enable ID turns it on)"
            )
        super().__init__("; ".join(parts))


# -- site settings -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SiteSettings:
    """What the settings file says about rules."""

    path: Path
    rules: Mapping[str, Mapping[str, Any]]  # rule id -> parameter values over the shipped ones
    time_limit: timedelta  # for rules that do not set their own
    dirs: tuple[Path, ...]  # folders of site rules
    home: Path = Path("rules")  # imported Sigma rules and the enabled/disabled state

    @property
    def sigma_dir(self) -> Path:
        return self.home / "sigma"

    @property
    def state_path(self) -> Path:
        return self.home / "state.json"

    @classmethod
    def read(cls) -> SiteSettings:
        path = config_path()
        try:
            rules, raw_limit, dirs = rule_settings(), rule_time_limit(), rule_dirs()
            home = rules_home() or state_root() / "rules"
        except ProvgraphError as error:
            raise RuleSettingsError(str(error)) from error
        limit = DEFAULT_TIME_LIMIT
        if raw_limit is not None:
            try:
                limit = parse_duration(raw_limit)
            except ValueError as error:
                raise RuleSettingsError(f"{path}: 'rule_time_limit': {error}") from None
            if limit <= timedelta(0):
                raise RuleSettingsError(f"{path}: 'rule_time_limit' must be longer than 0s")
        folders = tuple(Path(os.path.abspath(d)) for d in dirs)
        return cls(path, rules, limit, folders, Path(os.path.abspath(home)))


def tune(
    rules: Iterable[Rule],
    settings: Mapping[str, Mapping[str, Any]],
    *,
    origin: str = "rule settings",
    strict: bool = True,
    ignore: Collection[str] = (),
) -> list[Rule]:
    """Apply site settings (allow lists, windows …) over the rules' shipped defaults.

    Settings name rules and parameters that must exist, with values of the shipped type.
    Settings for ids in `ignore`, and with `strict=False` for any rule not in `rules`, are
    passed over (a rule whose file failed to load is reported once, by the loader)."""
    rules = list(rules)
    by_id = {rule.id: rule for rule in rules}
    for rule_id, values in settings.items():
        if rule_id not in by_id:
            if not strict or rule_id in ignore:
                continue
            raise RuleSettingsError(
                f"{origin}: no rule '{rule_id}' (known: {', '.join(sorted(by_id))})"
            )
        rule = by_id[rule_id]
        for name, value in values.items():
            if name not in rule.parameters:
                raise RuleSettingsError(
                    f"{origin}: rule '{rule_id}' has no parameter '{name}' "
                    f"(it has: {', '.join(sorted(rule.parameters))})"
                )
            shipped = rule.parameters[name]
            if type(shipped) is not type(value) and not (
                isinstance(shipped, int | float) and isinstance(value, int | float)
            ):
                raise RuleSettingsError(
                    f"{origin}: {rule_id}.{name} must be a {type(shipped).__name__}, "
                    f"got {type(value).__name__}"
                )
        by_id[rule_id] = dataclasses.replace(rule, parameters={**rule.parameters, **values})
    return [by_id[rule.id] for rule in rules]


# -- sources of rules --------------------------------------------------------------------------
class RuleSource(Protocol):
    """A place rules come from: a folder of YAML files today, Sigma imports later."""

    @property
    def name(self) -> str: ...

    def stamp(self) -> Hashable:
        """Changes whenever what `load` would return changes (cheap: no parsing)."""
        ...

    def load(self) -> RuleSet: ...


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)


@dataclass(frozen=True)
class FolderSource:
    """Every `*.yml` in one folder (a missing folder is one reported problem)."""

    folder: Path
    name: str

    def _files(self) -> list[Path]:
        return sorted(self.folder.glob("*.y*ml"))

    def stamp(self) -> Hashable:
        return (
            str(self.folder),
            _file_stamp(self.folder),
            tuple((p.name, _file_stamp(p)) for p in self._files()),
        )

    def load(self) -> RuleSet:
        if not self.folder.is_dir():
            return RuleSet([], [RuleError(self.folder, None, "rule folder does not exist")])
        return load_rules(self.folder)


@dataclass(frozen=True)
class ImportedSource(FolderSource):
    """The rules `provgraph sigma import` compiled: a folder that may not exist yet."""

    def load(self) -> RuleSet:
        return load_rules(self.folder) if self.folder.is_dir() else RuleSet([], [])


SourcesFor = Callable[[SiteSettings], Sequence[RuleSource]]
SIGMA_SOURCE = "sigma"


def site_sources(settings: SiteSettings) -> list[RuleSource]:
    """The default catalog's sources: the shipped rules, each of the site's `rule_dirs`, then
    the imported Sigma rules."""
    return [
        FolderSource(RULES_DIR, "shipped"),
        *(FolderSource(folder, f"site {folder}") for folder in settings.dirs),
        ImportedSource(settings.sigma_dir, SIGMA_SOURCE),
    ]


# -- enabled / disabled ------------------------------------------------------------------------
class RuleState:
    """The state file: which rules are disabled, when and why. JSON, written whole to a
    temporary file and renamed over the old one, so a reader never sees half of it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def stamp(self) -> Hashable:
        return (str(self.path), _file_stamp(self.path))

    def disabled(self) -> dict[str, dict[str, Any]]:
        """Disabled rule id -> {"at": ISO time, "reason": text}."""
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise RuleSettingsError(
                f"{self.path}: not a readable rule state file: {error}"
            ) from None
        found = document.get("disabled") if isinstance(document, dict) else None
        if not isinstance(found, dict):
            raise RuleSettingsError(f'{self.path}: expected {{"disabled": {{rule id: …}}}}')
        return {str(k): dict(v) if isinstance(v, dict) else {} for k, v in found.items()}

    def set(self, rule_id: str, enabled: bool, reason: str = "") -> bool:
        """Enable or disable one rule; True when that changed anything."""
        disabled = self.disabled()
        if enabled == (rule_id not in disabled):
            return False
        if enabled:
            del disabled[rule_id]
        else:
            disabled[rule_id] = {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "reason": reason,
            }
        self._write({"disabled": dict(sorted(disabled.items()))})
        return True

    def forget(self, rule_ids: Iterable[str]) -> None:
        """Drop the state of rules that no longer exist (a removed import)."""
        disabled = self.disabled()
        kept = {k: v for k, v in disabled.items() if k not in set(rule_ids)}
        if kept != disabled:
            self._write({"disabled": kept})

    def _write(self, document: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".state-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2)
                out.write("\n")
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


# -- what the catalog holds at one moment ------------------------------------------------------
@dataclass(frozen=True)
class CatalogEntry:
    rule: Rule  # effective: site parameter values and time limit applied
    source: str  # the RuleSource it came from
    site: Mapping[str, Any]  # the parameter values the site settings set (shipped: the rest)
    enabled: bool = True
    disabled: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # when, why


@dataclass(frozen=True)
class Snapshot:
    entries: tuple[CatalogEntry, ...]
    errors: tuple[RuleError, ...]  # files that did not load; the other rules are here
    settings: SiteSettings

    @property
    def rules(self) -> list[Rule]:
        """The enabled rules: what runs."""
        return [entry.rule for entry in self.entries if entry.enabled]

    def get(self, rule_id: str) -> CatalogEntry:
        for entry in self.entries:
            if entry.rule.id == rule_id:
                return entry
        raise UnknownRules([rule_id])

    def select(self, rule_ids: Iterable[str] | None = None) -> list[Rule]:
        """The enabled rules with these ids, in catalog order (None: all enabled rules);
        UnknownRules names the ids that are not there or are disabled."""
        if rule_ids is None:
            return self.rules
        wanted = set(rule_ids)
        missing = wanted - {entry.rule.id for entry in self.entries}
        disabled = {e.rule.id for e in self.entries if e.rule.id in wanted and not e.enabled}
        if missing or disabled:
            raise UnknownRules(missing, disabled)
        return [entry.rule for entry in self.entries if entry.rule.id in wanted]

    def ruleset(self) -> RuleSet:
        return RuleSet(self.rules, list(self.errors))


def _build(
    sources: Sequence[RuleSource],
    settings: SiteSettings,
    *,
    strict: bool,
    disabled: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[tuple[CatalogEntry, ...], tuple[RuleError, ...]]:
    loaded: list[tuple[Rule, str]] = []
    errors: list[RuleError] = []
    first: dict[str, Path | str] = {}
    for source in sources:
        ruleset = source.load()
        errors += ruleset.errors
        for rule in ruleset.rules:
            if rule.id in first:
                errors.append(
                    RuleError(
                        rule.path or source.name,
                        None,
                        f"id {rule.id!r} is already used by {first[rule.id]}",
                    )
                )
                continue
            first[rule.id] = rule.path or source.name
            loaded.append((rule, source.name))
    # a rule id matches its file name, so a file that failed to load names its settings' key
    failed = {Path(error.path).stem for error in errors}
    tuned = tune(
        [rule for rule, _ in loaded],
        settings.rules,
        origin=str(settings.path),
        strict=strict,
        ignore=failed,
    )
    entries = tuple(
        CatalogEntry(
            rule=dataclasses.replace(rule, time_limit=rule.time_limit or settings.time_limit),
            source=source,
            site=dict(settings.rules.get(rule.id, {})),
            enabled=rule.id not in (disabled or {}),
            disabled=dict((disabled or {}).get(rule.id, {})),
        )
        for rule, (_, source) in zip(tuned, loaded, strict=True)
    )
    return entries, tuple(errors)


class Catalog:
    """Rules from their sources with the site settings applied, cached until a rule file or
    the settings file changes (by modification time, size and inode). Thread-safe."""

    def __init__(
        self,
        sources: SourcesFor = site_sources,
        *,
        strict_settings: bool = True,
        log_problems: bool = True,
    ) -> None:
        self._sources_for = sources
        self._strict = strict_settings
        self._log_problems = log_problems
        self._lock = threading.Lock()
        self._settings_key: Hashable = None
        self._settings: SiteSettings | None = None
        self._sources: Sequence[RuleSource] = ()
        self._key: Hashable = None
        self._snapshot: Snapshot | None = None

    @classmethod
    def of_folders(cls, *folders: Path, log_problems: bool = True) -> Catalog:
        """Only these folders' rules; site settings that name other rules are passed over."""
        chosen = [FolderSource(Path(os.path.abspath(f)), str(f)) for f in folders]
        return cls(lambda _settings: chosen, strict_settings=False, log_problems=log_problems)

    def snapshot(self) -> Snapshot:
        """The rules as they are now (raises RuleSettingsError when the settings do not fit)."""
        path = config_path()
        settings_key = (
            os.environ.get("PROVGRAPH_CONFIG"),
            os.path.abspath(path),
            _file_stamp(path),
        )
        with self._lock:
            if self._settings is None or settings_key != self._settings_key:
                self._settings = SiteSettings.read()
                self._sources = self._sources_for(self._settings)
                self._settings_key = settings_key
            state = RuleState(self._settings.state_path)
            key = (
                settings_key,
                tuple(source.stamp() for source in self._sources),
                state.stamp(),
            )
            if self._snapshot is None or key != self._key:
                entries, errors = _build(
                    self._sources, self._settings, strict=self._strict, disabled=state.disabled()
                )
                if self._log_problems:
                    for problem in errors:
                        log.error("rule not loaded: %s", problem)
                self._snapshot = Snapshot(entries, errors, self._settings)
                self._key = key
            return self._snapshot

    def rules(self) -> list[Rule]:
        return self.snapshot().rules

    def set_enabled(self, rule_id: str, enabled: bool, reason: str = "") -> bool:
        """Enable or disable one rule of this catalog (any source); True when that changed
        anything. UnknownRules when the catalog has no such rule."""
        view = self.snapshot()
        view.get(rule_id)
        return RuleState(view.settings.state_path).set(rule_id, enabled, reason)

    def select(self, rule_ids: Iterable[str] | None = None) -> list[Rule]:
        return self.snapshot().select(rule_ids)

    def validate(self, graph: Graph | None) -> list[RuleError]:
        """Loader problems plus, with a graph, the server's verdict on every query."""
        view = self.snapshot()
        errors = list(view.errors)
        if graph is not None:
            for rule in view.rules:
                errors += explain_rule(graph, rule)
        return errors

    def validated(self, graph: Graph) -> RuleSet:
        """The rules the server accepts; `errors` holds the loader's and the server's problems."""
        view = self.snapshot()
        ruleset = RuleSet([], list(view.errors))
        for rule in view.rules:
            problems = explain_rule(graph, rule)
            ruleset.errors += problems
            if not problems:
                ruleset.rules.append(rule)
        return ruleset


_default: Catalog | None = None
_default_lock = threading.Lock()


def default_catalog() -> Catalog:
    """The process's catalog: shipped rules and the site's rule folders, site settings applied."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Catalog()
        return _default


# -- validation against the server -------------------------------------------------------------
def explain_rule(graph: Graph, rule: Rule) -> list[RuleError]:
    """EXPLAIN the query on the server: syntax and semantic errors, located in the rule file."""
    params = {**rule.params(), "since": EPOCH, "until": FAR_FUTURE}
    text = "EXPLAIN\n" + rule.query

    def plan(tx: Any) -> str | None:
        query_type: str | None = tx.run(text, params).consume().query_type
        return query_type

    try:
        query_type = graph.read_tx(plan, what=f"explaining rule {rule.id}")
    except CypherSyntaxError as error:
        return [_locate(rule, error)]
    except Neo4jError as error:
        return [
            RuleError(
                rule.path or rule.id,
                rule.query_line,
                f"the server rejects the query: {error.message}",
            )
        ]
    if query_type != "r":
        # the planner's verdict: "rw"/"w"/"s" mean the query would write or change schema
        return [
            RuleError(
                rule.path or rule.id,
                rule.query_line,
                f"rules are read-only, the server plans this query as {query_type!r}",
            )
        ]
    return []


def _locate(rule: Rule, error: Neo4jError) -> RuleError:
    message = error.message or str(error)
    line = rule.query_line
    found = re.search(r"\(line (\d+), column (\d+)", message)
    column = None
    if found:
        # line 1 of the sent text is the EXPLAIN prefix
        line = rule.query_line + int(found.group(1)) - 2
        column = int(found.group(2))
    first = message.splitlines()[0] if message else "syntax error"
    return RuleError(rule.path or rule.id, line, f"Cypher: {first}", column)
