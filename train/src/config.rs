//! Training configuration: a TOML recipe (`configs/train/*.toml`) whose every field can be
//! overridden by a command-line flag. `TrainConfig::default()` reproduces the paper.
use std::path::{Path, PathBuf};

use cyclegan_model::checkpoint::Domains;
use cyclegan_model::{Direction, Family, ModelConfig, ModelFlags};
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

cyclegan_settings::section! {
    /// The `[data]` section: the dataset and how its images are loaded.
    pub struct DataConfig, flags DataFlags, heading "Data" {
        /// Folder with `trainA/`, `trainB/` (and `testA/`, `testB/`).
        dataroot: PathBuf = PathBuf::from("datasets/summer2winter_yosemite"),
        /// How images are resized and cropped: resize_and_crop, crop, scale_width, none.
        preprocess: Preprocess = Preprocess::ResizeAndCrop,
        /// Side images are resized to before cropping.
        load_size: u32 = 286,
        /// Side of the square crops trained on.
        crop_size: u32 = Domains::default().crop_size,
        /// No random horizontal flips.
        no_flip: bool = false,
        /// Pair A[i] with B[i] in order instead of a random B.
        serial_batches: bool = false,
        /// Images per step (per rank in a data-parallel run).
        batch_size: usize = 1,
        /// Threads that load and augment images ahead of the model.
        num_workers: usize = 4,
        /// Use at most this many images per domain (0: all).
        max_dataset_size: usize = 0,
        /// Name of domain A (recorded in exported models).
        domain_a: String = Domains::default().domain_a,
        /// Name of domain B.
        domain_b: String = Domains::default().domain_b,
    }
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

cyclegan_settings::section! {
    /// The `[train]` section: optimisation, losses and the machine.
    pub struct OptimConfig, flags OptimFlags, heading "Training" {
        /// Epochs at the initial learning rate.
        n_epochs: usize = 100,
        /// Epochs over which the learning rate decays linearly to zero.
        n_epochs_decay: usize = 100,
        /// Adam's initial learning rate.
        lr: f64 = 2e-4,
        /// Adam's beta1.
        beta1: f64 = 0.5,
        /// Adam's beta2.
        beta2: f64 = 0.999,
        /// Weight of the cycle loss A -> B -> A.
        lambda_a: f64 = 10.0,
        /// Weight of the cycle loss B -> A -> B.
        lambda_b: f64 = 10.0,
        /// Identity loss weight relative to lambda (0 disables the identity loss).
        lambda_identity: f64 = 0.5,
        /// Weight of the temporal-consistency loss ‖G(W(x)) − W(G(x))‖₁ for random smooth warps W
        /// (0: off, the paper; 10 is a good start for video). In `fit` for both generators, in
        /// `distill` for the student.
        lambda_temporal: f64 = 0.0,
        /// Fakes remembered per domain for the discriminator (0 disables the pool).
        pool_size: usize = 50,
        /// Seed of the weights, the data order and the augmentation.
        seed: u64 = 0,
        /// `cpu` or `cuda:N`.
        device: String = "cpu".into(),
        /// Autocast to FP16 with loss scaling (CUDA only).
        mixed_precision: bool = false,
        /// CPU threads for tensor operations (0: all cores, shared out among the ranks a machine
        /// runs).
        threads: usize = 0,
        /// In a data-parallel run, multiply `lr` by the number of ranks (the global batch grows
        /// with them); off: the learning rate of one process, as DistributedDataParallel keeps it.
        scale_lr: bool = false,
    }
}

cyclegan_settings::section! {
    /// The `[output]` section: where a run writes and how often.
    pub struct OutputConfig, flags OutputFlags, heading "Output" {
        /// Runs are written to `checkpoints_dir/name/`.
        checkpoints_dir: PathBuf = PathBuf::from("checkpoints"),
        /// The run's folder name.
        name: String = "experiment".into(),
        /// Keep a checkpoint of every N-th epoch besides `latest` (0: only `latest`).
        save_epoch_freq: usize = 5,
        /// Also refresh `latest` every N iterations (0: only at epoch ends).
        save_latest_freq: usize = 5000,
        /// Write a sample grid every N iterations (0: never).
        sample_freq: usize = 400,
        /// Append the losses to losses.csv every N iterations.
        log_freq: usize = 100,
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

cyclegan_settings::section! {
    /// Quantization-aware fine-tuning of a trained generator: INT8 fake quantization at exactly the
    /// positions `cyclegan-calib` puts Q/DQ, trained to stay close to the FP32 original. `[model]`
    /// is the checkpoint's; `[data]` is too unless the recipe names a dataroot.
    pub struct QatConfig, flags QatFlags, heading "Quantization-aware training" {
        /// The run or checkpoint folder whose generator is fine-tuned (trained, imported or
        /// distilled).
        checkpoint: PathBuf = PathBuf::new(),
        /// Its generator: a2b (G_A) or b2a (G_B).
        direction: Direction = Direction::A2b,
        /// A Q/DQ model `cyclegan-calib` made from this generator's FP32 export: the starting
        /// activation scales and the layers it kept in float. Empty: calibrate here first.
        calibrated: PathBuf = PathBuf::new(),
        /// Without `calibrated`: leave the residual Adds in float (no Q/DQ on their branch input).
        float_residual: bool = false,
        /// Without `calibrated`: source-domain training images the calibration reads at most.
        calibration_images: usize = 128,
        /// L1 between the fake-quantized output and the FP32 original's.
        lambda_l1: f64 = 10.0,
        /// Mean squared error between their activations at up to three points of the residual
        /// stage (0: off).
        lambda_feature: f64 = 0.0,
    }
}

cyclegan_settings::section! {
    /// Distilling a trained generator (the teacher) into the generator of `[model]` (the student).
    /// The weights follow GAN Compression (Li et al. 2020): reconstruction of the teacher's output
    /// weighted 10, feature distillation 1; SSIM adds structure; the adversarial term is off unless
    /// given a weight (it needs the target domain's images).
    pub struct DistillConfig, flags DistillFlags, heading "Distillation" {
        /// A run folder, a checkpoint folder or a PyTorch `.pth` generator.
        teacher: PathBuf = PathBuf::new(),
        /// The teacher's generator to distill, and so the domain the student translates from.
        direction: Direction = Direction::A2b,
        /// L1 between the student's and the teacher's outputs.
        lambda_l1: f64 = 10.0,
        /// Mean squared error between the teacher's activations and the student's, mapped by
        /// learned 1x1 convolutions, at up to three points of the residual stage.
        lambda_feature: f64 = 1.0,
        /// 1 - SSIM between the student's and the teacher's outputs.
        lambda_ssim: f64 = 1.0,
        /// LSGAN against a discriminator of the target domain (the teacher's when its checkpoint
        /// has one); 0 reads no target-domain images.
        lambda_gan: f64 = 0.0,
        /// Views (teacher and student see the same one): brightness jitter, a factor within
        /// 1 +- this (0: off).
        view_brightness: f64 = 0.0,
        /// Views: contrast jitter, a factor within 1 +- this (0: off).
        view_contrast: f64 = 0.0,
        /// Views: saturation jitter, a factor within 1 +- this and not below 0 (0: off; up to 4,
        /// for photos more colourful than the dataset's).
        view_saturation: f64 = 0.0,
        /// Views: hue rotation within +- this share of a full turn (0: off; 0.5: any hue).
        view_hue: f64 = 0.0,
        /// Views: random resized crops keeping at least this share of the area, resized back
        /// (1: off).
        view_crop_scale: f64 = 1.0,
        /// Views: the chance of a horizontal flip (0: off).
        view_flip: f64 = 0.0,
        /// Views: the chance of mixing the image with another of the source domain, by a weight
        /// drawn from 0 to 1 (0: off).
        view_mixup: f64 = 0.0,
        /// Views: the chance that an image is replaced by a dead-leaves image (discs of random
        /// colours and power-law sizes, occluding each other as in photos): shapes and colours
        /// the dataset lacks, for the teacher to label (0: off).
        view_dead_leaves: f64 = 0.25,
        /// Folders of unlabelled images (any photos, any domain) the teacher labels too, mixed
        /// into the source domain at `extra_share` (the flag: DIR[,DIR...]).
        extra_images: Vec<PathBuf> = Vec::new() => String as folders,
        /// The chance that an image is taken from `extra_images` instead of the dataset.
        extra_share: f64 = 0.5,
    }
}

/// `DIR[,DIR...]` as folders (the `--extra-images` flag).
fn folders(list: String) -> Vec<PathBuf> {
    list.split(',').filter(|f| !f.is_empty()).map(PathBuf::from).collect()
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

/// The command-line flags of the sections every job has; a job's own section's flags
/// ([`DistillFlags`], [`QatFlags`]) come with its subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    #[command(flatten)]
    pub data: DataFlags,
    #[command(flatten)]
    pub model: ModelFlags,
    #[command(flatten)]
    pub train: OptimFlags,
    #[command(flatten)]
    pub output: OutputFlags,
}

impl Overrides {
    pub fn apply(&self, c: &mut TrainConfig) {
        self.data.apply(&mut c.data);
        self.model.apply(&mut c.model);
        self.train.apply(&mut c.train);
        self.output.apply(&mut c.output);
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
        let o = Overrides {
            model: ModelFlags { ngf: Some(16), ..Default::default() },
            train: OptimFlags { lr: Some(1e-3), ..Default::default() },
            output: OutputFlags { name: Some("x".into()), ..Default::default() },
            ..Default::default()
        };
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
