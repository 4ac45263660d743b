//! ResNet generator: c7s1-ngf, d(2ngf), d(4ngf), n_blocks residual blocks, u(2ngf), u(ngf),
//! c7s1-3, tanh; reflection padding and instance norm throughout.
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};

use super::layers::{Norm, conv, reflection_pad, up_conv};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    pub in_channels: i64,
    pub out_channels: i64,
    pub ngf: i64,
    pub n_blocks: i64,
    /// Instance norms with learnable scale (`weight`) and shift (`bias`).
    #[serde(default)]
    pub affine_norm: bool,
}

/// Builds the generator under `p`. Sub-module indices match the reference `ResnetGenerator`'s
/// `nn.Sequential`, where padding, norm and activation layers also take an index.
pub fn resnet_generator(p: &nn::Path, cfg: &GeneratorConfig, gain: f64) -> nn::Sequential {
    let m = p / "model";
    let ngf = cfg.ngf;
    let mut seq = nn::seq();

    let norm = |idx: String, ch: i64| Norm::new(&m / idx.as_str(), ch, cfg.affine_norm);
    let stem = conv(&m / 1, cfg.in_channels, ngf, 7, 1, 0, gain);
    let n = norm("2".into(), ngf);
    seq = seq.add_fn(move |x| n.forward(&stem.forward(&reflection_pad(x, 3))).relu());

    let mut idx = 4;
    let mut ch = ngf;
    for _ in 0..2 {
        let down = conv(&m / idx, ch, ch * 2, 3, 2, 1, gain);
        let n = norm((idx + 1).to_string(), ch * 2);
        seq = seq.add_fn(move |x| n.forward(&down.forward(x)).relu());
        idx += 3;
        ch *= 2;
    }

    for _ in 0..cfg.n_blocks {
        let block = &m / idx / "conv_block";
        let c1 = conv(&block / 1, ch, ch, 3, 1, 0, gain);
        let c2 = conv(&block / 5, ch, ch, 3, 1, 0, gain);
        let n1 = Norm::new(&block / 2, ch, cfg.affine_norm);
        let n2 = Norm::new(&block / 6, ch, cfg.affine_norm);
        seq = seq.add_fn(move |x| {
            let h = n1.forward(&c1.forward(&reflection_pad(x, 1))).relu();
            x + n2.forward(&c2.forward(&reflection_pad(&h, 1)))
        });
        idx += 1;
    }

    for _ in 0..2 {
        let up = up_conv(&m / idx, ch, ch / 2, gain);
        let n = norm((idx + 1).to_string(), ch / 2);
        seq = seq.add_fn(move |x| n.forward(&up.forward(x)).relu());
        idx += 3;
        ch /= 2;
    }

    let head = conv(&m / (idx + 1), ngf, cfg.out_channels, 7, 1, 0, gain);
    seq.add_fn(move |x| head.forward(&reflection_pad(x, 3)).tanh())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    fn build(n_blocks: i64) -> (nn::VarStore, nn::Sequential) {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = GeneratorConfig { in_channels: 3, out_channels: 3, ngf: 64, n_blocks, affine_norm: false };
        let g = resnet_generator(&vs.root(), &cfg, 0.02);
        (vs, g)
    }

    #[test]
    fn parameter_count_matches_the_reference() {
        let (vs, _) = build(9);
        let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 11_378_179);
    }

    #[test]
    fn keys_follow_the_reference_layout() {
        let (vs, _) = build(9);
        let vars = vs.variables();
        for key in [
            "model.1.weight",
            "model.4.bias",
            "model.7.weight",
            "model.10.conv_block.1.weight",
            "model.18.conv_block.5.bias",
            "model.19.weight",
            "model.22.weight",
            "model.26.weight",
        ] {
            assert!(vars.contains_key(key), "missing {key}");
        }
        assert_eq!(vars["model.19.weight"].size(), [256, 128, 3, 3]);
    }

    #[test]
    fn output_keeps_shape_and_range() {
        let (_vs, g) = build(6);
        let x = Tensor::rand([2, 3, 36, 44], (Kind::Float, Device::Cpu)) * 2 - 1;
        let y = g.forward(&x);
        assert_eq!(y.size(), [2, 3, 36, 44]);
        assert!(y.abs().max().double_value(&[]) <= 1.0);
    }
}
