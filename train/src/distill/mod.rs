//! `cyclegan-train distill`: a trained generator (the teacher) teaches a smaller one (the
//! student, `[model]`) to translate as it does, on the teacher's source domain: the teacher
//! labels each batch on the fly, so unpaired images of one domain suffice. The losses follow GAN
//! Compression (Li et al. 2020): L1 to the teacher's output, the teacher's activations at up to
//! three points of the residual stage through learned 1x1 adapters, SSIM, and optionally LSGAN
//! against the target domain's discriminator. Teacher and student see one augmented view of each
//! batch (`views`: distillation as function matching). A checkpoint holds the student under the
//! direction's generator name (`G_A` for a2b), so `translate`, `export` and `info` take it as
//! they take any checkpoint.
mod dead_leaves;
mod ssim;
pub mod views;

use std::path::{Path, PathBuf};

use cyclegan_model::Direction;
use cyclegan_model::import::import_pth;
use rand::rngs::StdRng;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

pub use ssim::ssim;

use crate::checkpoint::{self, TrainState, load_network, net_file, read_state, read_tensors, write_atomically};
use crate::config::{DistillConfig, TrainConfig};
use crate::data::{Augment, UnalignedDataset};
use crate::error::{Error, Result};
use crate::model::{DiscriminatorConfig, Generator, generator, patch_discriminator};
use crate::temporal::{WarpRange, consistency};
use crate::trainer::{Adam, FitOptions, FitSummary, Job, LossScaler, Step, run};
use crate::translate::Translator;

/// Names of the loss terms, in `Step::losses` order.
pub const LOSSES: [&str; 5] = ["L1", "feature", "SSIM", "G_GAN", "D"];
/// The student's temporal term, logged after them when `lambda_temporal` is on.
const TEMPORAL_LOSS: &str = "temporal";
/// Points of the residual stage whose activations are distilled.
const FEATURE_POINTS: usize = 3;
/// Where a `.pth` teacher is imported, inside the run folder.
const IMPORTED_TEACHER: &str = "teacher";

/// `count` block indices spread over `n_blocks` blocks, ending with the last.
pub(crate) fn feature_points(n_blocks: usize, count: usize) -> Vec<usize> {
    (1..=count).map(|i| (i * n_blocks).div_ceil(count) - 1).collect()
}

/// The teacher of `distill`: a run or checkpoint folder, or a `.pth` imported into the run
/// folder once (a resumed run finds it there).
/// (`distill` has checked that it exists.)
fn load_teacher(d: &DistillConfig, run_dir: &Path, device: Device) -> Result<Translator> {
    let folder = if d.teacher.extension().is_some_and(|e| e == "pth") {
        let imported = run_dir.join(IMPORTED_TEACHER);
        if !imported.join(checkpoint::STATE_FILE).is_file() {
            import_pth(&d.teacher, &imported, d.direction, None)?;
        }
        imported
    } else {
        d.teacher.clone()
    };
    let dir = checkpoint::resolve(&folder)?;
    if !net_file(&dir, d.direction.network()).is_file() {
        return Err(Error::InvalidValue {
            key: "--direction (distill.direction)".into(),
            message: format!(
                "the teacher {} has no {} generator ({}.safetensors); distill the direction it has",
                dir.display(),
                d.direction.name(),
                d.direction.network()
            ),
        });
    }
    Translator::load(&dir, d.direction, device)
}

/// The student, its adapters and optimizer, the frozen teacher, and the optional discriminator.
pub struct Distiller {
    teacher: Translator,
    teacher_points: Vec<usize>,
    student_vs: nn::VarStore,
    student: Generator,
    student_points: Vec<usize>,
    adapters_vs: nn::VarStore,
    adapters: Vec<nn::Conv2D>,
    opt: Adam,
    /// With an adversarial weight: the target domain's discriminator and its optimizer.
    critic: Option<(nn::VarStore, nn::Sequential, Adam)>,
    scaler: LossScaler,
    direction: Direction,
    weights: DistillConfig,
    /// `[train] lambda_temporal`: the student's temporal-consistency weight.
    lambda_temporal: f64,
    mixed_precision: bool,
    views: views::Views,
}

impl Distiller {
    pub fn new(config: &TrainConfig, run_dir: &Path, device: Device) -> Result<Self> {
        let d = config.distill.clone().expect("distill() checks the section");
        let source_dir = config.data.dataroot.join(format!("train{}", d.direction.source_domain()));
        let views = views::Views::new(&d, &source_dir, Augment::from_config(&config.data))?;
        let teacher = load_teacher(&d, run_dir, device)?;
        let t = &config.train;
        let student_cfg = config.model.generator();
        let student_vs = nn::VarStore::new(device);
        let student = generator(&student_vs.root(), &student_cfg, config.model.init_gain);
        let points = FEATURE_POINTS.min(student.n_blocks()).min(teacher.config.n_blocks as usize);
        let student_points = feature_points(student.n_blocks(), points);
        let teacher_points = feature_points(teacher.config.n_blocks as usize, points);
        if student_cfg.ngf > teacher.config.ngf && student_cfg.family == teacher.config.family {
            eprintln!(
                "warning: the student (ngf {}) is wider than its teacher (ngf {}); distillation makes models smaller",
                student_cfg.ngf, teacher.config.ngf
            );
        }
        // Residual-stage widths: 4 ngf in both families.
        let (c_student, c_teacher) = (4 * student_cfg.ngf, 4 * teacher.config.ngf);
        let adapters_vs = nn::VarStore::new(device);
        let adapters: Vec<nn::Conv2D> = (0..points)
            .map(|i| {
                let config = nn::ConvConfig { bias: true, ..Default::default() };
                nn::conv2d(adapters_vs.root() / format!("adapter{i}"), c_student, c_teacher, 1, config)
            })
            .collect();
        let mut params = checkpoint::variables(&student_vs, "student.");
        params.extend(checkpoint::variables(&adapters_vs, "adapters."));
        let opt = Adam::new(params, t.lr, t.beta1, t.beta2);
        let critic = (d.lambda_gan > 0.0).then(|| {
            let vs = nn::VarStore::new(device);
            let cfg = DiscriminatorConfig::of(&teacher.state.config.model);
            let net = patch_discriminator(&vs.root(), &cfg, config.model.init_gain);
            let opt = Adam::new(checkpoint::variables(&vs, "D."), t.lr, t.beta1, t.beta2);
            (vs, net, opt)
        });
        let mut distiller = Self {
            teacher,
            teacher_points,
            student_vs,
            student,
            student_points,
            adapters_vs,
            adapters,
            opt,
            critic,
            scaler: LossScaler::new(t.mixed_precision),
            direction: d.direction,
            weights: d,
            lambda_temporal: t.lambda_temporal,
            mixed_precision: t.mixed_precision,
            views,
        };
        distiller.start_critic_from_teacher()?;
        Ok(distiller)
    }

    /// The teacher's own discriminator of the target domain, where its checkpoint has one (D_A
    /// judges domain B, what a2b makes).
    fn start_critic_from_teacher(&mut self) -> Result<()> {
        let Some((vs, _, _)) = &self.critic else { return Ok(()) };
        let file = net_file(&self.teacher.dir, self.direction.critic());
        if file.is_file() { load_network(vs, &file) } else { Ok(()) }
    }
}

impl Job for Distiller {
    fn loss_names(&self) -> Vec<&'static str> {
        let temporal = if self.lambda_temporal > 0.0 { &[TEMPORAL_LOSS][..] } else { &[] };
        LOSSES.iter().chain(temporal).copied().collect()
    }

    const TITLE: &'static str = "distillation losses";
    const VERB: &'static str = "distilling";
    const ONE_PROCESS: Option<&'static str> =
        Some("it may import its teacher into the run folder before training; run it without torchrun or --nproc");

    fn set_lr(&mut self, lr: f64) {
        self.opt.lr = lr;
        if let Some((_, _, opt)) = &mut self.critic {
            opt.lr = lr;
        }
    }

    fn step(&mut self, real_a: &Tensor, real_b: &Tensor, rng: &mut StdRng) -> Result<Step> {
        let (batch, target) = self.direction.order(real_a, real_b);
        // Teacher and student see one view; drawn first, so the temporal term's draws follow it.
        let view = self.views.apply(batch, rng)?;
        let source = &view;
        let (taught, teacher_features) = self.teacher.forward_with_features(source, &self.teacher_points);
        let w = &self.weights;
        let zero = || Tensor::zeros([], (Kind::Float, source.device()));
        if let Some((vs, _, _)) = &mut self.critic {
            vs.freeze();
        }
        self.opt.zero_grad();
        let (fake, terms, temporal) = tch::autocast(self.mixed_precision, || {
            let (fake, features) = self.student.forward_with_features(source, &self.student_points);
            let fake32 = fake.to_kind(Kind::Float);
            let l1 = (&fake32 - &taught).abs().mean(Kind::Float) * w.lambda_l1;
            let feature = if w.lambda_feature > 0.0 {
                let sum = self.adapters.iter().zip(&features).zip(&teacher_features).fold(zero(), |s, ((a, f), t)| {
                    s + (a.forward(f).to_kind(Kind::Float) - t.to_kind(Kind::Float)).square().mean(Kind::Float)
                });
                sum * (w.lambda_feature / self.adapters.len().max(1) as f64)
            } else {
                zero()
            };
            let structure = if w.lambda_ssim > 0.0 { (1.0 - ssim(&fake32, &taught)) * w.lambda_ssim } else { zero() };
            let gan = match &self.critic {
                Some((_, d, _)) => {
                    (d.forward(&fake).to_kind(Kind::Float) - 1.0).square().mean(Kind::Float) * w.lambda_gan
                }
                None => zero(),
            };
            let temporal = (self.lambda_temporal > 0.0).then(|| {
                let c = consistency(|x| self.student.forward(x), source, &fake, &WarpRange::default(), rng);
                (c.loss * self.lambda_temporal, c.row)
            });
            (fake32, [l1, feature, structure, gan], temporal)
        });
        let terms_sum = terms.iter().fold(zero(), |s, t| s + t);
        let loss = match &temporal {
            Some((t, _)) => terms_sum + t,
            None => terms_sum,
        };
        self.scaler.scale(&loss).backward();
        let ok = self.scaler.unscale(self.opt.grads());
        if ok {
            self.opt.step();
        }
        let mut d_ok = true;
        let d_loss = match &mut self.critic {
            Some((vs, d, opt)) => {
                vs.unfreeze();
                opt.zero_grad();
                let mse = |t: Tensor, v: f64| (t.to_kind(Kind::Float) - v).square().mean(Kind::Float);
                let loss = tch::autocast(self.mixed_precision, || {
                    (mse(d.forward(target), 1.0) + mse(d.forward(&fake.detach()), 0.0)) * 0.5
                });
                self.scaler.scale(&loss).backward();
                d_ok = self.scaler.unscale(opt.grads());
                if d_ok {
                    opt.step();
                }
                loss.double_value(&[])
            }
            None => 0.0,
        };
        self.scaler.update(ok && d_ok);
        let mut losses: Vec<f64> = terms.iter().map(|t| t.double_value(&[])).collect();
        losses.push(d_loss);
        let progress = format!("L1 {:.3} feat {:.3} ssim {:.3}", losses[0], losses[1], losses[2]);
        let mut samples = vec![vec![source.shallow_clone(), taught, fake.detach()]];
        if let Some((t, row)) = temporal {
            losses.push(t.double_value(&[]));
            samples.push(Vec::from(row));
        }
        Ok(Step { samples, losses, progress })
    }

    fn save_checkpoint(&self, run_dir: &Path, name: &str, state: &TrainState) -> Result<PathBuf> {
        let mut files = vec![
            (format!("{}.safetensors", self.direction.network()), checkpoint::variables(&self.student_vs, "")),
            ("adapters.safetensors".into(), checkpoint::variables(&self.adapters_vs, "")),
            ("optim_student.safetensors".into(), self.opt.state()),
        ];
        if let Some((vs, _, opt)) = &self.critic {
            files.push(("critic.safetensors".into(), checkpoint::variables(vs, "")));
            files.push(("optim_critic.safetensors".into(), opt.state()));
        }
        write_atomically(&run_dir.join(name), state, &files)
    }

    fn load_checkpoint(&mut self, dir: &Path) -> Result<TrainState> {
        let state = read_state(dir)?;
        load_network(&self.student_vs, &net_file(dir, self.direction.network()))?;
        load_network(&self.adapters_vs, &dir.join("adapters.safetensors"))?;
        let opt = dir.join("optim_student.safetensors");
        self.opt.load_state(&read_tensors(&opt)?, &opt)?;
        if let Some((vs, _, critic_opt)) = &mut self.critic {
            load_network(vs, &dir.join("critic.safetensors"))?;
            let file = dir.join("optim_critic.safetensors");
            critic_opt.load_state(&read_tensors(&file)?, &file)?;
        }
        self.scaler.scale = state.loss_scale;
        Ok(state)
    }

    fn loss_scale(&self) -> f64 {
        self.scaler.scale
    }

    fn min_image_side(&self, config: &TrainConfig) -> u32 {
        // SSIM's window; the discriminator's needs only with an adversarial term.
        let ssim = 11;
        if self.critic.is_some() { config.min_image_side().max(ssim) } else { ssim }
    }

    fn replicated(&self) -> Vec<Tensor> {
        let critic = self.critic.iter().flat_map(|(_, _, opt)| opt.parameters());
        self.opt.parameters().chain(critic).collect()
    }
}

/// Distills `config.distill`'s teacher into `config.model` (or, with `options.resume`, continues
/// a distillation run whose configuration `config` must then be).
pub fn distill(config: &TrainConfig, options: &FitOptions) -> Result<FitSummary> {
    config.validate()?;
    let Some(d) = &config.distill else {
        return Err(Error::InvalidValue {
            key: "distill".into(),
            message:
                "the configuration has no [distill] section: give --teacher (or use a configs/train/distill-*.toml)"
                    .into(),
        });
    };
    let flag = "--teacher (distill.teacher)";
    if d.teacher.as_os_str().is_empty() {
        return Err(Error::InvalidValue {
            key: flag.into(),
            message: "no teacher given: pass a run folder, a checkpoint folder or a PyTorch .pth generator".into(),
        });
    }
    if !d.teacher.exists() {
        return Err(Error::InvalidValue {
            key: flag.into(),
            message: format!("{} does not exist", d.teacher.display()),
        });
    }
    let needs_target = d.lambda_gan > 0.0;
    let source = d.direction.source_domain();
    let data = |config: &TrainConfig| {
        let c = &config.data;
        let (max, augment, serial, workers) =
            (c.max_dataset_size, Augment::from_config(c), c.serial_batches, c.workers());
        if needs_target {
            UnalignedDataset::open(&c.dataroot, "train", max, augment, serial, workers)
        } else {
            UnalignedDataset::open_one(&c.dataroot, "train", source, max, augment, serial, workers)
        }
    };
    // Exported students name their domains: the teacher's, unless the recipe names them.
    let mut config = config.clone();
    if let Ok(teacher) = checkpoint::resolve(&d.teacher).map_err(Error::from).and_then(|dir| read_state(&dir)) {
        config.data.inherit_domains(&teacher.config.data);
    }
    let config = &config;
    run(config, options, data, |device, run_dir| Distiller::new(config, run_dir, device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_points_spread_over_the_blocks_and_end_at_the_last() {
        assert_eq!(feature_points(9, 3), [2, 5, 8]);
        assert_eq!(feature_points(6, 3), [1, 3, 5]);
        assert_eq!(feature_points(2, 2), [0, 1]);
        assert_eq!(feature_points(4, 1), [3]);
    }
}
