"""Exceptions carrying sparsepool's status codes and messages."""

from typing import Dict, Type

# The canonical status codes of the C ABI (the gRPC / Abseil codes).
OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
OUT_OF_RANGE = 11
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
DATA_LOSS = 15
UNAUTHENTICATED = 16

CODE_NAMES = {
    value: name
    for name, value in globals().items()
    if name.isupper() and isinstance(value, int)
}


class SparsepoolError(Exception):
    """A failed sparsepool call: `code` is the status code, `message` says what was wrong."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{CODE_NAMES.get(code, code)}: {message}")
        self.code = code
        self.message = message


class InvalidArgumentError(SparsepoolError, ValueError):
    """A bad index, layer, size, shape or option."""


class NotFoundError(SparsepoolError, LookupError):
    """An unknown, released or reclaimed sequence."""


class ResourceExhaustedError(SparsepoolError):
    """The pool (or a table of the daemon) is full."""


class FailedPreconditionError(SparsepoolError):
    """Something the call needs is missing (no CUDA device, a transport not served)."""


class UnavailableError(SparsepoolError, ConnectionError):
    """The daemon is gone or unreachable."""


class DeadlineExceededError(SparsepoolError, TimeoutError):
    """The daemon did not answer in time."""


class PermissionDeniedError(SparsepoolError, PermissionError):
    """The call acts outside the caller's rights (another tenant's sequence or client id)."""


class UnauthenticatedError(SparsepoolError, PermissionError):
    """The daemon serves tenants and the call carried no token it knows."""


_BY_CODE: Dict[int, Type[SparsepoolError]] = {
    INVALID_ARGUMENT: InvalidArgumentError,
    OUT_OF_RANGE: InvalidArgumentError,
    NOT_FOUND: NotFoundError,
    RESOURCE_EXHAUSTED: ResourceExhaustedError,
    FAILED_PRECONDITION: FailedPreconditionError,
    UNAVAILABLE: UnavailableError,
    DEADLINE_EXCEEDED: DeadlineExceededError,
    PERMISSION_DENIED: PermissionDeniedError,
    UNAUTHENTICATED: UnauthenticatedError,
}


def error_for(code: int, message: str) -> SparsepoolError:
    """The exception of a status code."""
    return _BY_CODE.get(code, SparsepoolError)(code, message)
