"""The shared byte vectors (testdata/vectors): each message in protobuf, JSON and CBOR
decodes and re-encodes to the same bytes through the library's hms_convert, and the JSON
decodes into the binding's types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hms_agent.lifecycle import LifecycleState, TransitionType, convert
from hms_agent.lifecycle._types import event_in, state_in

MESSAGES = {
    "get_state_response": "hms.agent.lifecycle.v1.GetStateResponse",
    "lifecycle_event": "hms.agent.lifecycle.v1.LifecycleEvent",
    "register_hook_request": "hms.agent.lifecycle.v1.RegisterHookRequest",
    "transition_request": "hms.agent.lifecycle.v1.TransitionRequest",
    "watch_events_request": "hms.agent.lifecycle.v1.WatchEventsRequest",
}
FORMATS = {"binpb": 0, "json": 1, "cbor": 2}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_vectors_round_trip(repo: Path, name: str) -> None:
    d = repo / "testdata" / "vectors"
    msg = MESSAGES[name]
    data = {ext: (d / f"{name}.{ext}").read_bytes() for ext in FORMATS}
    want = json.loads(data["json"])
    for ext, fmt in FORMATS.items():
        as_json = json.loads(convert(msg, data[ext], fmt, 1))
        assert as_json == want, ext
        if ext != "json":
            assert convert(msg, data["json"], 1, fmt) == data[ext], ext
            assert convert(msg, data[ext], fmt, fmt) == data[ext], ext


def test_vectors_decode_into_types(repo: Path) -> None:
    d = repo / "testdata" / "vectors"
    ev = event_in(json.loads((d / "lifecycle_event.json").read_bytes()))
    assert ev.new_state == LifecycleState.MAINTENANCE and ev.transition_type == TransitionType.MAINTENANCE
    assert ev.sequence == 2**64 - 1 and ev.revision == 7 and ev.metadata == {"ticket": "CHG-42"}
    assert ev.timestamp is not None and ev.timestamp.isoformat() == "2026-11-22T09:30:00.123456+00:00"
    assert ev.hook_outcomes[0].latency_us == 1500 and ev.hook_outcomes[0].enforced
    st = state_in(json.loads((d / "get_state_response.json").read_bytes()))
    assert st.state != LifecycleState.UNSPECIFIED
