//! A generator described once, as the list of its layers in module order. The tch module
//! (`generator.rs`), the ONNX emitter (`export.rs`) and the `.pth` importer all walk this list,
//! so a layer type or an index rule exists in one place only (parameters and MACs are counted on
//! the exported graph: `cyclegan_onnx::cost`).
//!
//! Paths follow the reference `ResnetGenerator`'s `nn.Sequential`, where padding, norm and
//! activation layers also take an index: `model.0` (pad), `model.1` (conv), ...,
//! `model.10.conv_block.1` (first conv of the first residual block).
use crate::config::{Family, GeneratorConfig};

/// What one layer does. Convolutions always carry a bias (the reference's default with
/// instance norm); the importer fills a missing one with zeros.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    ReflectPad(i64),
    /// `groups` 1 is a dense convolution, `groups == c_in == c_out` a depthwise one.
    Conv {
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
        groups: i64,
    },
    /// Kernel 3, stride 2, padding 1, output padding 1: exactly doubles the spatial size.
    UpConv {
        c_in: i64,
        c_out: i64,
    },
    /// Instance norm (epsilon 1e-5, no running statistics), affine when the config says so.
    Norm(i64),
    Relu,
    Tanh,
    /// `x + body(x)`.
    Residual(Vec<Layer>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Module path: the prefix of this layer's parameter names and of its ONNX node names.
    pub path: String,
    pub op: Op,
}

/// The kernel size, stride and padding of the transposed convolutions.
pub const UP_CONV: (i64, i64, i64) = (3, 2, 1);
/// Instance norm's epsilon in every generator (PyTorch's default).
pub const NORM_EPSILON: f64 = 1e-5;

/// The ONNX node of the layer at `path` doing `op` (`model.10.conv_block.1.Conv`, `model.10.Add`):
/// how the export names its nodes and `cyclegan-calib` and quantization-aware training name layers.
pub fn node_name(path: &str, op: &str) -> String {
    format!("{path}.{op}")
}

/// A layer with a weight, in module order, as the importer and the counter see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Weighted<'a> {
    pub path: &'a str,
    /// The weight's shape (`[c_out, c_in, k, k]` for Conv, `[c_in, c_out, k, k]` for UpConv,
    /// `[channels]` for a norm).
    pub shape: Vec<i64>,
    /// Channels of the bias (and of an affine norm's scale).
    pub channels: i64,
    pub op: &'a Op,
}

/// The layers of `cfg`'s family.
pub fn generator(cfg: &GeneratorConfig) -> Vec<Layer> {
    match cfg.family {
        Family::Resnet => resnet(cfg),
        Family::Mobile => mobile(cfg),
    }
}

/// The paper's ResNet generator: c7s1-ngf, d(2ngf), d(4ngf), n_blocks residual blocks,
/// u(2ngf), u(ngf), c7s1-out, tanh.
pub fn resnet(cfg: &GeneratorConfig) -> Vec<Layer> {
    let dense = |ch| Op::Conv { c_in: ch, c_out: ch, kernel: 3, stride: 1, padding: 0, groups: 1 };
    with_blocks(cfg, |block, ch| {
        vec![
            block(0, Op::ReflectPad(1)),
            block(1, dense(ch)),
            block(2, Op::Norm(ch)),
            block(3, Op::Relu),
            block(4, Op::ReflectPad(1)),
            block(5, dense(ch)),
            block(6, Op::Norm(ch)),
        ]
    })
}

/// The edge student (GAN Compression's mobile ResNet generator): the paper's stem, sampling and
/// output layers around residual blocks whose 3x3 convolutions are depthwise-separable (a
/// depthwise 3x3, a norm, a pointwise 1x1), about 8x cheaper per block at the same width.
pub fn mobile(cfg: &GeneratorConfig) -> Vec<Layer> {
    let depthwise = |ch| Op::Conv { c_in: ch, c_out: ch, kernel: 3, stride: 1, padding: 0, groups: ch };
    let pointwise = |ch| Op::Conv { c_in: ch, c_out: ch, kernel: 1, stride: 1, padding: 0, groups: 1 };
    with_blocks(cfg, |block, ch| {
        vec![
            block(0, Op::ReflectPad(1)),
            block(1, depthwise(ch)),
            block(2, Op::Norm(ch)),
            block(3, pointwise(ch)),
            block(4, Op::Norm(ch)),
            block(5, Op::Relu),
            block(6, Op::ReflectPad(1)),
            block(7, depthwise(ch)),
            block(8, Op::Norm(ch)),
            block(9, pointwise(ch)),
            block(10, Op::Norm(ch)),
        ]
    })
}

/// The frame both families share, with `body(block, channels)` making each residual block's
/// layers (`block(i, op)` names the block's `i`-th layer).
fn with_blocks(cfg: &GeneratorConfig, body: impl Fn(&dyn Fn(usize, Op) -> Layer, i64) -> Vec<Layer>) -> Vec<Layer> {
    // Every top-level layer takes the next index of the Sequential.
    let mut layers = Vec::new();
    let push = |layers: &mut Vec<Layer>, op: Op| layers.push(Layer { path: format!("model.{}", layers.len()), op });
    let conv = |c_in, c_out, kernel, stride, padding| Op::Conv { c_in, c_out, kernel, stride, padding, groups: 1 };
    let ngf = cfg.ngf;
    push(&mut layers, Op::ReflectPad(3));
    push(&mut layers, conv(cfg.in_channels, ngf, 7, 1, 0));
    push(&mut layers, Op::Norm(ngf));
    push(&mut layers, Op::Relu);
    let mut ch = ngf;
    for _ in 0..2 {
        push(&mut layers, conv(ch, ch * 2, 3, 2, 1));
        push(&mut layers, Op::Norm(ch * 2));
        push(&mut layers, Op::Relu);
        ch *= 2;
    }
    for _ in 0..cfg.n_blocks {
        let idx = layers.len();
        let block = |i: usize, op: Op| Layer { path: format!("model.{idx}.conv_block.{i}"), op };
        push(&mut layers, Op::Residual(body(&block, ch)));
    }
    for _ in 0..2 {
        push(&mut layers, Op::UpConv { c_in: ch, c_out: ch / 2 });
        push(&mut layers, Op::Norm(ch / 2));
        push(&mut layers, Op::Relu);
        ch /= 2;
    }
    push(&mut layers, Op::ReflectPad(3));
    push(&mut layers, conv(ngf, cfg.out_channels, 7, 1, 0));
    push(&mut layers, Op::Tanh);
    layers
}

/// Every layer with parameters, depth first, in module order.
pub fn weighted(layers: &[Layer]) -> Vec<Weighted<'_>> {
    let mut out = Vec::new();
    for layer in layers {
        let w = |shape: Vec<i64>, channels| Weighted { path: &layer.path, shape, channels, op: &layer.op };
        match &layer.op {
            Op::Conv { c_in, c_out, kernel, groups, .. } => {
                out.push(w(vec![*c_out, *c_in / *groups, *kernel, *kernel], *c_out))
            }
            Op::UpConv { c_in, c_out } => out.push(w(vec![*c_in, *c_out, UP_CONV.0, UP_CONV.0], *c_out)),
            Op::Norm(ch) => out.push(w(vec![*ch], *ch)),
            Op::Residual(body) => out.extend(weighted(body)),
            Op::ReflectPad(_) | Op::Relu | Op::Tanh => {}
        }
    }
    out
}

/// Every parameter of `cfg`'s generator as (name, shape), in module order: a weight and a bias per
/// convolution, and a scale (`weight`) and shift (`bias`) per norm when the norms are affine.
pub fn parameters(cfg: &GeneratorConfig) -> Vec<(String, Vec<i64>)> {
    let mut out = Vec::new();
    for w in weighted(&generator(cfg)) {
        if matches!(w.op, Op::Norm(_)) && !cfg.affine_norm {
            continue;
        }
        out.push((format!("{}.weight", w.path), w.shape));
        out.push((format!("{}.bias", w.path), vec![w.channels]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ngf: i64, n_blocks: i64) -> GeneratorConfig {
        GeneratorConfig { in_channels: 3, out_channels: 3, ngf, n_blocks, affine_norm: false, family: Family::Resnet }
    }

    #[test]
    fn paths_follow_the_reference_sequential() {
        let layers = resnet(&cfg(64, 9));
        let w = weighted(&layers);
        let paths: Vec<&str> = w.iter().filter(|w| w.shape.len() == 4).map(|w| w.path).collect();
        assert_eq!(paths.len(), 6 + 2 * 9);
        assert_eq!(&paths[..3], ["model.1", "model.4", "model.7"]);
        assert_eq!(paths[3], "model.10.conv_block.1");
        assert_eq!(&paths[paths.len() - 3..], ["model.19", "model.22", "model.26"]);
        assert_eq!(layers.last().map(|l| l.path.as_str()), Some("model.27"));
        assert_eq!(w.iter().find(|w| w.path == "model.19").unwrap().shape, [256, 128, 3, 3]);
    }
}
