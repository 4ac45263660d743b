//! `build`: a TensorRT engine from a generator ONNX, on the machine that will run it.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use cyclegan_edge::backend::cuda::device::Gpu;
use cyclegan_edge::backend::tensorrt::{
    Notify, Phase, Precision, Profile, Severity, Shapes, TensorRt, TensorrtOptions, effective_precision,
    ensure_engine, parse_shape,
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use cyclegan_edge::model::Model;

#[derive(clap::Args)]
pub struct BuildArgs {
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

pub fn build(args: BuildArgs) -> Result<()> {
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
        notify: Some(Notify(Arc::new(|line: &str| eprintln!("{line}")))),
        ..TensorrtOptions::default()
    };
    eprintln!("{}, TensorRT {}, {precision}", gpu.describe(), tensorrt.version);
    let mut bars = PhaseBars::default();
    let mut show = |phase| bars.show(phase);
    let hook = Mutex::new(&mut show as &mut (dyn FnMut(Phase) + Send));
    let built = ensure_engine(
        &tensorrt,
        &gpu,
        &model,
        &options,
        Shapes::Profile(profile),
        args.timing_cache.as_deref(),
        Some(&hook),
    )?;
    let size = std::fs::metadata(&built.engine).map(|m| m.len()).unwrap_or(0);
    match built.rebuilt {
        None => println!("{} is up to date (its key matches)", built.engine.display()),
        Some(why) => {
            println!("{}: {:.1} MB, built in {:.0} s ({why})", built.engine.display(), size as f64 / 1e6, built.seconds)
        }
    }
    Ok(())
}

/// TensorRT's build phases as progress bars, a nested phase under its parent.
#[derive(Default)]
struct PhaseBars {
    all: MultiProgress,
    open: HashMap<String, (ProgressBar, usize)>,
}

impl PhaseBars {
    fn show(&mut self, phase: Phase) {
        match phase {
            Phase::Start { name, parent, steps } => {
                let depth = parent.as_ref().and_then(|p| self.open.get(p)).map_or(0, |(_, d)| d + 1);
                let style = ProgressStyle::with_template("{prefix}{msg:<40} [{bar:30}] {pos}/{len} {elapsed}")
                    .expect("a valid template")
                    .progress_chars("=> ");
                let bar = self.all.add(ProgressBar::new(steps.max(0) as u64).with_style(style));
                bar.set_prefix("  ".repeat(depth));
                bar.set_message(name.clone());
                self.open.insert(name, (bar, depth));
            }
            Phase::Step { name, step } => {
                if let Some((bar, _)) = self.open.get(&name) {
                    bar.set_position(step as u64 + 1);
                }
            }
            Phase::Finish { name } => {
                if let Some((bar, depth)) = self.open.remove(&name) {
                    // The top phases stay on screen as a record; nested ones make room.
                    if depth == 0 { bar.finish() } else { bar.finish_and_clear() }
                }
            }
        }
    }
}
