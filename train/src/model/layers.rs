//! Building blocks shared by the generator and the discriminator.
use tch::{Tensor, nn};

/// A convolution's settings, initialised as in the paper: weights from N(0, gain), biases zero.
pub fn conv_config(stride: i64, padding: i64, groups: i64, gain: f64) -> nn::ConvConfig {
    nn::ConvConfig {
        stride,
        padding,
        groups,
        ws_init: nn::Init::Randn { mean: 0.0, stdev: gain },
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    }
}

/// A dense convolution initialised as in the paper.
pub fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64, gain: f64) -> nn::Conv2D {
    nn::conv2d(p, c_in, c_out, k, conv_config(stride, padding, 1, gain))
}

/// Stride-2 transposed convolution that exactly doubles the spatial size.
pub fn up_conv(p: nn::Path, c_in: i64, c_out: i64, gain: f64) -> nn::ConvTranspose2D {
    let config = nn::ConvTransposeConfig {
        stride: 2,
        padding: 1,
        output_padding: 1,
        ws_init: nn::Init::Randn { mean: 0.0, stdev: gain },
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv_transpose2d(p, c_in, c_out, 3, config)
}

/// Instance normalisation without affine parameters or running statistics (the paper's setting).
pub fn instance_norm(x: &Tensor) -> Tensor {
    x.instance_norm::<Tensor>(None, None, None, None, true, 0.1, 1e-5, false)
}

/// Instance norm, optionally with a learnable per-channel scale and shift (PyTorch's
/// `InstanceNorm2d(affine=True)`, initialised to 1 and 0).
#[derive(Debug)]
pub struct Norm {
    affine: Option<(Tensor, Tensor)>,
}

impl Norm {
    pub fn new(p: nn::Path, channels: i64, affine: bool) -> Self {
        let affine = affine.then(|| {
            (p.var("weight", &[channels], nn::Init::Const(1.0)), p.var("bias", &[channels], nn::Init::Const(0.0)))
        });
        Self { affine }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        match &self.affine {
            None => instance_norm(x),
            Some((w, b)) => x.instance_norm(Some(w), Some(b), None, None, true, 0.1, 1e-5, false),
        }
    }
}

pub fn reflection_pad(x: &Tensor, pad: i64) -> Tensor {
    x.reflection_pad2d([pad, pad, pad, pad])
}

/// LeakyReLU with slope 0.2 (tch's `leaky_relu` has a fixed 0.01 slope): PReLU with a
/// constant slope is the same function in one fused op.
pub fn leaky_relu(x: &Tensor) -> Tensor {
    x.prelu(&Tensor::full([1], 0.2, (x.kind(), x.device())))
}
