"""The plugin service (hms.plugin.lifecycle.v1.PluginLifecycleManager): ``manager.plugins``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._stream import Stream, json_items
from ._types import PluginState, _Record, enum_in, enum_out, ts_in

if TYPE_CHECKING:
    from .manager import LifecycleManager

PLUGINS = "hms.plugin.lifecycle.v1.PluginLifecycleManager/"

__all__ = [
    "PluginManager",
    "Plugin",
    "PluginManifest",
    "ManifestError",
    "RejectedPackage",
    "ScanResult",
    "PluginPage",
    "PluginEvent",
    "PluginHistoryPage",
    "ResolvedPlugin",
]


@dataclass(slots=True)
class ManifestError(_Record):
    """One problem of a manifest: a JSON pointer and what is wrong there."""

    pointer: str = ""
    message: str = ""


@dataclass(slots=True)
class PluginManifest(_Record):
    """A plugin's manifest, as validated."""

    manifest_version: str = ""
    hma_version: str = ""
    id: str = ""
    version: str = ""
    name: str = ""
    type: str = ""
    description: str = ""
    implemented_ports: list[str] = field(default_factory=list)
    consumed_core_ports: list[str] = field(default_factory=list)
    runtime_json: str = ""
    digest: str = ""


@dataclass(slots=True)
class Plugin(_Record):
    """A plugin version in the registry."""

    id: str = ""
    version: str = ""
    state: PluginState = PluginState.UNSPECIFIED
    revision: int = 0
    state_since: datetime | None = None
    last_sequence: int = 0
    path: str = ""
    manifest: PluginManifest | None = None
    errors: list[ManifestError] = field(default_factory=list)
    package_missing: bool = False
    replaced_by: str = ""
    generation: int = 0
    endpoint: str = ""
    last_error: str = ""
    allowed_operations: list[str] = field(default_factory=list)
    last_used: datetime | None = None


def _errors(v: list[dict[str, Any]] | None) -> list[ManifestError]:
    return [ManifestError(e.get("pointer", ""), e.get("message", "")) for e in v or []]


def plugin_in(d: dict[str, Any] | None) -> Plugin | None:
    """A Plugin from protojson."""
    if d is None:
        return None
    m = d.get("manifest")
    manifest = None
    if m is not None:
        manifest = PluginManifest(m.get("manifestVersion", ""), m.get("hmaVersion", ""), m.get("id", ""),
                                  m.get("version", ""), m.get("name", ""), m.get("type", ""),
                                  m.get("description", ""), m.get("implementedPorts") or [],
                                  m.get("consumedCorePorts") or [], m.get("runtimeJson", ""), m.get("digest", ""))
    return Plugin(d.get("id", ""), d.get("version", ""), enum_in(PluginState, d.get("state")),
                  int(d.get("revision", 0)), ts_in(d.get("stateSince")), int(d.get("lastSequence", 0)),
                  d.get("path", ""), manifest, _errors(d.get("errors")), d.get("packageMissing", False),
                  d.get("replacedBy", ""), int(d.get("generation", 0)), d.get("endpoint", ""),
                  d.get("lastError", ""), d.get("allowedOperations") or [], ts_in(d.get("lastUsed")))


def _plugins(v: list[dict[str, Any]] | None) -> list[Plugin]:
    return [p for p in map(plugin_in, v or []) if p is not None]


@dataclass(slots=True)
class RejectedPackage(_Record):
    """A package folder whose manifest could not be read at all."""

    path: str = ""
    errors: list[ManifestError] = field(default_factory=list)


@dataclass(slots=True)
class ScanResult(_Record):
    """What a repository scan found."""

    added: list[Plugin] = field(default_factory=list)
    changed: list[Plugin] = field(default_factory=list)
    removed: list[Plugin] = field(default_factory=list)
    rejected: list[RejectedPackage] = field(default_factory=list)


@dataclass(slots=True)
class PluginPage(_Record):
    """One page of plugins."""

    plugins: list[Plugin] = field(default_factory=list)
    next_page_token: str = ""


@dataclass(slots=True)
class PluginEvent(_Record):
    """A plugin's state change."""

    sequence: int = 0
    event_id: str = ""
    plugin_id: str = ""
    version: str = ""
    from_state: PluginState = PluginState.UNSPECIFIED
    to_state: PluginState = PluginState.UNSPECIFIED
    operation: str = ""
    initiated_by: str = ""
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    timestamp: datetime | None = None
    revision: int = 0
    bookmark: bool = False


def plugin_event_in(d: dict[str, Any]) -> PluginEvent:
    """A PluginEvent from protojson."""
    return PluginEvent(int(d.get("sequence", 0)), d.get("eventId", ""), d.get("pluginId", ""), d.get("version", ""),
                       enum_in(PluginState, d.get("fromState")), enum_in(PluginState, d.get("toState")),
                       d.get("operation", ""), d.get("initiatedBy", ""), d.get("reason", ""),
                       d.get("metadata") or {}, ts_in(d.get("timestamp")), int(d.get("revision", 0)),
                       d.get("bookmark", False))


def _watch_item(d: dict[str, Any]) -> PluginEvent:
    return plugin_event_in(d.get("event") or {})


@dataclass(slots=True)
class PluginHistoryPage(_Record):
    """One page of plugin history."""

    events: list[PluginEvent] = field(default_factory=list)
    next_page_token: str = ""


@dataclass(slots=True)
class ResolvedPlugin(_Record):
    """The preferred active, non-deprecated version for a constraint, and where it runs."""

    plugin: Plugin | None = None
    endpoint: str = ""
    generation: int = 0


class PluginManager:
    """The plugin service of a :class:`LifecycleManager` (embedded or remote)."""

    def __init__(self, manager: LifecycleManager) -> None:
        self._m = manager

    def _call(self, method: str, req: dict[str, Any]) -> dict[str, Any]:
        return self._m.call(PLUGINS + method, req)

    def scan(self) -> ScanResult:
        """Scan the repository now."""
        d = self._call("ScanPlugins", {})
        rejected = [RejectedPackage(r.get("path", ""), _errors(r.get("errors"))) for r in d.get("rejected") or []]
        return ScanResult(_plugins(d.get("added")), _plugins(d.get("changed")), _plugins(d.get("removed")), rejected)

    def list(
        self,
        states: Iterable[PluginState | int | str] | None = None,
        id: str = "",  # noqa: A002 - the schema's name
        type: str = "",  # noqa: A002
        port: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> PluginPage:
        """One page of plugins, filtered."""
        d = self._call("ListPlugins", {"states": [enum_out(s) for s in states or []], "id": id, "type": type,
                                       "port": port, "pageSize": page_size, "pageToken": page_token})
        return PluginPage(_plugins(d.get("plugins")), d.get("nextPageToken", ""))

    def iter(self, states: Iterable[PluginState | int | str] | None = None, id: str = "") -> Iterator[Plugin]:  # noqa: A002
        """Every plugin matching the filters, page after page."""
        states = list(states or [])
        token = ""
        while True:
            page = self.list(states, id, page_token=token)
            yield from page.plugins
            token = page.next_page_token
            if not token:
                return

    def get(self, id: str, version: str = "") -> Plugin:  # noqa: A002
        """One plugin version (empty version: the newest)."""
        p = plugin_in(self._call("GetPlugin", {"id": id, "version": version}).get("plugin") or {})
        assert p is not None
        return p

    def _op(self, method: str, id: str, version: str, reason: str) -> Plugin:  # noqa: A002
        p = plugin_in(self._call(method, {"id": id, "version": version, "reason": reason}).get("plugin") or {})
        assert p is not None
        return p

    def validate(self, id: str, version: str = "", reason: str = "") -> Plugin:  # noqa: A002
        """Validate a discovered plugin's manifest."""
        return self._op("ValidatePlugin", id, version, reason)

    def load(self, id: str, version: str = "", reason: str = "") -> Plugin:  # noqa: A002
        """Load a registered plugin (→ INACTIVE)."""
        return self._op("LoadPlugin", id, version, reason)

    def activate(self, id: str, version: str = "", reason: str = "") -> Plugin:  # noqa: A002
        """Activate a plugin (start it and wait for health)."""
        return self._op("ActivatePlugin", id, version, reason)

    def deactivate(self, id: str, version: str = "", reason: str = "") -> Plugin:  # noqa: A002
        """Deactivate an active plugin."""
        return self._op("DeactivatePlugin", id, version, reason)

    def reset(self, id: str, version: str = "", reason: str = "") -> Plugin:  # noqa: A002
        """Reset a failed plugin."""
        return self._op("ResetPlugin", id, version, reason)

    def deprecate(self, id: str, version: str = "", reason: str = "", replacement: str = "") -> Plugin:  # noqa: A002
        """Deprecate a plugin version, optionally naming its replacement."""
        d = self._call("DeprecatePlugin", {"id": id, "version": version, "reason": reason, "replacement": replacement})
        p = plugin_in(d.get("plugin") or {})
        assert p is not None
        return p

    def resolve(self, id: str, constraint: str = "") -> ResolvedPlugin:  # noqa: A002
        """The preferred active, non-deprecated version matching a semver constraint."""
        d = self._call("ResolvePlugin", {"id": id, "constraint": constraint})
        return ResolvedPlugin(plugin_in(d.get("plugin")), d.get("endpoint", ""), int(d.get("generation", 0)))

    def history(self, id: str = "", version: str = "", limit: int = 0, page_token: str = "") -> PluginHistoryPage:  # noqa: A002
        """One page of plugin events."""
        d = self._call("GetPluginHistory", {"id": id, "version": version, "limit": limit, "pageToken": page_token})
        return PluginHistoryPage([plugin_event_in(e) for e in d.get("events") or []], d.get("nextPageToken", ""))

    def watch(
        self,
        id: str = "",  # noqa: A002
        version: str = "",
        states: Iterable[PluginState | int | str] | None = None,
        from_sequence: int = 0,
        bookmark_interval_ms: int = 0,
    ) -> Stream[PluginEvent]:
        """Watch plugin events: an iterator of :class:`PluginEvent`, resumable from a sequence."""
        req: dict[str, Any] = {"id": id, "version": version, "states": [enum_out(s) for s in states or []],
                               "bookmarkIntervalMs": bookmark_interval_ms}
        if from_sequence:
            req["fromSequence"] = str(from_sequence)
        lib = self._m._lib
        h = lib.watch(self._m.handle, (PLUGINS + "WatchPluginEvents").encode(), json.dumps(req).encode())
        return Stream(h, json_items(_watch_item), from_sequence)
