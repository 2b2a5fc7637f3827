//! Command-line flags shared by the render and batch examples (the same as the C, Python and
//! Go examples).
use distri::{Client, ConnectOptions, JobRequest, LocalOptions};

pub struct Args {
    pub model: Option<String>,
    pub address: Option<String>,
    pub keys: Option<String>,
    pub cpu: bool,
    pub out: String,
    pub size: u32,
    pub steps: u32,
    pub seed: u64,
    pub sampler: Option<String>,
    pub negative: Option<String>,
    pub prompts: Vec<String>,
}

fn usage(prog: &str) -> ! {
    eprintln!(
        "usage: {} (--model DIR [--cpu] | --address ADDR [--keys DIR]) [--out PATH] [--size N]\n          \
         [--steps N] [--seed N] [--sampler NAME] [--negative TEXT] PROMPT...",
        prog
    );
    std::process::exit(2)
}

pub fn parse(default_out: &str) -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let prog = argv[0].clone();
    let mut a = Args {
        model: None,
        address: None,
        keys: None,
        cpu: false,
        out: default_out.to_string(),
        size: 1024,
        steps: 30,
        seed: 0,
        sampler: None,
        negative: None,
        prompts: Vec::new(),
    };
    let mut it = argv.into_iter().skip(1).peekable();
    while let Some(flag) = it.next() {
        if !flag.starts_with("--") {
            a.prompts.push(flag);
            a.prompts.extend(it.by_ref());
            break;
        }
        if flag == "--cpu" {
            a.cpu = true;
            continue;
        }
        let value = it.next().unwrap_or_else(|| usage(&prog));
        let number = |v: &str| v.parse::<u64>().unwrap_or_else(|_| usage(&prog));
        match flag.as_str() {
            "--model" => a.model = Some(value),
            "--address" => a.address = Some(value),
            "--keys" => a.keys = Some(value),
            "--out" | "--out-dir" => a.out = value,
            "--size" => a.size = number(&value) as u32,
            "--steps" => a.steps = number(&value) as u32,
            "--seed" => a.seed = number(&value),
            "--sampler" => a.sampler = Some(value),
            "--negative" => a.negative = Some(value),
            _ => usage(&prog),
        }
    }
    if a.model.is_some() == a.address.is_some() || a.prompts.is_empty() {
        usage(&prog);
    }
    a
}

/// An embedded cluster (--model) or a connection (--address).
pub fn open_client(a: &Args) -> distri::Result<Client> {
    match &a.model {
        Some(model) => {
            eprintln!("starting an embedded cluster for {} ...", model);
            let mut o = LocalOptions::new(model.clone());
            if a.cpu {
                o.gpus = Some(0);
            }
            Client::local(&o)
        }
        None => {
            let mut o = ConnectOptions::new(a.address.clone().unwrap());
            o.key_dir = a.keys.clone();
            Client::connect(&o)
        }
    }
}

pub fn request(a: &Args, prompt: &str, seed: u64) -> JobRequest {
    let mut r = JobRequest::new(prompt).size(a.size, a.size).steps(a.steps).seed(seed);
    if let Some(n) = &a.negative {
        r = r.negative_prompt(n.as_str());
    }
    if let Some(s) = &a.sampler {
        r = r.sampler(s.as_str());
    }
    r
}
