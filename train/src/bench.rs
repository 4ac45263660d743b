//! `cyclegan-train bench`: training steps/s and generator latency against PyTorch eager on the
//! same architecture, thread count and machine; and PSNR on the synthetic task after a fixed
//! training budget.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tch::nn::Module;
use tch::{Device, Kind, Tensor};

use cyclegan_model::Direction;
use cyclegan_train::config::{Preprocess, TrainConfig};
use cyclegan_train::eval::paired_psnr;
use cyclegan_train::synth::{self, SynthOptions};
use cyclegan_train::trainer::{CycleGan, FitOptions, fit};
use cyclegan_train::translate::Translator;

const REFERENCE_PY: &str = include_str!("../python/cyclegan_reference.py");

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Compare a teacher with its distilled students instead (needs --teacher, --student,
    /// --dataroot).
    #[arg(long)]
    pub distill: bool,
    #[arg(long, requires = "distill")]
    pub teacher: Option<PathBuf>,
    /// A distilled run; repeat for several.
    #[arg(long, requires = "distill")]
    pub student: Vec<PathBuf>,
    /// Held-out images: testA/ and testB/ (real target-domain images; ground truth on synthetic
    /// datasets).
    #[arg(long, requires = "distill")]
    pub dataroot: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "a2b")]
    pub direction: Direction,
    /// The TorchScript Inception-v3 of FID (default: .venv/inception-v3.pt).
    #[arg(long)]
    pub inception: Option<PathBuf>,
    /// Square image sides to time.
    #[arg(long, value_delimiter = ',', default_values_t = [128u32, 256])]
    sizes: Vec<u32>,
    /// Timed iterations per measurement (after warm-up).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// CPU threads for both sides.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(long, default_value_t = 64)]
    ngf: i64,
    #[arg(long, default_value_t = 9)]
    n_blocks: i64,
    /// Python with PyTorch (default: .venv/bin/python if present, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Skip the speed comparison.
    #[arg(long)]
    no_speed: bool,
    /// Also run the quality benchmark: train on a synthetic dataset for a fixed number of steps.
    #[arg(long)]
    quality: bool,
    #[arg(long, default_value_t = 600)]
    quality_steps: u64,
    #[arg(long, default_value_t = 64)]
    quality_size: u32,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if !args.no_speed {
        speed(args)?;
    }
    if args.quality {
        quality(args)?;
    }
    Ok(())
}

pub fn python(args: &BenchArgs) -> PathBuf {
    args.python.clone().unwrap_or_else(|| {
        let venv = Path::new(".venv/bin/python");
        if venv.exists() { venv.to_path_buf() } else { PathBuf::from("python3") }
    })
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

fn ours(args: &BenchArgs, size: u32) -> (f64, f64) {
    let mut cfg = TrainConfig::default();
    cfg.model.ngf = args.ngf;
    cfg.model.n_blocks = args.n_blocks;
    tch::manual_seed(0);
    let mut gan = CycleGan::new(&cfg, Device::Cpu);
    let shape = [1, 3, size as i64, size as i64];
    let real_a = Tensor::rand(shape, (Kind::Float, Device::Cpu)) * 2 - 1;
    let real_b = Tensor::rand(shape, (Kind::Float, Device::Cpu)) * 2 - 1;
    let mut rng = StdRng::seed_from_u64(0);
    let train = time_per_call(args.warmup, args.iters, || {
        gan.train_step(&real_a, &real_b, &mut rng).expect("a step of one process");
    });
    let infer = time_per_call(args.warmup, args.iters, || {
        let _ = tch::no_grad(|| gan.g_a.forward(&real_a));
    });
    (train, infer)
}

fn pytorch(args: &BenchArgs, script: &Path, size: u32) -> Result<(f64, f64, String)> {
    let py = python(args);
    let out = Command::new(&py)
        .arg(script)
        .args(["bench", "--size", &size.to_string(), "--iters", &args.iters.to_string()])
        .args(["--warmup", &args.warmup.to_string(), "--threads", &args.threads.to_string()])
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

fn speed(args: &BenchArgs) -> Result<()> {
    tch::set_num_threads(args.threads as i32);
    let dir = tempfile_dir()?;
    let script = dir.join("cyclegan_reference.py");
    std::fs::write(&script, REFERENCE_PY)?;
    println!(
        "\nSpeed: ResNet generator ngf {} / {} blocks + PatchGAN, batch 1, {} threads, {} timed after {} warm-up",
        args.ngf, args.n_blocks, args.threads, args.iters, args.warmup
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

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cyclegan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn quality(args: &BenchArgs) -> Result<()> {
    let dir = tempfile_dir()?;
    let data = dir.join("synth");
    let size = args.quality_size;
    synth::generate(&data, &SynthOptions { train: 100, test: 20, size, seed: 1 }, |_, _| {})?;
    let mut cfg = TrainConfig::default();
    cfg.data.dataroot = data.clone();
    cfg.data.preprocess = Preprocess::Crop;
    cfg.data.crop_size = size;
    cfg.data.num_workers = 2;
    cfg.model.ngf = 16;
    cfg.model.ndf = 32;
    cfg.model.n_blocks = 6;
    cfg.train.threads = args.threads;
    cfg.train.n_epochs = (args.quality_steps as usize).div_ceil(100);
    cfg.train.n_epochs_decay = 0;
    cfg.output.checkpoints_dir = dir.join("runs");
    cfg.output.name = "quality".into();
    cfg.output.sample_freq = 0;
    cfg.output.save_epoch_freq = 0;
    let t0 = Instant::now();
    let first = fit(&cfg, &FitOptions { max_iterations: Some(1), quiet: true, ..Default::default() })?;
    let before = paired_psnr(&Translator::load(&first.run_dir, Direction::A2b, Device::Cpu)?, &data)?;
    let opts = FitOptions {
        resume: Some(first.run_dir.clone()),
        max_iterations: Some(args.quality_steps),
        ..Default::default()
    };
    let done = fit(&cfg, &opts)?;
    let after = paired_psnr(&Translator::load(&done.run_dir, Direction::A2b, Device::Cpu)?, &data)?;
    println!(
        "\nQuality: synthetic summer->winter, {size}x{size}, ngf 16 / 6 blocks, {} steps in {:.0} s, {} test pairs",
        done.iterations,
        t0.elapsed().as_secs_f64(),
        after.images
    );
    println!("| model | PSNR vs ground truth (dB) |");
    println!("|---|---|");
    println!("| no translation (testA as is) | {:.2} |", after.psnr_identity);
    println!("| G_A after 1 step | {:.2} |", before.psnr_model);
    println!("| G_A after {} steps | {:.2} |", done.iterations, after.psnr_model);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
