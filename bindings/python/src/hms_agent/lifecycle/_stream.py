"""Streams (watches) as iterators over the library's pull cursors."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from . import _ffi
from .errors import CancelledError, LifecycleError

T = TypeVar("T")

#: How long one blocking wait in the library lasts before Python gets control back (so a
#: Ctrl-C is delivered promptly while an iteration is blocked).
POLL_MS = 150
#: The most items taken from the library in one batch.
MAX_BATCH = 4096


def decode_batch(batch: bytes) -> list[Any]:
    """The JSON items of a batch, parsed in one json.loads call."""
    return json.loads(b"[" + b",".join(_ffi.split_batch(batch)) + b"]")  # type: ignore[no-any-return]


def json_items(decode: Callable[[dict[str, Any]], T]) -> Callable[[bytes], list[T]]:
    """A batch decoder for a JSON stream whose items ``decode`` turns into objects."""

    def items(batch: bytes) -> list[T]:
        return [decode(d) for d in decode_batch(batch)]

    return items


class Stream(Generic[T]):
    """An iterator over a watch stream.

    Iterating blocks until the next item comes; ``close()`` (or leaving a ``with`` block)
    ends it, and a closed stream's iteration stops. A stream that the core ends (manager
    closed, server gone, cut off for falling behind) raises the matching
    :class:`~hms_agent.lifecycle.LifecycleError`, whose ``resume_sequence`` is where to
    watch again from; ``resume_sequence`` of the stream itself says the same at any time.
    """

    def __init__(self, handle: int, decode: Callable[[bytes], list[T]], from_sequence: int = 0) -> None:
        self._lib = _ffi.lib()
        self._h = handle
        self._decode = decode
        self._buf: deque[T] = deque()
        self._closed = False
        self._ended: LifecycleError | None = None
        self._next_sequence = from_sequence

    @property
    def handle(self) -> int:
        """The library's stream handle."""
        return self._h

    @property
    def resume_sequence(self) -> int:
        """The from_sequence that resumes after the last item returned (0: from now on)."""
        return self._next_sequence

    @property
    def closed(self) -> bool:
        """Whether the stream was closed or has ended."""
        return self._closed or self._ended is not None

    def _fill(self, batch: bytes) -> None:
        self._buf.extend(self._decode(batch))

    def _end(self, e: LifecycleError) -> None:
        if e.resume_sequence:
            self._next_sequence = e.resume_sequence
        else:
            e.resume_sequence = self._next_sequence
        self._ended = e
        self._release()

    def _release(self) -> None:
        try:
            self._lib.stream_close(self._h)
        except LifecycleError:
            pass

    def _take(self) -> T:
        item = self._buf.popleft()
        seq = getattr(item, "sequence", 0)
        if seq:
            self._next_sequence = seq + 1
        return item

    def __iter__(self) -> Stream[T]:
        return self

    def __next__(self) -> T:
        buf = self._buf
        if buf:
            # _take inlined: this is the per-item path of every watch.
            item = buf.popleft()
            seq = getattr(item, "sequence", 0)
            if seq:
                self._next_sequence = seq + 1
            return item
        while True:
            if self._closed:
                raise StopIteration
            if self._ended is not None:
                raise self._ended
            try:
                batch = self._lib.next(self._h, POLL_MS, MAX_BATCH)
            except CancelledError:
                if self._closed:
                    raise StopIteration from None
                raise
            except LifecycleError as e:
                self._end(e)
                raise
            if batch:
                self._fill(batch)
                return self._take()

    def next_batch(self, timeout_ms: int = -1, max_items: int = MAX_BATCH) -> list[T]:
        """Up to ``max_items`` items, waiting up to ``timeout_ms`` (negative: until one comes).

        Returns an empty list on timeout or once the stream was closed.
        """
        if self._buf:
            out = [self._take() for _ in range(min(len(self._buf), max_items))]
            return out
        if self._closed:
            return []
        if self._ended is not None:
            raise self._ended
        if timeout_ms < 0:
            try:
                return [next(self)]
            except StopIteration:
                return []
        try:
            batch = self._lib.next(self._h, timeout_ms, max_items)
        except CancelledError:
            if self._closed:
                return []
            raise
        except LifecycleError as e:
            self._end(e)
            raise
        if not batch:
            return []
        self._fill(batch)
        return [self._take() for _ in range(len(self._buf))]

    def close(self) -> None:
        """Close the stream (idempotent); a blocked iteration in another thread stops."""
        if self._closed:
            return
        self._closed = True
        self._release()

    def fileno(self) -> int:
        """The readiness file descriptor (readable while items wait or the stream ended)."""
        return self._lib.stream_fd(self._h)

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed and self._ended is None:
                self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


EventStream = Stream
