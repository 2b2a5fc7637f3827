/*
 * distri.h -- the stable C ABI of distri (library libdistri.so.1).
 *
 * distri renders diffusion-model images on one or many GPUs and machines. This header is the
 * only installed interface; the Python, Rust and Go bindings are thin layers over it. It is
 * plain C99 (it compiles with -std=c99 -Wall -Werror) and is the documentation of the ABI.
 *
 * Two ways in
 *   - distri_client_connect(): talk to a running cluster (`distri-cluster up`, or distri-head
 *     and distri-node started by hand) at an address, authenticated with CURVE keys.
 *   - distri_client_create_local(): start an embedded cluster for this machine inside the
 *     calling process (a head and a node agent on loopback, fresh keys in a temporary
 *     folder); the node agent starts one `distri-worker` process per GPU, or CPU actors when
 *     there is none. The default for scripts and notebooks.
 *
 * A minimal program (error handling shortened; see examples/c/render.c):
 *
 *     distri_local_params_t lp;  distri_local_params_init(&lp);
 *     lp.model_path = "/models/sdxl";
 *     distri_client_t* client = NULL;
 *     if (distri_client_create_local(&lp, &client) != DISTRI_OK)
 *       fprintf(stderr, "%s\n", distri_last_error());
 *     distri_job_params_t jp;  distri_job_params_init(&jp);
 *     jp.prompt = "a lighthouse at dawn";  jp.width = jp.height = 1024;
 *     distri_buffer_t* png = NULL;
 *     distri_client_generate(client, &jp, -1, &png, NULL);
 *     fwrite(distri_buffer_data(png), 1, distri_buffer_size(png), f);
 *     distri_buffer_destroy(png);
 *     distri_client_destroy(client);
 *
 * Conventions (they hold for every function below)
 *   - Names are distri_<object>_<verb>; objects are opaque handles made by a _create (or
 *     _connect / _submit) function and released by the matching _destroy.
 *   - Functions that can fail return distri_status_t: DISTRI_OK (0) or an error code. On an
 *     error, distri_last_error() returns a message for the calling thread that says what was
 *     expected and what was found ("distri_job_params_t.width: must be 1..16384, got 0").
 *     Output pointers are set to NULL (handles) or left zeroed (structs) on error.
 *   - No C++ exception, abort or signal crosses this boundary. NULL or out-of-range
 *     arguments, bad UTF-8, destroyed handles: every such misuse returns
 *     DISTRI_ERR_INVALID_ARGUMENT (or the code documented for the function), never crashes.
 *     Handles are checked against the library's table of live objects, so passing a handle
 *     that was already destroyed is reported (as long as its address has not been reused by a
 *     new object of the same kind; it remains a bug in the caller).
 *   - Strings are NUL-terminated UTF-8. The library copies every string and struct it is
 *     given; the caller may free them as soon as the call returns.
 *   - Params structs begin with struct_size and struct_version and have an _init() function
 *     that fills both and every default. Always call _init() first: a program compiled against
 *     an older header passes a smaller struct_size, and the library then uses the defaults
 *     for the fields that program does not know. Fields are only ever added at the end.
 *   - Enum values are frozen: a value never changes meaning and is never reused. Enum-typed
 *     fields and results are carried as int32_t so their size never depends on the compiler.
 *   - Times are in milliseconds. A timeout_ms < 0 waits forever, 0 checks once and returns.
 *
 * Thread safety
 *   - Global functions (distri_version*, distri_status_name, distri_last_error,
 *     distri_log_set_level, the _init functions) may be called from any thread at any time.
 *   - distri_client_t: thread-safe. Any number of threads may submit and query through one
 *     client. Requests are serialised on its connection. distri_client_destroy must not run
 *     concurrently with other calls on the same client.
 *   - distri_job_t: thread-safe, including distri_job_cancel from another thread while a
 *     distri_job_wait is blocked. distri_job_destroy must not run concurrently with other
 *     calls on the same job. A job stays usable (every call then fails with
 *     DISTRI_ERR_FAILED_PRECONDITION) after its client is destroyed; destroy it as usual.
 *   - distri_buffer_t: immutable; may be read from any thread. Destroy it once.
 *   - Progress callbacks run on the thread that called distri_job_wait or
 *     distri_client_generate, never on a library thread.
 */
#ifndef DISTRI_DISTRI_H_
#define DISTRI_DISTRI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define DISTRI_API
#elif defined(__GNUC__) || defined(__clang__)
#define DISTRI_API __attribute__((visibility("default")))
#else
#define DISTRI_API
#endif

/* ------------------------------------------------------------------------------------------ */
/* Versions                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Release of distri this header belongs to (semantic versioning). A minor release only adds
 * (functions, struct fields at the end, enum values):
 *   0.2.0  distri_job_params_t.preview_every and distri_job_get_preview (latent previews),
 *          distri_job_params_t.guidance_rescale (diffusers' guidance_rescale). */
#define DISTRI_VERSION_MAJOR 0
#define DISTRI_VERSION_MINOR 2
#define DISTRI_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, for #if comparisons. */
#define DISTRI_VERSION_NUMBER \
  (DISTRI_VERSION_MAJOR * 10000 + DISTRI_VERSION_MINOR * 100 + DISTRI_VERSION_PATCH)
/* Version of the binary interface: the SONAME is libdistri.so.<DISTRI_ABI_VERSION>. It changes
 * only if an existing function or struct field changes incompatibly (never so far). */
#define DISTRI_ABI_VERSION 1

/* The release of the loaded library, "0.2.0". Static storage; never NULL. */
DISTRI_API const char* distri_version(void);
/* The release of the loaded library as DISTRI_VERSION_NUMBER computes it. A program can compare
 * it with the macro to detect running against an older library than it was built with. */
DISTRI_API uint32_t distri_version_number(void);
/* DISTRI_ABI_VERSION of the loaded library. */
DISTRI_API uint32_t distri_abi_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Status codes and errors                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef int32_t distri_status_t;

/* Frozen values (they equal distri::StatusCode in runtime/common/status.h). */
enum distri_status_code {
  DISTRI_OK = 0,
  DISTRI_ERR_INVALID_ARGUMENT = 1,   /* NULL, out of range, bad UTF-8, destroyed handle, ... */
  DISTRI_ERR_NOT_FOUND = 2,          /* unknown job id, missing model or key file */
  DISTRI_ERR_ALREADY_EXISTS = 3,
  DISTRI_ERR_IO = 4,                 /* reading or writing a file failed */
  DISTRI_ERR_PARSE = 5,              /* a file or message could not be parsed */
  DISTRI_ERR_UNAVAILABLE = 6,        /* the cluster cannot be reached, or has no actor for it */
  DISTRI_ERR_CANCELLED = 7,          /* the job was cancelled */
  DISTRI_ERR_DEADLINE_EXCEEDED = 8,  /* a timeout expired (the job keeps running) */
  DISTRI_ERR_INTERNAL = 9,           /* a bug in distri; the message says where */
  DISTRI_ERR_UNIMPLEMENTED = 10,     /* not supported by this build or this cluster */
  DISTRI_ERR_OUT_OF_MEMORY = 11,
  DISTRI_ERR_ABORTED = 12,           /* the job failed on the cluster; the message says why */
  DISTRI_ERR_PERMISSION_DENIED = 13, /* keys rejected, key file readable by others */
  DISTRI_ERR_FAILED_PRECONDITION = 14 /* wrong state: result of an unfinished job, closed client */
};

/* "OK", "INVALID_ARGUMENT", ... for every code above; "UNKNOWN" for other values. Static
 * storage; never NULL. */
DISTRI_API const char* distri_status_name(distri_status_t status);

/* The message of the last failed call made by this thread ("" if the last call succeeded or
 * no call was made). The pointer stays valid until this thread's next call into the library;
 * copy the text to keep it. Never NULL. */
DISTRI_API const char* distri_last_error(void);

/* ------------------------------------------------------------------------------------------ */
/* Enums                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* State of a job. Terminal: SUCCEEDED, FAILED, CANCELLED. Frozen values. */
enum distri_job_state {
  DISTRI_JOB_PENDING = 0,    /* accepted and queued */
  DISTRI_JOB_SCHEDULED = 1,  /* a gang of actors is chosen */
  DISTRI_JOB_RUNNING = 2,    /* denoising */
  DISTRI_JOB_SUCCEEDED = 3,  /* the image can be fetched */
  DISTRI_JOB_FAILED = 4,     /* gave up; distri_job_status_t.error says why */
  DISTRI_JOB_CANCELLED = 5   /* cancelled before it finished */
};

/* "PENDING", ...; "UNKNOWN" for other values. Static storage; never NULL. */
DISTRI_API const char* distri_job_state_name(int32_t state);

/* Encoding of a result image. Frozen values. */
enum distri_output_format {
  DISTRI_OUTPUT_PNG = 0,  /* a PNG file, 8-bit RGB, with prompt/seed/steps as text chunks */
  DISTRI_OUTPUT_RGB8 = 1  /* raw 8-bit RGB, row-major, `stride` bytes per row, no header */
};
/* The cluster always sends PNG (lossless, and smaller on the network); the library decodes it
 * when DISTRI_OUTPUT_RGB8 is asked for, so both formats carry exactly the same pixels. */

/* Log verbosity of the library and of an embedded cluster (stderr). Frozen values. */
enum distri_log_level {
  DISTRI_LOG_DEBUG = 0,
  DISTRI_LOG_INFO = 1,
  DISTRI_LOG_WARNING = 2,
  DISTRI_LOG_ERROR = 3,
  DISTRI_LOG_OFF = 4
};

/* Sets the level for this process (default: DISTRI_LOG_LEVEL from the environment, else
 * WARNING for library users). Worker processes of an embedded cluster started afterwards
 * inherit it. DISTRI_ERR_INVALID_ARGUMENT for values outside the enum. */
DISTRI_API distri_status_t distri_log_set_level(int32_t level);

/* ------------------------------------------------------------------------------------------ */
/* Buffers                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Bytes owned by the library (an encoded image, raw pixels). Immutable. */
typedef struct distri_buffer distri_buffer_t;

/* The bytes; NULL for a NULL or destroyed buffer. Valid until distri_buffer_destroy. */
DISTRI_API const uint8_t* distri_buffer_data(const distri_buffer_t* buffer);
/* Number of bytes; 0 for a NULL or destroyed buffer. */
DISTRI_API size_t distri_buffer_size(const distri_buffer_t* buffer);
/* Frees the buffer. NULL is a no-op; a handle that is not a live buffer is ignored. */
DISTRI_API void distri_buffer_destroy(distri_buffer_t* buffer);

/* ------------------------------------------------------------------------------------------ */
/* Clients                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* A connection to a cluster (remote, or embedded in this process). Thread-safe. */
typedef struct distri_client distri_client_t;

#define DISTRI_CONNECT_PARAMS_VERSION 1

/* How to reach a running cluster. */
typedef struct distri_connect_params {
  uint32_t struct_size;    /* sizeof(distri_connect_params_t), set by _init */
  uint32_t struct_version; /* DISTRI_CONNECT_PARAMS_VERSION, set by _init */
  /* Required. The head's client endpoint, "tcp://host:port". The address "fake://" selects a
   * fake cluster inside the library (no processes, no model: each job "renders" a test
   * pattern derived from its seed, one step per 2 ms; the prompt "fake:fail" makes a job
   * fail; preview_every gives latent previews of the same size as a real cluster's; each PNG's
   * text chunk "fake:submitted" says how its job arrived: "alone", or "batch of N" for a
   * distri_job_submit_batch of N jobs). It exists to test programs and bindings without GPUs. */
  const char* address;
  /* A folder in `distri-cluster up`'s layout: head.pub (the head's public key) and
   * client.key (this client's key pair, mode 0600). NULL: the three keys below are used. */
  const char* key_dir;
  /* Z85 CURVE keys (40 characters each); each overrides the one from key_dir. */
  const char* server_public_key;
  const char* client_public_key;
  const char* client_secret_key;
  /* Timeout of each request to the head (submit, status, cancel, fetch); > 0. Default 30000. */
  int32_t request_timeout_ms;
} distri_connect_params_t;

/* Fills struct_size, struct_version and the defaults (every pointer NULL). */
DISTRI_API void distri_connect_params_init(distri_connect_params_t* params);

/* Connects to the cluster at params->address and checks that it answers (one status request
 * within request_timeout_ms). On success *out_client owns the connection.
 * Errors: INVALID_ARGUMENT (NULL, missing address or keys, malformed key), NOT_FOUND /
 * PERMISSION_DENIED (key files), UNAVAILABLE (no answer in time), UNIMPLEMENTED (library built
 * without the runtime client). */
DISTRI_API distri_status_t distri_client_connect(const distri_connect_params_t* params,
                                                 distri_client_t** out_client);

#define DISTRI_LOCAL_PARAMS_VERSION 1

/* An embedded cluster for this machine. */
typedef struct distri_local_params {
  uint32_t struct_size;    /* sizeof(distri_local_params_t), set by _init */
  uint32_t struct_version; /* DISTRI_LOCAL_PARAMS_VERSION, set by _init */
  /* Required. A model folder in diffusers' layout (e.g. from `distri model init --arch
   * sdxl-tiny DIR`); every actor loads it once at start. */
  const char* model_path;
  /* GPUs to run actors on: -1 (default) every visible GPU, 0 none, N the first N. */
  int32_t gpus;
  /* CPU actors: -1 (default) one if no GPU actor is started, else none; 0..64 exactly. */
  int32_t cpu_actors;
  /* Weight dtype in the actors: NULL or "auto" (default: fp16 on GPUs, fp32 on CPUs),
   * "fp32", "fp16", "bf16". */
  const char* dtype;
  /* The actor executable. NULL: $DISTRI_WORKER_PATH, else `distri-worker` next to libdistri,
   * next to the running executable, then on PATH. */
  const char* worker_path;
  /* Folder for keys, the job database and logs. NULL (default): a fresh temporary folder,
   * removed by distri_client_destroy. */
  const char* work_dir;
  /* How long distri_client_create_local waits for the actors to be ready (model loaded);
   * -1 waits forever. Default 300000. */
  int32_t startup_timeout_ms;
  /* Timeout of each request to the embedded head; > 0. Default 30000. */
  int32_t request_timeout_ms;
} distri_local_params_t;

/* Fills struct_size, struct_version and the defaults. */
DISTRI_API void distri_local_params_init(distri_local_params_t* params);

/* Starts an embedded cluster in this process and connects a client to it; returns once at
 * least one actor has loaded the model. distri_client_destroy stops the cluster (and its
 * worker processes). Errors: INVALID_ARGUMENT, NOT_FOUND (model folder, distri-worker),
 * DEADLINE_EXCEEDED (actors not ready in startup_timeout_ms; the message carries the tail
 * of their logs), UNIMPLEMENTED (library built without the runtime), others from startup. */
DISTRI_API distri_status_t distri_client_create_local(const distri_local_params_t* params,
                                                      distri_client_t** out_client);

/* Closes the connection; for an embedded cluster, cancels its jobs, stops its workers and
 * removes its temporary folder. Jobs of this client stay valid handles whose calls fail with
 * DISTRI_ERR_FAILED_PRECONDITION. NULL is a no-op; a handle that is not a live client is
 * ignored. Blocks until the cluster has stopped (a few seconds at most). */
DISTRI_API void distri_client_destroy(distri_client_t* client);

#define DISTRI_CLUSTER_INFO_VERSION 1

/* A summary of the cluster (output struct; call _init before passing it). */
typedef struct distri_cluster_info {
  uint32_t struct_size;    /* in: sizeof(distri_cluster_info_t), set by _init */
  uint32_t struct_version; /* in: DISTRI_CLUSTER_INFO_VERSION, set by _init */
  uint32_t nodes;          /* registered node agents that are alive */
  uint32_t gpus;           /* GPUs of those nodes */
  uint32_t actors;         /* actors alive (GPU and CPU) */
  uint32_t idle_actors;    /* actors alive and without a task */
  uint32_t queue_length;   /* jobs waiting for a gang */
  uint32_t running_jobs;   /* jobs being rendered */
} distri_cluster_info_t;

DISTRI_API void distri_cluster_info_init(distri_cluster_info_t* info);

/* Asks the head for a summary. Errors: INVALID_ARGUMENT, UNAVAILABLE, FAILED_PRECONDITION
 * (client destroyed). */
DISTRI_API distri_status_t distri_client_get_cluster_info(distri_client_t* client,
                                                          distri_cluster_info_t* out_info);

/* ------------------------------------------------------------------------------------------ */
/* Jobs                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* One image request on a cluster. Thread-safe. */
typedef struct distri_job distri_job_t;

/* Called with the progress of a job: `step` denoising steps of `total_steps` done. Runs on the
 * thread inside distri_job_wait / distri_client_generate, once per observed change. Return 0
 * to continue, non-zero to cancel the job (the wait then returns DISTRI_OK with the job
 * CANCELLED, or distri_client_generate DISTRI_ERR_CANCELLED). Must not destroy the job. */
typedef int (*distri_progress_fn)(void* user_data, uint32_t step, uint32_t total_steps);

/* Version 1: the fields up to progress_user_data. Version 2 (0.2.0): preview_every,
 * guidance_rescale. */
#define DISTRI_JOB_PARAMS_VERSION 2

/* What to render. Ranges are those of the wire protocol (runtime/wire/limits.h). */
typedef struct distri_job_params {
  uint32_t struct_size;    /* sizeof(distri_job_params_t), set by _init */
  uint32_t struct_version; /* DISTRI_JOB_PARAMS_VERSION, set by _init */
  const char* prompt;          /* required; valid UTF-8, at most 1 MiB */
  const char* negative_prompt; /* NULL (default) = ""; valid UTF-8, at most 1 MiB */
  uint32_t width;              /* pixels, 1..16384 (the model may need a multiple of 8); default 1024 */
  uint32_t height;             /* pixels, 1..16384; default 1024 */
  uint32_t steps;              /* denoising steps, 1..10000; default 30 */
  double guidance;             /* classifier-free guidance scale, finite, >= 0; <= 1 disables it; default 5.0 */
  /* Sampler name: NULL (default) the model's own scheduler, or "ddim", "euler", "dpmpp_2m".
   * At most 255 bytes. */
  const char* sampler;
  uint64_t seed;               /* noise seed (default 0); same seed and params => same image */
  int32_t random_seed;         /* non-zero: ignore `seed`, the cluster draws one (see status.seed) */
  uint32_t gpus;               /* GPUs for this image (patch parallelism); 0 (default) = auto; <= 1024 */
  int32_t priority;            /* higher runs first; default 0 */
  int32_t output_format;       /* enum distri_output_format; default DISTRI_OUTPUT_PNG */
  const char* model;           /* NULL (default): the cluster's model; else its name, <= 255 bytes */
  distri_progress_fn progress; /* optional (NULL); see distri_progress_fn */
  void* progress_user_data;    /* passed to `progress` */
  /* Since version 2. Latent previews: 0 (default) none; N (1..10000): every N denoising steps
   * rank 0 makes a preview of the current latent, never after the last step (steps 30,
   * preview_every 10: previews after steps 10 and 20); see distri_job_get_preview. Each costs
   * rank 0 a device sync and a small device->host copy; the image is the same either way. */
  uint32_t preview_every;
  /* Since version 2. diffusers' guidance_rescale (rescale_noise_cfg): 0 (default) off; up to 1
   * the guided prediction is rescaled toward the standard deviation of the conditional one
   * (for v-prediction models that over-expose at high guidance). Finite, 0..1. The same
   * image as `distri generate --guidance-rescale` with the same arguments. */
  double guidance_rescale;
} distri_job_params_t;

/* Fills struct_size, struct_version and the defaults above. */
DISTRI_API void distri_job_params_init(distri_job_params_t* params);

/* Checks params as distri_job_submit would, without a cluster. DISTRI_OK or
 * DISTRI_ERR_INVALID_ARGUMENT with the field named in distri_last_error(). */
DISTRI_API distri_status_t distri_job_params_validate(const distri_job_params_t* params);

/* Submits one job. Returns once the cluster has recorded it durably; *out_job then tracks it
 * (destroy it with distri_job_destroy; that does not cancel the job).
 * Errors: INVALID_ARGUMENT (params; the message names the field), UNAVAILABLE,
 * DEADLINE_EXCEEDED, FAILED_PRECONDITION (client destroyed). */
DISTRI_API distri_status_t distri_job_submit(distri_client_t* client,
                                             const distri_job_params_t* params,
                                             distri_job_t** out_job);

/* Submits `count` jobs (1..65536) as one batch. params[i] describes out_jobs[i]. Every params
 * struct is validated before anything is sent. The head receives the batch in one message
 * (4096 jobs at most per message; a larger batch goes in several) and queues all of it before
 * it schedules any, so jobs with gpus = 0 (auto) are sized knowing the whole batch waits: a
 * batch of small images runs one image per GPU, where the same jobs submitted one at a time
 * may start on multi-GPU gangs. Order and priority are those of single submits. A head older
 * than batch submission (wire minor version 5) gets one request per job, transparently.
 * All or nothing: on any error no handle is returned (out_jobs[*] = NULL), the jobs already
 * accepted are cancelled (best effort: a request that timed out may have been accepted
 * unseen), and the message names the job the cluster refused, if one was ("params[3]: ...").
 * Errors: as distri_job_submit. */
DISTRI_API distri_status_t distri_job_submit_batch(distri_client_t* client,
                                                   const distri_job_params_t* const* params,
                                                   size_t count, distri_job_t** out_jobs);

/* Tracks a job submitted elsewhere (e.g. by `distri-cluster submit`) by its id, 32 lowercase
 * hex digits. Errors: INVALID_ARGUMENT (malformed id), NOT_FOUND (unknown to the head). */
DISTRI_API distri_status_t distri_job_open(distri_client_t* client, const char* job_id,
                                           distri_job_t** out_job);

/* Releases the handle; the job itself keeps running on the cluster (cancel it first if it
 * is not wanted). NULL is a no-op; a handle that is not a live job is ignored. */
DISTRI_API void distri_job_destroy(distri_job_t* job);

/* The job's id, 32 lowercase hex digits. Owned by the job; valid until distri_job_destroy.
 * NULL for a NULL or destroyed handle. */
DISTRI_API const char* distri_job_id(const distri_job_t* job);

#define DISTRI_JOB_STATUS_VERSION 1

/* State and progress of a job (output struct; call _init before passing it). */
typedef struct distri_job_status {
  uint32_t struct_size;    /* in: sizeof(distri_job_status_t), set by _init */
  uint32_t struct_version; /* in: DISTRI_JOB_STATUS_VERSION, set by _init */
  int32_t state;           /* enum distri_job_state */
  uint32_t step;           /* denoising steps done, 0..total_steps */
  uint32_t total_steps;
  uint32_t attempt;        /* 0 for the first run, +1 per re-run after an actor failure */
  uint32_t queue_position; /* jobs ahead of it while PENDING */
  uint64_t seed;           /* the seed the job uses (drawn by the cluster if random_seed); 0 for
                            * a job from distri_job_open until its result was fetched */
  /* Why the job FAILED ("" otherwise). Owned by the job; valid until distri_job_destroy. */
  const char* error;
} distri_job_status_t;

DISTRI_API void distri_job_status_init(distri_job_status_t* status);

/* Asks the cluster for the job's state (the polling alternative to a progress callback).
 * Errors: INVALID_ARGUMENT, UNAVAILABLE, NOT_FOUND, FAILED_PRECONDITION (client destroyed). */
DISTRI_API distri_status_t distri_job_get_status(distri_job_t* job, distri_job_status_t* out_status);

/* Blocks until the job reaches a terminal state or timeout_ms passes, calling the job's
 * progress callback (if any) as steps complete. Returns DISTRI_OK when the job is terminal,
 * whichever state it ended in (see out_status, which may be NULL); DISTRI_ERR_DEADLINE_EXCEEDED
 * when the timeout expired first (the job keeps running; out_status then holds the last state
 * seen, so short waits in a loop can report progress); other errors as get_status. */
DISTRI_API distri_status_t distri_job_wait(distri_job_t* job, int64_t timeout_ms,
                                           distri_job_status_t* out_status);

/* Asks the cluster to cancel the job. DISTRI_OK also when the job had already finished (its
 * state then stays SUCCEEDED or FAILED). A distri_job_wait blocked in another thread returns
 * with the job CANCELLED. Errors as get_status. */
DISTRI_API distri_status_t distri_job_cancel(distri_job_t* job);

#define DISTRI_IMAGE_INFO_VERSION 1

/* Metadata of a result image (output struct; call _init before passing it). */
typedef struct distri_image_info {
  uint32_t struct_size;    /* in: sizeof(distri_image_info_t), set by _init */
  uint32_t struct_version; /* in: DISTRI_IMAGE_INFO_VERSION, set by _init */
  int32_t format;          /* enum distri_output_format of the buffer */
  uint32_t width;          /* pixels */
  uint32_t height;         /* pixels */
  uint32_t stride;         /* bytes per row for DISTRI_OUTPUT_RGB8 (width * 3); 0 for PNG */
  uint64_t seed;           /* the seed used */
  uint32_t attempt;        /* which attempt produced it */
  uint32_t gang_size;      /* actors that rendered it */
  double queued_ms;        /* accepted -> first task assigned */
  double run_ms;           /* first task assigned -> image decoded */
  double total_ms;         /* accepted -> result stored */
} distri_image_info_t;

DISTRI_API void distri_image_info_init(distri_image_info_t* info);

/* Fetches the image of a SUCCEEDED job into a new buffer (*out_image; free it with
 * distri_buffer_destroy) in the job's output_format; out_info (may be NULL) gets its metadata.
 * Does not wait: FAILED_PRECONDITION for a job still pending or running; CANCELLED for a
 * cancelled job; ABORTED for a failed job (the message carries the job's error). */
DISTRI_API distri_status_t distri_job_get_result(distri_job_t* job, distri_buffer_t** out_image,
                                                 distri_image_info_t* out_info);

/* The newest latent preview of a job submitted with preview_every > 0 (no waiting): a PNG,
 * 8-bit RGB, of the latent's resolution, width / 8 x height / 8 pixels (1024x1024 -> 128x128),
 * made without the VAE by a fixed linear map of the latent's channels to RGB (colours and
 * layout, not detail). Always PNG, whatever the job's output_format.
 *
 * Asks the cluster for its current preview (one request; it keeps only the newest, of a
 * running job) and returns the newest one this handle has received, so a preview stays
 * available after the job ends: distri_job_wait also receives them as it polls a job that
 * was submitted through this handle with preview_every > 0 (not distri_client_generate's).
 * A re-run after an actor failure (status.attempt + 1) starts over: the earlier attempt's
 * preview is dropped.
 *
 * On success *out_image is a new buffer (free it with distri_buffer_destroy) and *out_step the
 * step the preview was taken after (a multiple of preview_every, 1..total_steps - 1);
 * out_info (may be NULL) gets format DISTRI_OUTPUT_PNG, width, height, stride 0, the seed and
 * the attempt that made it (gang_size and the times are 0). On error *out_image is NULL and
 * *out_step 0.
 * Errors: INVALID_ARGUMENT (NULL or destroyed job, NULL out_image or out_step, out_info not
 * initialised), NOT_FOUND (no preview: the job was submitted without preview_every, has not
 * reached its first preview step yet, has fewer than preview_every + 1 steps, or ended before
 * this handle received one; the message says which, with the job's state and step; also for
 * a job the cluster does not know), UNAVAILABLE, FAILED_PRECONDITION (client destroyed),
 * INTERNAL (the cluster sent something that is not a PNG). Thread-safe like every job call. */
DISTRI_API distri_status_t distri_job_get_preview(distri_job_t* job, distri_buffer_t** out_image,
                                                  distri_image_info_t* out_info, uint32_t* out_step);

/* Submit + wait + fetch in one call, for the common "render one image" case. Returns DISTRI_OK
 * with the image, DISTRI_ERR_CANCELLED / DISTRI_ERR_ABORTED if the job was cancelled (by the
 * progress callback) / failed, DISTRI_ERR_DEADLINE_EXCEEDED after timeout_ms (the job is then
 * cancelled), or the errors of distri_job_submit. */
DISTRI_API distri_status_t distri_client_generate(distri_client_t* client,
                                                  const distri_job_params_t* params,
                                                  int64_t timeout_ms, distri_buffer_t** out_image,
                                                  distri_image_info_t* out_info);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DISTRI_DISTRI_H_ */
