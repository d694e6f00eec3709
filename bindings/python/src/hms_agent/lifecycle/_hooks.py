"""Hook callbacks served by Python functions: a worker pulls invocations from the library
on a thread the binding owns and completes each with the function's answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from . import _ffi
from ._stream import POLL_MS, decode_batch
from ._types import HookInvocation, Veto, invocation_in
from .errors import LifecycleError, NotFoundError

#: What a callback returns: None or True allows, False or Veto(reason) vetoes.
HookAnswer = bool | Veto | None
HookFunction = Callable[[HookInvocation], HookAnswer]


def reply_for(invocation_id: str, answer: object) -> bytes:
    """The HookWorkerReply (JSON) for a callback's answer."""
    reply: dict[str, Any] = {"invocationId": invocation_id}
    if answer is None or answer is True:
        pass
    elif answer is False:
        reply["veto"] = True
    elif isinstance(answer, Veto):
        reply["veto"] = True
        reply["reason"] = answer.reason
    else:
        reply["error"] = f"the hook callback returned {answer!r}: return None, True, False or Veto(reason)"
    return json.dumps(reply).encode()


def error_reply(invocation_id: str, exc: BaseException) -> bytes:
    """The HookWorkerReply of a callback that raised: a failure, under the hook's policy."""
    msg = f"{type(exc).__name__}: {exc}"
    return json.dumps({"invocationId": invocation_id, "error": msg}).encode()


def open_worker(manager_handle: int, callbacks: list[str]) -> int:
    """Open a library hook worker serving ``callbacks``."""
    return _ffi.lib().hooks_open(manager_handle, json.dumps({"callbacks": callbacks}).encode())


class CallbackWorker:
    """Serves one callback name with a Python function on its own thread."""

    def __init__(self, manager_handle: int, name: str, fn: HookFunction) -> None:
        self.name = name
        self.fn = fn
        self._lib = _ffi.lib()
        self._h = open_worker(manager_handle, [name])
        self._closed = False
        self.served = 0
        self._thread = threading.Thread(target=self._run, name=f"hms-hook-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        lib = self._lib
        while not self._closed:
            try:
                batch = lib.next(self._h, POLL_MS, 0)
            except LifecycleError:
                return
            if not batch:
                continue
            for d in decode_batch(batch):
                inv = invocation_in(d)
                try:
                    reply = reply_for(inv.invocation_id, self.fn(inv))
                except BaseException as e:  # noqa: BLE001 - any failure is the hook's error
                    reply = error_reply(inv.invocation_id, e)
                self.served += 1
                try:
                    lib.hook_complete(self._h, reply)
                except NotFoundError:
                    pass  # past its deadline: the hook's failure policy already applied
                except LifecycleError:
                    return

    def close(self) -> None:
        """Stop serving: pending invocations fail, the thread ends."""
        if self._closed:
            return
        self._closed = True
        try:
            self._lib.stream_close(self._h)
        except LifecycleError:
            pass
        if threading.current_thread() is not self._thread:
            self._thread.join()
