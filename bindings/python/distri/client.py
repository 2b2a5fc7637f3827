"""Pythonic layer over the C ABI: Client, Job, Image, Preview (see distri.h for the contracts)."""
import ctypes
import dataclasses
import threading
import time
from typing import Callable, Iterable, List, Mapping, Optional, Union

from . import _lib
from ._lib import lib
from .errors import InvalidArgumentError, error_for

_STATES = {0: "PENDING", 1: "SCHEDULED", 2: "RUNNING", 3: "SUCCEEDED", 4: "FAILED", 5: "CANCELLED"}
_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
_FORMATS = {"png": 0, "rgb8": 1}
_LOG_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3, "off": 4}
# distri_job_wait is called in slices so that Ctrl-C (KeyboardInterrupt) and progress
# reporting get a chance between them.
_WAIT_SLICE_MS = 200

Progress = Callable[[int, int], object]
Text = Union[str, bytes]


def _check(status):
    if status != 0:
        raise error_for(status, lib.distri_last_error().decode("utf-8", "replace"))


def version() -> str:
    """The release of the loaded libdistri, e.g. "0.1.0"."""
    return lib.distri_version().decode()


def abi_version() -> int:
    return lib.distri_abi_version()


def set_log_level(level: str) -> None:
    """"debug", "info", "warning", "error" or "off" (this process and workers started later)."""
    if level not in _LOG_LEVELS:
        raise InvalidArgumentError("level must be one of %s, got %r" % (", ".join(_LOG_LEVELS), level))
    _check(lib.distri_log_set_level(_LOG_LEVELS[level]))


# --- argument conversion: ctypes silently wraps integers, so ranges are checked here ----------

def _int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError("%s: expected an integer, got %r" % (name, value))
    if not lo <= value <= hi:
        raise InvalidArgumentError("%s: must be %d..%d, got %d" % (name, lo, hi, value))
    return value


def _text(name, value: Optional[Text]) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, str):
        # surrogatepass: a str with lone surrogates becomes invalid UTF-8, which the library
        # rejects with its own message.
        value = value.encode("utf-8", "surrogatepass")
    elif not isinstance(value, (bytes, bytearray)):
        raise InvalidArgumentError("%s: expected str or bytes, got %s" % (name, type(value).__name__))
    value = bytes(value)
    if b"\0" in value:
        raise InvalidArgumentError("%s: contains a NUL character" % name)
    return value


def _timeout_ms(name, timeout: Optional[float]) -> int:
    if timeout is None:
        return -1
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout != timeout:
        raise InvalidArgumentError("%s: expected seconds (a number) or None, got %r" % (name, timeout))
    if timeout < 0:
        return -1
    return int(min(timeout * 1000.0, 2 ** 62))


def _job_params(prompt, negative_prompt=None, width=1024, height=1024, steps=30, guidance=5.0,
                sampler=None, seed: Optional[int] = 0, gpus=0, priority=0, output_format="png",
                model=None, preview_every=0, guidance_rescale=0.0) -> "_lib.JobParams":
    p = _lib.JobParams()
    lib.distri_job_params_init(ctypes.byref(p))
    p.prompt = _text("prompt", prompt)
    p.negative_prompt = _text("negative_prompt", negative_prompt)
    p.width = _int("width", width, 0, 2 ** 32 - 1)
    p.height = _int("height", height, 0, 2 ** 32 - 1)
    p.steps = _int("steps", steps, 0, 2 ** 32 - 1)
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)):
        raise InvalidArgumentError("guidance: expected a number, got %r" % (guidance,))
    p.guidance = float(guidance)
    p.sampler = _text("sampler", sampler)
    if seed is None:
        p.random_seed = 1
    else:
        p.seed = _int("seed", seed, 0, 2 ** 64 - 1)
    p.gpus = _int("gpus", gpus, 0, 2 ** 32 - 1)
    p.priority = _int("priority", priority, -2 ** 31, 2 ** 31 - 1)
    if output_format not in _FORMATS:
        raise InvalidArgumentError("output_format: expected 'png' or 'rgb8', got %r" % (output_format,))
    p.output_format = _FORMATS[output_format]
    p.model = _text("model", model)
    p.preview_every = _int("preview_every", preview_every, 0, 2 ** 32 - 1)
    if isinstance(guidance_rescale, bool) or not isinstance(guidance_rescale, (int, float)):
        raise InvalidArgumentError("guidance_rescale: expected a number, got %r" % (guidance_rescale,))
    p.guidance_rescale = float(guidance_rescale)  # the library checks the range (0..1)
    return p


# --- value types ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class JobStatus:
    state: str            # PENDING, SCHEDULED, RUNNING, SUCCEEDED, FAILED, CANCELLED
    step: int
    total_steps: int
    attempt: int
    queue_position: int
    seed: int
    error: str            # why, when FAILED

    @property
    def done(self) -> bool:
        return self.state in _TERMINAL

    @staticmethod
    def _from_c(s: "_lib.JobStatus") -> "JobStatus":
        return JobStatus(_STATES.get(s.state, "UNKNOWN"), s.step, s.total_steps, s.attempt,
                         s.queue_position, s.seed, (s.error or b"").decode("utf-8", "replace"))


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    nodes: int
    gpus: int
    actors: int
    idle_actors: int
    queue_length: int
    running_jobs: int


@dataclasses.dataclass(frozen=True)
class Image:
    """A result image: `data` holds PNG bytes (format "png") or raw RGB rows (format "rgb8",
    `stride` bytes per row)."""
    data: bytes
    format: str
    width: int
    height: int
    stride: int
    seed: int
    attempt: int
    gang_size: int
    queued_ms: float
    run_ms: float
    total_ms: float

    def save(self, path: str) -> None:
        """Writes PNG bytes as they are; raw RGB is encoded with Pillow."""
        if self.format == "png":
            with open(path, "wb") as f:
                f.write(self.data)
        else:
            self.to_pil().save(path)

    def to_pil(self):
        """A PIL.Image.Image (needs Pillow)."""
        from PIL import Image as PILImage  # optional dependency
        import io
        if self.format == "png":
            img = PILImage.open(io.BytesIO(self.data))
            img.load()
            return img
        return PILImage.frombuffer("RGB", (self.width, self.height), self.data, "raw", "RGB", self.stride, 1)

    def to_numpy(self):
        """An (height, width, 3) uint8 array (needs numpy; PNG also needs Pillow)."""
        import numpy as np  # optional dependency
        if self.format == "png":
            return np.asarray(self.to_pil().convert("RGB"))
        rows = np.frombuffer(self.data, dtype=np.uint8).reshape(self.height, self.stride)
        return rows[:, : self.width * 3].reshape(self.height, self.width, 3).copy()


@dataclasses.dataclass(frozen=True)
class Preview:
    """A latent preview of a running job (Job.preview()): PNG bytes of width x height = the
    image's size / 8, taken after denoising step `step` of the job's attempt `attempt`."""
    data: bytes
    step: int
    width: int
    height: int
    attempt: int

    def save(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(self.data)


def _take_bytes(buf: ctypes.c_void_p) -> bytes:
    try:
        return ctypes.string_at(lib.distri_buffer_data(buf), lib.distri_buffer_size(buf))
    finally:
        lib.distri_buffer_destroy(buf)


def _take_image(buf: ctypes.c_void_p, info: "_lib.ImageInfo") -> Image:
    data = _take_bytes(buf)
    fmt = "png" if info.format == 0 else "rgb8"
    return Image(data, fmt, info.width, info.height, info.stride, info.seed, info.attempt,
                 info.gang_size, info.queued_ms, info.run_ms, info.total_ms)


# --- handles ----------------------------------------------------------------------------------

class _Closing:
    """Context manager and finaliser over the subclass's idempotent close()."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Job(_Closing):
    """A submitted job. Thread-safe. `close()` (or the context manager) releases the handle;
    it does not cancel the job."""

    def __init__(self, client: "Client", handle: int):
        self._client = client  # keeps the client alive while its jobs are used
        self._handle = ctypes.c_void_p(handle)
        self.id = lib.distri_job_id(self._handle).decode()

    def _h(self):
        if self._handle is None:
            raise InvalidArgumentError("the job handle was closed")
        return self._handle

    def status(self) -> JobStatus:
        """Asks the cluster for the job's state (the polling alternative to wait's progress)."""
        s = _lib.JobStatus()
        lib.distri_job_status_init(ctypes.byref(s))
        _check(lib.distri_job_get_status(self._h(), ctypes.byref(s)))
        return JobStatus._from_c(s)

    def wait(self, timeout: Optional[float] = None, progress: Optional[Progress] = None) -> JobStatus:
        """Blocks until the job is SUCCEEDED, FAILED or CANCELLED (returned, not raised) or
        `timeout` seconds pass (DeadlineExceededError; the job keeps running). `progress(step,
        total)` is called as steps complete; a truthy return value cancels the job. If
        `progress` raises (or Ctrl-C arrives), the job is cancelled and the exception raised."""
        total_ms = _timeout_ms("timeout", timeout)
        deadline = None if total_ms < 0 else time.monotonic() + total_ms / 1000.0
        s = _lib.JobStatus()
        lib.distri_job_status_init(ctypes.byref(s))
        last = None
        while True:
            slice_ms = _WAIT_SLICE_MS
            if deadline is not None:
                slice_ms = max(0, min(slice_ms, int((deadline - time.monotonic()) * 1000)))
            rc = lib.distri_job_wait(self._h(), slice_ms, ctypes.byref(s))
            if rc not in (0, 8):  # 8: DEADLINE_EXCEEDED of this slice
                _check(rc)
            status = JobStatus._from_c(s)
            if progress is not None and status.total_steps and (status.step, status.total_steps) != last:
                last = (status.step, status.total_steps)
                try:
                    stop = progress(status.step, status.total_steps)
                except BaseException:
                    self._cancel_quietly()
                    raise
                if stop and not status.done:
                    self.cancel()
                    continue
            if rc == 0:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                _check(rc)  # raises DeadlineExceededError with the library's message

    def _cancel_quietly(self):
        try:
            self.cancel()
        except Exception:  # the original exception matters more
            pass

    def cancel(self) -> None:
        """Asks the cluster to cancel the job (no error if it already finished)."""
        _check(lib.distri_job_cancel(self._h()))

    def result(self) -> Image:
        """The image of a SUCCEEDED job. CancelledError / JobFailedError for cancelled / failed
        jobs, FailedPreconditionError while it is still running (wait first)."""
        buf = ctypes.c_void_p()
        info = _lib.ImageInfo()
        lib.distri_image_info_init(ctypes.byref(info))
        _check(lib.distri_job_get_result(self._h(), ctypes.byref(buf), ctypes.byref(info)))
        return _take_image(buf, info)

    def preview(self) -> Optional[Preview]:
        """The newest latent preview of a job submitted with preview_every=N, or None when
        there is none (none asked for, no preview step reached yet, or the job ended before
        this handle received one; wait() receives them as it polls). Does not wait."""
        buf = ctypes.c_void_p()
        info = _lib.ImageInfo()
        lib.distri_image_info_init(ctypes.byref(info))
        step = ctypes.c_uint32()
        rc = lib.distri_job_get_preview(self._h(), ctypes.byref(buf), ctypes.byref(info), ctypes.byref(step))
        if rc == 2:  # DISTRI_ERR_NOT_FOUND: no preview
            return None
        _check(rc)
        return Preview(_take_bytes(buf), step.value, info.width, info.height, info.attempt)

    def close(self) -> None:
        if self._handle is not None and lib is not None:
            lib.distri_job_destroy(self._handle)
        self._handle = None

    def __repr__(self):
        return "Job(%s)" % self.id


class Client(_Closing):
    """A connection to a distri cluster. Thread-safe. Make one with Client.local() (an embedded
    cluster in this process) or Client.connect() (a running cluster)."""

    def __init__(self, handle: int):
        self._handle = ctypes.c_void_p(handle)
        self._lock = threading.Lock()

    @classmethod
    def local(cls, model_path: str, *, gpus: Optional[int] = None, cpu_actors: Optional[int] = None,
              dtype: Optional[str] = None, worker_path: Optional[str] = None,
              work_dir: Optional[str] = None, startup_timeout: Optional[float] = 300.0,
              request_timeout: float = 30.0) -> "Client":
        """Starts an embedded cluster (head + node agent + distri-worker processes) for this
        machine and returns a client of it. gpus: None = all visible, 0 = none, N = first N;
        cpu_actors: None = one if no GPU is used."""
        p = _lib.LocalParams()
        lib.distri_local_params_init(ctypes.byref(p))
        p.model_path = _text("model_path", model_path)
        if gpus is not None:
            p.gpus = _int("gpus", gpus, -2 ** 31, 2 ** 31 - 1)
        if cpu_actors is not None:
            p.cpu_actors = _int("cpu_actors", cpu_actors, -2 ** 31, 2 ** 31 - 1)
        p.dtype = _text("dtype", dtype)
        p.worker_path = _text("worker_path", worker_path)
        p.work_dir = _text("work_dir", work_dir)
        p.startup_timeout_ms = min(_timeout_ms("startup_timeout", startup_timeout), 2 ** 31 - 1)
        p.request_timeout_ms = max(1, min(_timeout_ms("request_timeout", request_timeout), 2 ** 31 - 1))
        handle = ctypes.c_void_p()
        _check(lib.distri_client_create_local(ctypes.byref(p), ctypes.byref(handle)))
        return cls(handle.value)

    @classmethod
    def connect(cls, address: str, *, key_dir: Optional[str] = None,
                server_public_key: Optional[str] = None, client_public_key: Optional[str] = None,
                client_secret_key: Optional[str] = None, request_timeout: float = 30.0) -> "Client":
        """Connects to a running cluster ("tcp://host:port"; "fake://" is the library's fake
        cluster for tests). Keys: key_dir (head.pub + client.key) or the Z85 keys."""
        p = _lib.ConnectParams()
        lib.distri_connect_params_init(ctypes.byref(p))
        p.address = _text("address", address)
        p.key_dir = _text("key_dir", key_dir)
        p.server_public_key = _text("server_public_key", server_public_key)
        p.client_public_key = _text("client_public_key", client_public_key)
        p.client_secret_key = _text("client_secret_key", client_secret_key)
        p.request_timeout_ms = max(1, min(_timeout_ms("request_timeout", request_timeout), 2 ** 31 - 1))
        handle = ctypes.c_void_p()
        _check(lib.distri_client_connect(ctypes.byref(p), ctypes.byref(handle)))
        return cls(handle.value)

    def _h(self):
        if self._handle is None:
            raise InvalidArgumentError("the client was closed")
        return self._handle

    def submit(self, prompt: Text, **params) -> Job:
        """Submits one image. Params: negative_prompt, width, height (default 1024), steps (30),
        guidance (5.0), sampler (None = the model's), seed (0; None = drawn by the cluster),
        gpus (0 = auto), priority, output_format ("png" or "rgb8"), model, preview_every (0 =
        no latent previews; N: one every N steps, see Job.preview()), guidance_rescale (0.0 =
        off; up to 1.0: diffusers' guidance_rescale)."""
        p = _job_params(prompt, **params)
        handle = ctypes.c_void_p()
        _check(lib.distri_job_submit(self._h(), ctypes.byref(p), ctypes.byref(handle)))
        return Job(self, handle.value)

    def submit_batch(self, requests: Iterable[Mapping]) -> List[Job]:
        """Submits several images (each a dict of submit()'s arguments, with "prompt") as one
        batch: the head queues all of them before it schedules any, so "auto" GPU counts see
        the whole batch. All are checked first; all or nothing: if one is refused, none is
        submitted (those already accepted are cancelled) and the error names its index."""
        params = [_job_params(**dict(r)) for r in requests]
        if not params:
            raise InvalidArgumentError("submit_batch: no requests")
        ptrs = (ctypes.POINTER(_lib.JobParams) * len(params))(*[ctypes.pointer(p) for p in params])
        out = (ctypes.c_void_p * len(params))()
        _check(lib.distri_job_submit_batch(self._h(), ptrs, len(params), out))
        return [Job(self, h) for h in out]

    def generate(self, prompt: Text, *, timeout: Optional[float] = None,
                 progress: Optional[Progress] = None, **params) -> Image:
        """Submit, wait and fetch: the image, or an exception (CancelledError, JobFailedError,
        DeadlineExceededError after `timeout` seconds, when the job is also cancelled)."""
        with self.submit(prompt, **params) as job:
            try:
                job.wait(timeout, progress)
            except BaseException:
                job._cancel_quietly()
                raise
            return job.result()

    def job(self, job_id: str) -> Job:
        """A handle on a job submitted elsewhere (e.g. by `distri-cluster submit`)."""
        handle = ctypes.c_void_p()
        _check(lib.distri_job_open(self._h(), _text("job_id", job_id), ctypes.byref(handle)))
        return Job(self, handle.value)

    def cluster_info(self) -> ClusterInfo:
        info = _lib.ClusterInfo()
        lib.distri_cluster_info_init(ctypes.byref(info))
        _check(lib.distri_client_get_cluster_info(self._h(), ctypes.byref(info)))
        return ClusterInfo(info.nodes, info.gpus, info.actors, info.idle_actors,
                           info.queue_length, info.running_jobs)

    def close(self) -> None:
        """Disconnects (and stops an embedded cluster). Jobs of this client then fail with
        FailedPreconditionError. Idempotent."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None and lib is not None:
            lib.distri_client_destroy(handle)

