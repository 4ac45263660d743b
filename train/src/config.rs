//! Training configuration: a TOML recipe (`configs/train/*.toml`) whose every field can be
//! overridden by a command-line flag. `TrainConfig::default()` reproduces the paper.
use std::path::{Path, PathBuf};

use cyclegan_model::checkpoint::Domains;
use cyclegan_model::{Direction, Family, ModelConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How training images are resized and cropped, as in the reference implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Preprocess {
    /// Resize to `load_size` x `load_size`, then random crop `crop_size`.
    ResizeAndCrop,
    /// Random crop `crop_size` from the image as it is.
    Crop,
    /// Resize so the width is `load_size`, keeping the aspect ratio.
    ScaleWidth,
    /// Keep the image, rounding its sides down to multiples of 4.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Folder with `trainA/`, `trainB/` (and `testA/`, `testB/`).
    pub dataroot: PathBuf,
    pub preprocess: Preprocess,
    pub load_size: u32,
    pub crop_size: u32,
    pub no_flip: bool,
    /// Pair A[i] with B[i] in order instead of a random B.
    pub serial_batches: bool,
    pub batch_size: usize,
    /// Threads that load and augment images ahead of the model.
    pub num_workers: usize,
    /// Use at most this many images per domain (0: all).
    pub max_dataset_size: usize,
    /// Name of domain A (recorded in exported models).
    pub domain_a: String,
    /// Name of domain B.
    pub domain_b: String,
}

impl DataConfig {
    /// Takes `from`'s domain names where these are the defaults: a generator made from another
    /// (a distilled student, a fine-tuned copy) translates between the same domains.
    pub fn inherit_domains(&mut self, from: &DataConfig) {
        let defaults = Domains::default();
        if (&self.domain_a, &self.domain_b) == (&defaults.domain_a, &defaults.domain_b) {
            (self.domain_a, self.domain_b) = (from.domain_a.clone(), from.domain_b.clone());
        }
    }

    /// Loader threads (at least one).
    pub fn workers(&self) -> usize {
        self.num_workers.max(1)
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        // What a checkpoint's generators record of [data] (`Domains`) has its defaults there.
        let Domains { domain_a, domain_b, crop_size } = Domains::default();
        Self {
            dataroot: PathBuf::from("datasets/summer2winter_yosemite"),
            preprocess: Preprocess::ResizeAndCrop,
            load_size: 286,
            crop_size,
            no_flip: false,
            serial_batches: false,
            batch_size: 1,
            num_workers: 4,
            max_dataset_size: 0,
            domain_a,
            domain_b,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Epochs at the initial learning rate.
    pub n_epochs: usize,
    /// Epochs over which the learning rate decays linearly to zero.
    pub n_epochs_decay: usize,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Weight of the cycle loss A -> B -> A.
    pub lambda_a: f64,
    /// Weight of the cycle loss B -> A -> B.
    pub lambda_b: f64,
    /// Identity loss weight relative to lambda (0 disables the identity loss).
    pub lambda_identity: f64,
    /// Weight of the temporal-consistency loss ‖G(W(x)) − W(G(x))‖₁ for random smooth warps W
    /// (0: off, the paper; 10 is a good start for video). In `fit` for both generators, in
    /// `distill` for the student.
    pub lambda_temporal: f64,
    /// Fakes remembered per domain for the discriminator (0 disables the pool).
    pub pool_size: usize,
    pub seed: u64,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Autocast to FP16 with loss scaling (CUDA only).
    pub mixed_precision: bool,
    /// CPU threads for tensor operations (0: all cores, shared out among the ranks a machine
    /// runs).
    pub threads: usize,
    /// In a data-parallel run, multiply `lr` by the number of ranks (the global batch grows
    /// with them); off: the learning rate of one process, as DistributedDataParallel keeps it.
    pub scale_lr: bool,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            n_epochs: 100,
            n_epochs_decay: 100,
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            lambda_a: 10.0,
            lambda_b: 10.0,
            lambda_identity: 0.5,
            lambda_temporal: 0.0,
            pool_size: 50,
            seed: 0,
            device: "cpu".into(),
            mixed_precision: false,
            threads: 0,
            scale_lr: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Runs are written to `checkpoints_dir/name/`.
    pub checkpoints_dir: PathBuf,
    pub name: String,
    /// Keep a checkpoint of every N-th epoch besides `latest` (0: only `latest`).
    pub save_epoch_freq: usize,
    /// Also refresh `latest` every N iterations (0: only at epoch ends).
    pub save_latest_freq: usize,
    /// Write a sample grid every N iterations (0: never).
    pub sample_freq: usize,
    /// Append the losses to losses.csv every N iterations.
    pub log_freq: usize,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            checkpoints_dir: PathBuf::from("checkpoints"),
            name: "experiment".into(),
            save_epoch_freq: 5,
            save_latest_freq: 5000,
            sample_freq: 400,
            log_freq: 100,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub data: DataConfig,
    /// The networks trained (with `[distill]`: the student generator).
    pub model: ModelConfig,
    pub train: OptimConfig,
    pub output: OutputConfig,
    /// Present in a distillation recipe (`cyclegan-train distill`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distill: Option<DistillConfig>,
    /// Present in a quantization-aware fine-tuning recipe (`cyclegan-train qat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qat: Option<QatConfig>,
}

/// Quantization-aware fine-tuning of a trained generator: INT8 fake quantization at exactly the
/// positions `cyclegan-calib` puts Q/DQ, trained to stay close to the FP32 original. `[model]`
/// is the checkpoint's; `[data]` is too unless the recipe names a dataroot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QatConfig {
    /// The run or checkpoint folder whose generator is fine-tuned (trained, imported or
    /// distilled).
    pub checkpoint: PathBuf,
    pub direction: Direction,
    /// A Q/DQ model `cyclegan-calib` made from this generator's FP32 export: the starting
    /// activation scales and the layers it kept in float. Empty: calibrate here first.
    pub calibrated: PathBuf,
    /// Without `calibrated`: leave the residual Adds' skip inputs in float (`--float-residual`).
    pub float_residual: bool,
    /// Without `calibrated`: source-domain training images the calibration reads at most.
    pub calibration_images: usize,
    /// L1 between the fake-quantized output and the FP32 original's.
    pub lambda_l1: f64,
    /// Mean squared error between their activations at up to three points of the residual
    /// stage (0: off).
    pub lambda_feature: f64,
}

impl Default for QatConfig {
    fn default() -> Self {
        Self {
            checkpoint: PathBuf::new(),
            direction: Direction::A2b,
            calibrated: PathBuf::new(),
            float_residual: false,
            calibration_images: 128,
            lambda_l1: 10.0,
            lambda_feature: 0.0,
        }
    }
}

/// Distilling a trained generator (the teacher) into the generator of `[model]` (the student).
/// The weights follow GAN Compression (Li et al. 2020): reconstruction of the teacher's output
/// weighted 10, feature distillation 1; SSIM adds structure; the adversarial term is off unless
/// given a weight (it needs the target domain's images).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistillConfig {
    /// A run folder, a checkpoint folder or a PyTorch `.pth` generator.
    pub teacher: PathBuf,
    /// The teacher's generator to distill, and so the domain the student translates from.
    pub direction: Direction,
    /// L1 between the student's and the teacher's outputs.
    pub lambda_l1: f64,
    /// Mean squared error between the teacher's activations and the student's, mapped by learned
    /// 1x1 convolutions, at up to three points of the residual stage.
    pub lambda_feature: f64,
    /// 1 - SSIM between the student's and the teacher's outputs.
    pub lambda_ssim: f64,
    /// LSGAN against a discriminator of the target domain (the teacher's when its checkpoint
    /// has one); 0 reads no target-domain images.
    pub lambda_gan: f64,
}

impl Default for DistillConfig {
    fn default() -> Self {
        Self {
            teacher: PathBuf::new(),
            direction: Direction::A2b,
            lambda_l1: 10.0,
            lambda_feature: 1.0,
            lambda_ssim: 1.0,
            lambda_gan: 0.0,
        }
    }
}

impl TrainConfig {
    /// Reads a TOML recipe; unknown keys are errors so that typos do not go unnoticed.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read config {}", path.display()), e))?;
        toml::from_str(&text).map_err(|e| Error::Config { file: path.to_path_buf(), message: e.to_string() })
    }

    /// The folder of this run: `checkpoints_dir/name`.
    pub fn run_dir(&self) -> PathBuf {
        self.output.checkpoints_dir.join(&self.output.name)
    }

    /// Total epochs: constant learning rate, then linear decay.
    pub fn total_epochs(&self) -> usize {
        self.train.n_epochs + self.train.n_epochs_decay
    }

    /// The smallest image side the discriminator can judge: n_layers_d stride-2 halvings, then
    /// two 4x4 convolutions that each take one pixel.
    pub fn min_image_side(&self) -> u32 {
        3 << self.model.n_layers_d.clamp(0, 16)
    }

    /// Rejects values training cannot run with; each message names the key and the fix.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: String| Err(Error::InvalidValue { key: key.into(), message: why });
        let d = &self.data;
        if d.batch_size == 0 {
            return bad("data.batch_size", "must be at least 1".into());
        }
        if d.crop_size < 16 || !d.crop_size.is_multiple_of(4) {
            return bad("data.crop_size", format!("{} must be a multiple of 4 and at least 16", d.crop_size));
        }
        if d.preprocess == Preprocess::ResizeAndCrop && d.load_size < d.crop_size {
            return bad("data.load_size", format!("{} is smaller than data.crop_size {}", d.load_size, d.crop_size));
        }
        if d.preprocess == Preprocess::ScaleWidth && d.load_size < 16 {
            return bad("data.load_size", format!("{} is below 16 pixels", d.load_size));
        }
        let m = &self.model;
        let crops = matches!(d.preprocess, Preprocess::ResizeAndCrop | Preprocess::Crop);
        if crops && d.crop_size < self.min_image_side() {
            return bad(
                "data.crop_size",
                format!(
                    "{} is too small for a {}-layer discriminator, which needs at least {}",
                    d.crop_size,
                    m.n_layers_d,
                    self.min_image_side()
                ),
            );
        }
        match m.generator {
            Family::Resnet if !(m.n_blocks == 6 || m.n_blocks == 9) => {
                return bad("model.n_blocks", format!("{} must be 6 or 9 for the resnet generator", m.n_blocks));
            }
            Family::Mobile if !(1..=16).contains(&m.n_blocks) => {
                return bad("model.n_blocks", format!("{} must be 1 to 16 for the mobile generator", m.n_blocks));
            }
            _ => {}
        }
        if m.ngf < 1 || m.ndf < 1 {
            return bad("model.ngf/ndf", "must be positive".into());
        }
        if !(1..=6).contains(&m.n_layers_d) {
            return bad("model.n_layers_d", format!("{} must be between 1 and 6", m.n_layers_d));
        }
        if !(m.init_gain > 0.0 && m.init_gain.is_finite()) {
            return bad("model.init_gain", format!("{} must be positive", m.init_gain));
        }
        let t = &self.train;
        if self.total_epochs() == 0 {
            return bad("train.n_epochs", "n_epochs + n_epochs_decay must be at least 1".into());
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return bad("train.lr", format!("{} must be positive", t.lr));
        }
        for (key, beta) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return bad(key, format!("{beta} must be in [0, 1)"));
            }
        }
        for (key, v) in [
            ("train.lambda_a", t.lambda_a),
            ("train.lambda_b", t.lambda_b),
            ("train.lambda_identity", t.lambda_identity),
            ("train.lambda_temporal", t.lambda_temporal),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(key, format!("{v} must be zero or positive"));
            }
        }
        let device = crate::device::parse(&t.device)?;
        if t.mixed_precision && device == tch::Device::Cpu {
            return bad(
                "train.mixed_precision",
                "needs a CUDA device (set train.device = \"cuda:0\" or turn it off)".into(),
            );
        }
        if let Some(q) = &self.qat {
            if self.distill.is_some() {
                return bad(
                    "qat",
                    "a recipe either distills ([distill]) or fine-tunes for INT8 ([qat]), not both".into(),
                );
            }
            for (key, v) in [("qat.lambda_l1", q.lambda_l1), ("qat.lambda_feature", q.lambda_feature)] {
                if !(v >= 0.0 && v.is_finite()) {
                    return bad(key, format!("{v} must be zero or positive"));
                }
            }
            if q.lambda_l1 + q.lambda_feature == 0.0 {
                return bad("qat.lambda_l1", "0 with qat.lambda_feature 0 leaves nothing to fine-tune for".into());
            }
            if q.calibration_images == 0 {
                return bad("qat.calibration_images", "must be at least 1".into());
            }
            if t.mixed_precision {
                return bad("train.mixed_precision", "fake quantization runs in FP32: turn it off for qat".into());
            }
        }
        if self.output.name.is_empty() || self.output.name.contains(['/', '\\']) {
            return bad("output.name", format!("{:?} must be a plain folder name", self.output.name));
        }
        if self.output.log_freq == 0 {
            return bad("output.log_freq", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Command-line overrides: one flag per config field, applied over the TOML file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    #[arg(long, help_heading = "Data")]
    pub dataroot: Option<PathBuf>,
    #[arg(long, value_enum, help_heading = "Data")]
    pub preprocess: Option<Preprocess>,
    #[arg(long, help_heading = "Data")]
    pub load_size: Option<u32>,
    #[arg(long, help_heading = "Data")]
    pub crop_size: Option<u32>,
    #[arg(long, help_heading = "Data")]
    pub no_flip: Option<bool>,
    #[arg(long, help_heading = "Data")]
    pub serial_batches: Option<bool>,
    #[arg(long, help_heading = "Data")]
    pub batch_size: Option<usize>,
    #[arg(long, help_heading = "Data")]
    pub num_workers: Option<usize>,
    #[arg(long, help_heading = "Data")]
    pub max_dataset_size: Option<usize>,
    #[arg(long, help_heading = "Data")]
    pub domain_a: Option<String>,
    #[arg(long, help_heading = "Data")]
    pub domain_b: Option<String>,
    #[arg(long, value_enum, help_heading = "Model")]
    pub generator: Option<Family>,
    #[arg(long, help_heading = "Model")]
    pub ngf: Option<i64>,
    #[arg(long, help_heading = "Model")]
    pub ndf: Option<i64>,
    #[arg(long, help_heading = "Model")]
    pub n_blocks: Option<i64>,
    #[arg(long, help_heading = "Model")]
    pub n_layers_d: Option<i64>,
    #[arg(long, help_heading = "Model")]
    pub init_gain: Option<f64>,
    #[arg(long, help_heading = "Model")]
    pub affine_norm: Option<bool>,
    #[arg(long, help_heading = "Training")]
    pub n_epochs: Option<usize>,
    #[arg(long, help_heading = "Training")]
    pub n_epochs_decay: Option<usize>,
    #[arg(long, help_heading = "Training")]
    pub lr: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub beta1: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub beta2: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub lambda_a: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub lambda_b: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub lambda_identity: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub lambda_temporal: Option<f64>,
    #[arg(long, help_heading = "Training")]
    pub pool_size: Option<usize>,
    #[arg(long, help_heading = "Training")]
    pub seed: Option<u64>,
    #[arg(long, help_heading = "Training")]
    pub device: Option<String>,
    #[arg(long, help_heading = "Training")]
    pub mixed_precision: Option<bool>,
    #[arg(long, help_heading = "Training")]
    pub threads: Option<usize>,
    #[arg(long, help_heading = "Training")]
    pub scale_lr: Option<bool>,
    #[arg(long, help_heading = "Distillation")]
    pub teacher: Option<PathBuf>,
    #[arg(long, value_enum, help_heading = "Distillation and QAT")]
    pub direction: Option<Direction>,
    #[arg(long, help_heading = "Distillation and QAT")]
    pub lambda_l1: Option<f64>,
    #[arg(long, help_heading = "Distillation and QAT")]
    pub lambda_feature: Option<f64>,
    #[arg(long, help_heading = "Distillation")]
    pub lambda_ssim: Option<f64>,
    #[arg(long, help_heading = "Distillation")]
    pub lambda_gan: Option<f64>,
    #[arg(long, help_heading = "Quantization-aware training")]
    pub checkpoint: Option<PathBuf>,
    #[arg(long, help_heading = "Quantization-aware training")]
    pub calibrated: Option<PathBuf>,
    #[arg(long, help_heading = "Quantization-aware training")]
    pub float_residual: Option<bool>,
    #[arg(long, help_heading = "Quantization-aware training")]
    pub calibration_images: Option<usize>,
    #[arg(long, help_heading = "Output")]
    pub checkpoints_dir: Option<PathBuf>,
    #[arg(long, help_heading = "Output")]
    pub name: Option<String>,
    #[arg(long, help_heading = "Output")]
    pub save_epoch_freq: Option<usize>,
    #[arg(long, help_heading = "Output")]
    pub save_latest_freq: Option<usize>,
    #[arg(long, help_heading = "Output")]
    pub sample_freq: Option<usize>,
    #[arg(long, help_heading = "Output")]
    pub log_freq: Option<usize>,
}

impl Overrides {
    pub fn apply(&self, c: &mut TrainConfig) {
        fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        set(&mut c.data.dataroot, &self.dataroot);
        set(&mut c.data.preprocess, &self.preprocess);
        set(&mut c.data.load_size, &self.load_size);
        set(&mut c.data.crop_size, &self.crop_size);
        set(&mut c.data.no_flip, &self.no_flip);
        set(&mut c.data.serial_batches, &self.serial_batches);
        set(&mut c.data.batch_size, &self.batch_size);
        set(&mut c.data.num_workers, &self.num_workers);
        set(&mut c.data.max_dataset_size, &self.max_dataset_size);
        set(&mut c.data.domain_a, &self.domain_a);
        set(&mut c.data.domain_b, &self.domain_b);
        set(&mut c.model.generator, &self.generator);
        set(&mut c.model.ngf, &self.ngf);
        set(&mut c.model.ndf, &self.ndf);
        set(&mut c.model.n_blocks, &self.n_blocks);
        set(&mut c.model.n_layers_d, &self.n_layers_d);
        set(&mut c.model.init_gain, &self.init_gain);
        set(&mut c.model.affine_norm, &self.affine_norm);
        set(&mut c.train.n_epochs, &self.n_epochs);
        set(&mut c.train.n_epochs_decay, &self.n_epochs_decay);
        set(&mut c.train.lr, &self.lr);
        set(&mut c.train.beta1, &self.beta1);
        set(&mut c.train.beta2, &self.beta2);
        set(&mut c.train.lambda_a, &self.lambda_a);
        set(&mut c.train.lambda_b, &self.lambda_b);
        set(&mut c.train.lambda_identity, &self.lambda_identity);
        set(&mut c.train.lambda_temporal, &self.lambda_temporal);
        set(&mut c.train.pool_size, &self.pool_size);
        set(&mut c.train.seed, &self.seed);
        set(&mut c.train.device, &self.device);
        set(&mut c.train.mixed_precision, &self.mixed_precision);
        set(&mut c.train.threads, &self.threads);
        set(&mut c.train.scale_lr, &self.scale_lr);
        let quantizing = c.qat.is_some()
            || self.checkpoint.is_some()
            || self.calibrated.is_some()
            || self.float_residual.is_some()
            || self.calibration_images.is_some();
        let distilling = self.teacher.is_some()
            || self.direction.is_some()
            || self.lambda_l1.is_some()
            || self.lambda_feature.is_some()
            || self.lambda_ssim.is_some()
            || self.lambda_gan.is_some();
        if quantizing {
            // --direction and the L1/feature weights mean the same in both recipes.
            let q = c.qat.get_or_insert_with(QatConfig::default);
            set(&mut q.checkpoint, &self.checkpoint);
            set(&mut q.direction, &self.direction);
            set(&mut q.calibrated, &self.calibrated);
            set(&mut q.float_residual, &self.float_residual);
            set(&mut q.calibration_images, &self.calibration_images);
            set(&mut q.lambda_l1, &self.lambda_l1);
            set(&mut q.lambda_feature, &self.lambda_feature);
        } else if distilling {
            let d = c.distill.get_or_insert_with(DistillConfig::default);
            set(&mut d.teacher, &self.teacher);
            set(&mut d.direction, &self.direction);
            set(&mut d.lambda_l1, &self.lambda_l1);
            set(&mut d.lambda_feature, &self.lambda_feature);
            set(&mut d.lambda_ssim, &self.lambda_ssim);
            set(&mut d.lambda_gan, &self.lambda_gan);
        }
        set(&mut c.output.checkpoints_dir, &self.checkpoints_dir);
        set(&mut c.output.name, &self.name);
        set(&mut c.output.save_epoch_freq, &self.save_epoch_freq);
        set(&mut c.output.save_latest_freq, &self.save_latest_freq);
        set(&mut c.output.sample_freq, &self.sample_freq);
        set(&mut c.output.log_freq, &self.log_freq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_paper() {
        let c = TrainConfig::default();
        assert_eq!((c.data.load_size, c.data.crop_size, c.data.batch_size), (286, 256, 1));
        assert_eq!((c.model.ngf, c.model.ndf, c.model.n_blocks, c.model.n_layers_d), (64, 64, 9, 3));
        assert_eq!((c.train.n_epochs, c.train.n_epochs_decay, c.train.pool_size), (100, 100, 50));
        assert_eq!((c.train.lr, c.train.beta1), (2e-4, 0.5));
        assert_eq!((c.train.lambda_a, c.train.lambda_b, c.train.lambda_identity), (10.0, 10.0, 0.5));
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[model]\nngf = 32\nn_blocs = 6\n").unwrap();
        let err = TrainConfig::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("n_blocs"), "{err}");
    }

    #[test]
    fn impossible_values_name_the_key() {
        let mut c = TrainConfig::default();
        c.model.n_blocks = 7;
        assert!(c.validate().unwrap_err().to_string().contains("model.n_blocks"));
        let mut c = TrainConfig::default();
        c.data.load_size = 200;
        assert!(c.validate().unwrap_err().to_string().contains("data.load_size"));
        let mut c = TrainConfig::default();
        c.train.mixed_precision = true;
        assert!(c.validate().unwrap_err().to_string().contains("train.mixed_precision"));
        let mut c = TrainConfig::default();
        c.train.device = "tpu".into();
        assert!(c.validate().unwrap_err().to_string().contains("tpu"));
    }

    #[test]
    fn overrides_win_over_the_file() {
        let mut c = TrainConfig::default();
        let o = Overrides { ngf: Some(16), lr: Some(1e-3), name: Some("x".into()), ..Default::default() };
        o.apply(&mut c);
        assert_eq!((c.model.ngf, c.train.lr, c.output.name.as_str()), (16, 1e-3, "x"));
        assert_eq!(c.model.ndf, 64);
    }

    #[test]
    fn shipped_recipes_parse_and_validate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/train");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                TrainConfig::from_file(&path).unwrap().validate().unwrap();
                n += 1;
            }
        }
        assert!(n >= 2, "expected recipes in {}", dir.display());
    }
}
