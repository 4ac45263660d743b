//! `cyclegan-edge`: run a CycleGAN generator on live video, or benchmark it.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cyclegan_edge::Failure;
use cyclegan_edge::backend::cuda::device::Gpu;
use cyclegan_edge::backend::tensorrt::{
    Precision, Profile, Severity, TensorRt, TensorrtOptions, effective_precision, ensure_engine, parse_shape,
};
use cyclegan_edge::bench::{self, BenchOptions};
use cyclegan_edge::config::{EdgeConfig, Overrides};
use cyclegan_edge::doctor;
use cyclegan_edge::model::Model;
use cyclegan_edge::pipeline::{self, Event, LiveStats};

/// Exit statuses, for service managers (packaging/cyclegan-edge@.service) and scripts.
const EXIT_STATUSES: &str = "Exit status:
  0   done: the input ended, --num-frames were translated, or Ctrl-C finished the output
  1   another failure
  2   a command-line usage error
  75  the input is not there (yet) or went away: a camera or stream that did not deliver within
      --timeout-s, refused the connection, or stopped mid-run (the output is finished with the frames
      that came before); trying again later may work, so a service restarts
  78  a configuration error: the config file, a flag, the model, the output or a missing library or
      GStreamer element; nothing changes by retrying, so a service does not restart";

/// See EXIT_STATUSES.
const EXIT_INPUT_UNAVAILABLE: i32 = 75;
const EXIT_CONFIG: i32 = 78;

#[derive(Parser)]
#[command(
    version,
    long_version = concat!(env!("CARGO_PKG_VERSION"), "\nTensorRT headers: ", env!("CYCLEGAN_TENSORRT_HEADERS")),
    about = "CycleGAN generators on live video (GStreamer), on the CPU or TensorRT",
    after_long_help = EXIT_STATUSES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Translate a video stream: `run --input test:// --output out.mp4`
    #[command(after_long_help = EXIT_STATUSES)]
    Run {
        /// TOML pipeline description (configs/edge/*.toml); flags override its fields.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Build a TensorRT engine from a generator ONNX (on the machine that will run it)
    Build(BuildArgs),
    /// What this machine offers: GPU, NVRTC, TensorRT, ONNX Runtime, GStreamer elements; and
    /// where TensorRT and a GPU exist, a self-test of an engine against the CPU backend
    Doctor {
        /// Skip the TensorRT self-test (it builds two small engines: about a minute on a Jetson).
        #[arg(long)]
        no_self_test: bool,
    },
    /// The CUDA frame kernels' throughput vs the GPU's own frame copy, per pixel format
    BenchKernels {
        /// Frame size WxH.
        #[arg(long, default_value = "1920x1080")]
        frame: String,
        /// Inference tensor size WxH.
        #[arg(long, default_value = "512x288")]
        size: String,
        #[arg(long, default_value_t = 200)]
        iters: usize,
    },
    /// Our CPU backend vs ONNX Runtime in Python, and pipeline fps vs backend fps; with
    /// --temporal, the warping error and still-scene flicker per temporal-smoothing value
    Bench {
        /// Generator ONNX (default: the bundled demo).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Inference size WxH (multiples of 4).
        #[arg(long, default_value = "256x256")]
        size: String,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 20)]
        iters: usize,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// Frames through the pipeline.
        #[arg(long, default_value_t = 60)]
        frames: u32,
        /// Interleaved rounds of all measurements; medians are reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Python with onnxruntime.
        #[arg(long, default_value = ".venv/bin/python")]
        python: PathBuf,
        /// Temporal consistency instead of speed: Lai et al.'s warping error on a pan, a zoom, a
        /// rotation and a smooth deformation, and the flicker of a still scene with noise, on
        /// sequences made from --input's images, for each --smoothing value.
        #[arg(long, requires = "input")]
        temporal: bool,
        /// A folder of images to make the sequences from (--temporal).
        #[arg(long, requires = "temporal")]
        input: Option<PathBuf>,
        /// temporal-smoothing values to compare (--temporal).
        #[arg(long, value_delimiter = ',', default_value = "0,0.5,0.8")]
        smoothing: Vec<f64>,
        /// Frames per sequence (--temporal).
        #[arg(long, default_value_t = cyclegan_runtime::motion::DEFAULT_FRAMES)]
        sequence_frames: usize,
        /// Sequences are made from at most this many of --input's images (--temporal; 0: all).
        #[arg(long, default_value_t = 8)]
        max_images: usize,
        /// The backend (--temporal): cpu, tensorrt or auto.
        #[arg(long, default_value = "cpu")]
        backend: cyclegan_edge::backend::BackendKind,
        /// A Q/DQ model of --model's generator (cyclegan-calib, or `cyclegan-train export
        /// --precision int8`): also time the FP16 graph and it against FP32 on the CPU backend.
        #[arg(long, conflicts_with = "temporal")]
        int8: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct BuildArgs {
    /// Generator ONNX (FP32 export, or the Q/DQ model of cyclegan-calib for int8).
    #[arg(long)]
    onnx: PathBuf,
    /// Engine file to write (with its key beside it, FILE.json).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = Precision::Fp16)]
    precision: Precision,
    /// One input size, WxH (multiples of 4): the fastest engine for a fixed camera.
    #[arg(long, conflicts_with = "profile")]
    size: Option<String>,
    /// Input shapes MIN:OPT:MAX, each WxH or NxCxHxW (like trtexec's --minShapes/--optShapes/--maxShapes).
    #[arg(long)]
    profile: Option<String>,
    /// Builder workspace limit in MiB.
    #[arg(long, default_value_t = 1024)]
    workspace: u64,
    /// Timing cache to read and update (makes rebuilds much faster).
    #[arg(long)]
    timing_cache: Option<PathBuf>,
    /// TensorRT 10 only: INT8 calibration cache for a model without Q/DQ nodes.
    #[arg(long)]
    calibration_cache: Option<PathBuf>,
    /// libnvinfer to use (a file or a folder; default: the usual places).
    #[arg(long)]
    tensorrt_lib: Option<PathBuf>,
    /// CUDA device.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Show TensorRT's info messages too.
    #[arg(long)]
    verbose: bool,
}

fn build(args: BuildArgs) -> Result<()> {
    let profile = match (&args.size, &args.profile) {
        (Some(size), _) => Profile::fixed(parse_shape(size, "--size")?),
        (None, Some(profile)) => Profile::parse(profile, "--profile")?,
        (None, None) => anyhow::bail!("give the input size: --size WxH, or --profile MIN:OPT:MAX"),
    };
    if args.out.extension().is_none_or(|e| e == "onnx") {
        anyhow::bail!("--out {}: name the engine file, e.g. G.engine", args.out.display());
    }
    let model = Model::load(Some(&args.onnx)).with_context(|| format!("--onnx {}", args.onnx.display()))?;
    let (precision, note) = effective_precision(&model, args.precision);
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let severity = if args.verbose { Severity::Info } else { Severity::Warning };
    let tensorrt = TensorRt::open(args.tensorrt_lib.as_deref(), severity)?;
    let gpu = Gpu::open(args.device)?;
    let options = TensorrtOptions {
        precision: args.precision,
        engine: Some(args.out.clone()),
        profile: Some(profile),
        workspace_mib: args.workspace,
        calibration_cache: args.calibration_cache.clone(),
        library: args.tensorrt_lib.clone(),
        device: args.device,
        ..TensorrtOptions::default()
    };
    eprintln!(
        "building {} for {} with TensorRT {} ({profile_text}, {})",
        args.onnx.display(),
        gpu.describe(),
        tensorrt.version,
        precision,
        profile_text = profile.describe()
    );
    let built = ensure_engine(&tensorrt, &gpu, &model, &options, profile, args.timing_cache.as_deref())?;
    let size = std::fs::metadata(&built.engine).map(|m| m.len()).unwrap_or(0);
    match built.rebuilt {
        None => println!("{} is up to date (its key matches)", built.engine.display()),
        Some(why) => {
            println!("{}: {:.1} MB, built in {:.0} s ({why})", built.engine.display(), size as f64 / 1e6, built.seconds)
        }
    }
    Ok(())
}

fn doctor(self_test: bool) -> Result<()> {
    let checks = doctor::checks(self_test);
    print!("{}", doctor::table(&checks));
    if checks.iter().any(|c| c.status == doctor::Status::Failed) {
        anyhow::bail!("a check failed (see above)");
    }
    Ok(())
}

fn stats_line(s: &LiveStats) -> String {
    let device = s.device_ms.map(|ms| format!(" (GPU {ms:.1} ms)")).unwrap_or_default();
    format!(
        "{} frames | {:.1} fps | latency p50 {:.1} ms, p95 {:.1} ms{device} | dropped {} | {}x{} on {}",
        s.frames, s.fps, s.p50_ms, s.p95_ms, s.dropped, s.inference_size.0, s.inference_size.1, s.backend
    )
}

fn run_pipeline(config: Option<PathBuf>, overrides: Overrides) -> Result<()> {
    let mut cfg = match &config {
        Some(path) => EdgeConfig::from_file(path)?,
        None => EdgeConfig::default(),
    };
    overrides.apply(&mut cfg);
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let interrupt = interrupt.clone();
        ctrlc::set_handler(move || {
            if interrupt.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond Ctrl-C: stopping without finishing the output");
                std::process::exit(130);
            }
            eprintln!("\nCtrl-C: finishing the output (Ctrl-C again to abort)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    let tty = std::io::stderr().is_terminal();
    let show = cfg.output.stats;
    let report = pipeline::run(&cfg, &interrupt, |event| match event {
        Event::Note(note) => eprintln!("note: {note}"),
        Event::Stats(s) if show => {
            if tty {
                eprint!("\r{}\x1b[K", stats_line(s));
            } else {
                eprintln!("{}", stats_line(s));
            }
        }
        Event::Stats(_) => {}
    })?;
    if show && tty {
        eprintln!();
    }
    let fps = report.frames as f64 / report.seconds.max(1e-9);
    eprintln!("model {}", report.model);
    println!(
        "{} -> {}: {} frames in {:.1} s ({fps:.1} fps), dropped {}{}",
        cfg.input.input,
        cfg.output.output,
        report.frames,
        report.seconds,
        report.dropped,
        if report.interrupted { ", stopped by Ctrl-C" } else { "" }
    );
    if let pipeline::Output::File(path) = pipeline::Output::parse(&cfg.output.output)? {
        let video = pipeline::decode_file(&path).with_context(|| format!("checking {}", path.display()))?;
        println!("{} plays back: {} frames of {}x{}", path.display(), video.frames, video.width, video.height);
    }
    if let Some(last) = report.last {
        println!("latency p50 {:.1} ms, p95 {:.1} ms (last second) on {}", last.p50_ms, last.p95_ms, last.backend);
    }
    match report.lost {
        Some(why) => Err(cyclegan_edge::Error::InputUnavailable(format!(
            "{why}; the output holds the {} frames before",
            report.frames
        ))
        .into()),
        None => Ok(()),
    }
}

/// The exit status for `e`: the first of its causes that is an edge runtime error says which.
fn exit_status(e: &anyhow::Error) -> i32 {
    let failure = e.chain().find_map(|c| c.downcast_ref::<cyclegan_edge::Error>()).map(cyclegan_edge::Error::failure);
    match failure {
        Some(Failure::InputUnavailable) => EXIT_INPUT_UNAVAILABLE,
        Some(Failure::Config) => EXIT_CONFIG,
        Some(Failure::Other) | None => 1,
    }
}

/// Errors print once, with their causes on one line, the same in every binary of the project.
fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(exit_status(&e));
    }
}

fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Run { config, overrides } => run_pipeline(config, overrides),
        Command::Build(args) => build(args),
        Command::Doctor { no_self_test } => doctor(!no_self_test),
        Command::BenchKernels { frame, size, iters } => {
            let tensor = parse_shape(&size, "--size")?;
            let size = (tensor[3] as usize, tensor[2] as usize);
            let frame = match frame.split_once('x').map(|(w, h)| (w.parse::<usize>(), h.parse::<usize>())) {
                Some((Ok(w), Ok(h))) if w > 0 && h > 0 => (w, h),
                _ => anyhow::bail!("--frame {frame}: give WxH, like 1920x1080"),
            };
            let (device, rows) = cyclegan_edge::bench_kernels::run(frame, size, iters)?;
            print!("{}", cyclegan_edge::bench_kernels::table(&device, frame, size, &rows));
            Ok(())
        }
        Command::Bench {
            model,
            size,
            threads,
            iters,
            warmup,
            frames,
            rounds,
            python,
            temporal,
            input,
            smoothing,
            sequence_frames,
            max_images,
            backend,
            int8,
        } => {
            if let (true, Some(input)) = (temporal, input) {
                let opts = cyclegan_edge::bench_temporal::TemporalOptions {
                    model,
                    backend,
                    threads,
                    input,
                    frames: sequence_frames,
                    max_images,
                    smoothing,
                };
                let rows = cyclegan_edge::bench_temporal::run(&opts)?;
                print!("{}", cyclegan_edge::bench_temporal::table(&rows));
                return Ok(());
            }
            let (w, h) = match size.parse::<cyclegan_edge::preprocess::InferenceSize>()? {
                cyclegan_edge::preprocess::InferenceSize::Exact(w, h) => (w as usize, h as usize),
                _ => anyhow::bail!("--size {size}: give WxH, like 256x256"),
            };
            let opts = BenchOptions { model, size: (w, h), threads, iters, warmup, frames, rounds, python, int8 };
            let rows = bench::run(&opts)?;
            print!("{}", bench::table(&rows));
            Ok(())
        }
    }
}
