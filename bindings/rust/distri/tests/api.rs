//! The safe API against the library's "fake://" cluster: behaviour and bad arguments.
use distri::{Client, Code, ConnectOptions, JobRequest, JobState, LocalOptions, OutputFormat};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

fn fake() -> Client {
    Client::connect(&ConnectOptions::new("fake://")).expect("fake cluster")
}

fn small(prompt: &str) -> JobRequest {
    JobRequest::new(prompt).size(64, 48).steps(4).seed(42)
}

const SECS: Option<Duration> = Some(Duration::from_secs(10));

#[test]
fn versions() {
    assert_eq!(distri::version(), "0.2.0");
    assert_eq!(distri::abi_version(), 1);
    distri::set_log_level(distri::LogLevel::Warning).unwrap();
}

#[test]
fn generate_png_and_rgb() {
    let c = fake();
    let png = c.generate(&small("a lighthouse"), SECS).unwrap();
    assert_eq!(png.format, OutputFormat::Png);
    assert_eq!(&png.data[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!((png.width, png.height, png.seed), (64, 48, 42));
    let rgb = c.generate(&small("a lighthouse").output_format(OutputFormat::Rgb8), SECS).unwrap();
    assert_eq!(rgb.stride, 64 * 3);
    assert_eq!(rgb.data.len(), 64 * 48 * 3);
}

#[test]
fn job_lifecycle_and_progress() {
    let c = fake();
    let job = c.submit(&small("a cat").steps(20)).unwrap();
    assert_eq!(job.id().len(), 32);
    let mut seen = Vec::new();
    let st = job
        .wait_with_progress(SECS, |s, t| {
            seen.push((s, t));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(st.state, JobState::Succeeded);
    assert_eq!(seen.last(), Some(&(20, 20)));
    assert_eq!(job.result().unwrap().width, 64);
    let again = c.open_job(job.id()).unwrap();
    assert_eq!(again.status().unwrap().state, JobState::Succeeded);
}

#[test]
fn bad_utf8_and_nul() {
    let c = fake();
    for bad in [&b"\x80"[..], b"abc\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff"] {
        let e = c.submit(&small("").steps(4).negative_prompt(bad)).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("not valid UTF-8"), "{}", e);
        let e = c.submit(&JobRequest::new(bad).size(64, 64)).unwrap_err();
        assert!(e.message().contains("prompt: not valid UTF-8"), "{}", e);
    }
    let e = c.submit(&small("a\0b")).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("NUL"));
    let huge = "a".repeat((1 << 20) + 1);
    let e = c.submit(&small(&huge)).unwrap_err();
    assert!(e.message().contains("longer than the limit"), "{}", e);
}

#[test]
fn bad_sizes() {
    let c = fake();
    let cases: Vec<(JobRequest, &str)> = vec![
        (small("p").size(0, 64), "width"),
        (small("p").size(64, 0), "height"),
        (small("p").size(16385, 64), "width"),
        (small("p").size(u32::MAX, u32::MAX), "width"),
        (small("p").steps(0), "steps"),
        (small("p").steps(10001), "steps"),
        (small("p").guidance(f64::NAN), "guidance"),
        (small("p").guidance(-1.0), "guidance"),
        (small("p").guidance_rescale(1.5), "guidance_rescale"),
        (small("p").guidance_rescale(-0.1), "guidance_rescale"),
        (small("p").guidance_rescale(f64::NAN), "guidance_rescale"),
        (small("p").gpus(100000), "gpus"),
        (small("p").sampler("x".repeat(300)), "sampler"),
    ];
    for (req, needle) in cases {
        let e = req.validate().unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains(needle), "{}", e);
        let e = c.submit(&req).unwrap_err();
        assert!(e.message().contains(needle), "{}", e);
    }
    let e = c.submit(&small("p").size(63, 64)).unwrap_err();
    assert!(e.message().contains("multiples of 8"), "{}", e);
}

#[test]
fn cancel_timeout_and_failure() {
    let c = fake();
    let job = c.submit(&small("slow").steps(10000)).unwrap();
    assert_eq!(job.result().unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(job.wait(Some(Duration::from_millis(30))).unwrap_err().code(), Code::DeadlineExceeded);
    job.cancel().unwrap();
    assert_eq!(job.wait(SECS).unwrap().state, JobState::Cancelled);
    assert_eq!(job.result().unwrap_err().code(), Code::Cancelled);
    job.cancel().unwrap();

    let job = c.submit(&small("slow").steps(10000)).unwrap();
    let st = job
        .wait_with_progress(SECS, |s, _| if s >= 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        .unwrap();
    assert_eq!(st.state, JobState::Cancelled);

    let e = c.generate(&small("slow").steps(10000), Some(Duration::from_millis(20))).unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded);

    let job = c.submit(&small("fake:fail").steps(2)).unwrap();
    let st = job.wait(SECS).unwrap();
    assert_eq!(st.state, JobState::Failed);
    assert!(st.error.contains("fake failure"));
    let e = job.result().unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    assert!(e.message().contains("fake failure"));
}

#[test]
fn cancel_from_another_thread() {
    let c = fake();
    let job = Arc::new(c.submit(&small("slow").steps(10000)).unwrap());
    let j2 = Arc::clone(&job);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        j2.cancel().unwrap();
    });
    assert_eq!(job.wait(SECS).unwrap().state, JobState::Cancelled);
    t.join().unwrap();
}

#[test]
fn batch() {
    let c = fake();
    let reqs: Vec<JobRequest> = (0..3).map(|i| small("p").seed(i)).collect();
    let jobs = c.submit_batch(&reqs).unwrap();
    let seeds: Vec<u64> = jobs.iter().map(|j| j.wait(SECS).unwrap().seed).collect();
    assert_eq!(seeds, vec![0, 1, 2]);
    // The fake cluster got the three in one call (its PNGs' "fake:submitted" text chunk).
    let chunk: &[u8] = b"fake:submitted\0batch of 3";
    for j in &jobs {
        assert!(j.result().unwrap().data.windows(chunk.len()).any(|w| w == chunk));
    }
    let e = c.submit_batch(&[small("ok"), small("bad").size(0, 64)]).unwrap_err();
    assert!(e.message().contains("params[1]"), "{}", e);
    let e = c.submit_batch(&[small("ok"), small("bad").size(63, 64)]).unwrap_err();
    assert!(e.message().contains("params[1]"), "{}", e);
    assert_eq!(c.submit_batch(&[]).unwrap_err().code(), Code::InvalidArgument);
}

#[test]
fn destroyed_client() {
    let c = fake();
    let job = c.submit(&small("slow").steps(10000)).unwrap();
    drop(c);
    let e = job.status().unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("client was destroyed"));
    assert_eq!(job.cancel().unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(job.preview().unwrap_err().code(), Code::FailedPrecondition);
}

// A PNG whose IHDR says the preview's size, which is the image's / 8; a step in range.
fn check_preview(p: &distri::Preview, every: u32, last_step: u32) {
    assert_eq!(&p.data[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&p.data[12..16], b"IHDR");
    let be32 = |at: usize| u32::from_be_bytes([p.data[at], p.data[at + 1], p.data[at + 2], p.data[at + 3]]);
    assert_eq!((be32(16), be32(20)), (p.width, p.height));
    assert_eq!((p.width, p.height), (64 / 8, 48 / 8));
    assert!(p.step >= every && p.step <= last_step && p.step % every == 0, "step {}", p.step);
}

#[test]
fn previews() {
    let c = fake();
    let job = c.submit(&small("p").steps(2)).unwrap();
    assert!(job.preview().unwrap().is_none()); // none asked for
    job.wait(SECS).unwrap();
    assert!(job.preview().unwrap().is_none());

    let job = c.submit(&small("slow").steps(10000).preview_every(3)).unwrap();
    let start = std::time::Instant::now();
    let p = loop {
        if let Some(p) = job.preview().unwrap() {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no preview in 10 s");
        std::thread::sleep(Duration::from_millis(10));
    };
    check_preview(&p, 3, 9999);
    assert_eq!(p.attempt, 0);
    job.cancel().unwrap();
    assert!(job.preview().unwrap().unwrap().step >= p.step); // kept after the end

    // wait receives previews as it polls: the last one stays available.
    let job = c.submit(&small("p").steps(200).preview_every(2)).unwrap();
    assert_eq!(job.wait(SECS).unwrap().state, JobState::Succeeded);
    check_preview(&job.preview().unwrap().unwrap(), 2, 198);

    let e = c.submit(&small("p").preview_every(10001)).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("preview_every"), "{}", e);
}

#[test]
fn guidance_rescale() {
    let c = fake();
    small("p").guidance_rescale(0.0).validate().unwrap();
    small("p").guidance_rescale(1.0).validate().unwrap();
    let job = c.submit(&small("p").guidance_rescale(0.5)).unwrap();
    assert_eq!(job.wait(SECS).unwrap().state, JobState::Succeeded);
    let e = c.submit(&small("p").guidance_rescale(1.5)).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("guidance_rescale: must be a finite number in [0, 1]"), "{}", e);
}

#[test]
fn open_job_errors() {
    let c = fake();
    assert_eq!(c.open_job("nope").unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(c.open_job("0123456789abcdef0123456789abcdef").unwrap_err().code(), Code::NotFound);
    assert_eq!(c.cluster_info().unwrap().actors, 1);
}

#[test]
fn connect_and_local_errors() {
    let e = Client::connect(&ConnectOptions::new("http://x")).err().unwrap();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = Client::connect(&ConnectOptions::new("tcp://127.0.0.1:1")).err().unwrap();
    assert!(e.message().contains("server_public_key"), "{}", e);
    let e = Client::local(&LocalOptions::new("")).err().unwrap();
    assert!(e.message().contains("model_path"), "{}", e);
    let mut o = LocalOptions::new("/nonexistent/model");
    o.cpu_actors = Some(1000);
    assert!(Client::local(&o).err().unwrap().message().contains("cpu_actors"));
    o.cpu_actors = Some(1);
    assert!(Client::local(&o).is_err());
}

#[test]
fn concurrent_submitters() {
    let c = Arc::new(fake());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for k in 0..5 {
                    c.generate(&small("p").seed(i * 10 + k).steps(2), SECS).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
