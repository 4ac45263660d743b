//! `build`: a TensorRT engine from a generator ONNX, on the machine that will run it.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use cyclegan_edge::backend::cuda::device::Gpu;
use cyclegan_edge::backend::tensorrt::{
    EngineKey, Notify, Phase, PrecisionChoice, Profile, Severity, Shapes, TensorRt, TensorrtOptions, auto,
    default_cache_dir, effective_precision, ensure_engine, key_path, parse_shape, store,
};
use cyclegan_edge::model::Model;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Generator ONNX (FP32 export, or the Q/DQ model of cyclegan-calib for int8).
    #[arg(long)]
    onnx: PathBuf,
    /// Engine file to write (with its key beside it, FILE.json).
    #[arg(long)]
    out: PathBuf,
    /// auto: builds every candidate that applies (fp16; int8 with --int8-onnx; TensorRT's native
    /// and plugin InstanceNorm), times each at the size, checks each against ONNX Runtime's FP32
    /// output and keeps the fastest above --psnr-floor (the table is printed and kept in FILE.auto.json).
    #[arg(long, value_enum, default_value_t = PrecisionChoice::Fp16)]
    precision: PrecisionChoice,
    /// With --precision auto: the Q/DQ model of --onnx (cyclegan-calib), so that int8 is a candidate.
    #[arg(long)]
    int8_onnx: Option<PathBuf>,
    /// With --precision auto: the least PSNR (dB) against ONNX Runtime's FP32 output a candidate must keep.
    #[arg(long, default_value_t = auto::DEFAULT_PSNR_FLOOR)]
    psnr_floor: f64,
    /// With --precision auto: images to check the candidates on (the first 4; default: built-in
    /// test images). Frames of your camera make the check yours.
    #[arg(long)]
    check_images: Option<PathBuf>,
    /// With --precision auto: where the candidates' engines are kept (default: the engine cache).
    #[arg(long)]
    engine_cache: Option<PathBuf>,
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

impl BuildArgs {
    /// TensorRT, the GPU, and the settings every engine of this command shares.
    fn open(&self) -> Result<(TensorRt, Gpu, TensorrtOptions)> {
        let severity = if self.verbose { Severity::Info } else { Severity::Warning };
        let tensorrt = TensorRt::open(self.tensorrt_lib.as_deref(), severity)?;
        let gpu = Gpu::open(self.device)?;
        let shared = TensorrtOptions {
            workspace_mib: self.workspace,
            calibration_cache: self.calibration_cache.clone(),
            library: self.tensorrt_lib.clone(),
            device: self.device,
            notify: Some(Notify(Arc::new(|line: &str| eprintln!("{line}")))),
            ..TensorrtOptions::default()
        };
        Ok((tensorrt, gpu, shared))
    }
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
    let Some(asked) = args.precision.fixed() else { return build_auto(&args, &model, profile) };
    if let Some(flag) = [
        args.int8_onnx.as_ref().map(|_| "--int8-onnx"),
        args.check_images.as_ref().map(|_| "--check-images"),
        args.engine_cache.as_ref().map(|_| "--engine-cache"),
    ]
    .into_iter()
    .flatten()
    .next()
    {
        anyhow::bail!("{flag} is for --precision auto; --precision {asked} builds one engine");
    }
    let (precision, note) = effective_precision(&model, asked);
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let (tensorrt, gpu, shared) = args.open()?;
    let options =
        TensorrtOptions { precision: asked, engine: Some(args.out.clone()), profile: Some(profile), ..shared };
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

/// `--precision auto`: every candidate built into the engine cache and measured; the chosen
/// one's engine copied to `--out` with its key, the decision beside it (`FILE.auto.json`).
fn build_auto(args: &BuildArgs, model: &Model, profile: Profile) -> Result<()> {
    let int8 = match &args.int8_onnx {
        Some(path) => {
            let int8 = Model::load(Some(path)).with_context(|| format!("--int8-onnx {}", path.display()))?;
            if !int8.quantized {
                anyhow::bail!("--int8-onnx {}: no Q/DQ nodes; give the model cyclegan-calib wrote", path.display());
            }
            Some(int8)
        }
        None => None,
    };
    let (tensorrt, gpu, shared) = args.open()?;
    let models = auto::Models { float: model, int8: int8.as_ref() };
    let candidates = auto::candidates_for(&models, tensorrt.has_plugins());
    let inputs = match &args.check_images {
        Some(dir) => auto::images_from(dir, profile.opt, auto::CHECK_IMAGES)
            .with_context(|| format!("--check-images {}", dir.display()))?,
        None => auto::check_inputs(profile.opt, auto::CHECK_IMAGES),
    };
    let base =
        TensorrtOptions { cache_dir: Some(args.engine_cache.clone().unwrap_or_else(default_cache_dir)), ..shared };
    eprintln!(
        "{}, TensorRT {}: precision auto over {} ({} check images, floor {} dB)",
        gpu.describe(),
        tensorrt.version,
        candidates.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        inputs.len(),
        args.psnr_floor
    );
    let trials = auto::measure(&models, &base, &candidates, profile, &inputs)?;
    let decision = auto::decide(trials, args.psnr_floor, profile.opt)?;
    println!("{}", decision.table());
    let chosen = &decision.chosen;
    let source = models.for_precision(chosen.precision);
    let options = TensorrtOptions { precision: chosen.precision, instance_norm: chosen.instance_norm, ..base };
    let cached = ensure_engine(&tensorrt, &gpu, source, &options, Shapes::Profile(profile), None, None)?;
    let plan = std::fs::read(&cached.engine).with_context(|| format!("reading {}", cached.engine.display()))?;
    let key: EngineKey = serde_json::from_str(&std::fs::read_to_string(key_path(&cached.engine))?)
        .with_context(|| format!("reading {}", key_path(&cached.engine).display()))?;
    store(&args.out, &plan, &key)?;
    let mut decided = args.out.as_os_str().to_owned();
    decided.push(".auto.json");
    decision.store(&PathBuf::from(&decided))?;
    println!(
        "{}: {} ({:.1} MB; the decision in {})",
        args.out.display(),
        chosen,
        plan.len() as f64 / 1e6,
        PathBuf::from(decided).display()
    );
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
