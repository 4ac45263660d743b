//! `cyclegan-train qat`: quantization-aware fine-tuning. A trained generator (the original, kept
//! frozen in FP32) is copied into one that fake-quantizes to INT8 at exactly the layers and
//! tensors `cyclegan-calib` gives Q/DQ (per-channel weights, per-tensor activations), and the
//! copy is trained to give the original's outputs (L1, optionally its activations in the
//! residual stage, optionally temporal consistency).
//!
//! The activation scales start from a calibration (`[qat] calibrated`, or one this run makes
//! with the MSE method) and are then learned with LSQ's gradient rather than re-observed: the
//! fine-tuning moves the activations, and a learned scale settles on the clipping that the loss
//! prefers instead of the one a histogram prefers. Weight scales are re-observed from the weights
//! at every step (largest magnitude per channel), as the Q/DQ writer computes them, so the export
//! holds no scale of its own for the weights.
//!
//! A checkpoint holds the fine-tuned generator under the direction's name (so `translate`,
//! `export` and `info` take it) and the learned scales by layer in [`SCALES_FILE`]; `export
//! --precision int8` writes its Q/DQ model through `cyclegan-calib`'s writer.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cyclegan_calibration::calibrate::{Options as CalibrateOptions, calibrate};
use cyclegan_calibration::graph::{self, Plan, Residual};
use cyclegan_calibration::qdq::{self, Quantization};
use cyclegan_calibration::scales::Method;
use cyclegan_model::Direction;
use cyclegan_model::checkpoint::{SCALES_FILE, is_qat_checkpoint, read_scales};
use cyclegan_model::export::{ExportOptions, export_checkpoint};
use cyclegan_onnx::pb::ModelProto;
use cyclegan_onnx::{FloatType, GeneratorMetadata, Precision};
use rand::rngs::StdRng;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, TrainState, load_network, net_file, read_state, read_tensors, write_atomically};
use crate::config::{DataConfig, QatConfig, TrainConfig};
use crate::data::{Augment, UnalignedDataset};
use crate::distill::feature_points;
use crate::error::{Error, Result};
use crate::model::fake_quant::QuantPoints;
use crate::model::{Generator, quantized_generator};
use crate::temporal::{WarpRange, consistency};
use crate::trainer::{Adam, FitOptions, FitSummary, Job, Step, run};
use crate::translate::Translator;

/// Names of the loss terms, in `Step::losses` order.
pub const LOSSES: [&str; 2] = ["L1", "feature"];
/// The temporal term, logged after them when `lambda_temporal` is on.
const TEMPORAL_LOSS: &str = "temporal";
const OPTIMIZER_FILE: &str = "optim_qat.safetensors";
/// Where a run without `[qat] calibrated` calibrates (the FP32 export, the Q/DQ model and the
/// report); a resumed run finds it there.
pub const CALIBRATION_DIR: &str = "calibration";
/// Points of the residual stage whose activations the feature term compares.
const FEATURE_POINTS: usize = 3;

/// `config`'s original generator exported to FP32 ONNX, and what `cyclegan-calib` quantizes in it.
fn fp32_plan(checkpoint: &Path, direction: Direction) -> Result<(ModelProto, Plan)> {
    let opts = ExportOptions { direction, precision: Precision::Fp32, io_type: FloatType::F32 };
    let model = export_checkpoint(checkpoint, &opts)?;
    let plan = graph::plan(&model, &checkpoint.display().to_string())?;
    Ok((model, plan))
}

/// A `[qat] calibrated` model's quantization, checked to belong to the original's export.
fn read_calibrated(path: &Path, fp32: &ModelProto, plan: &Plan, original: &Path) -> Result<Quantization> {
    let flag = "--calibrated (qat.calibrated)";
    let calibrated = cyclegan_onnx::io::read_model(path)?;
    let theirs = GeneratorMetadata::read_from(&calibrated).map_err(|e| e.in_file(path))?;
    let ours = GeneratorMetadata::read_from(fp32)?;
    if theirs.precision != Precision::Int8 {
        return Err(Error::InvalidValue {
            key: flag.into(),
            message: format!(
                "{} is a {} model; give the Q/DQ model `cyclegan-calib` wrote",
                path.display(),
                theirs.precision
            ),
        });
    }
    if theirs.source_sha256 != ours.source_sha256 {
        return Err(Error::InvalidValue {
            key: flag.into(),
            message: format!(
                "{} was calibrated from another generator (weights sha256 {}…), not {}'s (sha256 {}…): calibrate this \
                 checkpoint's fp32 export, or leave --calibrated out to calibrate here",
                path.display(),
                &theirs.source_sha256[..theirs.source_sha256.len().min(12)],
                original.display(),
                &ours.source_sha256[..ours.source_sha256.len().min(12)]
            ),
        });
    }
    Ok(qdq::read(&calibrated, plan, &path.display().to_string())?)
}

/// The quantization a run starts from: `[qat] calibrated`'s, or that of an MSE calibration of the
/// original's FP32 export on the source domain's training images, made once in the run folder.
fn starting_quantization(
    config: &TrainConfig,
    q: &QatConfig,
    run_dir: &Path,
    fp32: &ModelProto,
    plan: &Plan,
) -> Result<Quantization> {
    if !q.calibrated.as_os_str().is_empty() {
        return read_calibrated(&q.calibrated, fp32, plan, &q.checkpoint);
    }
    let dir = run_dir.join(CALIBRATION_DIR);
    let out = dir.join("ptq.int8.onnx");
    if !out.is_file() {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let model = dir.join("fp32.onnx");
        cyclegan_onnx::io::write_model(&model, fp32)?;
        let options = CalibrateOptions {
            num: q.calibration_images,
            residual: if q.float_residual { Residual::Float } else { Residual::Int8 },
            report: Some(dir.clone()),
            threads: config.train.threads,
            ..CalibrateOptions::new(
                model,
                config.data.dataroot.join(format!("train{}", q.direction.source_domain())),
                out.clone(),
            )
        };
        let report = calibrate(&options)?;
        eprintln!(
            "calibrated the starting scales: {:.2} dB vs FP32 after post-training quantization ({})",
            report.int8.psnr_db,
            dir.display()
        );
    }
    let model = cyclegan_onnx::io::read_model(&out)?;
    Ok(qdq::read(&model, plan, &out.display().to_string())?)
}

/// A checkpoint's learned scales as a [`Quantization`] of `plan`: the layers named in
/// [`SCALES_FILE`] are INT8, the others float.
fn checkpoint_quantization(dir: &Path, plan: &Plan) -> Result<Quantization> {
    let file = dir.join(SCALES_FILE);
    let mut q = Quantization::default();
    let scales = read_scales(dir)?;
    for l in &plan.layers {
        match scales.get(&l.name) {
            Some(s) => {
                q.activation_scales.insert(l.input.clone(), *s);
            }
            None => {
                q.keep_fp.insert(l.name.clone());
            }
        }
    }
    if let Some(unknown) = scales.keys().find(|n| !plan.layers.iter().any(|l| &l.name == *n)) {
        return Err(Error::checkpoint(&file, format!("has a scale for `{unknown}`, which this generator lacks")));
    }
    Ok(q)
}

/// The Q/DQ model of a QAT checkpoint `dir` from its generator's FP32 export `fp32`: the learned
/// activation scales and the layers it kept in float, through `cyclegan-calib`'s writer.
pub fn quantized_export(dir: &Path, state: &TrainState, fp32: &ModelProto) -> Result<ModelProto> {
    let plan = graph::plan(fp32, &dir.display().to_string())?;
    let q = checkpoint_quantization(dir, &plan)?;
    let origin = state.config.qat.as_ref().map(|c| c.checkpoint.display().to_string()).unwrap_or_default();
    let record = serde_json::json!({
        "method": "qat",
        "scales": "learned (LSQ) from a calibration",
        "fine_tuned_from": origin,
        "steps": state.iteration,
        "kept_fp": q.keep_fp.iter().collect::<Vec<_>>(),
    });
    Ok(qdq::quantized_model(fp32, &plan, &q, &record)?)
}

/// Every activation scale of a QAT checkpoint's generator, for a TensorRT 10 calibration cache
/// (implicit INT8 needs a range for each tensor, not only for those the Q/DQ nodes read): the
/// learned scales where the fine-tuning has them, MSE thresholds observed on the images the run
/// calibrated on (`[qat] calibration_images` of the source domain's training set) elsewhere.
pub fn cache_scales(checkpoint: &Path, direction: Direction, threads: usize) -> Result<BTreeMap<String, f32>> {
    let dir = checkpoint::resolve(checkpoint)?;
    let state = read_state(&dir)?;
    let Some(q) = &state.config.qat else {
        return Err(Error::Export(format!("{} is not a checkpoint of `cyclegan-train qat`", dir.display())));
    };
    let opts = ExportOptions { direction, precision: Precision::Fp32, io_type: FloatType::F32 };
    let fp32 = export_checkpoint(&dir, &opts)?;
    let plan = graph::plan(&fp32, &dir.display().to_string())?;
    let learned = checkpoint_quantization(&dir, &plan)?.activation_scales;
    let images = state.config.data.dataroot.join(format!("train{}", q.direction.source_domain()));
    let paths = cyclegan_calibration::images::split(&images, q.calibration_images)?.calibration;
    Ok(cyclegan_calibration::trt_cache::activation_scales(&fp32, &paths, Method::Mse, threads, &learned)?)
}

/// The fine-tuned generator, its learned scales and optimizer, and the frozen original.
pub struct Qat {
    original: Translator,
    points: Vec<usize>,
    vs: nn::VarStore,
    student: Generator,
    /// One learned scale per quantized activation tensor (what the optimizer steps)...
    scales: Vec<(String, Tensor)>,
    /// ...and, by layer, the scale of the tensor it reads (what the checkpoint holds).
    layers: QuantPoints,
    opt: Adam,
    weights: QatConfig,
    lambda_temporal: f64,
}

impl Qat {
    /// `resume`: the checkpoint the run continues from, whose scales replace the calibration.
    pub fn new(config: &TrainConfig, run_dir: &Path, resume: Option<&Path>, device: Device) -> Result<Self> {
        let q = config.qat.clone().expect("qat() checks the section");
        let (fp32, plan) = fp32_plan(&q.checkpoint, q.direction)?;
        let start = match resume {
            Some(dir) => checkpoint_quantization(dir, &plan)?,
            None => starting_quantization(config, &q, run_dir, &fp32, &plan)?,
        };
        let original = Translator::load(&q.checkpoint, q.direction, device)?;
        let mut scales: Vec<(String, Tensor)> = Vec::new();
        let mut layers = QuantPoints::new();
        for l in plan.layers.iter().filter(|l| !start.keep_fp.contains(&l.name)) {
            let scale = match scales.iter().find(|(t, _)| *t == l.input) {
                Some((_, s)) => s.shallow_clone(),
                None => {
                    let s = Tensor::from(start.activation_scales[&l.input]).to_device(device).set_requires_grad(true);
                    scales.push((l.input.clone(), s.shallow_clone()));
                    s
                }
            };
            layers.insert(l.name.clone(), scale);
        }
        let cfg = config.model.generator();
        let vs = nn::VarStore::new(device);
        let student = quantized_generator(&vs.root(), &cfg, config.model.init_gain, &layers);
        load_network(&vs, &net_file(&original.dir, q.direction.network()))?;
        let mut params = checkpoint::variables(&vs, "generator.");
        params.extend(scales.iter().map(|(t, s)| (format!("scale.{t}"), s.shallow_clone())));
        let t = &config.train;
        let opt = Adam::new(params, t.lr, t.beta1, t.beta2);
        let points = feature_points(student.n_blocks(), FEATURE_POINTS.min(student.n_blocks()));
        Ok(Self { original, points, vs, student, scales, layers, opt, weights: q, lambda_temporal: t.lambda_temporal })
    }

    /// Stops the run when a learned scale is no longer a positive number (one read from the
    /// device per step; the culprit is looked for only then).
    fn check_scales(&self) -> Result<()> {
        if self.scales.is_empty() {
            return Ok(());
        }
        let all = Tensor::stack(&self.scales.iter().map(|(_, s)| s.detach()).collect::<Vec<_>>(), 0);
        let ok = tch::no_grad(|| all.isfinite().logical_and(&all.gt(0.0)).all().int64_value(&[]) == 1);
        if ok {
            return Ok(());
        }
        for (tensor, s) in &self.scales {
            let v = s.double_value(&[]);
            if !(v > 0.0 && v.is_finite()) {
                return Err(Error::InvalidValue {
                    key: "train.lr".into(),
                    message: format!(
                        "the learned scale of `{tensor}` became {v}: the fine-tuning diverged; resume from the last \
                         checkpoint with a lower --lr"
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Job for Qat {
    const TITLE: &'static str = "quantization-aware fine-tuning losses";
    const VERB: &'static str = "fine-tuning for INT8";
    const ONE_PROCESS: Option<&'static str> =
        Some("it calibrates into the run folder before training; run it without torchrun or --nproc");

    fn loss_names(&self) -> Vec<&'static str> {
        let temporal = if self.lambda_temporal > 0.0 { &[TEMPORAL_LOSS][..] } else { &[] };
        LOSSES.iter().chain(temporal).copied().collect()
    }

    fn set_lr(&mut self, lr: f64) {
        self.opt.lr = lr;
    }

    fn step(&mut self, real_a: &Tensor, real_b: &Tensor, rng: &mut StdRng) -> Result<Step> {
        let source = match self.weights.direction {
            Direction::A2b => real_a,
            Direction::B2a => real_b,
        };
        let (reference, reference_features) = self.original.forward_with_features(source, &self.points);
        let w = &self.weights;
        self.opt.zero_grad();
        let (fake, features) = self.student.forward_with_features(source, &self.points);
        let l1 = (&fake - &reference).abs().mean(Kind::Float) * w.lambda_l1;
        let feature = if w.lambda_feature > 0.0 {
            let sum = features
                .iter()
                .zip(&reference_features)
                .fold(Tensor::zeros([], (Kind::Float, source.device())), |s, (f, r)| {
                    s + (f - r).square().mean(Kind::Float)
                });
            sum * (w.lambda_feature / self.points.len().max(1) as f64)
        } else {
            Tensor::zeros([], (Kind::Float, source.device()))
        };
        let temporal = (self.lambda_temporal > 0.0).then(|| {
            let c = consistency(|x| self.student.forward(x), source, &fake, &WarpRange::default(), rng);
            (c.loss * self.lambda_temporal, c.row)
        });
        let mut loss = &l1 + &feature;
        if let Some((t, _)) = &temporal {
            loss += t;
        }
        loss.backward();
        self.opt.step();
        self.check_scales()?;
        let mut losses = vec![l1.double_value(&[]), feature.double_value(&[])];
        let progress = format!("L1 {:.4} feat {:.4}", losses[0], losses[1]);
        let mut samples = vec![vec![source.shallow_clone(), reference, fake.detach()]];
        if let Some((t, row)) = temporal {
            losses.push(t.double_value(&[]));
            samples.push(Vec::from(row));
        }
        Ok(Step { samples, losses, progress })
    }

    fn save_checkpoint(&self, run_dir: &Path, name: &str, state: &TrainState) -> Result<PathBuf> {
        let scales = self.layers.iter().map(|(layer, s)| (layer.clone(), s.detach())).collect();
        let files = vec![
            (format!("{}.safetensors", self.weights.direction.network()), checkpoint::variables(&self.vs, "")),
            (SCALES_FILE.into(), scales),
            (OPTIMIZER_FILE.into(), self.opt.state()),
        ];
        write_atomically(&run_dir.join(name), state, &files)
    }

    fn load_checkpoint(&mut self, dir: &Path) -> Result<TrainState> {
        let state = read_state(dir)?;
        load_network(&self.vs, &net_file(dir, self.weights.direction.network()))?;
        let file = dir.join(SCALES_FILE);
        let saved = read_tensors(&file)?;
        if saved.len() != self.layers.len() {
            return Err(Error::checkpoint(&file, format!("holds {} scales, not {}", saved.len(), self.layers.len())));
        }
        for (layer, value) in saved {
            let s = self.layers.get_mut(&layer).ok_or_else(|| {
                Error::checkpoint(&file, format!("has a scale for `{layer}`, which is not INT8 here"))
            })?;
            tch::no_grad(|| s.copy_(&value.to_device(s.device()).view([])));
        }
        let opt = dir.join(OPTIMIZER_FILE);
        self.opt.load_state(&read_tensors(&opt)?, &opt)?;
        Ok(state)
    }

    fn loss_scale(&self) -> f64 {
        1.0
    }

    fn min_image_side(&self, _config: &TrainConfig) -> u32 {
        // Two stride-2 convolutions, then reflection padding of 1.
        8
    }

    fn replicated(&self) -> Vec<Tensor> {
        self.opt.parameters().collect()
    }
}

/// Fine-tunes `config.qat`'s generator for INT8 (or, with `options.resume`, continues such a run
/// whose configuration `config` must then be).
pub fn qat(config: &TrainConfig, options: &FitOptions) -> Result<FitSummary> {
    config.validate()?;
    let Some(q) = &config.qat else {
        return Err(Error::InvalidValue {
            key: "qat".into(),
            message: "the configuration has no [qat] section: give --checkpoint (or use configs/train/qat.toml)".into(),
        });
    };
    let flag = "--checkpoint (qat.checkpoint)";
    if q.checkpoint.as_os_str().is_empty() {
        return Err(Error::InvalidValue {
            key: flag.into(),
            message: "no generator given: pass the run or checkpoint folder to fine-tune".into(),
        });
    }
    if !q.checkpoint.exists() {
        return Err(Error::InvalidValue {
            key: flag.into(),
            message: format!("{} does not exist", q.checkpoint.display()),
        });
    }
    let original_dir = checkpoint::resolve(&q.checkpoint)?;
    if !net_file(&original_dir, q.direction.network()).is_file() {
        return Err(Error::InvalidValue {
            key: "--direction (qat.direction)".into(),
            message: format!(
                "{} has no {} generator ({}.safetensors); fine-tune the direction it has",
                original_dir.display(),
                q.direction.name(),
                q.direction.network()
            ),
        });
    }
    if is_qat_checkpoint(&original_dir) {
        return Err(Error::InvalidValue {
            key: flag.into(),
            message: format!(
                "{} is already fine-tuned for INT8; continue it with `cyclegan-train qat --resume`",
                original_dir.display()
            ),
        });
    }
    if !q.calibrated.as_os_str().is_empty() && !q.calibrated.is_file() {
        return Err(Error::InvalidValue {
            key: "--calibrated (qat.calibrated)".into(),
            message: format!("{} does not exist", q.calibrated.display()),
        });
    }
    // The architecture is the original's; so is the data unless the recipe names a dataroot.
    let original = read_state(&original_dir)?.config;
    let mut config = config.clone();
    config.model = original.model.clone();
    let defaults = DataConfig::default();
    if config.data.dataroot == defaults.dataroot {
        let own = (config.data.batch_size, config.data.num_workers, config.data.max_dataset_size);
        config.data = original.data.clone();
        (config.data.batch_size, config.data.num_workers, config.data.max_dataset_size) = own;
    }
    config.data.inherit_domains(&original.data);
    let config = &config;
    let source = config.qat.as_ref().expect("checked above").direction.source_domain();
    let data = |config: &TrainConfig| {
        let c = &config.data;
        UnalignedDataset::open_one(
            &c.dataroot,
            "train",
            source,
            c.max_dataset_size,
            Augment::from_config(c),
            c.serial_batches,
            c.workers(),
        )
    };
    let resume = options.resume.as_deref().map(checkpoint::resolve).transpose()?;
    run(config, options, data, |device, run_dir| Qat::new(config, run_dir, resume.as_deref(), device))
}
