//! Raw declarations of the C ABI of distri (`capi/include/distri/distri.h`, libdistri.so.1).
//! Every item mirrors the header one to one; read the header for the contracts. The safe
//! wrapper is the `distri` crate.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

pub const DISTRI_VERSION_MAJOR: u32 = 0;
pub const DISTRI_VERSION_MINOR: u32 = 2;
pub const DISTRI_VERSION_PATCH: u32 = 0;
pub const DISTRI_VERSION_NUMBER: u32 =
    DISTRI_VERSION_MAJOR * 10000 + DISTRI_VERSION_MINOR * 100 + DISTRI_VERSION_PATCH;
pub const DISTRI_ABI_VERSION: u32 = 1;

pub type distri_status_t = i32;
pub const DISTRI_OK: distri_status_t = 0;
pub const DISTRI_ERR_INVALID_ARGUMENT: distri_status_t = 1;
pub const DISTRI_ERR_NOT_FOUND: distri_status_t = 2;
pub const DISTRI_ERR_ALREADY_EXISTS: distri_status_t = 3;
pub const DISTRI_ERR_IO: distri_status_t = 4;
pub const DISTRI_ERR_PARSE: distri_status_t = 5;
pub const DISTRI_ERR_UNAVAILABLE: distri_status_t = 6;
pub const DISTRI_ERR_CANCELLED: distri_status_t = 7;
pub const DISTRI_ERR_DEADLINE_EXCEEDED: distri_status_t = 8;
pub const DISTRI_ERR_INTERNAL: distri_status_t = 9;
pub const DISTRI_ERR_UNIMPLEMENTED: distri_status_t = 10;
pub const DISTRI_ERR_OUT_OF_MEMORY: distri_status_t = 11;
pub const DISTRI_ERR_ABORTED: distri_status_t = 12;
pub const DISTRI_ERR_PERMISSION_DENIED: distri_status_t = 13;
pub const DISTRI_ERR_FAILED_PRECONDITION: distri_status_t = 14;

pub const DISTRI_JOB_PENDING: i32 = 0;
pub const DISTRI_JOB_SCHEDULED: i32 = 1;
pub const DISTRI_JOB_RUNNING: i32 = 2;
pub const DISTRI_JOB_SUCCEEDED: i32 = 3;
pub const DISTRI_JOB_FAILED: i32 = 4;
pub const DISTRI_JOB_CANCELLED: i32 = 5;

pub const DISTRI_OUTPUT_PNG: i32 = 0;
pub const DISTRI_OUTPUT_RGB8: i32 = 1;

pub const DISTRI_LOG_DEBUG: i32 = 0;
pub const DISTRI_LOG_INFO: i32 = 1;
pub const DISTRI_LOG_WARNING: i32 = 2;
pub const DISTRI_LOG_ERROR: i32 = 3;
pub const DISTRI_LOG_OFF: i32 = 4;

pub const DISTRI_CONNECT_PARAMS_VERSION: u32 = 1;
pub const DISTRI_LOCAL_PARAMS_VERSION: u32 = 1;
pub const DISTRI_CLUSTER_INFO_VERSION: u32 = 1;
pub const DISTRI_JOB_PARAMS_VERSION: u32 = 2;
pub const DISTRI_JOB_STATUS_VERSION: u32 = 1;
pub const DISTRI_IMAGE_INFO_VERSION: u32 = 1;

#[repr(C)]
pub struct distri_buffer_t {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct distri_client_t {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct distri_job_t {
    _opaque: [u8; 0],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct distri_connect_params_t {
    pub struct_size: u32,
    pub struct_version: u32,
    pub address: *const c_char,
    pub key_dir: *const c_char,
    pub server_public_key: *const c_char,
    pub client_public_key: *const c_char,
    pub client_secret_key: *const c_char,
    pub request_timeout_ms: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct distri_local_params_t {
    pub struct_size: u32,
    pub struct_version: u32,
    pub model_path: *const c_char,
    pub gpus: i32,
    pub cpu_actors: i32,
    pub dtype: *const c_char,
    pub worker_path: *const c_char,
    pub work_dir: *const c_char,
    pub startup_timeout_ms: i32,
    pub request_timeout_ms: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct distri_cluster_info_t {
    pub struct_size: u32,
    pub struct_version: u32,
    pub nodes: u32,
    pub gpus: u32,
    pub actors: u32,
    pub idle_actors: u32,
    pub queue_length: u32,
    pub running_jobs: u32,
}

pub type distri_progress_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, step: u32, total_steps: u32) -> c_int>;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct distri_job_params_t {
    pub struct_size: u32,
    pub struct_version: u32,
    pub prompt: *const c_char,
    pub negative_prompt: *const c_char,
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub guidance: f64,
    pub sampler: *const c_char,
    pub seed: u64,
    pub random_seed: i32,
    pub gpus: u32,
    pub priority: i32,
    pub output_format: i32,
    pub model: *const c_char,
    pub progress: distri_progress_fn,
    pub progress_user_data: *mut c_void,
    /// Since version 2 (distri 0.2.0).
    pub preview_every: u32,
    /// Since version 2 (distri 0.2.0); `repr(C)` puts it after 4 bytes of padding, as C does.
    pub guidance_rescale: f64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct distri_job_status_t {
    pub struct_size: u32,
    pub struct_version: u32,
    pub state: i32,
    pub step: u32,
    pub total_steps: u32,
    pub attempt: u32,
    pub queue_position: u32,
    pub seed: u64,
    pub error: *const c_char,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct distri_image_info_t {
    pub struct_size: u32,
    pub struct_version: u32,
    pub format: i32,
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    pub seed: u64,
    pub attempt: u32,
    pub gang_size: u32,
    pub queued_ms: f64,
    pub run_ms: f64,
    pub total_ms: f64,
}

extern "C" {
    pub fn distri_version() -> *const c_char;
    pub fn distri_version_number() -> u32;
    pub fn distri_abi_version() -> u32;
    pub fn distri_status_name(status: distri_status_t) -> *const c_char;
    pub fn distri_last_error() -> *const c_char;
    pub fn distri_job_state_name(state: i32) -> *const c_char;
    pub fn distri_log_set_level(level: i32) -> distri_status_t;

    pub fn distri_buffer_data(buffer: *const distri_buffer_t) -> *const u8;
    pub fn distri_buffer_size(buffer: *const distri_buffer_t) -> usize;
    pub fn distri_buffer_destroy(buffer: *mut distri_buffer_t);

    pub fn distri_connect_params_init(params: *mut distri_connect_params_t);
    pub fn distri_client_connect(
        params: *const distri_connect_params_t,
        out_client: *mut *mut distri_client_t,
    ) -> distri_status_t;
    pub fn distri_local_params_init(params: *mut distri_local_params_t);
    pub fn distri_client_create_local(
        params: *const distri_local_params_t,
        out_client: *mut *mut distri_client_t,
    ) -> distri_status_t;
    pub fn distri_client_destroy(client: *mut distri_client_t);
    pub fn distri_cluster_info_init(info: *mut distri_cluster_info_t);
    pub fn distri_client_get_cluster_info(
        client: *mut distri_client_t,
        out_info: *mut distri_cluster_info_t,
    ) -> distri_status_t;

    pub fn distri_job_params_init(params: *mut distri_job_params_t);
    pub fn distri_job_params_validate(params: *const distri_job_params_t) -> distri_status_t;
    pub fn distri_job_submit(
        client: *mut distri_client_t,
        params: *const distri_job_params_t,
        out_job: *mut *mut distri_job_t,
    ) -> distri_status_t;
    pub fn distri_job_submit_batch(
        client: *mut distri_client_t,
        params: *const *const distri_job_params_t,
        count: usize,
        out_jobs: *mut *mut distri_job_t,
    ) -> distri_status_t;
    pub fn distri_job_open(
        client: *mut distri_client_t,
        job_id: *const c_char,
        out_job: *mut *mut distri_job_t,
    ) -> distri_status_t;
    pub fn distri_job_destroy(job: *mut distri_job_t);
    pub fn distri_job_id(job: *const distri_job_t) -> *const c_char;
    pub fn distri_job_status_init(status: *mut distri_job_status_t);
    pub fn distri_job_get_status(
        job: *mut distri_job_t,
        out_status: *mut distri_job_status_t,
    ) -> distri_status_t;
    pub fn distri_job_wait(
        job: *mut distri_job_t,
        timeout_ms: i64,
        out_status: *mut distri_job_status_t,
    ) -> distri_status_t;
    pub fn distri_job_cancel(job: *mut distri_job_t) -> distri_status_t;
    pub fn distri_image_info_init(info: *mut distri_image_info_t);
    pub fn distri_job_get_result(
        job: *mut distri_job_t,
        out_image: *mut *mut distri_buffer_t,
        out_info: *mut distri_image_info_t,
    ) -> distri_status_t;
    pub fn distri_job_get_preview(
        job: *mut distri_job_t,
        out_image: *mut *mut distri_buffer_t,
        out_info: *mut distri_image_info_t,
        out_step: *mut u32,
    ) -> distri_status_t;
    pub fn distri_client_generate(
        client: *mut distri_client_t,
        params: *const distri_job_params_t,
        timeout_ms: i64,
        out_image: *mut *mut distri_buffer_t,
        out_info: *mut distri_image_info_t,
    ) -> distri_status_t;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{size_of, MaybeUninit};

    // The library's _init functions write the C sizeof into struct_size: the Rust layouts
    // must match it exactly.
    macro_rules! same_size {
        ($t:ty, $init:ident) => {{
            let mut v = MaybeUninit::<$t>::zeroed();
            unsafe { $init(v.as_mut_ptr()) };
            let v = unsafe { v.assume_init() };
            assert_eq!(v.struct_size as usize, size_of::<$t>(), stringify!($t));
        }};
    }

    #[test]
    fn layouts_match_the_c_header() {
        same_size!(distri_connect_params_t, distri_connect_params_init);
        same_size!(distri_local_params_t, distri_local_params_init);
        same_size!(distri_cluster_info_t, distri_cluster_info_init);
        same_size!(distri_job_params_t, distri_job_params_init);
        same_size!(distri_job_status_t, distri_job_status_init);
        same_size!(distri_image_info_t, distri_image_info_init);
        // A double after a uint32_t: 4 bytes of padding, as in C; 0 from _init.
        assert_eq!(
            std::mem::offset_of!(distri_job_params_t, guidance_rescale),
            std::mem::offset_of!(distri_job_params_t, preview_every) + 8
        );
        let mut jp = MaybeUninit::<distri_job_params_t>::zeroed();
        unsafe { distri_job_params_init(jp.as_mut_ptr()) };
        assert_eq!(unsafe { jp.assume_init() }.guidance_rescale, 0.0);
    }

    fn last_error() -> String {
        unsafe { std::ffi::CStr::from_ptr(distri_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    // NULL arguments of distri_job_get_preview, and a caller built against version 1 of
    // distri_job_params_t (the size before preview_every), on the "fake://" cluster.
    #[test]
    fn preview_null_arguments_and_version_1_params() {
        unsafe {
            let mut cp = MaybeUninit::<distri_connect_params_t>::zeroed();
            distri_connect_params_init(cp.as_mut_ptr());
            let mut cp = cp.assume_init();
            cp.address = b"fake://\0".as_ptr() as *const c_char;
            let mut client = std::ptr::null_mut();
            assert_eq!(distri_client_connect(&cp, &mut client), DISTRI_OK);

            let mut jp = MaybeUninit::<distri_job_params_t>::zeroed();
            distri_job_params_init(jp.as_mut_ptr());
            let mut jp = jp.assume_init();
            assert_eq!(jp.struct_version, DISTRI_JOB_PARAMS_VERSION);
            jp.prompt = b"p\0".as_ptr() as *const c_char;
            jp.width = 64;
            jp.height = 48;
            jp.steps = 10000;
            jp.preview_every = 1;
            let mut job = std::ptr::null_mut();
            assert_eq!(distri_job_submit(client, &jp, &mut job), DISTRI_OK);
            let mut buf = std::ptr::null_mut();
            let mut step = 0u32;
            let null_info = std::ptr::null_mut();
            assert_eq!(
                distri_job_get_preview(std::ptr::null_mut(), &mut buf, null_info, &mut step),
                DISTRI_ERR_INVALID_ARGUMENT
            );
            assert!(last_error().contains("job is NULL"), "{}", last_error());
            assert_eq!(
                distri_job_get_preview(job, std::ptr::null_mut(), null_info, &mut step),
                DISTRI_ERR_INVALID_ARGUMENT
            );
            assert!(
                last_error().contains("out_image is NULL"),
                "{}",
                last_error()
            );
            assert_eq!(
                distri_job_get_preview(job, &mut buf, null_info, std::ptr::null_mut()),
                DISTRI_ERR_INVALID_ARGUMENT
            );
            assert!(
                last_error().contains("out_step is NULL"),
                "{}",
                last_error()
            );
            assert!(buf.is_null());
            assert_eq!(distri_job_cancel(job), DISTRI_OK);
            distri_job_destroy(job);

            // Version 1: preview_every lies past struct_size and is not read.
            jp.struct_size = std::mem::offset_of!(distri_job_params_t, preview_every) as u32;
            jp.struct_version = 1;
            jp.steps = 2;
            assert_eq!(distri_job_submit(client, &jp, &mut job), DISTRI_OK);
            assert_eq!(
                distri_job_get_preview(job, &mut buf, null_info, &mut step),
                DISTRI_ERR_NOT_FOUND
            );
            assert!(
                last_error().contains("preview_every = 0"),
                "{}",
                last_error()
            );
            distri_job_destroy(job);
            distri_client_destroy(client);
        }
    }

    #[test]
    fn versions() {
        unsafe {
            assert_eq!(distri_abi_version(), DISTRI_ABI_VERSION);
            assert_eq!(distri_version_number(), DISTRI_VERSION_NUMBER);
        }
    }
}
