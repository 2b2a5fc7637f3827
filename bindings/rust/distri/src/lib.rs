//! Safe Rust API of distri (over `distri-sys`, the C ABI of libdistri).
//!
//! ```no_run
//! use distri::{Client, JobRequest, LocalOptions};
//! let client = Client::local(&LocalOptions::new("/models/sdxl"))?;
//! let image = client.generate(&JobRequest::new("a lighthouse at dawn").size(1024, 1024).seed(42), None)?;
//! std::fs::write("lighthouse.png", &image.data).unwrap();
//! # Ok::<(), distri::Error>(())
//! ```
//!
//! Handles free themselves on drop (RAII). `Client` and `Job` are `Send + Sync` (the C
//! objects are thread-safe, distri.h). A `Job` stays usable after its `Client` is dropped;
//! its calls then fail with `Code::FailedPrecondition`.
mod error;

pub use error::{Code, Error, Result};

use distri_sys as sys;
use std::ffi::{CStr, CString};
use std::ops::ControlFlow;
use std::os::raw::c_char;
use std::ptr;
use std::time::{Duration, Instant};

fn last_error(code: i32) -> Error {
    let msg = unsafe { CStr::from_ptr(sys::distri_last_error()) };
    Error::new(Code::from_raw(code), msg.to_string_lossy().into_owned())
}

fn check(code: i32) -> Result<()> {
    if code == sys::DISTRI_OK {
        Ok(())
    } else {
        Err(last_error(code))
    }
}

fn invalid(msg: String) -> Error {
    Error::new(Code::InvalidArgument, msg)
}

fn cstring(field: &str, bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| invalid(format!("{}: contains a NUL byte", field)))
}

fn opt_cstring(field: &str, value: &Option<Vec<u8>>) -> Result<Option<CString>> {
    match value {
        Some(v) => cstring(field, v).map(Some),
        None => Ok(None),
    }
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |c| c.as_ptr())
}

fn millis(timeout: Option<Duration>) -> i64 {
    match timeout {
        None => -1,
        Some(d) => d.as_millis().min(i64::MAX as u128) as i64,
    }
}

/// The release of the loaded libdistri, e.g. "0.1.0".
pub fn version() -> String {
    unsafe { CStr::from_ptr(sys::distri_version()) }.to_string_lossy().into_owned()
}

/// The ABI version of the loaded libdistri (the SONAME's number).
pub fn abi_version() -> u32 {
    unsafe { sys::distri_abi_version() }
}

/// Log verbosity of this process and of workers started later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
    Off = 4,
}

pub fn set_log_level(level: LogLevel) -> Result<()> {
    check(unsafe { sys::distri_log_set_level(level as i32) })
}

/// Encoding of a result image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// PNG bytes (8-bit RGB).
    Png,
    /// Raw 8-bit RGB rows, `stride` bytes each.
    Rgb8,
}

/// State of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Scheduled,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Unknown(i32),
}

impl JobState {
    fn from_raw(v: i32) -> JobState {
        match v {
            sys::DISTRI_JOB_PENDING => JobState::Pending,
            sys::DISTRI_JOB_SCHEDULED => JobState::Scheduled,
            sys::DISTRI_JOB_RUNNING => JobState::Running,
            sys::DISTRI_JOB_SUCCEEDED => JobState::Succeeded,
            sys::DISTRI_JOB_FAILED => JobState::Failed,
            sys::DISTRI_JOB_CANCELLED => JobState::Cancelled,
            other => JobState::Unknown(other),
        }
    }
    /// SUCCEEDED, FAILED or CANCELLED.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// What a job reports (distri_job_status_t).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatus {
    pub state: JobState,
    pub step: u32,
    pub total_steps: u32,
    pub attempt: u32,
    pub queue_position: u32,
    pub seed: u64,
    /// Why the job failed ("" otherwise).
    pub error: String,
}

impl JobStatus {
    fn from_raw(s: &sys::distri_job_status_t) -> JobStatus {
        let error = if s.error.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(s.error) }.to_string_lossy().into_owned()
        };
        JobStatus {
            state: JobState::from_raw(s.state),
            step: s.step,
            total_steps: s.total_steps,
            attempt: s.attempt,
            queue_position: s.queue_position,
            seed: s.seed,
            error,
        }
    }
}

/// A summary of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    pub nodes: u32,
    pub gpus: u32,
    pub actors: u32,
    pub idle_actors: u32,
    pub queue_length: u32,
    pub running_jobs: u32,
}

/// A result image.
#[derive(Clone, Debug)]
pub struct Image {
    pub data: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes per row of `Rgb8` data (0 for PNG).
    pub stride: u32,
    pub seed: u64,
    pub attempt: u32,
    pub gang_size: u32,
    pub queued_ms: f64,
    pub run_ms: f64,
    pub total_ms: f64,
}

impl Image {
    fn take(buf: *mut sys::distri_buffer_t, info: &sys::distri_image_info_t) -> Image {
        let data = unsafe {
            let p = sys::distri_buffer_data(buf);
            let n = sys::distri_buffer_size(buf);
            let v = if p.is_null() { Vec::new() } else { std::slice::from_raw_parts(p, n).to_vec() };
            sys::distri_buffer_destroy(buf);
            v
        };
        Image {
            data,
            format: if info.format == sys::DISTRI_OUTPUT_RGB8 { OutputFormat::Rgb8 } else { OutputFormat::Png },
            width: info.width,
            height: info.height,
            stride: info.stride,
            seed: info.seed,
            attempt: info.attempt,
            gang_size: info.gang_size,
            queued_ms: info.queued_ms,
            run_ms: info.run_ms,
            total_ms: info.total_ms,
        }
    }
}

/// A latent preview of a running job (`Job::preview`): PNG bytes of `width` x `height` = the
/// image's size / 8, taken after denoising step `step` of the job's attempt `attempt`.
#[derive(Clone, Debug)]
pub struct Preview {
    pub data: Vec<u8>,
    pub step: u32,
    pub width: u32,
    pub height: u32,
    pub attempt: u32,
}

/// What to render (distri_job_params_t). Defaults are the C ones: 1024x1024, 30 steps,
/// guidance 5.0, the model's sampler, seed 0, PNG, no previews.
#[derive(Clone, Debug)]
pub struct JobRequest {
    prompt: Vec<u8>,
    negative_prompt: Option<Vec<u8>>,
    width: u32,
    height: u32,
    steps: u32,
    guidance: f64,
    sampler: Option<Vec<u8>>,
    seed: Option<u64>,
    gpus: u32,
    priority: i32,
    output_format: OutputFormat,
    model: Option<Vec<u8>>,
    preview_every: u32,
    guidance_rescale: f64,
}

impl JobRequest {
    /// `prompt` is UTF-8 text; raw bytes are accepted too (the library rejects invalid UTF-8).
    pub fn new(prompt: impl Into<Vec<u8>>) -> JobRequest {
        JobRequest {
            prompt: prompt.into(),
            negative_prompt: None,
            width: 1024,
            height: 1024,
            steps: 30,
            guidance: 5.0,
            sampler: None,
            seed: Some(0),
            gpus: 0,
            priority: 0,
            output_format: OutputFormat::Png,
            model: None,
            preview_every: 0,
            guidance_rescale: 0.0,
        }
    }
    pub fn negative_prompt(mut self, text: impl Into<Vec<u8>>) -> Self {
        self.negative_prompt = Some(text.into());
        self
    }
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }
    pub fn steps(mut self, steps: u32) -> Self {
        self.steps = steps;
        self
    }
    pub fn guidance(mut self, guidance: f64) -> Self {
        self.guidance = guidance;
        self
    }
    /// diffusers' guidance_rescale: 0 (the default) off, up to 1; the library refuses values
    /// outside 0..=1 and NaN (`Error::InvalidArgument`).
    pub fn guidance_rescale(mut self, rescale: f64) -> Self {
        self.guidance_rescale = rescale;
        self
    }
    /// "ddim", "euler", "dpmpp_2m" (default: the model's scheduler).
    pub fn sampler(mut self, name: impl Into<Vec<u8>>) -> Self {
        self.sampler = Some(name.into());
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// The cluster draws the seed (reported in JobStatus / Image).
    pub fn random_seed(mut self) -> Self {
        self.seed = None;
        self
    }
    /// GPUs for this image (patch parallelism); 0 = auto.
    pub fn gpus(mut self, gpus: u32) -> Self {
        self.gpus = gpus;
        self
    }
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
    pub fn output_format(mut self, format: OutputFormat) -> Self {
        self.output_format = format;
        self
    }
    pub fn model(mut self, name: impl Into<Vec<u8>>) -> Self {
        self.model = Some(name.into());
        self
    }
    /// Latent previews every `steps` denoising steps (0, the default: none); see `Job::preview`.
    pub fn preview_every(mut self, steps: u32) -> Self {
        self.preview_every = steps;
        self
    }

    /// The C struct and the strings it points into (which must outlive it).
    fn to_raw(&self) -> Result<RawJobParams> {
        let prompt = cstring("prompt", &self.prompt)?;
        let negative = opt_cstring("negative_prompt", &self.negative_prompt)?;
        let sampler = opt_cstring("sampler", &self.sampler)?;
        let model = opt_cstring("model", &self.model)?;
        let mut p = unsafe {
            let mut p = std::mem::MaybeUninit::<sys::distri_job_params_t>::zeroed();
            sys::distri_job_params_init(p.as_mut_ptr());
            p.assume_init()
        };
        p.prompt = prompt.as_ptr();
        p.negative_prompt = opt_ptr(&negative);
        p.width = self.width;
        p.height = self.height;
        p.steps = self.steps;
        p.guidance = self.guidance;
        p.sampler = opt_ptr(&sampler);
        match self.seed {
            Some(s) => p.seed = s,
            None => p.random_seed = 1,
        }
        p.gpus = self.gpus;
        p.priority = self.priority;
        p.output_format = match self.output_format {
            OutputFormat::Png => sys::DISTRI_OUTPUT_PNG,
            OutputFormat::Rgb8 => sys::DISTRI_OUTPUT_RGB8,
        };
        p.model = opt_ptr(&model);
        p.preview_every = self.preview_every;
        p.guidance_rescale = self.guidance_rescale;
        Ok(RawJobParams { params: p, _strings: vec![Some(prompt), negative, sampler, model] })
    }

    /// Checks the request as submit would, without a cluster.
    pub fn validate(&self) -> Result<()> {
        let raw = self.to_raw()?;
        check(unsafe { sys::distri_job_params_validate(&raw.params) })
    }
}

struct RawJobParams {
    params: sys::distri_job_params_t,
    _strings: Vec<Option<CString>>,
}

/// Options of an embedded local cluster (distri_local_params_t).
#[derive(Clone, Debug)]
pub struct LocalOptions {
    pub model_path: String,
    /// None: every visible GPU; Some(0): none; Some(n): the first n.
    pub gpus: Option<i32>,
    /// None: one if no GPU is used.
    pub cpu_actors: Option<i32>,
    pub dtype: Option<String>,
    pub worker_path: Option<String>,
    pub work_dir: Option<String>,
    /// None waits forever.
    pub startup_timeout: Option<Duration>,
    pub request_timeout: Duration,
}

impl LocalOptions {
    pub fn new(model_path: impl Into<String>) -> LocalOptions {
        LocalOptions {
            model_path: model_path.into(),
            gpus: None,
            cpu_actors: None,
            dtype: None,
            worker_path: None,
            work_dir: None,
            startup_timeout: Some(Duration::from_secs(300)),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// How to reach a running cluster (distri_connect_params_t). "fake://" is the library's fake
/// cluster, for tests.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub address: String,
    pub key_dir: Option<String>,
    pub server_public_key: Option<String>,
    pub client_public_key: Option<String>,
    pub client_secret_key: Option<String>,
    pub request_timeout: Duration,
}

impl ConnectOptions {
    pub fn new(address: impl Into<String>) -> ConnectOptions {
        ConnectOptions {
            address: address.into(),
            key_dir: None,
            server_public_key: None,
            client_public_key: None,
            client_secret_key: None,
            request_timeout: Duration::from_secs(30),
        }
    }
}

fn clamp_i32_ms(d: Duration) -> i32 {
    d.as_millis().clamp(1, i32::MAX as u128) as i32
}

fn opt_string(field: &str, s: &Option<String>) -> Result<Option<CString>> {
    opt_cstring(field, &s.as_ref().map(|v| v.as_bytes().to_vec()))
}

/// A connection to a cluster. Dropping it disconnects (and stops an embedded cluster).
pub struct Client {
    raw: *mut sys::distri_client_t,
}

// The C client is thread-safe (distri.h).
unsafe impl Send for Client {}
unsafe impl Sync for Client {}

impl Client {
    /// Starts an embedded cluster for this machine and connects to it.
    pub fn local(options: &LocalOptions) -> Result<Client> {
        let model = cstring("model_path", options.model_path.as_bytes())?;
        let dtype = opt_string("dtype", &options.dtype)?;
        let worker = opt_string("worker_path", &options.worker_path)?;
        let work_dir = opt_string("work_dir", &options.work_dir)?;
        let mut p = unsafe {
            let mut p = std::mem::MaybeUninit::<sys::distri_local_params_t>::zeroed();
            sys::distri_local_params_init(p.as_mut_ptr());
            p.assume_init()
        };
        p.model_path = model.as_ptr();
        if let Some(g) = options.gpus {
            p.gpus = g;
        }
        if let Some(c) = options.cpu_actors {
            p.cpu_actors = c;
        }
        p.dtype = opt_ptr(&dtype);
        p.worker_path = opt_ptr(&worker);
        p.work_dir = opt_ptr(&work_dir);
        p.startup_timeout_ms = options.startup_timeout.map_or(-1, clamp_i32_ms);
        p.request_timeout_ms = clamp_i32_ms(options.request_timeout);
        let mut raw = ptr::null_mut();
        check(unsafe { sys::distri_client_create_local(&p, &mut raw) })?;
        Ok(Client { raw })
    }

    /// Connects to a running cluster.
    pub fn connect(options: &ConnectOptions) -> Result<Client> {
        let address = cstring("address", options.address.as_bytes())?;
        let key_dir = opt_string("key_dir", &options.key_dir)?;
        let server = opt_string("server_public_key", &options.server_public_key)?;
        let client_pub = opt_string("client_public_key", &options.client_public_key)?;
        let client_sec = opt_string("client_secret_key", &options.client_secret_key)?;
        let mut p = unsafe {
            let mut p = std::mem::MaybeUninit::<sys::distri_connect_params_t>::zeroed();
            sys::distri_connect_params_init(p.as_mut_ptr());
            p.assume_init()
        };
        p.address = address.as_ptr();
        p.key_dir = opt_ptr(&key_dir);
        p.server_public_key = opt_ptr(&server);
        p.client_public_key = opt_ptr(&client_pub);
        p.client_secret_key = opt_ptr(&client_sec);
        p.request_timeout_ms = clamp_i32_ms(options.request_timeout);
        let mut raw = ptr::null_mut();
        check(unsafe { sys::distri_client_connect(&p, &mut raw) })?;
        Ok(Client { raw })
    }

    /// Submits one image; the returned Job tracks it (dropping it does not cancel the job).
    pub fn submit(&self, request: &JobRequest) -> Result<Job> {
        let raw = request.to_raw()?;
        let mut job = ptr::null_mut();
        check(unsafe { sys::distri_job_submit(self.raw, &raw.params, &mut job) })?;
        Ok(Job::from_raw(job))
    }

    /// Submits several images as one batch: the head queues all of them before it schedules
    /// any, so "auto" GPU counts see the whole batch. All are checked first; all or nothing:
    /// if one is refused, none is submitted (those already accepted are cancelled) and the
    /// error names its index.
    pub fn submit_batch(&self, requests: &[JobRequest]) -> Result<Vec<Job>> {
        let raws = requests.iter().map(|r| r.to_raw()).collect::<Result<Vec<_>>>()?;
        let ptrs: Vec<*const sys::distri_job_params_t> = raws.iter().map(|r| &r.params as *const _).collect();
        let mut out: Vec<*mut sys::distri_job_t> = vec![ptr::null_mut(); requests.len()];
        check(unsafe { sys::distri_job_submit_batch(self.raw, ptrs.as_ptr(), ptrs.len(), out.as_mut_ptr()) })?;
        Ok(out.into_iter().map(Job::from_raw).collect())
    }

    /// Submit, wait and fetch. After `timeout` the job is cancelled (DeadlineExceeded).
    pub fn generate(&self, request: &JobRequest, timeout: Option<Duration>) -> Result<Image> {
        let raw = request.to_raw()?;
        let mut buf = ptr::null_mut();
        let mut info = sys::distri_image_info_t::default();
        unsafe { sys::distri_image_info_init(&mut info) };
        check(unsafe { sys::distri_client_generate(self.raw, &raw.params, millis(timeout), &mut buf, &mut info) })?;
        Ok(Image::take(buf, &info))
    }

    /// A handle on a job submitted elsewhere, by its 32-hex-digit id.
    pub fn open_job(&self, id: &str) -> Result<Job> {
        let id = cstring("job_id", id.as_bytes())?;
        let mut job = ptr::null_mut();
        check(unsafe { sys::distri_job_open(self.raw, id.as_ptr(), &mut job) })?;
        Ok(Job::from_raw(job))
    }

    pub fn cluster_info(&self) -> Result<ClusterInfo> {
        let mut info = sys::distri_cluster_info_t::default();
        unsafe { sys::distri_cluster_info_init(&mut info) };
        check(unsafe { sys::distri_client_get_cluster_info(self.raw, &mut info) })?;
        Ok(ClusterInfo {
            nodes: info.nodes,
            gpus: info.gpus,
            actors: info.actors,
            idle_actors: info.idle_actors,
            queue_length: info.queue_length,
            running_jobs: info.running_jobs,
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        unsafe { sys::distri_client_destroy(self.raw) };
    }
}

/// A submitted job. Dropping it releases the handle, not the job.
pub struct Job {
    raw: *mut sys::distri_job_t,
    id: String,
}

// The C job is thread-safe (distri.h).
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

// distri_job_wait runs in slices so progress is reported between them.
const WAIT_SLICE: Duration = Duration::from_millis(200);

impl Job {
    fn from_raw(raw: *mut sys::distri_job_t) -> Job {
        let id = unsafe { CStr::from_ptr(sys::distri_job_id(raw)) }.to_string_lossy().into_owned();
        Job { raw, id }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Asks the cluster for the job's state.
    pub fn status(&self) -> Result<JobStatus> {
        let mut s = new_status();
        check(unsafe { sys::distri_job_get_status(self.raw, &mut s) })?;
        Ok(JobStatus::from_raw(&s))
    }

    /// Blocks until the job is terminal (returned, whatever the state) or `timeout` passes
    /// (Err DeadlineExceeded; the job keeps running).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<JobStatus> {
        self.wait_with_progress(timeout, |_, _| ControlFlow::Continue(()))
    }

    /// As `wait`, calling `progress(step, total)` as steps complete; `ControlFlow::Break(())`
    /// cancels the job (the wait then ends with it CANCELLED).
    pub fn wait_with_progress<F: FnMut(u32, u32) -> ControlFlow<()>>(
        &self,
        timeout: Option<Duration>,
        mut progress: F,
    ) -> Result<JobStatus> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut last = None;
        loop {
            let mut slice = WAIT_SLICE;
            if let Some(d) = deadline {
                slice = slice.min(d.saturating_duration_since(Instant::now()));
            }
            let mut s = new_status();
            let rc = unsafe { sys::distri_job_wait(self.raw, slice.as_millis() as i64, &mut s) };
            if rc != sys::DISTRI_OK && rc != sys::DISTRI_ERR_DEADLINE_EXCEEDED {
                return Err(last_error(rc));
            }
            let status = JobStatus::from_raw(&s);
            if status.total_steps > 0 && last != Some((status.step, status.total_steps)) {
                last = Some((status.step, status.total_steps));
                let flow = progress(status.step, status.total_steps);
                if flow == ControlFlow::Break(()) && !status.state.is_terminal() {
                    self.cancel()?;
                    continue;
                }
            }
            if rc == sys::DISTRI_OK {
                return Ok(status);
            }
            if let Some(d) = deadline {
                if Instant::now() >= d {
                    return Err(last_error(rc));
                }
            }
        }
    }

    /// Asks the cluster to cancel the job (Ok if it already finished).
    pub fn cancel(&self) -> Result<()> {
        check(unsafe { sys::distri_job_cancel(self.raw) })
    }

    /// The image of a SUCCEEDED job (Cancelled / Aborted / FailedPrecondition otherwise).
    pub fn result(&self) -> Result<Image> {
        let mut buf = ptr::null_mut();
        let mut info = sys::distri_image_info_t::default();
        unsafe { sys::distri_image_info_init(&mut info) };
        check(unsafe { sys::distri_job_get_result(self.raw, &mut buf, &mut info) })?;
        Ok(Image::take(buf, &info))
    }

    /// The newest latent preview of a job submitted with `preview_every`, or `None` when there
    /// is none (none asked for, no preview step reached yet, or the job ended before this
    /// handle received one; `wait` receives them as it polls). Does not wait.
    pub fn preview(&self) -> Result<Option<Preview>> {
        let mut buf = ptr::null_mut();
        let mut info = sys::distri_image_info_t::default();
        unsafe { sys::distri_image_info_init(&mut info) };
        let mut step = 0u32;
        let rc = unsafe { sys::distri_job_get_preview(self.raw, &mut buf, &mut info, &mut step) };
        if rc == sys::DISTRI_ERR_NOT_FOUND {
            return Ok(None);
        }
        check(rc)?;
        let image = Image::take(buf, &info);
        Ok(Some(Preview { data: image.data, step, width: info.width, height: info.height, attempt: info.attempt }))
    }
}

fn new_status() -> sys::distri_job_status_t {
    unsafe {
        let mut s = std::mem::MaybeUninit::<sys::distri_job_status_t>::zeroed();
        sys::distri_job_status_init(s.as_mut_ptr());
        s.assume_init()
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        unsafe { sys::distri_job_destroy(self.raw) };
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({})", self.id)
    }
}
