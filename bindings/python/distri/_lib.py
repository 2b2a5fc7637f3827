"""ctypes declarations of libdistri's C ABI (capi/include/distri/distri.h), one to one."""
import ctypes
import ctypes.util
import os

c_status = ctypes.c_int32
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32)


class ConnectParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("struct_version", ctypes.c_uint32),
        ("address", ctypes.c_char_p),
        ("key_dir", ctypes.c_char_p),
        ("server_public_key", ctypes.c_char_p),
        ("client_public_key", ctypes.c_char_p),
        ("client_secret_key", ctypes.c_char_p),
        ("request_timeout_ms", ctypes.c_int32),
    ]


class LocalParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("struct_version", ctypes.c_uint32),
        ("model_path", ctypes.c_char_p),
        ("gpus", ctypes.c_int32),
        ("cpu_actors", ctypes.c_int32),
        ("dtype", ctypes.c_char_p),
        ("worker_path", ctypes.c_char_p),
        ("work_dir", ctypes.c_char_p),
        ("startup_timeout_ms", ctypes.c_int32),
        ("request_timeout_ms", ctypes.c_int32),
    ]


class ClusterInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("struct_version", ctypes.c_uint32),
        ("nodes", ctypes.c_uint32),
        ("gpus", ctypes.c_uint32),
        ("actors", ctypes.c_uint32),
        ("idle_actors", ctypes.c_uint32),
        ("queue_length", ctypes.c_uint32),
        ("running_jobs", ctypes.c_uint32),
    ]


class JobParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("struct_version", ctypes.c_uint32),
        ("prompt", ctypes.c_char_p),
        ("negative_prompt", ctypes.c_char_p),
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("steps", ctypes.c_uint32),
        ("guidance", ctypes.c_double),
        ("sampler", ctypes.c_char_p),
        ("seed", ctypes.c_uint64),
        ("random_seed", ctypes.c_int32),
        ("gpus", ctypes.c_uint32),
        ("priority", ctypes.c_int32),
        ("output_format", ctypes.c_int32),
        ("model", ctypes.c_char_p),
        ("progress", PROGRESS_FN),
        ("progress_user_data", ctypes.c_void_p),
        ("preview_every", ctypes.c_uint32),  # version 2 (0.2.0)
        ("guidance_rescale", ctypes.c_double),  # version 2 (0.2.0); ctypes pads it to 8 bytes
    ]


class JobStatus(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("struct_version", ctypes.c_uint32),
        ("state", ctypes.c_int32),
        ("step", ctypes.c_uint32),
        ("total_steps", ctypes.c_uint32),
        ("attempt", ctypes.c_uint32),
        ("queue_position", ctypes.c_uint32),
        ("seed", ctypes.c_uint64),
        ("error", ctypes.c_char_p),
    ]


class ImageInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("struct_version", ctypes.c_uint32),
        ("format", ctypes.c_int32),
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("stride", ctypes.c_uint32),
        ("seed", ctypes.c_uint64),
        ("attempt", ctypes.c_uint32),
        ("gang_size", ctypes.c_uint32),
        ("queued_ms", ctypes.c_double),
        ("run_ms", ctypes.c_double),
        ("total_ms", ctypes.c_double),
    ]


def _candidates():
    env = os.environ.get("DISTRI_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("libdistri.so.1", "libdistri.so"):
        path = os.path.join(here, name)
        if os.path.exists(path):
            yield path
    found = ctypes.util.find_library("distri")
    if found:
        yield found
    yield "libdistri.so.1"


def _load():
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append("%s: %s" % (path, e))
    raise ImportError("cannot load libdistri (set DISTRI_LIBRARY to libdistri.so.1): " + "; ".join(errors))


lib = _load()

P = ctypes.POINTER
vp = ctypes.c_void_p
_SIGNATURES = {
    "distri_version": (ctypes.c_char_p, []),
    "distri_version_number": (ctypes.c_uint32, []),
    "distri_abi_version": (ctypes.c_uint32, []),
    "distri_status_name": (ctypes.c_char_p, [c_status]),
    "distri_last_error": (ctypes.c_char_p, []),
    "distri_job_state_name": (ctypes.c_char_p, [ctypes.c_int32]),
    "distri_log_set_level": (c_status, [ctypes.c_int32]),
    "distri_buffer_data": (vp, [vp]),
    "distri_buffer_size": (ctypes.c_size_t, [vp]),
    "distri_buffer_destroy": (None, [vp]),
    "distri_connect_params_init": (None, [P(ConnectParams)]),
    "distri_client_connect": (c_status, [P(ConnectParams), P(vp)]),
    "distri_local_params_init": (None, [P(LocalParams)]),
    "distri_client_create_local": (c_status, [P(LocalParams), P(vp)]),
    "distri_client_destroy": (None, [vp]),
    "distri_cluster_info_init": (None, [P(ClusterInfo)]),
    "distri_client_get_cluster_info": (c_status, [vp, P(ClusterInfo)]),
    "distri_job_params_init": (None, [P(JobParams)]),
    "distri_job_params_validate": (c_status, [P(JobParams)]),
    "distri_job_submit": (c_status, [vp, P(JobParams), P(vp)]),
    "distri_job_submit_batch": (c_status, [vp, P(P(JobParams)), ctypes.c_size_t, P(vp)]),
    "distri_job_open": (c_status, [vp, ctypes.c_char_p, P(vp)]),
    "distri_job_destroy": (None, [vp]),
    "distri_job_id": (ctypes.c_char_p, [vp]),
    "distri_job_status_init": (None, [P(JobStatus)]),
    "distri_job_get_status": (c_status, [vp, P(JobStatus)]),
    "distri_job_wait": (c_status, [vp, ctypes.c_int64, P(JobStatus)]),
    "distri_job_cancel": (c_status, [vp]),
    "distri_image_info_init": (None, [P(ImageInfo)]),
    "distri_job_get_result": (c_status, [vp, P(vp), P(ImageInfo)]),
    "distri_job_get_preview": (c_status, [vp, P(vp), P(ImageInfo), P(ctypes.c_uint32)]),
    "distri_client_generate": (c_status, [vp, P(JobParams), ctypes.c_int64, P(vp), P(ImageInfo)]),
}
for _name, (_res, _args) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args
