"""Exceptions raised by the distri bindings, one per status code of the C ABI (frozen values)."""


class DistriError(Exception):
    """Base class. `code` is the C status code, `status` its name, `message` the library's text."""

    code = -1
    status = "UNKNOWN"

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidArgumentError(DistriError, ValueError):
    code, status = 1, "INVALID_ARGUMENT"


class NotFoundError(DistriError, LookupError):
    code, status = 2, "NOT_FOUND"


class AlreadyExistsError(DistriError):
    code, status = 3, "ALREADY_EXISTS"


class DistriIOError(DistriError):
    code, status = 4, "IO"


class ParseError(DistriError):
    code, status = 5, "PARSE"


class UnavailableError(DistriError, ConnectionError):
    code, status = 6, "UNAVAILABLE"


class CancelledError(DistriError):
    code, status = 7, "CANCELLED"


class DeadlineExceededError(DistriError, TimeoutError):
    code, status = 8, "DEADLINE_EXCEEDED"


class InternalError(DistriError):
    code, status = 9, "INTERNAL"


class UnimplementedError(DistriError, NotImplementedError):
    code, status = 10, "UNIMPLEMENTED"


class OutOfMemoryError(DistriError, MemoryError):
    code, status = 11, "OUT_OF_MEMORY"


class JobFailedError(DistriError):
    """DISTRI_ERR_ABORTED: the job failed on the cluster; the message says why."""

    code, status = 12, "ABORTED"


class PermissionDeniedError(DistriError, PermissionError):
    code, status = 13, "PERMISSION_DENIED"


class FailedPreconditionError(DistriError, RuntimeError):
    code, status = 14, "FAILED_PRECONDITION"


_BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidArgumentError, NotFoundError, AlreadyExistsError, DistriIOError, ParseError,
        UnavailableError, CancelledError, DeadlineExceededError, InternalError,
        UnimplementedError, OutOfMemoryError, JobFailedError, PermissionDeniedError,
        FailedPreconditionError,
    )
}


def error_for(code, message):
    """The exception for a non-zero status code."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return DistriError("status %d: %s" % (code, message), code)
    return cls(message)
