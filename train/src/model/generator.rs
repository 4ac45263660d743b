//! The generator as a tch module, built from its layout (`cyclegan_model::layout`): the same
//! layers, paths and order as the ONNX export and the `.pth` importer.
use cyclegan_model::GeneratorConfig;
use cyclegan_model::layout::{self, Layer, Op, node_name};
use tch::Tensor;
use tch::nn::{self, Module};

use super::fake_quant::{QuantPoints, fake_quant, fake_quant_weight};
use super::layers::{Norm, conv_config, reflection_pad, up_conv};

/// A generator as modules: the layers before the residual blocks, each block, the layers after.
/// The blocks are apart so that distillation can read the activations between them.
#[derive(Debug)]
pub struct Generator {
    head: nn::Sequential,
    blocks: Vec<nn::Sequential>,
    tail: nn::Sequential,
}

impl Module for Generator {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.blocks.iter().fold(self.head.forward(x), |h, b| b.forward(&h));
        self.tail.forward(&h)
    }
}

impl Generator {
    pub fn n_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The output and the activations after the residual blocks `after` (0-based, ascending).
    pub fn forward_with_features(&self, x: &Tensor, after: &[usize]) -> (Tensor, Vec<Tensor>) {
        let mut h = self.head.forward(x);
        let mut features = Vec::with_capacity(after.len());
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(&h);
            if after.contains(&i) {
                features.push(h.shallow_clone());
            }
        }
        (self.tail.forward(&h), features)
    }
}

/// Builds the generator under `p`; its variables are named by the layout's paths
/// (`model.1.weight`, `model.10.conv_block.1.bias`, ...), as the reference `state_dict`.
pub fn generator(p: &nn::Path, cfg: &GeneratorConfig, gain: f64) -> Generator {
    quantized_generator(p, cfg, gain, &QuantPoints::new())
}

/// [`generator`] with INT8 fake quantization where `quant` says: a named convolution's input and
/// its weights (per output channel), a named residual Add's branch input (the block's output before
/// the Add), as `cyclegan-calib` places Q/DQ; the same variables.
pub fn quantized_generator(p: &nn::Path, cfg: &GeneratorConfig, gain: f64, quant: &QuantPoints) -> Generator {
    let layers = layout::generator(cfg);
    let is_block = |l: &Layer| matches!(l.op, Op::Residual(_));
    let first = layers.iter().position(is_block).unwrap_or(layers.len());
    let end = layers.iter().rposition(is_block).map_or(first, |i| i + 1);
    let affine = cfg.affine_norm;
    Generator {
        head: build(p, &layers[..first], affine, gain, quant),
        blocks: layers[first..end].iter().map(|l| build(p, std::slice::from_ref(l), affine, gain, quant)).collect(),
        tail: build(p, &layers[end..], affine, gain, quant),
    }
}

fn sub_path<'a>(root: &nn::Path<'a>, dotted: &str) -> nn::Path<'a> {
    let mut parts = dotted.split('.');
    let first = parts.next().expect("layout paths are not empty");
    parts.fold(root / first, |p, part| p / part)
}

fn build(root: &nn::Path, layers: &[Layer], affine: bool, gain: f64, quant: &QuantPoints) -> nn::Sequential {
    let mut seq = nn::seq();
    for layer in layers {
        let p = || sub_path(root, &layer.path);
        let scale = |op: &str| quant.get(&node_name(&layer.path, op)).map(Tensor::shallow_clone);
        seq = match &layer.op {
            Op::ReflectPad(pad) => {
                let pad = *pad;
                seq.add_fn(move |x| reflection_pad(x, pad))
            }
            Op::Conv { c_in, c_out, kernel, stride, padding, groups } => {
                let conv = nn::conv2d(p(), *c_in, *c_out, *kernel, conv_config(*stride, *padding, *groups, gain));
                match scale("Conv") {
                    None => seq.add(conv),
                    Some(s) => {
                        let (stride, padding, groups) = (*stride, *padding, *groups);
                        seq.add_fn(move |x| {
                            let w = fake_quant_weight(&conv.ws, 0);
                            fake_quant(x, &s).conv2d(&w, conv.bs.as_ref(), [stride; 2], [padding; 2], [1, 1], groups)
                        })
                    }
                }
            }
            Op::UpConv { c_in, c_out } => {
                let conv = up_conv(p(), *c_in, *c_out, gain);
                match scale("ConvTranspose") {
                    None => seq.add(conv),
                    Some(s) => {
                        let (_, stride, padding) = layout::UP_CONV;
                        seq.add_fn(move |x| {
                            let w = fake_quant_weight(&conv.ws, 1);
                            let bias = conv.bs.as_ref();
                            fake_quant(x, &s).conv_transpose2d(&w, bias, [stride; 2], [padding; 2], [1, 1], 1, [1, 1])
                        })
                    }
                }
            }
            Op::Norm(channels) => {
                let norm = Norm::new(p(), *channels, affine);
                seq.add_fn(move |x| norm.forward(x))
            }
            Op::Relu => seq.add_fn(|x| x.relu()),
            Op::Tanh => seq.add_fn(|x| x.tanh()),
            Op::Residual(body) => {
                let body = build(root, body, affine, gain, quant);
                match scale("Add") {
                    None => seq.add_fn(move |x| x + body.forward(x)),
                    Some(s) => seq.add_fn(move |x| x + fake_quant(&body.forward(x), &s)),
                }
            }
        };
    }
    seq
}

#[cfg(test)]
mod tests {
    use super::*;
    use cyclegan_model::Family;
    use tch::{Device, Kind};

    fn build(n_blocks: i64) -> (nn::VarStore, Generator) {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = GeneratorConfig {
            in_channels: 3,
            out_channels: 3,
            ngf: 64,
            n_blocks,
            affine_norm: false,
            family: Family::Resnet,
        };
        let g = generator(&vs.root(), &cfg, 0.02);
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
