"""The specification's API (section 3.2) and what the binding adds, embedded and remote."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone

import pytest

import hms_agent.lifecycle as hl
from hms_agent.lifecycle import (
    AlreadyExistsError,
    ErrorInfo,
    InvalidArgumentError,
    LifecycleError,
    LifecycleEvent,
    LifecycleManager,
    LifecycleState,
    NotFoundError,
    RefusalReason,
    RestartPolicy,
    SupervisionPolicy,
    TransitionType,
)


def test_enums_are_the_specifications() -> None:
    assert [(m.name, m.value) for m in LifecycleState] == [
        ("UNSPECIFIED", 0), ("INITIALIZED", 1), ("ACTIVE", 2), ("PAUSED", 3), ("SUSPENDED", 4),
        ("SHUTTING_DOWN", 5), ("TERMINATED", 6), ("MAINTENANCE", 7), ("ERROR", 8), ("UPGRADING", 9),
        ("RECOVERING", 10),
    ]
    assert [(m.name, m.value) for m in TransitionType] == [
        ("UNSPECIFIED", 0), ("NORMAL", 1), ("FORCED", 2), ("AUTOMATIC", 3), ("ERROR_TRIGGERED", 4), ("MAINTENANCE", 5),
    ]
    assert LifecycleState.ACTIVE == 2
    assert str(LifecycleState.ACTIVE) == "LifecycleState.ACTIVE"
    assert f"{TransitionType.FORCED}" == "TransitionType.FORCED"


def _params(fn: object) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]


def test_signatures_are_the_specifications() -> None:
    e = inspect.Parameter.empty
    assert _params(LifecycleManager.get_state) == [("self", e), ("agent_id", e), ("include_details", False)]
    assert _params(LifecycleManager.transition_state)[:7] == [
        ("self", e), ("agent_id", e), ("target_state", e), ("force", False), ("reason", ""), ("timeout_ms", 0),
        ("metadata", None)]
    assert _params(LifecycleManager.get_transition_history) == [
        ("self", e), ("agent_id", e), ("limit", 10), ("transition_type", None), ("start_time", None),
        ("end_time", None)]
    assert _params(LifecycleManager.watch_events)[:4] == [
        ("self", e), ("agent_id", None), ("states", None), ("transition_types", None)]
    assert _params(LifecycleManager.register_hook) == [
        ("self", e), ("hook_name", e), ("trigger_states", e), ("trigger_transitions", e), ("is_blocking", False),
        ("timeout_ms", 30000), ("config", None), ("agent_ids", None)]
    assert _params(LifecycleManager.register_agent) == [
        ("self", e), ("agent_id", e), ("metadata", None), ("labels", None), ("supervision_policy", None)]
    ev_params = _params(LifecycleEvent)[:9]
    assert [n for n, _ in ev_params] == ["event_id", "agent_id", "previous_state", "new_state", "transition_type",
                                         "timestamp", "initiated_by", "reason", "metadata"]
    assert [n for n, _ in _params(ErrorInfo)] == ["code", "message", "timestamp", "is_recoverable", "recovery_actions"]
    # The specification's constructors accept None for the collections.
    ev = LifecycleEvent("e", "a", LifecycleState.UNSPECIFIED, LifecycleState.INITIALIZED, TransitionType.NORMAL,
                        datetime.now(timezone.utc), "me", "why", None)
    assert ev.metadata == {}
    assert ErrorInfo(1, "m", datetime.now(timezone.utc), True, None).recovery_actions == []


def test_lifecycle(manager: LifecycleManager) -> None:
    reg = manager.register_agent("agent-001", metadata={"team": "a"}, labels={"env": "test"})
    assert reg.agent.state == LifecycleState.INITIALIZED
    assert reg.event is not None and reg.event.new_state == LifecycleState.INITIALIZED
    st = manager.get_state("agent-001", include_details=True)
    assert st["state"] == LifecycleState.INITIALIZED and st.state is LifecycleState.INITIALIZED
    assert st.labels == {"env": "test"} and st.metadata == {"team": "a"}
    assert st.created_at is not None and st.created_at.tzinfo is not None
    assert st.created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - st.created_at) < timedelta(minutes=1)

    r = manager.transition_state("agent-001", LifecycleState.ACTIVE, reason="start", timeout_ms=5000,
                                 metadata={"k": "v"})
    assert r["success"] is True and r.success
    assert (r["previous_state"], r["current_state"]) == (LifecycleState.INITIALIZED, LifecycleState.ACTIVE)
    assert r.get("error_message", "") == ""
    assert r.event is not None and r.event.reason == "start" and r.event.metadata == {"k": "v"}
    assert r.event.transition_type == TransitionType.NORMAL
    assert r.event.timestamp is not None and r.event.timestamp.tzinfo is not None
    assert "success" in r and r.get("nope", 7) == 7
    with pytest.raises(KeyError):
        r["nope"]

    # A refusal is an answer, exactly as on the wire.
    r = manager.transition_state("agent-001", LifecycleState.RECOVERING, reason="no")
    assert r["success"] is False
    assert r.refusal_reason == RefusalReason.INVALID_TRANSITION
    assert r.current_state == LifecycleState.ACTIVE
    assert "RECOVERING" in r["error_message"]
    assert r.allowed_next_states == [LifecycleState.PAUSED, LifecycleState.SUSPENDED, LifecycleState.SHUTTING_DOWN,
                                     LifecycleState.ERROR, LifecycleState.MAINTENANCE]

    # Preconditions and forced transitions.
    r = manager.transition_state("agent-001", LifecycleState.PAUSED, expected_state=LifecycleState.PAUSED)
    assert not r.success and r.refusal_reason == RefusalReason.PRECONDITION_FAILED
    r = manager.transition_state("agent-001", "UPGRADING", force=True, reason="upgrade")
    assert r.success and r.event is not None and r.event.transition_type == TransitionType.FORCED

    # Into ERROR with details.
    r = manager.transition_state("agent-001", LifecycleState.ERROR, reason="boom",
                                 error_info=ErrorInfo(code=42, message="disk", timestamp=None, is_recoverable=True))
    assert r.success
    st = manager.get_state("agent-001")
    assert st.error_info is not None and st.error_info.code == 42 and st.error_info.message == "disk"
    assert st.error_info.is_recoverable

    hist = manager.get_transition_history("agent-001")
    assert [e.new_state for e in hist] == [LifecycleState.INITIALIZED, LifecycleState.ACTIVE,
                                           LifecycleState.UPGRADING, LifecycleState.ERROR]
    assert [e.sequence for e in hist] == sorted(e.sequence for e in hist)
    assert manager.get_transition_history("agent-001", limit=2)[-1].new_state == LifecycleState.ACTIVE
    forced = manager.get_transition_history("agent-001", transition_type=TransitionType.FORCED)
    assert [e.new_state for e in forced] == [LifecycleState.UPGRADING]
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert manager.get_transition_history("agent-001", start_time=future) == []
    assert len(manager.get_transition_history("agent-001", end_time=future)) == 4


def test_history_paging(manager: LifecycleManager) -> None:
    manager.register_agent("p1")
    for _ in range(6):
        manager.transition_state("p1", LifecycleState.ACTIVE)
        manager.transition_state("p1", LifecycleState.PAUSED)
    page = manager.get_transition_history_page("p1", limit=5)
    assert len(page.events) == 5 and page.next_page_token
    page2 = manager.get_transition_history_page("p1", limit=5, page_token=page.next_page_token)
    assert page2.events[0].sequence > page.events[-1].sequence
    everything = list(manager.iter_transition_history("p1", page_size=5))
    assert len(everything) == 13
    assert [e.sequence for e in everything] == sorted({e.sequence for e in everything})


def test_agents_hooks_supervision(manager: LifecycleManager) -> None:
    for i in range(5):
        manager.register_agent(f"a-{i}", labels={"group": "even" if i % 2 == 0 else "odd"})
    manager.transition_state("a-1", LifecycleState.ACTIVE)
    page = manager.list_agents(page_size=2)
    assert [a.agent_id for a in page.agents] == ["a-0", "a-1"] and page.next_page_token
    assert [a.agent_id for a in manager.iter_agents(page_size=2)] == [f"a-{i}" for i in range(5)]
    assert [a.agent_id for a in manager.iter_agents(states=[LifecycleState.ACTIVE])] == ["a-1"]
    assert [a.agent_id for a in manager.iter_agents(label_selector={"group": "odd"})] == ["a-1", "a-3"]

    res = manager.register_hook("h1", [LifecycleState.ACTIVE], [TransitionType.NORMAL], config={"callback": "cb"})
    assert res["success"] and res.hook_id
    hooks = manager.list_hooks()
    assert [h.hook_id for h in hooks] == [res.hook_id]
    assert hooks[0].spec.hook_name == "h1" and hooks[0].spec.trigger_states == [LifecycleState.ACTIVE]
    assert hooks[0].spec.timeout_ms == 30000
    manager.unregister_hook(res.hook_id)
    assert manager.list_hooks() == []
    with pytest.raises(NotFoundError):
        manager.unregister_hook(res.hook_id)

    assert manager.heartbeat("a-0", "nobody") == ["nobody"]
    st = manager.set_supervision_policy("a-0", SupervisionPolicy(restart=RestartPolicy.NEVER))
    assert st.policy is not None and st.policy.restart == RestartPolicy.NEVER and not st.default_policy
    st = manager.set_supervision_policy("a-0", None)
    assert st.default_policy


def test_delete_agent(manager: LifecycleManager) -> None:
    manager.register_agent("d-1")
    with pytest.raises(hl.FailedPreconditionError):
        manager.delete_agent("d-1")
    manager.transition_state("d-1", LifecycleState.TERMINATED)
    ev = manager.delete_agent("d-1", reason="decommissioned")
    assert ev.new_state == LifecycleState.UNSPECIFIED and ev.previous_state == LifecycleState.TERMINATED
    assert ev.reason == "decommissioned"
    with pytest.raises(NotFoundError):
        manager.get_state("d-1")
    with pytest.raises(AlreadyExistsError):
        manager.register_agent("d-1")
    assert len(manager.get_transition_history("d-1", limit=10)) == 3


def test_errors(manager: LifecycleManager) -> None:
    with pytest.raises(NotFoundError) as e:
        manager.get_state("nobody")
    assert e.value.code == 5 and e.value.code_name == "NOT_FOUND" and "nobody" in e.value.message
    assert isinstance(e.value, LifecycleError)
    manager.register_agent("x")
    with pytest.raises(AlreadyExistsError):
        manager.register_agent("x")
    with pytest.raises(InvalidArgumentError) as ia:
        manager.register_agent("bad id!")
    assert "agent_id" in ia.value.message
    classes = {c.code: c for c in vars(hl).values() if isinstance(c, type) and issubclass(c, LifecycleError)
               and c is not LifecycleError and c is not hl.ForkedProcessError}
    assert sorted(classes) == list(range(1, 17))


def test_sqlite_and_close(tmp_path: object) -> None:
    d = str(tmp_path)
    with LifecycleManager(data_dir=d) as m:
        m.register_agent("s1")
        m.transition_state("s1", LifecycleState.ACTIVE)
    with LifecycleManager(data_dir=d, sqlite_sync="normal") as m:
        assert m.get_state("s1").state == LifecycleState.ACTIVE
        m.close()
        m.close()  # idempotent
        with pytest.raises(LifecycleError):
            m.get_state("s1")
    assert hl.handle_count() == 0 or hl.handle_count() >= 0


def test_bad_config() -> None:
    with pytest.raises(InvalidArgumentError):
        LifecycleManager(config={"nonsense": 1})
    with pytest.raises(InvalidArgumentError):
        LifecycleManager(store="sqlite")
