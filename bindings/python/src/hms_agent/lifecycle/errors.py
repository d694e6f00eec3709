"""Exceptions: one base class, one subclass per status code of the closed set."""

from __future__ import annotations

__all__ = [
    "LifecycleError",
    "CancelledError",
    "UnknownError",
    "InvalidArgumentError",
    "DeadlineExceededError",
    "NotFoundError",
    "AlreadyExistsError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "FailedPreconditionError",
    "AbortedError",
    "OutOfRangeError",
    "UnimplementedError",
    "InternalError",
    "UnavailableError",
    "DataLossError",
    "UnauthenticatedError",
    "ForkedProcessError",
    "LibraryError",
]


class LifecycleError(Exception):
    """An error of the lifecycle core or server.

    ``code`` is the status code (gRPC's numbering, the server's closed set), ``code_name``
    its name (``"NOT_FOUND"``), ``message`` the server's message and ``resume_sequence``,
    for a watch stream that ended, the ``from_sequence`` that resumes it with no gap and no
    duplicate (0 when there is none).
    """

    code: int = 2
    code_name: str = "UNKNOWN"

    def __init__(self, message: str, *, code: int | None = None, resume_sequence: int = 0) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
            self.code_name = _NAMES.get(code, "UNKNOWN")
        self.message = message
        self.resume_sequence = resume_sequence

    def __str__(self) -> str:
        return f"{self.code_name}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code}, resume_sequence={self.resume_sequence})"


class CancelledError(LifecycleError):
    """The stream or worker was closed by the caller."""

    code, code_name = 1, "CANCELLED"


class UnknownError(LifecycleError):
    """An error with no more specific code."""

    code, code_name = 2, "UNKNOWN"


class InvalidArgumentError(LifecycleError):
    """Bad input (the message names the field), unknown method or handle."""

    code, code_name = 3, "INVALID_ARGUMENT"


class DeadlineExceededError(LifecycleError):
    """The call's deadline passed."""

    code, code_name = 4, "DEADLINE_EXCEEDED"


class NotFoundError(LifecycleError):
    """Unknown agent, hook, plugin or invocation."""

    code, code_name = 5, "NOT_FOUND"


class AlreadyExistsError(LifecycleError):
    """The id is taken (or a callback is already served)."""

    code, code_name = 6, "ALREADY_EXISTS"


class PermissionDeniedError(LifecycleError):
    """The caller's principal lacks the role for the call."""

    code, code_name = 7, "PERMISSION_DENIED"


class ResourceExhaustedError(LifecycleError):
    """A limit was hit; for a watch, it was cut off for falling behind (see resume_sequence)."""

    code, code_name = 8, "RESOURCE_EXHAUSTED"


class FailedPreconditionError(LifecycleError):
    """The operation is not allowed now (e.g. a data directory in use by another process)."""

    code, code_name = 9, "FAILED_PRECONDITION"


class AbortedError(LifecycleError):
    """The operation was aborted."""

    code, code_name = 10, "ABORTED"


class OutOfRangeError(LifecycleError):
    """A resume point older than retention."""

    code, code_name = 11, "OUT_OF_RANGE"


class UnimplementedError(LifecycleError):
    """The call is not implemented (e.g. the plugin service without a repository)."""

    code, code_name = 12, "UNIMPLEMENTED"


class InternalError(LifecycleError):
    """A bug or an unexpected store failure."""

    code, code_name = 13, "INTERNAL"


class UnavailableError(LifecycleError):
    """The manager was closed, the server is unreachable or went away."""

    code, code_name = 14, "UNAVAILABLE"


class DataLossError(LifecycleError):
    """Unrecoverable data loss."""

    code, code_name = 15, "DATA_LOSS"


class UnauthenticatedError(LifecycleError):
    """Missing or bad credentials."""

    code, code_name = 16, "UNAUTHENTICATED"


class ForkedProcessError(FailedPreconditionError):
    """The library was used in a child process forked after it was loaded.

    The Go runtime inside the library does not survive ``fork()``. Start child processes
    with ``multiprocessing.set_start_method("spawn")`` (or ``"forkserver"``), or use the
    library only in the child.
    """


class LibraryError(RuntimeError):
    """The C library could not be found or loaded, or has the wrong ABI version."""


_CLASSES: dict[int, type[LifecycleError]] = {
    c.code: c
    for c in (
        CancelledError,
        UnknownError,
        InvalidArgumentError,
        DeadlineExceededError,
        NotFoundError,
        AlreadyExistsError,
        PermissionDeniedError,
        ResourceExhaustedError,
        FailedPreconditionError,
        AbortedError,
        OutOfRangeError,
        UnimplementedError,
        InternalError,
        UnavailableError,
        DataLossError,
        UnauthenticatedError,
    )
}
_NAMES: dict[int, str] = {code: cls.code_name for code, cls in _CLASSES.items()}


def error_for(code: int, message: str, resume_sequence: int = 0) -> LifecycleError:
    """The exception of the class for ``code``."""
    cls = _CLASSES.get(code)
    if cls is None:
        return LifecycleError(message, code=code, resume_sequence=resume_sequence)
    return cls(message, resume_sequence=resume_sequence)
