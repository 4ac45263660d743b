//! The four networks, their optimizers and pools, and one optimization step exactly as the
//! reference `CycleGANModel.optimize_parameters`.
use rand::Rng;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use super::adam::Adam;
use super::amp::LossScaler;
use super::pool::ImagePool;
use crate::checkpoint::variables;
use crate::config::TrainConfig;
use crate::dist::average_gradients;
use crate::model::{DiscriminatorConfig, Generator, generator, patch_discriminator};
use crate::temporal::{WarpRange, consistency};

/// Names of the networks as in the reference: G_A maps A to B, D_A judges domain B.
pub const NETWORKS: [&str; 4] = ["G_A", "G_B", "D_A", "D_B"];

/// The eight losses of one step, in the reference's print order, then the temporal terms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Losses {
    pub d_a: f64,
    pub g_a: f64,
    pub cycle_a: f64,
    pub idt_a: f64,
    pub d_b: f64,
    pub g_b: f64,
    pub cycle_b: f64,
    pub idt_b: f64,
    /// Weighted temporal terms of G_A and G_B (zero when `lambda_temporal` is).
    pub temporal_a: f64,
    pub temporal_b: f64,
}

impl Losses {
    pub const NAMES: [&'static str; 8] = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"];
    pub const TEMPORAL_NAMES: [&'static str; 2] = ["temporal_A", "temporal_B"];

    pub fn values(&self) -> [f64; 8] {
        [self.d_a, self.g_a, self.cycle_a, self.idt_a, self.d_b, self.g_b, self.cycle_b, self.idt_b]
    }
}

/// Images of one step for the sample grid.
pub struct Visuals {
    pub real_a: Tensor,
    pub fake_b: Tensor,
    pub rec_a: Tensor,
    pub real_b: Tensor,
    pub fake_a: Tensor,
    pub rec_b: Tensor,
    /// With the temporal term: x, W(x), G(W(x)), W(G(x)) for G_A and for G_B.
    pub temporal: Option<[[Tensor; 4]; 2]>,
}

pub struct CycleGan {
    pub stores: [nn::VarStore; 4],
    pub g_a: Generator,
    pub g_b: Generator,
    pub d_a: nn::Sequential,
    pub d_b: nn::Sequential,
    pub opt_g: Adam,
    pub opt_d: Adam,
    pub pool_a: ImagePool,
    pub pool_b: ImagePool,
    pub scaler: LossScaler,
    lambda_a: f64,
    lambda_b: f64,
    lambda_identity: f64,
    lambda_temporal: f64,
    mixed_precision: bool,
}

impl CycleGan {
    /// Builds freshly initialised networks on `device` (weights drawn from libtorch's generator,
    /// so seed it first).
    pub fn new(c: &TrainConfig, device: Device) -> Self {
        let stores = [(); 4].map(|_| nn::VarStore::new(device));
        let gain = c.model.init_gain;
        let g = c.model.generator();
        let d = DiscriminatorConfig::of(&c.model);
        let g_a = generator(&stores[0].root(), &g, gain);
        let g_b = generator(&stores[1].root(), &g, gain);
        let d_a = patch_discriminator(&stores[2].root(), &d, gain);
        let d_b = patch_discriminator(&stores[3].root(), &d, gain);
        let t = &c.train;
        let mut g_params = variables(&stores[0], &format!("{}.", NETWORKS[0]));
        g_params.extend(variables(&stores[1], &format!("{}.", NETWORKS[1])));
        let mut d_params = variables(&stores[2], &format!("{}.", NETWORKS[2]));
        d_params.extend(variables(&stores[3], &format!("{}.", NETWORKS[3])));
        Self {
            opt_g: Adam::new(g_params, t.lr, t.beta1, t.beta2),
            opt_d: Adam::new(d_params, t.lr, t.beta1, t.beta2),
            stores,
            g_a,
            g_b,
            d_a,
            d_b,
            pool_a: ImagePool::new(t.pool_size),
            pool_b: ImagePool::new(t.pool_size),
            scaler: LossScaler::new(t.mixed_precision),
            lambda_a: t.lambda_a,
            lambda_b: t.lambda_b,
            lambda_identity: t.lambda_identity,
            lambda_temporal: t.lambda_temporal,
            mixed_precision: t.mixed_precision,
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.opt_g.lr = lr;
        self.opt_d.lr = lr;
    }

    fn set_discriminators_trainable(&mut self, on: bool) {
        for vs in &mut self.stores[2..] {
            if on { vs.unfreeze() } else { vs.freeze() }
        }
    }

    /// One step: generators first (D frozen), then both discriminators on pooled fakes. In a
    /// data-parallel run each backward's gradients are averaged over the ranks before the
    /// loss scaler looks at them, so that every rank takes (or skips) the same step.
    pub fn train_step(
        &mut self,
        real_a: &Tensor,
        real_b: &Tensor,
        rng: &mut impl Rng,
    ) -> crate::error::Result<(Losses, Visuals)> {
        let amp = self.mixed_precision;
        let mse_to = |pred: &Tensor, target: f64| {
            let pred = pred.to_kind(Kind::Float);
            (&pred - target).square().mean(Kind::Float)
        };
        let l1 = |x: &Tensor, y: &Tensor| (x.to_kind(Kind::Float) - y).abs().mean(Kind::Float);

        self.set_discriminators_trainable(false);
        self.opt_g.zero_grad();
        let (fake_b, rec_a, fake_a, rec_b, g_terms, temporal) = tch::autocast(amp, || {
            let fake_b = self.g_a.forward(real_a);
            let rec_a = self.g_b.forward(&fake_b);
            let fake_a = self.g_b.forward(real_b);
            let rec_b = self.g_a.forward(&fake_a);
            let (idt_a, idt_b) = if self.lambda_identity > 0.0 {
                let idt_a = l1(&self.g_a.forward(real_b), real_b) * (self.lambda_b * self.lambda_identity);
                let idt_b = l1(&self.g_b.forward(real_a), real_a) * (self.lambda_a * self.lambda_identity);
                (idt_a, idt_b)
            } else {
                let zero = Tensor::zeros([], (Kind::Float, real_a.device()));
                (zero.shallow_clone(), zero)
            };
            let g_a = mse_to(&self.d_a.forward(&fake_b), 1.0);
            let g_b = mse_to(&self.d_b.forward(&fake_a), 1.0);
            let cycle_a = l1(&rec_a, real_a) * self.lambda_a;
            let cycle_b = l1(&rec_b, real_b) * self.lambda_b;
            let temporal = (self.lambda_temporal > 0.0).then(|| {
                let range = WarpRange::default();
                let a = consistency(|x| self.g_a.forward(x), real_a, &fake_b, &range, rng);
                let b = consistency(|x| self.g_b.forward(x), real_b, &fake_a, &range, rng);
                (a.loss * self.lambda_temporal, b.loss * self.lambda_temporal, [a.row, b.row])
            });
            (fake_b, rec_a, fake_a, rec_b, [g_a, cycle_a, idt_a, g_b, cycle_b, idt_b], temporal)
        });
        let mut loss_g = g_terms.iter().fold(Tensor::zeros([], (Kind::Float, real_a.device())), |s, t| s + t);
        if let Some((a, b, _)) = &temporal {
            loss_g = loss_g + a + b;
        }
        self.scaler.scale(&loss_g).backward();
        average_gradients(self.opt_g.grads(), "the all-reduce of the generators' gradients")?;
        let g_ok = self.scaler.unscale(self.opt_g.grads());
        if g_ok {
            self.opt_g.step();
        }

        self.set_discriminators_trainable(true);
        self.opt_d.zero_grad();
        let pooled_b = self.pool_b.query(&fake_b, rng);
        let pooled_a = self.pool_a.query(&fake_a, rng);
        let (loss_d_a, loss_d_b) = tch::autocast(amp, || {
            let d_a =
                (mse_to(&self.d_a.forward(real_b), 1.0) + mse_to(&self.d_a.forward(&pooled_b.detach()), 0.0)) * 0.5;
            let d_b =
                (mse_to(&self.d_b.forward(real_a), 1.0) + mse_to(&self.d_b.forward(&pooled_a.detach()), 0.0)) * 0.5;
            (d_a, d_b)
        });
        self.scaler.scale(&(&loss_d_a + &loss_d_b)).backward();
        average_gradients(self.opt_d.grads(), "the all-reduce of the discriminators' gradients")?;
        let d_ok = self.scaler.unscale(self.opt_d.grads());
        if d_ok {
            self.opt_d.step();
        }
        self.scaler.update(g_ok && d_ok);

        let v = |t: &Tensor| t.double_value(&[]);
        let [g_a, cycle_a, idt_a, g_b, cycle_b, idt_b] = g_terms.each_ref().map(v);
        let (temporal_a, temporal_b) = temporal.as_ref().map_or((0.0, 0.0), |(a, b, _)| (v(a), v(b)));
        let losses = Losses {
            d_a: v(&loss_d_a),
            g_a,
            cycle_a,
            idt_a,
            d_b: v(&loss_d_b),
            g_b,
            cycle_b,
            idt_b,
            temporal_a,
            temporal_b,
        };
        let detach = |t: &Tensor| t.detach().to_kind(Kind::Float);
        let visuals = Visuals {
            real_a: real_a.shallow_clone(),
            fake_b: detach(&fake_b),
            rec_a: detach(&rec_a),
            real_b: real_b.shallow_clone(),
            fake_a: detach(&fake_a),
            rec_b: detach(&rec_b),
            temporal: temporal.map(|(_, _, rows)| rows),
        };
        Ok((losses, visuals))
    }
}

impl super::Job for CycleGan {
    const TITLE: &'static str = "CycleGAN losses";
    const VERB: &'static str = "training";
    const ONE_PROCESS: Option<&'static str> = None;

    fn loss_names(&self) -> Vec<&'static str> {
        let temporal = if self.lambda_temporal > 0.0 { &Losses::TEMPORAL_NAMES[..] } else { &[] };
        Losses::NAMES.iter().chain(temporal).copied().collect()
    }

    fn set_lr(&mut self, lr: f64) {
        CycleGan::set_lr(self, lr);
    }

    fn step(
        &mut self,
        real_a: &Tensor,
        real_b: &Tensor,
        rng: &mut rand::rngs::StdRng,
    ) -> crate::error::Result<super::Step> {
        let (l, v) = self.train_step(real_a, real_b, rng)?;
        let mut losses = l.values().to_vec();
        let mut samples = vec![vec![v.real_a, v.fake_b, v.rec_a], vec![v.real_b, v.fake_a, v.rec_b]];
        if let Some(rows) = v.temporal {
            losses.extend([l.temporal_a, l.temporal_b]);
            samples.extend(rows.map(Vec::from));
        }
        Ok(super::Step {
            losses,
            samples,
            progress: format!("G {:.3} D {:.3} cyc {:.3}", l.g_a + l.g_b, l.d_a + l.d_b, l.cycle_a + l.cycle_b),
        })
    }

    fn save_checkpoint(
        &self,
        run_dir: &std::path::Path,
        name: &str,
        state: &crate::checkpoint::TrainState,
    ) -> crate::error::Result<std::path::PathBuf> {
        CycleGan::save_checkpoint(self, run_dir, name, state)
    }

    fn load_checkpoint(&mut self, dir: &std::path::Path) -> crate::error::Result<crate::checkpoint::TrainState> {
        CycleGan::load_checkpoint(self, dir)
    }

    fn loss_scale(&self) -> f64 {
        self.scaler.scale
    }

    fn min_image_side(&self, config: &TrainConfig) -> u32 {
        config.min_image_side()
    }

    fn replicated(&self) -> Vec<Tensor> {
        self.stores.iter().flat_map(|vs| variables(vs, "").into_iter().map(|(_, t)| t)).collect()
    }
}
