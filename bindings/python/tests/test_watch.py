"""Watch: iterate, resume from a sequence, close from another thread, end with a resume
point, Ctrl-C, and Python hook callbacks vetoing (embedded and remote)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hms_agent.lifecycle import (
    HookInvocation,
    LifecycleManager,
    LifecycleState,
    RefusalReason,
    TransitionType,
    UnavailableError,
    Veto,
)
from hms_agent.lifecycle.errors import LifecycleError


def test_watch_filter_and_resume(manager: LifecycleManager) -> None:
    manager.register_agent("w1")
    manager.register_agent("w2")
    with manager.watch_events(agent_id="w1", states=[LifecycleState.ACTIVE, LifecycleState.ERROR]) as stream:
        manager.transition_state("w2", LifecycleState.ACTIVE)
        manager.transition_state("w1", LifecycleState.ACTIVE, reason="go")
        manager.transition_state("w1", LifecycleState.PAUSED)
        manager.transition_state("w1", LifecycleState.ERROR, reason="bad")
        first = next(stream)
        second = next(stream)
    assert (first.agent_id, first.new_state, first.reason) == ("w1", LifecycleState.ACTIVE, "go")
    assert second.new_state == LifecycleState.ERROR and second.transition_type == TransitionType.ERROR_TRIGGERED
    assert stream.resume_sequence == second.sequence + 1
    with pytest.raises(StopIteration):
        next(stream)

    # Resume from the first event's sequence: replay from history, no gap, no duplicate.
    with manager.watch_events(agent_id="w1", from_sequence=first.sequence) as again:
        replay = [next(again) for _ in range(3)]
        assert [e.new_state for e in replay] == [LifecycleState.ACTIVE, LifecycleState.PAUSED, LifecycleState.ERROR]
        manager.transition_state("w1", LifecycleState.RECOVERING)
        assert next(again).new_state == LifecycleState.RECOVERING
        assert again.next_batch(timeout_ms=100) == []


def test_watch_close_from_another_thread(manager: LifecycleManager) -> None:
    stream = manager.watch_events()
    got: list[object] = []

    def consume() -> None:
        got.extend(stream)

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.3)
    start = time.monotonic()
    stream.close()
    t.join(5)
    assert not t.is_alive() and time.monotonic() - start < 2 and got == []


def test_watch_ends_with_resume_sequence_when_manager_closes() -> None:
    m = LifecycleManager()
    m.register_agent("e1")
    stream = m.watch_events(from_sequence=1)
    assert next(stream).agent_id == "e1"
    m.close()
    with pytest.raises(UnavailableError) as e:
        next(stream)
    assert e.value.resume_sequence == 2 and stream.resume_sequence == 2


def test_watch_server_stop_gives_resume_sequence(start_server) -> None:  # type: ignore[no-untyped-def]
    srv = start_server()
    with LifecycleManager(endpoint=srv.url) as m:
        m.register_agent("r1")
        stream = m.watch_events(from_sequence=1)
        assert next(stream).agent_id == "r1"
        srv.stop()
        with pytest.raises(LifecycleError) as e:
            next(stream)
        assert e.value.code_name == "UNAVAILABLE"
        assert stream.resume_sequence == 2


def test_ctrl_c_interrupts_a_blocked_watch(tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(
        "import sys\n"
        "from hms_agent.lifecycle import LifecycleManager\n"
        "m = LifecycleManager()\n"
        "print('watching', flush=True)\n"
        "try:\n"
        "    for e in m.watch_events():\n"
        "        pass\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(3)\n"
    )
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "watching"
    time.sleep(0.5)
    start = time.monotonic()
    p.send_signal(signal.SIGINT)
    rc = p.wait(10)
    elapsed = time.monotonic() - start
    assert p.stdout.read().strip() == "interrupted"
    p.stdout.close()
    assert rc == 3 and elapsed < 2, (rc, elapsed)


def test_python_hooks_veto_allow_fail(manager: LifecycleManager) -> None:
    seen: list[HookInvocation] = []

    def gate(inv: HookInvocation) -> Veto | None:
        seen.append(inv)
        assert inv.event is not None
        if inv.event.reason == "forbidden":
            return Veto("not during business hours")
        if inv.event.reason == "crash":
            raise RuntimeError("gate exploded")
        return None

    manager.handle_callback("gate", gate)
    res = manager.register_hook("gate-hook", [LifecycleState.ACTIVE], [], is_blocking=True, timeout_ms=5000,
                                config={"callback": "gate"})
    assert res.success
    manager.register_agent("h1")
    r = manager.transition_state("h1", LifecycleState.ACTIVE, reason="forbidden")
    assert not r.success and r.refusal_reason == RefusalReason.HOOK_VETOED
    assert "not during business hours" in r.error_message
    assert r.hook_outcomes[0].hook_name == "gate-hook"
    r = manager.transition_state("h1", LifecycleState.ACTIVE, reason="crash")
    assert not r.success and r.refusal_reason == RefusalReason.HOOK_FAILED
    assert "gate exploded" in r.error_message
    r = manager.transition_state("h1", LifecycleState.ACTIVE, reason="fine")
    assert r.success
    assert len(seen) == 3
    inv = seen[-1]
    assert inv.callback == "gate" and inv.blocking and inv.idempotency_key and inv.deadline is not None
    assert inv.deadline.tzinfo is not None
    assert inv.event is not None and inv.event.agent_id == "h1" and inv.event.new_state == LifecycleState.ACTIVE
    manager.remove_callback("gate")
    # Nobody serves the callback now: the hook fails (failure_policy fail) once its timeout is short.
    hooks = manager.list_hooks()
    assert hooks[0].vetoed == 1 and hooks[0].failed == 1 and hooks[0].allowed == 1


def test_fork_child_gets_a_clear_error() -> None:
    m = LifecycleManager()
    m.register_agent("f1")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never enter the Go runtime
        os.close(r)
        try:
            m.get_state("f1")
            msg = b"no error"
        except Exception as e:  # noqa: BLE001
            msg = f"{type(e).__name__}|{e}".encode()
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    name, _, text = data.decode().partition("|")
    assert name == "ForkedProcessError" and "spawn" in text
    assert m.get_state("f1").state == LifecycleState.INITIALIZED  # the parent is fine
    m.close()
