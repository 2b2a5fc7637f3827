"""distri: distributed diffusion image generation, from Python.

Thin ctypes bindings over libdistri (capi/include/distri/distri.h documents every call):

    import distri
    with distri.Client.local("/models/sdxl") as client:
        image = client.generate("a lighthouse at dawn", width=1024, height=1024, seed=42)
        image.save("lighthouse.png")
"""
from .client import (ClusterInfo, Client, Image, Job, JobStatus, Preview, abi_version,
                     set_log_level, version)
from .errors import (AlreadyExistsError, CancelledError, DeadlineExceededError, DistriError,
                     DistriIOError, FailedPreconditionError, InternalError, InvalidArgumentError,
                     JobFailedError, NotFoundError, OutOfMemoryError, ParseError,
                     PermissionDeniedError, UnavailableError, UnimplementedError)

__version__ = version()

__all__ = [
    "Client", "Job", "JobStatus", "Image", "Preview", "ClusterInfo", "version", "abi_version",
    "set_log_level", "DistriError", "InvalidArgumentError", "NotFoundError", "AlreadyExistsError",
    "DistriIOError", "ParseError", "UnavailableError", "CancelledError", "DeadlineExceededError",
    "InternalError", "UnimplementedError", "OutOfMemoryError", "JobFailedError",
    "PermissionDeniedError", "FailedPreconditionError",
]
