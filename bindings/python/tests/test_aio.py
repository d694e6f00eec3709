"""The asyncio API: async for over the readiness descriptor, async hook callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from hms_agent.lifecycle import HookInvocation, LifecycleEvent, LifecycleState, RefusalReason, Veto
from hms_agent.lifecycle.aio import AsyncLifecycleManager

from .conftest import Server


@pytest.fixture(params=["embedded", "remote"])
def endpoint(request: pytest.FixtureRequest) -> str | None:
    if request.param == "embedded":
        return None
    start: Callable[..., Server] = request.getfixturevalue("start_server")
    return start().url


def test_async_watch_and_hooks(endpoint: str | None) -> None:
    async def main() -> None:
        async with AsyncLifecycleManager(endpoint) as m:
            await m.register_agent("aio-1")
            calls: list[str] = []

            async def gate(inv: HookInvocation) -> Veto | None:
                await asyncio.sleep(0.01)
                assert inv.event is not None
                calls.append(inv.event.reason)
                return Veto("async no") if inv.event.reason == "veto me" else None

            m.handle_callback("agate", gate)
            r = await m.register_hook("agate", [LifecycleState.ACTIVE], [], is_blocking=True, timeout_ms=5000,
                                      config={"callback": "agate"})
            assert r["success"]
            stream = m.watch_events(agent_id="aio-1")
            got: list[LifecycleEvent] = []

            async def consume() -> None:
                async for ev in stream:
                    got.append(ev)
                    if len(got) == 2:
                        break

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.05)
            res = await m.transition_state("aio-1", LifecycleState.ACTIVE, reason="veto me")
            assert not res.success and res.refusal_reason == RefusalReason.HOOK_VETOED
            assert "async no" in res.error_message
            res = await m.transition_state("aio-1", LifecycleState.ACTIVE, reason="ok")
            assert res.success
            await m.transition_state("aio-1", LifecycleState.PAUSED, reason="pause")
            await asyncio.wait_for(task, 10)
            assert [e.new_state for e in got] == [LifecycleState.ACTIVE, LifecycleState.PAUSED]
            assert calls == ["veto me", "ok"]
            assert stream.resume_sequence == got[-1].sequence + 1

            # A pending async iteration ends when the stream is closed.
            s2 = m.watch_events()
            waiter = asyncio.create_task(s2.__anext__())
            await asyncio.sleep(0.05)
            await s2.aclose()
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(waiter, 5)
            stream.close()
            assert (await m.get_state("aio-1")).state == LifecycleState.PAUSED

    asyncio.run(main())
