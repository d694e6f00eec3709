"""The specification's types (section 3.2) and the rest of the schema's messages.

Enums are ``IntEnum`` with the specification's member names and values
(``LifecycleState.ACTIVE == 2``). Messages are slotted dataclasses with snake_case fields;
timestamps are aware ``datetime`` objects in UTC. Responses of ``get_state``,
``transition_state`` and ``register_hook`` also support the specification's subscripting
(``response["success"]``, ``response.get("error_message", "")``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import IntEnum
from typing import Any, TypeVar

UTC = timezone.utc

__all__ = [
    "LifecycleState",
    "TransitionType",
    "RefusalReason",
    "HookResult",
    "RestartPolicy",
    "GiveUpAction",
    "AutomaticAction",
    "PluginState",
    "ErrorInfo",
    "HookOutcome",
    "LifecycleEvent",
    "SupervisionPolicy",
    "ScheduledAction",
    "SupervisionStatus",
    "AgentState",
    "GetStateResponse",
    "TransitionResponse",
    "RegisterHookResponse",
    "RegisterAgentResponse",
    "HistoryPage",
    "AgentPage",
    "HookSpec",
    "Hook",
    "HookInvocation",
    "Veto",
]


class _WireEnum(IntEnum):
    """An IntEnum that prints like the specification's Enum and knows its protojson names."""

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    @property
    def wire_name(self) -> str:
        """The value's full protobuf name (``"LIFECYCLE_STATE_ACTIVE"``)."""
        return _PREFIX[type(self)] + self.name


_PREFIX: dict[type[_WireEnum], str] = {}
_FROM_WIRE: dict[type[_WireEnum], dict[str, Any]] = {}

E = TypeVar("E", bound=_WireEnum)


def _register(cls: type[E], prefix: str) -> type[E]:
    _PREFIX[cls] = prefix
    m: dict[str, Any] = {}
    for member in cls:
        m[prefix + member.name] = member
        m[member.name] = member
    _FROM_WIRE[cls] = m
    return cls


class LifecycleState(_WireEnum):
    """State of an agent in its lifecycle."""

    UNSPECIFIED = 0
    INITIALIZED = 1
    ACTIVE = 2
    PAUSED = 3
    SUSPENDED = 4
    SHUTTING_DOWN = 5
    TERMINATED = 6
    MAINTENANCE = 7
    ERROR = 8
    UPGRADING = 9
    RECOVERING = 10


class TransitionType(_WireEnum):
    """Type of lifecycle transition event (always decided by the core)."""

    UNSPECIFIED = 0
    NORMAL = 1
    FORCED = 2
    AUTOMATIC = 3
    ERROR_TRIGGERED = 4
    MAINTENANCE = 5


class RefusalReason(_WireEnum):
    """Why the lifecycle refused a transition (``success`` false)."""

    UNSPECIFIED = 0
    INVALID_TRANSITION = 1
    PRECONDITION_FAILED = 2
    HOOK_VETOED = 3
    HOOK_FAILED = 4
    TIMED_OUT = 5
    TERMINAL = 6


class HookResult(_WireEnum):
    """What one hook invocation came to."""

    UNSPECIFIED = 0
    ALLOWED = 1
    VETOED = 2
    FAILED = 3
    TIMED_OUT = 4


class RestartPolicy(_WireEnum):
    """Whether supervision recovers agents from ERROR."""

    UNSPECIFIED = 0
    NEVER = 1
    ON_ERROR = 2


class GiveUpAction(_WireEnum):
    """What supervision does when recoveries are exhausted."""

    UNSPECIFIED = 0
    STAY = 1
    TERMINATE = 2


class AutomaticAction(_WireEnum):
    """An automatic transition supervision has scheduled."""

    UNSPECIFIED = 0
    RECOVER = 1
    GIVE_UP = 2
    LIVENESS = 3
    TIME_LIMIT = 4


class PluginState(_WireEnum):
    """State of a plugin version."""

    UNSPECIFIED = 0
    DISCOVERED = 1
    REGISTERED = 2
    INACTIVE = 3
    ACTIVATING = 4
    ACTIVE = 5
    DEACTIVATING = 6
    FAILED = 7
    DEPRECATED = 8


_register(LifecycleState, "LIFECYCLE_STATE_")
_register(TransitionType, "TRANSITION_TYPE_")
_register(RefusalReason, "REFUSAL_REASON_")
_register(HookResult, "RESULT_")
_register(RestartPolicy, "RESTART_POLICY_")
_register(GiveUpAction, "GIVE_UP_ACTION_")
_register(AutomaticAction, "AUTOMATIC_ACTION_")
_register(PluginState, "PLUGIN_STATE_")

_STATE = _FROM_WIRE[LifecycleState]
_TTYPE = _FROM_WIRE[TransitionType]
_STATE0 = LifecycleState.UNSPECIFIED
_TTYPE0 = TransitionType.UNSPECIFIED


def enum_in(cls: type[E], v: Any) -> E:
    """A value from the wire (name or number) as a member of ``cls``."""
    if v is None:
        return cls(0)
    if isinstance(v, str):
        m = _FROM_WIRE[cls].get(v)
        if m is not None:
            return m  # type: ignore[no-any-return]
    try:
        return cls(int(v))
    except ValueError:
        return cls(0)


def enum_out(v: Any) -> Any:
    """An enum argument for a request: a member, a number or a name (``"ACTIVE"``)."""
    if isinstance(v, str):
        return v
    return int(v)


def ts_in(s: str | None) -> datetime | None:
    """An RFC 3339 protojson timestamp as an aware UTC datetime (to the microsecond)."""
    if not s:
        return None
    if s[-1] == "Z":
        s = s[:-1]
    elif s[-6] in "+-":
        return datetime.fromisoformat(s).astimezone(UTC)
    if len(s) > 19:
        frac = s[20:26]
        s = s[:20] + frac + "000000"[len(frac):]
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def ts_out(t: datetime) -> str:
    """A datetime as a protojson timestamp (naive datetimes are taken as UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Record:
    """Dictionary-style read access to a dataclass's fields, as the specification uses."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key in self.__dataclass_fields__:  # type: ignore[attr-defined]
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The field's value, or ``default`` when there is no such field."""
        if key in self.__dataclass_fields__:  # type: ignore[attr-defined]
            return getattr(self, key)
        return default

    def __contains__(self, key: object) -> bool:
        return key in self.__dataclass_fields__  # type: ignore[attr-defined]

    def keys(self) -> list[str]:
        """The field names."""
        return list(self.__dataclass_fields__)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dictionary (nested messages too)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass(slots=True)
class ErrorInfo(_Record):
    """Error details of an agent in ERROR (or of a transition into it)."""

    code: int = 0
    message: str = ""
    timestamp: datetime | None = None
    is_recoverable: bool = False
    recovery_actions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.recovery_actions is None:
            self.recovery_actions = []

    def to_wire(self) -> dict[str, Any]:
        """The protojson object."""
        d: dict[str, Any] = {"code": self.code, "message": self.message,
                             "isRecoverable": self.is_recoverable,
                             "recoveryActions": list(self.recovery_actions)}
        if self.timestamp is not None:
            d["timestamp"] = ts_out(self.timestamp)
        return d


def _error_info(d: dict[str, Any] | None) -> ErrorInfo | None:
    if d is None:
        return None
    return ErrorInfo(d.get("code", 0), d.get("message", ""), ts_in(d.get("timestamp")),
                     d.get("isRecoverable", False), d.get("recoveryActions", []))


@dataclass(slots=True)
class HookOutcome(_Record):
    """What one blocking hook did to a transition."""

    hook_id: str = ""
    hook_name: str = ""
    result: HookResult = HookResult.UNSPECIFIED
    message: str = ""
    latency_us: int = 0
    enforced: bool = False


def _outcome(d: dict[str, Any] | None) -> HookOutcome | None:
    if d is None:
        return None
    return HookOutcome(d.get("hookId", ""), d.get("hookName", ""), enum_in(HookResult, d.get("result")),
                       d.get("message", ""), int(d.get("latencyUs", 0)), d.get("enforced", False))


def _outcomes(v: list[dict[str, Any]] | None) -> list[HookOutcome]:
    return [o for o in map(_outcome, v or []) if o is not None]


@dataclass(slots=True)
class LifecycleEvent(_Record):
    """An event of an agent's lifecycle (one per transition), as in section 3.2."""

    event_id: str
    agent_id: str
    previous_state: LifecycleState
    new_state: LifecycleState
    transition_type: TransitionType
    timestamp: datetime | None
    initiated_by: str
    reason: str
    metadata: dict[str, str] = field(default_factory=dict)
    sequence: int = 0
    error_info: ErrorInfo | None = None
    hook_outcomes: list[HookOutcome] = field(default_factory=list)
    bookmark: bool = False
    revision: int = 0

    def __post_init__(self) -> None:
        if self.metadata is None:
            self.metadata = {}


def event_in(d: dict[str, Any]) -> LifecycleEvent:
    """A LifecycleEvent from its protojson object."""
    g = d.get
    ei = g("errorInfo")
    ho = g("hookOutcomes")
    return LifecycleEvent(
        g("eventId", ""),
        g("agentId", ""),
        _STATE.get(g("previousState", ""), _STATE0),
        _STATE.get(g("newState", ""), _STATE0),
        _TTYPE.get(g("transitionType", ""), _TTYPE0),
        ts_in(g("timestamp")),
        g("initiatedBy", ""),
        g("reason", ""),
        g("metadata") or {},
        int(g("sequence", 0)),
        None if ei is None else _error_info(ei),
        [] if ho is None else _outcomes(ho),
        g("bookmark", False),
        int(g("revision", 0)),
    )


@dataclass(slots=True)
class SupervisionPolicy(_Record):
    """An agent's supervision policy (docs/supervision.md); 0 / UNSPECIFIED: the default."""

    restart: RestartPolicy = RestartPolicy.UNSPECIFIED
    max_recoveries: int = 0
    period_ms: int = 0
    backoff_initial_ms: int = 0
    backoff_max_ms: int = 0
    stable_period_ms: int = 0
    on_give_up: GiveUpAction = GiveUpAction.UNSPECIFIED
    heartbeat_timeout_ms: int = 0
    shutting_down_limit_ms: int = 0
    recovering_limit_ms: int = 0
    upgrading_limit_ms: int = 0

    def to_wire(self) -> dict[str, Any]:
        """The protojson object."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            key = _camel(f.name)
            d[key] = enum_out(v) if isinstance(v, IntEnum) else v
        return d


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


_POLICY_INTS = [(f.name, _camel(f.name)) for f in dataclasses.fields(SupervisionPolicy)
                if f.name not in ("restart", "on_give_up")]


def _policy(d: dict[str, Any] | None) -> SupervisionPolicy | None:
    if d is None:
        return None
    p = SupervisionPolicy(enum_in(RestartPolicy, d.get("restart")), on_give_up=enum_in(GiveUpAction, d.get("onGiveUp")))
    for name, key in _POLICY_INTS:
        v = d.get(key)
        if v is not None:
            setattr(p, name, int(v))
    return p


@dataclass(slots=True)
class ScheduledAction(_Record):
    """The next automatic transition supervision will make."""

    action: AutomaticAction = AutomaticAction.UNSPECIFIED
    target_state: LifecycleState = LifecycleState.UNSPECIFIED
    at: datetime | None = None
    reason: str = ""


@dataclass(slots=True)
class SupervisionStatus(_Record):
    """An agent's supervision: policy, next automatic action, recoveries in the window."""

    policy: SupervisionPolicy | None = None
    default_policy: bool = False
    next_action: ScheduledAction | None = None
    recoveries_in_window: int = 0
    last_heartbeat: datetime | None = None


def supervision_in(d: dict[str, Any] | None) -> SupervisionStatus | None:
    """A SupervisionStatus from protojson."""
    if d is None:
        return None
    na = d.get("nextAction")
    return SupervisionStatus(
        _policy(d.get("policy")),
        d.get("defaultPolicy", False),
        None if na is None else ScheduledAction(enum_in(AutomaticAction, na.get("action")),
                                                enum_in(LifecycleState, na.get("targetState")),
                                                ts_in(na.get("at")), na.get("reason", "")),
        int(d.get("recoveriesInWindow", 0)),
        ts_in(d.get("lastHeartbeat")),
    )


@dataclass(slots=True)
class GetStateResponse(_Record):
    """An agent's state (the answer of ``get_state``)."""

    state: LifecycleState = LifecycleState.UNSPECIFIED
    time_in_state_ms: int = 0
    previous_state: LifecycleState = LifecycleState.UNSPECIFIED
    metadata: dict[str, str] = field(default_factory=dict)
    is_transitioning: bool = False
    last_transition: datetime | None = None
    error_info: ErrorInfo | None = None
    agent_id: str = ""
    revision: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    allowed_next_states: list[LifecycleState] = field(default_factory=list)
    last_sequence: int = 0
    supervision: SupervisionStatus | None = None


AgentState = GetStateResponse


def _states(v: list[Any] | None) -> list[LifecycleState]:
    return [_STATE.get(s, _STATE0) if isinstance(s, str) else LifecycleState(s) for s in v or []]


def state_in(d: dict[str, Any]) -> GetStateResponse:
    """A GetStateResponse from protojson."""
    g = d.get
    return GetStateResponse(
        _STATE.get(g("state", ""), _STATE0),
        int(g("timeInStateMs", 0)),
        _STATE.get(g("previousState", ""), _STATE0),
        g("metadata") or {},
        g("isTransitioning", False),
        ts_in(g("lastTransition")),
        _error_info(g("errorInfo")),
        g("agentId", ""),
        int(g("revision", 0)),
        g("labels") or {},
        ts_in(g("createdAt")),
        _states(g("allowedNextStates")),
        int(g("lastSequence", 0)),
        supervision_in(g("supervision")),
    )


@dataclass(slots=True)
class TransitionResponse(_Record):
    """The answer to ``transition_state``: a refusal is ``success`` false, not an exception."""

    success: bool = False
    previous_state: LifecycleState = LifecycleState.UNSPECIFIED
    current_state: LifecycleState = LifecycleState.UNSPECIFIED
    event: LifecycleEvent | None = None
    error_message: str = ""
    refusal_reason: RefusalReason = RefusalReason.UNSPECIFIED
    allowed_next_states: list[LifecycleState] = field(default_factory=list)
    hook_outcomes: list[HookOutcome] = field(default_factory=list)
    revision: int = 0


def transition_in(d: dict[str, Any]) -> TransitionResponse:
    """A TransitionResponse from protojson."""
    g = d.get
    ev = g("event")
    return TransitionResponse(
        g("success", False),
        _STATE.get(g("previousState", ""), _STATE0),
        _STATE.get(g("currentState", ""), _STATE0),
        None if ev is None else event_in(ev),
        g("errorMessage", ""),
        enum_in(RefusalReason, g("refusalReason")),
        _states(g("allowedNextStates")),
        _outcomes(g("hookOutcomes")),
        int(g("revision", 0)),
    )


@dataclass(slots=True)
class RegisterHookResponse(_Record):
    """The answer to ``register_hook``."""

    success: bool = False
    hook_id: str = ""
    error_message: str = ""


@dataclass(slots=True)
class RegisterAgentResponse(_Record):
    """The answer to ``register_agent``: the agent and its registration event."""

    agent: GetStateResponse
    event: LifecycleEvent | None


@dataclass(slots=True)
class HistoryPage(_Record):
    """One page of transition history and the token of the next (empty on the last)."""

    events: list[LifecycleEvent]
    next_page_token: str = ""


@dataclass(slots=True)
class AgentPage(_Record):
    """One page of agents and the token of the next (empty on the last)."""

    agents: list[GetStateResponse]
    next_page_token: str = ""


@dataclass(slots=True)
class HookSpec(_Record):
    """A hook as registered."""

    hook_name: str = ""
    trigger_states: list[LifecycleState] = field(default_factory=list)
    trigger_transitions: list[TransitionType] = field(default_factory=list)
    is_blocking: bool = False
    timeout_ms: int = 0
    config: dict[str, str] = field(default_factory=dict)
    agent_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Hook(_Record):
    """A registered hook and what it has done."""

    hook_id: str
    spec: HookSpec
    created_at: datetime | None = None
    invocations: int = 0
    allowed: int = 0
    vetoed: int = 0
    failed: int = 0
    timed_out: int = 0
    last_outcome: HookOutcome | None = None
    delivered_sequence: int = 0


def hook_in(d: dict[str, Any]) -> Hook:
    """A Hook from protojson."""
    s = d.get("spec") or {}
    spec = HookSpec(
        s.get("hookName", ""),
        _states(s.get("triggerStates")),
        [enum_in(TransitionType, t) for t in s.get("triggerTransitions") or []],
        s.get("isBlocking", False),
        int(s.get("timeoutMs", 0)),
        s.get("config") or {},
        s.get("agentIds") or [],
    )
    return Hook(d.get("hookId", ""), spec, ts_in(d.get("createdAt")), int(d.get("invocations", 0)),
                int(d.get("allowed", 0)), int(d.get("vetoed", 0)), int(d.get("failed", 0)),
                int(d.get("timedOut", 0)), _outcome(d.get("lastOutcome")),
                int(d.get("deliveredSequence", 0)))


@dataclass(slots=True)
class HookInvocation(_Record):
    """One invocation of a callback hook, handed to the function of ``handle_callback``.

    ``event`` is the transition (for a blocking hook, the one about to happen), ``deadline``
    when the answer must be in, ``idempotency_key`` the same for every attempt of one
    delivery (agent and sequence).
    """

    invocation_id: str
    callback: str
    hook_id: str
    hook_name: str
    blocking: bool
    event: LifecycleEvent | None
    idempotency_key: str
    attempt: int
    deadline: datetime | None


def invocation_in(d: dict[str, Any]) -> HookInvocation:
    """A HookInvocation from protojson."""
    r = d.get("request") or {}
    ev = r.get("event")
    return HookInvocation(d.get("invocationId", ""), d.get("callback", ""), r.get("hookId", ""),
                          r.get("hookName", ""), r.get("blocking", False),
                          None if ev is None else event_in(ev), r.get("idempotencyKey", ""),
                          int(r.get("attempt", 0)), ts_in(r.get("deadline")))


@dataclass(frozen=True, slots=True)
class Veto:
    """Return ``Veto("why")`` from a hook callback to veto the transition."""

    reason: str = ""
