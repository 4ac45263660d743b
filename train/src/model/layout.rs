//! A generator described once, as the list of its layers in module order. The tch module
//! (`generator.rs`), the ONNX emitter (`export.rs`), the `.pth` importer and the parameter/MAC
//! count all walk this list, so a layer type or an index rule exists in one place only.
//!
//! Paths follow the reference `ResnetGenerator`'s `nn.Sequential`, where padding, norm and
//! activation layers also take an index: `model.0` (pad), `model.1` (conv), ...,
//! `model.10.conv_block.1` (first conv of the first residual block).
use super::GeneratorConfig;

/// What one layer does. Convolutions always carry a bias (the reference's default with
/// instance norm); the importer fills a missing one with zeros.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    ReflectPad(i64),
    Conv {
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
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

/// The paper's ResNet generator: c7s1-ngf, d(2ngf), d(4ngf), n_blocks residual blocks,
/// u(2ngf), u(ngf), c7s1-out, tanh.
pub fn resnet(cfg: &GeneratorConfig) -> Vec<Layer> {
    // Every top-level layer takes the next index of the Sequential.
    let mut layers = Vec::new();
    let push = |layers: &mut Vec<Layer>, op: Op| layers.push(Layer { path: format!("model.{}", layers.len()), op });
    let ngf = cfg.ngf;
    push(&mut layers, Op::ReflectPad(3));
    push(&mut layers, Op::Conv { c_in: cfg.in_channels, c_out: ngf, kernel: 7, stride: 1, padding: 0 });
    push(&mut layers, Op::Norm(ngf));
    push(&mut layers, Op::Relu);
    let mut ch = ngf;
    for _ in 0..2 {
        push(&mut layers, Op::Conv { c_in: ch, c_out: ch * 2, kernel: 3, stride: 2, padding: 1 });
        push(&mut layers, Op::Norm(ch * 2));
        push(&mut layers, Op::Relu);
        ch *= 2;
    }
    for _ in 0..cfg.n_blocks {
        let idx = layers.len();
        let block = |i: usize, op: Op| Layer { path: format!("model.{idx}.conv_block.{i}"), op };
        let conv = || Op::Conv { c_in: ch, c_out: ch, kernel: 3, stride: 1, padding: 0 };
        let body = vec![
            block(0, Op::ReflectPad(1)),
            block(1, conv()),
            block(2, Op::Norm(ch)),
            block(3, Op::Relu),
            block(4, Op::ReflectPad(1)),
            block(5, conv()),
            block(6, Op::Norm(ch)),
        ];
        push(&mut layers, Op::Residual(body));
    }
    for _ in 0..2 {
        push(&mut layers, Op::UpConv { c_in: ch, c_out: ch / 2 });
        push(&mut layers, Op::Norm(ch / 2));
        push(&mut layers, Op::Relu);
        ch /= 2;
    }
    push(&mut layers, Op::ReflectPad(3));
    push(&mut layers, Op::Conv { c_in: ngf, c_out: cfg.out_channels, kernel: 7, stride: 1, padding: 0 });
    push(&mut layers, Op::Tanh);
    layers
}

/// Every layer with parameters, depth first, in module order.
pub fn weighted(layers: &[Layer]) -> Vec<Weighted<'_>> {
    let mut out = Vec::new();
    for layer in layers {
        let w = |shape: Vec<i64>, channels| Weighted { path: &layer.path, shape, channels, op: &layer.op };
        match &layer.op {
            Op::Conv { c_in, c_out, kernel, .. } => out.push(w(vec![*c_out, *c_in, *kernel, *kernel], *c_out)),
            Op::UpConv { c_in, c_out } => out.push(w(vec![*c_in, *c_out, UP_CONV.0, UP_CONV.0], *c_out)),
            Op::Norm(ch) => out.push(w(vec![*ch], *ch)),
            Op::Residual(body) => out.extend(weighted(body)),
            Op::ReflectPad(_) | Op::Relu | Op::Tanh => {}
        }
    }
    out
}

/// Parameters and multiply-accumulates of one forward pass at `height` x `width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    pub parameters: u64,
    pub macs: u64,
}

/// Counts what `layers` cost on a `height` x `width` input; affine norms add two parameters per
/// channel. MACs count convolutions only, as thop does (norms, activations and adds are a few per
/// pixel), so that figures compare with the literature's.
pub fn cost(layers: &[Layer], affine_norm: bool, height: i64, width: i64) -> Cost {
    fn walk(layers: &[Layer], affine: bool, (mut h, mut w): (i64, i64), c: &mut Cost) -> (i64, i64) {
        for layer in layers {
            match &layer.op {
                Op::ReflectPad(p) => (h, w) = (h + 2 * p, w + 2 * p),
                Op::Conv { c_in, c_out, kernel, stride, padding } => {
                    (h, w) = ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1);
                    let per_pixel = (c_in * c_out * kernel * kernel) as u64;
                    c.parameters += per_pixel + *c_out as u64;
                    c.macs += per_pixel * (h * w) as u64;
                }
                Op::UpConv { c_in, c_out } => {
                    let weights = (c_in * c_out * UP_CONV.0 * UP_CONV.0) as u64;
                    c.parameters += weights + *c_out as u64;
                    (h, w) = (h * 2, w * 2);
                    // As thop counts it (and so the papers): every output pixel of every output
                    // channel sums over all input channels and taps, zeros of the stride included.
                    c.macs += weights * (h * w) as u64;
                }
                Op::Norm(ch) => c.parameters += if affine { 2 * *ch as u64 } else { 0 },
                Op::Residual(body) => {
                    walk(body, affine, (h, w), c);
                }
                Op::Relu | Op::Tanh => {}
            }
        }
        (h, w)
    }
    let mut c = Cost::default();
    walk(layers, affine_norm, (height, width), &mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ngf: i64, n_blocks: i64) -> GeneratorConfig {
        GeneratorConfig { in_channels: 3, out_channels: 3, ngf, n_blocks, affine_norm: false }
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

    #[test]
    fn the_paper_generator_costs_what_the_literature_says() {
        // 11,378,179 parameters (PyTorch's count) and 56.8 GMAC at 256x256 (GAN Compression,
        // Li et al. 2020, Table 1).
        let c = cost(&resnet(&cfg(64, 9)), false, 256, 256);
        assert_eq!(c.parameters, 11_378_179);
        assert_eq!((c.macs as f64 / 1e8).round(), 568.0, "{} MACs", c.macs);
        let affine = cost(&resnet(&cfg(64, 9)), true, 256, 256);
        assert_eq!(affine.parameters - c.parameters, 2 * (64 + 128 + 256 + 18 * 256 + 128 + 64));
    }
}
