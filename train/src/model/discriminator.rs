//! PatchGAN discriminator (C64-C128-C256-C512 for 3 layers: 70x70 receptive field); no norm on
//! the first layer, LeakyReLU 0.2.
use cyclegan_model::ModelConfig;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};

use super::layers::{conv, instance_norm, leaky_relu};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscriminatorConfig {
    pub in_channels: i64,
    pub ndf: i64,
    pub n_layers: i64,
}

impl DiscriminatorConfig {
    /// The discriminator of a recipe's `[model]` (RGB in).
    pub fn of(m: &ModelConfig) -> Self {
        Self { in_channels: 3, ndf: m.ndf, n_layers: m.n_layers_d }
    }
}

/// Builds the discriminator under `p` with the reference `NLayerDiscriminator`'s indices.
pub fn patch_discriminator(p: &nn::Path, cfg: &DiscriminatorConfig, gain: f64) -> nn::Sequential {
    let m = p / "model";
    let first = conv(&m / 0, cfg.in_channels, cfg.ndf, 4, 2, 1, gain);
    let mut seq = nn::seq().add_fn(move |x| leaky_relu(&first.forward(x)));

    let mut idx = 2;
    let mut ch = cfg.ndf;
    for n in 1..=cfg.n_layers {
        let out = cfg.ndf * (1 << n).min(8);
        let stride = if n == cfg.n_layers { 1 } else { 2 };
        let c = conv(&m / idx, ch, out, 4, stride, 1, gain);
        seq = seq.add_fn(move |x| leaky_relu(&instance_norm(&c.forward(x))));
        idx += 3;
        ch = out;
    }
    let head = conv(&m / idx, ch, 1, 4, 1, 1, gain);
    seq.add(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn parameter_count_and_patch_grid_match_the_reference() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = DiscriminatorConfig { in_channels: 3, ndf: 64, n_layers: 3 };
        let d = patch_discriminator(&vs.root(), &cfg, 0.02);
        let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 2_764_737);
        assert!(vs.variables().contains_key("model.11.weight"));
        let y = d.forward(&Tensor::zeros([1, 3, 256, 256], (Kind::Float, Device::Cpu)));
        assert_eq!(y.size(), [1, 1, 30, 30]);
    }
}
