"""The binding's protobuf codec (get_state, transition_state, watched events) agrees with the
library's: the shared byte vectors and real answers decode to what the JSON path gives, the
requests it encodes are the ones the library reads, and the wire rules hold (unknown fields
skipped, packed and unpacked repeated enums, unknown enum numbers, negative numbers)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hms_agent.lifecycle import (
    ErrorInfo,
    InvalidArgumentError,
    LifecycleManager,
    LifecycleState,
    RefusalReason,
    TransitionType,
    _pb,
    convert,
)
from hms_agent.lifecycle._types import event_in, state_in, transition_in

PKG = "hms.agent.lifecycle.v1."
# Fields no message here has: a varint, a fixed64, a length-delimited and a fixed32 one.
UNKNOWN = bytes([0xB8, 0x06, 0x96, 0x01]) + bytes([0xC1, 0x06]) + bytes(8) + bytes([0xCA, 0x06, 0x02]) + b"hi" + \
    bytes([0xD5, 0x06]) + bytes(4)


def _to_pb(message: str, d: dict[str, object]) -> bytes:
    return convert(PKG + message, json.dumps(d).encode(), 1, 0)


def test_vectors_decode_like_json(repo: Path) -> None:
    d = repo / "testdata" / "vectors"
    st_json = state_in(json.loads((d / "get_state_response.json").read_bytes()))
    st_pb = _pb.state((d / "get_state_response.binpb").read_bytes())
    assert st_pb == st_json
    assert st_pb.error_info is not None and st_pb.error_info.code == 503
    assert st_pb.allowed_next_states == [LifecycleState.RECOVERING, LifecycleState.TERMINATED]
    data = (d / "lifecycle_event.binpb").read_bytes()
    ev = _pb.event(data, 0, len(data))
    assert ev == event_in(json.loads((d / "lifecycle_event.json").read_bytes()))
    assert ev.sequence == 2**64 - 1 and ev.hook_outcomes[0].latency_us == 1500
    assert ev.timestamp == datetime(2026, 11, 22, 9, 30, 0, 123456, tzinfo=timezone.utc)


def test_requests_encode_like_the_vectors(repo: Path) -> None:
    d = repo / "testdata" / "vectors"
    ts = datetime(2026, 11, 22, 9, 30, 0, 123456, tzinfo=timezone.utc)
    req = _pb.transition_request("agent-001", LifecycleState.ERROR, True, "disk full", 5000,
                                 {"ticket": "CHG-42", "zone": "eu"}, "ACTIVE", 1099511627776,
                                 ErrorInfo(-3, "no space", ts, True, ["RECOVERING"]))
    want = json.loads((d / "transition_request.json").read_bytes())
    want["errorInfo"]["timestamp"] = "2026-11-22T09:30:00.123456Z"  # datetime holds microseconds
    assert json.loads(convert(PKG + "TransitionRequest", req, 0, 1)) == want
    want = json.loads((d / "watch_events_request.json").read_bytes())
    req = _pb.watch_request(want.get("agentId"), want.get("states"), want.get("transitionTypes"),
                            int(want.get("fromSequence", 0)), int(want.get("bookmarkIntervalMs", 0)))
    assert json.loads(convert(PKG + "WatchEventsRequest", req, 0, 1)) == want
    got = json.loads(convert(PKG + "GetStateRequest", _pb.get_state_request("agent-é", True), 0, 1))
    assert got == {"agentId": "agent-é", "includeDetails": True}


def test_real_answers_decode_like_json() -> None:
    with LifecycleManager() as m:
        m.register_agent("a", metadata={"k": "v"}, labels={"pool": "blue"})
        answers = [
            m.call("TransitionState", {"agentId": "a", "targetState": "LIFECYCLE_STATE_ACTIVE", "reason": "go",
                                       "metadata": {"ticket": "T-1"}}),
            m.call("TransitionState", {"agentId": "a", "targetState": "LIFECYCLE_STATE_RECOVERING"}),  # refused
            m.call("TransitionState", {"agentId": "a", "targetState": "LIFECYCLE_STATE_ERROR",
                                       "errorInfo": {"code": -7, "message": "boom", "isRecoverable": True,
                                                     "recoveryActions": ["RECOVERING", "TERMINATED"]}}),
        ]
        assert answers[1].get("success") is not True
        for d in answers:
            assert _pb.transition(_to_pb("TransitionResponse", d)) == transition_in(d)
        st = m.call("GetState", {"agentId": "a", "includeDetails": True})
        assert _pb.state(_to_pb("GetStateResponse", st)) == state_in(st)
        got = _pb.state(_to_pb("GetStateResponse", st))
        assert got.error_info is not None and got.error_info.code == -7
        assert got.error_info.recovery_actions == ["RECOVERING", "TERMINATED"] and got.error_info.is_recoverable
        # The binding's own call (protobuf) gives what the JSON call gave, but for the clock.
        mine = m.get_state("a", include_details=True)
        mine.time_in_state_ms = got.time_in_state_ms
        assert mine == got and mine.labels == {"pool": "blue"} and mine.metadata == {"k": "v"}


def test_wire_rules() -> None:
    d = {"state": "LIFECYCLE_STATE_ACTIVE", "agentId": "x", "revision": "-5", "timeInStateMs": "-1",
         "lastTransition": "2026-01-01T00:00:00Z", "createdAt": "2026-01-01T00:00:00.000001Z",
         "allowedNextStates": ["LIFECYCLE_STATE_PAUSED", "LIFECYCLE_STATE_ERROR"]}
    data = _to_pb("GetStateResponse", d)
    want = state_in(d)
    assert _pb.state(data) == want and want.revision == -5 and want.time_in_state_ms == -1
    assert _pb.state(UNKNOWN + data + UNKNOWN) == want
    # Unpacked repeated enum (field 12, wire type 0), interleaved with the rest.
    unpacked = data + bytes([0x60, 0x07])
    assert _pb.state(unpacked).allowed_next_states == [LifecycleState.PAUSED, LifecycleState.ERROR,
                                                        LifecycleState.MAINTENANCE]
    # An enum number this binding does not know is UNSPECIFIED; a later scalar wins.
    assert _pb.state(data + bytes([0x08, 0x63])).state == LifecycleState.UNSPECIFIED
    assert _pb.state(data + bytes([0x08, 0x03])).state == LifecycleState.PAUSED
    ev = {"eventId": "e", "agentId": "x", "newState": "LIFECYCLE_STATE_ACTIVE",
          "transitionType": "TRANSITION_TYPE_FORCED", "sequence": "300", "metadata": {"a": "1", "b": ""},
          "timestamp": "2262-04-11T23:47:16.854775Z"}
    data = _to_pb("LifecycleEvent", ev)
    batch = b"".join(len(x).to_bytes(4, "little") + x for x in (data, UNKNOWN + data, b""))
    got = _pb.events(batch)
    assert got[0] == got[1] == event_in(ev) and got[0].transition_type == TransitionType.FORCED
    assert got[2] == event_in({})
    assert got[0].timestamp == datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=timezone.utc)


def test_timestamps_round_the_unrolled_path() -> None:
    # The unrolled decoder takes 5-byte seconds and 4-byte nanoseconds; everything else takes
    # the general loop. Both must agree with the library across the boundaries.
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for t in (base, base + timedelta(microseconds=1), base + timedelta(microseconds=2097),
              base + timedelta(microseconds=2098), base + timedelta(microseconds=999999),
              datetime(1978, 7, 4, 21, 24, 16, tzinfo=timezone.utc), datetime(1970, 1, 1, tzinfo=timezone.utc),
              datetime(1969, 7, 20, 20, 17, 40, 500000, tzinfo=timezone.utc),
              datetime(1, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)):
        s = t.isoformat(timespec="microseconds").replace("+00:00", "Z")
        data = _to_pb("GetStateResponse", {"createdAt": s})
        assert _pb.state(data).created_at == t, s


def test_timestamp_with_unknown_fields() -> None:
    # Seconds in five bytes, nanoseconds in two, then an unknown varint field: the same length
    # as the unrolled shape, which must not take it.
    seconds = 1764476061
    sec = _pb._uv(seconds)
    assert len(sec) == 5
    ts = b"\x08" + sec + b"\x10" + _pb._uv(10_000) + b"\x18\x01"
    assert len(ts) == 11
    want = datetime.fromtimestamp(seconds, timezone.utc) + timedelta(microseconds=10)
    assert _pb._timestamp(ts, 0, len(ts)) == want
    assert _pb._timestamp(b"\x18\x01" + ts, 0, len(ts) + 2) == want


def test_bad_enum_names_are_named() -> None:
    with LifecycleManager() as m:
        m.register_agent("a")
        with pytest.raises(InvalidArgumentError, match="unknown LifecycleState 'ACTIV'"):
            m.transition_state("a", "ACTIV")
        with pytest.raises(InvalidArgumentError, match="timeout_ms"):
            m.transition_state("a", LifecycleState.ACTIVE, timeout_ms=2**31)
        with pytest.raises(InvalidArgumentError, match="unknown TransitionType"):
            m.watch_events(transition_types=["SIDEWAYS"])
        with pytest.raises(InvalidArgumentError, match="a LifecycleState is a member, a number or a name, not None"):
            m.transition_state("a", None)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="agent_id must be a string, not int"):
            m.get_state(7)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="metadata must map strings to strings"):
            m.transition_state("a", LifecycleState.ACTIVE, metadata={"n": 1})  # type: ignore[dict-item]
        assert m.transition_state("a", "LIFECYCLE_STATE_ACTIVE").success


def _rand_ts(rng: random.Random) -> str:
    t = datetime(1, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.randrange(0, 315537897599),
                                                            microseconds=rng.randrange(0, 1000000))
    if rng.random() < 0.5:
        t = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.randrange(-10**9, 10**9),
                                                                  microseconds=rng.randrange(0, 1000000))
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _rand_str(rng: random.Random) -> str:
    return "".join(rng.choice("ab-é€😀0") for _ in range(rng.choice([0, 1, 5, 40, 200])))


def _rand_event(rng: random.Random) -> dict[str, object]:
    states = [s.wire_name for s in LifecycleState]
    d: dict[str, object] = {
        "eventId": _rand_str(rng), "agentId": _rand_str(rng), "previousState": rng.choice(states),
        "newState": rng.choice(states), "transitionType": rng.choice([t.wire_name for t in TransitionType]),
        "timestamp": _rand_ts(rng), "initiatedBy": _rand_str(rng), "reason": _rand_str(rng),
        "metadata": {_rand_str(rng): _rand_str(rng) for _ in range(rng.randrange(3))},
        "sequence": str(rng.choice([0, 1, 127, 128, 2**32, 2**64 - 1])), "bookmark": rng.random() < 0.2,
        "revision": str(rng.choice([0, 1, -1, 2**63 - 1, -(2**63)])),
    }
    if rng.random() < 0.3:
        d["errorInfo"] = {"code": rng.choice([0, 1, -1, 2**31 - 1, -(2**31)]), "message": _rand_str(rng),
                          "timestamp": _rand_ts(rng), "isRecoverable": rng.random() < 0.5,
                          "recoveryActions": [_rand_str(rng) for _ in range(rng.randrange(3))]}
    if rng.random() < 0.3:
        d["hookOutcomes"] = [{"hookId": _rand_str(rng), "hookName": _rand_str(rng),
                              "result": rng.choice(["RESULT_ALLOWED", "RESULT_VETOED", "RESULT_TIMED_OUT"]),
                              "message": _rand_str(rng), "latencyUs": str(rng.choice([0, 5, -5, 2**40])),
                              "enforced": rng.random() < 0.5} for _ in range(rng.randrange(1, 3))]
    return d


def test_random_messages_decode_like_json() -> None:
    # Differential: random messages, encoded by the library, decode through the binding's
    # protobuf codec to what the JSON path makes of the same message.
    rng = random.Random(11)
    states = [s.wire_name for s in LifecycleState]
    for _ in range(150):
        ev = _rand_event(rng)
        data = _to_pb("LifecycleEvent", ev)
        assert _pb.event(data, 0, len(data)) == event_in(json.loads(convert(PKG + "LifecycleEvent", data, 0, 1)))
        tr: dict[str, object] = {"success": rng.random() < 0.5, "previousState": rng.choice(states),
                                 "currentState": rng.choice(states), "errorMessage": _rand_str(rng),
                                 "refusalReason": rng.choice([r.wire_name for r in RefusalReason]),
                                 "allowedNextStates": rng.sample(states, rng.randrange(4)),
                                 "revision": str(rng.choice([0, 3, -3]))}
        if rng.random() < 0.7:
            tr["event"] = ev
        if rng.random() < 0.3:
            tr["hookOutcomes"] = ev.get("hookOutcomes", [])
        data = _to_pb("TransitionResponse", tr)
        assert _pb.transition(data) == transition_in(json.loads(convert(PKG + "TransitionResponse", data, 0, 1)))
        st: dict[str, object] = {"state": rng.choice(states), "timeInStateMs": str(rng.choice([0, 1, -1, 2**50])),
                                 "previousState": rng.choice(states), "metadata": ev["metadata"],
                                 "isTransitioning": rng.random() < 0.5, "lastTransition": _rand_ts(rng),
                                 "agentId": _rand_str(rng), "revision": "9", "labels": {"k": _rand_str(rng)},
                                 "createdAt": _rand_ts(rng), "allowedNextStates": rng.sample(states, rng.randrange(4)),
                                 "lastSequence": str(rng.choice([0, 2**64 - 1]))}
        if "errorInfo" in ev:
            st["errorInfo"] = ev["errorInfo"]
        if rng.random() < 0.5:
            st["supervision"] = {
                "policy": {"restart": "RESTART_POLICY_NEVER", "maxRecoveries": rng.randrange(2**32),
                           "periodMs": rng.randrange(2**32), "onGiveUp": "GIVE_UP_ACTION_TERMINATE",
                           "upgradingLimitMs": rng.randrange(2**32)},
                "defaultPolicy": rng.random() < 0.5, "recoveriesInWindow": rng.randrange(2**32),
                "lastHeartbeat": _rand_ts(rng),
                "nextAction": {"action": "AUTOMATIC_ACTION_LIVENESS", "targetState": rng.choice(states),
                               "at": _rand_ts(rng), "reason": _rand_str(rng)}}
        data = _to_pb("GetStateResponse", st)
        assert _pb.state(data) == state_in(json.loads(convert(PKG + "GetStateResponse", data, 0, 1)))
