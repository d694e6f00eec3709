"""The C library (capi/hms_lifecycle.h) through ctypes: loaded lazily, once per process.

ctypes releases the GIL for the duration of every call into a CDLL, so Python threads run
library calls in parallel. Every buffer the library returns is copied and freed here; users
never free anything.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

from .errors import ForkedProcessError, LibraryError, error_for

ABI_VERSION = 1
FORMAT_PROTOBUF = 0
FORMAT_JSON = 1
FORMAT_CBOR = 2

_u8p = ctypes.POINTER(ctypes.c_uint8)


class Status(ctypes.Structure):
    """hms_status."""

    _fields_ = [
        ("code", ctypes.c_int32),
        ("message", ctypes.c_void_p),
        ("resume_sequence", ctypes.c_uint64),
    ]


_FORK_MESSAGE = (
    "this process was forked after the HMS library was loaded, and the Go runtime inside it "
    "does not survive fork(): create the LifecycleManager in the child instead, or start "
    "children with multiprocessing's 'spawn' or 'forkserver' start method"
)

_forked = False


def _after_fork_in_child() -> None:
    global _forked
    if _lib is not None:
        _forked = True


def library_path() -> str:
    """Where the library is: $HMS_LIB, else the copy bundled inside the package."""
    env = os.environ.get("HMS_LIB")
    if env:
        return env
    return str(Path(__file__).resolve().parent / "_lib" / "libhms_lifecycle.so")


class _Outs:
    """A thread's out-parameters for hms_call and hms_next, made once and reused: a call is
    synchronous on its thread, and the answer is copied out before the thread's next call."""

    __slots__ = ("n", "out", "rn", "rout", "rst", "st")

    def __init__(self) -> None:
        self.out = ctypes.c_void_p()
        self.n = ctypes.c_size_t()
        self.st = Status()
        self.rout = ctypes.byref(self.out)
        self.rn = ctypes.byref(self.n)
        self.rst = ctypes.byref(self.st)


class Library:
    """The loaded library with argument types declared once."""

    def __init__(self, path: str) -> None:
        try:
            dll = ctypes.CDLL(path)
        except OSError as e:
            raise LibraryError(
                f"cannot load the HMS lifecycle library {path}: {e} "
                "(reinstall hms-agent-lifecycle, or set HMS_LIB to libhms_lifecycle.so)"
            ) from e
        self.path = path
        self.dll = dll
        dll.hms_abi_version.argtypes = []
        dll.hms_abi_version.restype = ctypes.c_uint32
        version = int(dll.hms_abi_version())
        if version != ABI_VERSION:
            raise LibraryError(
                f"{path} has ABI version {version}; this binding needs version {ABI_VERSION}"
            )
        sp = ctypes.POINTER(Status)
        size = ctypes.c_size_t
        u64 = ctypes.c_uint64
        i32 = ctypes.c_int32
        dll.hms_free.argtypes = [ctypes.c_void_p]
        dll.hms_free.restype = None
        # hms_free is C free(): called through PyDLL it keeps the GIL. Through CDLL every call
        # would release and retake it, a second hand-off per library call that, with many
        # threads returning from the library at once (SQLite group commit), puts the calling
        # thread at the back of the GIL queue again before it can return.
        free = ctypes.PyDLL(path).hms_free
        free.argtypes = [ctypes.c_void_p]
        free.restype = None
        dll.hms_handle_count.argtypes = []
        dll.hms_handle_count.restype = ctypes.c_int64
        self._specs = {
            "hms_open": [ctypes.c_char_p, size, ctypes.POINTER(u64), sp],
            "hms_close": [u64, sp],
            "hms_call": [u64, ctypes.c_char_p, i32, ctypes.c_char_p, size,
                         ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(size), sp],
            "hms_watch": [u64, ctypes.c_char_p, i32, ctypes.c_char_p, size, ctypes.POINTER(u64), sp],
            "hms_hooks_open": [u64, i32, ctypes.c_char_p, size, ctypes.POINTER(u64), sp],
            "hms_hook_complete": [u64, ctypes.c_char_p, size, sp],
            "hms_next": [u64, i32, i32, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(size), sp],
            "hms_stream_fd": [u64, ctypes.POINTER(i32), sp],
            "hms_stream_close": [u64, sp],
            "hms_convert": [ctypes.c_char_p, i32, ctypes.c_char_p, size, i32,
                            ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(size), sp],
        }
        for name, args in self._specs.items():
            fn = getattr(dll, name)
            fn.argtypes = args
            fn.restype = ctypes.c_int32
        self._call = dll.hms_call
        self._tls = threading.local()
        self._next = dll.hms_next
        self._free = free

    # -- helpers ---------------------------------------------------------------------------

    def _raise(self, st: Status) -> None:
        message = ""
        if st.message:
            message = ctypes.string_at(st.message).decode("utf-8", "replace")
            self._free(st.message)
            st.message = None  # the status may be a thread's reused one
        raise error_for(int(st.code), message, int(st.resume_sequence))

    def _take(self, ptr: ctypes.c_void_p, n: ctypes.c_size_t) -> bytes:
        if not ptr.value:
            return b""
        data = ctypes.string_at(ptr.value, n.value)
        self._free(ptr.value)
        return data

    # -- the ABI ---------------------------------------------------------------------------

    def open(self, config: bytes) -> int:
        check_fork()
        h = ctypes.c_uint64()
        st = Status()
        if self.dll.hms_open(config, len(config), ctypes.byref(h), ctypes.byref(st)):
            self._raise(st)
        return int(h.value)

    def close(self, handle: int) -> None:
        if _forked:
            return
        st = Status()
        if self.dll.hms_close(handle, ctypes.byref(st)):
            self._raise(st)

    def _outs(self) -> _Outs:
        try:
            return self._tls.outs  # type: ignore[no-any-return]
        except AttributeError:
            o = self._tls.outs = _Outs()
            return o

    def call(self, handle: int, method: bytes, req: bytes, fmt: int = FORMAT_JSON) -> bytes:
        if _forked:
            raise ForkedProcessError(_FORK_MESSAGE)
        try:
            o = self._tls.outs
        except AttributeError:
            o = self._outs()
        if self._call(handle, method, fmt, req, len(req), o.rout, o.rn, o.rst):
            self._raise(o.st)
        data = self._take(o.out, o.n)
        o.out.value = None  # never a freed pointer left for a call that does not set it
        return data

    def watch(self, handle: int, method: bytes, req: bytes, fmt: int = FORMAT_JSON) -> int:
        check_fork()
        s = ctypes.c_uint64()
        st = Status()
        if self.dll.hms_watch(handle, method, fmt, req, len(req), ctypes.byref(s), ctypes.byref(st)):
            self._raise(st)
        return int(s.value)

    def hooks_open(self, handle: int, hello: bytes, fmt: int = FORMAT_JSON) -> int:
        check_fork()
        w = ctypes.c_uint64()
        st = Status()
        if self.dll.hms_hooks_open(handle, fmt, hello, len(hello), ctypes.byref(w), ctypes.byref(st)):
            self._raise(st)
        return int(w.value)

    def hook_complete(self, worker: int, reply: bytes) -> None:
        check_fork()
        st = Status()
        if self.dll.hms_hook_complete(worker, reply, len(reply), ctypes.byref(st)):
            self._raise(st)

    def next(self, stream: int, timeout_ms: int, max_items: int = 0) -> bytes:
        """A batch (b"" on timeout); raises the stream's end as a LifecycleError."""
        if _forked:
            raise ForkedProcessError(_FORK_MESSAGE)
        try:
            o = self._tls.outs
        except AttributeError:
            o = self._outs()
        if self._next(stream, timeout_ms, max_items, o.rout, o.rn, o.rst):
            self._raise(o.st)
        data = self._take(o.out, o.n)
        o.out.value = None  # never a freed pointer left for a call that does not set it
        return data

    def stream_fd(self, stream: int) -> int:
        check_fork()
        fd = ctypes.c_int32()
        st = Status()
        if self.dll.hms_stream_fd(stream, ctypes.byref(fd), ctypes.byref(st)):
            self._raise(st)
        return int(fd.value)

    def stream_close(self, stream: int) -> None:
        if _forked:
            return
        st = Status()
        if self.dll.hms_stream_close(stream, ctypes.byref(st)):
            self._raise(st)

    def convert(self, message: str, src: int, data: bytes, dst: int) -> bytes:
        check_fork()
        out = ctypes.c_void_p()
        n = ctypes.c_size_t()
        st = Status()
        if self.dll.hms_convert(message.encode(), src, data, len(data), dst, ctypes.byref(out), ctypes.byref(n), ctypes.byref(st)):
            self._raise(st)
        return self._take(out, n)

    def handle_count(self) -> int:
        check_fork()
        return int(self.dll.hms_handle_count())


_lib: Library | None = None
_lock = threading.Lock()


def check_fork() -> None:
    """Raise ForkedProcessError in a child forked after the library was loaded."""
    if _forked:
        raise ForkedProcessError(_FORK_MESSAGE)


def lib() -> Library:
    """The library, loaded on first use."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            _lib = Library(library_path())
        return _lib


os.register_at_fork(after_in_child=_after_fork_in_child)


def split_batch(batch: bytes) -> list[bytes]:
    """The items of a batch: each a 4-byte little-endian length and that many bytes."""
    out: list[bytes] = []
    i = 0
    end = len(batch)
    from_bytes = int.from_bytes
    while i < end:
        n = from_bytes(batch[i : i + 4], "little")
        i += 4
        out.append(batch[i : i + n])
        i += n
    return out
