"""The asyncio API: the same manager with coroutines, ``async for`` watches over the
stream's readiness file descriptor (no polling, no thread per stream) and async hook
callbacks run on the event loop.

>>> async with AsyncLifecycleManager() as manager:
...     await manager.register_agent("agent-001")
...     async for event in manager.watch_events(agent_id="agent-001"):
...         print(event.new_state)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

from . import _ffi, _pb
from ._hooks import error_reply, open_worker, reply_for
from ._stream import MAX_BATCH, decode_batch
from ._types import (
    AgentPage,
    ErrorInfo,
    GetStateResponse,
    Hook,
    HookInvocation,
    LifecycleEvent,
    LifecycleState,
    RegisterAgentResponse,
    RegisterHookResponse,
    SupervisionPolicy,
    SupervisionStatus,
    TransitionResponse,
    TransitionType,
    invocation_in,
)
from .errors import AlreadyExistsError, CancelledError, LifecycleError, NotFoundError
from .manager import _WATCH, LifecycleManager

__all__ = ["AsyncLifecycleManager", "AsyncStream", "AsyncHookFunction"]

T = TypeVar("T")
R = TypeVar("R")

AsyncHookFunction = Callable[[HookInvocation], Any]


class AsyncStream(Generic[T]):
    """An async iterator over a watch stream, woken by the library's readiness descriptor."""

    def __init__(self, handle: int, decode: Callable[[bytes], list[T]], from_sequence: int = 0) -> None:
        self._lib = _ffi.lib()
        self._h = handle
        self._fd = self._lib.stream_fd(handle)
        self._decode = decode
        self._buf: deque[T] = deque()
        self._closed = False
        self._ended: LifecycleError | None = None
        self._next_sequence = from_sequence
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def resume_sequence(self) -> int:
        """The from_sequence that resumes after the last item returned."""
        return self._next_sequence

    def __aiter__(self) -> AsyncStream[T]:
        return self

    def _take(self) -> T:
        item = self._buf.popleft()
        seq = getattr(item, "sequence", 0)
        if seq:
            self._next_sequence = seq + 1
        return item

    def _poll(self) -> bool:
        try:
            batch = self._lib.next(self._h, 0, MAX_BATCH)
        except CancelledError:
            if self._closed:
                return False
            raise
        except LifecycleError as e:
            if e.resume_sequence:
                self._next_sequence = e.resume_sequence
            else:
                e.resume_sequence = self._next_sequence
            self._ended = e
            self._release()
            raise
        if batch:
            self._buf.extend(self._decode(batch))
            return True
        return False

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        self._waiter = fut
        self._loop = loop
        loop.add_reader(self._fd, ready)
        try:
            await fut
        finally:
            self._waiter = None
            if not self._closed:
                loop.remove_reader(self._fd)

    async def __anext__(self) -> T:
        while not self._buf:
            if self._closed:
                raise StopAsyncIteration
            if self._ended is not None:
                raise self._ended
            if self._poll():
                break
            if self._closed:
                raise StopAsyncIteration
            await self._wait()
        return self._take()

    def _release(self) -> None:
        if self._loop is not None and self._waiter is not None:
            self._loop.remove_reader(self._fd)
        try:
            self._lib.stream_close(self._h)
        except LifecycleError:
            pass

    async def aclose(self) -> None:
        """Close the stream; a pending ``__anext__`` ends the iteration."""
        self.close()

    def close(self) -> None:
        """Close the stream (idempotent)."""
        if self._closed:
            return
        self._closed = True
        w = self._waiter
        self._release()
        if w is not None and not w.done():
            w.set_result(None)

    async def __aenter__(self) -> AsyncStream[T]:
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class _AsyncWorker:
    """Serves a callback on the event loop: readable descriptor → take invocations → run fn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, manager_handle: int, name: str, fn: AsyncHookFunction) -> None:
        self._lib = _ffi.lib()
        self._loop = loop
        self._fn = fn
        self._h = open_worker(manager_handle, [name])
        self._fd = self._lib.stream_fd(self._h)
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        loop.add_reader(self._fd, self._ready)

    def _ready(self) -> None:
        try:
            batch = self._lib.next(self._h, 0, 0)
        except LifecycleError:
            self.close()
            return
        if not batch:
            return
        for d in decode_batch(batch):
            task = self._loop.create_task(self._serve(invocation_in(d)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, inv: HookInvocation) -> None:
        try:
            if inspect.iscoroutinefunction(self._fn):
                answer = await self._fn(inv)
            else:
                answer = await asyncio.to_thread(self._fn, inv)
                if inspect.isawaitable(answer):
                    answer = await answer
            reply = reply_for(inv.invocation_id, answer)
        except Exception as e:  # noqa: BLE001 - any failure is the hook's error
            reply = error_reply(inv.invocation_id, e)
        if self._closed:
            return
        try:
            self._lib.hook_complete(self._h, reply)
        except (NotFoundError, LifecycleError):
            pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        for t in list(self._tasks):
            t.cancel()
        try:
            self._lib.stream_close(self._h)
        except LifecycleError:
            pass


class AsyncLifecycleManager:
    """:class:`~hms_agent.lifecycle.LifecycleManager` for asyncio: the same arguments, the
    same methods as coroutines. Unary calls run on the default executor (the library call
    releases the GIL); watches and hook workers wait on the library's readiness descriptors.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sync = LifecycleManager(*args, **kwargs)
        self._workers: dict[str, _AsyncWorker] = {}

    async def _run(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))

    async def get_state(self, agent_id: str, include_details: bool = False) -> GetStateResponse:
        """See :meth:`LifecycleManager.get_state`."""
        return await self._run(self.sync.get_state, agent_id, include_details)

    async def transition_state(
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
        """See :meth:`LifecycleManager.transition_state`."""
        return await self._run(self.sync.transition_state, agent_id, target_state, force, reason, timeout_ms,
                               metadata, expected_state=expected_state, expected_revision=expected_revision,
                               error_info=error_info)

    async def get_transition_history(
        self,
        agent_id: str,
        limit: int = 10,
        transition_type: TransitionType | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> list[LifecycleEvent]:
        """See :meth:`LifecycleManager.get_transition_history`."""
        return await self._run(self.sync.get_transition_history, agent_id, limit, transition_type, start_time,
                               end_time)

    def watch_events(
        self,
        agent_id: str | None = None,
        states: Iterable[LifecycleState | int | str] | None = None,
        transition_types: Iterable[TransitionType | int | str] | None = None,
        *,
        from_sequence: int = 0,
        bookmark_interval_ms: int = 0,
    ) -> AsyncStream[LifecycleEvent]:
        """An async iterator of events (``async for``); see :meth:`LifecycleManager.watch_events`."""
        req = LifecycleManager._watch_request(agent_id, states, transition_types, from_sequence, bookmark_interval_ms)
        return AsyncStream(_ffi.lib().watch(self.sync.handle, _WATCH, req, _ffi.FORMAT_PROTOBUF), _pb.events,
                           from_sequence)

    async def register_hook(
        self,
        hook_name: str,
        trigger_states: Iterable[LifecycleState | int | str] | None,
        trigger_transitions: Iterable[TransitionType | int | str] | None,
        is_blocking: bool = False,
        timeout_ms: int = 30000,
        config: Mapping[str, str] | None = None,
        agent_ids: Iterable[str] | None = None,
    ) -> RegisterHookResponse:
        """See :meth:`LifecycleManager.register_hook`."""
        return await self._run(self.sync.register_hook, hook_name, trigger_states, trigger_transitions, is_blocking,
                               timeout_ms, config, agent_ids)

    async def register_agent(
        self,
        agent_id: str,
        metadata: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        supervision_policy: SupervisionPolicy | None = None,
    ) -> RegisterAgentResponse:
        """See :meth:`LifecycleManager.register_agent`."""
        return await self._run(self.sync.register_agent, agent_id, metadata, labels, supervision_policy)

    async def list_agents(self, *args: Any, **kwargs: Any) -> AgentPage:
        """See :meth:`LifecycleManager.list_agents`."""
        return await self._run(self.sync.list_agents, *args, **kwargs)

    async def unregister_hook(self, hook_id: str) -> None:
        """See :meth:`LifecycleManager.unregister_hook`."""
        await self._run(self.sync.unregister_hook, hook_id)

    async def list_hooks(self) -> list[Hook]:
        """See :meth:`LifecycleManager.list_hooks`."""
        return await self._run(self.sync.list_hooks)

    async def heartbeat(self, *agent_ids: str) -> list[str]:
        """See :meth:`LifecycleManager.heartbeat`."""
        return await self._run(self.sync.heartbeat, *agent_ids)

    async def delete_agent(self, agent_id: str, reason: str = "") -> LifecycleEvent:
        """See :meth:`LifecycleManager.delete_agent`."""
        return await self._run(self.sync.delete_agent, agent_id, reason)

    async def set_supervision_policy(self, agent_id: str, policy: SupervisionPolicy | None = None) -> SupervisionStatus:
        """See :meth:`LifecycleManager.set_supervision_policy`."""
        return await self._run(self.sync.set_supervision_policy, agent_id, policy)

    def handle_callback(
        self, name: str, fn: Callable[[HookInvocation], Awaitable[Any]] | Callable[[HookInvocation], Any]
    ) -> None:
        """Serve callback ``name`` with ``fn`` on the running event loop.

        An ``async def`` function runs as a task on the loop; a plain function on the default
        executor. Answers as in :meth:`LifecycleManager.handle_callback`.
        """
        if name in self._workers:
            raise AlreadyExistsError(f"callback {name!r} is already served by this manager")
        self._workers[name] = _AsyncWorker(asyncio.get_running_loop(), self.sync.handle, name, fn)

    def remove_callback(self, name: str) -> None:
        """Stop serving a callback."""
        w = self._workers.pop(name, None)
        if w is not None:
            w.close()

    async def close(self) -> None:
        """Close the workers and the manager."""
        for w in list(self._workers.values()):
            w.close()
        self._workers.clear()
        await self._run(self.sync.close)

    async def __aenter__(self) -> AsyncLifecycleManager:
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
