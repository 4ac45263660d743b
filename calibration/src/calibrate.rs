//! The whole calibration: images -> statistics -> scales -> Q/DQ model (with a sensitivity pass
//! that keeps the most damaging layers in floating point until a PSNR target is met) -> files
//! and report, with the share of convolution MACs left in INT8 and the time of each step.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cyclegan_onnx::pb::ModelProto;
use cyclegan_onnx::{GeneratorInfo, Precision};
use cyclegan_runtime::preprocess::{InferenceSize, Preprocessor};
use indicatif::{ProgressBar, ProgressStyle};

use crate::evaluate::{mean_psnr, mean_ssim, outputs};
use crate::graph::{self, MacShare, Plan, Residual};
use crate::images::{self, Sample};
use crate::observe::{self, open};
use crate::qdq::{self, Quantization};
use crate::report::{self, LayerReport, Quality, Report, SearchStep, Timings};
use crate::scales::{Histogram, Method};
use crate::trt_cache::{self, TrtVersion};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct Options {
    pub model: PathBuf,
    pub images: PathBuf,
    /// Calibration images to use at most.
    pub num: usize,
    pub method: Method,
    pub size: InferenceSize,
    pub out: PathBuf,
    pub trt_cache: Option<PathBuf>,
    pub trt_version: TrtVersion,
    pub keep_fp: Vec<String>,
    /// Whether the residual Adds get Q/DQ (Model Optimizer's placement) or stay in float.
    pub residual: Residual,
    pub target_psnr: Option<f64>,
    /// Refine the thresholds against the model's output on calibration images ([`refine`]).
    pub refine: bool,
    pub report: Option<PathBuf>,
    /// Also write the calibration inputs (`calibration.safetensors`) to the report folder.
    pub save_inputs: bool,
    /// CPU threads for ONNX Runtime (0: all cores).
    pub threads: usize,
    pub quiet: bool,
}

impl Options {
    /// Calibration images used at most unless told otherwise.
    pub const DEFAULT_NUM: usize = 256;

    /// `cyclegan-calib`'s defaults for calibrating `model` on `images` into `out`: MSE
    /// thresholds, every layer INT8, no cache or report, all cores.
    pub fn new(model: PathBuf, images: PathBuf, out: PathBuf) -> Self {
        Self {
            model,
            images,
            num: Self::DEFAULT_NUM,
            method: Method::Mse,
            size: InferenceSize::default(),
            out,
            trt_cache: None,
            trt_version: TrtVersion::JETPACK6,
            keep_fp: Vec::new(),
            residual: Residual::Int8,
            target_psnr: None,
            refine: true,
            report: None,
            save_inputs: false,
            threads: 0,
            quiet: false,
        }
    }
}

fn bar(quiet: bool, message: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>22} [{bar:30}] {pos}/{len} {elapsed_precise}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// Loads and checks the model: one of our FP32 generator exports, not quantized.
fn load_model(path: &Path) -> Result<(ModelProto, GeneratorInfo, Plan)> {
    let origin = path.display().to_string();
    let model_error = |source: cyclegan_onnx::Error| Error::Onnx { flag: "--model", source };
    let model = cyclegan_onnx::io::read_model(path).map_err(model_error)?;
    let info = cyclegan_onnx::validate_generator(&model).map_err(|e| model_error(e.in_file(path)))?;
    let plan = graph::plan(&model, &origin)?;
    if info.precision != Precision::Fp32 {
        return Err(Error::Model(format!(
            "--model {origin}: a {} graph; calibrate the FP32 export (`cyclegan-train export --precision fp32`)",
            info.precision
        )));
    }
    Ok((model, info, plan))
}

fn load_samples(
    paths: &[PathBuf],
    size: InferenceSize,
    resolution: u32,
    progress: &ProgressBar,
) -> Result<Vec<Sample>> {
    let mut pre = Preprocessor::default();
    progress.set_length(paths.len() as u64);
    paths
        .iter()
        .map(|p| {
            let s = images::load(p, size, resolution, &mut pre);
            progress.inc(1);
            s
        })
        .collect()
}

struct Evaluator<'a> {
    model: &'a ModelProto,
    plan: &'a Plan,
    held_out: &'a [Sample],
    reference: Vec<Vec<f32>>,
    threads: usize,
}

impl Evaluator<'_> {
    fn run(&self, q: &Quantization) -> Result<(Vec<Vec<f32>>, Quality)> {
        let quantized = qdq::rewrite(self.model, self.plan, q)?;
        let mut backend = open(&quantized, "quantized model", self.threads)?;
        let out = outputs(&mut backend, self.held_out)?;
        let quality = Quality {
            psnr_db: mean_psnr(&out, &self.reference),
            ssim: mean_ssim(&out, &self.reference, self.held_out),
        };
        Ok((out, quality))
    }
}

/// Calibration images the refinement measures the output on.
const REFINE_IMAGES: usize = 4;
/// Factors of each threshold the refinement tries.
const REFINE_FACTORS: [f32; 2] = [0.85, 1.15];

/// Output-aware refinement of the thresholds: tensor by tensor in graph order, each scale is
/// tried at [`REFINE_FACTORS`] times its value and the one that gives the INT8 model's output
/// the highest PSNR against FP32 on `eval`'s images (calibration images) is kept. The histogram
/// methods choose each threshold for its own tensor's error; this one for the picture's, which
/// is what a generator is judged by (the early residual stream, whose error every later block
/// carries, ends up clipped less, for instance).
fn refine(
    eval: &Evaluator,
    plan: &Plan,
    scales: &mut BTreeMap<String, f32>,
    keep: &BTreeSet<String>,
    progress: &ProgressBar,
) -> Result<()> {
    let quantization =
        |scales: &BTreeMap<String, f32>| Quantization { activation_scales: scales.clone(), keep_fp: keep.clone() };
    let mut tensors: Vec<&str> = Vec::new();
    for l in plan.layers.iter().filter(|l| !keep.contains(&l.name)) {
        if !tensors.contains(&l.input.as_str()) {
            tensors.push(&l.input);
        }
    }
    progress.set_length(tensors.len() as u64);
    let mut best = eval.run(&quantization(scales))?.1.psnr_db;
    for tensor in tensors {
        let base = scales[tensor];
        for factor in REFINE_FACTORS {
            let mut trial = scales.clone();
            trial.insert(tensor.to_string(), base * factor);
            let psnr = eval.run(&quantization(&trial))?.1.psnr_db;
            if psnr > best {
                (best, *scales) = (psnr, trial);
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(())
}

/// Runs the calibration `opts` describes, writes the Q/DQ model (and cache and report), and
/// returns the report.
pub fn calibrate(opts: &Options) -> Result<Report> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let (model, info, plan) = load_model(&opts.model)?;
    plan.check_names(&opts.keep_fp)?;
    if let Some(t) = opts.target_psnr
        && !(t > 0.0 && t < 100.0)
    {
        return Err(Error::Invalid(format!("--target-psnr {t}: give a PSNR in dB, e.g. 30")));
    }
    let float_residual = opts.residual == Residual::Float;
    // The layers in float before any search: the residual Adds if asked, and those named.
    let residual_float: BTreeSet<String> =
        if float_residual { plan.residual_adds().into_iter().map(String::from).collect() } else { BTreeSet::new() };
    let fixed: BTreeSet<String> = residual_float.iter().chain(&opts.keep_fp).cloned().collect();
    if float_residual && plan.residual_adds().is_empty() {
        return Err(Error::Invalid(format!(
            "--float-residual: {} has no residual Add to leave in float",
            opts.model.display()
        )));
    }
    let split = images::split(&opts.images, opts.num)?;
    if !split.skipped.is_empty() && !opts.quiet {
        eprintln!("skipping {} files that are not images in {}", split.skipped.len(), opts.images.display());
    }
    let resolution = info.metadata.training_resolution;
    let step = Instant::now();
    let calibration = load_samples(&split.calibration, opts.size, resolution, &bar(opts.quiet, "loading images"))?;
    let held_out = load_samples(&split.held_out, opts.size, resolution, &bar(opts.quiet, "loading held-out"))?;
    timings.load_s = step.elapsed().as_secs_f64();
    let share = MacShare::new(&model, &plan, held_out[0].shape[2], held_out[0].shape[3])?;

    let step = Instant::now();
    let names = graph::all_activations(&model)?;
    let hist: BTreeMap<String, Histogram> =
        observe::histograms(&model, &names, &calibration, opts.threads, &bar(opts.quiet, "collecting statistics"))?;
    timings.observe_s = step.elapsed().as_secs_f64();
    let step = Instant::now();
    let mut thresholds: BTreeMap<String, f32> =
        hist.iter().map(|(n, h)| (n.clone(), h.threshold(opts.method))).collect();
    let mut scales = crate::scales::observed(&hist, opts.method);
    timings.scales_s = step.elapsed().as_secs_f64();
    let quantized_activations = plan.activations();
    let mut activation_scales: BTreeMap<String, f32> =
        scales.iter().filter(|(n, _)| quantized_activations.contains(*n)).map(|(n, s)| (n.clone(), *s)).collect();
    if opts.refine {
        let step = Instant::now();
        let subset = &calibration[..calibration.len().min(REFINE_IMAGES)];
        let mut fp32 = open(&model, &opts.model.display().to_string(), opts.threads)?;
        let reference = outputs(&mut fp32, subset)?;
        drop(fp32);
        let eval = Evaluator { model: &model, plan: &plan, held_out: subset, reference, threads: opts.threads };
        refine(&eval, &plan, &mut activation_scales, &fixed, &bar(opts.quiet, "refining thresholds"))?;
        for (tensor, scale) in &activation_scales {
            scales.insert(tensor.clone(), *scale);
            thresholds.insert(tensor.clone(), scale * 127.0);
        }
        timings.refine_s = step.elapsed().as_secs_f64();
    }

    let step = Instant::now();
    let mut fp32 = open(&model, &opts.model.display().to_string(), opts.threads)?;
    let reference = outputs(&mut fp32, &held_out)?;
    drop(fp32);
    let mut fp16 = open(&cyclegan_onnx::convert::to_fp16(&model)?, "FP16 model", opts.threads)?;
    let fp16_out = outputs(&mut fp16, &held_out)?;
    drop(fp16);
    let fp16_quality =
        Quality { psnr_db: mean_psnr(&fp16_out, &reference), ssim: mean_ssim(&fp16_out, &reference, &held_out) };

    let eval = Evaluator { model: &model, plan: &plan, held_out: &held_out, reference, threads: opts.threads };
    let with_keep =
        |keep: &BTreeSet<String>| Quantization { activation_scales: activation_scales.clone(), keep_fp: keep.clone() };
    let (_, int8_all) = eval.run(&with_keep(&residual_float))?;
    let mut keep = fixed.clone();
    timings.evaluate_s = step.elapsed().as_secs_f64();

    let mut alone: BTreeMap<String, f64> = BTreeMap::new();
    let mut search = Vec::new();
    if let Some(target) = opts.target_psnr {
        let step = Instant::now();
        let progress = bar(opts.quiet, "sensitivity");
        let candidates: Vec<&str> =
            plan.layers.iter().map(|l| l.name.as_str()).filter(|n| !fixed.contains(*n)).collect();
        progress.set_length(candidates.len() as u64);
        let everyone: BTreeSet<String> = plan.layers.iter().map(|l| l.name.clone()).collect();
        for name in &candidates {
            let mut others = everyone.clone();
            others.remove(*name);
            let (_, q) = eval.run(&with_keep(&others))?;
            alone.insert(name.to_string(), q.psnr_db);
            progress.inc(1);
        }
        progress.finish_and_clear();
        let mut ranked: Vec<(&String, f64)> = alone.iter().map(|(n, p)| (n, *p)).collect();
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut current = eval.run(&with_keep(&keep))?.1;
        for (name, _) in ranked {
            if current.psnr_db >= target {
                break;
            }
            if keep.insert(name.clone()) {
                current = eval.run(&with_keep(&keep))?.1;
                let int8_mac_share = share.int8(&keep);
                if !opts.quiet {
                    eprintln!(
                        "sensitivity: {name} in float -> {:.2} dB, {:.1} % of conv MACs in INT8",
                        current.psnr_db,
                        100.0 * int8_mac_share
                    );
                }
                search.push(SearchStep { kept_fp: name.clone(), psnr_db: current.psnr_db, int8_mac_share });
            }
        }
        timings.sensitivity_s = step.elapsed().as_secs_f64();
    }
    let step = Instant::now();
    let chosen = with_keep(&keep);
    let (int8_out, int8_quality) = eval.run(&chosen)?;
    timings.evaluate_s += step.elapsed().as_secs_f64();
    let int8_mac_share = share.int8(&keep);

    let step = Instant::now();
    let record = serde_json::json!({
        "method": opts.method.to_string(),
        "refined": opts.refine,
        "images": split.calibration.len(),
        "float_residual": float_residual,
        "kept_fp": keep.iter().collect::<Vec<_>>(),
        "int8_mac_share": int8_mac_share,
        "held_out_psnr_db": int8_quality.psnr_db,
    });
    let quantized = qdq::quantized_model(&model, &plan, &chosen, &record)?;
    cyclegan_onnx::io::write_model(&opts.out, &quantized).map_err(|source| Error::Onnx { flag: "--out", source })?;
    if let Some(cache) = &opts.trt_cache {
        report::write_atomic(cache, trt_cache::write(opts.trt_version, &scales).as_bytes())?;
    }
    timings.rewrite_s = step.elapsed().as_secs_f64();

    let layers = plan
        .layers
        .iter()
        .map(|l| {
            let h = &hist[&l.input];
            LayerReport {
                name: l.name.clone(),
                op: l.op.clone(),
                input: l.input.clone(),
                pad_input: l.pad.as_ref().map(|p| p.input.clone()),
                amax: h.amax,
                threshold: thresholds[&l.input],
                scale: scales[&l.input],
                sqnr_db: h.sqnr_db(thresholds[&l.input]),
                macs: share.macs.get(&l.name).copied().unwrap_or(0),
                alone_psnr_db: alone.get(&l.name).copied(),
                kept_fp: keep.contains(&l.name),
            }
        })
        .collect();
    let mut report = Report {
        model: opts.model.display().to_string(),
        method: opts.method.to_string(),
        calibration_images: split.calibration.len(),
        held_out_images: split.held_out.iter().map(|p| p.display().to_string()).collect(),
        fp16: fp16_quality,
        int8_all,
        int8_all_mac_share: share.int8(&residual_float),
        no_int8_kernel: plan.float_convs.clone(),
        int8: int8_quality,
        target_psnr_db: opts.target_psnr,
        float_residual,
        kept_fp: keep.into_iter().collect(),
        conv_macs: share.total,
        int8_mac_share,
        search,
        timings,
        layers,
    };
    report.timings.total_s = started.elapsed().as_secs_f64();
    if let Some(dir) = &opts.report {
        let rows: Vec<[&[f32]; 3]> = eval
            .reference
            .iter()
            .zip(&fp16_out)
            .zip(&int8_out)
            .map(|((a, b), c)| [a.as_slice(), b.as_slice(), c.as_slice()])
            .collect();
        report::write(dir, &report, &held_out, &rows)?;
        if opts.save_inputs {
            report::write_inputs(&dir.join(report::CALIBRATION_INPUTS), &calibration)?;
        }
    }
    Ok(report)
}
