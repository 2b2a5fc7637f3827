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


_BY_CODE = {}


def _status_error(name, code, status, *builtins, doc=None):
    """The DistriError subclass `name` for one status code, also a subclass of the built-in
    exceptions `builtins` that mean the same; registered for error_for."""
    cls = type(name, (DistriError,) + builtins,
               {"code": code, "status": status, "__doc__": doc, "__module__": __name__,
                "__qualname__": name})
    _BY_CODE[code] = cls
    return cls


InvalidArgumentError = _status_error("InvalidArgumentError", 1, "INVALID_ARGUMENT", ValueError)
NotFoundError = _status_error("NotFoundError", 2, "NOT_FOUND", LookupError)
AlreadyExistsError = _status_error("AlreadyExistsError", 3, "ALREADY_EXISTS")
DistriIOError = _status_error("DistriIOError", 4, "IO")
ParseError = _status_error("ParseError", 5, "PARSE")
UnavailableError = _status_error("UnavailableError", 6, "UNAVAILABLE", ConnectionError)
CancelledError = _status_error("CancelledError", 7, "CANCELLED")
DeadlineExceededError = _status_error("DeadlineExceededError", 8, "DEADLINE_EXCEEDED", TimeoutError)
InternalError = _status_error("InternalError", 9, "INTERNAL")
UnimplementedError = _status_error("UnimplementedError", 10, "UNIMPLEMENTED", NotImplementedError)
OutOfMemoryError = _status_error("OutOfMemoryError", 11, "OUT_OF_MEMORY", MemoryError)
JobFailedError = _status_error(
    "JobFailedError", 12, "ABORTED",
    doc="DISTRI_ERR_ABORTED: the job failed on the cluster; the message says why.")
PermissionDeniedError = _status_error("PermissionDeniedError", 13, "PERMISSION_DENIED", PermissionError)
FailedPreconditionError = _status_error("FailedPreconditionError", 14, "FAILED_PRECONDITION", RuntimeError)


def error_for(code, message):
    """The exception for a non-zero status code."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return DistriError("status %d: %s" % (code, message), code)
    return cls(message)
