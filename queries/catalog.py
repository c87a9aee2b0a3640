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
(`tune`) and resolves each rule's time limit. Rules compiled from Sigma, with their own
enabled/disabled state, join as one more source: its `load` yields the enabled rules.

Site settings live in `provgraph.yaml` (see `provgraph.core.config`). They must name rules
and parameters that exist, with values of the shipped type, so a typo in an allow list fails
loudly instead of leaving the shipped default in force. A catalog over folders the user named
(`provgraph rules … --rules-dir DIR`) applies the settings that name its rules and ignores
the others.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from neo4j.exceptions import CypherSyntaxError, Neo4jError
from provgraph.core.config import config_path, rule_dirs, rule_settings, rule_time_limit
from provgraph.core.errors import ProvgraphError
from provgraph.core.times import EPOCH, FAR_FUTURE
from provgraph.graph.tx import Graph
from provgraph.queries.rule import RULES_DIR, Rule, RuleError, RuleSet, load_rules, parse_duration

log = logging.getLogger(__name__)

# how long one rule's query may run on the server unless the rule or the site says otherwise
DEFAULT_TIME_LIMIT = timedelta(seconds=120)


class RuleSettingsError(ProvgraphError):
    """The settings file's rule section does not fit the rules (unknown rule, parameter, type)."""


class UnknownRules(ProvgraphError):
    """Rule ids asked for that the catalog does not hold."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = tuple(sorted(set(missing)))
        super().__init__(f"no such rule: {', '.join(self.missing)}")


# -- site settings -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SiteSettings:
    """What the settings file says about rules."""

    path: Path
    rules: Mapping[str, Mapping[str, Any]]  # rule id -> parameter values over the shipped ones
    time_limit: timedelta  # for rules that do not set their own
    dirs: tuple[Path, ...]  # folders of site rules

    @classmethod
    def read(cls) -> SiteSettings:
        path = config_path()
        try:
            rules, raw_limit, dirs = rule_settings(), rule_time_limit(), rule_dirs()
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
        return cls(path, rules, limit, folders)


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


SourcesFor = Callable[[SiteSettings], Sequence[RuleSource]]


def site_sources(settings: SiteSettings) -> list[RuleSource]:
    """The default catalog's sources: the shipped rules, then each of the site's `rule_dirs`."""
    return [
        FolderSource(RULES_DIR, "shipped"),
        *(FolderSource(folder, f"site {folder}") for folder in settings.dirs),
    ]


# -- what the catalog holds at one moment ------------------------------------------------------
@dataclass(frozen=True)
class CatalogEntry:
    rule: Rule  # effective: site parameter values and time limit applied
    source: str  # the RuleSource it came from
    site: Mapping[str, Any]  # the parameter values the site settings set (shipped: the rest)


@dataclass(frozen=True)
class Snapshot:
    entries: tuple[CatalogEntry, ...]
    errors: tuple[RuleError, ...]  # files that did not load; the other rules are here
    settings: SiteSettings

    @property
    def rules(self) -> list[Rule]:
        return [entry.rule for entry in self.entries]

    def get(self, rule_id: str) -> CatalogEntry:
        for entry in self.entries:
            if entry.rule.id == rule_id:
                return entry
        raise UnknownRules([rule_id])

    def select(self, rule_ids: Iterable[str] | None = None) -> list[Rule]:
        """The rules with these ids, in catalog order (None: all of them)."""
        if rule_ids is None:
            return self.rules
        wanted = set(rule_ids)
        missing = wanted - {entry.rule.id for entry in self.entries}
        if missing:
            raise UnknownRules(missing)
        return [entry.rule for entry in self.entries if entry.rule.id in wanted]

    def ruleset(self) -> RuleSet:
        return RuleSet(self.rules, list(self.errors))


def _build(
    sources: Sequence[RuleSource], settings: SiteSettings, *, strict: bool
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
            key = (settings_key, tuple(source.stamp() for source in self._sources))
            if self._snapshot is None or key != self._key:
                entries, errors = _build(self._sources, self._settings, strict=self._strict)
                if self._log_problems:
                    for problem in errors:
                        log.error("rule not loaded: %s", problem)
                self._snapshot = Snapshot(entries, errors, self._settings)
                self._key = key
            return self._snapshot

    def rules(self) -> list[Rule]:
        return self.snapshot().rules

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
