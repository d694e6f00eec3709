"""Protobuf (format 0) for the hot calls: GetState, TransitionState and watched events.

The library encodes and decodes protobuf several times faster than protojson, and a small
hand-written decoder here costs less GIL-held time than ``json.loads`` plus building the
types from dictionaries (see README, "Speed"). Only the messages of those calls are coded
here; every other call uses JSON. The decoders follow the protobuf wire rules: fields in any
order, the last value of a scalar wins, packed and unpacked repeated enums, unknown fields
skipped; enum numbers this binding does not know become ``UNSPECIFIED``, as unknown names do
in the JSON path.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from ._types import (
    _FROM_WIRE,
    UTC,
    AutomaticAction,
    ErrorInfo,
    GetStateResponse,
    GiveUpAction,
    HookOutcome,
    HookResult,
    LifecycleEvent,
    LifecycleState,
    RefusalReason,
    RestartPolicy,
    ScheduledAction,
    SupervisionPolicy,
    SupervisionStatus,
    TransitionResponse,
    TransitionType,
    _WireEnum,
)
from .errors import InvalidArgumentError

_STATES: tuple[LifecycleState, ...] = tuple(LifecycleState)
_TTYPES: tuple[TransitionType, ...] = tuple(TransitionType)
_REFUSALS: tuple[RefusalReason, ...] = tuple(RefusalReason)
_RESULTS: tuple[HookResult, ...] = tuple(HookResult)
_RESTARTS: tuple[RestartPolicy, ...] = tuple(RestartPolicy)
_GIVEUPS: tuple[GiveUpAction, ...] = tuple(GiveUpAction)
_ACTIONS: tuple[AutomaticAction, ...] = tuple(AutomaticAction)
for _t in (_STATES, _TTYPES, _REFUSALS, _RESULTS, _RESTARTS, _GIVEUPS, _ACTIONS):
    # The tables are indexed by number: every enum here is numbered 0, 1, 2, … without gaps.
    assert [int(m) for m in _t] == list(range(len(_t)))

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_U64 = 1 << 64
_I63 = 1 << 63


class DecodeError(ValueError):
    """The library's protobuf answer could not be decoded (a bug: please report it)."""


# -- decoding ------------------------------------------------------------------------------


def _varint(b: bytes, i: int) -> tuple[int, int]:
    """A varint starting at b[i]: (value, index after it)."""
    x = 0
    shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            return x, i
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")


def _signed(v: int) -> int:
    """An int64/int32 from its two's-complement varint value."""
    return v - _U64 if v >= _I63 else v


def _skip(b: bytes, i: int, wt: int) -> int:
    """The index after an unknown field's value of wire type ``wt`` starting at b[i]."""
    if wt == 0:
        return _varint(b, i)[1]
    if wt == 1:
        return i + 8
    if wt == 2:
        n, i = _varint(b, i)
        return i + n
    if wt == 5:
        return i + 4
    raise DecodeError(f"unsupported wire type {wt}")


def _enum(table: tuple[Any, ...], v: int) -> Any:
    return table[v] if v < len(table) else table[0]


def _timestamp(b: bytes, i: int, end: int) -> datetime:
    """A google.protobuf.Timestamp as an aware UTC datetime (to the microsecond)."""
    k = end - i - 7
    if (3 < k < 6 and b[i] == 0x08 and b[i + 6] == 0x10 and b[i + 5] < 0x80 and b[end - 1] < 0x80
            and b[i + 1] & b[i + 2] & b[i + 3] & b[i + 4] & b[i + 7] & b[i + 8] & b[i + 9] & 0x80):
        # The common shape, unrolled: seconds in five varint bytes (the years 1978 to 3058),
        # then nanoseconds in four (from 2 ms) or five (from 268 ms) and nothing else.
        seconds = ((b[i + 1] & 0x7F) | (b[i + 2] & 0x7F) << 7 | (b[i + 3] & 0x7F) << 14
                   | (b[i + 4] & 0x7F) << 21 | b[i + 5] << 28)
        if k == 4:
            nanos = (b[i + 7] & 0x7F) | (b[i + 8] & 0x7F) << 7 | (b[i + 9] & 0x7F) << 14 | b[i + 10] << 21
            return _EPOCH + timedelta(0, seconds, nanos // 1000)
        if b[i + 10] & 0x80:
            nanos = ((b[i + 7] & 0x7F) | (b[i + 8] & 0x7F) << 7 | (b[i + 9] & 0x7F) << 14
                     | (b[i + 10] & 0x7F) << 21 | b[i + 11] << 28)
            return _EPOCH + timedelta(0, seconds, nanos // 1000)
    seconds = 0
    nanos = 0
    while i < end:
        t, i = _varint(b, i)
        if t & 7:
            i = _skip(b, i, t & 7)
            continue
        v, i = _varint(b, i)
        if t == 0x08:
            seconds = _signed(v)
        elif t == 0x10:
            nanos = _signed(v)
    return _EPOCH + timedelta(0, seconds, nanos // 1000)


def _map_entry(b: bytes, i: int, end: int, into: dict[str, str]) -> None:
    key = ""
    val = ""
    while i < end:
        t = b[i]
        i += 1
        if t > 0x7F:
            t, i = _varint(b, i - 1)
        f = t >> 3
        wt = t & 7
        if wt == 2:
            n = b[i]
            i += 1
            if n > 0x7F:
                n, i = _varint(b, i - 1)
            j = i + n
            if f == 1:
                key = b[i:j].decode()
            elif f == 2:
                val = b[i:j].decode()
            i = j
        else:
            i = _skip(b, i, wt)
    into[key] = val


def _enum_list(b: bytes, i: int, wt: int, table: tuple[Any, ...], into: list[Any]) -> int:
    """One element (wire type 0) or a packed run (wire type 2) of a repeated enum."""
    if wt == 0:
        v, i = _varint(b, i)
        into.append(_enum(table, v))
        return i
    n, i = _varint(b, i)
    end = i + n
    run = b[i:end]
    if run and max(run) < len(table):
        # Every element one byte and known: the usual case.
        into.extend([table[c] for c in run])
        return end
    while i < end:
        v, i = _varint(b, i)
        into.append(_enum(table, v))
    return i


def error_info(b: bytes, i: int, end: int) -> ErrorInfo:
    """hms.agent.lifecycle.v1.ErrorInfo."""
    code = 0
    message = ""
    ts: datetime | None = None
    recoverable = False
    actions: list[str] = []
    while i < end:
        t = b[i]
        i += 1
        if t > 0x7F:
            t, i = _varint(b, i - 1)
        f = t >> 3
        wt = t & 7
        if wt == 0:
            v = b[i]
            i += 1
            if v > 0x7F:
                v, i = _varint(b, i - 1)
            if f == 1:
                code = _signed(v)
            elif f == 4:
                recoverable = v != 0
        elif wt == 2:
            n = b[i]
            i += 1
            if n > 0x7F:
                n, i = _varint(b, i - 1)
            j = i + n
            if f == 2:
                message = b[i:j].decode()
            elif f == 3:
                ts = _timestamp(b, i, j)
            elif f == 5:
                actions.append(b[i:j].decode())
            i = j
        else:
            i = _skip(b, i, wt)
    return ErrorInfo(code, message, ts, recoverable, actions)


def hook_outcome(b: bytes, i: int, end: int) -> HookOutcome:
    """hms.agent.lifecycle.v1.HookOutcome."""
    hook_id = ""
    hook_name = ""
    result = HookResult.UNSPECIFIED
    message = ""
    latency = 0
    enforced = False
    while i < end:
        t = b[i]
        i += 1
        if t > 0x7F:
            t, i = _varint(b, i - 1)
        f = t >> 3
        wt = t & 7
        if wt == 0:
            v = b[i]
            i += 1
            if v > 0x7F:
                v, i = _varint(b, i - 1)
            if f == 3:
                result = _enum(_RESULTS, v)
            elif f == 5:
                latency = _signed(v)
            elif f == 6:
                enforced = v != 0
        elif wt == 2:
            n = b[i]
            i += 1
            if n > 0x7F:
                n, i = _varint(b, i - 1)
            j = i + n
            if f == 1:
                hook_id = b[i:j].decode()
            elif f == 2:
                hook_name = b[i:j].decode()
            elif f == 4:
                message = b[i:j].decode()
            i = j
        else:
            i = _skip(b, i, wt)
    return HookOutcome(hook_id, hook_name, result, message, latency, enforced)


def event(b: bytes, i: int, end: int) -> LifecycleEvent:
    """hms.agent.lifecycle.v1.LifecycleEvent from b[i:end]."""
    event_id = ""
    agent_id = ""
    prev = new = LifecycleState.UNSPECIFIED
    ttype = TransitionType.UNSPECIFIED
    ts: datetime | None = None
    initiated_by = ""
    reason = ""
    metadata: dict[str, str] = {}
    seq = 0
    ei: ErrorInfo | None = None
    outcomes: list[HookOutcome] = []
    bookmark = False
    revision = 0
    # Dispatch on the whole tag byte: every field here has a number below 16, so a one-byte
    # tag is (number << 3 | wire type) and a longer one is a field this binding does not know.
    ns = len(_STATES)
    nt = len(_TTYPES)
    while i < end:
        t = b[i]
        i += 1
        if t & 7 == 2 and t < 0x80:
            n = b[i]
            i += 1
            if n > 0x7F:
                n, i = _varint(b, i - 1)
            j = i + n
            if t == 0x0A:
                event_id = b[i:j].decode()
            elif t == 0x12:
                agent_id = b[i:j].decode()
            elif t == 0x32:
                ts = _timestamp(b, i, j)
            elif t == 0x3A:
                initiated_by = b[i:j].decode()
            elif t == 0x42:
                reason = b[i:j].decode()
            elif t == 0x4A:
                _map_entry(b, i, j, metadata)
            elif t == 0x5A:
                ei = error_info(b, i, j)
            elif t == 0x62:
                outcomes.append(hook_outcome(b, i, j))
            i = j
        elif t & 7 == 0 and t < 0x80:
            v = b[i]
            i += 1
            if v > 0x7F:
                v, i = _varint(b, i - 1)
            if t == 0x18:
                prev = _STATES[v] if v < ns else _STATES[0]
            elif t == 0x20:
                new = _STATES[v] if v < ns else _STATES[0]
            elif t == 0x28:
                ttype = _TTYPES[v] if v < nt else _TTYPES[0]
            elif t == 0x50:
                seq = v
            elif t == 0x68:
                bookmark = v != 0
            elif t == 0x70:
                revision = v - _U64 if v >= _I63 else v
        else:
            t, i = _varint(b, i - 1)
            i = _skip(b, i, t & 7)
    return LifecycleEvent(event_id, agent_id, prev, new, ttype, ts, initiated_by, reason, metadata, seq, ei,
                          outcomes, bookmark, revision)


def events(batch: bytes) -> list[LifecycleEvent]:
    """The events of a batch of hms_next: each a 4-byte little-endian length and the message."""
    out: list[LifecycleEvent] = []
    append = out.append
    from_bytes = int.from_bytes
    i = 0
    end = len(batch)
    while i < end:
        j = i + 4 + from_bytes(batch[i : i + 4], "little")
        append(event(batch, i + 4, j))
        i = j
    return out


_POLICY_FIELDS = ("", "restart", "max_recoveries", "period_ms", "backoff_initial_ms", "backoff_max_ms",
                  "stable_period_ms", "on_give_up", "heartbeat_timeout_ms", "shutting_down_limit_ms",
                  "recovering_limit_ms", "upgrading_limit_ms")


def _policy(b: bytes, i: int, end: int) -> SupervisionPolicy:
    return SupervisionPolicy(*_policy_values(b[i:end]))


@functools.lru_cache(maxsize=64)
def _policy_values(b: bytes) -> tuple[Any, ...]:
    # Memoized: an agent's answers carry the same few policies over and over (most the
    # default), and the values are immutable; the SupervisionPolicy itself is new each time.
    v_: list[Any] = [0] * 12
    i = 0
    end = len(b)
    while i < end:
        t, i = _varint(b, i)
        f, wt = t >> 3, t & 7
        if wt == 0 and 0 < f < 12:
            v_[f], i = _varint(b, i)
        else:
            i = _skip(b, i, wt)
    v_[1] = _enum(_RESTARTS, v_[1])
    v_[7] = _enum(_GIVEUPS, v_[7])
    return tuple(v_[1:])


def _scheduled(b: bytes, i: int, end: int) -> ScheduledAction:
    action = AutomaticAction.UNSPECIFIED
    target = LifecycleState.UNSPECIFIED
    at: datetime | None = None
    reason = ""
    while i < end:
        t = b[i]
        i += 1
        if t > 0x7F:
            t, i = _varint(b, i - 1)
        f = t >> 3
        wt = t & 7
        if wt == 0:
            v = b[i]
            i += 1
            if v > 0x7F:
                v, i = _varint(b, i - 1)
            if f == 1:
                action = _enum(_ACTIONS, v)
            elif f == 2:
                target = _enum(_STATES, v)
        elif wt == 2:
            n = b[i]
            i += 1
            if n > 0x7F:
                n, i = _varint(b, i - 1)
            j = i + n
            if f == 3:
                at = _timestamp(b, i, j)
            elif f == 4:
                reason = b[i:j].decode()
            i = j
        else:
            i = _skip(b, i, wt)
    return ScheduledAction(action, target, at, reason)


def _supervision(b: bytes, i: int, end: int) -> SupervisionStatus:
    policy: SupervisionPolicy | None = None
    default = False
    nxt: ScheduledAction | None = None
    recoveries = 0
    heartbeat: datetime | None = None
    while i < end:
        t = b[i]
        i += 1
        if t > 0x7F:
            t, i = _varint(b, i - 1)
        f = t >> 3
        wt = t & 7
        if wt == 0:
            v = b[i]
            i += 1
            if v > 0x7F:
                v, i = _varint(b, i - 1)
            if f == 2:
                default = v != 0
            elif f == 4:
                recoveries = v
        elif wt == 2:
            n = b[i]
            i += 1
            if n > 0x7F:
                n, i = _varint(b, i - 1)
            j = i + n
            if f == 1:
                policy = _policy(b, i, j)
            elif f == 3:
                nxt = _scheduled(b, i, j)
            elif f == 5:
                heartbeat = _timestamp(b, i, j)
            i = j
        else:
            i = _skip(b, i, wt)
    return SupervisionStatus(policy, default, nxt, recoveries, heartbeat)


@functools.lru_cache(maxsize=1024)
def _state_timestamp(b: bytes) -> datetime:
    # Memoized for GetState only: an agent's created_at never changes and its last_transition
    # only with a transition, so asking for the same agents' state again meets the same bytes;
    # datetimes are immutable. (Events' timestamps are all different: no cache there.)
    return _timestamp(b, 0, len(b))


def state(b: bytes) -> GetStateResponse:
    """hms.agent.lifecycle.v1.GetStateResponse."""
    st = prev = LifecycleState.UNSPECIFIED
    tis = 0
    metadata: dict[str, str] = {}
    transitioning = False
    last: datetime | None = None
    ei: ErrorInfo | None = None
    agent_id = ""
    revision = 0
    labels: dict[str, str] = {}
    created: datetime | None = None
    allowed: list[LifecycleState] = []
    last_seq = 0
    sup: SupervisionStatus | None = None
    ns = len(_STATES)
    i = 0
    end = len(b)
    # Dispatch on the whole tag byte, as in event().
    while i < end:
        t = b[i]
        i += 1
        if t & 7 == 2 and t < 0x80:
            if t == 0x62:
                i = _enum_list(b, i, 2, _STATES, allowed)
                continue
            n = b[i]
            i += 1
            if n > 0x7F:
                n, i = _varint(b, i - 1)
            j = i + n
            if t == 0x32:
                last = _state_timestamp(b[i:j])
            elif t == 0x42:
                agent_id = b[i:j].decode()
            elif t == 0x5A:
                created = _state_timestamp(b[i:j])
            elif t == 0x72:
                sup = _supervision(b, i, j)
            elif t == 0x22:
                _map_entry(b, i, j, metadata)
            elif t == 0x3A:
                ei = error_info(b, i, j)
            elif t == 0x52:
                _map_entry(b, i, j, labels)
            i = j
        elif t & 7 == 0 and t < 0x80:
            v = b[i]
            i += 1
            if v > 0x7F:
                v, i = _varint(b, i - 1)
            if t == 0x08:
                st = _STATES[v] if v < ns else _STATES[0]
            elif t == 0x10:
                tis = v - _U64 if v >= _I63 else v
            elif t == 0x18:
                prev = _STATES[v] if v < ns else _STATES[0]
            elif t == 0x48:
                revision = v - _U64 if v >= _I63 else v
            elif t == 0x68:
                last_seq = v
            elif t == 0x28:
                transitioning = v != 0
            elif t == 0x60:
                allowed.append(_STATES[v] if v < ns else _STATES[0])
        else:
            t, i = _varint(b, i - 1)
            i = _skip(b, i, t & 7)
    return GetStateResponse(st, tis, prev, metadata, transitioning, last, ei, agent_id, revision, labels, created,
                            allowed, last_seq, sup)


def transition(b: bytes) -> TransitionResponse:
    """hms.agent.lifecycle.v1.TransitionResponse."""
    success = False
    prev = cur = LifecycleState.UNSPECIFIED
    ev: LifecycleEvent | None = None
    message = ""
    refusal = RefusalReason.UNSPECIFIED
    allowed: list[LifecycleState] = []
    outcomes: list[HookOutcome] = []
    revision = 0
    ns = len(_STATES)
    i = 0
    end = len(b)
    while i < end:
        t = b[i]
        i += 1
        if t & 7 == 2 and t < 0x80:
            if t == 0x3A:
                i = _enum_list(b, i, 2, _STATES, allowed)
                continue
            n = b[i]
            i += 1
            if n > 0x7F:
                n, i = _varint(b, i - 1)
            j = i + n
            if t == 0x22:
                ev = event(b, i, j)
            elif t == 0x2A:
                message = b[i:j].decode()
            elif t == 0x42:
                outcomes.append(hook_outcome(b, i, j))
            i = j
        elif t & 7 == 0 and t < 0x80:
            v = b[i]
            i += 1
            if v > 0x7F:
                v, i = _varint(b, i - 1)
            if t == 0x08:
                success = v != 0
            elif t == 0x10:
                prev = _STATES[v] if v < ns else _STATES[0]
            elif t == 0x18:
                cur = _STATES[v] if v < ns else _STATES[0]
            elif t == 0x48:
                revision = v - _U64 if v >= _I63 else v
            elif t == 0x30:
                refusal = _enum(_REFUSALS, v)
            elif t == 0x38:
                allowed.append(_STATES[v] if v < ns else _STATES[0])
        else:
            t, i = _varint(b, i - 1)
            i = _skip(b, i, t & 7)
    return TransitionResponse(success, prev, cur, ev, message, refusal, allowed, outcomes, revision)


# -- encoding ------------------------------------------------------------------------------


def _uv(v: int) -> bytes:
    """A varint (negative numbers as 64-bit two's complement, as int32/int64 are sent)."""
    if 0 <= v < 0x80:
        return bytes((v,))
    if v < 0:
        v += _U64
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _str(field: int, s: str) -> bytes:
    data = s.encode()
    return bytes((field << 3 | 2,)) + _uv(len(data)) + data


def _msg(field: int, data: bytes) -> bytes:
    return bytes((field << 3 | 2,)) + _uv(len(data)) + data


def _enum_number(cls: type[_WireEnum], v: Any) -> int:
    """An enum argument (member, number, short or full name) as its number."""
    if isinstance(v, str):
        m = _FROM_WIRE[cls].get(v)
        if m is None:
            names = ", ".join(x.name for x in cls)
            raise InvalidArgumentError(f"unknown {cls.__name__} {v!r} (one of {names})")
        return int(m)
    try:
        return int(v)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"a {cls.__name__} is a member, a number or a name, not {v!r}") from None


def _timestamp_out(t: datetime) -> bytes:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    d = t - _EPOCH
    seconds = d.days * 86400 + d.seconds
    out = b""
    if seconds:
        out += b"\x08" + _uv(seconds)
    if d.microseconds:
        out += b"\x10" + _uv(d.microseconds * 1000)
    return out


def _need_str(name: str, v: Any) -> None:
    raise InvalidArgumentError(f"{name} must be a string, not {type(v).__name__}")


def get_state_request(agent_id: str, include_details: bool) -> bytes:
    """hms.agent.lifecycle.v1.GetStateRequest."""
    if type(agent_id) is not str:
        _need_str("agent_id", agent_id)
    data = agent_id.encode()
    n = len(data)
    head = b"\n" + (bytes((n,)) if n < 0x80 else _uv(n)) if n else b""
    return head + data + (b"\x10\x01" if include_details else b"")


def error_info_out(e: ErrorInfo) -> bytes:
    """hms.agent.lifecycle.v1.ErrorInfo."""
    out = b""
    if e.code:
        out += b"\x08" + _uv(_int32("error_info.code", e.code))
    if e.message:
        out += _str(2, e.message)
    if e.timestamp is not None:
        out += _msg(3, _timestamp_out(e.timestamp))
    if e.is_recoverable:
        out += b"\x20\x01"
    for a in e.recovery_actions or ():
        out += _str(5, a)
    return out


def transition_request(
    agent_id: str,
    target_state: Any,
    force: bool,
    reason: str,
    timeout_ms: int,
    metadata: Mapping[str, str] | None,
    expected_state: Any,
    expected_revision: int,
    error_info: ErrorInfo | None,
) -> bytes:
    """hms.agent.lifecycle.v1.TransitionRequest."""
    if type(agent_id) is not str:
        _need_str("agent_id", agent_id)
    data = agent_id.encode()
    n = len(data)
    out = b"\n" + (bytes((n,)) if n < 0x80 else _uv(n)) + data if n else b""
    target = _enum_number(LifecycleState, target_state)
    if target:
        out += b"\x10" + (bytes((target,)) if 0 < target < 0x80 else _uv(target))
    if force:
        out += b"\x18\x01"
    if reason:
        if not isinstance(reason, str):
            _need_str("reason", reason)
        out += _str(4, reason)
    if timeout_ms:
        out += b"\x28" + _uv(_int32("timeout_ms", timeout_ms))
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise InvalidArgumentError(f"metadata must map strings to strings, not {k!r}: {v!r}")
            out += _msg(6, _str(1, k) + _str(2, v))
    if expected_state is not None:
        es = _enum_number(LifecycleState, expected_state)
        if es:
            out += b"\x38" + _uv(es)
    if expected_revision:
        out += b"\x40" + _uv(_int64("expected_revision", expected_revision))
    if error_info is not None:
        out += _msg(9, error_info_out(error_info))
    return out


def _packed(field: int, cls: type[_WireEnum], values: Any) -> bytes:
    data = b"".join(_uv(_enum_number(cls, v)) for v in values)
    return _msg(field, data) if data else b""


def watch_request(agent_id: str | None, states: Any, transition_types: Any, from_sequence: int,
                  bookmark_interval_ms: int) -> bytes:
    """hms.agent.lifecycle.v1.WatchEventsRequest."""
    out = _str(1, agent_id) if agent_id else b""
    if states:
        out += _packed(2, LifecycleState, states)
    if transition_types:
        out += _packed(3, TransitionType, transition_types)
    if from_sequence:
        if not 0 <= from_sequence < _U64:
            raise InvalidArgumentError(f"from_sequence {from_sequence} is not an unsigned 64-bit number")
        out += b"\x20" + _uv(from_sequence)
    if bookmark_interval_ms:
        out += b"\x28" + _uv(_int32("bookmark_interval_ms", bookmark_interval_ms))
    return out


def _int32(name: str, v: int) -> int:
    if not -(1 << 31) <= v < 1 << 31:
        raise InvalidArgumentError(f"{name} {v} is out of the 32-bit range")
    return v


def _int64(name: str, v: int) -> int:
    if not -_I63 <= v < _I63:
        raise InvalidArgumentError(f"{name} {v} is out of the 64-bit range")
    return v
