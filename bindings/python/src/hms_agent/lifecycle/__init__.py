"""HMS Agent Lifecycle: the lifecycle core in this process, or a server, with one API.

>>> from hms_agent.lifecycle import LifecycleManager, LifecycleState
>>> manager = LifecycleManager()              # embedded, memory store
>>> manager.register_agent("agent-001")
>>> manager.transition_state("agent-001", LifecycleState.ACTIVE, reason="start")["success"]
True

The C library is loaded on first use (``HMS_LIB`` overrides the bundled copy).
"""

from __future__ import annotations

from ._hooks import HookAnswer, HookFunction
from ._stream import EventStream, Stream
from ._types import (
    AgentPage,
    AgentState,
    AutomaticAction,
    ErrorInfo,
    GetStateResponse,
    GiveUpAction,
    HistoryPage,
    Hook,
    HookInvocation,
    HookOutcome,
    HookResult,
    HookSpec,
    LifecycleEvent,
    LifecycleState,
    PluginState,
    RefusalReason,
    RegisterAgentResponse,
    RegisterHookResponse,
    RestartPolicy,
    ScheduledAction,
    SupervisionPolicy,
    SupervisionStatus,
    TransitionResponse,
    TransitionType,
    Veto,
)
from .errors import (
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    ForkedProcessError,
    InternalError,
    InvalidArgumentError,
    LibraryError,
    LifecycleError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnknownError,
)
from .manager import LifecycleManager

__version__ = "0.1.0"

__all__ = [
    "AbortedError",
    "AgentPage",
    "AgentState",
    "AlreadyExistsError",
    "AutomaticAction",
    "CancelledError",
    "DataLossError",
    "DeadlineExceededError",
    "ErrorInfo",
    "EventStream",
    "FailedPreconditionError",
    "ForkedProcessError",
    "GetStateResponse",
    "GiveUpAction",
    "HistoryPage",
    "Hook",
    "HookAnswer",
    "HookFunction",
    "HookInvocation",
    "HookOutcome",
    "HookResult",
    "HookSpec",
    "InternalError",
    "InvalidArgumentError",
    "LibraryError",
    "LifecycleError",
    "LifecycleEvent",
    "LifecycleManager",
    "LifecycleState",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "PluginState",
    "RefusalReason",
    "RegisterAgentResponse",
    "RegisterHookResponse",
    "ResourceExhaustedError",
    "RestartPolicy",
    "ScheduledAction",
    "Stream",
    "SupervisionPolicy",
    "SupervisionStatus",
    "TransitionResponse",
    "TransitionType",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "Veto",
    "convert",
    "handle_count",
]


def convert(message: str, data: bytes, from_format: int, to_format: int) -> bytes:
    """Convert a message (full name, ``"hms.agent.lifecycle.v1.LifecycleEvent"``) between
    formats: 0 protobuf, 1 JSON, 2 CBOR."""
    from . import _ffi

    return _ffi.lib().convert(message, from_format, data, to_format)


def handle_count() -> int:
    """How many managers, streams and hook workers are open in this process."""
    from . import _ffi

    return _ffi.lib().handle_count()
