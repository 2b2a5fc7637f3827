//! Render several prompts at once: one batch submit, then each job's progress and result,
//! written as OUT_DIR/NNN.png plus OUT_DIR/manifest.jsonl.
//!   batch --model /models/sdxl --out-dir renders "a cat" "a dog"
use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() -> ExitCode {
    let args = distri_examples::parse("batch-out");
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: cannot create {}: {}", args.out, e);
        return ExitCode::FAILURE;
    }
    let client = match distri_examples::open_client(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", e);
            return ExitCode::FAILURE;
        }
    };
    let requests: Vec<_> = args
        .prompts
        .iter()
        .enumerate()
        .map(|(i, p)| distri_examples::request(&args, p, args.seed + i as u64))
        .collect();
    let jobs = match client.submit_batch(&requests) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {}", e);
            return ExitCode::FAILURE;
        }
    };
    let mut manifest = std::fs::File::create(format!("{}/manifest.jsonl", args.out)).expect("manifest.jsonl");
    let mut failures = 0;
    for (i, (prompt, job)) in args.prompts.iter().zip(&jobs).enumerate() {
        let result = job
            .wait_with_progress(None, |s, t| {
                eprint!("\rjob {}: step {}/{}", i, s, t);
                ControlFlow::Continue(())
            })
            .and_then(|_| job.result());
        eprintln!();
        match result {
            Ok(image) => {
                let name = format!("{:03}.png", i);
                std::fs::write(format!("{}/{}", args.out, name), &image.data).expect("write image");
                writeln!(
                    manifest,
                    "{{\"file\": \"{}\", \"job_id\": \"{}\", \"seed\": {}, \"prompt\": {}}}",
                    name,
                    job.id(),
                    image.seed,
                    json_string(prompt)
                )
                .expect("write manifest");
                println!("wrote {}/{}", args.out, name);
            }
            Err(e) => {
                eprintln!("job {} ({}): {}", i, job.id(), e);
                failures += 1;
            }
        }
    }
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
