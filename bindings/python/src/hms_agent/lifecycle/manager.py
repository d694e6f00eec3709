"""LifecycleManager: the specification's Python API (section 3.2), embedded or remote."""

from __future__ import annotations

import atexit
import json
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _ffi, _pb
from ._hooks import CallbackWorker, HookFunction
from ._stream import Stream
from ._types import (
    AgentPage,
    ErrorInfo,
    GetStateResponse,
    HistoryPage,
    Hook,
    LifecycleEvent,
    LifecycleState,
    RegisterAgentResponse,
    RegisterHookResponse,
    SupervisionPolicy,
    SupervisionStatus,
    TransitionResponse,
    TransitionType,
    enum_out,
    event_in,
    hook_in,
    state_in,
    supervision_in,
    ts_out,
)
from .errors import AlreadyExistsError, InvalidArgumentError

if TYPE_CHECKING:
    from .plugins import PluginManager

AGENTS = "hms.agent.lifecycle.v1.LifecycleManager/"
_GET_STATE = (AGENTS + "GetState").encode()
_TRANSITION = (AGENTS + "TransitionState").encode()
_WATCH = (AGENTS + "WatchEvents").encode()
_PB = _ffi.FORMAT_PROTOBUF

_open_managers: weakref.WeakSet[LifecycleManager] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for m in list(_open_managers):
        try:
            m.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _strmap(m: Mapping[str, str] | None) -> dict[str, str]:
    return dict(m) if m else {}


class LifecycleManager:
    """The lifecycle of agents: run in this process, or on a server.

    ``LifecycleManager()`` runs the core in this process on the memory store;
    ``LifecycleManager(data_dir="hms-data")`` on SQLite; ``LifecycleManager(store="postgres://…")``
    on PostgreSQL; ``LifecycleManager(endpoint="http://127.0.0.1:7460", token="…")`` talks to a
    server. Every method works the same either way. Use it as a context manager or call
    :meth:`close`.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        token: str | None = None,
        store: str | None = None,
        data_dir: str | None = None,
        sqlite_sync: str | None = None,
        retain_age: str | None = None,
        retain_per_agent: int | None = None,
        supervision: SupervisionPolicy | None = None,
        initiator: str | None = None,
        plugin_repo: str | None = None,
        plugin_auto_activate: bool | None = None,
        plugin_activate_on_demand: bool | None = None,
        plugin_idle_timeout: str | None = None,
        core_ports: list[str] | None = None,
        protocol: str | None = None,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        log: str | None = None,
        log_level: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        cfg: dict[str, Any] = dict(config or {})
        if data_dir is not None and store is None:
            store = "sqlite"
        for key, val in (
            ("endpoint", endpoint), ("token", token), ("store", store), ("data_dir", data_dir),
            ("sqlite_sync", sqlite_sync), ("retain_age", retain_age),
            ("retain_per_agent", retain_per_agent), ("initiator", initiator),
            ("plugin_repo", plugin_repo), ("plugin_auto_activate", plugin_auto_activate),
            ("plugin_activate_on_demand", plugin_activate_on_demand),
            ("plugin_idle_timeout", plugin_idle_timeout), ("core_ports", core_ports),
            ("protocol", protocol), ("tls_ca", tls_ca), ("tls_cert", tls_cert),
            ("tls_key", tls_key), ("log", log), ("log_level", log_level),
        ):
            if val is not None:
                cfg[key] = val
        if supervision is not None:
            cfg["supervision"] = supervision.to_wire()
        self._lib = _ffi.lib()
        self._h = self._lib.open(json.dumps(cfg).encode())
        self._closed = False
        self._remote = endpoint is not None
        self._workers: dict[str, CallbackWorker] = {}
        self._lock = threading.Lock()
        self._plugins: PluginManager | None = None
        _open_managers.add(self)

    # -- plumbing --------------------------------------------------------------------------

    @property
    def handle(self) -> int:
        """The library's manager handle."""
        return self._h

    @property
    def remote(self) -> bool:
        """Whether this manager talks to a server."""
        return self._remote

    def call(self, method: str, request: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call any unary RPC by its full name with a protojson request; the protojson answer."""
        if "/" not in method.lstrip("/"):
            method = AGENTS + method
        res = self._lib.call(self._h, method.encode(), json.dumps(request or {}).encode())
        return json.loads(res) if res else {}

    def close(self) -> None:
        """Stop the callback workers, close every stream, release the manager (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers.values())
            self._workers.clear()
        for w in workers:
            w.close()
        _open_managers.discard(self)
        self._lib.close(self._h)

    def __enter__(self) -> LifecycleManager:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- the specification's five methods --------------------------------------------------

    def get_state(self, agent_id: str, include_details: bool = False) -> GetStateResponse:
        """Get the current state of an agent (``NotFoundError`` for an unknown one)."""
        # Protobuf across the ABI: the cheapest format on both sides (README, "Speed").
        return _pb.state(self._lib.call(self._h, _GET_STATE, _pb.get_state_request(agent_id, include_details), _PB))

    def transition_state(
        self,
        agent_id: str,
        target_state: LifecycleState | int | str,
        force: bool = False,
        reason: str = "",
        timeout_ms: int = 0,
        metadata: Mapping[str, str] | None = None,
        *,
        expected_state: LifecycleState | int | str | None = None,
        expected_revision: int = 0,
        error_info: ErrorInfo | None = None,
    ) -> TransitionResponse:
        """Transition an agent to a new state.

        A transition the lifecycle refuses (an edge the table does not allow, a failed
        precondition, a hook's veto) is an answer: ``success`` is false, ``error_message`` and
        ``refusal_reason`` say why, ``allowed_next_states`` lists where it can go.
        """
        req = _pb.transition_request(agent_id, target_state, force, reason, timeout_ms, metadata, expected_state,
                                     expected_revision, error_info)
        return _pb.transition(self._lib.call(self._h, _TRANSITION, req, _PB))

    def get_transition_history(
        self,
        agent_id: str,
        limit: int = 10,
        transition_type: TransitionType | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> list[LifecycleEvent]:
        """The first ``limit`` events of an agent's history (oldest first), filtered."""
        return self.get_transition_history_page(agent_id, limit, transition_type, start_time, end_time).events

    def watch_events(
        self,
        agent_id: str | None = None,
        states: Iterable[LifecycleState | int | str] | None = None,
        transition_types: Iterable[TransitionType | int | str] | None = None,
        *,
        from_sequence: int = 0,
        bookmark_interval_ms: int = 0,
    ) -> Stream[LifecycleEvent]:
        """Watch lifecycle events: an iterator of :class:`LifecycleEvent`.

        ``from_sequence`` resumes: stored events with that sequence or later first, then live
        ones, with no gap and no duplicate (0: only events from now on). Close the stream (or
        use it in a ``with`` block) when done; ``resume_sequence`` says where to resume.
        """
        req = self._watch_request(agent_id, states, transition_types, from_sequence, bookmark_interval_ms)
        return Stream(self._lib.watch(self._h, _WATCH, req, _PB), _pb.events, from_sequence)

    @staticmethod
    def _watch_request(
        agent_id: str | None,
        states: Iterable[LifecycleState | int | str] | None,
        transition_types: Iterable[TransitionType | int | str] | None,
        from_sequence: int,
        bookmark_interval_ms: int,
    ) -> bytes:
        return _pb.watch_request(agent_id, states, transition_types, from_sequence, bookmark_interval_ms)

    def register_hook(
        self,
        hook_name: str,
        trigger_states: Iterable[LifecycleState | int | str] | None,
        trigger_transitions: Iterable[TransitionType | int | str] | None,
        is_blocking: bool = False,
        timeout_ms: int = 30000,
        config: Mapping[str, str] | None = None,
        agent_ids: Iterable[str] | None = None,
    ) -> RegisterHookResponse:
        """Register a lifecycle hook.

        ``config={"callback": name}`` makes it a callback served by :meth:`handle_callback`;
        ``{"type": "webhook", "url": …}`` a webhook; ``"failure_policy"`` is ``fail`` (default)
        or ``ignore``.
        """
        cfg = _strmap(config)
        if "callback" in cfg and "type" not in cfg:
            cfg["type"] = "callback"
        req = {
            "hookName": hook_name,
            "triggerStates": [enum_out(s) for s in trigger_states or []],
            "triggerTransitions": [enum_out(t) for t in trigger_transitions or []],
            "isBlocking": is_blocking,
            "timeoutMs": timeout_ms,
            "config": cfg,
            "agentIds": list(agent_ids or []),
        }
        d = self.call(AGENTS + "RegisterHook", req)
        return RegisterHookResponse(d.get("success", False), d.get("hookId", ""), d.get("errorMessage", ""))

    # -- beyond the five -------------------------------------------------------------------

    def register_agent(
        self,
        agent_id: str,
        metadata: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        supervision_policy: SupervisionPolicy | None = None,
    ) -> RegisterAgentResponse:
        """Register a new agent, in state INITIALIZED (``AlreadyExistsError`` if taken)."""
        req: dict[str, Any] = {"agentId": agent_id, "metadata": _strmap(metadata), "labels": _strmap(labels)}
        if supervision_policy is not None:
            req["supervisionPolicy"] = supervision_policy.to_wire()
        d = self.call(AGENTS + "RegisterAgent", req)
        ev = d.get("event")
        return RegisterAgentResponse(state_in(d.get("agent") or {}), None if ev is None else event_in(ev))

    def list_agents(
        self,
        states: Iterable[LifecycleState | int | str] | None = None,
        label_selector: Mapping[str, str] | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> AgentPage:
        """One page of agents in agent_id order (see :meth:`iter_agents` for all of them)."""
        req = {"states": [enum_out(s) for s in states or []], "labelSelector": _strmap(label_selector),
               "pageSize": page_size, "pageToken": page_token}
        d = self.call(AGENTS + "ListAgents", req)
        return AgentPage([state_in(a) for a in d.get("agents") or []], d.get("nextPageToken", ""))

    def iter_agents(
        self,
        states: Iterable[LifecycleState | int | str] | None = None,
        label_selector: Mapping[str, str] | None = None,
        page_size: int = 0,
    ) -> Iterator[GetStateResponse]:
        """Every agent matching the filters, page after page."""
        states = list(states or [])
        token = ""
        while True:
            page = self.list_agents(states, label_selector, page_size, token)
            yield from page.agents
            token = page.next_page_token
            if not token:
                return

    def get_transition_history_page(
        self,
        agent_id: str = "",
        limit: int = 10,
        transition_type: TransitionType | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        page_token: str = "",
    ) -> HistoryPage:
        """One page of history with the token of the next (empty ``agent_id``: all agents)."""
        req: dict[str, Any] = {"agentId": agent_id, "limit": limit, "pageToken": page_token}
        if transition_type is not None:
            req["transitionType"] = enum_out(transition_type)
        if start_time is not None:
            req["startTime"] = ts_out(start_time)
        if end_time is not None:
            req["endTime"] = ts_out(end_time)
        d = self.call(AGENTS + "GetTransitionHistory", req)
        return HistoryPage([event_in(e) for e in d.get("events") or []], d.get("nextPageToken", ""))

    def iter_transition_history(
        self,
        agent_id: str = "",
        page_size: int = 100,
        transition_type: TransitionType | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> Iterator[LifecycleEvent]:
        """Every event of the history matching the filters, fetched page by page."""
        token = ""
        while True:
            page = self.get_transition_history_page(agent_id, page_size, transition_type, start_time, end_time, token)
            yield from page.events
            token = page.next_page_token
            if not token:
                return

    def unregister_hook(self, hook_id: str) -> None:
        """Remove a hook (``NotFoundError`` for an unknown one)."""
        self.call(AGENTS + "UnregisterHook", {"hookId": hook_id})

    def list_hooks(self) -> list[Hook]:
        """The registered hooks with their statistics."""
        return [hook_in(h) for h in self.call(AGENTS + "ListHooks").get("hooks") or []]

    def heartbeat(self, *agent_ids: str | Iterable[str]) -> list[str]:
        """Report agents alive; returns the ids that are not known."""
        ids: list[str] = []
        for a in agent_ids:
            if isinstance(a, str):
                ids.append(a)
            else:
                ids.extend(a)
        return list(self.call(AGENTS + "Heartbeat", {"agentIds": ids}).get("unknownAgentIds") or [])

    def set_supervision_policy(self, agent_id: str, policy: SupervisionPolicy | None = None) -> SupervisionStatus:
        """Set an agent's supervision policy (None: follow the default); its supervision."""
        req: dict[str, Any] = {"agentId": agent_id}
        if policy is not None:
            req["policy"] = policy.to_wire()
        st = supervision_in(self.call(AGENTS + "SetSupervisionPolicy", req).get("supervision") or {})
        assert st is not None
        return st

    def delete_agent(self, agent_id: str, reason: str = "") -> LifecycleEvent:
        """Delete an agent in a terminal state (TERMINATED); returns the deletion event.

        The agent's record goes, its history stays until retention removes it, and its id is
        never used again (``AlreadyExistsError``). The event goes from TERMINATED to
        UNSPECIFIED, and watchers see it. An agent in any other state raises
        ``FailedPreconditionError``.
        """
        d = self.call(AGENTS + "DeleteAgent", {"agentId": agent_id, "reason": reason})
        return event_in(d.get("event") or {})

    # -- hooks served by Python ------------------------------------------------------------

    def handle_callback(self, name: str, fn: HookFunction) -> None:
        """Serve the callback hooks named ``name`` (``config={"callback": name}``) with ``fn``.

        ``fn(invocation)`` receives a :class:`HookInvocation` (event, deadline, idempotency
        key) and returns None or True to allow, False or ``Veto(reason)`` to veto; an exception
        is the hook's failure, handled by its failure policy. It runs on a thread the binding
        owns, one per callback name. Works the same embedded and remote.
        """
        with self._lock:
            if self._closed:
                raise InvalidArgumentError("the manager is closed")
            if name in self._workers:
                raise AlreadyExistsError(f"callback {name!r} is already served by this manager")
            self._workers[name] = CallbackWorker(self._h, name, fn)

    def remove_callback(self, name: str) -> None:
        """Stop serving a callback (its pending invocations fail)."""
        with self._lock:
            w = self._workers.pop(name, None)
        if w is not None:
            w.close()

    # -- plugins ---------------------------------------------------------------------------

    @property
    def plugins(self) -> PluginManager:
        """The plugin service (scan, list, get, validate, load, activate, …)."""
        if self._plugins is None:
            from .plugins import PluginManager

            self._plugins = PluginManager(self)
        return self._plugins
