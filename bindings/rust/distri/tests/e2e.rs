//! End to end: the embedded cluster renders what `distri generate` renders. ctest's fixture
//! capi_e2e_reference sets DISTRI_E2E_MODEL and DISTRI_E2E_REFERENCE; without them the test
//! says so and passes (cargo test outside ctest).
use distri::{Client, Code, JobRequest, JobState, LocalOptions, OutputFormat};
use std::time::Duration;

fn e2e_job() -> JobRequest {
    JobRequest::new("a lighthouse at dawn")
        .negative_prompt("blurry")
        .size(128, 128)
        .steps(4)
        .guidance(5.0)
        .seed(42)
        .sampler("euler")
}

#[test]
fn same_image_as_distri_generate() {
    let (model, reference) = match (std::env::var("DISTRI_E2E_MODEL"), std::env::var("DISTRI_E2E_REFERENCE")) {
        (Ok(m), Ok(r)) => (m, r),
        _ => {
            eprintln!("skipped: DISTRI_E2E_MODEL / DISTRI_E2E_REFERENCE not set (ctest sets them)");
            return;
        }
    };
    let reference = std::fs::read(reference).unwrap();
    let mut opts = LocalOptions::new(model);
    opts.gpus = Some(0);
    opts.cpu_actors = Some(1);
    opts.startup_timeout = Some(Duration::from_secs(240));
    let client = Client::local(&opts).unwrap_or_else(|e| panic!("{}", e));
    let timeout = Some(Duration::from_secs(240));
    let img = client.generate(&e2e_job().output_format(OutputFormat::Rgb8), timeout).unwrap();
    assert_eq!((img.width, img.height, img.stride, img.seed), (128, 128, 384, 42));
    assert!(img.data == reference, "image differs from distri generate's");
    let png = client.generate(&e2e_job(), timeout).unwrap();
    assert_eq!(&png.data[..8], b"\x89PNG\r\n\x1a\n");

    // Latent previews after every step: wait keeps the newest, 128 / 8 = 16 pixels square.
    let job = client.submit(&e2e_job().steps(24).preview_every(1)).unwrap();
    assert_eq!(job.wait(timeout).unwrap().state, JobState::Succeeded);
    let p = job.preview().unwrap().expect("a preview after the wait");
    assert!(p.step >= 1 && p.step <= 23, "step {}", p.step);
    assert_eq!((p.width, p.height), (16, 16));
    assert_eq!(&p.data[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&p.data[12..24], b"IHDR\0\0\0\x10\0\0\0\x10");
    assert!(client.submit(&e2e_job().steps(1)).unwrap().preview().unwrap().is_none());

    let e = client.submit(&e2e_job().size(100, 128)).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let job = client.submit(&e2e_job().steps(500)).unwrap();
    job.cancel().unwrap();
    assert_eq!(job.wait(Some(Duration::from_secs(60))).unwrap().state, JobState::Cancelled);
    drop(client);
    assert_eq!(job.status().unwrap_err().code(), Code::FailedPrecondition);
}
