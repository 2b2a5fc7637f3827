// Package distri is the Go API of distri, distributed diffusion image generation: cgo over
// libdistri's C ABI (capi/include/distri/distri.h, which documents every call).
//
//	client, err := distri.NewLocal(distri.LocalOptions{ModelPath: "/models/sdxl"})
//	if err != nil { ... }
//	defer client.Close()
//	img, err := client.Generate(ctx, distri.NewJobRequest("a lighthouse at dawn"))
//	os.WriteFile("lighthouse.png", img.Data, 0o644)
//
// Build: the header comes from this repository (capi/include); point the linker at
// libdistri with CGO_LDFLAGS="-L<dir> -Wl,-rpath,<dir>" (or install it system-wide).
//
// Clients and jobs are safe for concurrent use; Close must not race with other calls on the
// same object. Cancelling a context stops a wait (Generate also cancels its job).
package distri

/*
#cgo CFLAGS: -I${SRCDIR}/../../capi/include
#cgo LDFLAGS: -ldistri
#include <stdlib.h>
#include <distri/distri.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Code is a status code of the C ABI (frozen values).
type Code int

const (
	OK                 Code = C.DISTRI_OK
	InvalidArgument    Code = C.DISTRI_ERR_INVALID_ARGUMENT
	NotFound           Code = C.DISTRI_ERR_NOT_FOUND
	AlreadyExists      Code = C.DISTRI_ERR_ALREADY_EXISTS
	IO                 Code = C.DISTRI_ERR_IO
	Parse              Code = C.DISTRI_ERR_PARSE
	Unavailable        Code = C.DISTRI_ERR_UNAVAILABLE
	Cancelled          Code = C.DISTRI_ERR_CANCELLED
	DeadlineExceeded   Code = C.DISTRI_ERR_DEADLINE_EXCEEDED
	Internal           Code = C.DISTRI_ERR_INTERNAL
	Unimplemented      Code = C.DISTRI_ERR_UNIMPLEMENTED
	OutOfMemory        Code = C.DISTRI_ERR_OUT_OF_MEMORY
	Aborted            Code = C.DISTRI_ERR_ABORTED // the job failed on the cluster
	PermissionDenied   Code = C.DISTRI_ERR_PERMISSION_DENIED
	FailedPrecondition Code = C.DISTRI_ERR_FAILED_PRECONDITION
)

func (c Code) String() string { return C.GoString(C.distri_status_name(C.distri_status_t(c))) }

// Error is a failed call: its code and the library's message.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Message }

// Is matches another *Error with the same code (so errors.Is(err, distri.ErrCancelled) works),
// and context.DeadlineExceeded / context.Canceled for the matching codes.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return (target == context.DeadlineExceeded && e.Code == DeadlineExceeded) ||
		(target == context.Canceled && e.Code == Cancelled)
}

// Sentinels for errors.Is.
var (
	ErrInvalidArgument    = &Error{Code: InvalidArgument}
	ErrNotFound           = &Error{Code: NotFound}
	ErrUnavailable        = &Error{Code: Unavailable}
	ErrCancelled          = &Error{Code: Cancelled}
	ErrDeadlineExceeded   = &Error{Code: DeadlineExceeded}
	ErrUnimplemented      = &Error{Code: Unimplemented}
	ErrJobFailed          = &Error{Code: Aborted}
	ErrFailedPrecondition = &Error{Code: FailedPrecondition}
)

// lastError must run on the OS thread of the failed call: the message is thread-local.
func lastError(rc C.distri_status_t) error {
	if rc == C.DISTRI_OK {
		return nil
	}
	return &Error{Code: Code(rc), Message: C.GoString(C.distri_last_error())}
}

func invalid(format string, args ...interface{}) error {
	return &Error{Code: InvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// call runs a C call and reads its error on the same OS thread.
func call(f func() C.distri_status_t) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return lastError(f())
}

// cstrings owns the C copies of Go strings for the duration of one call.
type cstrings []*C.char

func (cs *cstrings) str(field, s string, optional bool) (*C.char, error) {
	if optional && s == "" {
		return nil, nil
	}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, invalid("%s: contains a NUL byte", field)
	}
	p := C.CString(s)
	*cs = append(*cs, p)
	return p, nil
}

func (cs cstrings) free() {
	for _, p := range cs {
		C.free(unsafe.Pointer(p))
	}
}

// Version is the release of the loaded libdistri ("0.2.0").
func Version() string { return C.GoString(C.distri_version()) }

// ABIVersion is the loaded library's ABI version (its SONAME number).
func ABIVersion() uint32 { return uint32(C.distri_abi_version()) }

// LogLevel of this process and of workers started later.
type LogLevel int32

const (
	LogDebug   LogLevel = C.DISTRI_LOG_DEBUG
	LogInfo    LogLevel = C.DISTRI_LOG_INFO
	LogWarning LogLevel = C.DISTRI_LOG_WARNING
	LogError   LogLevel = C.DISTRI_LOG_ERROR
	LogOff     LogLevel = C.DISTRI_LOG_OFF
)

func SetLogLevel(level LogLevel) error {
	return call(func() C.distri_status_t { return C.distri_log_set_level(C.int32_t(level)) })
}

// OutputFormat is the encoding of a result image.
type OutputFormat int32

const (
	PNG  OutputFormat = C.DISTRI_OUTPUT_PNG  // PNG bytes
	RGB8 OutputFormat = C.DISTRI_OUTPUT_RGB8 // raw RGB rows, Stride bytes each
)

// JobState of a job. SUCCEEDED, FAILED and CANCELLED are terminal.
type JobState int32

const (
	Pending   JobState = C.DISTRI_JOB_PENDING
	Scheduled JobState = C.DISTRI_JOB_SCHEDULED
	Running   JobState = C.DISTRI_JOB_RUNNING
	Succeeded JobState = C.DISTRI_JOB_SUCCEEDED
	Failed    JobState = C.DISTRI_JOB_FAILED
	Canceled  JobState = C.DISTRI_JOB_CANCELLED
)

func (s JobState) String() string { return C.GoString(C.distri_job_state_name(C.int32_t(s))) }

// Terminal reports SUCCEEDED, FAILED or CANCELLED.
func (s JobState) Terminal() bool { return s == Succeeded || s == Failed || s == Canceled }

// JobRequest says what to render. NewJobRequest fills the C defaults.
type JobRequest struct {
	Prompt         string // UTF-8 (the library rejects invalid UTF-8)
	NegativePrompt string
	Width, Height  uint32 // pixels, 1..16384
	Steps          uint32 // 1..10000
	Guidance       float64
	Sampler        string // "" = the model's; "ddim", "euler", "dpmpp_2m"
	Seed           uint64
	RandomSeed     bool   // the cluster draws the seed
	GPUs           uint32 // 0 = auto
	Priority       int32
	Format         OutputFormat
	Model          string // "" = the cluster's model
	PreviewEvery   uint32 // latent previews every N steps (0 = none); see Job.Preview
	// diffusers' guidance_rescale: 0 (the default) off, up to 1; other values and NaN are
	// refused (InvalidArgument).
	GuidanceRescale float64
}

// NewJobRequest returns a request with distri.h's defaults: 1024x1024, 30 steps, guidance 5.
func NewJobRequest(prompt string) JobRequest {
	return JobRequest{Prompt: prompt, Width: 1024, Height: 1024, Steps: 30, Guidance: 5}
}

func (r *JobRequest) toC(cs *cstrings, p *C.distri_job_params_t) error {
	C.distri_job_params_init(p)
	var err error
	// The prompt is required: "" is passed on, and NUL bytes are refused here.
	if p.prompt, err = cs.str("prompt", r.Prompt, false); err != nil {
		return err
	}
	if p.negative_prompt, err = cs.str("negative_prompt", r.NegativePrompt, true); err != nil {
		return err
	}
	if p.sampler, err = cs.str("sampler", r.Sampler, true); err != nil {
		return err
	}
	if p.model, err = cs.str("model", r.Model, true); err != nil {
		return err
	}
	p.width, p.height, p.steps = C.uint32_t(r.Width), C.uint32_t(r.Height), C.uint32_t(r.Steps)
	p.guidance = C.double(r.Guidance)
	p.seed = C.uint64_t(r.Seed)
	if r.RandomSeed {
		p.random_seed = 1
	}
	p.gpus = C.uint32_t(r.GPUs)
	p.priority = C.int32_t(r.Priority)
	p.output_format = C.int32_t(r.Format)
	p.preview_every = C.uint32_t(r.PreviewEvery)
	p.guidance_rescale = C.double(r.GuidanceRescale)
	return nil
}

// Validate checks the request as Submit would, without a cluster.
func (r JobRequest) Validate() error {
	var cs cstrings
	defer cs.free()
	p := (*C.distri_job_params_t)(C.calloc(1, C.sizeof_distri_job_params_t))
	defer C.free(unsafe.Pointer(p))
	if err := r.toC(&cs, p); err != nil {
		return err
	}
	return call(func() C.distri_status_t { return C.distri_job_params_validate(p) })
}

// Image is a result image.
type Image struct {
	Data          []byte
	Format        OutputFormat
	Width, Height uint32
	Stride        uint32 // bytes per RGB8 row; 0 for PNG
	Seed          uint64
	Attempt       uint32
	GangSize      uint32
	QueuedMs      float64
	RunMs         float64
	TotalMs       float64
}

func takeImage(buf *C.distri_buffer_t, info *C.distri_image_info_t) *Image {
	defer C.distri_buffer_destroy(buf)
	data := C.GoBytes(unsafe.Pointer(C.distri_buffer_data(buf)), C.int(C.distri_buffer_size(buf)))
	return &Image{Data: data, Format: OutputFormat(info.format), Width: uint32(info.width),
		Height: uint32(info.height), Stride: uint32(info.stride), Seed: uint64(info.seed),
		Attempt: uint32(info.attempt), GangSize: uint32(info.gang_size), QueuedMs: float64(info.queued_ms),
		RunMs: float64(info.run_ms), TotalMs: float64(info.total_ms)}
}

// Preview is a latent preview of a running job (Job.Preview): PNG bytes of Width x Height = the
// image's size / 8, taken after denoising step Step of the job's attempt Attempt.
type Preview struct {
	Data          []byte
	Step          uint32
	Width, Height uint32
	Attempt       uint32
}

// JobStatus is what a job reports.
type JobStatus struct {
	State         JobState
	Step          uint32
	TotalSteps    uint32
	Attempt       uint32
	QueuePosition uint32
	Seed          uint64
	Error         string // why, when FAILED
}

func statusFromC(s *C.distri_job_status_t) JobStatus {
	out := JobStatus{State: JobState(s.state), Step: uint32(s.step), TotalSteps: uint32(s.total_steps),
		Attempt: uint32(s.attempt), QueuePosition: uint32(s.queue_position), Seed: uint64(s.seed)}
	if s.error != nil {
		out.Error = C.GoString(s.error)
	}
	return out
}

// ClusterInfo summarises the cluster.
type ClusterInfo struct {
	Nodes, GPUs, Actors, IdleActors, QueueLength, RunningJobs uint32
}

// LocalOptions of an embedded cluster. Zero values take distri.h's defaults.
type LocalOptions struct {
	ModelPath      string
	GPUs           *int32 // nil: every visible GPU; 0: none; N: the first N
	CPUActors      *int32 // nil: one if no GPU is used
	DType          string // "" = auto
	WorkerPath     string
	WorkDir        string
	StartupTimeout time.Duration // 0 = 300 s; < 0 waits forever
	RequestTimeout time.Duration // 0 = 30 s
}

// ConnectOptions of a running cluster ("fake://" is the library's fake cluster, for tests).
type ConnectOptions struct {
	Address         string
	KeyDir          string
	ServerPublicKey string
	ClientPublicKey string
	ClientSecretKey string
	RequestTimeout  time.Duration // 0 = 30 s
}

func ms32(d time.Duration) C.int32_t {
	m := d.Milliseconds()
	if m > 1<<31-1 {
		m = 1<<31 - 1
	}
	if m < 1 {
		m = 1
	}
	return C.int32_t(m)
}

// Client is a connection to a cluster (remote, or embedded in this process).
type Client struct {
	mu sync.Mutex
	c  *C.distri_client_t
}

func newClient(c *C.distri_client_t) *Client {
	cl := &Client{c: c}
	runtime.SetFinalizer(cl, (*Client).Close)
	return cl
}

// NewLocal starts an embedded cluster for this machine and connects to it.
func NewLocal(o LocalOptions) (*Client, error) {
	var cs cstrings
	defer cs.free()
	p := (*C.distri_local_params_t)(C.calloc(1, C.sizeof_distri_local_params_t))
	defer C.free(unsafe.Pointer(p))
	C.distri_local_params_init(p)
	var err error
	if p.model_path, err = cs.str("ModelPath", o.ModelPath, false); err != nil {
		return nil, err
	}
	if p.dtype, err = cs.str("DType", o.DType, true); err != nil {
		return nil, err
	}
	if p.worker_path, err = cs.str("WorkerPath", o.WorkerPath, true); err != nil {
		return nil, err
	}
	if p.work_dir, err = cs.str("WorkDir", o.WorkDir, true); err != nil {
		return nil, err
	}
	if o.GPUs != nil {
		p.gpus = C.int32_t(*o.GPUs)
	}
	if o.CPUActors != nil {
		p.cpu_actors = C.int32_t(*o.CPUActors)
	}
	if o.StartupTimeout < 0 {
		p.startup_timeout_ms = -1
	} else if o.StartupTimeout > 0 {
		p.startup_timeout_ms = ms32(o.StartupTimeout)
	}
	if o.RequestTimeout > 0 {
		p.request_timeout_ms = ms32(o.RequestTimeout)
	}
	var c *C.distri_client_t
	if err := call(func() C.distri_status_t { return C.distri_client_create_local(p, &c) }); err != nil {
		return nil, err
	}
	return newClient(c), nil
}

// Connect connects to a running cluster.
func Connect(o ConnectOptions) (*Client, error) {
	var cs cstrings
	defer cs.free()
	p := (*C.distri_connect_params_t)(C.calloc(1, C.sizeof_distri_connect_params_t))
	defer C.free(unsafe.Pointer(p))
	C.distri_connect_params_init(p)
	var err error
	if p.address, err = cs.str("Address", o.Address, true); err != nil {
		return nil, err
	}
	if p.key_dir, err = cs.str("KeyDir", o.KeyDir, true); err != nil {
		return nil, err
	}
	if p.server_public_key, err = cs.str("ServerPublicKey", o.ServerPublicKey, true); err != nil {
		return nil, err
	}
	if p.client_public_key, err = cs.str("ClientPublicKey", o.ClientPublicKey, true); err != nil {
		return nil, err
	}
	if p.client_secret_key, err = cs.str("ClientSecretKey", o.ClientSecretKey, true); err != nil {
		return nil, err
	}
	if o.RequestTimeout > 0 {
		p.request_timeout_ms = ms32(o.RequestTimeout)
	}
	var c *C.distri_client_t
	if err := call(func() C.distri_status_t { return C.distri_client_connect(p, &c) }); err != nil {
		return nil, err
	}
	return newClient(c), nil
}

func (cl *Client) handle() (*C.distri_client_t, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.c == nil {
		return nil, &Error{Code: InvalidArgument, Message: "the client was closed"}
	}
	return cl.c, nil
}

// Close disconnects (and stops an embedded cluster). Jobs of this client then fail with
// FailedPrecondition. Idempotent.
func (cl *Client) Close() error {
	cl.mu.Lock()
	c := cl.c
	cl.c = nil
	cl.mu.Unlock()
	if c != nil {
		C.distri_client_destroy(c)
		runtime.SetFinalizer(cl, nil)
	}
	return nil
}

// Submit submits one image; the Job tracks it (closing the Job does not cancel it).
func (cl *Client) Submit(r JobRequest) (*Job, error) {
	c, err := cl.handle()
	if err != nil {
		return nil, err
	}
	var cs cstrings
	defer cs.free()
	p := (*C.distri_job_params_t)(C.calloc(1, C.sizeof_distri_job_params_t))
	defer C.free(unsafe.Pointer(p))
	if err := r.toC(&cs, p); err != nil {
		return nil, err
	}
	var j *C.distri_job_t
	if err := call(func() C.distri_status_t { return C.distri_job_submit(c, p, &j) }); err != nil {
		return nil, err
	}
	return newJob(cl, j), nil
}

// SubmitBatch submits several images as one batch: the head queues all of them before it
// schedules any, so "auto" GPU counts see the whole batch. All are checked first; all or
// nothing: if one is refused, none is submitted (those already accepted are cancelled) and the
// error names its index.
func (cl *Client) SubmitBatch(rs []JobRequest) ([]*Job, error) {
	c, err := cl.handle()
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, invalid("SubmitBatch: no requests")
	}
	var cs cstrings
	defer cs.free()
	n := C.size_t(len(rs))
	params := (*[1 << 20]C.distri_job_params_t)(C.calloc(n, C.sizeof_distri_job_params_t))[:len(rs):len(rs)]
	ptrs := (*[1 << 20]*C.distri_job_params_t)(C.calloc(n, C.size_t(unsafe.Sizeof(uintptr(0)))))[:len(rs):len(rs)]
	out := (*[1 << 20]*C.distri_job_t)(C.calloc(n, C.size_t(unsafe.Sizeof(uintptr(0)))))[:len(rs):len(rs)]
	defer C.free(unsafe.Pointer(&params[0]))
	defer C.free(unsafe.Pointer(&ptrs[0]))
	defer C.free(unsafe.Pointer(&out[0]))
	for i := range rs {
		if err := rs[i].toC(&cs, &params[i]); err != nil {
			return nil, err
		}
		ptrs[i] = &params[i]
	}
	if err := call(func() C.distri_status_t { return C.distri_job_submit_batch(c, &ptrs[0], n, &out[0]) }); err != nil {
		return nil, err
	}
	jobs := make([]*Job, len(rs))
	for i := range out {
		jobs[i] = newJob(cl, out[i])
	}
	return jobs, nil
}

// Generate submits, waits and fetches. When ctx ends first the job is cancelled and ctx's
// error returned.
func (cl *Client) Generate(ctx context.Context, r JobRequest) (*Image, error) {
	job, err := cl.Submit(r)
	if err != nil {
		return nil, err
	}
	defer job.Close()
	if _, err := job.Wait(ctx, nil); err != nil {
		_ = job.Cancel()
		return nil, err
	}
	return job.Result()
}

// OpenJob returns a handle on a job submitted elsewhere, by its 32-hex-digit id.
func (cl *Client) OpenJob(id string) (*Job, error) {
	c, err := cl.handle()
	if err != nil {
		return nil, err
	}
	var cs cstrings
	defer cs.free()
	cid, err := cs.str("id", id, false)
	if err != nil {
		return nil, err
	}
	var j *C.distri_job_t
	if err := call(func() C.distri_status_t { return C.distri_job_open(c, cid, &j) }); err != nil {
		return nil, err
	}
	return newJob(cl, j), nil
}

// ClusterInfo asks the head for a summary.
func (cl *Client) ClusterInfo() (ClusterInfo, error) {
	c, err := cl.handle()
	if err != nil {
		return ClusterInfo{}, err
	}
	var info C.distri_cluster_info_t
	C.distri_cluster_info_init(&info)
	if err := call(func() C.distri_status_t { return C.distri_client_get_cluster_info(c, &info) }); err != nil {
		return ClusterInfo{}, err
	}
	return ClusterInfo{uint32(info.nodes), uint32(info.gpus), uint32(info.actors), uint32(info.idle_actors),
		uint32(info.queue_length), uint32(info.running_jobs)}, nil
}

// Job is a submitted job.
type Job struct {
	ID     string
	client *Client // keeps the client reachable while its jobs are
	mu     sync.Mutex
	j      *C.distri_job_t
}

func newJob(cl *Client, j *C.distri_job_t) *Job {
	job := &Job{ID: C.GoString(C.distri_job_id(j)), client: cl, j: j}
	runtime.SetFinalizer(job, (*Job).Close)
	return job
}

func (j *Job) handle() (*C.distri_job_t, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.j == nil {
		return nil, &Error{Code: InvalidArgument, Message: "the job was closed"}
	}
	return j.j, nil
}

// Close releases the handle (the job keeps running on the cluster). Idempotent.
func (j *Job) Close() error {
	j.mu.Lock()
	h := j.j
	j.j = nil
	j.mu.Unlock()
	if h != nil {
		C.distri_job_destroy(h)
		runtime.SetFinalizer(j, nil)
	}
	return nil
}

// Status asks the cluster for the job's state.
func (j *Job) Status() (JobStatus, error) {
	h, err := j.handle()
	if err != nil {
		return JobStatus{}, err
	}
	var s C.distri_job_status_t
	C.distri_job_status_init(&s)
	if err := call(func() C.distri_status_t { return C.distri_job_get_status(h, &s) }); err != nil {
		return JobStatus{}, err
	}
	return statusFromC(&s), nil
}

// waitSlice bounds each blocking C call so a cancelled context is noticed quickly.
const waitSlice = 100 * time.Millisecond

// Wait blocks until the job is terminal (returned, whatever the state) or ctx ends (ctx's
// error; the job keeps running: Cancel it if it is not wanted). progress, if not nil, is
// called with (step, total) as steps complete.
func (j *Job) Wait(ctx context.Context, progress func(step, total uint32)) (JobStatus, error) {
	h, err := j.handle()
	if err != nil {
		return JobStatus{}, err
	}
	var last [2]uint32
	seen := false
	for {
		if err := ctx.Err(); err != nil {
			return JobStatus{}, err
		}
		slice := waitSlice
		if d, ok := ctx.Deadline(); ok {
			if left := time.Until(d); left < slice {
				slice = left
			}
			if slice < 0 {
				slice = 0
			}
		}
		var s C.distri_job_status_t
		C.distri_job_status_init(&s)
		runtime.LockOSThread()
		rc := C.distri_job_wait(h, C.int64_t(slice.Milliseconds()), &s)
		var werr error
		if rc != C.DISTRI_OK && rc != C.DISTRI_ERR_DEADLINE_EXCEEDED {
			werr = lastError(rc)
		}
		runtime.UnlockOSThread()
		if werr != nil {
			return JobStatus{}, werr
		}
		st := statusFromC(&s)
		if progress != nil && st.TotalSteps > 0 && (!seen || last != [2]uint32{st.Step, st.TotalSteps}) {
			seen, last = true, [2]uint32{st.Step, st.TotalSteps}
			progress(st.Step, st.TotalSteps)
		}
		if rc == C.DISTRI_OK {
			return st, nil
		}
	}
}

// Cancel asks the cluster to cancel the job (nil if it already finished).
func (j *Job) Cancel() error {
	h, err := j.handle()
	if err != nil {
		return err
	}
	return call(func() C.distri_status_t { return C.distri_job_cancel(h) })
}

// Result fetches the image of a SUCCEEDED job (ErrCancelled, ErrJobFailed, or
// ErrFailedPrecondition while it runs).
func (j *Job) Result() (*Image, error) {
	h, err := j.handle()
	if err != nil {
		return nil, err
	}
	var buf *C.distri_buffer_t
	var info C.distri_image_info_t
	C.distri_image_info_init(&info)
	if err := call(func() C.distri_status_t { return C.distri_job_get_result(h, &buf, &info) }); err != nil {
		return nil, err
	}
	return takeImage(buf, &info), nil
}

// Preview returns the newest latent preview of a job submitted with PreviewEvery > 0, or
// (nil, nil) when there is none (none asked for, no preview step reached yet, or the job ended
// before this handle received one; Wait receives them as it polls). It does not wait.
func (j *Job) Preview() (*Preview, error) {
	h, err := j.handle()
	if err != nil {
		return nil, err
	}
	var buf *C.distri_buffer_t
	var info C.distri_image_info_t
	var step C.uint32_t
	C.distri_image_info_init(&info)
	err = call(func() C.distri_status_t { return C.distri_job_get_preview(h, &buf, &info, &step) })
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	img := takeImage(buf, &info)
	return &Preview{Data: img.Data, Step: uint32(step), Width: img.Width, Height: img.Height, Attempt: img.Attempt}, nil
}
