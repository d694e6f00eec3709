"""LifecycleManager(store="postgres://…") against a real PostgreSQL: a throw-away cluster the
session starts (conftest.postgres_dsn) and removes."""

from __future__ import annotations

import threading

import pytest

from hms_agent.lifecycle import (
    AlreadyExistsError,
    LifecycleManager,
    LifecycleState,
    NotFoundError,
    TransitionType,
)


def test_postgres_store_persists_across_managers(postgres_dsn: str) -> None:
    with LifecycleManager(store=postgres_dsn) as m:
        m.register_agent("pg-1", labels={"pool": "blue"})
        with pytest.raises(AlreadyExistsError):
            m.register_agent("pg-1")
        with m.watch_events(agent_id="pg-1") as stream:
            r = m.transition_state("pg-1", LifecycleState.ACTIVE, reason="start")
            assert r["success"] and r.current_state == LifecycleState.ACTIVE
            ev = next(stream)
            assert ev.new_state == LifecycleState.ACTIVE and ev.reason == "start"
        refused = m.transition_state("pg-1", LifecycleState.RECOVERING)
        assert not refused.success and LifecycleState.PAUSED in refused.allowed_next_states
        assert m.transition_state("pg-1", LifecycleState.MAINTENANCE, force=True, reason="patch").success
        last_seq = m.get_state("pg-1").last_sequence
    # A second manager on the same database sees everything the first stored.
    with LifecycleManager(store=postgres_dsn) as m2:
        st = m2.get_state("pg-1", include_details=True)
        assert st.state == LifecycleState.MAINTENANCE and st.previous_state == LifecycleState.ACTIVE
        assert st.labels == {"pool": "blue"} and st.last_sequence == last_seq
        hist = m2.get_transition_history("pg-1", limit=100)
        assert [(e.new_state, e.transition_type) for e in hist] == [
            (LifecycleState.INITIALIZED, TransitionType.NORMAL),
            (LifecycleState.ACTIVE, TransitionType.NORMAL),
            (LifecycleState.MAINTENANCE, TransitionType.MAINTENANCE),  # the core decides the type
        ]
        assert all(e.timestamp is not None and e.timestamp.tzinfo is not None for e in hist)
        # Resume a watch from a stored sequence: the stored events first.
        with m2.watch_events(agent_id="pg-1", from_sequence=hist[1].sequence) as stream:
            assert [next(stream).sequence for _ in range(2)] == [hist[1].sequence, hist[2].sequence]
        with pytest.raises(NotFoundError):
            m2.get_state("pg-missing")


def test_postgres_threads(postgres_dsn: str) -> None:
    # Python threads in parallel on one manager (the GIL is released during library calls).
    with LifecycleManager(store=postgres_dsn) as m:
        ids = [f"pg-t-{i}" for i in range(8)]
        for a in ids:
            m.register_agent(a)
        errors: list[BaseException] = []

        def work(a: str) -> None:
            try:
                for k in range(20):
                    r = m.transition_state(a, LifecycleState.ACTIVE if k % 2 == 0 else LifecycleState.PAUSED)
                    assert r.success, r.error_message
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(a,)) for a in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert {m.get_state(a).state for a in ids} == {LifecycleState.PAUSED}
        assert all(m.get_state(a).revision == 21 for a in ids)
