//! `bench speed`: training steps/s and generator latency against PyTorch eager.
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cyclegan_train::config::TrainConfig;
use cyclegan_train::trainer::CycleGan;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tch::nn::Module;
use tch::{Device, Kind, Tensor};

use super::{Timing, scratch_dir};

const REFERENCE_PY: &str = include_str!("../../../../python/cyclegan_reference.py");

#[derive(clap::Args)]
pub struct SpeedArgs {
    /// Square image sides to time.
    #[arg(long, value_delimiter = ',', default_values_t = [128u32, 256])]
    sizes: Vec<u32>,
    #[arg(long, default_value_t = 64)]
    ngf: i64,
    #[arg(long, default_value_t = 9)]
    n_blocks: i64,
    #[command(flatten)]
    timing: Timing,
}

fn time_per_call(warmup: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let t0 = Instant::now();
    for _ in 0..iters {
        f();
    }
    t0.elapsed().as_secs_f64() / iters as f64
}

fn ours(args: &SpeedArgs, size: u32) -> (f64, f64) {
    let mut cfg = TrainConfig::default();
    cfg.model.ngf = args.ngf;
    cfg.model.n_blocks = args.n_blocks;
    tch::manual_seed(0);
    let mut gan = CycleGan::new(&cfg, Device::Cpu);
    let shape = [1, 3, size as i64, size as i64];
    let real_a = Tensor::rand(shape, (Kind::Float, Device::Cpu)) * 2 - 1;
    let real_b = Tensor::rand(shape, (Kind::Float, Device::Cpu)) * 2 - 1;
    let mut rng = StdRng::seed_from_u64(0);
    let train = time_per_call(args.timing.warmup, args.timing.iters, || {
        gan.train_step(&real_a, &real_b, &mut rng).expect("a step of one process");
    });
    let infer = time_per_call(args.timing.warmup, args.timing.iters, || {
        let _ = tch::no_grad(|| gan.g_a.forward(&real_a));
    });
    (train, infer)
}

fn pytorch(args: &SpeedArgs, script: &Path, size: u32) -> Result<(f64, f64, String)> {
    let py = args.timing.python();
    let out = Command::new(&py)
        .arg(script)
        .args(["bench", "--size", &size.to_string(), "--iters", &args.timing.iters.to_string()])
        .args(["--warmup", &args.timing.warmup.to_string(), "--threads", &args.timing.threads.to_string()])
        .args(["--ngf", &args.ngf.to_string(), "--n-blocks", &args.n_blocks.to_string()])
        .output()
        .with_context(|| format!("cannot run {} (pass --python with PyTorch installed)", py.display()))?;
    if !out.status.success() {
        bail!("PyTorch benchmark failed ({}): {}", py.display(), String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("PyTorch benchmark printed no JSON")?;
    let get = |k: &str| v[k].as_f64().with_context(|| format!("PyTorch benchmark: no {k}"));
    Ok((get("train_step_s")?, get("generator_s")?, v["torch"].as_str().unwrap_or("?").to_string()))
}

pub fn run(args: &SpeedArgs) -> Result<()> {
    tch::set_num_threads(args.timing.threads as i32);
    let dir = scratch_dir("speed")?;
    let script = dir.join("cyclegan_reference.py");
    std::fs::write(&script, REFERENCE_PY)?;
    println!(
        "\nSpeed: ResNet generator ngf {} / {} blocks + PatchGAN, batch 1, {} threads, {} timed after {} warm-up",
        args.ngf, args.n_blocks, args.timing.threads, args.timing.iters, args.timing.warmup
    );
    println!("| size | measure | ours | PyTorch | speed ratio (ours / PyTorch) |");
    println!("|---|---|---|---|---|");
    let mut torch_version = String::new();
    for &size in &args.sizes {
        let (train, infer) = ours(args, size);
        let (py_train, py_infer, version) = pytorch(args, &script, size)?;
        torch_version = version;
        println!(
            "| {size}x{size} | training it/s | {:.3} | {:.3} | {:.2} |",
            1.0 / train,
            1.0 / py_train,
            py_train / train
        );
        println!(
            "| {size}x{size} | generator ms/image | {:.1} | {:.1} | {:.2} |",
            infer * 1e3,
            py_infer * 1e3,
            py_infer / infer
        );
    }
    println!("(PyTorch {torch_version}, eager mode; ratio > 1 means we are faster)");
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
