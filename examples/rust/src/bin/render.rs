//! Render one image through distri's Rust bindings.
//!   render --model /models/sdxl --out lighthouse.png "a lighthouse at dawn"
use std::ops::ControlFlow;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = distri_examples::parse("render.png");
    let run = || -> distri::Result<distri::Image> {
        let client = distri_examples::open_client(&args)?;
        let job = client.submit(&distri_examples::request(&args, &args.prompts[0], args.seed))?;
        job.wait_with_progress(None, |step, total| {
            eprint!("\rstep {}/{}", step, total);
            ControlFlow::Continue(())
        })?;
        eprintln!();
        job.result()
    };
    match run() {
        Ok(image) => {
            if let Err(e) = std::fs::write(&args.out, &image.data) {
                eprintln!("error: cannot write {}: {}", args.out, e);
                return ExitCode::FAILURE;
            }
            println!(
                "wrote {} ({}x{}, seed {}, {:.0} ms on {} actor(s))",
                args.out, image.width, image.height, image.seed, image.total_ms, image.gang_size
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e);
            ExitCode::FAILURE
        }
    }
}
